"""Lowering: a Brevitas QAT model -> the neuroplast Graph IR.

The learned quantizers are *read*, never re-estimated: every scale, zero point and bit
width in the graph's :class:`~neuroplast.quant.QuantSpec` metadata is the float32 value
the QAT model used, so the integer runtime reproduces the QAT model:

* input quantizer  -> ``Input.quant``;
* ``QuantLinear``/``QuantConv*`` -> ``Linear``/``Conv*`` with the dequantized weights
  ``w = s_w * w_q`` (exactly representable, so the runtime recovers ``w_q``), the bias
  rounded to Brevitas' int32 grid ``s_in * s_w`` and ``out_q`` from the output (or the
  following ReLU's) quantizer; a following ``QuantReLU`` also emits a ``ReLU`` node;
* ``MaxPool2d``/``QuantAvgPool2d``/``Flatten`` -> the same IR nodes;
* :class:`~neuroplast.quantize.qat.QuantLIF` -> ``LIF`` with
  ``tau_mem = dt / (1 - beta)`` and ``v_q`` = the feeding layer's current spec;
* a DCLS delay layer (any module with ``weight_and_scale()``, ``int_delays()`` and
  ``bits``, such as the KWS ``DelayQuantLinear``) -> ``DelayLinear`` (:func:`delay_layer`,
  :func:`delay_linear`): integer weights ``w_q``, per-tensor scale ``s``, integer delays
  ``round(p)``, and a 32-bit current ``out_q`` at scale ``s_in * s``, so that with a spike
  input (scale 1) the requantization multiplier is exactly 1.

:func:`delay_chain` builds the spiking delay network ``Input -> [DelayLinear -> LIF]* ->
DelayLinear -> LI`` from plain arrays (:class:`DelayLayer`, no torch), as saved for a
device (the KWS deployment).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from neuroplast.errors import ExportError, GraphError

__all__ = [
    "lower",
    "act_spec",
    "weight_spec",
    "DelayLayer",
    "delay_layer",
    "delay_linear",
    "delay_chain",
]


def _f32(x: Any) -> float:
    return float(np.float32(float(x.detach() if hasattr(x, "detach") else x)))


def act_spec(proxy: Any) -> Any:
    """QuantSpec of a Brevitas activation quant proxy (per tensor)."""
    from neuroplast.quant import QuantSpec

    scale = proxy.scale()
    if scale is None:
        raise ExportError(f"activation quantizer {type(proxy).__name__} has no scale (disabled?)")
    if scale.numel() != 1:
        raise ExportError("only per-tensor activation quantization can be lowered")
    return QuantSpec(
        bits=int(proxy.bit_width()),
        scale=_f32(scale.reshape(-1)[0]),
        zero_point=int(round(float(proxy.zero_point().reshape(-1)[0]))),
        axis=None,
        signed=bool(proxy.is_signed),
        narrow=bool(getattr(proxy, "is_narrow_range", False)),
    )


def weight_spec(layer: Any) -> tuple[Any, np.ndarray]:
    """``(QuantSpec, float weight = s_w * w_q)`` of a Brevitas weight layer."""
    from neuroplast.quant import QuantSpec

    qw = layer.quant_weight()
    s = qw.scale.detach().reshape(-1).double().numpy().astype(np.float32)
    zp = qw.zero_point.detach().reshape(-1).numpy()
    if np.any(zp != 0):
        raise ExportError(f"{type(layer).__name__}: weights must be symmetric (zero point 0)")
    wq = qw.int().detach().numpy().astype(np.int64)
    per_channel = s.size > 1
    sa = s.reshape((-1,) + (1,) * (wq.ndim - 1)) if per_channel else s.reshape(())
    spec = QuantSpec(
        bits=int(qw.bit_width),
        scale=tuple(float(v) for v in s) if per_channel else float(s[0]),
        zero_point=0,
        axis=0 if per_channel else None,
        signed=True,
        narrow=bool(layer.weight_quant.is_narrow_range),
    )
    return spec, (wq.astype(np.float32) * sa).astype(np.float32)


def _pair(v: Any) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _bias(layer: Any, in_spec: Any, w_spec: Any) -> np.ndarray | None:
    if layer.bias is None:
        return None
    from neuroplast.quant import bias_to_int32

    s_w = np.asarray(w_spec.scale, dtype=np.float32)
    s_b = np.float64(np.float32(in_spec.scale)) * s_w.astype(np.float64)
    bq = bias_to_int32(layer.bias.detach().double().numpy(), in_spec.scale, s_w)
    return (bq * s_b).astype(np.float32)


@dataclass(frozen=True, eq=False)
class DelayLayer:
    """One delayed fully connected layer as plain arrays: ``weight_q (out, in)`` integer
    codes (float weights when ``bits == 0``), per-tensor ``scale``, ``delay`` int steps."""

    weight_q: np.ndarray
    scale: float
    delay: np.ndarray
    bits: int

    @property
    def weight(self) -> np.ndarray:
        """Dequantized weight ``scale * weight_q`` (float32)."""
        return (self.weight_q.astype(np.float64) * self.scale).astype(np.float32)


def delay_layer(module: Any) -> DelayLayer:
    """Read a DCLS delay layer (``weight_and_scale() -> (w, s)``, ``int_delays()``,
    ``bits``; 0 = float weights) into a :class:`DelayLayer`."""
    import torch

    with torch.no_grad():
        w, s = module.weight_and_scale()
        delay = module.int_delays().numpy().astype(np.int32)
        if module.bits:
            wq = torch.round(w / s).to(torch.int64).numpy()
            return DelayLayer(wq, float(np.float32(float(s))), delay, int(module.bits))
        return DelayLayer(w.numpy().astype(np.float64), 1.0, delay, 0)


def delay_linear(layer: DelayLayer, in_scale: float | None = 1.0) -> Any:
    """The ``DelayLinear`` node of ``layer``; ``in_scale``: the input's activation scale
    (``None``: a float graph without quantization metadata)."""
    from neuroplast.graph import DelayLinear
    from neuroplast.quant import QuantSpec

    if layer.weight_q.shape != layer.delay.shape:
        raise GraphError(f"weight {layer.weight_q.shape} and delay {layer.delay.shape} differ")
    wq = oq = None
    if in_scale is not None:
        if layer.bits not in (2, 4, 8):
            raise GraphError(
                f"an integer DelayLinear needs 2-, 4- or 8-bit weights, got {layer.bits}"
            )
        wq = QuantSpec(bits=layer.bits, scale=float(layer.scale), narrow=True)
        oq = QuantSpec(bits=32, scale=float(in_scale * layer.scale))
    return DelayLinear(weight=layer.weight, delay=layer.delay, weight_q=wq, out_q=oq)


def _tau(beta: float, dt: float) -> float:
    if not 0.0 <= beta < 1.0:
        raise GraphError(f"membrane decay beta must be in [0, 1), got {beta}")
    return dt / (1.0 - beta)


def delay_chain(
    layers: tuple[DelayLayer, ...] | list[DelayLayer],
    *,
    beta: float,
    beta_out: float,
    v_th: float,
    dt: float,
    quantized: bool = True,
) -> Any:
    """``Input (0/1 spikes) -> [DelayLinear -> LIF]* -> DelayLinear -> LI``: hidden LIF
    with ``tau = dt / (1 - beta)``, threshold ``v_th``, hard reset to 0; a leaky readout
    with ``beta_out``. ``quantized``: integer metadata (membranes in the layer's weight
    scale, the recurrence the QAT model trains with), else a float graph."""
    from neuroplast.graph import LI, LIF, Graph, Input
    from neuroplast.quant import QuantSpec

    if not layers:
        raise GraphError("a delay chain needs at least one layer")
    spikes = QuantSpec(bits=8, scale=1.0, zero_point=0) if quantized else None
    nodes: list[tuple[str, Any]] = [
        ("input", Input(shape=(layers[0].weight_q.shape[1],), quant=spikes))
    ]
    for i, layer in enumerate(layers, start=1):
        try:
            nodes.append((f"fc{i}", delay_linear(layer, 1.0 if quantized else None)))
        except GraphError as e:
            raise GraphError(f"layer {i}: {e}") from None
        n = layer.weight_q.shape[0]
        vq = QuantSpec(bits=32, scale=float(layer.scale)) if quantized else None
        if i < len(layers):
            nodes.append((f"lif{i}", LIF(tau_mem=np.full(n, _tau(beta, dt), np.float32),
                                         v_th=np.full(n, v_th, np.float32), v_reset=np.zeros(n, np.float32),
                                         reset="zero", v_q=vq)))  # fmt: skip
        else:
            nodes.append(("out", LI(tau_mem=np.full(n, _tau(beta_out, dt), np.float32), v_q=vq)))
    return Graph.sequential(nodes, dt=dt)


def lower(qat_model: Any, example_input: Any, dt: float = 1e-3, name: str = "") -> Any:
    """Lower a model from :func:`neuroplast.quantize.prepare` to a :class:`Graph`.

    Args:
        qat_model: the Brevitas QAT ``Sequential`` (trained or calibrated).
        example_input: a tensor shaped like the model input: ``[B, ...]`` for
            feed-forward nets, ``[T, B, ...]`` for spiking nets.
        dt: the graph time step in seconds (sets ``tau_mem`` of LIF nodes).

    Returns:
        a validated :class:`neuroplast.graph.Graph` with quantization metadata.

    Raises:
        ExportError: naming the layer that cannot be lowered.
    """
    import brevitas.nn as qnn
    import torch

    from neuroplast import graph as G
    from neuroplast.quantize.qat import _torch_classes

    cls = _torch_classes()
    QuantLIF, QuantAvgPool2d = cls["QuantLIF"], cls["QuantAvgPool2d"]
    layers = list(qat_model)
    if not layers or not isinstance(layers[0], qnn.QuantIdentity):
        raise ExportError("lower: the model must start with an input quantizer (use prepare())")
    was_training = qat_model.training
    qat_model.eval()
    x = torch.as_tensor(example_input)
    spiking = any(isinstance(m, QuantLIF) for m in layers)
    in_shape = tuple(x.shape[2:] if spiking else x.shape[1:])
    nodes: list[tuple[str, Any]] = []
    cur = act_spec(layers[0].act_quant)
    nodes.append(("input", G.Input(shape=in_shape, quant=cur)))
    counts: dict[str, int] = {}

    def add(kind: str, node: Any) -> None:
        counts[kind] = counts.get(kind, 0) + 1
        nodes.append((f"{kind.lower()}{counts[kind]}", node))

    try:
        i = 1
        while i < len(layers):
            m = layers[i]
            nxt = layers[i + 1] if i + 1 < len(layers) else None
            where = f"layer {i} ({type(m).__name__})"
            if isinstance(m, (qnn.QuantLinear, qnn.QuantConv1d, qnn.QuantConv2d)):
                w_spec, w = weight_spec(m)
                b = _bias(m, cur, w_spec)
                relu = isinstance(nxt, qnn.QuantReLU)
                if relu:
                    out = act_spec(nxt.act_quant)
                elif m.output_quant.is_quant_enabled:
                    out = act_spec(m.output_quant)
                else:
                    raise ExportError(
                        f"{where}: needs an output quantizer or a following QuantReLU"
                    )
                kw: dict[str, Any] = dict(weight=w, bias=b, weight_q=w_spec, out_q=out)
                if isinstance(m, qnn.QuantLinear):
                    add("Linear", G.Linear(**kw))
                else:
                    conv = G.Conv1d if isinstance(m, qnn.QuantConv1d) else G.Conv2d
                    if isinstance(m.padding, str):
                        raise ExportError(f"{where}: string padding {m.padding!r} unsupported")
                    kw.update(stride=m.stride, padding=m.padding, dilation=m.dilation)
                    add(conv.kind, conv(groups=m.groups, **kw))
                if relu:
                    add("ReLU", G.ReLU())
                    i += 1
                cur = out
            elif (
                isinstance(m, qnn.QuantIdentity) and spiking and isinstance(layers[i - 1], QuantLIF)
            ):
                cur = act_spec(m.act_quant)  # spikes: scale 1, nothing to emit
            elif all(hasattr(m, a) for a in ("weight_and_scale", "int_delays", "bits")):
                node = delay_linear(delay_layer(m), cur.scale)  # a DCLS delay layer
                add("DelayLinear", node)
                cur = node.out_q
            elif isinstance(m, QuantLIF):
                beta = m.beta
                lif_kw: dict[str, Any] = dict(
                    v_th=np.float32(m.threshold),
                    v_reset=np.float32(m.v_reset),
                    v_leak=np.float32(m.v_reset),
                    reset=m.reset,
                    v_q=cur,
                )
                if beta >= 1.0:
                    add("IF", G.IF(**lif_kw))
                else:
                    tau = dt / (1.0 - beta)
                    add("LIF", G.LIF(tau_mem=np.float32(tau), **lif_kw))
            elif isinstance(m, torch.nn.MaxPool2d):
                add(
                    "MaxPool2d",
                    G.MaxPool2d(
                        kernel=_pair(m.kernel_size), stride=_pair(m.stride), padding=(0, 0)
                    ),
                )
            elif isinstance(m, QuantAvgPool2d):
                add(
                    "AvgPool2d",
                    G.AvgPool2d(
                        kernel=_pair(m.kernel_size), stride=_pair(m.stride), padding=(0, 0)
                    ),
                )
            elif isinstance(m, torch.nn.Flatten):
                if m.start_dim != 1 or m.end_dim != -1:
                    raise ExportError(f"{where}: only Flatten(start_dim=1) is supported")
                add("Flatten", G.Flatten())
            else:
                raise ExportError(
                    f"lower: {where} has no Graph IR equivalent (supported: QuantLinear, "
                    "QuantConv1d/2d + QuantReLU, MaxPool2d, QuantAvgPool2d, Flatten, QuantLIF, "
                    "DCLS delay layers)"
                )
            i += 1
    finally:
        qat_model.train(was_training)
    try:
        return G.Graph.sequential(nodes, dt=dt)
    except Exception as e:  # GraphError from validation: report as an export failure
        raise ExportError(f"lowered graph is invalid: {e}") from e
