"""Board self-test: random integer graphs of every layer kind, run on a board and on the
host integer runtime, compared bit for bit.

:func:`random_graph` builds a small quantized graph around one node kind with random
parameters (shapes, per-channel or per-tensor scales, zero points, strides, padding,
dilation, depthwise and grouped convolutions, reset modes, per-neuron thresholds and
time constants, delays); :func:`check_board` runs ``n`` of them per kind through a
connected :class:`~neuroplast.firmware_bridge.client.Board` and the host runtime.
``neuroplast board selftest --port ...`` does this against any board (a port in
progress, a real dev board), and the kernel coverage table in ``docs/boards.md`` is its
output on the x86 virtual board and the Cortex-M4 under QEMU.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neuroplast.graph.graph import Graph
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
from neuroplast.quant import QuantSpec

__all__ = ["KIND_GRAPHS", "random_graph", "KindResult", "check_board", "check_graph"]

Rng = np.random.Generator


def _s(rng: Rng, lo: float = 0.004, hi: float = 0.09) -> float:
    """An irregular scale (regular ones like 0.05 make many rounding ties)."""
    return float(rng.uniform(lo, hi))


def _q8(rng: Rng, zp: bool = True) -> QuantSpec:
    return QuantSpec(8, _s(rng), int(rng.integers(-20, 21)) if zp else 0)


def _wq(rng: Rng, w: np.ndarray) -> QuantSpec:
    """int8 symmetric weights, per channel (axis 0) or per tensor, at random."""
    if rng.random() < 0.5:
        s = np.abs(w).reshape(w.shape[0], -1).max(axis=1) / 127 + 1e-3
        return QuantSpec(8, tuple(float(v) for v in s), 0, axis=0, narrow=True)
    return QuantSpec(8, float(np.abs(w).max() / 127 + 1e-3), 0, narrow=True)


def _input(rng: Rng, shape: tuple[int, ...]) -> tuple[str, Input]:
    return "x", Input(shape=shape, quant=_q8(rng))


def _linear(rng: Rng, n_in: int, n_out: int, out_q: QuantSpec, bias: bool = True) -> Linear:
    w = rng.normal(0, 0.4, (n_out, n_in))
    b = rng.normal(0, 0.2, n_out) if bias and rng.random() < 0.8 else None
    return Linear(weight=w, bias=b, weight_q=_wq(rng, w), out_q=out_q)


def _current(rng: Rng) -> QuantSpec:
    """A membrane-current quantization (16 bits, zero point 0)."""
    return QuantSpec(16, _s(rng, 0.002, 0.02), 0)


def _g_linear(rng: Rng) -> Graph:
    n_in, n_out = int(rng.integers(1, 40)), int(rng.integers(1, 30))
    oq = _q8(rng) if rng.random() < 0.6 else QuantSpec(16, _s(rng), int(rng.integers(-99, 99)))
    return Graph.sequential([_input(rng, (n_in,)), ("fc", _linear(rng, n_in, n_out, oq))])


def _conv_params(rng: Rng, k: int, n: int) -> tuple[int, int, int]:
    """(stride, padding, dilation) for a kernel of k taps over n positions."""
    d = int(rng.integers(1, 3)) if k > 1 else 1
    p = int(rng.integers(0, (d * (k - 1)) // 2 + 2))
    s = int(rng.integers(1, 3))
    while (n + 2 * p - d * (k - 1) - 1) < 0:
        p += 1
    return s, p, d


def _groups(rng: Rng, c_in: int) -> tuple[int, int]:
    """(groups, c_out): plain, grouped or depthwise."""
    r = rng.random()
    if r < 0.35:
        return 1, int(rng.integers(1, 7))
    if r < 0.7:  # depthwise (with a channel multiplier)
        return c_in, c_in * int(rng.integers(1, 3))
    g = [d for d in range(1, c_in + 1) if c_in % d == 0][int(rng.integers(0, 1 + (c_in > 1)))]
    return g, g * int(rng.integers(1, 4))


def _g_conv1d(rng: Rng) -> Graph:
    c, n, k = int(rng.integers(1, 6)), int(rng.integers(4, 20)), int(rng.integers(1, 5))
    s, p, d = _conv_params(rng, k, n)
    g, co = _groups(rng, c)
    w = rng.normal(0, 0.5, (co, c // g, k))
    conv = Conv1d(weight=w, bias=rng.normal(0, 0.1, co), stride=(s,), padding=(p,),
                  dilation=(d,), groups=g, weight_q=_wq(rng, w), out_q=_q8(rng))  # fmt: skip
    return Graph.sequential([_input(rng, (c, n)), ("conv", conv)])


def _conv2d(rng: Rng, c: int, h: int, wd: int) -> Conv2d:
    kh, kw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    sh, ph, dh = _conv_params(rng, kh, h)
    sw, pw, dw = _conv_params(rng, kw, wd)
    g, co = _groups(rng, c)
    w = rng.normal(0, 0.5, (co, c // g, kh, kw))
    b = rng.normal(0, 0.1, co) if rng.random() < 0.8 else None
    return Conv2d(weight=w, bias=b, stride=(sh, sw), padding=(ph, pw), dilation=(dh, dw),
                  groups=g, weight_q=_wq(rng, w), out_q=_q8(rng))  # fmt: skip


def _chw(rng: Rng) -> tuple[int, int, int]:
    return int(rng.integers(1, 5)), int(rng.integers(3, 10)), int(rng.integers(3, 10))


def _g_conv2d(rng: Rng) -> Graph:
    c, h, w = _chw(rng)
    return Graph.sequential([_input(rng, (c, h, w)), ("conv", _conv2d(rng, c, h, w))])


def _pool(rng: Rng, cls: type) -> Graph:
    c, h, w = _chw(rng)
    k = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    pad = (int(rng.integers(0, k[0] // 2 + 1)), int(rng.integers(0, k[1] // 2 + 1)))  # <= k/2
    st = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    x = ("x", Input(shape=(c, h, w), quant=_q8(rng, zp=cls is not SumPool2d)))
    pool = cls(kernel=k, stride=st, padding=pad)
    layers = [x, ("pool", pool)]
    if cls is SumPool2d and rng.random() < 0.5:  # window sums (int32 codes) into a Linear
        n = int(np.prod(pool.out_shape([(c, h, w)])))
        layers += [("flat", Flatten()), ("fc", _linear(rng, n, 4, _q8(rng)))]
    return Graph.sequential(layers)


def _g_add(rng: Rng) -> Graph:
    """A residual block: x -> conv (same shape) -> add(x, conv) -> (ReLU)."""
    c, h, w = _chw(rng)
    wt = rng.normal(0, 0.5, (c, 1, 3, 3))
    conv = Conv2d(weight=wt, padding=(1, 1), groups=c, weight_q=_wq(rng, wt), out_q=_q8(rng))
    nodes = {"x": _input(rng, (c, h, w))[1], "conv": conv, "add": Add(out_q=_q8(rng))}
    edges = [("x", "conv"), ("x", "add"), ("conv", "add")]
    if rng.random() < 0.5:  # Add's inputs in the other order
        edges = [("x", "conv"), ("conv", "add"), ("x", "add")]
    return Graph(nodes, edges)


def _g_relu(rng: Rng) -> Graph:
    n = int(rng.integers(1, 30))
    oq = QuantSpec(8, _s(rng), int(rng.integers(-60, 60)))
    return Graph.sequential([_input(rng, (n,)), ("fc", _linear(rng, n, n, oq)), ("relu", ReLU())])


def _g_flatten(rng: Rng) -> Graph:
    c, h, w = _chw(rng)
    n = c * h * w
    return Graph.sequential(
        [_input(rng, (c, h, w)), ("flat", Flatten()), ("fc", _linear(rng, n, 5, _q8(rng)))]
    )


def _bcast_param(rng: Rng, shape: tuple[int, ...], lo: float, hi: float) -> np.ndarray:
    r = rng.random()
    if r < 0.33:
        return np.array(rng.uniform(lo, hi))
    if r < 0.66 or len(shape) == 1:
        return rng.uniform(lo, hi, int(np.prod(shape)))
    return rng.uniform(lo, hi, shape[0])  # per channel


def _g_scale(rng: Rng) -> Graph:
    shape = (int(rng.integers(1, 5)), int(rng.integers(1, 6))) if rng.random() < 0.5 else (12,)
    s = _bcast_param(rng, shape, -2.0, 2.0)
    oq = _q8(rng) if rng.random() < 0.7 else QuantSpec(16, _s(rng), 0)
    return Graph.sequential([_input(rng, shape), ("scale", Scale(scale=s, out_q=oq))])


def _g_threshold(rng: Rng) -> Graph:
    shape = (int(rng.integers(1, 5)), int(rng.integers(1, 6))) if rng.random() < 0.5 else (16,)
    th = _bcast_param(rng, shape, -3.0, 3.0)
    return Graph.sequential([_input(rng, shape), ("th", Threshold(v_th=th))])


def _neuron_graph(rng: Rng, make: Callable[[int], Any], out_bits: int = 16) -> Graph:
    n_in, n = int(rng.integers(2, 20)), int(rng.integers(1, 16))
    oq = _current(rng) if out_bits == 16 else QuantSpec(32, _s(rng, 0.001, 0.01), 0)
    return Graph.sequential(
        [_input(rng, (n_in,)), ("fc", _linear(rng, n_in, n, oq)), ("n", make(n))], dt=1e-3
    )


def _per(rng: Rng, n: int, lo: float, hi: float) -> np.ndarray:
    return rng.uniform(lo, hi, n) if rng.random() < 0.6 else np.full(n, rng.uniform(lo, hi))


def _g_lif(rng: Rng) -> Graph:
    def make(n: int) -> LIF:
        return LIF(tau_mem=_per(rng, n, 0.002, 0.05), v_th=_per(rng, n, 0.1, 1.0),
                   v_reset=_per(rng, n, -0.2, 0.1), v_leak=_per(rng, n, -0.1, 0.1),
                   reset=str(rng.choice(["zero", "subtract"])))  # fmt: skip

    return _neuron_graph(rng, make)


def _g_cubalif(rng: Rng) -> Graph:
    def make(n: int) -> CubaLIF:
        return CubaLIF(tau_syn=_per(rng, n, 0.002, 0.02), tau_mem=_per(rng, n, 0.002, 0.05),
                       v_th=_per(rng, n, 0.2, 1.5), v_leak=_per(rng, n, -0.1, 0.1),
                       reset=str(rng.choice(["zero", "subtract"])))  # fmt: skip

    return _neuron_graph(rng, make)


def _g_if(rng: Rng) -> Graph:
    def make(n: int) -> IF:
        return IF(v_th=_per(rng, n, 0.1, 1.0), v_reset=_per(rng, n, -0.2, 0.1),
                  reset=str(rng.choice(["zero", "subtract"])))  # fmt: skip

    return _neuron_graph(rng, make)


def _g_li(rng: Rng) -> Graph:
    return _neuron_graph(
        rng, lambda n: LI(tau_mem=_per(rng, n, 0.002, 0.05), v_leak=_per(rng, n, -0.1, 0.1)), 32
    )


def _g_delay(rng: Rng) -> Graph:
    shape = (int(rng.integers(1, 4)), int(rng.integers(1, 6))) if rng.random() < 0.5 else (9,)
    d = rng.integers(0, 9, int(np.prod(shape)) if rng.random() < 0.7 else 1)
    return Graph.sequential([_input(rng, shape), ("dly", Delay(delay=d))])


def _g_delay_linear(rng: Rng) -> Graph:
    n_in, n_out = int(rng.integers(1, 24)), int(rng.integers(1, 16))
    w = rng.normal(0, 0.4, (n_out, n_in))
    dl = DelayLinear(weight=w, delay=rng.integers(0, 12, w.shape), weight_q=_wq(rng, w),
                     bias=rng.normal(0, 0.1, n_out), out_q=_current(rng))  # fmt: skip
    return Graph.sequential([_input(rng, (n_in,)), ("dl", dl)])


#: One generator per node kind name (the kinds the firmware claims).
KIND_GRAPHS: dict[str, Callable[[Rng], Graph]] = {
    "Linear": _g_linear,
    "Conv1d": _g_conv1d,
    "Conv2d": _g_conv2d,
    "MaxPool2d": lambda rng: _pool(rng, MaxPool2d),
    "AvgPool2d": lambda rng: _pool(rng, AvgPool2d),
    "SumPool2d": lambda rng: _pool(rng, SumPool2d),
    "Add": _g_add,
    "ReLU": _g_relu,
    "Flatten": _g_flatten,
    "Scale": _g_scale,
    "Threshold": _g_threshold,
    "LIF": _g_lif,
    "CubaLIF": _g_cubalif,
    "IF": _g_if,
    "LI": _g_li,
    "Delay": _g_delay,
    "DelayLinear": _g_delay_linear,
}


def random_graph(kind: str, rng: Rng) -> Graph:
    """A random valid integer graph exercising node kind ``kind`` (see :data:`KIND_GRAPHS`)."""
    if kind not in KIND_GRAPHS:
        raise KeyError(f"no graph generator for kind {kind!r}; known: {sorted(KIND_GRAPHS)}")
    return KIND_GRAPHS[kind](rng)


@dataclass
class KindResult:
    """Per kind: graphs run, time steps compared, output values compared and differing."""

    kind: str
    graphs: int = 0
    steps: int = 0
    values: int = 0
    mismatches: int = 0
    arena_mismatches: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.graphs > 0 and not self.mismatches and not self.errors


def check_graph(board: Any, graph: Graph, rng: Rng, steps: int = 8) -> tuple[int, int, bool]:
    """Load ``graph`` on ``board``, run ``steps`` random int8 steps there and in the host
    integer runtime; return (values compared, values differing, arena as predicted)."""
    from neuroplast.runtime import Runtime

    rt = Runtime(graph, mode="int")
    image = board.load(rt)
    x = rng.integers(-128, 128, (steps,) + tuple(image.in_shape)).astype(np.int8)
    got = board.infer(x)
    rt.reset()
    ref = np.asarray(rt.run(x), dtype=np.int64).reshape(got.shape)
    arena_ok = board.stats()["arena_used"] == image.arena_bytes
    return int(ref.size), int(np.count_nonzero(ref != got)), arena_ok


def check_board(
    board: Any,
    kinds: Iterable[str] | None = None,
    graphs: int = 5,
    steps: int = 8,
    seed: int = 0,
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, KindResult]:
    """Run ``graphs`` random graphs of each kind on ``board`` and the host runtime."""
    from neuroplast.errors import NeuroplastError

    out: dict[str, KindResult] = {}
    for kind in kinds or KIND_GRAPHS:
        res = out[kind] = KindResult(kind)
        rng = np.random.default_rng([seed, sorted(KIND_GRAPHS).index(kind)])
        for i in range(graphs):
            g = random_graph(kind, rng)
            try:
                n, bad, arena_ok = check_graph(board, g, rng, steps)
            except NeuroplastError as e:
                res.errors.append(f"graph {i}: {e}")
                continue
            res.graphs += 1
            res.steps += steps
            res.values += n
            res.mismatches += bad
            res.arena_mismatches += not arena_ok
            if progress:
                progress(kind, i)
    return out
