"""The ``neuroplast`` command line: thin wrappers over public functions.

Core commands live here (``info``, ``targets``, ``run``, ``--version``); every other package
adds its own with a ``register(app)`` function in its ``cli.py``, found through the
``neuroplast.commands`` entry points. One convention holds across the whole tree (applied
by :class:`NeuroplastGroup`, checked by ``tests/core/test_cli_conventions.py``): a short flag
means the same everywhere (:data:`SHORT_FLAGS`), ``--json`` prints JSON on stdout, every
command's help ends with examples.

Exit status (:data:`EXIT_CODES`): 0 success; 1 a check that ran and failed
(:func:`check_failed`: does not fit, mismatch, a score below ``--min``); 2 bad usage or bad
input (a :class:`~neuroplast.errors.NeuroplastError`, or input too large to process: one
line ``error: ...`` naming what is wrong); 70 an internal error (a bug: one line asking to
rerun with ``--debug``); 130 interrupted. Tracebacks are printed only with the global
``--debug`` flag (or ``NEUROPLAST_DEBUG=1``).

Without typer and rich (``pip install neuroplast`` on a device) the command line is
:mod:`neuroplast.devicecli`: the device commands with the same flags, plain-text output.
"""

from __future__ import annotations

import errno
import importlib
import json
import os
import sys
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

__all__ = [
    "main",
    "build_app",
    "info_table",
    "command_modules",
    "check_failed",
    "exit_status",
    "apply_conventions",
    "command_group",
    "find_port",
    "GROUP_HELP",
    "PORT_FINDERS",
    "run_model",
    "COMMANDS_GROUP",
    "EXIT_CODES",
    "SHORT_FLAGS",
]

COMMANDS_GROUP = "neuroplast.commands"

#: exit status -> meaning (docs/cli.md shows this table; a test keeps them equal)
EXIT_CODES = {
    0: "success",
    1: "a check that ran and failed: does not fit, mismatch, a score below `--min`",
    2: "bad usage or bad input: one line `error: ...` naming what is wrong",
    70: "internal error (a bug): one line; rerun with `--debug` for the traceback",
    130: "interrupted (Ctrl-C)",
}

#: the one meaning of each short flag, in every command that has it
SHORT_FLAGS = {
    "-b": "--board",
    "-h": "--help",
    "-i": "--input",
    "-n": "--count",
    "-o": "--out",
    "-p": "--port",
    "-s": "--source",
}

#: rows of outputs `run` prints unless --rows says otherwise
RUN_ROWS = 20


def command_modules() -> list[str]:
    """Modules that contribute commands (entry-point group ``neuroplast.commands``)."""
    from importlib.metadata import entry_points

    return [ep.value for ep in sorted(entry_points(group=COMMANDS_GROUP), key=lambda e: e.name)]


#: help of command groups that several packages add commands to
GROUP_HELP = {
    "board": "Boards: profiles (list, show), connected boards (detect), and serial dev boards "
    "running the C reference firmware (virtual, ping, info, load, infer, monitor).",
    "fleet": "Fleets over SSH: deploy, status, collect and staged rollout with rollback.",
}

#: ``fn(board_name_or_None) -> [(port, board name), ...]``: connected boards; the serial
#: ``board`` commands use them when no ``--port`` is given (neuroplast.boards adds USB detection)
PORT_FINDERS: list[Callable[[str | None], list[tuple[str, str]]]] = []


def command_group(app: Any, name: str, aliases: tuple[str, ...] = ()) -> Any:
    """The sub-app ``name`` of ``app``, created on first use, so that several packages add
    commands to one group (``board``: profiles from neuroplast.boards, the serial link from
    neuroplast.firmware_bridge); ``aliases`` are hidden old spellings of the group."""
    import typer

    for info in app.registered_groups:
        if info.name == name:
            return info.typer_instance
    sub = typer.Typer(help=GROUP_HELP.get(name), no_args_is_help=True)
    app.add_typer(sub, name=name)
    for alias in aliases:
        app.add_typer(sub, name=alias, hidden=True)
    return sub


def find_port(board: str | None = None) -> tuple[str, str]:
    """``(port, board name)`` of the one connected board :data:`PORT_FINDERS` see; raises
    BoardError naming what to do when there is none or more than one."""
    from neuroplast.errors import BoardError

    hits = [h for finder in PORT_FINDERS for h in finder(board)]
    if len(hits) == 1:
        return hits[0]
    if not hits:
        raise BoardError(
            "no port given and no known board connected: pass --port PORT (or set "
            "NEUROPLAST_PORT); `neuroplast board virtual` starts a virtual board"
        )
    found = ", ".join(f"{p} ({b})" for p, b in hits)
    raise BoardError(f"several boards connected ({found}): pass --port PORT")


def check_failed(message: str) -> NoReturn:
    """End a command whose check ran and failed: ``check failed: message`` on stderr, exit 1."""
    print(f"check failed: {message}", file=sys.stderr)
    raise SystemExit(1)


def _fmt_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def info_rows(graph: Any) -> list[dict[str, Any]]:
    """Per-node cost of a graph plus a ``total`` row (what ``neuroplast info`` prints)."""
    from neuroplast.graph import cost, total_cost

    def row(name: str, kind: str, shape: tuple, c: Any) -> dict[str, Any]:
        return dict(name=name, kind=kind, output=list(shape), params=c.params, macs=c.macs,
                    synops=c.synops, param_bytes=c.param_bytes, state_bytes=c.state_bytes)  # fmt: skip

    rows = [row(r.name, r.kind, r.out_shape, r) for r in cost(graph)]
    return rows + [row("total", "", (), total_cost(graph))]


def info_table(graph: Any, title: str = "graph") -> Any:
    """A rich Table summarizing a graph: layers, params, MACs/synops per step, memory."""
    from rich.table import Table

    t = Table(title=title)
    for col in ("node", "kind", "output", "params", "MACs/step", "synops/step", "weights", "state"):
        t.add_column(col, justify="right" if col not in ("node", "kind") else "left")
    rows = info_rows(graph)
    for i, r in enumerate(rows):
        if i == len(rows) - 1:
            t.add_section()
        t.add_row(r["name"], r["kind"], "x".join(map(str, r["output"])), f"{r['params']:,}",
                  f"{r['macs']:,}", f"{r['synops']:,}", _fmt_bytes(r["param_bytes"]),
                  _fmt_bytes(r["state_bytes"]))  # fmt: skip
    return t


def describe_model(path: Path) -> dict[str, Any]:
    """What ``neuroplast info`` shows for any model file: ``{"format", "engine", "title",
    "rows", "graph"}``; ``graph`` is the Graph for bundles and graph formats, else None."""
    from neuroplast.formats import ENGINE_SUFFIXES, open_model, read_graph, sample_shape

    suffix = path.suffix.lower()
    if suffix in ENGINE_SUFFIXES and path.is_file():
        m = open_model(path)
        rows = m.describe()
        title = f"{path.name} ({ENGINE_SUFFIXES[suffix]}, input {sample_shape(m)})"
        return dict(format=suffix[1:], engine=ENGINE_SUFFIXES[suffix], title=title, rows=rows,
                    graph=None)  # fmt: skip
    if path.is_dir() or suffix == ".zip":
        from neuroplast.bundle import load_bundle

        b = load_bundle(path)
        title = f"{path.name} (bundle, mode {b.mode}, dt {b.graph.dt:g} s)"
        return dict(format="bundle", engine="neuroplast", title=title, rows=info_rows(b.graph),
                    graph=b.graph, plasticity=b.plasticity)  # fmt: skip
    graph = read_graph(path)
    title = f"{path.name} ({suffix[1:]}, dt {graph.dt:g} s)"
    return dict(format=suffix[1:], engine="neuroplast", title=title, rows=info_rows(graph),
                graph=graph)  # fmt: skip


def run_model(path: Path, input: Path, mode: str | None = None) -> dict[str, Any]:
    """Run any model file on an input file in its own engine (``neuroplast run``).

    A bundle or graph format runs in the neuroplast runtime: the input is one time step
    (the input shape) or a window ``(T, *shape)``. ONNX and TFLite run in onnxruntime /
    LiteRT: the input is one sample or a batch ``(B, *shape)``. Returns ``{"output",
    "shape", "engine", "mode", "axis"}`` (``axis``: ``"step"`` or ``"sample"``).
    """
    import numpy as np

    from neuroplast.arrayfile import load_array
    from neuroplast.errors import DataError
    from neuroplast.formats import open_model, sample_shape

    model = open_model(path, mode=mode)
    shape = sample_shape(model)
    x = load_array(input, shape=None if -1 in shape else shape)  # shape: for raw files
    stateful = hasattr(model, "step")
    try:
        if stateful:
            y = model.step(x) if x.shape == shape else model.run(x)
        else:
            y = model.run(x)
    except DataError as e:
        raise DataError(f"{input}: {e}") from None
    y = np.asarray(y)
    engine = f"neuroplast runtime, {model.mode}" if stateful else model.name
    return dict(output=y, shape=list(y.shape), engine=engine, mode=getattr(model, "mode", None),
                axis="step" if stateful else "sample")  # fmt: skip


# ------------------------------------------------------------------ conventions
def _type_word(p: Any) -> str:
    """PATH / INT / FLOAT / TEXT for an option's value (typer with or without click)."""
    desc = getattr(p, "type_descriptor", None)
    if desc is not None:
        ann = desc.annotation
        while typing.get_args(ann) and typing.get_origin(ann) is not None:
            ann = next(a for a in typing.get_args(ann) if a is not type(None))
        name = getattr(ann, "__name__", str(ann)).lower()
    else:
        name = getattr(getattr(p, "type", None), "name", "text").lower()
    if "path" in name:
        return "PATH"
    return {"int": "INT", "integer": "INT", "float": "FLOAT"}.get(name, "TEXT")


def apply_conventions(cmd: Any) -> None:
    """Give every parameter under ``cmd`` a conventional metavar: none for flags, PATH /
    INT / FLOAT / TEXT for option values, the upper-case name for arguments (``BUNDLE``,
    ``[PATH]`` when optional, ``FILES...`` when repeated) in help and usage lines."""
    for sub in getattr(cmd, "commands", {}).values():
        apply_conventions(sub)
    if hasattr(cmd, "get_help_option"):  # -h/--help is built per context: no value to show
        make = cmd.get_help_option

        def help_option(ctx: Any, _make: Any = make) -> Any:
            opt = _make(ctx)
            if opt is not None:
                opt.metavar = ""
            return opt

        cmd.get_help_option = help_option
    for p in getattr(cmd, "params", []):
        if p.param_type_name == "option":
            if p.metavar is None:
                p.metavar = "" if getattr(p, "is_flag", False) else _type_word(p)
            continue
        if p.param_type_name != "argument":
            continue
        name = p.metavar or p.name.upper()
        p.metavar = name
        if hasattr(p, "display_type_rich"):  # the name says it: no <path> type beside it
            p.display_type_rich = lambda ctx: None
        usage = name + ("..." if p.nargs != 1 else "")
        usage = usage if p.required else f"[{usage}]"
        p.get_usage_pieces = lambda ctx, _u=usage: [_u]


def _group_class() -> type:
    from typer.core import TyperGroup

    class NeuroplastGroup(TyperGroup):
        """The root command group: applies :func:`apply_conventions` to the whole tree once
        typer has built it (every registered command included)."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            apply_conventions(self)

        def invoke(self, ctx: Any) -> Any:
            # errors become exit codes here (not only in main()), so that every way of
            # invoking the app, typer's test runner included, behaves as the shell does
            try:
                return super().invoke(ctx)
            except Exception as e:
                if type(e).__module__.split(".")[0] in ("click", "typer"):
                    raise  # usage errors and Exit: click reports them (exit 2 / the code)
                raise SystemExit(exit_status(e)) from None
            except KeyboardInterrupt as e:
                raise SystemExit(exit_status(e)) from None

    return NeuroplastGroup


def backend_report(path: Path | None, as_json: bool = False) -> str:
    """What ``neuroplast info --backend`` prints: the runtime backend in use (native
    compiled kernels or numpy) and, for a bundle or .nir model, whether each mode runs its
    graph as one native plan per step (else why not)."""
    from neuroplast.errors import DataError, NeuroplastError
    from neuroplast.runtime import Runtime
    from neuroplast.runtime.native import backend_name, native_module

    m = native_module()
    rep: dict = {
        "backend": backend_name(),
        "module": getattr(m, "__file__", None),
        "kernels": "firmware_bridge/firmware/np_kernels.c (int), sdk/_native.c (int conv fast paths, float, STDP)"
        if m is not None
        else None,
    }
    if m is None:
        rep["reason"] = "neuroplast._native not built or NEUROPLAST_BACKEND=numpy"
    if path is not None:
        g = describe_model(path)["graph"]
        if g is None:
            raise DataError(f"{path}: --backend with a model needs a bundle or .nir file")
        for mode in ("float", "int"):
            try:
                rt = Runtime(g, mode=mode)
            except NeuroplastError as e:
                rep[mode] = f"not runnable: {e}"
                continue
            rep[mode] = rt.backend + (f" ({rt.backend_reason})" if rt.backend_reason else "")
    if as_json:
        return json.dumps(rep)
    return "\n".join(f"{k}: {v}" for k, v in rep.items() if v is not None)


# ------------------------------------------------------------------ the app
def build_app() -> Any:
    import typer
    from rich.console import Console

    import neuroplast

    app = typer.Typer(
        name="neuroplast",
        cls=_group_class(),
        help="Edge inference and on-device learning: QAT export, runtime, boards, apps.\n\n"
        "Exit status: 0 success, 1 a check failed (does not fit, mismatch, below --min), "
        "2 bad usage or input, 70 internal error. Docs: docs/cli.md.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    console = Console()
    from neuroplast.errors import DataError

    def version_cb(value: bool) -> None:
        if value:
            console.print(f"neuroplast {neuroplast.__version__}")
            raise typer.Exit()

    @app.callback()
    def _root(
        version: bool = typer.Option(
            False,
            "--version",
            callback=version_cb,
            is_eager=True,
            help="Print the version and exit.",
        ),
        debug: bool = typer.Option(
            False, "--debug", help="Print the traceback of an error (also NEUROPLAST_DEBUG=1)."
        ),
    ) -> None:
        """neuroplast command line."""
        _DEBUG["on"] = _DEBUG["on"] or debug

    @app.command("info")
    def info_cmd(
        path: Path = typer.Argument(None, help="Bundle folder/zip, .nir, .onnx or .tflite."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
        backend: bool = typer.Option(
            False, "--backend", help="Say which runtime backend is in use (native or numpy)."
        ),
    ) -> None:
        """Summarize a model: layers, parameters, MACs/synops per step, memory.

        Bundles and .nir files are read into the graph IR (cost per node); .onnx and
        .tflite files are listed by their own engines (operators, parameters).
        ``--backend`` says whether the compiled kernels are in use (and, with a bundle or
        .nir model, whether its graph runs as one native call per step).

        \b
        Examples:
            neuroplast info model.zip
            neuroplast info model.tflite --json
            neuroplast info --backend
        """
        if backend:
            print(backend_report(path, as_json))
            return
        if path is None:
            raise DataError("info needs a model path (or --backend)")
        d = describe_model(path)
        if as_json:
            keys = ("format", "engine", "title", "rows")
            print(json.dumps({k: d[k] for k in keys}, default=list))
            return
        if d["graph"] is not None:
            console.print(info_table(d["graph"], title=d["title"]))
            if d.get("plasticity"):
                console.print(f"plasticity: {json.dumps(d['plasticity'])[:300]}")
            return
        from rich.table import Table

        t = Table(title=d["title"])
        for col in ("node", "op", "output", "dtype", "params"):
            t.add_column(col, justify="right" if col == "params" else "left")
        for r in d["rows"]:
            t.add_row(r["name"], r["op"], "x".join(map(str, r["shape"])), r["dtype"],
                      f"{r['params']:,}")  # fmt: skip
        t.add_section()
        t.add_row("total", "", "", "", f"{sum(r['params'] for r in d['rows']):,}")
        console.print(t)

    @app.command("targets")
    def targets_cmd(
        path: Path = typer.Argument(
            None, help="A model (bundle or .nir): say which targets can run it and why not."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
        markdown: bool = typer.Option(
            False, "--markdown", help="Print the matrix as Markdown (docs/capabilities.md)."
        ),
    ) -> None:
        """The capability matrix: node kind x target, "yes" or "no: reason".

        With a model, each target's verdict for that model, naming every node it refuses.

        \b
        Examples:
            neuroplast targets
            neuroplast targets model.zip --json
        """
        from neuroplast.targets import PLUGIN_ERRORS, TARGETS, capability_matrix, load_plugins

        load_plugins()
        names = sorted(TARGETS)
        if markdown:
            from neuroplast.targets import matrix_markdown

            print(matrix_markdown(names, shipped_only=True))
            return
        if path is None:
            m = capability_matrix(names)
            if as_json:
                print(json.dumps({k: {t: {"supported": ok, "note": n} for t, (ok, n) in row.items()}
                                  for k, row in m.items()}))  # fmt: skip
                return
            from rich.table import Table

            t = Table(title="node kind x target (neuroplast targets MODEL for a model's verdict)")
            t.add_column("kind")
            for n in names:
                t.add_column(n)
            for kind, row in m.items():
                t.add_row(kind, *("yes" if ok else "[red]no[/red]" for ok, _ in row.values()))
            console.print(t)
            for name, err in PLUGIN_ERRORS.items():
                console.print(f"[yellow]plugin {name} not loaded: {err}[/yellow]")
            return
        from neuroplast.formats import read_graph

        graph = read_graph(path)
        verdicts = {n: [str(r) for r in TARGETS[n].refusals(graph)] for n in names}
        if as_json:
            print(json.dumps({n: {"ok": not v, "refusals": v} for n, v in verdicts.items()}))
            return
        for n in names:
            ok, why = TARGETS[n].available()
            tail = "" if ok else f"  [yellow]({why})[/yellow]"
            if not verdicts[n]:
                console.print(f"[green]yes[/green] {n}: {TARGETS[n].title}{tail}")
            else:
                console.print(f"[red]no[/red]  {n}: {verdicts[n][0]}")
                for extra in verdicts[n][1:]:
                    console.print(f"      {extra}")

    @app.command("run")
    def run_cmd(
        path: Path = typer.Argument(..., help="Bundle folder/zip, .nir, .onnx or .tflite."),
        input: Path = typer.Option(
            ...,
            "--input",
            "-i",
            help=".npy, FILE.npz[:ARRAY] or raw float32 file: one step/sample (the input "
            "shape) or a window (T, *shape) / batch (B, *shape).",
        ),
        mode: str = typer.Option(
            None, "--mode", help="float or int (bundles and .nir; default: the bundle's)."
        ),
        rows: int = typer.Option(RUN_ROWS, "--rows", help="Rows of output to print (0: all)."),
        as_json: bool = typer.Option(False, "--json", help="Print every output as JSON."),
    ) -> None:
        """Run a model on an input file in its own engine and print the outputs.

        Bundles and .nir run in the neuroplast runtime (stateful: a window is T time
        steps); .onnx runs in onnxruntime and .tflite in LiteRT (a batch of samples).
        Inputs are channels first for every format.

        \b
        Examples:
            neuroplast run model.zip -i window.npy
            neuroplast run model.tflite -i batch.npy --json
        """
        import numpy as np

        r = run_model(path, input, mode)
        y = r["output"]
        if as_json:
            print(json.dumps({**r, "output": y.tolist()}))
            return
        from rich.table import Table

        table_rows = y if y.ndim > 1 else y[None]
        width = int(np.prod(table_rows.shape[1:]))
        shown = len(table_rows) if rows <= 0 else min(rows, len(table_rows))
        cols = f", first 16 of {width} values" if width > 16 else ""
        t = Table(title=f"output {tuple(y.shape)} ({r['engine']}{cols})")
        t.add_column(r["axis"])
        t.add_column("values")
        for i, v in enumerate(table_rows[:shown]):
            t.add_row(
                str(i), np.array2string(np.asarray(v).ravel()[:16], precision=4, max_line_width=200)
            )
        console.print(t)
        if shown < len(table_rows):
            console.print(
                f"showing {shown} of {len(table_rows)} {r['axis']}s (--rows 0 for all, "
                "--json for every value)"
            )

    for mod in command_modules():
        try:
            module = importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name != mod:  # a real missing dependency: fail loudly
                raise
            continue  # package ships no commands (tests check the expected set)
        module.register(app)
    return app


_DEBUG = {"on": False}


def _pop_debug(args: list[str]) -> bool:
    """Remove the global ``--debug`` flag (anywhere before a ``--``); True if it was there."""
    end = args.index("--") if "--" in args else len(args)
    found = "--debug" in args[:end]
    args[:end] = [a for a in args[:end] if a != "--debug"]
    return found or os.environ.get("NEUROPLAST_DEBUG", "") not in ("", "0")


def _one_line(e: BaseException) -> str:
    return " | ".join(ln.strip() for ln in str(e).splitlines() if ln.strip()) or type(e).__name__


#: OSError numbers that mean the path a user gave cannot be used as asked (exit 2): a
#: command that meets one deep inside reports it like a missing file, not as a bug
_PATH_ERRNOS = frozenset({
    errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG, errno.EACCES, errno.EPERM,
    errno.EROFS, errno.ENOSPC, errno.EEXIST, errno.ELOOP,
})  # fmt: skip


def _clip(s: str, n: int = 120) -> str:
    return s if len(s) <= n else f"{s[: n // 2]}...{s[-n // 2 :]}"


def exit_status(e: BaseException) -> int:
    """Report ``e`` as one line on stderr (with the traceback under ``--debug``) and return
    its exit status (:data:`EXIT_CODES`)."""
    import traceback

    from neuroplast.errors import NeuroplastError

    if isinstance(e, KeyboardInterrupt):
        print("error: interrupted", file=sys.stderr)
        return 130
    if _DEBUG["on"] or os.environ.get("NEUROPLAST_DEBUG", "") not in ("", "0"):
        traceback.print_exception(type(e), e, e.__traceback__)
    if isinstance(e, NeuroplastError):
        print(f"error: {type(e).__name__}: {_one_line(e)}", file=sys.stderr)
        return 2
    if isinstance(e, (MemoryError, RecursionError)):  # an input too large or deep for this host
        print(f"error: input too large to process ({type(e).__name__})", file=sys.stderr)
        return 2
    if isinstance(e, OSError) and e.errno in _PATH_ERRNOS:  # the user's path, not a bug
        name = f": {_clip(str(e.filename))}" if e.filename is not None else ""
        print(f"error: {e.strerror}{name}", file=sys.stderr)
        return 2
    print(
        f"error: internal error: {type(e).__name__}: {_one_line(e)} (rerun with --debug "
        "for the traceback and report it)",
        file=sys.stderr,
    )
    return 70


def _has_typer() -> bool:
    try:
        import rich  # noqa: F401
        import typer  # noqa: F401
    except ImportError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    """Console entry point; returns the exit status (see the module docstring)."""
    args = list(sys.argv[1:] if argv is None else argv)
    _DEBUG["on"] = _pop_debug(args)
    try:
        if not _has_typer():  # a device install: the plain-text device commands
            from neuroplast.devicecli import main as device_main

            return device_main(args)
        app = build_app()
        app(args=args, prog_name="neuroplast")  # standalone: usage errors exit via SystemExit
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except (Exception, KeyboardInterrupt) as e:  # noqa: BLE001 - outside a command (startup)
        return exit_status(e)
    finally:
        _DEBUG["on"] = False
    return 0


if __name__ == "__main__":
    sys.exit(main())
