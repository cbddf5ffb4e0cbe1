"""Seeded random graphs over every built-in node kind, float and integer.

``random_graph(seed)`` draws a valid graph from one of three families, each covering the
parameter shapes users meet:

* ``cnn``: Conv1d/Conv2d (stride, padding, dilation, grouped and depthwise), Max/Avg/Sum
  pools (with padding), ReLU, residual ``Add`` branches, ``Scale``, Flatten, Linear heads;
* ``dense``: Linear (+ReLU/Scale) chains and residual adds on vectors;
* ``snn``: Linear/Conv/DelayLinear synapses into LIF, CubaLIF, IF and LI neurons with shared
  (size-1), per-channel or per-neuron thresholds and time constants, both resets, optional
  ``r``/``v_leak``/``w_in``, Delay lines and Threshold units.

The integer version is calibrated like post-training quantization: the float graph runs on
random inputs, and each value gets the 8-bit activation (or 16/32-bit membrane current)
spec that covers its range; weights get per-tensor or per-channel symmetric specs of 2 to
8 bits. ``quantize_graph`` is therefore also a quick PTQ for a user's float graph.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from neuroplast import graph as G
from neuroplast.quant import QuantSpec

__all__ = ["FAMILIES", "GraphCase", "random_graph", "quantize_graph", "random_inputs"]

FAMILIES = ("cnn", "dense", "snn")
# kinds whose integer output keeps their input's quantization
_PASS_THROUGH = ("ReLU", "MaxPool2d", "AvgPool2d", "Flatten", "Delay")


@dataclass(frozen=True)
class GraphCase:
    """A generated graph with the inputs to run it on: ``x`` is ``(T, B, *shape)`` float."""

    seed: int
    family: str
    float_graph: G.Graph
    int_graph: G.Graph
    x: np.ndarray

    @property
    def kinds(self) -> set[str]:
        return {n.kind for n in self.float_graph.nodes.values()}


class _Builder:
    """Appends nodes to a growing DAG, tracking each value's shape."""

    def __init__(self, rng: np.random.Generator, dt: float) -> None:
        self.rng = rng
        self.dt = dt
        self.nodes: dict[str, G.Node] = {}
        self.edges: list[tuple[str, str]] = []
        self.shape: dict[str, tuple[int, ...]] = {}
        self.n = 0

    def add(self, node: G.Node, *inputs: str, kind: str | None = None) -> str:
        self.n += 1
        name = f"{(kind or node.kind).lower()}{self.n}"
        self.nodes[name] = node
        self.edges += [(i, name) for i in inputs]
        self.shape[name] = node.out_shape([self.shape[i] for i in inputs])
        return name

    def graph(self) -> G.Graph:
        return G.Graph(self.nodes, self.edges, dt=self.dt)

    # ------------------------------------------------------------ parameters
    def weight(self, shape: tuple[int, ...]) -> np.ndarray:
        fan_in = int(np.prod(shape[1:]))
        return (self.rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32)

    def maybe_bias(self, n: int) -> np.ndarray | None:
        return (
            (0.2 * self.rng.standard_normal(n)).astype(np.float32)
            if self.rng.random() < 0.7
            else None
        )

    def sizes(self, shape: tuple[int, ...]) -> int:
        """How many values a neuron parameter has: per neuron, per channel (axis 0)."""
        r = self.rng.random()
        return shape[0] if r < 0.3 and len(shape) > 1 else int(np.prod(shape))

    def per(self, size: int, lo: float, hi: float) -> np.ndarray:
        """A parameter array: shared (size 1) or ``size`` values."""
        n = 1 if self.rng.random() < 0.4 else size
        return self.rng.uniform(lo, hi, n).astype(np.float32)


def _conv2d(b: _Builder, x: str, same: bool = False) -> str:
    c, h, w = b.shape[x]
    rng = b.rng
    k = int(rng.integers(1, 4))
    s = 1 if same else int(rng.integers(1, 3))
    d = 1 if same or k == 1 else int(rng.integers(1, 3))
    p = (d * (k - 1)) // 2 if same else int(rng.integers(0, 2))
    if same and (d * (k - 1)) % 2:
        k, d, p = 3, 1, 1
    r = rng.random()
    if r < 0.2 and c > 1:
        groups, c_out = c, c * int(rng.integers(1, 3))  # depthwise (multiplier 1 or 2)
    elif r < 0.3 and c % 2 == 0:
        groups, c_out = 2, 2 * int(rng.integers(1, 3))
    else:
        groups, c_out = 1, int(rng.integers(1, 5))
    if same:
        c_out = c if groups in (1, c) else c
        groups = 1 if groups != c else c
    eff = d * (k - 1) + 1
    if h + 2 * p < eff or w + 2 * p < eff:
        k, d, p, eff = 1, 1, 0, 1
    wt = b.weight((c_out, c // groups, k, k))
    node = G.Conv2d(weight=wt, bias=b.maybe_bias(c_out), stride=(s, s), padding=(p, p),
                    dilation=(d, d), groups=groups)  # fmt: skip
    return b.add(node, x)


def _pool(b: _Builder, x: str) -> str:
    c, h, w = b.shape[x]
    k = int(b.rng.integers(1, min(3, h, w) + 1))
    s = int(b.rng.integers(1, 3))
    p = int(b.rng.integers(0, 2)) if k >= 2 else 0
    cls = [G.MaxPool2d, G.AvgPool2d, G.SumPool2d][int(b.rng.integers(0, 3))]
    if cls is G.SumPool2d:
        p = 0  # integer SumPool needs zero-point-0 input; padded zeros are real zeros then
    return b.add(cls(kernel=(k, k), stride=(s, s), padding=(p, p)), x)


def _cnn(b: _Builder) -> str:
    rng = b.rng
    if rng.random() < 0.3:  # 1-D signal (C, L)
        c, length = int(rng.integers(1, 4)), int(rng.integers(6, 16))
        x = b.add(G.Input(shape=(c, length)))
        for _ in range(int(rng.integers(1, 3))):
            k = int(rng.integers(1, 4))
            groups = c if rng.random() < 0.3 and c > 1 else 1
            c_out = c if groups > 1 else int(rng.integers(1, 5))
            d = int(rng.integers(1, 3)) if k > 1 else 1
            p = int(rng.integers(0, 2))
            if b.shape[x][1] + 2 * p < d * (k - 1) + 1:
                k, d = 1, 1
            x = b.add(G.Conv1d(weight=b.weight((c_out, c // groups, k)), bias=b.maybe_bias(c_out),
                               stride=(int(rng.integers(1, 3)),), padding=(p,), dilation=(d,),
                               groups=groups), x)  # fmt: skip
            c = c_out
            if rng.random() < 0.6:
                x = b.add(G.ReLU(), x)
    else:
        c, h = int(rng.integers(1, 4)), int(rng.integers(5, 11))
        x = b.add(G.Input(shape=(c, h, int(rng.integers(5, 11)))))
        for _ in range(int(rng.integers(1, 4))):
            r = rng.random()
            if r < 0.45:
                x = _conv2d(b, x)
                if rng.random() < 0.6:
                    x = b.add(G.ReLU(), x)
            elif r < 0.65 and min(b.shape[x][1:]) >= 2:
                x = _pool(b, x)
            elif r < 0.85:  # residual: x + relu(conv_same(x))
                y = _conv2d(b, x, same=True)
                if b.shape[y] == b.shape[x]:
                    if rng.random() < 0.5:
                        y = b.add(G.ReLU(), y)
                    x = b.add(G.Add(), x, y)
            else:
                x = b.add(G.Scale(scale=b.per(b.sizes(b.shape[x]), -1.5, 1.5)), x)
    x = b.add(G.Flatten(), x)
    return _dense_head(b, x)


def _dense_head(b: _Builder, x: str) -> str:
    rng = b.rng
    for i in range(int(rng.integers(1, 3))):
        n_in = b.shape[x][0]
        n_out = int(rng.integers(2, 24))
        x = b.add(G.Linear(weight=b.weight((n_out, n_in)), bias=b.maybe_bias(n_out)), x)
        if i == 0 and rng.random() < 0.5:
            x = b.add(G.ReLU(), x)
    return x


def _dense(b: _Builder) -> str:
    rng = b.rng
    x = b.add(G.Input(shape=(int(rng.integers(2, 32)),)))
    for _ in range(int(rng.integers(1, 4))):
        n = b.shape[x][0]
        r = rng.random()
        if r < 0.5:
            m = int(rng.integers(2, 32))
            x = b.add(G.Linear(weight=b.weight((m, n)), bias=b.maybe_bias(m)), x)
            if rng.random() < 0.5:
                x = b.add(G.ReLU(), x)
        elif r < 0.8:
            y = b.add(G.Linear(weight=b.weight((n, n)), bias=b.maybe_bias(n)), x)
            if rng.random() < 0.5:
                y = b.add(G.ReLU(), y)
            x = b.add(G.Add(), x, y)
        else:
            x = b.add(G.Scale(scale=b.per(n, -1.5, 1.5)), x)
    return x


def _neuron(b: _Builder, x: str, spiking_only: bool = False) -> str:
    rng, dt = b.rng, b.dt
    n = b.sizes(b.shape[x])  # every parameter of one neuron: 1 or n values
    kinds = ["LIF", "CubaLIF", "IF"] + ([] if spiking_only else ["LI"])
    kind = kinds[int(rng.integers(0, len(kinds)))]
    v_th = b.per(n, 0.3, 1.5)
    opt = lambda lo, hi: b.per(n, lo, hi) if rng.random() < 0.3 else None  # noqa: E731
    reset = "subtract" if rng.random() < 0.4 else "zero"
    tau = b.per(n, 2 * dt, 20 * dt)
    r = (tau / dt * rng.uniform(0.5, 2.0)).astype(np.float32) if rng.random() < 0.3 else None
    if kind == "LIF":
        node = G.LIF(tau_mem=tau, v_th=v_th, v_reset=opt(-0.2, 0.1), v_leak=opt(-0.1, 0.1),
                     r=r, reset=reset)  # fmt: skip
    elif kind == "CubaLIF":
        node = G.CubaLIF(tau_syn=b.per(n, 2 * dt, 10 * dt), tau_mem=tau, v_th=v_th,
                         v_reset=opt(-0.2, 0.1), w_in=opt(0.5, 2.0), reset=reset)  # fmt: skip
    elif kind == "IF":
        node = G.IF(v_th=v_th, v_reset=opt(-0.2, 0.1), r=opt(0.3, 1.0), reset=reset)
    else:
        node = G.LI(tau_mem=tau, v_leak=opt(-0.1, 0.1))
    return b.add(node, x)


def _snn(b: _Builder) -> str:
    rng = b.rng
    conv = rng.random() < 0.25
    if conv:
        x = b.add(
            G.Input(
                shape=(int(rng.integers(1, 3)), int(rng.integers(5, 9)), int(rng.integers(5, 9)))
            )
        )
        x = _conv2d(b, x)
        x = _neuron(b, x, spiking_only=True)
        x = b.add(G.Flatten(), x)
    else:
        x = b.add(G.Input(shape=(int(rng.integers(2, 24)),)))
    for i in range(int(rng.integers(1, 4))):
        n_in = b.shape[x][0]
        n = int(rng.integers(2, 20))
        r = rng.random()
        if r < 0.3:
            d = rng.integers(0, 7, (n, n_in))
            x = b.add(G.DelayLinear(weight=b.weight((n, n_in)), delay=d, bias=b.maybe_bias(n)), x)
        else:
            x = b.add(G.Linear(weight=b.weight((n, n_in)), bias=b.maybe_bias(n)), x)
        last = i == 2 or rng.random() < 0.3
        if rng.random() < 0.15 and not last:
            x = b.add(G.Threshold(v_th=b.per(b.shape[x][0], -0.2, 0.5)), x)
        else:
            x = _neuron(b, x, spiking_only=not last)
            if b.nodes[x].kind == "LI":
                break
        if rng.random() < 0.25 and not last:
            d = rng.integers(0, 5, 1 if rng.random() < 0.4 else b.shape[x][0])
            x = b.add(G.Delay(delay=d), x)
        if last:
            break
    return x


_FAMILY = {"cnn": _cnn, "dense": _dense, "snn": _snn}


def random_inputs(graph: G.Graph, rng: np.random.Generator, t: int, batch: int) -> np.ndarray:
    """``(T, B, *shape)`` float inputs: spike-like for spiking graphs, else Gaussian."""
    shape = graph.shapes()[graph.inputs[0]]
    if any(n.neuron for n in graph.nodes.values()) and rng.random() < 0.5:
        return (rng.random((t, batch) + shape) < 0.3).astype(np.float32)
    return rng.standard_normal((t, batch) + shape).astype(np.float32)


def _act_spec(lo: float, hi: float, rng: np.random.Generator) -> QuantSpec:
    """8-bit spec covering [lo, hi] (and 0): signed symmetric, or asymmetric (int8/uint8)."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    span = max(hi - lo, 1e-3)
    r = rng.random()
    if r < 0.4:  # symmetric, zero point 0
        return QuantSpec(bits=8, scale=float(np.float32(max(-lo, hi, 1e-3) / 127 * 1.05)))
    scale = float(np.float32(span / 255 * 1.05 + 1e-6))
    signed = r < 0.7
    zp = int(
        np.clip(
            round(-lo / scale) + (-128 if signed else 0),
            -128 if signed else 0,
            127 if signed else 255,
        )
    )
    return QuantSpec(bits=8, scale=scale, zero_point=zp, signed=signed)


def _weight_spec(w: np.ndarray, rng: np.random.Generator) -> QuantSpec:
    bits = int(rng.choice([8, 8, 8, 6, 4, 2]))
    qmax = (1 << (bits - 1)) - 1
    per_row = np.abs(w.reshape(w.shape[0], -1)).max(axis=1) + 1e-6
    if rng.random() < 0.5:
        return QuantSpec(bits=bits, scale=tuple(float(np.float32(s / qmax)) for s in per_row),
                         axis=0, narrow=True)  # fmt: skip
    return QuantSpec(bits=bits, scale=float(np.float32(per_row.max() / qmax)), narrow=True)


def quantize_graph(graph: G.Graph, x: np.ndarray, seed: int = 0) -> G.Graph:
    """Post-training quantization of a float graph, calibrated on ``x`` ``(T, B, *shape)``.

    8-bit activations (signed/unsigned, symmetric or not), 2..8-bit weights, 16- or 32-bit
    currents into neurons (the membrane takes the current's scale), zero-point-0 inputs
    to SumPool (its integer sum must start from real zeros).
    """
    from neuroplast.runtime import Runtime

    rng = np.random.default_rng(seed)
    rt = Runtime(graph, mode="float")
    ranges: dict[str, tuple[float, float]] = {}
    rt.reset(x.shape[1])
    for t in range(x.shape[0]):
        rt.step(x[t])
        for n, v in rt.last_outputs.items():
            v = np.asarray(v, np.float64)
            lo, hi = ranges.get(n, (0.0, 0.0))
            ranges[n] = (min(lo, float(v.min())), max(hi, float(v.max())))
    succ = {n: graph.successors(n) for n in graph.nodes}
    # values that reach a SumPool2d through pass-through kinds need zero point 0
    sum_in: set[str] = set()
    stack = [
        p for n, nd in graph.nodes.items() if nd.kind == "SumPool2d" for p in graph.predecessors(n)
    ]
    while stack:
        p = stack.pop()
        sum_in.add(p)
        if graph.nodes[p].kind in _PASS_THROUGH:
            stack += graph.predecessors(p)
    nodes: dict[str, G.Node] = {}
    for name in graph.topo_order():
        node = graph.nodes[name]
        lo, hi = ranges[name]
        feeds_neuron = any(graph.nodes[s].neuron for s in succ[name])
        if name in sum_in:
            act = QuantSpec(bits=8, scale=float(np.float32(max(-lo, hi, 1e-3) / 127 * 1.05)))
        else:
            act = _act_spec(lo, hi, rng)
        kw: dict[str, Any] = {}
        if isinstance(node, G.Input):
            kw["quant"] = act
        elif hasattr(node, "weight_q"):
            kw["weight_q"] = _weight_spec(np.asarray(node.weight), rng)
            if feeds_neuron:
                # the membrane takes this scale: headroom above the calibrated range, and a
                # floor that keeps s_in * s_w / s_out (the requantization multiplier) < 2^30
                bits = int(rng.choice([16, 32]))
                span = max(-lo, hi, 1e-2) * (4 if bits == 16 else 256)
                scale = max(span / ((1 << (bits - 1)) - 1), 1e-6)
                kw["out_q"] = QuantSpec(bits=bits, scale=float(np.float32(scale)))
            else:
                kw["out_q"] = act
        elif isinstance(node, (G.Add, G.Scale)):
            kw["out_q"] = act
        nodes[name] = replace(node, **kw) if kw else node
    return G.Graph(nodes, list(graph.edges), dt=graph.dt, outputs=graph.outputs)


def random_graph(seed: int, family: str | None = None, t: int | None = None) -> GraphCase:
    """Graph ``seed`` of ``family`` (drawn from the seed when ``None``), float and int,
    with inputs ``(T, B, *shape)`` (T in 1..6, B in 1..3 unless ``t`` is given)."""
    rng = np.random.default_rng(seed)
    fam = family or FAMILIES[int(rng.integers(0, len(FAMILIES)))]
    dt = float(rng.choice([1e-3, 1e-4]))
    b = _Builder(rng, dt)
    _FAMILY[fam](b)
    g = b.graph()
    x = random_inputs(g, rng, t or int(rng.integers(1, 7)), int(rng.integers(1, 4)))
    return GraphCase(seed, fam, g, quantize_graph(g, x, seed), x)
