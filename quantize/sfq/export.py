"""Map a small rate-coded network onto an SFQ netlist (:func:`export_sfq`, :func:`build_netlist`).

Mapping (documented in docs/sfq-netlist.md):

* Every network input is an ``IN`` port latched by a clocked ``DRO`` (input
  synchroniser), then fanned out by a balanced ``SPLIT`` tree.
* A weight ``w_ij`` becomes one stochastic synapse ``SYN`` with transmit probability
  ``p = |w_ij|`` (so weights must lie in [-1, 1]); its bias current is
  ``pcurve.bias_for(p)``. ``|w| >= 1 - 1e-3`` uses a plain ``JTL`` (always transmits);
  ``|w| < prune`` drops the synapse. ``w > 0`` feeds the neuron's ``exc`` merger tree,
  ``w < 0`` its ``inh`` tree (inhibitory cells; refused if ``inhibitory=False``).
* A bias ``b_j`` is a synapse with ``p = |b_j|`` fed by the clock: one potential pulse
  per clock period into ``exc`` (b > 0) or ``inh`` (b < 0).
* Each neuron is a clocked ``NEURON`` with threshold ``theta`` (1 for ReLU/Threshold
  activations, ``v_th`` for IF), fanned out to the next layer by a ``SPLIT`` tree.
* One ``CLK`` source drives a balanced splitter tree (equal depth to every leaf:
  zero skew). Each layer adds one clock period of latency.

Rate semantics the hardware then realises (per clock period, mean field)::

    E_j = 1 - (1 - b_j^+) * prod_i (1 - p_ij^+ r_i)     (merger tree + input latch = OR)
    I_j = 1 - (1 - b_j^-) * prod_i (1 - p_ij^- r_i)
    theta = 1:  r_j = E_j * (1 - I_j)                    (see analytic.py for theta > 1)

The float ``Linear -> ReLU`` graph is the *carrier* of the trained probabilities; its own
numpy semantics differ from these rates (OR-merging, veto inhibition). Train with the
mean-field model above (see xor.py) to get a network that works on the hardware.

This is *not* the integer runtime's arithmetic: the netlist is rate-coded with stochastic
synapses, so the pulse-level simulation is checked against the mean-field rates above
(:mod:`.analytic`), not against the runtime's codes.

Which graphs map is the :data:`SFQ` target's table (one handler per node kind; kinds
without a mapping, such as convolutions, are refused up front in one line). Refused
with :class:`ExportError` (naming the node and reason): weights outside [-1, 1],
negative weights when ``inhibitory=False``, a neuron fan-in above ``max_fan_in``, a
graph that is not a chain of Linear + activation layers, and a clock faster than the
critical path allows.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from neuroplast.errors import ExportError
from neuroplast.graph.nodes import (
    IF,
    LI,
    LIF,
    Add,
    AvgPool2d,
    Conv1d,
    Conv2d,
    CubaLIF,
    Delay,
    DelayLinear,
    Flatten,
    Input,
    Linear,
    MaxPool2d,
    ReLU,
    Scale,
    SumPool2d,
    Threshold,
)
from neuroplast.quantize.sfq.cells import CELL_LIBRARY
from neuroplast.quantize.sfq.netlist import Cell, Connection, Netlist, save_netlist
from neuroplast.quantize.sfq.pcurve import DEFAULT_PCURVE, PCurve
from neuroplast.targets import CheckContext, Refusal, Target, register_target

_CHAIN = "the SFQ mapping takes one chain Input -> (Linear -> ReLU|IF|Threshold)+"
SFQ = register_target(
    Target(
        "sfq",
        "SFQ pulse netlist: rate-coded, stochastic synapses (not the integer runtime's arithmetic)",
        engine="neuroplast pulse-level simulator vs mean-field rates",
        hint="map it to Linear + ReLU/IF/Threshold layers, or export NIR/ONNX",
    )
)
for _cls in (Conv1d, Conv2d):
    SFQ.refuse(
        _cls,
        "the SFQ mapping has no convolution (its neurons take fully connected rate inputs)",
        "export TFLite or ONNX for a CNN",
    )
for _cls in (MaxPool2d, AvgPool2d, SumPool2d):
    SFQ.refuse(_cls, "the SFQ mapping has no pooling", "export TFLite or ONNX for a CNN")
for _cls in (LIF, CubaLIF, LI):
    SFQ.refuse(
        _cls,
        "SFQ neurons count pulses without leak (IF, ReLU or Threshold only)",
        "use IF (no leak), or export NIR for neuromorphic runtimes",
    )
for _cls in (Delay, DelayLinear):
    SFQ.refuse(_cls, "the SFQ mapping has no delay lines", "export NIR for neuromorphic runtimes")
SFQ.refuse(Add, "the SFQ mapping is a single chain (no residual adds)", "export TFLite or ONNX")
SFQ.refuse(Scale, "the SFQ mapping has no scaling cell", "fold the scale into the Linear weights")

__all__ = [
    "SFQ",
    "to_netlist",
    "SFQConfig",
    "SFQLayer",
    "export_sfq",
    "build_netlist",
    "layers_from_graph",
    "check_timing",
    "clock_arrivals",
    "input_offsets",
]


@dataclass(frozen=True)
class SFQConfig:
    """Export settings.

    Attributes:
        clock_ghz: clock frequency (GHz); period T = 1000 / clock_ghz ps.
        max_fan_in: most synapses (incl. the bias synapse) into one neuron.
        inhibitory: allow inhibitory synapses (negative weights) via the neuron's inh port.
        prune: |w| below this is treated as no synapse.
        hold_ps: input pulses enter this long after their clock edge.
        pcurve: the p(I_bias) curve used to program synapse biases.
        temperature_k: operating temperature recorded in the netlist.
    """

    clock_ghz: float = 20.0
    max_fan_in: int = 16
    inhibitory: bool = True
    prune: float = 1e-3
    hold_ps: float = 1.0
    pcurve: PCurve = DEFAULT_PCURVE
    temperature_k: float = 4.2


@dataclass(frozen=True)
class SFQLayer:
    """One fully connected rate layer: ``weight`` (out, in) in [-1, 1], ``bias`` (out,)."""

    name: str
    weight: np.ndarray
    bias: np.ndarray | None = None
    theta: int = 1
    floor: int = 0
    meta: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- graph -> layers
@dataclass
class _Chain:
    """What the SFQ handlers build while walking a graph: input width, rate layers, the
    Linear waiting for its activation, and why the graph is not a mappable chain."""

    n_in: int = 0
    layers: list[SFQLayer] = field(default_factory=list)
    pending: tuple[str, Any] | None = None
    problems: list[tuple[str, str]] = field(default_factory=list)

    def fire(self, name: str, node: Any, theta: int) -> None:
        """Close the pending Linear with neurons of threshold ``theta`` pulses."""
        if self.pending is None:
            self.problems.append((name, "it has no Linear before it"))
            return
        lname, lin = self.pending
        bias = None if lin.bias is None else np.asarray(lin.bias, dtype=np.float64)
        meta = {"activation": name, "activation_kind": node.kind}
        self.layers.append(
            SFQLayer(lname, np.asarray(lin.weight, np.float64), bias, theta, meta=meta)
        )
        self.pending = None


@SFQ.register(Input, note="one IN port per element (C order)")
def _input(c: _Chain, name: str, node: Any) -> None:
    c.n_in = int(np.prod(node.shape))


@SFQ.register(Flatten, note="free: the ports are already flat")
def _flatten(c: _Chain, name: str, node: Any) -> None:
    return None


def _probabilities(name: str, node: Any, ctx: CheckContext) -> str | None:
    arrays = [(node.weight, "weight")] + ([] if node.bias is None else [(node.bias, "bias")])
    return next((why for a, what in arrays if (why := _beyond_one(np.asarray(a), what))), None)


@SFQ.register(Linear, check=_probabilities, note="|w|, |b| <= 1: synapse transmit probabilities")
def _linear(c: _Chain, name: str, node: Any) -> None:
    if c.pending is not None:
        c.problems.append((name, f"it follows Linear {c.pending[0]!r} with no activation between"))
    c.pending = (name, node)


@SFQ.register(ReLU, Threshold, note="a neuron firing on 1 pulse (rate semantics)")
def _fire(c: _Chain, name: str, node: Any) -> None:
    c.fire(name, node, 1)


def _if_theta(name: str, node: Any, ctx: CheckContext) -> str | None:
    vth = np.unique(node.v_th)
    if vth.size == 1 and vth[0] >= 1 and abs(vth[0] - round(vth[0])) <= 1e-6:
        return None
    return f"SFQ neurons count pulses: v_th must be one integer >= 1, got {vth.tolist()}"


@SFQ.register(IF, check=_if_theta, note="v_th: one integer >= 1 (pulses)")
def _fire_if(c: _Chain, name: str, node: Any) -> None:
    c.fire(name, node, int(round(float(np.unique(node.v_th)[0]))))


def _walk(graph: Any) -> _Chain:
    """Run every node's handler along the chain (every kind must have one)."""
    c = _Chain()
    prev: list[str] = []
    for name in graph.topo_order():
        preds = graph.predecessors(name)
        if preds != prev:
            c.problems.append((name, f"it breaks the chain (inputs {preds}); {_CHAIN}"))
        SFQ.handler(name, graph.nodes[name])(c, name, graph.nodes[name])
        prev = [name]
    if c.pending is not None:
        c.problems.append((c.pending[0], "it has no activation (ReLU, IF, Threshold) after it"))
    if not c.layers and not c.problems:
        c.problems.append(("*", "it has no Linear layer to map"))
    return c


@SFQ.graph_check
def _chain(ctx: CheckContext) -> list[Refusal]:
    g = ctx.graph
    return [
        Refusal(n, g.nodes[n].kind if n in g.nodes else "", "sfq", why, "")
        for n, why in _walk(g).problems
    ]


def layers_from_graph(graph: Any) -> tuple[int, list[SFQLayer], list[str]]:
    """Read a chain ``Input -> (Linear -> ReLU|IF|Threshold)+`` from a neuroplast Graph.

    Returns ``(n_inputs, layers, input_names)``. Raises :class:`UnsupportedError` (an
    ExportError) naming the first node that does not map.
    """
    SFQ.require(graph)
    c = _walk(graph)
    return c.n_in, c.layers, [f"in{i}" for i in range(c.n_in)]


def to_netlist(graph: Any, **kwargs: Any) -> Netlist:
    """Map a neuroplast Graph onto a validated, timing-checked SFQ :class:`Netlist`.

    ``kwargs`` are :class:`SFQConfig` fields (e.g. ``clock_ghz=40``).
    """
    try:
        config = SFQConfig(**kwargs)
    except TypeError as e:
        raise ExportError(f"bad SFQ export option: {e}") from None
    n_in, layers, in_names = layers_from_graph(graph)
    nl = build_netlist(layers, n_in, config=config, input_names=in_names, name="graph")
    nl.meta["graph_dt"] = float(getattr(graph, "dt", 0.0))
    return nl


def export_sfq(graph: Any, path: str | os.PathLike, **kwargs: Any) -> Path:
    """Export a neuroplast Graph to an SFQ netlist JSON file at ``path``; returns the path.

    The EXPORTERS entry ``"sfq"``; ``kwargs`` are :class:`SFQConfig` fields.
    """
    return save_netlist(to_netlist(graph, **kwargs), Path(path))


# --------------------------------------------------------------------------- construction
class _Builder:
    def __init__(self) -> None:
        self.cells: dict[str, Cell] = {}
        self.conns: list[Connection] = []
        self._count: dict[str, int] = {}

    def add(self, prefix: str, type_: str, bias_ua: float | None = None, **params: Any) -> str:
        i = self._count.get(prefix, 0)
        self._count[prefix] = i + 1
        name = f"{prefix}_{i}" if (i or prefix in self.cells) else prefix
        while name in self.cells:
            i += 1
            name = f"{prefix}_{i}"
        self.cells[name] = Cell.make(name, type_, bias_ua, **params)
        return name

    def wire(self, src: str, dst: str) -> None:
        s, sp = src.split(".")
        d, dp = dst.split(".")
        self.conns.append(Connection(s, sp, d, dp))

    def split_tree(self, src: str, n: int, prefix: str, depth: int | None = None) -> list[str]:
        """Balanced splitter tree from port ``src`` to ``n`` output ports, all leaves at
        the same depth ``depth`` (>= ceil(log2 n)), padded with JTLs."""
        need = max(0, math.ceil(math.log2(n))) if n > 1 else 0
        depth = need if depth is None else depth
        return self._split(src, n, prefix, depth)

    def _split(self, src: str, n: int, prefix: str, depth: int) -> list[str]:
        if n == 1:
            for _ in range(depth):
                j = self.add(f"{prefix}_jtl", "JTL")
                self.wire(src, f"{j}.a")
                src = f"{j}.q"
            return [src]
        s = self.add(f"{prefix}_spl", "SPLIT")
        self.wire(src, f"{s}.a")
        left = n // 2 + n % 2
        return self._split(f"{s}.q0", left, prefix, depth - 1) + self._split(
            f"{s}.q1", n - left, prefix, depth - 1
        )

    def merge_tree(self, srcs: list[str], dst: str, prefix: str) -> None:
        """Balanced merger tree from output ports ``srcs`` into input port ``dst``."""
        if not srcs:
            return
        depth = math.ceil(math.log2(len(srcs))) if len(srcs) > 1 else 0
        out = self._merge(srcs, prefix, depth)
        self.wire(out, dst)

    def _merge(self, srcs: list[str], prefix: str, depth: int) -> str:
        if len(srcs) == 1:
            src = srcs[0]
            for _ in range(depth):
                j = self.add(f"{prefix}_jtl", "JTL")
                self.wire(src, f"{j}.a")
                src = f"{j}.q"
            return src
        half = len(srcs) // 2 + len(srcs) % 2
        a = self._merge(srcs[:half], prefix, depth - 1)
        b = self._merge(srcs[half:], prefix, depth - 1)
        m = self.add(f"{prefix}_mrg", "MERGE")
        self.wire(a, f"{m}.a")
        self.wire(b, f"{m}.b")
        return f"{m}.q"


def _synapse_cell(b: _Builder, prefix: str, p: float, config: SFQConfig) -> str:
    if p >= config.pcurve.p_max:
        return b.add(f"{prefix}_jtl", "JTL", p=1.0)  # always transmits
    return b.add(f"{prefix}_syn", "SYN", bias_ua=config.pcurve.bias_for(p), p=float(p))


def _beyond_one(arr: np.ndarray, what: str) -> str | None:
    """Why ``arr`` cannot be transmit probabilities (an entry outside [-1, 1])."""
    if not np.any(np.abs(arr) > 1.0 + 1e-9):
        return None
    idx = np.unravel_index(int(np.argmax(np.abs(arr))), arr.shape)
    return (
        f"{what}{list(map(int, idx))} = {float(arr[idx]):.4g} is outside [-1, 1]; SFQ "
        "synapses encode |w| as a transmit probability (retrain with clamped weights)"
    )


def _check_layers(layers: Sequence[SFQLayer], n_inputs: int, config: SFQConfig) -> None:
    width = n_inputs
    for layer in layers:
        w = np.asarray(layer.weight, dtype=np.float64)
        if w.ndim != 2 or w.shape[1] != width:
            raise ExportError(
                f"layer {layer.name!r}: weight shape {w.shape} does not take {width} inputs"
            )
        if not np.all(np.isfinite(w)):
            raise ExportError(f"layer {layer.name!r}: weight contains NaN/Inf")
        bias = np.zeros(w.shape[0]) if layer.bias is None else np.asarray(layer.bias, np.float64)
        if bias.shape != (w.shape[0],) or not np.all(np.isfinite(bias)):
            raise ExportError(
                f"layer {layer.name!r}: bias must be finite with shape ({w.shape[0]},)"
            )
        for arr, what in ((w, "weight"), (bias, "bias")):
            why = _beyond_one(arr, what)
            if why:
                raise ExportError(f"layer {layer.name!r}: {why}")
            if not config.inhibitory and np.any(arr < -config.prune):
                idx = np.unravel_index(int(np.argmin(arr)), arr.shape)
                raise ExportError(
                    f"layer {layer.name!r}: negative {what}{list(map(int, idx))} = "
                    f"{float(arr[idx]):.4g} needs an inhibitory synapse, but inhibitory cells are "
                    "disabled (inhibitory=False)"
                )
        fan_in = (np.abs(w) >= config.prune).sum(axis=1) + (np.abs(bias) >= config.prune)
        worst = int(np.argmax(fan_in))
        if fan_in[worst] > config.max_fan_in:
            raise ExportError(
                f"layer {layer.name!r}: neuron {worst} has fan-in {int(fan_in[worst])} "
                f"(synapses incl. bias) over the limit max_fan_in={config.max_fan_in}"
            )
        if not isinstance(layer.theta, int) or layer.theta < 1:
            raise ExportError(f"layer {layer.name!r}: theta must be an integer >= 1")
        width = w.shape[0]


def build_netlist(
    layers: Sequence[SFQLayer],
    n_inputs: int,
    *,
    config: SFQConfig = SFQConfig(),
    input_names: Sequence[str] | None = None,
    name: str = "net",
) -> Netlist:
    """Build a validated, timing-checked netlist for a chain of rate layers."""
    if n_inputs < 1:
        raise ExportError("network needs at least one input")
    _check_layers(layers, n_inputs, config)
    in_names = list(input_names) if input_names is not None else [f"in{i}" for i in range(n_inputs)]
    b = _Builder()
    clocked: list[str] = []  # cells whose clk needs a clock leaf
    bias_syn: list[tuple[str, str]] = []  # (synapse cell, its input port) fed by the clock

    # inputs: IN -> DRO latch
    sources: list[str] = []
    for nm in in_names:
        port = b.add(nm, "IN")
        dro = b.add(f"{nm}_dro", "DRO")
        b.wire(f"{port}.q", f"{dro}.d")
        clocked.append(dro)
        sources.append(f"{dro}.q")

    layer_meta = []
    for li, layer in enumerate(layers):
        w = np.asarray(layer.weight, dtype=np.float64)
        n_out = w.shape[0]
        bias = np.zeros(n_out) if layer.bias is None else np.asarray(layer.bias, np.float64)
        mask = np.abs(w) >= config.prune
        # fan-out of each source to the synapses it drives (balanced: same depth per layer)
        fan = mask.sum(axis=0)
        depth = max(int(math.ceil(math.log2(f))) if f > 1 else 0 for f in fan) if len(fan) else 0
        taps: list[list[str]] = []
        for i, src in enumerate(sources):
            taps.append(b.split_tree(src, int(fan[i]), f"L{li}_fo{i}", depth) if fan[i] else [])
        neurons = []
        for j in range(n_out):
            exc: list[str] = []
            inh: list[str] = []
            for i in range(w.shape[1]):
                if not mask[j, i]:
                    continue
                syn = _synapse_cell(b, f"L{li}_s{j}_{i}", abs(w[j, i]), config)
                b.wire(taps[i].pop(0), f"{syn}.a")
                (exc if w[j, i] > 0 else inh).append(f"{syn}.q")
            if abs(bias[j]) >= config.prune:
                syn = _synapse_cell(b, f"L{li}_b{j}", abs(bias[j]), config)
                bias_syn.append((syn, "a"))
                (exc if bias[j] > 0 else inh).append(f"{syn}.q")
            nrn = b.add(f"L{li}_n{j}", "NEURON", theta=int(layer.theta), floor=int(layer.floor))
            b.merge_tree(exc, f"{nrn}.exc", f"L{li}_n{j}_e")
            b.merge_tree(inh, f"{nrn}.inh", f"L{li}_n{j}_i")
            clocked.append(nrn)
            neurons.append(nrn)
        layer_meta.append(
            {"name": layer.name, "neurons": neurons, "theta": int(layer.theta), **layer.meta}
        )
        sources = [f"{n}.q" for n in neurons]

    out_names = []
    for k, src in enumerate(sources):
        o = b.add(f"out{k}", "OUT")
        b.wire(src, f"{o}.a")
        out_names.append(o)

    # clock tree: one leaf per clocked cell and per bias synapse, all at equal depth
    clk = b.add("clk", "CLK", phase_ps=0.0)
    leaves = [f"{c}.clk" for c in clocked] + [f"{s}.{p}" for s, p in bias_syn]
    ends = b.split_tree(f"{clk}.q", len(leaves), "ck")
    for end, leaf in zip(ends, leaves, strict=False):
        b.wire(end, leaf)
    # zero skew: pad each leaf wire (a passive line / PTL delay) up to the slowest leaf
    leaf_set = {tuple(lf.split(".")) for lf in leaves}
    probe = Netlist(name, b.cells, b.conns, list(in_names), [], config.clock_ghz, clk)
    arr = _propagate(probe, _out_of(probe), clk, "q", 0.0)
    t_leaf = max(arr[k][1] for k in leaf_set)
    b.conns = [
        Connection(
            k.src, k.src_port, k.dst, k.dst_port, round(t_leaf - arr[(k.dst, k.dst_port)][1], 6)
        )
        if (k.dst, k.dst_port) in leaf_set
        else k
        for k in b.conns
    ]

    nl = Netlist(
        name=name,
        cells=b.cells,
        connections=b.conns,
        inputs=in_names,
        outputs=out_names,
        clock_ghz=float(config.clock_ghz),
        clock_source=clk,
        leaf_delay_ps=t_leaf,
        temperature_k=config.temperature_k,
        pcurve=config.pcurve,
        meta={
            "layers": layer_meta,
            "latency_cycles": len(layers) + 1,
            "input_hold_ps": config.hold_ps,
            "mapping": "rate-coded; |w| = synapse transmit probability; see docs/sfq-netlist.md",
        },
    )
    nl.validate()
    check_timing(nl)
    return nl


def _propagate(
    nl: Netlist, out_of: dict[tuple[str, str], list[Connection]], cell: str, port: str, t0: float
) -> dict[tuple[str, str], tuple[float, float]]:
    """(earliest, latest) arrival at every input port reachable from ``cell.port`` launched
    at ``t0`` through unclocked cells (propagation stops at clocked cells and OUT ports)."""
    arrival: dict[tuple[str, str], tuple[float, float]] = {}
    stack = [(cell, port, t0)]
    while stack:
        c, p, t = stack.pop()
        for k in out_of.get((c, p), []):
            ta = t + k.delay_ps
            key = (k.dst, k.dst_port)
            lo, hi = arrival.get(key, (math.inf, -math.inf))
            if lo <= ta <= hi:
                continue
            arrival[key] = (min(lo, ta), max(hi, ta))
            ct = CELL_LIBRARY[nl.cells[k.dst].type]
            if ct.clocked or ct.name == "OUT":
                continue
            for op in ct.outputs:
                stack.append((k.dst, op, ta + nl.cells[k.dst].delay_ps))
    return arrival


def _out_of(nl: Netlist) -> dict[tuple[str, str], list[Connection]]:
    out_of: dict[tuple[str, str], list[Connection]] = {}
    for k in nl.connections:
        out_of.setdefault((k.src, k.src_port), []).append(k)
    return out_of


def clock_arrivals(nl: Netlist) -> dict[str, float]:
    """Arrival time (ps after the CLK source fires) of the clock at every clocked cell."""
    if nl.clock_source is None:
        return {}
    out_of = _out_of(nl)
    phase = float(nl.cells[nl.clock_source].params.get("phase_ps", 0.0))
    arr = _propagate(nl, out_of, nl.clock_source, "q", phase)
    res = {}
    for (cell, port), (lo, hi) in arr.items():
        if port == "clk":
            if hi - lo > 1e-9:
                raise ExportError(f"clock reaches {cell} along paths of different delay")
            res[cell] = lo
    return res


def input_offsets(nl: Netlist) -> dict[str, float]:
    """When (ps after clock edge k) the pulse of input cycle k is injected at each IN port:
    ``hold_ps`` after the clock reaches the first clocked cell behind the port."""
    out_of = _out_of(nl)
    clk = clock_arrivals(nl)
    hold = float(nl.meta.get("input_hold_ps", 1.0))
    offs = {}
    for name in nl.inputs:
        arr = _propagate(nl, out_of, name, "q", 0.0)
        lat = [clk[c] - lo for (c, p), (lo, hi) in arr.items() if c in clk and p != "clk"]
        offs[name] = (max(lat) if lat else 0.0) + hold
    return offs


def check_timing(nl: Netlist, clock_ghz: float | None = None) -> dict[str, float]:
    """Check that every data pulse reaches its clocked cell within one period.

    Data launched at clock edge k (by a clocked cell, an IN port or the clock itself
    through a bias synapse) must reach the next clocked cell after that cell's edge k
    (hold) and at least ``setup_ps`` before its edge k+1. Raises :class:`ExportError`
    naming the critical end point; returns ``{"period_ps", "critical_ps", "slack_ps"}``.
    """
    f = nl.clock_ghz if clock_ghz is None else clock_ghz
    if not (f > 0):
        raise ExportError(f"clock frequency must be > 0 GHz, got {f}")
    period = 1000.0 / f
    out_of = _out_of(nl)
    clk = clock_arrivals(nl)
    offs = input_offsets(nl)
    launches: list[tuple[str, float, float]] = []  # (cell, launch time, its reference edge)
    for name, c in nl.cells.items():
        if c.type == "CLK":
            launches.append((name, float(c.params.get("phase_ps", 0.0)), 0.0))
        elif c.type == "IN":
            launches.append((name, offs[name], 0.0))
        elif CELL_LIBRARY[c.type].clocked:
            if name not in clk:
                raise ExportError(f"clocked cell {name!r} is not reached by the clock tree")
            launches.append((name, clk[name] + c.delay_ps, 0.0))
    worst = ("", "", -math.inf)
    for src, t0, _ in launches:
        for (cell, port), (lo, hi) in _propagate(nl, out_of, src, "q", t0).items():
            ct = CELL_LIBRARY[nl.cells[cell].type]
            if not ct.clocked or port == "clk":
                continue
            if lo <= clk[cell]:
                raise ExportError(
                    f"hold violation at {cell}.{port}: a pulse from {src} arrives "
                    f"{clk[cell] - lo:.1f} ps before the clock edge it should follow"
                )
            need = hi + ct.setup_ps - clk[cell]
            if need > worst[2]:
                worst = (cell, port, need)
    if worst[2] > period:
        raise ExportError(
            f"clock {f:g} GHz too fast: the path into {worst[0]}.{worst[1]} needs "
            f"{worst[2]:.1f} ps (incl. setup) but the period is {period:.1f} ps; "
            f"max clock {1000.0 / worst[2]:.1f} GHz"
        )
    crit = max(worst[2], 0.0)
    return {"period_ps": period, "critical_ps": crit, "slack_ps": period - crit}
