"""Pulse-level discrete-event simulator of a neuroplast SFQ netlist.

Every SFQ pulse is an event ``(time_ps, cell, input port)`` in a priority queue;
cells react with the semantics listed in :mod:`neuroplast.quantize.sfq.cells`
(JTL/SPLIT/MERGE propagate, DRO and NEURON latch until their clock pulse, SYN
transmits with probability ``p(bias)`` from the netlist's fitted curve). The clock
source fires every period ``T = 1000 / clock_ghz`` ps and its pulses travel the clock
tree like any other pulse, so skew and late data behave physically: a pulse that
reaches a latch after the clock edge is counted in the next period.

Rate coding: an input given as a rate r in [0, 1] emits a pulse in each clock period
with probability r (Bernoulli); an input given as a 0/1 array emits exactly those
pulses. Output rates are output pulses per clock period over ``n_cycles`` periods,
aligned for the pipeline latency.

Energy estimate: each junction switching event dissipates ``I_c * Phi0`` (I_c of the
cell's junctions, cells.py); ``energy_j`` is the sum over all switching events of the
run (clock tree included). Static bias power is not included (zero for ERSFQ-style
biasing; report ``netlist.totals()['bias_ua']`` for RSFQ).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neuroplast.errors import DataError, ExportError
from neuroplast.quantize.sfq.cells import CELL_LIBRARY
from neuroplast.quantize.sfq.export import check_timing, clock_arrivals, input_offsets
from neuroplast.quantize.sfq.netlist import Netlist
from neuroplast.quantize.sfq.pcurve import PHI0

__all__ = ["SimResult", "simulate"]

_JTL, _SPLIT, _MERGE, _DRO, _SYN, _NEURON, _CLK, _IN, _OUT = range(9)
_CODES = {"JTL": _JTL, "SPLIT": _SPLIT, "MERGE": _MERGE, "DRO": _DRO, "SYN": _SYN,
          "NEURON": _NEURON, "CLK": _CLK, "IN": _IN, "OUT": _OUT}  # fmt: skip


@dataclass
class SimResult:
    """Outcome of one :func:`simulate` run.

    Attributes:
        n_cycles: clock periods in the measured window.
        period_ps: clock period.
        output_counts: output name -> pulses in the window.
        output_rates: output name -> pulses per period.
        neuron_rates: neuron cell -> fires per period in its aligned window.
        output_times_ps: output name -> all output pulse times.
        switch_events: junction switching events in the whole run.
        energy_j: switching energy of the whole run (J), sum of I_c * Phi0 per event.
        latency_ps: input pulse injection -> corresponding output pulse.
        events: pulses processed.
    """

    n_cycles: int
    period_ps: float
    output_counts: dict[str, int]
    output_rates: dict[str, float]
    neuron_rates: dict[str, float]
    output_times_ps: dict[str, list[float]]
    switch_events: int
    energy_j: float
    latency_ps: float
    events: int
    extra: dict[str, Any] = field(default_factory=dict)


def simulate(
    netlist: Netlist,
    inputs: Mapping[str, float | np.ndarray],
    n_cycles: int,
    *,
    clock_ghz: float | None = None,
    seed: int = 0,
    check: bool = True,
) -> SimResult:
    """Run ``netlist`` on input pulse trains for ``n_cycles`` clock periods.

    Args:
        netlist: a validated netlist (export or :func:`load_netlist`).
        inputs: IN port name -> rate in [0, 1] or a 0/1 array of length ``n_cycles``.
        n_cycles: measured clock periods (the run adds the pipeline latency on top).
        clock_ghz: override the netlist clock (e.g. to sweep frequency).
        seed: seed for input Bernoulli trains and synapse randomness.
        check: run :func:`check_timing` first and refuse a too-fast clock.
    """
    if not isinstance(n_cycles, (int, np.integer)) or n_cycles < 1:
        raise DataError(f"n_cycles must be a positive integer, got {n_cycles!r}")
    f = netlist.clock_ghz if clock_ghz is None else float(clock_ghz)
    if not (f > 0 and math.isfinite(f)):
        raise DataError(f"clock frequency must be > 0 GHz, got {f}")
    if check:
        check_timing(netlist, f)
    period = 1000.0 / f
    rng = np.random.default_rng(seed)
    missing = set(netlist.inputs) - set(inputs)
    extra = set(inputs) - set(netlist.inputs)
    if missing or extra:
        raise DataError(f"inputs must name exactly {netlist.inputs}; missing {sorted(missing)}, "
                        f"unknown {sorted(extra)}")  # fmt: skip

    names = list(netlist.cells)
    index = {n: i for i, n in enumerate(names)}
    cells = [netlist.cells[n] for n in names]
    code = [_CODES[c.type] for c in cells]
    delay = [c.delay_ps for c in cells]
    lib = [CELL_LIBRARY[c.type] for c in cells]
    fan: list[dict[str, list[tuple[int, str, float]]]] = [{} for _ in cells]
    for k in netlist.connections:
        fan[index[k.src]].setdefault(k.src_port, []).append((index[k.dst], k.dst_port, k.delay_ps))
    p_syn = [
        float(netlist.pcurve.probability(c.bias_ua)) if c.type == "SYN" else 1.0 for c in cells
    ]
    theta = [int(c.params.get("theta", 1)) for c in cells]
    floor = [int(c.params.get("floor", 0)) for c in cells]

    latency_cycles = int(netlist.meta.get("latency_cycles", 1))
    n_edges = n_cycles + latency_cycles + 1
    clk_at = clock_arrivals(netlist)
    offs = input_offsets(netlist)

    heap: list[tuple[float, int, int, str]] = []
    seq = 0

    def emit(ci: int, port: str, t: float) -> None:
        nonlocal seq
        for dst, dport, wd in fan[ci].get(port, ()):
            seq += 1
            heapq.heappush(heap, (t + wd, seq, dst, dport))

    # clock pulses and input pulse trains
    if netlist.clock_source is not None:
        ck = index[netlist.clock_source]
        phase = float(cells[ck].params.get("phase_ps", 0.0))
        for e in range(n_edges):
            emit(ck, "q", e * period + phase)
    for name in netlist.inputs:
        train = _train(name, inputs[name], n_cycles, rng)
        for kc in np.flatnonzero(train):
            emit(index[name], "q", float(kc) * period + offs[name])

    stored = [False] * len(cells)  # DRO flux / neuron exc latch
    inh = [False] * len(cells)
    count = [0] * len(cells)
    last = [-math.inf] * len(cells)
    switches = [0] * len(cells)
    fires: dict[int, list[int]] = {}
    out_times: dict[int, list[float]] = {index[o]: [] for o in netlist.outputs}
    uniform = rng.random
    n_events = 0
    while heap:
        t, _, ci, port = heapq.heappop(heap)
        n_events += 1
        c = code[ci]
        if c == _JTL or c == _SPLIT:
            switches[ci] += lib[ci].switch_jj
            for op in lib[ci].outputs:
                emit(ci, op, t + delay[ci])
        elif c == _MERGE:
            if t - last[ci] < lib[ci].dead_time_ps:
                switches[ci] += 1  # absorbed: only the escape junction switches
            else:
                last[ci] = t
                switches[ci] += lib[ci].switch_jj
                emit(ci, "q", t + delay[ci])
        elif c == _SYN:
            if uniform() < p_syn[ci]:
                switches[ci] += lib[ci].switch_jj
                emit(ci, "q", t + delay[ci])
            else:
                switches[ci] += 1  # blocked at the decision junction
        elif c == _DRO:
            if port == "d":
                switches[ci] += 1
                stored[ci] = True
            elif stored[ci]:
                stored[ci] = False
                switches[ci] += lib[ci].switch_jj
                emit(ci, "q", t + delay[ci])
            else:
                switches[ci] += 1
        elif c == _NEURON:
            if port == "exc":
                stored[ci] = True
                switches[ci] += 1
            elif port == "inh":
                inh[ci] = True
                switches[ci] += 1
            else:  # clock edge: integrate the latched pulses, fire at threshold
                v = count[ci] + int(stored[ci]) - int(inh[ci])
                v = max(v, floor[ci])
                stored[ci] = inh[ci] = False
                switches[ci] += 1
                if v >= theta[ci]:
                    v -= theta[ci]
                    switches[ci] += lib[ci].switch_jj
                    edge = int(round((t - clk_at.get(names[ci], 0.0)) / period))
                    fires.setdefault(ci, []).append(edge)
                    emit(ci, "q", t + delay[ci])
                count[ci] = v
        elif c == _OUT:
            out_times[ci].append(t)
        else:  # pragma: no cover - IN/CLK have no inputs (validate() guarantees it)
            raise ExportError(f"pulse into source cell {names[ci]}")

    # aligned windows
    stage: dict[str, int] = {}
    for li, layer in enumerate(netlist.meta.get("layers", [])):
        for n in layer.get("neurons", []):
            stage[n] = li + 2
    neuron_rates = {}
    for ci, edges in fires.items():
        s = stage.get(names[ci])
        if s is not None:
            e = np.asarray(edges)
            neuron_rates[names[ci]] = float(np.sum((e >= s) & (e < s + n_cycles))) / n_cycles
    for n in stage:
        neuron_rates.setdefault(n, 0.0)

    drivers = {k.dst: k for k in netlist.connections if k.dst in netlist.outputs}
    counts, rates, times = {}, {}, {}
    lat_ps = math.nan
    for o in netlist.outputs:
        ts = np.asarray(out_times[index[o]])
        k = drivers.get(o)
        src = k.src if k else None
        ref = clk_at.get(src, 0.0) if src else 0.0
        s = stage.get(src, latency_cycles) if src else latency_cycles
        edge = np.floor((ts - ref) / period + 1e-9)
        cnt = int(np.sum((edge >= s) & (edge < s + n_cycles)))
        counts[o], rates[o], times[o] = cnt, cnt / n_cycles, ts.tolist()
        if src is not None and src in netlist.cells:
            first_in = min(offs.values()) if offs else 0.0
            lat_ps = s * period + ref + netlist.cells[src].delay_ps + k.delay_ps - first_in
    energy = sum(n * lib[i].ic_ua * 1e-6 * PHI0 for i, n in enumerate(switches))
    return SimResult(
        n_cycles=int(n_cycles),
        period_ps=period,
        output_counts=counts,
        output_rates=rates,
        neuron_rates=neuron_rates,
        output_times_ps=times,
        switch_events=int(sum(switches)),
        energy_j=float(energy),
        latency_ps=float(lat_ps),
        events=n_events,
        extra={"switches_by_type": _by_type(cells, switches), "clock_ghz": f},
    )


def _by_type(cells: list, switches: list[int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for c, n in zip(cells, switches, strict=False):
        out[c.type] = out.get(c.type, 0) + n
    return out


def _train(name: str, spec: Any, n_cycles: int, rng: np.random.Generator) -> np.ndarray:
    if np.ndim(spec) == 0:
        r = float(spec)
        if not (0.0 <= r <= 1.0):
            raise DataError(f"input {name!r}: rate {r} must be in [0, 1] pulses per period")
        return rng.random(n_cycles) < r
    arr = np.asarray(spec)
    if arr.shape != (n_cycles,) or not np.all((arr == 0) | (arr == 1)):
        raise DataError(f"input {name!r}: pulse train must be a 0/1 array of length {n_cycles}")
    return arr.astype(bool)
