"""The ``neuroplast`` command line: thin wrappers over public functions.

Core commands live here (``info``, ``run``, ``--version``); every other package adds
its own with a ``register(app)`` function in its ``cli.py``.

Exit status: 0 success; 1 a check that ran and failed; 2 bad usage or bad input (a
:class:`~neuroplast.errors.NeuroplastError`, or input too large to process: one line
``error: ...`` naming the file); 70 an internal error (a bug: one line asking to rerun
with ``--debug``). Tracebacks are printed only with the global ``--debug`` flag (or
``NEUROPLAST_DEBUG=1``).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any

__all__ = ["main", "build_app", "info_table", "command_modules", "COMMANDS_GROUP"]

COMMANDS_GROUP = "neuroplast.commands"


def command_modules() -> list[str]:
    """Modules that contribute commands (entry-point group ``neuroplast.commands``)."""
    from importlib.metadata import entry_points

    return [ep.value for ep in sorted(entry_points(group=COMMANDS_GROUP), key=lambda e: e.name)]


def _fmt_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def info_table(graph: Any, title: str = "graph") -> Any:
    """A rich Table summarizing a graph: layers, params, MACs/synops per step, memory."""
    from rich.table import Table

    from neuroplast.graph import cost, total_cost

    t = Table(title=title)
    for col in ("node", "kind", "output", "params", "MACs/step", "synops/step", "weights", "state"):
        t.add_column(col, justify="right" if col not in ("node", "kind") else "left")
    for r in cost(graph):
        t.add_row(
            r.name,
            r.kind,
            "x".join(map(str, r.out_shape)),
            f"{r.params:,}",
            f"{r.macs:,}",
            f"{r.synops:,}",
            _fmt_bytes(r.param_bytes),
            _fmt_bytes(r.state_bytes),
        )
    tot = total_cost(graph)
    t.add_section()
    t.add_row(
        "total",
        "",
        "",
        f"{tot.params:,}",
        f"{tot.macs:,}",
        f"{tot.synops:,}",
        _fmt_bytes(tot.param_bytes),
        _fmt_bytes(tot.state_bytes),
    )
    return t


def build_app() -> Any:
    import typer
    from rich.console import Console

    import neuroplast

    app = typer.Typer(
        name="neuroplast",
        help="Edge inference and on-device learning: QAT export, runtime, boards, apps.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    console = Console()

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

    @app.command("info")
    def info_cmd(
        path: Path = typer.Argument(..., help="Bundle folder/zip, or a model file (.nir)."),
    ) -> None:
        """Summarize a model: layers, parameters, MACs/synops per step, memory."""
        from neuroplast.formats import read_graph

        if path.is_dir() or path.suffix.lower() == ".zip":
            from neuroplast.bundle import load_bundle

            b = load_bundle(path)
            console.print(
                info_table(b.graph, title=f"{path.name}  (mode {b.mode}, dt {b.graph.dt:g} s)")
            )
            if b.plasticity:
                console.print(f"plasticity: {json.dumps(b.plasticity)[:300]}")
            return
        graph = read_graph(path)
        console.print(info_table(graph, title=f"{path.name} (dt {graph.dt:g} s)"))

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

        Example: neuroplast targets model.zip
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
        path: Path = typer.Argument(..., help="Bundle folder or zip."),
        input: Path = typer.Option(
            ...,
            "--input",
            "-i",
            help=".npy, FILE.npz[:ARRAY] or raw float32 file: one step (shape) or a window "
            "(T, *shape).",
        ),
        mode: str = typer.Option(None, help="float or int (default: the bundle's)."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    ) -> None:
        """Run a bundle on an input file and print the outputs."""
        import numpy as np

        from neuroplast.arrayfile import load_array
        from neuroplast.errors import DataError

        rt = neuroplast.load(path, mode=mode)
        shape = rt.shapes[rt.inputs[0]]
        x = load_array(input, shape=shape)
        try:
            y = rt.step(x) if x.shape == shape else rt.run(x)
        except DataError as e:
            raise DataError(f"{input}: {e}") from None
        y = np.asarray(y)
        if as_json:
            print(json.dumps({"output": y.tolist(), "shape": list(y.shape), "mode": rt.mode}))
            return
        from rich.table import Table

        t = Table(title=f"output {rt.outputs[0]} {y.shape} ({rt.mode})")
        t.add_column("step" if y.ndim > 1 else "index")
        t.add_column("values")
        rows = y if y.ndim > 1 else y[None]
        for i, r in enumerate(rows[:50]):
            t.add_row(
                str(i), np.array2string(np.asarray(r).ravel()[:16], precision=4, max_line_width=200)
            )
        console.print(t)

    for mod in command_modules():
        try:
            module = importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name != mod:  # a real missing dependency: fail loudly
                raise
            continue  # package ships no commands (tests check the expected set)
        module.register(app)
    return app


def _pop_debug(args: list[str]) -> bool:
    """Remove the global ``--debug`` flag (anywhere before a ``--``); True if it was there."""
    end = args.index("--") if "--" in args else len(args)
    found = "--debug" in args[:end]
    args[:end] = [a for a in args[:end] if a != "--debug"]
    return found or os.environ.get("NEUROPLAST_DEBUG", "") not in ("", "0")


def _one_line(e: BaseException) -> str:
    return " | ".join(ln.strip() for ln in str(e).splitlines() if ln.strip()) or type(e).__name__


def main(argv: list[str] | None = None) -> int:
    """Console entry point; returns the exit status (see the module docstring)."""
    import traceback

    from neuroplast.errors import NeuroplastError

    args = list(sys.argv[1:] if argv is None else argv)
    debug = _pop_debug(args)
    try:
        app = build_app()
        app(args=args, prog_name="neuroplast")  # standalone: usage errors exit via SystemExit
    except NeuroplastError as e:
        if debug:
            traceback.print_exc()
        print(f"error: {type(e).__name__}: {_one_line(e)}", file=sys.stderr)
        return 2
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except (MemoryError, RecursionError) as e:  # an input too large or deep for this host
        if debug:
            traceback.print_exc()
        print(f"error: input too large to process ({type(e).__name__})", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 - a bug: one line unless --debug
        if debug:
            traceback.print_exc()
        print(
            f"error: internal error: {type(e).__name__}: {_one_line(e)} (rerun with --debug "
            "for the traceback and report it)",
            file=sys.stderr,
        )
        return 70
    return 0


if __name__ == "__main__":
    sys.exit(main())
