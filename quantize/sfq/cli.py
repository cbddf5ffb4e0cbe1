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
        netlist: Path = typer.Argument(..., help="Netlist .json."),
        input: list[str] = typer.Option(
            [], "--input", "-i", help="NAME=RATE pulses/period (repeatable)."
        ),
        cycles: int = typer.Option(1000, "--cycles", help="Clock periods to simulate."),
        clock: float = typer.Option(None, "--clock", help="Clock GHz (default: the netlist's)."),
        seed: int = typer.Option(0, "--seed", help="Seed of the rate-coded input pulses."),
    ) -> None:
        """Simulate an SFQ netlist pulse by pulse on rate-coded inputs.

        \b
        Examples:
            neuroplast sfq-sim net.json -i in0=1 -i in1=0.5 --cycles 2000
        """
        from rich.console import Console
        from rich.table import Table

        from neuroplast.quantize.sfq import load_netlist, simulate

        console = Console()
        nl = load_netlist(netlist)
        res = simulate(nl, parse_inputs(input, nl.inputs), cycles, clock_ghz=clock, seed=seed)
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
        netlist: Path = typer.Argument(..., help="Netlist .json."),
        out: Path = typer.Option(..., "--out", "-o", help="Deck to write (.cir)."),
        cycles: int = typer.Option(8, "--cycles", help="Clock periods of all-ones input."),
    ) -> None:
        """Write a JoSIM-style SPICE deck of an SFQ netlist.

        \b
        Examples:
            neuroplast sfq-spice net.json -o net.cir
        """
        from neuroplast.quantize.sfq import load_netlist, write_spice

        write_spice(load_netlist(netlist), out, n_cycles=cycles)
        typer.echo(f"wrote {out}")
