"""The SFQ cell library: ports, pulse semantics, JJ counts, timing and bias of each cell.

Timing and JJ counts of the standard RSFQ cells follow PyLSE's defaults
(UCSBarchlab/PyLSE ``pylse/sfq_cells.py``: JTL 2 JJ / 5.7 ps, splitter 3 JJ / 4.3 ps,
merger 5 JJ / 4.0 ps, DRO 6 JJ / 5.1 ps with 2.3 ps setup). The stochastic synapse
and the neuron are this project's models (the paper's circuits were not readable;
see docs/sfq-netlist.md): their numbers are design assumptions, stated here once.

Pulse semantics (what :mod:`neuroplast.quantize.sfq.simulate` executes), per cell:

* ``JTL``     a -> q after ``delay_ps``.
* ``SPLIT``   a -> q0 and q1 after ``delay_ps``.
* ``MERGE``   a or b -> q after ``delay_ps``; a pulse arriving less than
  ``dead_time_ps`` after the previous accepted one is absorbed (two coincident
  pulses leave as one: the output rate of two independent Bernoulli streams is
  ``1 - (1 - r_a)(1 - r_b)``).
* ``DRO``     (DFF) d stores one flux quantum (a second d before the clock is lost);
  clk releases it on q after ``delay_ps``; clk with nothing stored does nothing.
* ``SYN``     stochastic synapse: a -> q with probability ``p(bias_ua)`` (fitted curve
  in :mod:`neuroplast.quantize.sfq.pcurve`), else the pulse is blocked.
* ``NEURON``  clocked integrate-and-fire: ``exc`` and ``inh`` each latch one flux
  quantum per clock period (like a DRO input). On clk: ``c <- max(c + e - i, floor)``;
  if ``c >= theta``: ``c <- c - theta`` and a pulse leaves q after ``delay_ps``.
* ``CLK``     clock source: one pulse every period on q (``phase_ps`` offset).
* ``IN`` / ``OUT`` external ports (no junctions): IN emits the user's pulse train,
  OUT records arrivals.

Energy: each pulse through a cell switches ``switch_jj`` junctions; each switching
dissipates about ``I_c * Phi0`` (~2e-19 J at 100 uA). A blocked synapse pulse
switches only the escape junction (1 JJ).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CellType", "CELL_LIBRARY", "cell_type"]


@dataclass(frozen=True)
class CellType:
    """Static description of one cell kind.

    Attributes:
        name: cell kind, e.g. ``"JTL"``.
        inputs, outputs: port names.
        jj: number of Josephson junctions in the cell.
        delay_ps: input (or clock) to output delay, ps.
        bias_ua: default DC bias current of the cell, uA (sum over its bias taps).
        ic_ua: typical junction critical current, uA (for the energy estimate).
        switch_jj: junctions that switch per pulse passing through.
        setup_ps: for clocked cells, data must arrive this long before the clock.
        dead_time_ps: for mergers, minimum separation of two output pulses.
        clocked: True if the cell has a ``clk`` input.
    """

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    jj: int
    delay_ps: float
    bias_ua: float
    ic_ua: float
    switch_jj: int
    setup_ps: float = 0.0
    dead_time_ps: float = 0.0
    clocked: bool = False


CELL_LIBRARY: dict[str, CellType] = {
    c.name: c
    for c in (
        CellType(
            "JTL", ("a",), ("q",), jj=2, delay_ps=5.7, bias_ua=280.0, ic_ua=250.0, switch_jj=2
        ),
        CellType(
            "SPLIT",
            ("a",),
            ("q0", "q1"),
            jj=3,
            delay_ps=4.3,
            bias_ua=420.0,
            ic_ua=250.0,
            switch_jj=3,
        ),
        CellType(
            "MERGE",
            ("a", "b"),
            ("q",),
            jj=5,
            delay_ps=4.0,
            bias_ua=350.0,
            ic_ua=200.0,
            switch_jj=3,
            dead_time_ps=4.0,
        ),
        CellType(
            "DRO",
            ("d", "clk"),
            ("q",),
            jj=6,
            delay_ps=5.1,
            bias_ua=400.0,
            ic_ua=200.0,
            switch_jj=2,
            setup_ps=2.3,
            clocked=True,
        ),
        # decision junction (20 uA, gray-zone biased) + input and output buffer JJs
        CellType(
            "SYN",
            ("a",),
            ("q",),
            jj=3,
            delay_ps=6.0,
            bias_ua=16.0,
            ic_ua=100.0,
            switch_jj=3,
        ),
        # two latching input loops (exc/inh), a storing counter loop, output buffer
        CellType(
            "NEURON",
            ("exc", "inh", "clk"),
            ("q",),
            jj=12,
            delay_ps=8.0,
            bias_ua=900.0,
            ic_ua=200.0,
            switch_jj=3,
            setup_ps=3.0,
            clocked=True,
        ),
        CellType("CLK", (), ("q",), jj=2, delay_ps=0.0, bias_ua=280.0, ic_ua=250.0, switch_jj=2),
        CellType("IN", (), ("q",), jj=0, delay_ps=0.0, bias_ua=0.0, ic_ua=0.0, switch_jj=0),
        CellType("OUT", ("a",), (), jj=0, delay_ps=0.0, bias_ua=0.0, ic_ua=0.0, switch_jj=0),
    )
}


def cell_type(name: str) -> CellType:
    """Look up a cell kind; raises :class:`~neuroplast.errors.ExportError` if unknown."""
    from neuroplast.errors import ExportError

    try:
        return CELL_LIBRARY[name]
    except KeyError:
        raise ExportError(
            f"unknown SFQ cell type {name!r}; known: {sorted(CELL_LIBRARY)}"
        ) from None
