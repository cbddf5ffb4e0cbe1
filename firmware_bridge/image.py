"""Model image: the compact little-endian binary a board loads (PROTOCOL.md §5).

A microcontroller cannot read npz or JSON, so the host flattens an integer-mode
:class:`neuroplast.runtime.Runtime` into a list of layer records whose numbers are taken
*from the runtime's own kernels* (int8 weights, int32 bias, per-channel requantization
multiplier/shift, zero points, Q15 decays, thresholds in membrane units). The firmware
therefore computes with exactly the integers the host runtime computes with, and its
outputs are bit-identical.

The graph may be any DAG with one int8 input and one output: each layer record names its
one or two sources (0 = the model input, ``k`` = layer ``k - 1``), so residual ``Add``\\ s
and branches travel as they are. ``Flatten`` is free (C-order memory is already flat).

This module is the ``firmware`` target of the capability matrix: one encoder per node
kind in :data:`FIRMWARE`, and every condition the firmware cannot meet (a wide
accumulator, a delay line too deep, a pool window of padding only, ...) is a *check* of
that table, so ``fit`` and ``FIRMWARE.require`` refuse the model before any work and
:func:`build_image` never fails on a graph they accepted.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from neuroplast.firmware_bridge import spec
from neuroplast.firmware_bridge.errors import ModelImageError
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
    Linear,
    MaxPool2d,
    ReLU,
    Scale,
    SumPool2d,
    Threshold,
)
from neuroplast.graph.nodes import Input as InputNode
from neuroplast.targets import CheckContext, Refusal, Target, register_target

__all__ = [
    "FIRMWARE",
    "ModelImage",
    "LayerInfo",
    "image_from_bundle",
    "build_image",
    "image_footprint",
    "plan_outputs",
    "learnable_at",
]

_I32 = (-(1 << 31), (1 << 31) - 1)
_U16 = 0xFFFF
K = spec.LayerKind


@dataclass(frozen=True)
class LayerInfo:
    """One layer of an image: its node name in the graph, kind, sizes, weight shape, and
    sources (0 = the model input, ``k`` = layer ``k - 1``)."""

    name: str
    kind: int
    in_n: int
    out_n: int
    weight_shape: tuple[int, ...] | None = None
    sources: tuple[int, ...] = ()


@dataclass(frozen=True)
class ModelImage:
    """An encoded model image plus what the host needs to talk about it.

    ``data``: the bytes sent with LOAD_BUNDLE; ``in_shape``/``out_shape``: per-step
    tensor shapes; ``out_bytes``: 1 (int8 codes/spikes) or 4 (int32) per output
    element on the wire; ``input_quant``: the Input node's QuantSpec (to quantize float
    input on the host); ``layers``: the layer list (index = board layer number);
    ``arena_bytes``: the firmware arena the model takes once loaded (the board reports
    the same number as ``ARENA_USED``).
    """

    data: bytes
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    out_bytes: int
    layers: tuple[LayerInfo, ...]
    input_quant: Any = None
    meta: dict[str, Any] = field(default_factory=dict)
    arena_bytes: int = 0

    @property
    def in_size(self) -> int:
        return int(np.prod(self.in_shape))

    @property
    def out_size(self) -> int:
        return int(np.prod(self.out_shape))

    def layer_index(self, layer: int | str) -> int:
        """Board layer number of ``layer`` (an index or a graph node name)."""
        if isinstance(layer, (int, np.integer)):
            if not 0 <= int(layer) < len(self.layers):
                raise ModelImageError(f"layer {layer} outside 0..{len(self.layers) - 1}")
            return int(layer)
        for i, info in enumerate(self.layers):
            if info.name == layer:
                return i
        names = [info.name for info in self.layers]
        raise ModelImageError(f"no layer named {layer!r} in the image (layers: {names})")


FIRMWARE = register_target(
    Target(
        "firmware",
        "board firmware image (C99 integer engine)",
        engine="C firmware on the x86 virtual board and Cortex-M4 under QEMU",
        hint="run it on a Linux board (numpy runtime), or export TFLite for TensorFlow Lite Micro",
        builds_on=("runtime-int",),
    )
)
FIRMWARE.rule_hint = (
    "attach int_stdp instead (neuroplast.plasticity.int_stdp_from_pair converts pair "
    "STDP), learn on the host (`neuroplast learn`), or load for inference only "
    "(`board load --no-learning`)"
)


def _check_int_stdp(layer: str, rule: dict, ctx: CheckContext) -> str | None:
    """The firmware's one STDP slot: a Linear feeding exactly one LIF, every step."""
    g = ctx.graph
    node = g.nodes.get(layer)
    if not isinstance(node, Linear):
        return f"{layer!r} is {type(node).__name__ if node else 'not a node'}; the board learns on a Linear"
    succ = g.successors(layer)
    post = g.nodes[succ[0]] if len(succ) == 1 else None
    if post is None or isinstance(post, CubaLIF) or not isinstance(post, (LIF, IF)):
        return f"{layer!r} must feed exactly one LIF (the board's post-synaptic spikes)"
    if g.predecessors(succ[0]) != [layer] or rule.get("post") not in (None, succ[0]):
        return f"the LIF after {layer!r} must read only {layer!r} and be the rule's post node"
    if rule.get("every", 1) != 1:
        return "the board learns every step (every = 1)"
    n = sum(1 for r in ctx.options.get("rules", ()) if r.get("kind") == "int_stdp")
    if n > 1:
        return f"the board learns on one layer; the bundle has {n} int_stdp rules"
    return None


FIRMWARE.register_rule(
    "int_stdp", check=_check_int_stdp, note="one Linear -> LIF layer, bit-exact with the host"
)


# ------------------------------------------------------------------ encoding helpers
@dataclass
class _Enc:
    """What a firmware handler gets: the node, its int kernel, shapes, input quantization."""

    name: str
    node: Any
    kernel: Any
    in_shapes: list[tuple[int, ...]]
    out_shape: tuple[int, ...]
    in_qs: list[Any]

    @property
    def in_shape(self) -> tuple[int, ...]:
        return self.in_shapes[0]

    @property
    def in_q(self) -> Any:
        return self.in_qs[0]

    @property
    def out_n(self) -> int:
        return int(np.prod(self.out_shape))

    @property
    def in_n(self) -> int:
        return int(np.prod(self.in_shape))


@dataclass(frozen=True)
class _Layer:
    """A handler's result: the record's kind and body, the sizes (bytes) of the arena
    allocations the firmware makes while parsing it (in its order, output buffer
    excluded), its output width on the wire (``None``: its first source's) and its
    weight shape (for GET_STATE / SET_STATE)."""

    kind: int
    body: bytes
    arena: tuple[int, ...]
    out_bytes: int | None
    weight_shape: tuple[int, ...] | None = None


def _arr(n: int, width: int) -> int:
    """Arena bytes of an n-element array read from an image (the firmware allocates >= 1)."""
    return max(int(n) * width, 1)


def _i32(a: Any, n: int) -> bytes:
    """n int32 values (one per element, or one broadcast), range-checked by the checks."""
    arr = np.broadcast_to(np.asarray(a, dtype=np.int64).ravel() if np.size(a) > 1 else a, (n,))
    return np.asarray(arr, dtype=np.int64).astype("<i4").tobytes()


def _full(a: Any, shape: tuple[int, ...]) -> np.ndarray:
    """Per-neuron / per-channel / scalar parameter -> one value per element (C order)."""
    a = np.asarray(a)
    if a.size == 1:
        return np.full(int(np.prod(shape)), a.reshape(()).item(), dtype=np.int64)
    if a.size == int(np.prod(shape)):
        return a.reshape(-1).astype(np.int64)
    # per-channel (C,) against (C, ...): repeat along the remaining axes
    return np.broadcast_to(a.reshape((a.size,) + (1,) * (len(shape) - 1)), shape).reshape(-1)


def _bcast(a: Any, n: int) -> tuple[np.ndarray, int, int]:
    """A kernel's broadcast parameter -> (values, m, inner): index (i // inner) % m."""
    a = np.asarray(a)
    if a.size == 1:
        return a.reshape(1), 1, 1
    if a.size == n:
        return a.reshape(-1), n, 1
    return a.reshape(-1), a.size, n // a.size


def _affine_head(k: Any) -> bytes:
    return struct.pack("<iiii", k.zp_in, k.zp_out, k.out_min, k.out_max)


def _affine_arrays(k: Any, n_out: int) -> bytes:
    w = np.asarray(k.params["weight"])
    bias = k.params.get("bias")
    b = np.zeros(n_out, np.int64) if bias is None else bias
    return (
        w.astype("<i1").tobytes()
        + _i32(b, n_out)
        + _i32(k.qm, n_out)
        + np.asarray(k.shift, np.int64).astype("<i1").tobytes()
    )


def _affine_arena(n_w: int, n_out: int) -> tuple[int, ...]:
    return (_arr(n_w, 1), _arr(n_out, 4), _arr(n_out, 4), _arr(n_out, 1))


def _out_bytes(lo: int, hi: int) -> int:
    return 1 if (lo >= -128 and hi <= 127) else 4


# ------------------------------------------------------------------ checks
def _kernel(ctx: CheckContext, name: str) -> Any:
    rt = ctx.int_runtime
    return None if isinstance(rt, Exception) else rt.kernels[name]


_FREE = (InputNode, Flatten)  # no layer record in the image
_PASS = (Flatten, MaxPool2d, Delay)  # kinds whose output values are some of their input's


def _board_range(ctx: CheckContext, producer: str) -> tuple[int, int]:
    """Integer range a value can take on the board. The model input: any int8 code (the host
    sends any); a sum pool: its input's range times the window cells (its int32 quantization
    would be far wider); pass-through kinds: their input's; ReLU: clipped at its zero point;
    others: their quantization range."""
    node = ctx.graph.nodes[producer]
    if isinstance(node, InputNode):
        q = ctx.quant(producer)
        lo, hi = q.range if q is not None else (-128, 127)
        return min(lo, -128), max(hi, 127)
    if isinstance(node, (SumPool2d, ReLU, *_PASS)):
        lo, hi = _board_range(ctx, ctx.preds(producer)[0])
        if isinstance(node, SumPool2d):
            cells = node.kernel[0] * node.kernel[1]
            return min(lo * cells, 0), max(hi * cells, 0)
        if isinstance(node, ReLU):
            zp = int(np.ravel(ctx.quant(producer).zero_point)[0])
            return max(lo, zp), max(hi, zp)
        return lo, hi
    q = ctx.quant(producer)
    return q.range if q is not None else _I32


def _dev(lo: int, hi: int, zp: int) -> int:
    return max(hi - zp, zp - lo)


def _check_affine(name: str, node: Any, ctx: CheckContext) -> str | None:
    """int8 weights, and an accumulator that provably stays in int32 for any int8 weights
    (learning may move them anywhere) and any input the board can see."""
    k = _kernel(ctx, name)
    wq = node.weight_q
    if wq is not None and wq.bits > 8:
        return f"{wq.bits}-bit weights; the firmware holds int8 weights"
    lo, hi = _board_range(ctx, ctx.preds(name)[0])
    w = np.asarray(k.params["weight"])
    fan_in = int(np.prod(w.shape[1:]))
    bias = k.params.get("bias")
    bmax = 0 if bias is None else int(np.abs(np.asarray(bias, np.int64)).max(initial=0))
    if bmax + 128 * fan_in * _dev(lo, hi, k.zp_in) > _I32[1]:
        return (
            f"the accumulator could exceed int32 (fan-in {fan_in}, input range {lo}..{hi}); "
            "requantize the input to 8 bits or split the layer"
        )
    if isinstance(node, DelayLinear) and k.depth > spec.MAX_DELAY_DEPTH:
        return f"delays up to {k.depth - 1} steps; the firmware's delay lines hold {spec.MAX_DELAY_DEPTH}"
    return _check_sizes(name, node, ctx)


def _check_sizes(name: str, node: Any, ctx: CheckContext) -> str | None:
    n = int(np.prod(ctx.shapes[name]))
    if n > spec.MAX_LAYER_SIZE:
        return f"{n} output elements; the firmware's limit is {spec.MAX_LAYER_SIZE}"
    dims = list(ctx.in_shapes(name)[0]) + list(ctx.shapes[name])
    if any(d > _U16 for d in dims):
        return f"a dimension above {_U16} (shapes {ctx.in_shapes(name)[0]} -> {ctx.shapes[name]})"
    return None


def _check_neuron(name: str, node: Any, ctx: CheckContext) -> str | None:
    k = _kernel(ctx, name)
    p = k.p.lif if isinstance(node, CubaLIF) else k.p
    arrays = {"beta": p.beta_q, "v_leak": p.v_leak}
    if node.spiking:
        arrays.update(v_th=p.v_th, v_reset=p.v_reset)
    for what, a in arrays.items():
        a = np.asarray(a, np.int64)
        if a.size and (a.min() < _I32[0] or a.max() > _I32[1]):
            return f"{what} does not fit in int32 membrane units (firmware limit)"
    return _check_sizes(name, node, ctx)


def _check_delay(name: str, node: Any, ctx: CheckContext) -> str | None:
    k = _kernel(ctx, name)
    if k.depth > spec.MAX_DELAY_DEPTH:
        return f"delays up to {k.depth - 1} steps; the firmware's delay lines hold {spec.MAX_DELAY_DEPTH}"
    return _check_sizes(name, node, ctx)


def _check_pool(name: str, node: Any, ctx: CheckContext) -> str | None:
    if node.padding[0] >= node.kernel[0] or node.padding[1] >= node.kernel[1]:
        return f"padding {node.padding} >= kernel {node.kernel} makes windows of padding only"
    if isinstance(node, SumPool2d):
        lo, hi = _board_range(ctx, ctx.preds(name)[0])
        if max(abs(lo), abs(hi)) * node.kernel[0] * node.kernel[1] > _I32[1]:
            return "window sums could exceed int32"
    return _check_sizes(name, node, ctx)


def _check_add(name: str, node: Any, ctx: CheckContext) -> str | None:
    k = _kernel(ctx, name)
    for p, z in zip(ctx.preds(name), (k.za, k.zb)):
        lo, hi = _board_range(ctx, p)
        if _dev(lo, hi, z) >= 1 << 11:
            return f"input {p!r} has range {lo}..{hi}; Add takes inputs of up to 11 bits (as TFLite's int8/int16 ADD)"
    return _check_sizes(name, node, ctx)


def _check_scale(name: str, node: Any, ctx: CheckContext) -> str | None:
    k = _kernel(ctx, name)
    lo, hi = _board_range(ctx, ctx.preds(name)[0])
    if _dev(lo, hi, k.zi) > 1 << 31:
        return f"input range {lo}..{hi} around zero point {k.zi} exceeds int32"
    return _check_sizes(name, node, ctx)


def _check_input(name: str, node: Any, ctx: CheckContext) -> str | None:
    q = ctx.quant(name)
    if q is not None and (q.range[0] < -128 or q.range[1] > 127):
        return (
            f"board inputs are int8 codes, but the input is quantized to {q.range[0]}..{q.range[1]}; "
            "use a signed 8-bit input QuantSpec"
        )
    if int(np.prod(node.shape)) > _U16:
        return (
            f"{int(np.prod(node.shape))} input elements per step; the wire carries at most {_U16}"
        )
    return None


@FIRMWARE.graph_check
def _one_input_one_output(ctx: CheckContext) -> list[Refusal]:
    """One int8 input, one output, at most MAX_LAYERS layers, at most 65535 outputs."""
    g = ctx.graph
    out: list[Refusal] = []

    def refuse(why: str) -> None:
        out.append(Refusal("*", "", "firmware", why, FIRMWARE.hint))

    if len(g.inputs) != 1 or len(g.outputs) != 1:
        refuse(f"needs one input and one output, has {list(g.inputs)} -> {list(g.outputs)}")
        return out
    layers = [n for n in _ancestors(g, g.outputs[0]) if not isinstance(g.nodes[n], _FREE)]
    if not layers:
        refuse("no layer the board computes (only Input / Flatten)")
    if len(layers) > spec.MAX_LAYERS:
        refuse(f"{len(layers)} layers; the firmware holds at most {spec.MAX_LAYERS}")
    n_out = int(np.prod(ctx.shapes[g.outputs[0]]))
    if n_out > _U16:
        refuse(f"{n_out} output elements per step; the wire carries at most {_U16}")
    return out


def _ancestors(g: Any, output: str) -> list[str]:
    """``output`` and everything it depends on, in the graph's topological order."""
    keep, stack = {output}, [output]
    while stack:
        for p in g.predecessors(stack.pop()):
            if p not in keep:
                keep.add(p)
                stack.append(p)
    return [n for n in g.topo_order() if n in keep]


# ------------------------------------------------------------------ handlers
FIRMWARE.register(InputNode, check=_check_input, note="signed 8-bit codes")(None)


@FIRMWARE.register(Flatten, note="free: C-order memory is already flat")
def _enc_flatten(e: _Enc) -> None:
    return None


@FIRMWARE.register(Linear, check=_check_affine)
@FIRMWARE.register(DelayLinear, check=_check_affine, note=f"delays < {spec.MAX_DELAY_DEPTH} steps")
def _enc_linear(e: _Enc) -> _Layer:
    k = e.kernel
    w = np.asarray(k.params["weight"])
    n_out, n_in = w.shape
    body = struct.pack("<II", n_in, n_out)
    arena = _affine_arena(w.size, n_out)
    if isinstance(e.node, DelayLinear):
        body += struct.pack("<HH", k.depth, 0)
    body += _affine_head(k) + _affine_arrays(k, n_out)
    kind = K.LINEAR
    if isinstance(e.node, DelayLinear):
        kind = K.DELAY_LINEAR
        body += np.asarray(k.delay, np.int64).astype("<u2").tobytes()
        arena += (_arr(w.size, 2), 4 * k.depth * n_in)
    return _Layer(kind, body, arena, _out_bytes(k.out_min, k.out_max), tuple(w.shape))


def _geom(e: _Enc, kh: int, kw: int, stride: tuple, padding: tuple, dilation: tuple) -> tuple:
    """(c_in, h, w, ho, wo) + the node's 2-D parameters; Conv1d/[C, L] is H = 1."""
    if len(e.in_shape) == 2:
        (c, w), (_, wo) = e.in_shape, e.out_shape[-2:]
        return (c, 1, w, 1, wo), (1, stride[0]), (0, padding[0]), (1, dilation[0])
    c, h, w = e.in_shape
    return (c, h, w) + tuple(e.out_shape[-2:]), tuple(stride), tuple(padding), tuple(dilation)


@FIRMWARE.register(Conv1d, Conv2d, check=_check_affine, note="groups, stride, padding, dilation")
def _enc_conv(e: _Enc) -> _Layer:
    k, n = e.kernel, e.node
    w = np.asarray(k.params["weight"])
    kh, kw = (1, w.shape[2]) if w.ndim == 3 else w.shape[2:]
    (c, h, wd, ho, wo), s, p, d = _geom(e, kh, kw, n.stride, n.padding, n.dilation)
    geo = struct.pack("<16H", c, h, wd, w.shape[0], kh, kw, s[0], s[1], p[0], p[1], d[0], d[1],
                      ho, wo, n.groups, 0)  # fmt: skip
    body = geo + _affine_head(k) + _affine_arrays(k, w.shape[0])
    return _Layer(K.CONV, body, _affine_arena(w.size, w.shape[0]),
                  _out_bytes(k.out_min, k.out_max), tuple(w.shape))  # fmt: skip


@FIRMWARE.register(LIF, IF, LI, CubaLIF, check=_check_neuron, note="int64 membranes")
def _enc_neuron(e: _Enc) -> _Layer:
    n = e.out_n
    cuba = isinstance(e.node, CubaLIF)
    p = e.kernel.p.lif if cuba else e.kernel.p
    kind = K.CUBALIF if cuba else (K.LIF if e.node.spiking else K.LI)
    body = struct.pack("<IBBHi", n, 1 if p.subtract else 0, 0, 0, e.kernel.zp_in)
    arrays = ([e.kernel.p.alpha_q] if cuba else []) + [p.beta_q]
    if e.node.spiking:
        arrays += [p.v_th, p.v_reset]
    arrays.append(p.v_leak)
    for a in arrays:
        body += _i32(_full(a, e.out_shape), n)
    arena = tuple(_arr(n, 4) for _ in arrays) + (8 * n,) * (2 if cuba else 1)
    return _Layer(kind, body, arena, 1 if e.node.spiking else 4)


@FIRMWARE.register(Delay, check=_check_delay, note=f"delays < {spec.MAX_DELAY_DEPTH} steps")
def _enc_delay(e: _Enc) -> _Layer:
    k, n = e.kernel, e.out_n
    fill = 0 if k.out_quant is None else int(np.ravel(k.out_quant.zero_point)[0])
    body = struct.pack("<IHHi", n, k.depth, 0, fill)
    body += _full(k.delay, e.out_shape).astype("<u2").tobytes()
    return _Layer(K.DELAY, body, (_arr(n, 2), 4 * k.depth * n), None)


_POOL_KIND = {MaxPool2d: K.MAXPOOL, AvgPool2d: K.AVGPOOL, SumPool2d: K.SUMPOOL}


@FIRMWARE.register(MaxPool2d, AvgPool2d, SumPool2d, check=_check_pool, note="padding < kernel")
def _enc_pool(e: _Enc) -> _Layer:
    n = e.node
    c, h, w = e.in_shape
    _, ho, wo = e.out_shape
    geo = struct.pack("<12H", c, h, w, *n.kernel, *n.stride, *n.padding, ho, wo, 0)
    avg = isinstance(n, AvgPool2d)
    lo, hi = e.in_q.range if avg else _I32
    # MAXPOOL: windows always hold a real cell (padding < kernel), padded cells never win a
    # max. AVGPOOL: the slot holds the code offset of an unsigned input (the runtime's rule)
    pad = (0 if e.in_q.signed else 1 << (e.in_q.bits - 1)) if avg else _I32[0]
    body = geo + struct.pack("<iii", pad, lo, hi)
    kind = _pool_kind(n)
    return _Layer(kind, body, (), 4 if kind == K.SUMPOOL else None)


def _pool_kind(node: Any) -> int:
    for cls in type(node).__mro__:
        if cls in _POOL_KIND:
            return _POOL_KIND[cls]
    raise ModelImageError(f"{node.kind}: not a pooling kind the firmware knows")


@FIRMWARE.register(Add, check=_check_add, note="inputs of up to 11 bits (TFLite ADD)")
def _enc_add(e: _Enc) -> _Layer:
    k = e.kernel
    if k.single:  # LiteRT's default ADD: one rounding, shift k (the runtime's AddKernel)
        i32 = [k.za, k.zb, k.zo, k.lo, k.hi, k.ma, k.mb, 0]
        sh = [0, 0, k.k]
    else:
        i32 = [int(np.ravel(v)[0]) for v in (k.za, k.zb, k.zo, k.lo, k.hi, k.ma, k.mb, k.mo)]
        sh = [int(np.ravel(v)[0]) for v in (k.sha, k.shb, k.sho)]
    body = struct.pack("<I8i3bB", e.out_n, *(int(v) for v in i32), *sh, int(k.single))
    return _Layer(K.ADD, body, (), _out_bytes(k.lo, k.hi))


@FIRMWARE.register(ReLU)
def _enc_relu(e: _Enc) -> _Layer:
    zp = int(np.ravel(e.kernel.out_quant.zero_point)[0])
    return _Layer(K.RELU, struct.pack("<Ii", e.out_n, zp), (), None)


@FIRMWARE.register(Scale, check=_check_scale)
def _enc_scale(e: _Enc) -> _Layer:
    k = e.kernel
    qm, m, inner = _bcast(k.qm, e.out_n)
    shift, sign = np.ravel(k.sh), np.ravel(np.broadcast_to(k.sign, k.qm.shape))
    body = struct.pack("<IIIiiii", e.out_n, m, inner, k.zi, k.zo, k.lo, k.hi)
    body += qm.astype("<i4").tobytes() + shift.astype("<i1").tobytes()
    body += sign.astype("<i1").tobytes()
    return _Layer(K.SCALE, body, (_arr(m, 4), _arr(m, 1), _arr(m, 1)), _out_bytes(k.lo, k.hi))


@FIRMWARE.register(Threshold)
def _enc_threshold(e: _Enc) -> _Layer:
    th, m, inner = _bcast(e.kernel.th, e.out_n)
    body = struct.pack("<III", e.out_n, m, inner) + th.astype("<i8").tobytes()
    return _Layer(K.THRESHOLD, body, (_arr(m, 8),), 1)


# ------------------------------------------------------------------ the image
def _arena_total(sizes: list[int]) -> int:
    """Bytes the firmware's arena holds after these allocations (each 8-byte aligned)."""
    used = 0
    for s in sizes:
        used = ((used + 7) & ~7) + s
    return used


_ELEMENTWISE = (K.RELU, K.SCALE, K.THRESHOLD, K.LIF, K.LI, K.CUBALIF)


def learnable_at(layers: Sequence[LayerInfo], j: int) -> bool:
    """Whether board layer ``j`` is a LINEAR that on-board learning can run on: it reads
    the previous layer (or the input) and the next layer is a LIF reading it (the chain
    np_model_learn accepts; np_model.c ``learnable_at``)."""
    return (j + 1 < len(layers) and layers[j].kind == K.LINEAR
            and layers[j + 1].kind == K.LIF and layers[j].sources[0] == j
            and layers[j + 1].sources[0] == j + 1)  # fmt: skip


def plan_outputs(layers: list[LayerInfo]) -> tuple[list[int], int]:
    """Byte offsets of the layers' int32 output buffers in one shared block, and the
    block's size: the firmware's ``plan_outputs`` (np_model.c), mirrored to predict its
    arena. Output ``i`` (0-based layer) is live from layer ``i`` to its last reader
    (``sources`` are 1-based, 0 = the model input), the last layer's to the end of the
    step, and one layer longer where it feeds a Linear followed by a LIF (the chain
    on-board learning accepts: the rule reads it after the LIF). An elementwise layer
    (ReLU, Scale, Threshold, LIF, LI, CubaLIF: it reads ``x[k]`` just before writing
    ``y[k]``) that is its input's last reader writes in place (one group, one block).
    Groups go largest first (ties: earlier first), each at the lowest 8-byte-aligned
    offset overlapping no placed group live at the same time (greedy by size)."""
    n = len(layers)
    end = [n if i == n - 1 else i for i in range(n)]
    for j, L in enumerate(layers):
        learnable = learnable_at(layers, j)
        for k, s in enumerate(L.sources):
            if s > 0:
                end[s - 1] = max(end[s - 1], j + (1 if k == 0 and learnable else 0))
    size = [(4 * L.out_n + 7) & ~7 for L in layers]
    root = list(range(n))
    roots: list[int] = []
    for i, L in enumerate(layers):
        s = L.sources[0]
        if (len(L.sources) == 1 and s > 0 and L.kind in _ELEMENTWISE and end[s - 1] == i
                and layers[s - 1].out_n == L.out_n):  # fmt: skip
            root[i] = root[s - 1]
            end[root[i]] = max(end[root[i]], end[i])
        else:
            roots.append(i)
    off = [0] * n
    placed: list[int] = []
    for r in sorted(roots, key=lambda i: -size[i]):  # stable: ties keep layer order
        at, moved = 0, True
        while moved:
            moved = False
            for j in placed:
                if r <= end[j] and j <= end[r] and at < off[j] + size[j] and off[j] < at + size[r]:
                    at, moved = off[j] + size[j], True
        off[r] = at
        placed.append(r)
    return [off[root[i]] for i in range(n)], max((off[r] + size[r] for r in roots), default=0)


def build_image(rt: Any) -> ModelImage:
    """Encode an integer-mode Runtime's graph as a board image (see module docstring).

    The graph is checked against the firmware's capability table first
    (:data:`FIRMWARE`), so an unsupported node or parameter is refused in one line
    before encoding.
    """
    if getattr(rt, "mode", None) != "int":
        raise ModelImageError("a board runs the integer runtime: build the image from mode='int'")
    g = rt.graph
    FIRMWARE.require(g)
    inp, output = g.inputs[0], g.outputs[0]
    in_shape = tuple(rt.shapes[inp])
    src_of = {inp: 0}
    bytes_of = {inp: 1}
    records: list[bytes] = []
    layers: list[LayerInfo] = []
    arena = [4 * int(np.prod(in_shape))]
    for name in _ancestors(g, output)[1:]:
        preds = rt.preds[name]
        kern = rt.kernels[name]
        e = _Enc(name, g.nodes[name], kern, [tuple(rt.shapes[p]) for p in preds],
                 tuple(rt.shapes[name]), [rt.kernels[p].out_quant for p in preds])  # fmt: skip
        enc: _Layer | None = FIRMWARE.handler(name, e.node)(e)
        if enc is None:  # free (Flatten): consumers read its source
            src_of[name], bytes_of[name] = src_of[preds[0]], bytes_of[preds[0]]
            continue
        srcs = [src_of[p] for p in preds]
        records.append(
            struct.pack(
                "<BBBBI",
                enc.kind,
                len(srcs),
                srcs[0],
                srcs[1] if len(srcs) > 1 else 0,
                len(enc.body),
            )
            + enc.body  # fmt: skip
        )
        layers.append(
            LayerInfo(name, int(enc.kind), e.in_n, e.out_n, enc.weight_shape, tuple(srcs))
        )
        arena += list(enc.arena)
        src_of[name] = len(layers)
        bytes_of[name] = bytes_of[preds[0]] if enc.out_bytes is None else enc.out_bytes
    if not records:
        raise ModelImageError("the graph has no layers the board could run (only an input)")
    arena.append(plan_outputs(layers)[1])
    out_shape = tuple(rt.shapes[output])
    header = spec.IMAGE_MAGIC + struct.pack(
        "<HHHHI", spec.IMAGE_VERSION, len(records), int(np.prod(in_shape)),
        int(np.prod(out_shape)), 0
    )  # fmt: skip
    return ModelImage(
        data=header + b"".join(records),
        in_shape=in_shape,
        out_shape=out_shape,
        out_bytes=bytes_of[output],
        layers=tuple(layers),
        input_quant=g.nodes[inp].quant,
        arena_bytes=_arena_total(arena),
    )


def image_footprint(graph: Any) -> dict[str, int]:
    """What a model takes on a board: ``image_bytes`` (the LOAD_BUNDLE object, or the
    flash a compiled-in model takes) and ``arena_bytes`` (RAM once loaded), from the
    image itself. Raises the firmware target's refusal if the board cannot run it."""
    from neuroplast.runtime import Runtime

    img = build_image(Runtime(graph, mode="int"))
    return {"image_bytes": len(img.data), "arena_bytes": img.arena_bytes,
            "layers": len(img.layers)}  # fmt: skip


FIRMWARE.footprint = image_footprint


def image_from_bundle(path: str | Path) -> ModelImage:
    """Load a bundle (folder or zip) in integer mode and encode it."""
    import neuroplast

    return build_image(neuroplast.load(path, mode="int"))
