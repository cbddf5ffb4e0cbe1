"""TFLite int8 export, written from the Graph IR with the official schema object API.

The flatbuffer is built with ``ai_edge_litert/schema_py_generated.py`` (the TFLite
schema's generated Python object API) and ``flatbuffers`` - no TensorFlow. Layout and
quantization follow the TFLite int8 spec:

* activations: int8 per tensor (an unsigned 8-bit IR spec with zero point ``z`` becomes
  int8 with zero point ``z - 128``, the same real values); layout channels-last
  (``[1, H, W, C]``; a ``(C, L)`` 1-D signal becomes ``[1, 1, L, C]``);
* weights: int8, symmetric, per output channel (``CONV_2D``: OHWI, axis 0;
  ``DEPTHWISE_CONV_2D``: ``[1, kh, kw, C]``, axis 3; ``FULLY_CONNECTED``: axis 0);
* bias: int32 with scale ``s_in * s_w`` and zero point 0, rounded exactly as the
  neuroplast integer runtime rounds it;
* requantization is LiteRT's: ``M = f32(s_in) f32(s_w) / f32(s_out)`` - the same
  fixed-point rule as :mod:`neuroplast.quant`, so the interpreter matches the integer
  runtime to <= 1 LSB (bit-exact with the reference kernels).

Ops: QUANTIZE, DEQUANTIZE, FULLY_CONNECTED, CONV_2D, DEPTHWISE_CONV_2D, PAD,
AVERAGE_POOL_2D, MAX_POOL_2D, ADD, RESHAPE, TRANSPOSE, RELU (or fused), SOFTMAX.
Nodes with no TFLite equivalent (LIF, Delay, ...) raise :class:`ExportError` naming
the node. The generated ``BufferT.Pack`` ignores alignment, so constant buffers are
packed 16-byte aligned here; buffer 0 is the empty sentinel; ``deprecatedBuiltinCode``
is ``min(code, 127)``; the file identifier is ``TFL3``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neuroplast.errors import ExportError
from neuroplast.quant import bias_to_int32

__all__ = ["export_tflite", "tflite_bytes", "TFLITE_LAYOUT_DOC"]

TFLITE_LAYOUT_DOC = "channels-last: (C,H,W) -> [1,H,W,C]; (C,L) -> [1,1,L,C]; (F,) -> [1,F]"

_SOFTMAX_SCALE = 1.0 / 256.0  # TFLite's required int8 softmax output quantization
_SOFTMAX_ZP = -128


@dataclass
class _T:
    """A TFLite tensor produced for an IR node: index, IR shape, int8 zero-point shift."""

    index: int
    ir_shape: tuple[int, ...]
    spec: Any  # QuantSpec of the IR value (None for float)


class _Writer:
    """Accumulates buffers/tensors/operators of one subgraph."""

    def __init__(self) -> None:
        import ai_edge_litert.schema_py_generated as S

        self.S = S
        self.buffers: list[Any] = [S.BufferT()]  # buffer 0: the empty sentinel
        self.tensors: list[Any] = []
        self.ops: list[Any] = []
        self.opcodes: dict[int, int] = {}

    def _quant(self, scale: Any, zp: Any, axis: int = 0) -> Any:
        q = self.S.QuantizationParametersT()
        q.scale = [float(np.float32(s)) for s in np.atleast_1d(scale)]
        q.zeroPoint = [int(z) for z in np.atleast_1d(zp)]
        q.quantizedDimension = int(axis)
        return q

    def tensor(
        self,
        name: str,
        shape: tuple[int, ...],
        ttype: int,
        quant: Any = None,
        data: np.ndarray | None = None,
    ) -> int:
        t = self.S.TensorT()
        t.name = name
        t.shape = [int(s) for s in shape]
        t.type = ttype
        t.quantization = quant
        if data is not None:
            b = self.S.BufferT()
            b.data = np.ascontiguousarray(data).view(np.uint8).ravel()
            self.buffers.append(b)
            t.buffer = len(self.buffers) - 1
        else:
            t.buffer = 0
        self.tensors.append(t)
        return len(self.tensors) - 1

    def act(self, name: str, shape: tuple[int, ...], spec: Any) -> int:
        """An int8 activation tensor for an IR QuantSpec (8-bit only)."""
        scale, zp = _int8_params(spec, name)
        return self.tensor(name, shape, self.S.TensorType.INT8, self._quant(scale, zp))

    def op(self, code: int, ins: list[int], outs: list[int], opt_type: int = 0, opt: Any = None):
        if code not in self.opcodes:
            self.opcodes[code] = len(self.opcodes)
        o = self.S.OperatorT()
        o.opcodeIndex = self.opcodes[code]
        o.inputs = list(ins)
        o.outputs = list(outs)
        o.builtinOptionsType = opt_type
        o.builtinOptions = opt
        self.ops.append(o)

    def finish(self, inputs: list[int], outputs: list[int], description: str) -> bytes:
        import flatbuffers

        S = self.S
        sg = S.SubGraphT()
        sg.tensors, sg.operators = self.tensors, self.ops
        sg.inputs, sg.outputs, sg.name = inputs, outputs, "main"
        codes = []
        for code, _ in sorted(self.opcodes.items(), key=lambda kv: kv[1]):
            c = S.OperatorCodeT()
            c.builtinCode = code
            c.deprecatedBuiltinCode = min(code, 127)
            c.version = 1
            codes.append(c)
        m = S.ModelT()
        m.version = 3
        m.operatorCodes = codes
        m.subgraphs = [sg]
        m.description = description
        m.buffers = self.buffers
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


def _int8_params(spec: Any, where: str) -> tuple[float, int]:
    if spec is None:
        raise ExportError(f"node {where!r}: no quantization spec (int8 TFLite needs one)")
    if spec.per_channel:
        raise ExportError(f"node {where!r}: per-channel activations are not supported")
    if spec.bits != 8:
        raise ExportError(
            f"node {where!r}: {spec.bits}-bit activations cannot be expressed in int8 TFLite "
            "(use act_bits=8)"
        )
    zp = int(spec.zero_point) - (0 if spec.signed else 128)
    return float(spec.scale), zp


def _tfl_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    if len(shape) == 1:
        return (1, shape[0])
    if len(shape) == 2:  # (C, L) -> [1, 1, L, C]
        return (1, 1, shape[1], shape[0])
    if len(shape) == 3:
        return (1, shape[1], shape[2], shape[0])
    raise ExportError(f"tensor of IR shape {shape} has no TFLite layout")


def _same_pads(n: int, k: int, s: int, d: int) -> tuple[int, int]:
    """TFLite SAME padding (before, after) along one axis."""
    out = -(-n // s)
    eff = (k - 1) * d + 1
    total = max((out - 1) * s + eff - n, 0)
    return total // 2, total - total // 2


def tflite_bytes(graph: Any, io: str = "float", softmax: bool = False) -> bytes:
    """Serialize a quantized (int8) Graph as a ``.tflite`` flatbuffer.

    Args:
        graph: a :class:`neuroplast.graph.Graph` with 8-bit activations (e.g. from
            :func:`neuroplast.quantize.lower`), one input.
        io: ``"float"`` (float32 input/output with QUANTIZE/DEQUANTIZE) or ``"int8"``.
        softmax: append a SOFTMAX (int8 output, scale 1/256, zero point -128).

    Raises:
        ExportError: naming the first node that cannot be expressed.
    """
    from neuroplast import graph as G
    from neuroplast.quant import quantize

    if io not in ("float", "int8"):
        raise ExportError(f"io must be 'float' or 'int8', got {io!r}")
    W = _Writer()
    S = W.S
    BO, OP, TT = S.BuiltinOptions, S.BuiltinOperator, S.TensorType
    shapes = graph.shapes()
    order = graph.topo_order()
    out: dict[str, _T] = {}
    flat_src: dict[str, tuple[int, ...]] = {}  # Flatten node -> IR shape it flattened
    fused: set[str] = set()
    model_inputs: list[int] = []
    if len(graph.inputs) != 1:
        raise ExportError(f"TFLite export needs exactly one Input node, got {graph.inputs}")

    def none_act() -> int:
        return S.ActivationFunctionType.NONE

    for name in order:
        node = graph.nodes[name]
        preds = graph.predecessors(name)
        shp = shapes[name]
        if name in fused:
            continue
        if isinstance(node, G.Input):
            spec = node.quant
            t8 = W.act(name, _tfl_shape(shp), spec)
            if io == "float":
                tf = W.tensor(name + "_float", _tfl_shape(shp), TT.FLOAT32)
                W.op(OP.QUANTIZE, [tf], [t8])
                model_inputs.append(tf)
            else:
                model_inputs.append(t8)
            out[name] = _T(t8, shp, spec)
            continue
        src = out[preds[0]]
        succ = graph.successors(name)
        if isinstance(node, (G.Linear, G.Conv1d, G.Conv2d)):
            spec_out = node.out_q
            act = none_act()
            tname = name
            if len(succ) == 1 and isinstance(graph.nodes[succ[0]], G.ReLU):
                act = S.ActivationFunctionType.RELU
                fused.add(succ[0])
                tname = succ[0]
            if node.weight_q is None or node.weight_q.bits > 8:
                raise ExportError(f"node {name!r}: needs int weights of <= 8 bits (weight_q)")
            wq = quantize(node.weight, node.weight_q).astype(np.int8)
            s_w = np.asarray(node.weight_q.scale, dtype=np.float32).ravel()
            n_out = node.weight.shape[0]
            s_w_full = np.broadcast_to(s_w, (n_out,)) if s_w.size == 1 else s_w
            s_in = float(src.spec.scale)
            bias = node.bias if node.bias is not None else np.zeros(n_out, np.float32)
            bq = bias_to_int32(bias, s_in, s_w_full).astype(np.int32)
            b_scale = (np.float64(np.float32(s_in)) * s_w_full.astype(np.float64)).astype(
                np.float32
            )
            wquant_axis = 0
            if isinstance(node, G.Linear):
                if preds[0] in flat_src and len(flat_src[preds[0]]) >= 2:
                    # flatten of a channels-last tensor: permute W's columns CHW -> HWC
                    fs = flat_src[preds[0]]
                    wq = wq.reshape((n_out,) + fs)
                    wq = np.moveaxis(wq, 1, -1).reshape(n_out, -1)
                wshape = wq.shape
                wdata = wq
                code, opt_t = OP.FULLY_CONNECTED, BO.FullyConnectedOptions
                opt = S.FullyConnectedOptionsT()
                opt.fusedActivationFunction = act
                stride = dil = (1, 1)
                pads = None
            else:
                if isinstance(node, G.Conv1d):
                    w4 = wq[:, :, None, :]  # (O, I, 1, k)
                    stride = (1, node.stride[0])
                    dil = (1, node.dilation[0])
                    pad_hw = ((0, 0), (node.padding[0], node.padding[0]))
                    in_hw = (1, src.ir_shape[1])
                else:
                    w4 = wq
                    stride, dil = node.stride, node.dilation
                    pad_hw = ((node.padding[0],) * 2, (node.padding[1],) * 2)
                    in_hw = src.ir_shape[1:]
                cin = src.ir_shape[0]
                kh, kw = w4.shape[2:]
                depthwise = node.groups == cin and node.groups > 1
                if node.groups != 1 and not depthwise:
                    raise ExportError(
                        f"node {name!r}: grouped convolution (groups={node.groups}, in={cin}) "
                        "has no TFLite op; only groups=1 or depthwise (groups=in_channels)"
                    )
                if all(p == (0, 0) for p in pad_hw):
                    padding = S.Padding.VALID
                    pads = None
                elif all(
                    _same_pads(in_hw[a], (kh, kw)[a], stride[a], dil[a]) == pad_hw[a]
                    for a in (0, 1)
                ):
                    padding = S.Padding.SAME
                    pads = None
                else:
                    padding = S.Padding.VALID
                    pads = pad_hw
                if depthwise:
                    wdata = np.transpose(w4, (1, 2, 3, 0))  # (1, kh, kw, O)
                    wquant_axis = 3
                    code, opt_t = OP.DEPTHWISE_CONV_2D, BO.DepthwiseConv2DOptions
                    opt = S.DepthwiseConv2DOptionsT()
                    opt.depthMultiplier = n_out // cin
                else:
                    wdata = np.transpose(w4, (0, 2, 3, 1))  # OHWI
                    code, opt_t = OP.CONV_2D, BO.Conv2DOptions
                    opt = S.Conv2DOptionsT()
                opt.padding = padding
                opt.strideH, opt.strideW = int(stride[0]), int(stride[1])
                opt.dilationHFactor, opt.dilationWFactor = int(dil[0]), int(dil[1])
                opt.fusedActivationFunction = act
                wshape = wdata.shape
            x_in = src.index
            if pads is not None:
                # PAD fills int8 tensors with their zero point = real 0, like the runtime
                padded = tuple(
                    s
                    + (pads[0][0] + pads[0][1] if i == 1 else 0)
                    + (pads[1][0] + pads[1][1] if i == 2 else 0)
                    for i, s in enumerate(W.tensors[x_in].shape)
                )
                pv = np.array([[0, 0], list(pads[0]), list(pads[1]), [0, 0]], dtype=np.int32)
                tp = W.tensor(name + "_pads", (4, 2), TT.INT32, data=pv)
                xpad = W.act(name + "_padded", padded, src.spec)
                W.op(OP.PAD, [x_in, tp], [xpad], BO.PadOptions, S.PadOptionsT())
                x_in = xpad
            tw = W.tensor(
                name + "_weight",
                wshape,
                TT.INT8,
                W._quant(
                    s_w_full if s_w.size > 1 else s_w, np.zeros(max(s_w.size, 1), int), wquant_axis
                ),
                data=np.ascontiguousarray(wdata, dtype=np.int8),
            )
            tb = W.tensor(
                name + "_bias",
                (n_out,),
                TT.INT32,
                W._quant(
                    b_scale if s_w.size > 1 else b_scale[:1],
                    np.zeros(b_scale.size if s_w.size > 1 else 1, int),
                ),
                data=bq,
            )
            ty = W.act(tname, _tfl_shape(shp), spec_out)
            W.op(code, [x_in, tw, tb], [ty], opt_t, opt)
            out[name] = _T(ty, shp, spec_out)
            if tname != name:
                out[tname] = out[name]
        elif isinstance(node, (G.MaxPool2d, G.AvgPool2d)):
            if tuple(node.padding) != (0, 0):
                raise ExportError(f"node {name!r}: padded pooling is not supported")
            opt = S.Pool2DOptionsT()
            opt.padding = S.Padding.VALID
            opt.strideH, opt.strideW = int(node.stride[0]), int(node.stride[1])
            opt.filterHeight, opt.filterWidth = int(node.kernel[0]), int(node.kernel[1])
            opt.fusedActivationFunction = none_act()
            code = OP.MAX_POOL_2D if isinstance(node, G.MaxPool2d) else OP.AVERAGE_POOL_2D
            ty = W.act(name, _tfl_shape(shp), src.spec)
            W.op(code, [src.index], [ty], BO.Pool2DOptions, opt)
            out[name] = _T(ty, shp, src.spec)
        elif isinstance(node, G.Flatten):
            x_in = src.index
            users = [graph.nodes[s] for s in succ]
            if len(src.ir_shape) >= 2 and not (
                users and all(isinstance(u, G.Linear) for u in users)
            ):
                # keep PyTorch's channel-major order: NHWC -> NCHW before reshaping
                perm = (0, 3, 1, 2)
                tperm = W.tensor(name + "_perm", (4,), TT.INT32, data=np.array(perm, np.int32))
                tshape = tuple(W.tensors[x_in].shape[i] for i in perm)
                tt = W.act(name + "_nchw", tshape, src.spec)
                W.op(OP.TRANSPOSE, [x_in, tperm], [tt], BO.TransposeOptions, S.TransposeOptionsT())
                x_in = tt
            elif len(src.ir_shape) >= 2:
                flat_src[name] = tuple(src.ir_shape)
            new_shape = np.array([1, int(np.prod(src.ir_shape))], np.int32)
            ts = W.tensor(name + "_shape", (2,), TT.INT32, data=new_shape)
            ty = W.act(name, (1, int(np.prod(src.ir_shape))), src.spec)
            opt = S.ReshapeOptionsT()
            opt.newShape = [int(v) for v in new_shape]
            W.op(OP.RESHAPE, [x_in, ts], [ty], BO.ReshapeOptions, opt)
            out[name] = _T(ty, shp, src.spec)
        elif isinstance(node, G.ReLU):
            ty = W.act(name, _tfl_shape(shp), src.spec)
            W.op(OP.RELU, [src.index], [ty])
            out[name] = _T(ty, shp, src.spec)
        elif isinstance(node, G.Add):
            other = out[preds[1]]
            spec = node.out_q if node.out_q is not None else src.spec
            ty = W.act(name, _tfl_shape(shp), spec)
            opt = S.AddOptionsT()
            opt.fusedActivationFunction = none_act()
            W.op(OP.ADD, [src.index, other.index], [ty], BO.AddOptions, opt)
            out[name] = _T(ty, shp, spec)
        else:
            raise ExportError(
                f"node {name!r} ({node.kind}) has no int8 TFLite equivalent; TFLite export "
                "supports Input, Linear, Conv1d, Conv2d (incl. depthwise), MaxPool2d, "
                "AvgPool2d, Flatten, ReLU, Add - run spiking layers in the neuroplast runtime"
            )

    outputs: list[int] = []
    for oname in graph.outputs:
        t = out[oname]
        idx = t.index
        if softmax:
            from neuroplast.quant import QuantSpec

            sm = QuantSpec(bits=8, scale=_SOFTMAX_SCALE, zero_point=_SOFTMAX_ZP, signed=True)
            ts = W.act(oname + "_softmax", tuple(W.tensors[idx].shape), sm)
            opt = S.SoftmaxOptionsT()
            opt.beta = 1.0
            W.op(OP.SOFTMAX, [idx], [ts], BO.SoftmaxOptions, opt)
            idx = ts
        if io == "float":
            tf = W.tensor(oname + "_float", tuple(W.tensors[idx].shape), TT.FLOAT32)
            W.op(OP.DEQUANTIZE, [idx], [tf])
            idx = tf
        outputs.append(idx)
    return W.finish(model_inputs, outputs, "neuroplast int8 export")


def export_tflite(
    graph: Any, path: str | os.PathLike, io: str = "float", softmax: bool = False
) -> Path:
    """Write :func:`tflite_bytes` of ``graph`` to ``path`` (atomically); return the path."""
    data = tflite_bytes(graph, io=io, softmax=softmax)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path
