"""CLI for the neuromorphic targets: ``neuroplast check model.nir --board xylo``.

``register(app)`` adds the ``check`` command; ``neuroplast info model.nir`` is served by
the main CLI through :func:`neuroplast.quantize.nir.describe_nir` (see :func:`print_nir_info`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["register", "print_nir_info"]


def print_nir_info(path: str | Path) -> dict[str, Any]:
    """Print a rich table of a ``.nir`` file (used by ``neuroplast info``); returns the dict."""
    from rich.console import Console
    from rich.table import Table

    from neuroplast.quantize.nir import describe_nir

    info = describe_nir(path)
    t = Table(
        title=f"{info['path']}  (NIR {info['nir_version']}, dt={info['dt']}, time step={info['time_step']})"
    )
    for col in ("node", "type", "shape", "params", "quant"):
        t.add_column(col)
    for r in info["nodes"]:
        q = ", ".join(
            f"{k}:{v.get('bits')}b" for k, v in (r["neuroplast"].get("quant") or {}).items()
        )
        t.add_row(r["name"], r["type"], str(tuple(r["shape"])), str(r["params"]), q)
    c = Console()
    c.print(t)
    c.print(f"{info['n_neurons']} neurons, {info['n_weights']} weights, {len(info['edges'])} edges")
    return info


def register(app: Any) -> None:
    """Add ``check`` to the ``neuroplast`` typer app."""
    import typer

    @app.command("check")
    def check(
        model: Path = typer.Argument(
            ..., help="Model: .nir, bundle folder/zip, or a graph format."
        ),
        board: str = typer.Option(
            ..., "--board", "-b", help="Board profile: xylo, speck, loihi2, ..."
        ),
        json_out: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    ) -> None:
        """Check a model against a neuromorphic chip's limits; exit 1 if it does not fit.

        Limits: neurons per core, fan-in, fan-out, weight bits, neuron types, delays.

        \b
        Examples:
            neuroplast check model.nir -b xylo
            neuroplast check model.zip -b loihi2 --json
        """
        import json

        from rich.console import Console
        from rich.table import Table

        from neuroplast.cli import check_failed
        from neuroplast.formats import read_graph
        from neuroplast.quantize.nir_check import check_graph

        console = Console()
        rep = check_graph(read_graph(model), board)
        if json_out:
            print(json.dumps(rep.to_dict(), indent=1))
        else:
            lt = Table(title=f"{model.name} on {board}")
            for col in ("layer", "kind", "neurons", "cores"):
                lt.add_column(col)
            for r in rep.layers:
                lt.add_row(r["node"], r["kind"], str(r["neurons"]), str(r["cores"]))
            console.print(lt)
            if rep.violations:
                vt = Table(title="violations")
                for col in ("severity", "rule", "node", "detail"):
                    vt.add_column(col)
                for v in rep.violations:
                    color = "red" if v.severity == "error" else "yellow"
                    vt.add_row(f"[{color}]{v.severity}[/{color}]", v.rule, v.node, v.detail)
                console.print(vt)
            verdict = "[green]fits[/green]" if rep.ok else "[red]does not fit[/red]"
            console.print(f"{model.name}: {verdict} on {board}")
        if not rep.ok:
            check_failed(f"{model.name} does not fit {board}")
