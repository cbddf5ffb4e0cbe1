"""TFLite int8 flatbuffer written from the Graph IR: the ``tflite`` target.

The flatbuffer is built with ``ai_edge_litert/schema_py_generated.py`` (the TFLite
schema's generated object API) and ``flatbuffers`` - no TensorFlow; both load only when
a model is written. Every number is the integer runtime's own (weight codes, int32
bias, activation QuantSpecs are read from ``Runtime(graph, mode="int")``), and the
layout follows the TFLite int8 spec:

* activations: int8 per tensor (an unsigned 8-bit IR spec with zero point ``z`` becomes
  int8 with zero point ``z - 128``: the same real values); layout channels-last
  (``(C, H, W)`` -> ``[1, H, W, C]``; a ``(C, L)`` signal -> ``[1, 1, L, C]``);
* weights: int8, symmetric, per output channel (``CONV_2D``: OHWI, axis 0;
  ``DEPTHWISE_CONV_2D``: ``[1, kh, kw, C]``, axis 3; ``FULLY_CONNECTED``: axis 0);
* bias: int32 at scale ``s_in * s_w``, zero point 0;
* requantization is LiteRT's single rounding of ``M = f32(s_in) f32(s_w) / f32(s_out)``,
  the rule of :mod:`neuroplast.quant`.

Agreement with the integer runtime (ai-edge-litert 2.3, measured on random graphs):
LiteRT's default kernels (XNNPACK, and the builtin ADD where XNNPACK declines it) are
bit-exact. Its reference kernels (``BUILTIN_REF``) and tflite-runtime 2.14 round
CONV_2D / DEPTHWISE_CONV_2D twice (gemmlowp) and ADD three times (TFLite's reference
ADD): 1 LSB apart on ties, which later layers can amplify.

One handler per node kind (:data:`TFLITE`); checks refuse, before anything is written,
exactly what int8 TFLite cannot express. The generated ``BufferT.Pack`` ignores
alignment, so constant buffers are packed 16-byte aligned here; buffer 0 is the empty
sentinel; ``deprecatedBuiltinCode`` is ``min(code, 127)``; the file identifier is ``TFL3``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from neuroplast.errors import ExportError
from neuroplast.export import (
    activation_problem,
    all_checks,
    input_count,
    int_weights,
    refuse_stateful,
    write_atomic,
)
from neuroplast.graph.nodes import (
    Add,
    AvgPool2d,
    Conv1d,
    Conv2d,
    Flatten,
    Input,
    Linear,
    MaxPool2d,
    ReLU,
    Scale,
    SumPool2d,
)
from neuroplast.quant import QuantSpec
from neuroplast.targets import CheckContext, Target, register_target

__all__ = ["TFLITE", "export_tflite", "tflite_bytes"]

# TFLite's required int8 softmax output quantization
_SOFTMAX_Q = QuantSpec(bits=8, scale=1.0 / 256.0, zero_point=-128, signed=True)
_I32_MAX = (1 << 31) - 1

TFLITE = register_target(
    Target(
        "tflite",
        "int8 TFLite flatbuffer (.tflite)",
        engine="LiteRT default kernels (0 LSB); its reference kernels and tflite-runtime "
        "round CONV twice and ADD three times (1 LSB at ties)",
        hint="run it in the neuroplast runtime",
        requires=("ai_edge_litert", "flatbuffers"),
        extra="tflite",
        builds_on=("runtime-int",),  # it writes the integer runtime's numbers
    )
)

refuse_stateful(TFLITE, "TFLite")
TFLITE.refuse(
    SumPool2d,
    "int8 TFLite has no sum pooling (the sums are 32-bit)",
    "use AvgPool2d (the sum over the window size), or run it in the neuroplast runtime",
)


# ------------------------------------------------------------------------ checks
def _act8(name: str, node: Any, ctx: CheckContext) -> str | None:
    return activation_problem(
        name,
        ctx,
        lambda q: q.bits == 8 and not q.narrow,
        "int8 TFLite carries full-range 8-bit activations only: quantize it to 8 bits "
        "(QAT: act_bits=8)",
    )


def _acc32(name: str, node: Any, ctx: CheckContext) -> str | None:
    """TFLite accumulates in int32 and wraps; the integer runtime accumulates in int64."""
    rt = ctx.int_runtime
    if isinstance(rt, Exception):
        return None
    k = rt.kernels[name]
    lo, hi = rt.kernels[ctx.preds(name)[0]].out_quant.range
    dev = max(hi - k.zp_in, k.zp_in - lo)
    w = np.abs(np.asarray(k.params["weight"], np.int64)).reshape(node.weight.shape[0], -1)
    bias = np.abs(np.asarray(k.params.get("bias", 0), np.int64))
    worst = int((w.sum(axis=1) * dev + bias).max())
    if worst <= _I32_MAX:
        return None
    return f"its int32 accumulator can reach {worst} and TFLite would wrap around"


def _groups(name: str, node: Any, ctx: CheckContext) -> str | None:
    cin = ctx.in_shapes(name)[0][0]
    if node.groups in (1, cin):
        return None
    return (
        f"grouped convolution (groups={node.groups}, {cin} input channels) has no TFLite op; "
        f"use groups=1 or depthwise (groups={cin})"
    )


def _same_pool(name: str, node: Any, ctx: CheckContext) -> str | None:
    """AVERAGE_POOL_2D leaves padding out of the count only as SAME padding."""
    if tuple(node.padding) == (0, 0) or _pool_same(node, ctx.in_shapes(name)[0][1:]):
        return None
    return (
        f"padding {tuple(node.padding)} is not TFLite SAME padding for this input, the only "
        "padding AVERAGE_POOL_2D leaves out of the average; pad with a Conv2d instead"
    )


def _add_ratio(name: str, node: Any, ctx: CheckContext) -> str | None:
    """LiteRT's non-XNNPACK ADD overflows int32 once an input scale is >= 256x the output's."""
    qs = [ctx.quant(n) for n in (*ctx.preds(name), name)]
    if any(q is None for q in qs):
        return None
    r = max(float(np.float32(q.scale) / np.float32(qs[-1].scale)) for q in qs[:-1])
    if r < 256:
        return None
    return (
        f"an input scale is {r:.0f}x its output scale (>= 256), where LiteRT's ADD overflows; "
        "give the sum a coarser output scale"
    )


def _channel_scale(name: str, node: Any, ctx: CheckContext) -> str | None:
    shape = ctx.shapes[name]
    if node.scale.size in (1, shape[0]):
        return None
    return (
        f"a scale per element of a {shape} tensor; TFLite multiplies per channel at most "
        "(scalar or one per channel): fold it into the neighbouring layer, or export ONNX"
    )


_weighted_checks = all_checks(int_weights("int8 TFLite"), _act8, _acc32)


# ------------------------------------------------------------------------ writer
@dataclass
class _T:
    """The TFLite tensor of an IR value: tensor index, IR shape, IR QuantSpec."""

    index: int
    ir_shape: tuple[int, ...]
    spec: Any


@dataclass
class _Writer:
    """Buffers, tensors and operators of one subgraph, and the IR values written so far."""

    graph: Any
    io: str
    rt: Any  # the graph's integer Runtime: the one source of every number written
    S: Any = None
    buffers: list[Any] = field(default_factory=list)
    tensors: list[Any] = field(default_factory=list)
    ops: list[Any] = field(default_factory=list)
    opcodes: dict[int, int] = field(default_factory=dict)
    out: dict[str, _T] = field(default_factory=dict)
    inputs: list[int] = field(default_factory=list)
    done: set[str] = field(default_factory=set)  # ReLUs fused into their producer
    flat_src: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        import ai_edge_litert.schema_py_generated as S

        self.S = S
        self.buffers.append(S.BufferT())  # buffer 0: the empty sentinel

    # --------------------------------------------------------------- plumbing
    def quant(self, scale: Any, zp: Any, axis: int = 0) -> Any:
        q = self.S.QuantizationParametersT()
        q.scale = [float(np.float32(s)) for s in np.atleast_1d(scale)]
        q.zeroPoint = [int(z) for z in np.atleast_1d(zp)]
        q.quantizedDimension = int(axis)
        return q

    def tensor(self, name: str, shape: tuple[int, ...], ttype: int, quant: Any = None,
               data: np.ndarray | None = None) -> int:  # fmt: skip
        t = self.S.TensorT()
        t.name, t.shape, t.type, t.quantization = name, [int(s) for s in shape], ttype, quant
        t.buffer = 0
        if data is not None:
            b = self.S.BufferT()
            b.data = np.ascontiguousarray(data).view(np.uint8).ravel()
            self.buffers.append(b)
            t.buffer = len(self.buffers) - 1
        self.tensors.append(t)
        return len(self.tensors) - 1

    def const_i32(self, name: str, values: Any) -> int:
        v = np.asarray(values, np.int32)
        return self.tensor(name, v.shape, self.S.TensorType.INT32, data=v)

    def act(self, name: str, shape: tuple[int, ...], spec: Any) -> int:
        """An int8 activation tensor (an unsigned IR spec shifts its zero point by -128)."""
        zp = int(spec.zero_point) - (0 if spec.signed else 128)
        return self.tensor(name, shape, self.S.TensorType.INT8, self.quant(spec.scale, zp))

    def op(self, code: int, ins: list[int], outs: list[int], opt: Any = None) -> None:
        """One operator; ``opt`` is its options object (``Conv2DOptionsT`` ...), if any."""
        o = self.S.OperatorT()
        o.opcodeIndex = self.opcodes.setdefault(code, len(self.opcodes))
        o.inputs, o.outputs = list(ins), list(outs)
        if opt is not None:  # XOptionsT -> BuiltinOptions.XOptions
            o.builtinOptionsType = getattr(self.S.BuiltinOptions, type(opt).__name__[:-1])
            o.builtinOptions = opt
        self.ops.append(o)

    def src(self, name: str, i: int = 0) -> _T:
        return self.out[self.graph.predecessors(name)[i]]

    def emit(self, name: str, code: int, ins: list[int], opt: Any = None, spec: Any = None,
             shape: tuple[int, ...] | None = None) -> _T:  # fmt: skip
        """One operator producing IR value ``name`` (its runtime QuantSpec by default)."""
        spec = self.rt.kernels[name].out_quant if spec is None else spec
        ir_shape = self.rt.shapes[name]
        t = _T(self.act(name, shape or _tfl_shape(ir_shape), spec), ir_shape, spec)
        self.op(code, ins, [t.index], opt)
        self.out[name] = t
        return t

    def pad(self, name: str, x: _T, pads: tuple, fill: int | None = None) -> int:
        """PAD (fill = the zero point, i.e. real 0) or PADV2 (fill = an int8 code)."""
        S = self.S
        shape = tuple(
            s + (sum(pads[0]) if i == 1 else sum(pads[1]) if i == 2 else 0)
            for i, s in enumerate(self.tensors[x.index].shape)
        )
        tp = self.const_i32(name + "_pads", [[0, 0], list(pads[0]), list(pads[1]), [0, 0]])
        y = self.act(name + "_padded", shape, x.spec)
        if fill is None:
            self.op(S.BuiltinOperator.PAD, [x.index, tp], [y], S.PadOptionsT())
        else:
            tq = self.tensors[y].quantization
            tc = self.tensor(name + "_fill", (), S.TensorType.INT8, tq, np.array(fill, np.int8))
            self.op(S.BuiltinOperator.PADV2, [x.index, tp, tc], [y], S.PadV2OptionsT())
        return y

    def reshape(self, name: str, x: _T, shape: tuple[int, ...]) -> int:
        """RESHAPE ``x`` (same values, same quantization) to ``shape``."""
        opt = self.S.ReshapeOptionsT()
        opt.newShape = list(shape)
        y = self.act(name, shape, x.spec)
        ts = self.const_i32(name + "_shape", shape)
        self.op(self.S.BuiltinOperator.RESHAPE, [x.index, ts], [y], opt)
        return y

    def fusable_relu(self, name: str) -> str | None:
        """The ReLU that alone consumes ``name`` (fused into its producer), if any."""
        succ = self.graph.successors(name)
        if len(succ) != 1 or name in self.graph.outputs:
            return None
        h = TFLITE.lookup(type(self.graph.nodes[succ[0]]))
        return succ[0] if h is not None and h.fn is _relu else None

    def finish(self, outputs: list[int], description: str) -> bytes:
        import flatbuffers

        S = self.S
        sg = S.SubGraphT()
        sg.tensors, sg.operators = self.tensors, self.ops
        sg.inputs, sg.outputs, sg.name = self.inputs, outputs, "main"
        codes = []
        for code, _ in sorted(self.opcodes.items(), key=lambda kv: kv[1]):
            c = S.OperatorCodeT()
            c.builtinCode, c.deprecatedBuiltinCode, c.version = code, min(code, 127), 1
            codes.append(c)
        m = S.ModelT()
        m.version, m.operatorCodes, m.subgraphs = 3, codes, [sg]
        m.description, m.buffers = description, self.buffers
        b = flatbuffers.Builder(1024)
        _pack_model_aligned(m, b)
        return bytes(b.Output())


def _pack_model_aligned(model: Any, builder: Any) -> None:
    """``ModelT.Pack`` with 16-byte aligned buffer data (the generated code ignores it)."""
    import ai_edge_litert.schema_py_generated as S

    orig = S.BufferT.Pack

    def aligned_pack(self: Any, b: Any) -> int:
        data = None
        if self.data is not None and len(self.data):
            arr = np.asarray(self.data, dtype=np.uint8)
            b.StartVector(1, arr.size, 16)
            b.head = b.head - arr.size
            b.Bytes[b.Head() : b.Head() + arr.size] = arr.tobytes()
            b.vectorNumElems = arr.size
            data = b.EndVector()
        S.BufferStart(b)
        if data is not None:
            S.BufferAddData(b, data)
        return S.BufferEnd(b)

    S.BufferT.Pack = aligned_pack
    try:
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    finally:
        S.BufferT.Pack = orig


def _tfl_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    if len(shape) == 1:
        return (1, shape[0])
    if len(shape) == 2:  # (C, L) -> [1, 1, L, C]
        return (1, 1, shape[1], shape[0])
    return (1, shape[1], shape[2], shape[0])


def _same_pads(n: int, k: int, s: int, d: int = 1) -> tuple[int, int]:
    """TFLite SAME padding (before, after) along one axis."""
    out = -(-n // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
    return total // 2, total - total // 2


def _pool_same(node: Any, hw: tuple[int, ...]) -> bool:
    """Whether SAME padding gives exactly the node's windows (same count, same starts)."""
    return all(
        _same_pads(hw[a], node.kernel[a], node.stride[a])[0] == node.padding[a]
        and -(-hw[a] // node.stride[a])
        == (hw[a] + 2 * node.padding[a] - node.kernel[a]) // node.stride[a] + 1
        for a in (0, 1)
    )


# ---------------------------------------------------------------------- handlers
def _input_ok(name: str, node: Any, ctx: CheckContext) -> str | None:
    if len(node.shape) > 3:
        return f"its rank-{len(node.shape)} shape {node.shape} has no TFLite layout (rank 1-3)"
    return _act8(name, node, ctx)


@TFLITE.register(
    Input, check=_input_ok, note="every activation full-range 8-bit per tensor; rank <= 3"
)
def _input(w: _Writer, name: str, node: Any) -> None:
    spec, shp = node.quant, w.rt.shapes[name]
    t8 = w.act(name, _tfl_shape(shp), spec)
    if w.io == "float":
        tf = w.tensor(name + "_float", _tfl_shape(shp), w.S.TensorType.FLOAT32)
        w.op(w.S.BuiltinOperator.QUANTIZE, [tf], [t8])
        w.inputs.append(tf)
    else:
        w.inputs.append(t8)
    w.out[name] = _T(t8, shp, spec)


def _weighted(w: _Writer, name: str, node: Any, x: int, wdata: np.ndarray, axis: int,
              code: int, opt: Any) -> None:  # fmt: skip
    """FULLY_CONNECTED / CONV_2D / DEPTHWISE_CONV_2D: int8 weights, int32 bias, a fused
    ReLU when a ReLU alone consumes the result."""
    S, k = w.S, w.rt.kernels[name]
    n_out = node.weight.shape[0]
    s_w = np.asarray(node.weight_q.scale, np.float32).ravel()
    s_w_full = np.broadcast_to(s_w, (n_out,))
    s_in = np.float64(np.float32(w.src(name).spec.scale))
    s_b = (s_in * s_w_full.astype(np.float64)).astype(np.float32)
    keep = slice(None) if s_w.size > 1 else slice(0, 1)
    zeros = np.zeros(s_w.size, int)
    tw = w.tensor(name + "_weight", wdata.shape, S.TensorType.INT8,
                  w.quant(s_w_full[keep], zeros, axis), np.ascontiguousarray(wdata, np.int8))  # fmt: skip
    bias = k.params.get("bias")
    bias = np.zeros(n_out, np.int32) if bias is None else np.asarray(bias, np.int32)
    tb = w.tensor(name + "_bias", (n_out,), S.TensorType.INT32, w.quant(s_b[keep], zeros), bias)
    relu = w.fusable_relu(name)
    opt.fusedActivationFunction = (
        S.ActivationFunctionType.RELU if relu else S.ActivationFunctionType.NONE
    )
    t = w.emit(name, code, [x, tw, tb], opt)
    if relu:  # the output tensor is the ReLU's (same QuantSpec)
        w.tensors[t.index].name = relu
        w.out[relu] = t
        w.done.add(relu)


@TFLITE.register(Linear, check=_weighted_checks, note="FULLY_CONNECTED, weights <= 8 bits")
def _linear(w: _Writer, name: str, node: Any) -> None:
    codes = np.asarray(w.rt.kernels[name].params["weight"])
    pred = w.graph.predecessors(name)[0]
    if pred in w.flat_src:  # flatten of a channels-last tensor: permute columns CHW -> HWC
        codes = np.moveaxis(codes.reshape((codes.shape[0],) + w.flat_src[pred]), 1, -1)
        codes = codes.reshape(node.weight.shape[0], -1)
    code, opt = w.S.BuiltinOperator.FULLY_CONNECTED, w.S.FullyConnectedOptionsT()
    _weighted(w, name, node, w.src(name).index, codes, 0, code, opt)


@TFLITE.register(
    Conv1d,
    Conv2d,
    check=all_checks(_groups, _weighted_checks),
    note="CONV_2D or DEPTHWISE_CONV_2D (groups 1 or in_channels), weights <= 8 bits",
)
def _conv(w: _Writer, name: str, node: Any) -> None:
    S, src = w.S, w.src(name)
    codes = np.asarray(w.rt.kernels[name].params["weight"])
    if codes.ndim == 3:  # Conv1d: a 1 x k kernel over [1, 1, L, C]
        w4, in_hw = codes[:, :, None, :], (1, src.ir_shape[1])
        stride, dil, pad = (1, node.stride[0]), (1, node.dilation[0]), (0, node.padding[0])
    else:
        w4, in_hw = codes, src.ir_shape[1:]
        stride, dil, pad = node.stride, node.dilation, node.padding
    cin, (kh, kw) = src.ir_shape[0], w4.shape[2:]
    x, padding = src.index, S.Padding.VALID
    if any(pad):
        if all(_same_pads(in_hw[a], (kh, kw)[a], stride[a], dil[a]) == (pad[a],) * 2
               for a in (0, 1)):  # fmt: skip
            padding = S.Padding.SAME
        else:  # PAD fills int8 tensors with their zero point = real 0, like the runtime
            x = w.pad(name, src, ((pad[0],) * 2, (pad[1],) * 2))
    if node.groups == cin and cin > 1:
        wdata, axis = np.transpose(w4, (1, 2, 3, 0)), 3  # (1, kh, kw, O)
        code, opt = S.BuiltinOperator.DEPTHWISE_CONV_2D, S.DepthwiseConv2DOptionsT()
        opt.depthMultiplier = node.weight.shape[0] // cin
    else:
        wdata, axis = np.transpose(w4, (0, 2, 3, 1)), 0  # OHWI
        code, opt = S.BuiltinOperator.CONV_2D, S.Conv2DOptionsT()
    opt.padding = padding
    opt.strideH, opt.strideW = int(stride[0]), int(stride[1])
    opt.dilationHFactor, opt.dilationWFactor = int(dil[0]), int(dil[1])
    _weighted(w, name, node, x, wdata, axis, code, opt)


def _pool(w: _Writer, name: str, node: Any, code: int, x: int, padding: int) -> None:
    opt = w.S.Pool2DOptionsT()
    opt.padding = padding
    opt.strideH, opt.strideW = int(node.stride[0]), int(node.stride[1])
    opt.filterHeight, opt.filterWidth = int(node.kernel[0]), int(node.kernel[1])
    opt.fusedActivationFunction = w.S.ActivationFunctionType.NONE
    w.emit(name, code, [x], opt)


@TFLITE.register(MaxPool2d, check=_act8, note="padding through PADV2 (fill -128)")
def _maxpool(w: _Writer, name: str, node: Any) -> None:
    x, p = w.src(name).index, node.padding
    if any(p):  # the runtime pads with the lowest code, which never wins a max
        x = w.pad(name, w.src(name), ((p[0],) * 2, (p[1],) * 2), fill=-128)
    _pool(w, name, node, w.S.BuiltinOperator.MAX_POOL_2D, x, w.S.Padding.VALID)


@TFLITE.register(AvgPool2d, check=all_checks(_same_pool, _act8),
                 note="padding only where it equals TFLite SAME")  # fmt: skip
def _avgpool(w: _Writer, name: str, node: Any) -> None:
    S = w.S
    padding = S.Padding.SAME if any(node.padding) else S.Padding.VALID
    _pool(w, name, node, S.BuiltinOperator.AVERAGE_POOL_2D, w.src(name).index, padding)


@TFLITE.register(Flatten, check=_act8, note="RESHAPE, channel-major as PyTorch")
def _flatten(w: _Writer, name: str, node: Any) -> None:
    S, src = w.S, w.src(name)
    x = src.index
    if len(src.ir_shape) >= 2:
        readers = [TFLITE.lookup(type(w.graph.nodes[s])) for s in w.graph.successors(name)]
        if readers and all(h is not None and h.fn is _linear for h in readers):
            w.flat_src[name] = tuple(src.ir_shape)  # the Linear permutes its columns instead
        else:  # keep PyTorch's channel-major order: NHWC -> NCHW before reshaping
            perm = (0, 3, 1, 2)
            tperm = w.const_i32(name + "_perm", perm)
            tt = w.act(name + "_nchw", tuple(w.tensors[x].shape[i] for i in perm), src.spec)
            w.op(S.BuiltinOperator.TRANSPOSE, [x, tperm], [tt],
                 S.TransposeOptionsT())  # fmt: skip
            x = tt
    y = w.reshape(name, _T(x, src.ir_shape, src.spec), (1, int(np.prod(src.ir_shape))))
    w.out[name] = _T(y, w.rt.shapes[name], src.spec)


@TFLITE.register(ReLU, check=_act8, note="fused into the producing layer when it alone reads it")
def _relu(w: _Writer, name: str, node: Any) -> None:
    w.emit(name, w.S.BuiltinOperator.RELU, [w.src(name).index])


@TFLITE.register(Add, check=all_checks(_act8, _add_ratio), note="input scales < 256x the output's")
def _add(w: _Writer, name: str, node: Any) -> None:
    S = w.S
    opt = S.AddOptionsT()
    opt.fusedActivationFunction = S.ActivationFunctionType.NONE
    ins = [w.src(name, 0).index, w.src(name, 1).index]
    w.emit(name, S.BuiltinOperator.ADD, ins, opt)


@TFLITE.register(
    Scale,
    check=all_checks(_channel_scale, _act8),
    note="DEPTHWISE_CONV_2D 1x1 (weight ±1 at scale |s|); scalar or per channel",
)
def _scale(w: _Writer, name: str, node: Any) -> None:
    S, src = w.S, w.src(name)
    c = src.ir_shape[0]
    s = np.broadcast_to(np.asarray(node.scale, np.float32).ravel(), (c,))
    w_scale = np.where(s == 0, np.float32(1), np.abs(s))  # code 0 where s = 0
    s_b = (np.float64(np.float32(src.spec.scale)) * w_scale.astype(np.float64)).astype(np.float32)
    zeros = np.zeros(c, int)
    tw = w.tensor(name + "_weight", (1, 1, 1, c), S.TensorType.INT8,
                  w.quant(w_scale, zeros, 3), np.sign(s).astype(np.int8))  # fmt: skip
    tb = w.tensor(name + "_bias", (c,), S.TensorType.INT32, w.quant(s_b, zeros),
                  np.zeros(c, np.int32))  # fmt: skip
    x, flat = src.index, len(src.ir_shape) == 1
    if flat:  # (F,): the F features are the channels of a 1x1 image
        x = w.reshape(name + "_nhwc", src, (1, 1, 1, c))
    opt = S.DepthwiseConv2DOptionsT()
    opt.padding, opt.depthMultiplier = S.Padding.VALID, 1
    opt.strideH = opt.strideW = opt.dilationHFactor = opt.dilationWFactor = 1
    code = S.BuiltinOperator.DEPTHWISE_CONV_2D
    t = w.emit(name, code, [x, tw, tb], opt,
               shape=(1, 1, 1, c) if flat else None)  # fmt: skip
    if flat:
        w.out[name] = _T(w.reshape(name + "_flat", t, (1, c)), t.ir_shape, t.spec)


TFLITE.graph_check(input_count)


# -------------------------------------------------------------------------- API
def tflite_bytes(graph: Any, io: str = "float", softmax: bool = False) -> bytes:
    """Serialize a quantized (int8) Graph as a ``.tflite`` flatbuffer.

    Args:
        graph: a :class:`neuroplast.graph.Graph` with 8-bit activations (e.g. from
            :func:`neuroplast.quantize.lower`), one input.
        io: ``"float"`` (float32 input/output with QUANTIZE/DEQUANTIZE) or ``"int8"``.
        softmax: append a SOFTMAX (int8 output, scale 1/256, zero point -128).

    Raises:
        UnsupportedError: (an ExportError) naming the first node int8 TFLite cannot
            express, before anything is built.
    """
    from neuroplast.runtime import Runtime

    if io not in ("float", "int8"):
        raise ExportError(f"io must be 'float' or 'int8', got {io!r}")
    ok, why = TFLITE.available()
    if not ok:
        raise ExportError(f"TFLite export {why}")
    TFLITE.require(graph)
    w = _Writer(graph, io, Runtime(graph, mode="int"))
    for name in graph.topo_order():
        if name not in w.done:
            TFLITE.handler(name, graph.nodes[name])(w, name, graph.nodes[name])
    S = w.S
    outputs: list[int] = []
    for oname in graph.outputs:
        idx = w.out[oname].index
        shape = tuple(w.tensors[idx].shape)
        if softmax:
            ts = w.act(oname + "_softmax", shape, _SOFTMAX_Q)
            opt = S.SoftmaxOptionsT()
            opt.beta = 1.0
            w.op(S.BuiltinOperator.SOFTMAX, [idx], [ts], opt)
            idx = ts
        if io == "float":
            tf = w.tensor(oname + "_float", shape, S.TensorType.FLOAT32)
            w.op(S.BuiltinOperator.DEQUANTIZE, [idx], [tf])
            idx = tf
        outputs.append(idx)
    return w.finish(outputs, "neuroplast int8 export")


def export_tflite(
    graph: Any, path: str | os.PathLike, io: str = "float", softmax: bool = False
) -> Path:
    """Write :func:`tflite_bytes` of ``graph`` to ``path`` (atomically); return the path."""
    return write_atomic(path, tflite_bytes(graph, io=io, softmax=softmax))
