"""CLI for SFQ netlists: ``neuroplast sfq-sim`` and ``neuroplast sfq-spice``.

Thin wrappers over :func:`~neuroplast.quantize.sfq.simulate` and
:func:`~neuroplast.quantize.sfq.to_spice`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["register", "parse_inputs"]


def parse_inputs(items: list[str], names: list[str]) -> dict[str, float]:
    """``["in0=1", "in1=0.5"]`` -> rates; unnamed inputs default to 0."""
    from neuroplast.errors import DataError

    rates = {n: 0.0 for n in names}
    for it in items:
        key, sep, val = it.partition("=")
        if not sep or key not in rates:
            raise DataError(f"--input {it!r}: expected NAME=RATE with NAME in {names}")
        try:
            rates[key] = float(val)
        except ValueError:
            raise DataError(f"--input {it!r}: rate {val!r} is not a number") from None
    return rates


def register(app: Any) -> None:
    """Add ``sfq-sim`` and ``sfq-spice`` to the ``neuroplast`` typer app."""
    import typer

    @app.command("sfq-sim")
    def sfq_sim(
        netlist: Path = typer.Argument(..., exists=True, dir_okay=False, help="netlist .json"),
        input: list[str] = typer.Option([], "--input", "-i", help="NAME=RATE pulses/period"),
        cycles: int = typer.Option(1000, "--cycles", help="clock periods to simulate"),
        clock: float = typer.Option(None, "--clock", help="clock GHz (default: netlist's)"),
        seed: int = typer.Option(0, "--seed"),
    ) -> None:
        """Simulate an SFQ netlist pulse by pulse on rate-coded inputs."""
        from rich.console import Console
        from rich.table import Table

        from neuroplast.errors import NeuroplastError
        from neuroplast.quantize.sfq import load_netlist, simulate

        console = Console()
        try:
            nl = load_netlist(netlist)
            res = simulate(nl, parse_inputs(input, nl.inputs), cycles, clock_ghz=clock, seed=seed)
        except NeuroplastError as e:
            console.print(f"[red]error:[/red] {e}")
            raise typer.Exit(2) from None
        t = Table(title=f"{netlist.name}: {cycles} periods at {res.extra['clock_ghz']:g} GHz")
        for col in ("output", "pulses", "rate"):
            t.add_column(col)
        for o in nl.outputs:
            t.add_row(o, str(res.output_counts[o]), f"{res.output_rates[o]:.4f}")
        console.print(t)
        console.print(
            f"JJs {nl.totals()['jj']}, switching energy {res.energy_j:.3g} J, "
            f"latency {res.latency_ps:.0f} ps, {res.events} pulse events"
        )

    @app.command("sfq-spice")
    def sfq_spice(
        netlist: Path = typer.Argument(..., exists=True, dir_okay=False, help="netlist .json"),
        out: Path = typer.Option(..., "--out", "-o", help="deck to write (.cir)"),
        cycles: int = typer.Option(8, "--cycles", help="clock periods of all-ones input"),
    ) -> None:
        """Write a JoSIM-style SPICE deck of an SFQ netlist."""
        from neuroplast.errors import NeuroplastError
        from neuroplast.quantize.sfq import load_netlist, write_spice

        try:
            write_spice(load_netlist(netlist), out, n_cycles=cycles)
        except NeuroplastError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from None
        typer.echo(f"wrote {out}")
