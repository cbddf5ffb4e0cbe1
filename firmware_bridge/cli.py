"""``neuroplast board ...``: thin CLI wrappers over :class:`Board`, :class:`VirtualBoard` and
:class:`~neuroplast.firmware_bridge.qemu.QemuBoard`.

Commands: ``virtual`` (start the C firmware on a pty and print its path), ``qemu`` (the
same firmware cross-built for Cortex-M, in QEMU), ``ping``, ``info``, ``load`` (model and
learning rule), ``learn`` (on-board learning into a new bundle), ``infer``,
``monitor``, ``selftest`` (every layer kind against the host runtime), ``project`` (a
ready firmware project for a real board), in the ``board`` group shared with the board
profiles (neuroplast.boards). ``--port`` defaults to ``$NEUROPLAST_PORT``, else the one
connected board that ``neuroplast board detect`` finds; ``--baud`` to ``$NEUROPLAST_BAUD``
(or 115200). ``--trace`` hex-dumps every frame.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

__all__ = ["register"]


def register(app: Any) -> None:
    """Add the serial-link commands to the ``board`` command group of a Typer app."""
    import typer
    from rich.console import Console
    from rich.table import Table

    from neuroplast.cli import check_failed, command_group, find_port

    console = Console()
    board_app = command_group(app, "board", aliases=("boards",))

    port_opt = typer.Option(
        os.environ.get("NEUROPLAST_PORT"),
        "--port",
        "-p",
        help="Serial port or pyserial URL ($NEUROPLAST_PORT; default: the one detected board).",
    )
    baud_opt = typer.Option(
        int(os.environ.get("NEUROPLAST_BAUD", "115200")), "--baud", help="Baud rate."
    )
    trace_opt = typer.Option(False, "--trace", help="Hex-dump every frame to stderr.")
    timeout_opt = typer.Option(1.0, "--timeout", help="Reply timeout per attempt (s).")

    def _open(port: str | None, baud: int, trace: bool, timeout: float) -> Any:
        from neuroplast.firmware_bridge.client import Board

        if not port:
            port, name = find_port()
            console.print(f"using {port} ({name}, detected)", style="dim")
        return Board.connect(port, baud=baud, trace=trace, timeout=timeout)

    def _caps_table(caps: Any) -> Table:
        t = Table(title=f"board {caps.name!r}")
        t.add_column("field")
        t.add_column("value", justify="right")
        rows = [
            ("protocol", str(caps.protocol_version)),
            ("firmware", ".".join(map(str, caps.firmware_version))),
            ("RAM (bytes)", f"{caps.ram_bytes:,}"),
            ("max model (bytes)", f"{caps.max_model_bytes:,}"),
            ("max payload", f"{caps.max_payload:,}"),
            ("ops", ", ".join(caps.ops)),
            (
                "model loaded",
                f"{caps.model_loaded} ({caps.n_layers} layers, {caps.in_size} -> {caps.out_size})",
            ),
            ("learning", str(caps.learning)),
        ]
        for k, v in rows:
            t.add_row(k, v)
        return t

    def _serve(proc: Any, label: str, duration: float) -> None:
        """Print the pty path of a started board process and wait (Ctrl-C or duration)."""
        console.print(f"{label} on [bold]{proc.port}[/bold]")
        print(proc.port, flush=True)
        try:
            t_end = time.monotonic() + duration if duration > 0 else None
            while t_end is None or time.monotonic() < t_end:
                time.sleep(0.1 if t_end is None else max(0.0, min(0.1, t_end - time.monotonic())))
                if proc.proc is None or proc.proc.poll() is not None:
                    break
        except KeyboardInterrupt:
            pass

    duration_opt = typer.Option(
        0.0, "--duration", help="Stop after this many seconds (0 = until Ctrl-C)."
    )

    @board_app.command("virtual")
    def virtual_cmd(
        baud: int = typer.Option(0, "--baud", help="Emulate this UART line rate (0 = pty speed)."),
        duration: float = duration_opt,
        staging: int = typer.Option(
            None, "--max-model", help="Model buffer in bytes (mimic a small board)."
        ),
    ) -> None:
        """Build and start the C reference firmware on a pseudo-terminal; print its path.

        \b
        Examples:
            neuroplast board virtual
            neuroplast board virtual --baud 115200 --duration 60
        """
        from neuroplast.firmware_bridge.virtual import VirtualBoard

        with VirtualBoard(baud=baud, staging=staging) as vb:
            _serve(vb, "virtual board" + (f" (emulating {baud} baud)" if baud else ""), duration)

    @board_app.command("qemu")
    def qemu_cmd(
        core: str = typer.Option("m4", "--core", help="m4 (mps2-an386), m7 (an500), m3, m0plus."),
        icount: bool = typer.Option(
            False,
            "--icount",
            help="Count instructions (-icount shift=0): STEP_CYCLES = instructions.",
        ),
        duration: float = duration_opt,
    ) -> None:
        """Run the firmware cross-built for Cortex-M in qemu-system-arm; print its pty.

        The firmware's UART is a pseudo-terminal: use the printed path as --port.

        \b
        Examples:
            neuroplast board qemu
            neuroplast board qemu --duration 60
        """
        from neuroplast.firmware_bridge.qemu import QemuBoard

        with QemuBoard(core, icount=icount) as qb:
            _serve(qb, f"QEMU {qb.core.cpu} ({qb.core.machine})", duration)

    @board_app.command("ping")
    def ping_cmd(
        port: str = port_opt,
        baud: int = baud_opt,
        count: int = typer.Option(10, "--count", "-n", help="Number of pings."),
        size: int = typer.Option(32, "--size", help="Payload bytes per ping."),
        trace: bool = trace_opt,
        timeout: float = timeout_opt,
    ) -> None:
        """Echo test: round-trip times and link counters.

        \b
        Examples:
            neuroplast board ping -p /dev/ttyACM0
            neuroplast board ping -n 100 --size 200
        """
        with _open(port, baud, trace, timeout) as b:
            payload = bytes(i % 256 for i in range(size))
            rtts = [b.ping(payload) for _ in range(count)]
        t = Table(title=f"ping {port} ({size} B x {count})")
        for c in ("min ms", "mean ms", "max ms", "retransmits"):
            t.add_column(c, justify="right")
        t.add_row(
            f"{min(rtts) * 1e3:.3f}",
            f"{sum(rtts) / len(rtts) * 1e3:.3f}",
            f"{max(rtts) * 1e3:.3f}",
            str(b.counters.retransmits),
        )
        console.print(t)

    @board_app.command("info")
    def info_cmd(
        port: str = port_opt,
        baud: int = baud_opt,
        trace: bool = trace_opt,
        timeout: float = timeout_opt,
    ) -> None:
        """Capabilities (HELLO/CAPS) and counters (STATS) of a board.

        \b
        Examples:
            neuroplast board info -p /dev/ttyACM0
        """
        with _open(port, baud, trace, timeout) as b:
            caps = b.caps
            stats = b.stats()
        console.print(_caps_table(caps))
        t = Table(title="counters")
        t.add_column("counter")
        t.add_column("value", justify="right")
        for k, v in stats.items():
            t.add_row(k, f"{v:,}")
        console.print(t)

    @board_app.command("load")
    def load_cmd(
        bundle: Path = typer.Argument(..., help="Bundle folder or zip (run in integer mode)."),
        port: str = port_opt,
        baud: int = baud_opt,
        learning: bool = typer.Option(
            True,
            "--learning/--no-learning",
            help="Send the bundle's plasticity rules (learning stays off until `board learn`).",
        ),
        trace: bool = trace_opt,
        timeout: float = timeout_opt,
    ) -> None:
        """Send a bundle to a board: its model image (chunked, CRC-checked) and its rules.

        The bundle's plasticity.json rule (int_stdp) and learned state are configured on
        the board, learning off; a rule the board cannot run is refused before anything
        is sent (--no-learning loads for inference only).

        \b
        Examples:
            neuroplast board load model.zip -p /dev/ttyACM0
            neuroplast board load model.zip --no-learning
        """
        from rich.progress import Progress

        import neuroplast
        from neuroplast.firmware_bridge.image import build_image
        from neuroplast.firmware_bridge.learning import (
            board_rule,
            check_image,
            configure_board_learning,
        )

        rt = neuroplast.load(bundle, mode="int")
        rule = board_rule(rt) if learning else None  # refuses up front, in one line
        image = build_image(rt)
        if rule is not None:
            check_image(image, rule)
        with (
            _open(port, baud, trace, timeout) as b,
            Progress(console=console, transient=True) as prog,
        ):
            task = prog.add_task("loading", total=len(image.data))
            b.load(image, progress=lambda done, total: prog.update(task, completed=done))
            if rule is not None:
                configure_board_learning(b, rt)
            caps = b.info()
        console.print(
            f"loaded {len(image.data):,} bytes, {len(image.layers)} layers ({' -> '.join(l.name for l in image.layers)}); board reports {caps.in_size} -> {caps.out_size}"
        )
        if rule is not None:
            console.print(
                f"learning rule int_stdp on {rule.layer!r} configured (off; `neuroplast board learn` runs it)"
            )

    @board_app.command("learn")
    def learn_cmd(
        bundle: Path = typer.Argument(..., help="Bundle folder or zip with an int_stdp rule."),
        inputs: Path = typer.Argument(..., help="Input stream (T, *input_shape): .npy, .npz, raw."),
        out: Path = typer.Option(
            None,
            "--out",
            "-o",
            help="New bundle with the learned state (default: neuroplast-out/board/NAME.learned.zip).",
        ),
        force: bool = typer.Option(False, "--force", help="Replace an existing --out."),
        port: str = port_opt,
        baud: int = baud_opt,
        trace: bool = trace_opt,
        timeout: float = timeout_opt,
    ) -> None:
        """Learn on the board over a stream and pull the learned state into a new bundle.

        Loads the bundle's model, rule and learned state onto the board, streams INPUTS
        with on-board learning on (int_stdp, bit-exact with the host engine), then pulls
        the weights, traces and generator back and writes them as the state of a new
        bundle (never over the source). `neuroplast learn` or `board learn` continue from it.

        \b
        Examples:
            neuroplast board learn model.zip stream.npy -p /dev/ttyACM0
            neuroplast board learn model.zip stream.npy -o learned.zip --force
        """
        import neuroplast
        from neuroplast.arrayfile import load_array
        from neuroplast.errors import DataError
        from neuroplast.firmware_bridge.learning import (
            board_rule,
            check_output,
            learn_on_board,
            learned_bundle_path,
            write_learned_bundle,
        )

        out = out or learned_bundle_path(bundle)
        check_output(bundle, out, force)  # before any board traffic
        rt = neuroplast.load(bundle, mode="int")
        if board_rule(rt) is None:
            raise DataError(f"bundle {str(bundle)!r} has no plasticity rules (plasticity.json)")
        shape = tuple(rt.shapes[rt.inputs[0]])
        seq = load_array(inputs, shape=shape)
        if seq.ndim != len(shape) + 1 or tuple(seq.shape[1:]) != shape or seq.shape[0] == 0:
            raise DataError(f"inputs must be (T, *{shape}) with T >= 1, got shape {seq.shape}")
        t0 = time.perf_counter()
        with _open(port, baud, trace, timeout) as b:
            res = learn_on_board(b, rt, seq, seq.shape[0])
        dt = time.perf_counter() - t0
        path = write_learned_bundle(bundle, out, res.state, force=force)
        console.print(
            f"learned on the board: {res.steps:,} steps in {dt:.1f} s, {res.changes:,} weight "
            f"changes, {res.synapses_moved:,} synapses moved, output rate {res.output_rate:.3f}"
        )
        console.print(f"wrote {path}")

    @board_app.command("infer")
    def infer_cmd(
        bundle: Path = typer.Argument(
            ..., help="The bundle the board runs (for shapes/quantization)."
        ),
        input: Path = typer.Option(
            ..., "--input", "-i", help=".npy input (T, *shape): int8 codes or floats."
        ),
        port: str = port_opt,
        baud: int = baud_opt,
        load: bool = typer.Option(True, "--load/--no-load", help="Load the bundle first."),
        output: Path = typer.Option(None, "--out", "-o", help="Write outputs to this .npy."),
        check: bool = typer.Option(
            False, "--check", help="Compare with the host integer runtime (exit 1 if not equal)."
        ),
        trace: bool = trace_opt,
        timeout: float = timeout_opt,
    ) -> None:
        """Run a window of inputs on the board; optionally check against the host runtime.

        \b
        Examples:
            neuroplast board infer model.zip -i window.npy -p /dev/ttyACM0 --check
            neuroplast board infer model.zip -i window.npy --no-load -o out.npy
        """
        import numpy as np

        import neuroplast
        from neuroplast.arrayfile import load_array
        from neuroplast.firmware_bridge.errors import BridgeError
        from neuroplast.firmware_bridge.image import build_image

        rt = neuroplast.load(bundle, mode="int")
        x = load_array(input, shape=rt.shapes[rt.inputs[0]])
        image = build_image(rt)
        with _open(port, baud, trace, timeout) as b:
            if load:
                b.load(image)
            else:
                caps = b.info()
                if not caps.model_loaded or (caps.in_size, caps.out_size) != (
                    image.in_size,
                    image.out_size,
                ):
                    raise BridgeError("the board's model does not match this bundle; use --load")
                b.image = image
            t0 = time.perf_counter()
            y = b.infer(x)
            dt = time.perf_counter() - t0
        if output:
            np.save(output, y)
        t = Table(title=f"board output {y.shape} in {dt * 1e3:.1f} ms")
        t.add_column("step")
        t.add_column("values")
        for i, r in enumerate(y[:20]):
            t.add_row(str(i), np.array2string(r.ravel()[:16], max_line_width=200))
        console.print(t)
        if check:
            rt.reset()
            ref = np.asarray(rt.run(x if x.ndim > len(image.in_shape) else x[None]))
            same = np.array_equal(ref.astype(np.int64), y)
            console.print(
                f"host integer runtime: {'[green]bit-identical[/green]' if same else '[red]MISMATCH[/red]'}"
            )
            if not same:
                check_failed("board output differs from the host integer runtime")

    @board_app.command("selftest")
    def selftest_cmd(
        port: str = port_opt,
        baud: int = baud_opt,
        graphs: int = typer.Option(5, "--graphs", help="Random graphs per layer kind."),
        steps: int = typer.Option(8, "--steps", help="Time steps per graph."),
        kind: list[str] = typer.Option(None, "--kind", help="Only these node kinds (repeat)."),
        seed: int = typer.Option(0, "--seed"),
        trace: bool = trace_opt,
        timeout: float = timeout_opt,
    ) -> None:
        """Check every layer kind on a board against the host integer runtime.

        Random graphs of each kind run on the board and on the host; exit 1 unless every
        output is bit-identical (use it on a new port or a real board).

        \b
        Examples:
            neuroplast board selftest --port /dev/ttyACM0
            neuroplast board selftest --graphs 2 --kind Conv2d --kind LIF
        """
        from neuroplast.firmware_bridge.selftest import check_board

        with _open(port, baud, trace, timeout) as b:
            res = check_board(b, kinds=kind or None, graphs=graphs, steps=steps, seed=seed)
            name = b.caps.name
        t = Table(title=f"self-test on {name!r}: {graphs} random graphs x {steps} steps per kind")
        for c in ("kind", "graphs", "values", "differing", "arena as predicted", "errors"):
            t.add_column(c, justify="left" if c == "kind" else "right")
        for r in res.values():
            t.add_row(r.kind, str(r.graphs), f"{r.values:,}", str(r.mismatches),
                      "yes" if not r.arena_mismatches else f"no ({r.arena_mismatches})",
                      str(len(r.errors)))  # fmt: skip
        console.print(t)
        for r in res.values():
            for e in r.errors[:3]:
                console.print(f"[red]{r.kind}[/red]: {e}")
        if not all(r.ok and not r.arena_mismatches for r in res.values()):
            console.print("[red]the board differs from the host integer runtime[/red]")
            raise typer.Exit(1)
        console.print("[green]bit-identical to the host integer runtime[/green]")

    @board_app.command("project")
    def project_cmd(
        bundle: Path = typer.Argument(..., help="Bundle folder or zip to compile in."),
        out: Path = typer.Option(..., "--out", "-o", help="New folder for the project."),
        target: str = typer.Option("pio", "--target", help="pio, arduino, pico, idf or stm32cube."),
        board: str = typer.Option(
            "nano33ble", "--board", help="Board profile (PlatformIO env / Arduino FQBN)."
        ),
    ) -> None:
        """Write a ready firmware project for a real board and print the flashing steps.

        The folder holds the firmware sources, the board's port, the bundle's model compiled
        in and the build files.

        \b
        Examples:
            neuroplast board project model.zip --target pio --board nano33ble --out fw/
            neuroplast board project model.zip --target pico --out pico_fw/
        """
        from neuroplast.firmware_bridge.image import image_from_bundle
        from neuroplast.firmware_bridge.project import write_project

        image = image_from_bundle(bundle)
        proj = write_project(image, target, out, board=board, name=Path(bundle).name)
        console.print(
            f"wrote {proj.root} ({target}): firmware + {proj.src.relative_to(proj.root.parent)}"
            f"/np_model_image.c ({len(image.data):,} B model, arena {image.arena_bytes:,} B)"
        )
        print(proj.steps)

    @board_app.command("monitor")
    def monitor_cmd(
        port: str = port_opt,
        baud: int = baud_opt,
        interval: float = typer.Option(1.0, "--interval", help="Seconds between polls."),
        count: int = typer.Option(
            0, "--count", "-n", help="Stop after this many polls (0 = until Ctrl-C)."
        ),
        trace: bool = trace_opt,
        timeout: float = timeout_opt,
    ) -> None:
        """Poll the board's counters and print its LOG lines.

        \b
        Examples:
            neuroplast board monitor -p /dev/ttyACM0
            neuroplast board monitor --interval 0.5 -n 20
        """
        with _open(port, baud, trace, timeout) as b:
            prev: dict[str, int] | None = None
            n = 0
            try:
                while count == 0 or n < count:
                    stats = b.stats()
                    for level, text in b.logs:
                        console.print(f"[dim]log[{level}][/dim] {text}")
                    b.logs.clear()
                    delta = {k: v - prev[k] for k, v in stats.items()} if prev else {}
                    busy = ", ".join(
                        f"{k}+{v}"
                        for k, v in delta.items()
                        if v
                        and k not in ("uptime_ms", "rx_bytes", "tx_frames", "rx_frames", "executed")
                    )
                    console.print(
                        f"uptime {stats['uptime_ms'] / 1e3:8.1f} s  rx {stats['rx_bytes']:,} B  frames {stats['rx_frames']:,}  steps {stats['infer_steps']:,}  learn {stats['learn_updates']:,}  errors crc={stats['rx_crc_errors']} framing={stats['rx_framing_errors']}  {busy}"
                    )
                    prev = stats
                    n += 1
                    if count == 0 or n < count:
                        time.sleep(interval)
            except KeyboardInterrupt:
                pass
