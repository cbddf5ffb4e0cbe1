"""JoSIM-style SPICE deck text of an SFQ netlist (for circuit-level users).

Syntax follows JoSIM's documented grammar (JoeyDelp/JoSIM ``docs/syntax.md``): one
``.model`` RCSJ junction model, ``.subckt``/``.ends`` cell definitions, instances in
JSIM mode ``X<label> <subckt> <nodes...>``, DC bias as ``pwl`` ramps, input and clock
pulses as ``pwl`` current pulses, ``.temp`` for thermal noise, ``.tran`` and
``.print DEVV`` of the output loads, ``.end``. Node and label names never contain
``.`` or ``|`` (reserved by JoSIM). Values are plain engineering numbers without units.

What the cells are: JTL, SPLIT, MERGE and DRO use the textbook RSFQ topologies with
generic (not optimised) element values and the JJ counts of cells.py. SYN is a
buffer-decision-buffer chain whose decision junction's bias comes from an external
per-instance current source (the programmed synapse bias); NEURON is a structural
template (two input latching loops, a storing loop, an output buffer) with the
library's junction count. Neither SYN nor NEURON values were tuned in a circuit
simulator here (JoSIM is not installable from PyPI/Debian): treat them as a starting
point for circuit design, not a verified layout. The pulse-level simulator, not this
deck, defines the semantics.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from neuroplast.errors import DataError
from neuroplast.quantize.sfq.export import input_offsets
from neuroplast.quantize.sfq.netlist import Netlist

__all__ = ["to_spice", "write_spice", "SUBCKT_PORTS", "subckt_jj_counts"]

# subckt port order per cell type (external bias nodes last)
SUBCKT_PORTS: dict[str, tuple[str, ...]] = {
    "JTL": ("a", "q"),
    "SPLIT": ("a", "q0", "q1"),
    "MERGE": ("a", "b", "q"),
    "DRO": ("d", "clk", "q"),
    "SYN": ("a", "q", "bias"),
    "NEURON": ("exc", "inh", "clk", "q"),
}

_SUBCKTS = """\
* ---- cell library (generic RSFQ values; see neuroplast docs/sfq-netlist.md) ----
.subckt JTL a q
L1 a 1 2p
B1 1 0 jmod area=2.5
IB1 0 1 pwl(0 0 5p 175u)
L2 1 2 4p
B2 2 0 jmod area=2.5
IB2 0 2 pwl(0 0 5p 175u)
L3 2 q 2p
.ends
.subckt SPLIT a q0 q1
L1 a 1 2p
B1 1 0 jmod area=2.5
IB1 0 1 pwl(0 0 5p 280u)
L2 1 2 1p
L3 2 3 2p
B2 3 0 jmod area=2.5
IB2 0 3 pwl(0 0 5p 175u)
L4 3 q0 2p
L5 2 4 2p
B3 4 0 jmod area=2.5
IB3 0 4 pwl(0 0 5p 175u)
L6 4 q1 2p
.ends
.subckt MERGE a b q
L1 a 1 2p
B1 1 0 jmod area=2.5
IB1 0 1 pwl(0 0 5p 175u)
B2 1 3 jmod area=1.8
L2 b 2 2p
B3 2 0 jmod area=2.5
IB2 0 2 pwl(0 0 5p 175u)
B4 2 3 jmod area=1.8
L3 3 4 2p
B5 4 0 jmod area=2.5
IB3 0 4 pwl(0 0 5p 230u)
L4 4 q 2p
.ends
.subckt DRO d clk q
L1 d 1 2p
B1 1 0 jmod area=2.5
IB1 0 1 pwl(0 0 5p 175u)
B2 1 2 jmod area=1.5
L2 2 3 7p
B3 3 0 jmod area=2.5
IB2 0 3 pwl(0 0 5p 125u)
L3 clk 4 2p
B4 4 0 jmod area=2.5
IB3 0 4 pwl(0 0 5p 175u)
B5 4 3 jmod area=1.5
L4 3 5 2p
B6 5 0 jmod area=2.5
L5 5 q 2p
.ends
.subckt SYN a q bias
L1 a 1 2p
B1 1 0 jmod area=2.5
IB1 0 1 pwl(0 0 5p 175u)
L2 1 2 4p
B2 2 0 jmod area=0.2
L3 2 bias 1p
L4 2 3 4p
B3 3 0 jmod area=2.5
IB2 0 3 pwl(0 0 5p 175u)
L5 3 q 2p
.ends
.subckt NEURON exc inh clk q
L1 exc 1 2p
B1 1 0 jmod area=2.5
IB1 0 1 pwl(0 0 5p 175u)
B2 1 2 jmod area=1.5
L2 inh 3 2p
B3 3 0 jmod area=2.5
IB2 0 3 pwl(0 0 5p 175u)
B4 3 2 jmod area=1.5
L3 2 4 7p
B5 4 0 jmod area=2.5
IB3 0 4 pwl(0 0 5p 150u)
L4 clk 5 2p
B6 5 0 jmod area=2.5
IB4 0 5 pwl(0 0 5p 175u)
B7 5 4 jmod area=1.5
L5 4 6 2p
B8 6 0 jmod area=2.5
IB5 0 6 pwl(0 0 5p 125u)
B9 6 7 jmod area=1.5
L6 7 8 2p
B10 8 0 jmod area=2.5
IB6 0 8 pwl(0 0 5p 175u)
B11 8 9 jmod area=1.5
L7 9 10 2p
B12 10 0 jmod area=2.5
L8 10 q 2p
.ends
"""

_PULSE_UA = 600.0  # amplitude of the 2 ps triangular current pulse that injects one SFQ pulse


def _pulse_pwl(times_ps: list[float]) -> str:
    pts = ["0 0"]
    for t in sorted(times_ps):
        pts.append(f"{t:.3f}p 0 {t + 1:.3f}p {_PULSE_UA:g}u {t + 2:.3f}p 0")
    return "pwl(" + " ".join(pts) + ")"


def to_spice(
    netlist: Netlist,
    inputs: Mapping[str, np.ndarray] | None = None,
    n_cycles: int = 8,
    *,
    step_ps: float = 0.25,
) -> str:
    """Return a JoSIM deck for ``netlist`` driven by 0/1 ``inputs`` for ``n_cycles`` periods.

    Inputs default to all ones. ``.tran`` runs ``n_cycles + latency + 2`` periods.
    """
    netlist.validate()
    period = 1000.0 / netlist.clock_ghz
    lat = int(netlist.meta.get("latency_cycles", 1))
    n_edges = n_cycles + lat + 2
    t_stop = n_edges * period
    offs = input_offsets(netlist)
    trains = {}
    for name in netlist.inputs:
        tr = np.ones(n_cycles) if inputs is None or name not in inputs else np.asarray(inputs[name])
        if tr.shape != (n_cycles,) or not np.all((tr == 0) | (tr == 1)):
            raise DataError(f"input {name!r}: need a 0/1 array of length {n_cycles}")
        trains[name] = tr

    # one node per connection; unconnected ports get their own dangling node
    node_of: dict[tuple[str, str], str] = {}
    for i, k in enumerate(netlist.connections):
        node_of[(k.src, k.src_port)] = node_of[(k.dst, k.dst_port)] = f"n{i}"
    labels = {name: f"c{i}" for i, name in enumerate(netlist.cells)}

    lines = [
        f"* neuroplast SFQ netlist {netlist.name!r} -> JoSIM deck",
        (
            f"* clock {netlist.clock_ghz:g} GHz, {len(netlist.cells)} cells, "
            f"{netlist.totals()['jj']} JJs (cell library counts)"
        ),
        ".model jmod jj(rtype=1, vg=2.8m, cap=0.07p, r0=160, rn=16, icrit=0.1m)",
        _SUBCKTS.rstrip(),
        "* ---- circuit ----",
    ]
    for name, c in netlist.cells.items():
        lab = labels[name]
        if c.type in SUBCKT_PORTS:
            nodes = []
            for p in SUBCKT_PORTS[c.type]:
                if p == "bias":
                    nodes.append(f"nb{lab}")
                else:
                    nodes.append(node_of.get((name, p), f"nx{lab}{p}"))
            lines.append(f"X{lab} {c.type} {' '.join(nodes)}")
            if c.type == "SYN":
                # programmed decision-junction bias of this synapse (uA)
                lines.append(f"IB{lab} 0 nb{lab} pwl(0 0 5p {c.bias_ua:.4f}u)")
        elif c.type == "CLK":
            times = [
                e * period + float(c.params.get("phase_ps", 0.0)) + 10.0 for e in range(n_edges)
            ]
            lines.append(f"I{lab} 0 {node_of.get((name, 'q'), 'nx' + lab)} {_pulse_pwl(times)}")
        elif c.type == "IN":
            times = [k * period + offs[name] + 10.0 for k in np.flatnonzero(trains[name])]
            node = node_of.get((name, "q"), f"nx{lab}")
            if times:
                lines.append(f"I{lab} 0 {node} {_pulse_pwl(times)}")
            lines.append(f"RIN{lab} {node} 0 2")
        elif c.type == "OUT":
            lines.append(f"ROUT{lab} {node_of.get((name, 'a'), 'nx' + lab)} 0 2")
    lines.append(f".temp {netlist.temperature_k:g}")
    lines.append(f".tran {step_ps:g}p {t_stop + 10.0:.3f}p 0 {step_ps:g}p")
    for name in netlist.outputs:
        lines.append(f".print DEVV ROUT{labels[name]}")
    lines.append(".end")
    return "\n".join(lines) + "\n"


def write_spice(netlist: Netlist, path: str | os.PathLike, **kwargs) -> Path:
    """Write :func:`to_spice` text to ``path``."""
    p = Path(path)
    p.write_text(to_spice(netlist, **kwargs))
    return p


def subckt_jj_counts() -> dict[str, int]:
    """Junctions per subckt in the deck library (tests compare with cells.py)."""
    counts: dict[str, int] = {}
    cur = None
    for line in _SUBCKTS.splitlines():
        tok = line.split()
        if not tok:
            continue
        if tok[0].lower() == ".subckt":
            cur = tok[1]
            counts[cur] = 0
        elif tok[0].lower() == ".ends":
            cur = None
        elif cur and tok[0][0].upper() == "B":
            counts[cur] += 1
    return counts
