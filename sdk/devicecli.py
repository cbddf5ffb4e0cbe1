"""The ``neuroplast`` command on an install without typer and rich (a device).

``pip install neuroplast`` brings numpy only; :func:`neuroplast.cli.main` falls back to this
argparse front end, which runs the device commands with the same flags as the full CLI
(``tests/core/test_cli_conventions.py`` checks they stay a subset) and prints plain text:

* ``run`` and ``info`` -- the same library functions as the full CLI
  (:func:`neuroplast.cli.run_model`, :func:`neuroplast.cli.describe_model`);
* commands other packages declare in the ``neuroplast.device_commands`` entry points
  (``serve`` from :mod:`neuroplast.boards.stream`), each a ``main(argv) -> int``.

Everything else needs the full command line: ``pip install typer rich``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["main", "device_commands", "build_parser", "DEVICE_GROUP"]

DEVICE_GROUP = "neuroplast.device_commands"


def device_commands() -> dict[str, Any]:
    """name -> entry point of the argparse commands other packages contribute."""
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=DEVICE_GROUP)}


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    w = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(n) for c, n in zip(r, w)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(tuple("-" * n for n in w)), *map(line, rows)])


def build_parser() -> argparse.ArgumentParser:
    """The device parser: ``run`` and ``info`` here, entry-point commands by name."""
    import neuroplast
    from neuroplast.cli import RUN_ROWS

    ap = argparse.ArgumentParser(
        prog="neuroplast",
        description="neuroplast on a device (typer/rich not installed: plain-text output; "
        "`pip install typer rich` for every command).",
        epilog="Exit status: 0 success, 1 a check failed, 2 bad usage or input, 70 internal error.",
    )
    ap.add_argument("--version", action="version", version=f"neuroplast {neuroplast.__version__}")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    run = sub.add_parser(
        "run",
        help="run a model on an input file",
        description="Run a model on an input file in its own engine.",
        epilog="example: neuroplast run model.zip -i window.npy",
    )
    run.add_argument("path", metavar="PATH", help="bundle folder/zip, .nir, .onnx or .tflite")
    run.add_argument("-i", "--input", required=True, metavar="PATH", help="input file")
    run.add_argument("--mode", choices=("float", "int"), default=None)
    run.add_argument("--rows", type=int, default=RUN_ROWS, metavar="INT", help="0: all")
    run.add_argument("--json", action="store_true", help="print every output as JSON")
    info = sub.add_parser(
        "info",
        help="summarize a model",
        description="Summarize a model: layers, parameters, MACs/synops per step, memory.",
        epilog="example: neuroplast info model.zip",
    )
    info.add_argument(
        "path", metavar="PATH", nargs="?", help="bundle folder/zip, .nir, .onnx or .tflite"
    )
    info.add_argument("--json", action="store_true", help="print JSON instead of a table")
    info.add_argument(
        "--backend", action="store_true", help="say which runtime backend is in use (native/numpy)"
    )
    for name in sorted(device_commands()):
        sub.add_parser(name, help=f"see `neuroplast {name} --help`", add_help=False)
    return ap


def main(argv: list[str]) -> int:
    """Run the device CLI on ``argv``; errors propagate to :func:`neuroplast.cli.main`."""
    import numpy as np

    from neuroplast.cli import backend_report, describe_model, run_model
    from neuroplast.errors import DataError

    extra = device_commands()
    if argv and argv[0] in extra:  # the command parses its own flags
        return int(extra[argv[0]].load()(argv[1:]) or 0)
    ap = build_parser()
    try:
        a = ap.parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    if a.command is None:
        ap.print_help()
        return 2 if not argv else 0
    if a.command == "info" and a.backend:
        print(backend_report(Path(a.path) if a.path else None, a.json))
        return 0
    if a.command == "info":
        if a.path is None:
            raise DataError("info needs a model path (or --backend)")
        d = describe_model(Path(a.path))
        if a.json:
            print(
                json.dumps({k: d[k] for k in ("format", "engine", "title", "rows")}, default=list)
            )
            return 0
        print(d["title"])
        cols = ("name", "kind", "output", "params", "macs", "synops")
        if d["graph"] is None:
            cols = ("name", "op", "shape", "dtype", "params")
        fmt = lambda v: "x".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)  # noqa: E731
        print(_table(cols, [tuple(fmt(r[c]) for c in cols) for r in d["rows"]]))
        return 0
    r = run_model(Path(a.path), Path(a.input), a.mode)
    y = r["output"]
    if a.json:
        print(json.dumps({**r, "output": y.tolist()}))
        return 0
    rows = y if y.ndim > 1 else y[None]
    shown = len(rows) if a.rows <= 0 else min(a.rows, len(rows))
    print(f"output {tuple(y.shape)} ({r['engine']})")
    for i, v in enumerate(rows[:shown]):
        print(f"{r['axis']} {i}: {np.array2string(np.asarray(v).ravel()[:16], precision=4)}")
    if shown < len(rows):
        print(
            f"showing {shown} of {len(rows)} {r['axis']}s (--rows 0 for all, --json for all values)"
        )
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
