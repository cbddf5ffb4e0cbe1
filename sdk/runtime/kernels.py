"""Kernels: the executable form of IR nodes, in float32 and integer mode.

A kernel is built once per node (validating everything at build time, so the step
path runs without checks), holds its mutable parameters in ``params`` (what
plasticity rules update), and exposes pure-in-spirit ``step(inputs, state) ->
(y, state)`` plus a time-vectorized ``run(inputs, state)`` for whole windows.
New node kinds register a factory with :func:`register_op`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import numpy as np

from neuroplast.errors import DataError, GraphError
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
    Node,
    ReLU,
    Scale,
    SumPool2d,
    Threshold,
)
from neuroplast.neurons import (
    CubaLIFIntParams,
    CubaLIFParams,
    CubaLIFState,
    LIFIntParams,
    LIFParams,
    LIFState,
    cubalif_step,
    cubalif_step_int,
    li_step,
    li_step_int,
    lif_step,
    lif_step_int,
)
from neuroplast.quant import QuantSpec, bias_to_int32, quantize, quantize_multiplier, requantize
from neuroplast.runtime import windows
from neuroplast.targets import CheckContext, Refusal, Target, register_target

__all__ = [
    "BuildContext",
    "Kernel",
    "OPS",
    "RUNTIME",
    "RUNTIME_INT",
    "register_op",
    "make_kernel",
    "SparseInput",
    "SPIKE_Q",
]

# Spikes in integer mode: int8 codes 0/1 with unit scale.
SPIKE_Q = QuantSpec(bits=8, scale=1.0, zero_point=0)


class SparseInput(NamedTuple):
    """Sparse event input for one step (batch 1): active ``indices`` and their ``values``
    (default 1). A Linear/DelayLinear consumer accumulates only those columns."""

    indices: np.ndarray
    values: np.ndarray | None = None


@dataclass(frozen=True)
class BuildContext:
    """What a kernel factory needs to know about its surroundings."""

    name: str
    mode: str  # "float" | "int"
    dt: float
    in_shapes: list[tuple[int, ...]]
    out_shape: tuple[int, ...]
    in_quants: list[QuantSpec | None]
    #: the runtime's backend request ("auto" | "native" | "numpy"); an op with its own
    #: compiled loop (e.g. the event scatter of ``HDDelayConv``) uses numpy under "numpy"
    backend: str = "auto"


class Kernel:
    """Base kernel: stateless identity. Subclasses override what they need."""

    stateful = False
    #: the loop of an op that runs its own compiled code outside the whole-graph plan
    #: ("native" | "numba" | "numpy"); None: the runtime's numpy step or native plan
    backend: str | None = None

    def __init__(self, node: Node, ctx: BuildContext) -> None:
        self.node = node
        self.ctx = ctx
        self.params: dict[str, np.ndarray] = {}
        self.out_quant: QuantSpec | None = ctx.in_quants[0] if ctx.in_quants else None

    def init_state(self, batch: int) -> tuple:
        return ()

    def step(self, inputs: list[Any], state: tuple) -> tuple[np.ndarray, tuple]:
        raise NotImplementedError

    def run(self, inputs: list[np.ndarray], state: tuple) -> tuple[np.ndarray, tuple]:
        """Whole window: inputs are (T, B, ...). Default: stateless ops fold T into B."""
        if self.stateful:
            ys = []
            for t in range(inputs[0].shape[0]):
                y, state = self.step([x[t] for x in inputs], state)
                ys.append(y)
            return np.stack(ys), state
        t, b = inputs[0].shape[:2]
        y, state = self.step([x.reshape((t * b,) + x.shape[2:]) for x in inputs], state)
        return y.reshape((t, b) + y.shape[1:]), state


OPS: dict[type, Callable[[Node, BuildContext], Kernel]] = {}

#: The numpy runtime as targets of the capability matrix: one kernel table (``OPS``), two
#: arithmetic modes. Integer mode also needs quantization metadata on every value, which
#: only building the kernels can tell (they validate everything at build time).
RUNTIME = register_target(
    Target("runtime", "numpy runtime, float32", engine="neuroplast (reference)")
)
RUNTIME_INT = register_target(
    Target(
        "runtime-int",
        "numpy runtime, integer (int8 weights, int32 accumulators)",
        engine="neuroplast (reference)",
        hint="run it in float mode, or quantize the model (neuroplast.quantize) first",
    )
)


@RUNTIME_INT.graph_check
def _int_kernels_build(ctx: CheckContext) -> list[Refusal]:
    rt = ctx.int_runtime
    if not isinstance(rt, Exception):
        return []
    node = getattr(rt, "node", None) or "*"
    kind = ctx.graph.nodes[node].kind if node in ctx.graph.nodes else ""
    msg = str(rt).removeprefix(f"node {node!r}: ").removeprefix(f"{kind}: ")
    return [Refusal(node, kind, "runtime-int", msg, "")]


def register_op(node_cls: type) -> Callable:
    """Decorator registering a kernel factory (class or function) for a node class."""

    def deco(factory: Callable[[Node, BuildContext], Kernel]) -> Callable:
        OPS[node_cls] = factory
        RUNTIME.register(node_cls)(factory)
        RUNTIME_INT.register(node_cls)(factory)
        return factory

    return deco


def make_kernel(node: Node, ctx: BuildContext) -> Kernel:
    for cls in type(node).__mro__:
        if cls in OPS:
            return OPS[cls](node, ctx)
    raise GraphError(f"node {ctx.name!r}: no runtime kernel for kind {node.kind!r}")


def _need_q(ctx: BuildContext, q: QuantSpec | None, what: str) -> QuantSpec:
    if q is None:
        raise GraphError(f"node {ctx.name!r}: integer mode needs {what}")
    return q


def _per_tensor_scale(q: QuantSpec) -> float:
    if isinstance(q.scale, tuple):
        if len(set(q.scale)) != 1:
            raise GraphError("activation quantization must be per tensor")
        return float(q.scale[0])
    return float(q.scale)


def _zp(q: QuantSpec) -> int:
    z = q.zero_point
    return int(z[0] if isinstance(z, tuple) else z)


def _bcast(a: np.ndarray, out_shape: tuple[int, ...]) -> np.ndarray:
    """Per-neuron (n,), per-channel (C,) or scalar params -> broadcastable to (B, *out_shape)."""
    a = np.asarray(a)
    if a.size == 1:
        return a.reshape(())
    if a.size == int(np.prod(out_shape)):
        return a.reshape(out_shape)
    return a.reshape((a.size,) + (1,) * (len(out_shape) - 1))


# ------------------------------------------------------------------------ Input


@register_op(Input)
class InputKernel(Kernel):
    def __init__(self, node: Input, ctx: BuildContext) -> None:
        super().__init__(node, ctx)
        self.out_quant = node.quant if ctx.mode == "int" else None
        if ctx.mode == "int":
            _need_q(ctx, node.quant, "Input.quant (the input's scale and zero point)")

    def step(self, inputs: list[Any], state: tuple) -> tuple[Any, tuple]:
        x = inputs[0]
        if isinstance(x, SparseInput) or self.ctx.mode == "float":
            return x, state
        if x.dtype.kind == "f":
            return quantize(x, self.out_quant), state
        return x, state


# ----------------------------------------------------------------- weighted ops


class _WeightedKernel(Kernel):
    """Shared quantized-weight bookkeeping for Linear/Conv/DelayLinear.

    Float mode: ``params["weight"]`` (float32), ``params["bias"]``.
    Int mode: ``params["weight"]`` holds int8 codes (what plasticity updates),
    ``params["bias"]`` int32 codes, plus the per-channel requantization (qm, shift).
    """

    def __init__(self, node: Any, ctx: BuildContext) -> None:
        super().__init__(node, ctx)
        w = np.array(node.weight, dtype=np.float32)
        b = None if node.bias is None else np.array(node.bias, dtype=np.float32)
        if ctx.mode == "float":
            self.params = {"weight": w}
            if b is not None:
                self.params["bias"] = b
            self.out_quant = None
            return
        in_q = _need_q(
            ctx, ctx.in_quants[0], "a quantized input (the producer has no quantization)"
        )
        wq = _need_q(ctx, node.weight_q, "weight_q")
        oq = _need_q(ctx, node.out_q, "out_q (output quantization)")
        if np.any(np.asarray(wq.zero_point) != 0):
            raise GraphError(f"node {ctx.name!r}: weights must be symmetric (zero point 0)")
        if wq.per_channel and wq.axis != 0:
            raise GraphError(f"node {ctx.name!r}: per-channel weight scales must be along axis 0")
        s_in = np.float32(_per_tensor_scale(in_q))
        s_w = np.asarray(wq.scale, dtype=np.float32).ravel()
        s_out = np.float32(_per_tensor_scale(oq))
        self.zp_in = _zp(in_q)
        self.zp_out = _zp(oq)
        self.out_min, self.out_max = oq.range
        # M = f32(s_in) * f32(s_w) / f32(s_out), evaluated in double (as LiteRT)
        m = s_in.astype(np.float64) * s_w.astype(np.float64) / np.float64(s_out)
        qm, shift = quantize_multiplier(m)
        n_out = w.shape[0]
        self.qm = np.broadcast_to(qm, (n_out,)).copy()
        self.shift = np.broadcast_to(shift, (n_out,)).copy()
        self.params = {"weight": quantize(w, wq)}
        lo, hi = in_q.range
        max_x = max(abs(lo - self.zp_in), abs(hi - self.zp_in))
        max_w = 1 << (wq.bits - 1)
        terms = int(np.prod(w.shape[1:]))
        # GEMMs on integer values in float are exact below the mantissa limit
        self.acc_dtype = windows.exact_float_dtype(max_x, max_w, terms)
        if b is not None:
            self.params["bias"] = bias_to_int32(b, float(s_in), np.broadcast_to(s_w, (n_out,)))
        self.out_quant = oq

    def _requant(self, acc: np.ndarray, ch_axis: int) -> np.ndarray:
        shape = [1] * acc.ndim
        shape[ch_axis] = -1
        y = requantize(acc, self.qm.reshape(shape), self.shift.reshape(shape)) + self.zp_out
        return np.clip(y, self.out_min, self.out_max).astype(self.out_quant.dtype)


@register_op(Linear)
class LinearKernel(_WeightedKernel):
    def step(self, inputs: list[Any], state: tuple) -> tuple[np.ndarray, tuple]:
        x = inputs[0]
        w = self.params["weight"]
        b = self.params.get("bias")
        if self.ctx.mode == "float":
            if isinstance(x, SparseInput):
                cols = w[:, x.indices]
                y = (cols.sum(axis=1) if x.values is None else cols @ x.values)[None, :]
            else:
                y = x @ w.T
            return (y if b is None else y + b).astype(np.float32, copy=False), state
        if isinstance(x, SparseInput):
            if self.zp_in != 0:
                raise DataError(f"node {self.ctx.name!r}: sparse input needs a zero-point-0 input")
            cols = w[:, x.indices].astype(np.int64)
            v = (
                np.ones(len(x.indices), np.int64)
                if x.values is None
                else np.asarray(x.values, np.int64)
            )
            acc = (cols @ v)[None, :]
        else:
            xc = x.astype(self.acc_dtype) - self.acc_dtype(self.zp_in)
            acc = (xc @ w.T.astype(self.acc_dtype)).astype(np.int64)
        if b is not None:
            acc = acc + b
        return self._requant(acc, 1), state


@register_op(Conv2d)
class Conv2dKernel(_WeightedKernel):
    def step(self, inputs: list[Any], state: tuple) -> tuple[np.ndarray, tuple]:
        x, n = inputs[0], self.node
        b = self.params.get("bias")
        if self.ctx.mode == "float":
            y = windows.conv2d(
                x.astype(np.float32, copy=False),
                self.params["weight"],
                n.stride,
                n.padding,
                n.dilation,
                n.groups,
            )
            return (y if b is None else y + b[:, None, None]).astype(np.float32, copy=False), state
        xc = x.astype(self.acc_dtype) - self.acc_dtype(self.zp_in)
        acc = windows.conv2d(
            xc,
            self.params["weight"].astype(self.acc_dtype),
            n.stride,
            n.padding,
            n.dilation,
            n.groups,
        ).astype(np.int64)
        if b is not None:
            acc = acc + b[:, None, None]
        return self._requant(acc, 1), state


@register_op(Conv1d)
class Conv1dKernel(_WeightedKernel):
    def step(self, inputs: list[Any], state: tuple) -> tuple[np.ndarray, tuple]:
        x, n = inputs[0], self.node
        b = self.params.get("bias")
        if self.ctx.mode == "float":
            y = windows.conv1d(
                x.astype(np.float32, copy=False),
                self.params["weight"],
                n.stride[0],
                n.padding[0],
                n.dilation[0],
                n.groups,
            )
            return (y if b is None else y + b[:, None]).astype(np.float32, copy=False), state
        xc = x.astype(self.acc_dtype) - self.acc_dtype(self.zp_in)
        acc = windows.conv1d(
            xc,
            self.params["weight"].astype(self.acc_dtype),
            n.stride[0],
            n.padding[0],
            n.dilation[0],
            n.groups,
        ).astype(np.int64)
        if b is not None:
            acc = acc + b[:, None]
        return self._requant(acc, 1), state


class _RingState(NamedTuple):
    buf: np.ndarray  # (depth, B, n) input history; row ``ptr`` holds the newest input
    ptr: np.ndarray  # int64 scalar array


@register_op(DelayLinear)
class DelayLinearKernel(_WeightedKernel):
    """``y_i[t] = b_i + sum_j W_ij x_j[t - D_ij]`` over a ring buffer of inputs."""

    stateful = True

    def __init__(self, node: DelayLinear, ctx: BuildContext) -> None:
        super().__init__(node, ctx)
        self.delay = np.array(node.delay, dtype=np.int64)
        self.depth = int(self.delay.max(initial=0)) + 1
        n_in = node.weight.shape[1]
        self.col = np.arange(n_in)[None, :]
        self.delays_present = np.unique(self.delay)

    def init_state(self, batch: int) -> tuple:
        dt = np.float32 if self.ctx.mode == "float" else np.int64
        fill = 0 if self.ctx.mode == "float" else self.zp_in
        return _RingState(
            np.full((self.depth, batch, self.node.weight.shape[1]), fill, dt), np.array(0)
        )

    def _dense(self, x: Any) -> np.ndarray:
        if isinstance(x, SparseInput):
            d = np.zeros(
                (1, self.node.weight.shape[1]), np.float32 if self.ctx.mode == "float" else np.int64
            )
            np.add.at(d[0], x.indices, 1 if x.values is None else x.values)
            return d
        return x

    def step(self, inputs: list[Any], state: _RingState) -> tuple[np.ndarray, tuple]:
        x = self._dense(inputs[0])
        ptr = (int(state.ptr) + 1) % self.depth
        buf = state.buf.copy()
        buf[ptr] = x
        rows = (ptr - self.delay) % self.depth  # (out, in)
        hist = buf[rows, :, self.col]  # (out, in, B)
        w = self.params["weight"]
        b = self.params.get("bias")
        if self.ctx.mode == "float":
            y = np.einsum("oib,oi->bo", hist, w, optimize=False)
            return (y if b is None else y + b).astype(np.float32), _RingState(buf, np.array(ptr))
        acc = np.einsum("oib,oi->bo", hist - self.zp_in, w.astype(np.int64), optimize=False)
        if b is not None:
            acc = acc + b
        return self._requant(acc, 1), _RingState(buf, np.array(ptr))

    def run(self, inputs: list[np.ndarray], state: _RingState) -> tuple[np.ndarray, tuple]:
        x = inputs[0]  # (T, B, n_in)
        t_len = x.shape[0]
        # history in time order: oldest ... newest, then the window
        order = [(int(state.ptr) - k) % self.depth for k in range(self.depth - 1, -1, -1)]
        hist = state.buf[order]  # (depth, B, n)
        full = np.concatenate([hist, x.astype(hist.dtype)], axis=0)  # (depth + T, B, n)
        w = self.params["weight"]
        b = self.params.get("bias")
        base = self.depth
        if self.ctx.mode == "float":
            y = np.zeros((t_len, x.shape[1], w.shape[0]), np.float32)
            for d in self.delays_present:
                wd = np.where(self.delay == d, w, 0).astype(np.float32)
                y += full[base - d : base - d + t_len] @ wd.T
            if b is not None:
                y += b
            out = y
        else:
            acc = np.zeros((t_len, x.shape[1], w.shape[0]), np.float64)
            xc = full.astype(np.float64) - self.zp_in
            for d in self.delays_present:
                wd = np.where(self.delay == d, w, 0).astype(np.float64)
                acc += xc[base - d : base - d + t_len] @ wd.T
            acc = np.rint(acc).astype(np.int64)
            if b is not None:
                acc = acc + b
            out = self._requant(acc, 2)
        # new ring buffer: last ``depth`` inputs, newest at ptr
        tail = full[-self.depth :]
        ptr = (int(state.ptr) + t_len) % self.depth
        buf = np.empty_like(state.buf)
        for k in range(self.depth):
            buf[(ptr - k) % self.depth] = tail[self.depth - 1 - k]
        return out, _RingState(buf, np.array(ptr))


@register_op(Delay)
class DelayKernel(Kernel):
    """``y[t] = x[t - d]`` per neuron over a ring buffer."""

    stateful = True

    def __init__(self, node: Delay, ctx: BuildContext) -> None:
        super().__init__(node, ctx)
        self.delay = _bcast(np.array(node.delay, dtype=np.int64), ctx.out_shape)
        self.depth = int(np.max(self.delay)) + 1
        self.idx = np.indices(ctx.out_shape) if self.delay.ndim else None

    def init_state(self, batch: int) -> tuple:
        dt = np.float32 if self.ctx.mode == "float" else self.out_quant.dtype
        fill = 0 if self.ctx.mode == "float" else _zp(self.out_quant)
        return _RingState(np.full((self.depth, batch) + self.ctx.out_shape, fill, dt), np.array(0))

    def step(self, inputs: list[Any], state: _RingState) -> tuple[np.ndarray, tuple]:
        ptr = (int(state.ptr) + 1) % self.depth
        buf = state.buf.copy()
        buf[ptr] = inputs[0]
        rows = (ptr - self.delay) % self.depth
        if self.delay.ndim == 0:
            y = buf[int(rows)]
        else:
            # gather buf[rows[i], b, i] for every neuron position i
            moved = np.moveaxis(buf, 1, -1)  # (depth, *shape, B)
            y = np.moveaxis(moved[(rows,) + tuple(self.idx)], -1, 0)
        return y, _RingState(buf, np.array(ptr))


# ---------------------------------------------------------- shape / pooling ops


@register_op(Flatten)
class FlattenKernel(Kernel):
    def step(self, inputs: list[Any], state: tuple) -> tuple[np.ndarray, tuple]:
        x = inputs[0]
        return x.reshape(x.shape[0], -1), state


@register_op(ReLU)
class ReLUKernel(Kernel):
    def step(self, inputs: list[Any], state: tuple) -> tuple[np.ndarray, tuple]:
        x = inputs[0]
        if self.ctx.mode == "float":
            return np.maximum(x, 0, dtype=np.float32), state
        return np.maximum(x, _zp(self.out_quant)).astype(x.dtype), state


class _PoolKernel(Kernel):
    def __init__(self, node: Any, ctx: BuildContext) -> None:
        super().__init__(node, ctx)
        if ctx.mode == "int":
            q = _need_q(ctx, ctx.in_quants[0], "a quantized input")
            self.zp = _zp(q)
            self.qmin, self.qmax = q.range
            if isinstance(node, SumPool2d) and self.zp != 0:
                raise GraphError(f"node {ctx.name!r}: SumPool2d in integer mode needs zero point 0")
            if isinstance(node, SumPool2d):
                # sums leave the int8 range: widen to int32 at the same scale
                self.out_quant = QuantSpec(bits=32, scale=q.scale, zero_point=0)


@register_op(MaxPool2d)
class MaxPool2dKernel(_PoolKernel):
    def step(self, inputs: list[Any], state: tuple) -> tuple[np.ndarray, tuple]:
        n, x = self.node, inputs[0]
        pad = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
        win = windows.pool2d_windows(x, n.kernel, n.stride, n.padding, pad)
        return win.max(axis=(-2, -1)), state


@register_op(AvgPool2d)
class AvgPool2dKernel(_PoolKernel):
    """Average excluding padding. Integer: ``(sum ± count/2) / count`` rounded half away
    from zero, as TFLite's reference AVERAGE_POOL_2D (input and output share a scale).
    TFLite averages int8 codes, so an unsigned spec is averaged on its codes shifted by
    ``-2^(bits-1)`` (the int8 codes of the same values): ties round as in TFLite."""

    def __init__(self, node: Any, ctx: BuildContext) -> None:
        super().__init__(node, ctx)
        c, h, w = ctx.in_shapes[0]
        q = ctx.in_quants[0] if ctx.mode == "int" else None
        self.off = 0 if q is None or q.signed else 1 << (q.bits - 1)
        ones = np.ones((1, 1, h, w), np.float64)
        self.count = windows.pool2d_windows(ones, node.kernel, node.stride, node.padding, 0.0).sum(
            axis=(-2, -1)
        )

    def step(self, inputs: list[Any], state: tuple) -> tuple[np.ndarray, tuple]:
        n, x = self.node, inputs[0]
        if self.ctx.mode == "float":
            win = windows.pool2d_windows(x.astype(np.float32), n.kernel, n.stride, n.padding, 0.0)
            return (win.sum(axis=(-2, -1)) / self.count).astype(np.float32), state
        win = windows.pool2d_windows(x.astype(np.int64), n.kernel, n.stride, n.padding, 0)
        cnt = self.count.astype(np.int64)
        off = self.off
        # padded cells hold 0 and are left out of ``count`` (TFLite sums the codes)
        s = win.sum(axis=(-2, -1)) - cnt * off
        half = cnt // 2
        q = np.where(s >= 0, (s + half) // cnt, -((-s + half) // cnt)) + off
        return np.clip(q, self.qmin, self.qmax).astype(x.dtype), state


@register_op(SumPool2d)
class SumPool2dKernel(_PoolKernel):
    def step(self, inputs: list[Any], state: tuple) -> tuple[np.ndarray, tuple]:
        n, x = self.node, inputs[0]
        dt = np.float32 if self.ctx.mode == "float" else np.int64
        win = windows.pool2d_windows(x.astype(dt), n.kernel, n.stride, n.padding, 0)
        y = win.sum(axis=(-2, -1))
        return (y.astype(np.float32) if self.ctx.mode == "float" else y.astype(np.int32)), state


@register_op(Add)
class AddKernel(Kernel):
    """Float: ``a + b``. Integer: LiteRT's ADD as its default kernels compute it.

    Where both ratios ``r = f32(s_in) / f32(s_out)`` (in float32) lie in ``[2^-10, 2^8)``
    LiteRT runs ADD in XNNPACK, with one rounding and 20-bit multipliers::

        k = 20 - floor(log2(max(r_a, r_b))),   m = rint(r * 2^k)
        y = (2^(k-1) + m_a (a - z_a) + m_b (b - z_b)) >> k  +  z_o

    Elsewhere it runs TFLite's reference ADD: both inputs rescaled to a common
    ``2 * max(s_a, s_b)`` grid with a 20-bit left shift, then requantized (three
    roundings). LiteRT's reference kernels use the latter everywhere.
    """

    LEFT_SHIFT = 20

    def __init__(self, node: Add, ctx: BuildContext) -> None:
        super().__init__(node, ctx)
        if ctx.mode == "float":
            return
        qa = _need_q(ctx, ctx.in_quants[0], "quantized inputs")
        qb = _need_q(ctx, ctx.in_quants[1], "quantized inputs")
        qo = _need_q(ctx, node.out_q, "out_q")
        self.za, self.zb, self.zo = _zp(qa), _zp(qb), _zp(qo)
        self.lo, self.hi = qo.range
        self.out_quant = qo
        fa, fb, fo = (np.float32(_per_tensor_scale(q)) for q in (qa, qb, qo))
        ra, rb = np.float32(fa / fo), np.float32(fb / fo)
        self.single = bool(all(2.0**-10 <= r < 2.0**8 for r in (ra, rb)))
        if self.single:  # XNNPACK
            self.k = 21 - int(np.frexp(max(ra, rb))[1])
            self.ma, self.mb = (int(np.rint(np.float64(r) * 2.0**self.k)) for r in (ra, rb))
            return
        sa, sb, so = np.float64(fa), np.float64(fb), np.float64(fo)
        twice = 2 * max(sa, sb)
        self.ma, self.sha = quantize_multiplier(sa / twice)
        self.mb, self.shb = quantize_multiplier(sb / twice)
        self.mo, self.sho = quantize_multiplier(twice / ((1 << self.LEFT_SHIFT) * so))

    def step(self, inputs: list[Any], state: tuple) -> tuple[np.ndarray, tuple]:
        a, b = inputs
        if self.ctx.mode == "float":
            return (a + b).astype(np.float32, copy=False), state
        da, db = a.astype(np.int64) - self.za, b.astype(np.int64) - self.zb
        if self.single:
            y = ((1 << (self.k - 1)) + self.ma * da + self.mb * db) >> self.k
        else:
            s = requantize(da << self.LEFT_SHIFT, self.ma, self.sha) + requantize(
                db << self.LEFT_SHIFT, self.mb, self.shb
            )
            y = requantize(s, self.mo, self.sho)
        return np.clip(y + self.zo, self.lo, self.hi).astype(self.out_quant.dtype), state


@register_op(Scale)
class ScaleKernel(Kernel):
    def __init__(self, node: Scale, ctx: BuildContext) -> None:
        super().__init__(node, ctx)
        self.s = _bcast(np.array(node.scale, np.float32), ctx.out_shape)
        if ctx.mode == "int":
            qi = _need_q(ctx, ctx.in_quants[0], "a quantized input")
            qo = _need_q(ctx, node.out_q, "out_q")
            m = (
                np.float64(np.float32(_per_tensor_scale(qi)))
                * np.abs(self.s.astype(np.float64))
                / np.float64(np.float32(_per_tensor_scale(qo)))
            )
            self.qm, self.sh = quantize_multiplier(m)
            self.qm, self.sh = self.qm.reshape(self.s.shape), self.sh.reshape(self.s.shape)
            self.sign = np.sign(self.s).astype(np.int64)
            self.zi, self.zo, (self.lo, self.hi) = _zp(qi), _zp(qo), qo.range
            self.out_quant = qo

    def step(self, inputs: list[Any], state: tuple) -> tuple[np.ndarray, tuple]:
        x = inputs[0]
        if self.ctx.mode == "float":
            return (x * self.s).astype(np.float32), state
        y = requantize(self.sign * (x.astype(np.int64) - self.zi), self.qm, self.sh) + self.zo
        return np.clip(y, self.lo, self.hi).astype(self.out_quant.dtype), state


@register_op(Threshold)
class ThresholdKernel(Kernel):
    def __init__(self, node: Threshold, ctx: BuildContext) -> None:
        super().__init__(node, ctx)
        th = _bcast(np.array(node.v_th, np.float64), ctx.out_shape)
        if ctx.mode == "int":
            qi = _need_q(ctx, ctx.in_quants[0], "a quantized input")
            # x_real > th  <=>  q > th/s + zp  <=>  q > floor(th/s + zp)
            self.th = np.floor(th / _per_tensor_scale(qi) + _zp(qi)).astype(np.int64)
            self.out_quant = SPIKE_Q
        else:
            self.th = th.astype(np.float32)

    def step(self, inputs: list[Any], state: tuple) -> tuple[np.ndarray, tuple]:
        s = inputs[0] > self.th
        return (s.astype(np.float32) if self.ctx.mode == "float" else s.astype(np.int8)), state


# ---------------------------------------------------------------------- neurons


class _NeuronKernel(Kernel):
    """LIF / IF / LI / CubaLIF around the pure step functions in neuroplast.neurons."""

    stateful = True

    def __init__(self, node: Any, ctx: BuildContext) -> None:
        super().__init__(node, ctx)
        shape = ctx.out_shape
        self.cuba = isinstance(node, CubaLIF)
        self.spiking = node.spiking
        if ctx.mode == "float":
            p = (
                CubaLIFParams.from_node(node, ctx.dt)
                if self.cuba
                else LIFParams.from_node(node, ctx.dt)
            )
            self.p = _bcast_params(p, shape)
            self.out_quant = None
            self._step = cubalif_step if self.cuba else (lif_step if self.spiking else li_step)
            return
        qi = _need_q(ctx, ctx.in_quants[0], "a quantized input current")
        if node.v_q is not None and _per_tensor_scale(node.v_q) != _per_tensor_scale(qi):
            raise GraphError(
                f"node {ctx.name!r}: membrane scale {node.v_q.scale} differs from the input "
                f"current scale {qi.scale}; requantize the producer to the membrane scale"
            )
        v_spec = QuantSpec(bits=32, scale=_per_tensor_scale(qi), zero_point=0)
        if isinstance(node, IF):
            p = LIFIntParams.from_node(node, ctx.dt, v_spec)
            p = replace(p, beta_q=np.array(1 << 15, np.int64))
        elif self.cuba:
            p = CubaLIFIntParams.from_node(node, ctx.dt, v_spec)
        else:
            p = LIFIntParams.from_node(node, ctx.dt, v_spec)
        self.p = _bcast_params(p, shape)
        self.zp_in = _zp(qi)
        self.out_quant = SPIKE_Q if self.spiking else v_spec
        self._step = (
            cubalif_step_int if self.cuba else (lif_step_int if self.spiking else li_step_int)
        )

    def init_state(self, batch: int) -> tuple:
        dt = np.float32 if self.ctx.mode == "float" else np.int64
        z = np.zeros((batch,) + self.ctx.out_shape, dt)
        if self.cuba:
            return CubaLIFState(z, z.copy())
        return LIFState(z)

    def step(self, inputs: list[Any], state: tuple) -> tuple[np.ndarray, tuple]:
        x = inputs[0]
        if self.ctx.mode == "int" and self.zp_in:
            x = x.astype(np.int64) - self.zp_in
        return self._step(x, state, self.p)


def _bcast_params(p: Any, shape: tuple[int, ...]) -> Any:
    """Reshape every array field of a (possibly nested) params dataclass for broadcasting."""
    from dataclasses import fields as dc_fields

    kw = {}
    for f in dc_fields(p):
        v = getattr(p, f.name)
        if isinstance(v, np.ndarray):
            kw[f.name] = _bcast(v, shape)
        elif hasattr(v, "__dataclass_fields__"):
            kw[f.name] = _bcast_params(v, shape)
    return replace(p, **kw)


register_op(LIF)(register_op(IF)(register_op(LI)(register_op(CubaLIF)(_NeuronKernel))))
