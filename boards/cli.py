"""CLI of neuroplast.boards: ``board list|show|detect``, ``fit``, ``deploy``, ``serve``.

Thin wrappers over :func:`load_profile`, :func:`fit`, :func:`detect_boards`, :func:`deploy`
and :func:`serve`; errors surface as :class:`~neuroplast.errors.NeuroplastError` and the main
CLI prints them as one line.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from neuroplast.boards.profile import fmt_bytes

__all__ = ["register", "profile_table", "fit_table"]


def _fmt_si(x: float, unit: str) -> str:
    if x == 0:
        return f"0 {unit}"
    for p, s in ((1e9, "G"), (1e6, "M"), (1e3, "k"), (1, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"), (1e-12, "p"), (1e-15, "f")):  # fmt: skip
        if abs(x) >= p:
            return f"{x / p:.3g} {s}{unit}"
    return f"{x:.3g} {unit}"


def profile_table(prof: Any) -> Any:
    """A rich Table with every field of a board profile."""
    from rich.table import Table

    t = Table(title=f"{prof.name}: {prof.title}", show_header=False)
    t.add_column("field", style="bold")
    t.add_column("value")
    t.add_row("kind", prof.kind)
    if prof.cpu:
        c = prof.cpu
        t.add_row("cpu", f"{c.core} ({c.arch}), {c.cores} cores @ {_fmt_si(c.clock_hz, 'Hz')}")
    m = prof.memory
    t.add_row("ram", f"{fmt_bytes(m.ram_bytes)} ({fmt_bytes(m.usable_ram_bytes)} usable)")
    t.add_row("flash", fmt_bytes(m.flash_bytes) if m.flash_bytes else "-")
    t.add_row("accelerators", ", ".join(prof.accelerators) or "-")
    t.add_row("backends", ", ".join(prof.backends))
    if prof.serial:
        ids = ", ".join(f"{v:04X}:{p:04X}" for v, p in prof.serial.usb_ids) or "-"
        t.add_row("serial", f"{prof.serial.baud} baud; USB ids {ids}")
    if prof.neuromorphic:
        n = prof.neuromorphic
        t.add_row(
            "neuromorphic",
            f"{n.cores} cores x {n.neurons_per_core} neurons (max {n.max_neurons}), fan-in "
            f"{n.fan_in}, fan-out {n.fan_out or '-'}, {n.weight_bits}-bit weights, "
            f"{n.state_bits}-bit state, neurons {', '.join(n.neuron_types)}, inputs "
            f"{n.max_inputs or '-'}, outputs {n.max_outputs or '-'}, on-chip learning "
            f"{'yes' if n.on_chip_learning else 'no'}",
        )
    k = prof.cost
    t.add_row(
        "cost model",
        f"{_fmt_si(k.macs_per_s, 'MAC/s')}, {_fmt_si(k.synops_per_s, 'synop/s')}, "
        f"{_fmt_si(k.updates_per_s, 'upd/s')}, {_fmt_si(k.op_overhead_s, 's')}/node, "
        f"{_fmt_si(k.active_power_w, 'W')} active, {_fmt_si(k.energy_per_synop_j, 'J')}/synop",
    )
    if prof.notes:
        t.add_row("notes", prof.notes)
    t.add_row("source", prof.source)
    return t


def fit_table(rep: Any) -> Any:
    """A rich Table for a :class:`~neuroplast.boards.estimate.FitReport`."""
    from rich.table import Table

    kernels = f", {rep.backend} kernels, {rep.cost_table} table" if rep.backend else ""
    t = Table(
        title=f"fit on {rep.board} ({rep.runtime} runtime{kernels}, {rep.mode} mode): {rep.verdict}"
    )
    t.add_column("quantity")
    t.add_column("value", justify="right")
    mem = rep.memory
    for label, v in (
        ("weights", mem.weights),
        ("state", mem.state),
        ("activations", mem.activations),
        ("plasticity buffers", mem.plasticity),
        ("workspace (int matmul)", mem.workspace),
        ("graph arrays", mem.graph_copy),
        ("kernel tables", mem.tables),
        ("runtime (Python)", mem.runtime),
        ("firmware", mem.firmware),
    ):
        t.add_row(label, fmt_bytes(v))
    t.add_section()
    t.add_row(
        "RAM needed / usable", f"{fmt_bytes(mem.ram_needed)} / {fmt_bytes(rep.ram_available)}"
    )
    t.add_row(
        "flash needed / total",
        f"{fmt_bytes(mem.flash_needed)} / {fmt_bytes(rep.flash_available)}",
    )
    t.add_section()
    o = rep.ops
    t.add_row("nodes", str(o.n_nodes))
    t.add_row("MACs / step", f"{o.macs:,}")
    t.add_row("synaptic ops / step", f"{o.synops:,}")
    t.add_row("plasticity updates / step", f"{o.updates:,}")
    t.add_row("spiking neurons", f"{o.neurons:,}")
    t.add_section()
    t.add_row("latency / step (est.)", _fmt_si(rep.latency_s, "s"))
    t.add_row("energy / step (est.)", _fmt_si(rep.energy_j, "J"))
    return t


def register(app: Any) -> None:
    """Add ``board list|show|detect``, ``fit``, ``deploy`` and ``serve`` to the ``neuroplast``
    Typer app (``boards ...`` stays a hidden alias), and USB detection to the ports the
    serial ``board`` commands try when no ``--port`` is given."""
    import typer
    from rich.console import Console

    from neuroplast.cli import PORT_FINDERS, check_failed, command_group

    console = Console()
    boards_app = command_group(app, "board", aliases=("boards",))

    def _usb_boards(board: str | None) -> list[tuple[str, str]]:
        from neuroplast.boards.detect import detect_boards

        return [(h.port, h.board) for h in detect_boards(board)]

    if _usb_boards not in PORT_FINDERS:
        PORT_FINDERS.append(_usb_boards)

    @boards_app.command("list")
    def boards_list() -> None:
        """List the board profiles.

        \b
        Examples:
            neuroplast board list
        """
        from rich.table import Table

        from neuroplast.boards.profile import list_profiles, load_profile

        t = Table(title="board profiles")
        t.add_column("name", no_wrap=True, style="bold")
        for col in ("title", "kind", "cpu", "RAM", "flash", "backends"):
            t.add_column(col)
        for name in list_profiles():
            p = load_profile(name)
            cpu = f"{p.cpu.cores}x {p.cpu.core}" if p.cpu else "-"
            t.add_row(
                p.name,
                p.title,
                p.kind,
                cpu,
                fmt_bytes(p.memory.ram_bytes),
                fmt_bytes(p.memory.flash_bytes) if p.memory.flash_bytes else "-",
                ", ".join(p.backends),
            )
        console.print(t)

    @boards_app.command("show")
    def boards_show(
        name: str = typer.Argument(
            ..., help="Board name (see `neuroplast board list`) or .toml path."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the profile as JSON."),
    ) -> None:
        """Show every field of one board profile.

        \b
        Examples:
            neuroplast board show rpi5
            neuroplast board show xylo --json
        """
        from neuroplast.boards.profile import load_profile

        p = load_profile(name)
        if as_json:
            print(json.dumps(dataclasses.asdict(p), indent=1))
        else:
            console.print(profile_table(p))

    @boards_app.command("detect")
    def boards_detect(
        board: str = typer.Option(None, "--board", "-b", help="Only this board."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    ) -> None:
        """List connected serial boards recognised by USB VID/PID.

        The serial `board` commands use the one found when no --port is given.

        \b
        Examples:
            neuroplast board detect
            neuroplast board detect -b rp2040 --json
        """
        from rich.table import Table

        from neuroplast.boards.detect import detect_boards

        hits = detect_boards(board)
        if as_json:
            print(json.dumps([dataclasses.asdict(h) for h in hits]))
            return
        if not hits:
            console.print("no known board connected")
            return
        t = Table(title="connected boards")
        for col in ("port", "board", "VID:PID", "baud", "description"):
            t.add_column(col)
        for h in hits:
            t.add_row(h.port, h.board, f"{h.vid:04X}:{h.pid:04X}", str(h.baud), h.description)
        console.print(t)

    @app.command("fit")
    def fit_cmd(
        bundle: Path = typer.Argument(..., help="Bundle folder or zip."),
        board: str = typer.Option(..., "--board", "-b", help="Board name or profile .toml."),
        rate: float = typer.Option(1.0, help="Fraction of active spiking inputs per step (0..1)."),
        learn: bool = typer.Option(
            None, "--learn/--no-learn", help="Count plasticity (default: if the bundle has rules)."
        ),
        mode: str = typer.Option(None, help="float or int (default: the bundle's)."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
        plugin: list[str] = typer.Option(
            None, "--plugin", help="Module registering an app's node kinds (repeatable)."
        ),
        backend: str = typer.Option(
            None,
            "--kernels",
            help="Python-runtime kernels to cost: numpy or native (default: what the runtime "
            "would use on the board).",
        ),
    ) -> None:
        """Estimate memory, ops, latency and energy of a model on a board, with a verdict.

        Exit status 1 if it does not fit.

        \b
        Examples:
            neuroplast fit model.zip -b rpi4
            neuroplast fit model.zip -b esp32s3 --no-learn --json
        """
        from neuroplast.boards.estimate import fit

        rep = fit(
            bundle, board, learning=learn, mode=mode, input_rate=rate, plugins=plugin,
            backend=backend,
        )  # fmt: skip
        if as_json:
            print(json.dumps(rep.to_dict(), indent=1))
            if rep.verdict == "does-not-fit":
                raise typer.Exit(1)
            return
        console.print(fit_table(rep))
        style = {"fits": "green", "fits-with-warnings": "yellow"}.get(rep.verdict, "red")
        console.print(f"[bold {style}]{rep.verdict}[/]")
        for r in rep.reasons:
            console.print(f"  [red]x[/] {r}")
        for w in rep.warnings:
            console.print(f"  [yellow]![/] {w}")
        for n in rep.notes:
            console.print(f"  [dim]note:[/] {n}")
        if rep.verdict == "does-not-fit":
            check_failed(f"{bundle.name} does not fit {rep.board}")

    @app.command("deploy")
    def deploy_cmd(
        bundle: Path = typer.Argument(..., help="Bundle folder or zip."),
        board: str = typer.Option(
            ...,
            "--board",
            "-b",
            help="Linux board: rpi4, rpi5, jetson-nano, jetson-orin-nano, host.",
        ),
        host: str = typer.Option(..., "--host", help="user@hostname of the board."),
        ssh_port: int = typer.Option(22, "--ssh-port", help="SSH port of the board."),
        identity: Path = typer.Option(None, "--identity", help="SSH private key."),
        remote_dir: str = typer.Option(
            "neuroplast", help="Install folder on the board (relative to home)."
        ),
        python: str = typer.Option("python3", help="Python on the board that creates the venv."),
        service: bool = typer.Option(
            False, "--service", help="Install a systemd unit running `neuroplast serve`."
        ),
        source: str = typer.Option(
            "udp://127.0.0.1:9750", "--source", "-s", help="Stream source of the service."
        ),
        wheel: Path = typer.Option(None, help="Use this neuroplast wheel instead of building one."),
        known_hosts: Path = typer.Option(
            None, help="known_hosts file (default: ~/.ssh/known_hosts)."
        ),
        timeout: float = typer.Option(10.0, help="SSH connect timeout in seconds."),
        strict_host_keys: bool = typer.Option(
            False,
            "--strict-host-keys",
            help="Refuse a board whose host key is not already in known_hosts (no first-use trust).",
        ),
        host_key_fingerprint: str = typer.Option(
            None,
            "--host-key-fingerprint",
            help="Pin the board's host key: SHA256:... as `ssh-keygen -lf` prints it on the board.",
        ),
        plugin: list[str] = typer.Option(
            None, "--plugin", help="Module registering an app's node kinds (repeatable)."
        ),
        dry_run: bool = typer.Option(
            False, "--dry-run", help="Check and print the steps; do not connect to the board."
        ),
    ) -> None:
        """Install a bundle on a Linux board over SSH and smoke-test it (optionally as a service).

        On the board, `neuroplast run` and `neuroplast serve` then run the bundle
        (docs/boards.md, "Run a deployed bundle").

        \b
        Examples:
            neuroplast deploy model.zip -b rpi5 --host pi@raspberrypi.local --dry-run
            neuroplast deploy model.zip -b rpi5 --host pi@raspberrypi.local --service
        """
        from neuroplast.boards.ssh_deploy import DeployTarget, deploy, deploy_plan

        target = DeployTarget(
            host=host,
            port=ssh_port,
            identity=str(identity) if identity else None,
            remote_dir=remote_dir,
            python=python,
            connect_timeout=timeout,
            known_hosts=str(known_hosts) if known_hosts else None,
            strict_host_keys=strict_host_keys,
            host_key_fingerprint=host_key_fingerprint,
        )
        if dry_run:
            plan = deploy_plan(bundle, board, target, service=service, wheel=wheel,
                               serve_source=source, plugins=plugin)  # fmt: skip
            console.print(f"[bold]dry run[/bold]: deploy would do ({len(plan)} steps)")
            for i, line in enumerate(plan, 1):
                console.print(f"  {i}. {line}", markup=False, highlight=False)
            return
        with console.status("deploying...") as status:
            res = deploy(
                bundle,
                board,
                target,
                service=service,
                wheel=wheel,
                serve_source=source,
                plugins=plugin,
                log=lambda m: (status.update(m), console.print(f"  {m}")),
            )
        for w in res.warnings:
            console.print(f"[yellow]warning:[/] {w}")
        console.print(
            f"[green]deployed[/] {bundle.name} to {res.host}:{res.bundle_path} "
            f"({res.machine}); smoke output matches this host; {res.timings['total']:.1f} s"
        )
        if res.unit_name:
            console.print(f"systemd unit {res.unit_name} installed and started")

    @app.command("serve")
    def serve_cmd(
        bundle: Path = typer.Argument(..., help="Bundle folder or zip."),
        source: str = typer.Option(
            "-",
            "--source",
            "-s",
            help="'-' (stdin), .npy file/folder, udp://127.0.0.1:PORT, serial://DEV?baud=N, "
            "mqtt[s]://HOST:PORT/PREFIX.",
        ),
        state_dir: Path = typer.Option(
            None, help="Folder for state.npz (resumed at start, saved atomically)."
        ),
        save_every_steps: int = typer.Option(None, help="Save the state every N steps."),
        save_every_s: float = typer.Option(60.0, help="Save the state every S seconds."),
        max_steps: int = typer.Option(None, help="Stop after N steps."),
        learn: bool = typer.Option(
            True, "--learn/--no-learn", help="Run the bundle's plasticity rules."
        ),
        emit: str = typer.Option("output", help="output, argmax or none (JSON lines on stdout)."),
        mode: str = typer.Option(None, help="float or int (default: the bundle's)."),
        plugin: list[str] = typer.Option(
            None, "--plugin", help="Module registering an app's node kinds (repeatable)."
        ),
        fmt: str = typer.Option(
            None,
            "--format",
            help="Message format: text or f32 (default: text for stdin/serial/"
            "files, f32 for UDP/MQTT).",
        ),
        hmac_key_file: Path = typer.Option(
            None, help="Key file (chmod 600): learn only from HMAC-authenticated UDP/MQTT frames."
        ),
        unauthenticated: str = typer.Option(
            "infer", help="Unauthenticated messages: infer (no learning) or reject."
        ),
        allow_remote: bool = typer.Option(
            False, "--allow-remote", help="Listen on / connect to non-loopback addresses."
        ),
        status_every_s: float = typer.Option(10.0, help="Log/publish the counters every S s."),
        queue_size: int = typer.Option(1024, help="Messages buffered before UDP/MQTT drops."),
        rcvbuf: int = typer.Option(4 << 20, help="UDP socket receive buffer in bytes."),
        mqtt_username: str = typer.Option(None, help="MQTT login (password: file or env)."),
        mqtt_password_file: Path = typer.Option(None, help="File holding the MQTT password."),
        mqtt_ca: Path = typer.Option(None, help="CA file verifying an mqtts:// broker."),
        mqtt_cert: Path = typer.Option(None, help="MQTT client certificate (mqtts://)."),
        mqtt_key: Path = typer.Option(None, help="MQTT client key (mqtts://)."),
        no_guard: bool = typer.Option(
            False, "--no-guard", help="No guard (default: roll back learning that hurts a check)."
        ),
        guard_every: int = typer.Option(500, help="Guard: check every N learning steps."),
        guard_holdout: int = typer.Option(64, help="Guard: first N messages form the check."),
    ) -> None:
        """Run a bundle as a device service on a stream (stdin, file, UDP, serial, MQTT).

        Bad messages are counted and skipped; learning only from authenticated sources;
        a guard (on by default) holds the first messages out as a check and rolls back
        learning that hurts it, printing each decision; the state is saved atomically
        and resumed at start.

        \b
        Examples:
            neuroplast serve model.zip -s udp://127.0.0.1:9750 --state-dir state/
            neuroplast serve model.zip -s inputs.npy --max-steps 100 --emit argmax --no-learn
        """
        import sys

        from neuroplast.boards.stream import mqtt_options, serve

        mqtt = mqtt_options(
            username=mqtt_username,
            password_file=mqtt_password_file,
            ca_file=mqtt_ca,
            cert_file=mqtt_cert,
            key_file=mqtt_key,
        )
        stats = serve(
            bundle,
            source,
            learn=learn,
            guard=not no_guard,
            guard_every=guard_every,
            guard_holdout=guard_holdout,
            state_dir=state_dir,
            save_every_steps=save_every_steps,
            save_every_s=save_every_s,
            max_steps=max_steps,
            emit=emit,
            mode=mode,
            handle_signals=True,
            plugins=plugin,
            fmt=fmt,
            hmac_key=hmac_key_file,
            unauthenticated=unauthenticated,
            allow_remote=allow_remote,
            status_every_s=status_every_s,
            queue_size=queue_size,
            rcvbuf=rcvbuf,
            mqtt=mqtt,
        )
        print(
            f"served {stats.steps} steps, {stats.saves} state saves, stopped by {stats.stopped_by}",
            file=sys.stderr,
        )
