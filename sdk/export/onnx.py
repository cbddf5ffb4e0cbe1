"""ONNX QDQ model written from the Graph IR (no torch, no Brevitas): the ``onnx`` target.

Used when only the lowered graph is at hand (a bundle on a device, a hand-built graph):
``OnnxBackend.from_graph`` runs it in onnxruntime. Every IR tensor travels as float
values on its integer grid, made explicit with ``QuantizeLinear``/``DequantizeLinear``
pairs (QDQ), in PyTorch's channels-first layout; the numbers are the integer runtime's:

* weights: int8 initializers + per-channel ``DequantizeLinear`` (axis 0); biases int32
  at scale ``s_in * s_w``; ``Conv``/``Gemm`` in float, then the output ``QuantizeLinear``
  (round half to even) - a narrower-than-8-bit range adds a ``Clip`` on the codes;
* ``ReLU``/``MaxPool``/``Flatten`` keep the grid; ``Scale`` requantizes in float;
  ``Add`` computes the runtime's integer ADD on the codes in double (exact);
* ``AvgPool2d`` averages the integer codes and rounds half away from zero, as the
  integer runtime and LiteRT do (``Sign * Floor(|a| + 0.5)``), padding left out of the
  count (``count_include_pad=0``).

onnxruntime computes the requantization in float, the integer runtime in fixed point:
codes agree except where a value lies within float rounding of a tie (then 1 LSB at
that layer; round half to even vs half up). Only the ``onnx`` package is needed to
write (``pip install 'neuroplast[onnx]'``); it is imported when a model is written.
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
from neuroplast.targets import CheckContext, Refusal, Target, register_target

__all__ = ["ONNX", "OPSET", "graph_to_onnx", "export_onnx_graph"]

OPSET = 17

ONNX = register_target(
    Target(
        "onnx",
        "ONNX QDQ model (opset 17, float I/O)",
        engine="onnxruntime: requantizes in float, 1 LSB off where a value is a rounding tie",
        hint="run it in the neuroplast runtime",
        requires=("onnx",),
        extra="onnx",
        builds_on=("runtime-int",),  # it writes the integer runtime's numbers
    )
)

refuse_stateful(ONNX, "ONNX")
ONNX.refuse(
    SumPool2d,
    "the QDQ writer carries at most 8-bit values and the sums are 32-bit",
    "use AvgPool2d (the sum over the window size), or run it in the neuroplast runtime",
)


# ------------------------------------------------------------------------ checks
_weights = int_weights("the QDQ writer")


def _act(name: str, node: Any, ctx: CheckContext) -> str | None:
    return activation_problem(
        name,
        ctx,
        lambda q: q.bits <= 8,
        "the ONNX QDQ writer carries activations of at most 8 bits: quantize it to 8 bits",
    )


@ONNX.graph_check
def _one_output(ctx: CheckContext) -> list[Refusal]:
    outs = ctx.graph.outputs
    if len(outs) == 1:
        return []
    why = f"it has {len(outs)} outputs {list(outs)}; the ONNX writer takes exactly one"
    return [Refusal("*", "", "onnx", why, "")]


ONNX.graph_check(input_count)


# ------------------------------------------------------------------------ writer
@dataclass
class _Writer:
    """ONNX nodes and initializers, and the tensor that carries each IR value."""

    rt: Any  # the graph's integer Runtime: the one source of every number written
    nodes: list[Any] = field(default_factory=list)
    inits: list[Any] = field(default_factory=list)
    vals: dict[str, str] = field(default_factory=dict)
    count: int = 0

    def fresh(self, base: str) -> str:
        self.count += 1
        return f"{base}_{self.count}"

    def const(self, base: str, arr: Any) -> str:
        from onnx import numpy_helper

        name = self.fresh(base)
        self.inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def node(self, op: str, ins: list[str], base: str, **attrs: Any) -> str:
        from onnx import helper

        out = self.fresh(base)
        self.nodes.append(helper.make_node(op, ins, [out], **attrs))
        return out

    def x(self, name: str, i: int = 0) -> str:
        return self.vals[self.rt.preds[name][i]]

    def spec(self, name: str, i: int | None = None) -> Any:
        """QuantSpec of ``name``'s output, or of its ``i``-th input."""
        src = name if i is None else self.rt.preds[name][i]
        return self.rt.kernels[src].out_quant

    def qdq(self, x: str, spec: Any, where: str) -> str:
        """Quantize float ``x`` onto ``spec``'s grid and dequantize it again."""
        dt = np.int8 if spec.signed else np.uint8
        s = self.const(f"{where}_scale", np.float32(spec.scale))
        z = self.const(f"{where}_zp", np.array(int(spec.zero_point), dt))
        q = self.node("QuantizeLinear", [x, s, z], f"{where}_q")
        lo, hi = spec.range
        if (lo, hi) != (int(np.iinfo(dt).min), int(np.iinfo(dt).max)):
            bounds = [self.const("lo", np.array(lo, dt)), self.const("hi", np.array(hi, dt))]
            q = self.node("Clip", [q, *bounds], f"{where}_qclip")
        return self.node("DequantizeLinear", [q, s, z], f"{where}_dq")

    def dq_const(self, base: str, codes: np.ndarray, scale: np.ndarray) -> str:
        ins = [
            self.const(f"{base}_q", codes),
            self.const(f"{base}_scale", np.asarray(scale, np.float32).ravel()),
            self.const(f"{base}_zp", np.zeros(np.asarray(scale).size, codes.dtype)),
        ]
        return self.node("DequantizeLinear", ins, f"{base}_f", axis=0)


# ---------------------------------------------------------------------- handlers
@ONNX.register(Input, check=_act, note="every activation <= 8 bits per tensor")
def _input(w: _Writer, name: str, node: Any) -> None:
    w.vals[name] = w.qdq("input", node.quant, name)


def _weighted_ins(w: _Writer, name: str, node: Any) -> list[str]:
    k = w.rt.kernels[name]
    n_out = node.weight.shape[0]
    s_w = np.broadcast_to(np.asarray(node.weight_q.scale, np.float32).ravel(), (n_out,))
    codes = np.asarray(k.params["weight"]).astype(np.int8)
    ins = [w.x(name), w.dq_const(f"{name}_w", codes, np.ascontiguousarray(s_w))]
    if k.params.get("bias") is not None:
        s_in = np.float64(np.float32(w.spec(name, 0).scale))
        s_b = (s_in * s_w.astype(np.float64)).astype(np.float32)
        ins.append(w.dq_const(f"{name}_b", np.asarray(k.params["bias"], np.int32), s_b))
    return ins


@ONNX.register(Linear, check=all_checks(_weights, _act), note="Gemm, weights <= 8 bits")
def _linear(w: _Writer, name: str, node: Any) -> None:
    y = w.node("Gemm", _weighted_ins(w, name, node), name, transB=1)
    w.vals[name] = w.qdq(y, w.spec(name), name)


@ONNX.register(Conv1d, Conv2d, check=all_checks(_weights, _act), note="Conv, weights <= 8 bits")
def _conv(w: _Writer, name: str, node: Any) -> None:
    y = w.node(
        "Conv",
        _weighted_ins(w, name, node),
        name,
        kernel_shape=list(node.weight.shape[2:]),
        strides=list(node.stride),
        pads=list(node.padding) * 2,
        dilations=list(node.dilation),
        group=int(node.groups),
    )
    w.vals[name] = w.qdq(y, w.spec(name), name)


@ONNX.register(ReLU, check=_act)
def _relu(w: _Writer, name: str, node: Any) -> None:
    w.vals[name] = w.node("Relu", [w.x(name)], name)


@ONNX.register(MaxPool2d, check=_act)
def _maxpool(w: _Writer, name: str, node: Any) -> None:
    w.vals[name] = w.node("MaxPool", [w.x(name)], name, kernel_shape=list(node.kernel),
                          strides=list(node.stride), pads=list(node.padding) * 2)  # fmt: skip


@ONNX.register(AvgPool2d, check=_act)
def _avgpool(w: _Writer, name: str, node: Any) -> None:
    # average the runtime's codes c = round(x / s) + zp - off and round half away from
    # zero (off: unsigned codes are averaged shifted into the signed range, as TFLite)
    q = w.spec(name)
    off = 0 if q.signed else 1 << (q.bits - 1)
    s = w.const("s", np.float32(q.scale))
    zp = w.const("zp", np.float32(int(q.zero_point) - off))
    half = w.const("half", np.float32(0.5))
    c = w.node("Add", [w.node("Round", [w.node("Div", [w.x(name), s], name)], name), zp], name)
    a = w.node("AveragePool", [c], name, kernel_shape=list(node.kernel),
               strides=list(node.stride), pads=list(node.padding) * 2, count_include_pad=0)  # fmt: skip
    away = w.node("Floor", [w.node("Add", [w.node("Abs", [a], name), half], name)], name)
    r = w.node("Mul", [w.node("Sign", [a], name), away], name)
    y = w.node("Mul", [w.node("Sub", [r, zp], name), s], name)
    w.vals[name] = w.qdq(y, q, name)  # Div + Round inside recovers the exact codes


@ONNX.register(Flatten, check=_act, note="channel-major, as PyTorch")
def _flatten(w: _Writer, name: str, node: Any) -> None:
    w.vals[name] = w.node("Flatten", [w.x(name)], name, axis=1)


@ONNX.register(Add, check=_act, note="the runtime's integer ADD, in double")
def _add(w: _Writer, name: str, node: Any) -> None:
    k = w.rt.kernels[name]
    if not k.single:  # TFLite's reference ADD (extreme scale ratios): float, exact but at ties
        y = w.node("Add", [w.x(name, 0), w.x(name, 1)], name)
        w.vals[name] = w.qdq(y, w.spec(name), name)
        return
    from onnx import TensorProto

    # (2^(k-1) + m_a (a - z_a) + m_b (b - z_b)) >> k on the codes: every term is an
    # integer below 2^53, so double arithmetic is exact
    terms = []
    for i, m in ((0, k.ma), (1, k.mb)):
        s = w.const("s", np.float32(w.spec(name, i).scale))
        d = w.node("Round", [w.node("Div", [w.x(name, i), s], name)], name)  # a - z_a
        d64 = w.node("Cast", [d], name, to=TensorProto.DOUBLE)
        terms.append(w.node("Mul", [d64, w.const("m", np.float64(m))], name))
    acc = w.node("Add", terms, name)
    acc = w.node("Add", [acc, w.const("r", np.float64(2.0 ** (k.k - 1)))], name)
    y = w.node("Floor", [w.node("Mul", [acc, w.const("p", np.float64(2.0**-k.k))], name)], name)
    y32 = w.node("Cast", [y], name, to=TensorProto.FLOAT)
    real = w.node("Mul", [y32, w.const("s", np.float32(k.out_quant.scale))], name)
    w.vals[name] = w.qdq(real, k.out_quant, name)  # adds z_o and saturates to the range


@ONNX.register(Scale, check=_act, note="Mul by the float scale, then requantized")
def _scale(w: _Writer, name: str, node: Any) -> None:
    shape = w.rt.shapes[name]
    s = np.asarray(node.scale, np.float32)
    if s.size == 1:
        s = s.reshape(())
    elif s.size == int(np.prod(shape)):  # per element (the runtime's order of cases)
        s = s.reshape((1, *shape))
    else:  # per channel
        s = s.reshape((1, s.size) + (1,) * (len(shape) - 1))
    y = w.node("Mul", [w.x(name), w.const(f"{name}_s", s)], name)
    w.vals[name] = w.qdq(y, w.spec(name), name)


# -------------------------------------------------------------------------- API
def graph_to_onnx(graph: Any) -> Any:
    """Build an ``onnx.ModelProto`` (float input ``input``, float output ``output``).

    Raises:
        UnsupportedError: (an ExportError) naming the first node ONNX QDQ cannot
            express, before anything is built.
    """
    ok, why = ONNX.available()
    if not ok:
        raise ExportError(f"ONNX export {why}")
    import onnx
    from onnx import TensorProto, helper

    from neuroplast.runtime import Runtime

    ONNX.require(graph)
    w = _Writer(Runtime(graph, mode="int"))
    for name in graph.topo_order():
        ONNX.handler(name, graph.nodes[name])(w, name, graph.nodes[name])
    out = graph.outputs[0]
    w.nodes.append(helper.make_node("Identity", [w.vals[out]], ["output"]))
    shapes = w.rt.shapes
    g = helper.make_graph(
        w.nodes,
        "neuroplast",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", *shapes[graph.inputs[0]]])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", *shapes[out]])],
        initializer=w.inits,
    )  # fmt: skip
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as e:  # pragma: no cover - writer bug
        raise ExportError(f"generated ONNX model is invalid: {e}") from e
    return model


def export_onnx_graph(graph: Any, path: str | os.PathLike) -> Path:
    """Write :func:`graph_to_onnx` of ``graph`` to ``path`` (atomically); return the path."""
    return write_atomic(path, graph_to_onnx(graph).SerializeToString())
