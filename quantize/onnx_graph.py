"""ONNX QDQ model written directly from a quantized Graph IR (no torch, no Brevitas).

Used when only the lowered graph is at hand (a bundle on a device, a hand-built graph):
``OnnxBackend.from_graph`` runs it in onnxruntime. Every IR tensor travels as float
values on its integer grid, made explicit with ``QuantizeLinear``/``DequantizeLinear``
pairs (QDQ), in PyTorch's channels-first layout:

* weights: int8 initializers + per-channel ``DequantizeLinear`` (axis 0); biases int32
  at scale ``s_in * s_w``; ``Conv``/``Gemm`` in float, then the output ``QuantizeLinear``
  (round half to even) - a narrower-than-8-bit range adds a ``Clip`` on the codes;
* ``ReLU``/``MaxPool``/``Flatten`` keep the grid; ``Add`` requantizes;
* ``AvgPool2d`` averages the integer codes and rounds half away from zero, as the
  integer runtime and LiteRT do (``Sign * Floor(|a| + 0.5)``).

onnxruntime computes the requantization in float, the integer runtime in fixed point,
so results agree to <= 1 LSB (exactly, except near rounding ties).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from neuroplast.errors import ExportError

__all__ = ["graph_to_onnx", "export_onnx_graph"]

OPSET = 17


def graph_to_onnx(graph: Any) -> Any:
    """Build an ``onnx.ModelProto`` (float input ``input``, float output ``output``)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from neuroplast import graph as G
    from neuroplast.quant import bias_to_int32, quantize

    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise ExportError("ONNX graph export needs exactly one Input and one output node")
    nodes: list[Any] = []
    inits: list[Any] = []
    counter = [0]

    def fresh(base: str) -> str:
        counter[0] += 1
        return f"{base}_{counter[0]}"

    def const(name: str, arr: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def qdq(x: str, spec: Any, where: str) -> str:
        """Quantize float ``x`` onto ``spec``'s grid and dequantize it again."""
        if spec is None:
            raise ExportError(f"node {where!r}: no quantization spec")
        if spec.per_channel or spec.bits > 8:
            raise ExportError(f"node {where!r}: only per-tensor <= 8-bit activations")
        signed = spec.signed
        dt = np.int8 if signed else np.uint8
        s = const(fresh(f"{where}_scale"), np.float32(spec.scale))
        z = const(fresh(f"{where}_zp"), np.array(int(spec.zero_point), dt))
        q = fresh(f"{where}_q")
        nodes.append(helper.make_node("QuantizeLinear", [x, s, z], [q]))
        lo, hi = spec.range
        if (lo, hi) != (int(np.iinfo(dt).min), int(np.iinfo(dt).max)):
            qc = fresh(f"{where}_qclip")
            nodes.append(
                helper.make_node(
                    "Clip",
                    [q, const(fresh("lo"), np.array(lo, dt)), const(fresh("hi"), np.array(hi, dt))],
                    [qc],
                )
            )
            q = qc
        y = fresh(f"{where}_dq")
        nodes.append(helper.make_node("DequantizeLinear", [q, s, z], [y]))
        return y

    def dq_const(name: str, q: np.ndarray, scale: np.ndarray) -> str:
        qn = const(f"{name}_q", q)
        sn = const(f"{name}_scale", np.asarray(scale, np.float32).ravel())
        zn = const(f"{name}_zp", np.zeros(np.asarray(scale).size, q.dtype))
        out = f"{name}_f"
        nodes.append(helper.make_node("DequantizeLinear", [qn, sn, zn], [out], axis=0))
        return out

    vals: dict[str, str] = {}
    specs: dict[str, Any] = {}
    shapes = graph.shapes()
    for name in graph.topo_order():
        node = graph.nodes[name]
        preds = graph.predecessors(name)
        if isinstance(node, G.Input):
            vals[name] = qdq("input", node.quant, name)
            specs[name] = node.quant
            continue
        x, in_spec = vals[preds[0]], specs[preds[0]]
        if isinstance(node, (G.Linear, G.Conv1d, G.Conv2d)):
            if node.weight_q is None or node.weight_q.bits > 8:
                raise ExportError(f"node {name!r}: needs int weights of <= 8 bits (weight_q)")
            n_out = node.weight.shape[0]
            s_w = np.broadcast_to(np.asarray(node.weight_q.scale, np.float32).ravel(), (n_out,))
            wq = quantize(node.weight, node.weight_q).astype(np.int8)
            w = dq_const(f"{name}_w", wq, np.ascontiguousarray(s_w))
            ins = [x, w]
            if node.bias is not None:
                s_b = (np.float64(np.float32(in_spec.scale)) * s_w.astype(np.float64)).astype(
                    np.float32
                )
                ins.append(
                    dq_const(
                        f"{name}_b",
                        bias_to_int32(node.bias, in_spec.scale, s_w).astype(np.int32),
                        s_b,
                    )
                )
            y = fresh(name)
            if isinstance(node, G.Linear):
                nodes.append(helper.make_node("Gemm", ins, [y], transB=1))
            else:
                k = list(node.weight.shape[2:])
                pads = list(node.padding) * 2
                nodes.append(
                    helper.make_node(
                        "Conv",
                        ins,
                        [y],
                        kernel_shape=k,
                        strides=list(node.stride),
                        pads=pads,
                        dilations=list(node.dilation),
                        group=int(node.groups),
                    )
                )
            vals[name], specs[name] = qdq(y, node.out_q, name), node.out_q
        elif isinstance(node, G.ReLU):
            y = fresh(name)
            nodes.append(helper.make_node("Relu", [x], [y]))
            vals[name], specs[name] = y, in_spec
        elif isinstance(node, G.MaxPool2d):
            y = fresh(name)
            nodes.append(
                helper.make_node(
                    "MaxPool",
                    [x],
                    [y],
                    kernel_shape=list(node.kernel),
                    strides=list(node.stride),
                    pads=list(node.padding) * 2,
                )
            )
            vals[name], specs[name] = y, in_spec
        elif isinstance(node, G.AvgPool2d):
            if tuple(node.padding) != (0, 0):
                raise ExportError(f"node {name!r}: padded average pooling is not supported")
            # average the integer codes c = round(x / s) + zp, round half away from zero
            s = const(fresh("s"), np.float32(in_spec.scale))
            zp = const(fresh("zp"), np.float32(in_spec.zero_point))
            half = const(fresh("half"), np.float32(0.5))
            t = {k: fresh(f"{name}_{k}") for k in "d rd c a ab h fl sg r rc y".split()}
            nodes += [
                helper.make_node("Div", [x, s], [t["d"]]),
                helper.make_node("Round", [t["d"]], [t["rd"]]),
                helper.make_node("Add", [t["rd"], zp], [t["c"]]),
                helper.make_node(
                    "AveragePool",
                    [t["c"]],
                    [t["a"]],
                    kernel_shape=list(node.kernel),
                    strides=list(node.stride),
                ),
                helper.make_node("Abs", [t["a"]], [t["ab"]]),
                helper.make_node("Add", [t["ab"], half], [t["h"]]),
                helper.make_node("Floor", [t["h"]], [t["fl"]]),
                helper.make_node("Sign", [t["a"]], [t["sg"]]),
                helper.make_node("Mul", [t["sg"], t["fl"]], [t["r"]]),
                helper.make_node("Sub", [t["r"], zp], [t["rc"]]),
                helper.make_node("Mul", [t["rc"], s], [t["y"]]),
            ]
            yv = t["y"]
            # Div + Round inside qdq recovers the exact codes (values are on the grid)
            vals[name], specs[name] = qdq(yv, in_spec, name), in_spec
        elif isinstance(node, G.Flatten):
            y = fresh(name)
            nodes.append(helper.make_node("Flatten", [x], [y], axis=1))
            vals[name], specs[name] = y, in_spec
        elif isinstance(node, G.Add):
            y = fresh(name)
            nodes.append(helper.make_node("Add", [x, vals[preds[1]]], [y]))
            spec = node.out_q if node.out_q is not None else in_spec
            vals[name], specs[name] = qdq(y, spec, name), spec
        else:
            raise ExportError(
                f"node {name!r} ({node.kind}) has no ONNX QDQ equivalent here; supported: "
                "Input, Linear, Conv1d, Conv2d, ReLU, MaxPool2d, AvgPool2d, Flatten, Add"
            )
    out = graph.outputs[0]
    nodes.append(helper.make_node("Identity", [vals[out]], ["output"]))
    in_shape = ["batch", *graph.shapes()[graph.inputs[0]]]
    out_shape = ["batch", *shapes[out]]
    g = helper.make_graph(
        nodes,
        "neuroplast",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, out_shape)],
        initializer=inits,
    )
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as e:  # pragma: no cover - writer bug
        raise ExportError(f"generated ONNX model is invalid: {e}") from e
    return model


def export_onnx_graph(graph: Any, path: str | os.PathLike) -> Path:
    """Write :func:`graph_to_onnx` of ``graph`` to ``path``; return the path."""
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(graph_to_onnx(graph), str(path))
    return path
