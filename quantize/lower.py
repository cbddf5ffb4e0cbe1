"""Lowering: any torch model (float or Brevitas QAT) -> the neuroplast Graph IR.

:func:`lower` captures the model with ``torch.fx`` (:func:`capture`: user modules are
traced through, every layer with a lowering is a leaf) and walks the captured graph with
ONE table, :data:`LOWERINGS` (module class, function or ``"method:NAME"`` -> handler),
as every consumer of the IR keeps one handler table (:mod:`neuroplast.targets`); apps
register their layers with :func:`register_lowering`. Residual ``+``, branches and nested
user modules lower; a module without a handler is refused in one line naming its path,
its type and the fix (:data:`FIXES`). A float model gives a float graph.

For a QAT model the learned quantizers are *read*, never re-estimated: every scale, zero point and bit
width in the graph's :class:`~neuroplast.quant.QuantSpec` metadata is the float32 value
the QAT model used, so the integer runtime reproduces the QAT model:

* input quantizer  -> ``Input.quant``;
* ``QuantLinear``/``QuantConv*`` -> ``Linear``/``Conv*`` with the dequantized weights
  ``w = s_w * w_q`` (exactly representable, so the runtime recovers ``w_q``), the bias
  rounded to Brevitas' int32 grid ``s_in * s_w`` and ``out_q`` from the output (or the
  following ReLU's) quantizer; a following ``QuantReLU`` also emits a ``ReLU`` node;
* ``MaxPool2d``/``QuantAvgPool2d``/``Flatten``/``Delay`` -> the same IR nodes (keeping
  their input's quantization); ``QuantAdd`` -> ``Add`` with its own ``out_q``;
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

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from neuroplast.errors import ExportError, GraphError

__all__ = [
    "lower",
    "capture",
    "lowerer",
    "register_lowering",
    "LOWERINGS",
    "PROTOCOLS",
    "FIXES",
    "Lowerer",
    "Lowering",
    "Value",
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


# ============================================================ graph capture (torch.fx)
_KEEP: Any = object()


@dataclass(eq=False)
class Value:
    """What flows along one edge of the captured torch graph while it is lowered.

    ``name``: the IR node that produces it; ``quant``: its activation spec in integer mode
    (``None``: float); ``spikes``: 0/1 spikes. A *pending* value (``emit`` set, ``name``
    None) is a producer whose output quantizer comes from its consumer: the graph input
    (its first quantizer) and a weight layer without an output quantizer (the following
    ``QuantReLU``); :meth:`Lowering.name` emits it with the spec it is consumed at.
    """

    name: str | None
    quant: Any = None
    spikes: bool = False
    emit: Callable[[Any], str] | None = None


@dataclass(frozen=True)
class Lowerer:
    """One module kind's lowering: ``fn(lw, module, args, kwargs, where) -> Value``;
    ``time``: the module runs over a ``[T, B, ...]`` sequence (a spiking net's input)."""

    fn: Callable[..., Value]
    time: bool = False


#: module class | function | ``"method:NAME"`` -> :class:`Lowerer`. The built-in torch and
#: Brevitas kinds are added on first use (:func:`lowerer`); apps add theirs with
#: :func:`register_lowering`.
LOWERINGS: dict[Any, Lowerer] = {}
#: duck-typed kinds: ``(required attributes, Lowerer)`` (the DCLS delay-layer protocol)
PROTOCOLS: list[tuple[tuple[str, ...], Lowerer]] = []

#: what to do about a module kind the Graph IR does not have (by class or function name)
FIXES: dict[str, str] = {
    **dict.fromkeys(
        ("BatchNorm1d", "BatchNorm2d"),
        "fold BatchNorm into the preceding conv/linear first "
        "(torch.nn.utils.fusion.fuse_conv_bn_eval / fuse_linear_bn_eval)",
    ),
    **dict.fromkeys(
        ("Sigmoid", "Tanh", "GELU", "SiLU", "ELU", "LeakyReLU", "Hardswish", "ReLU6"),
        "replace it with ReLU",
    ),
    **dict.fromkeys(
        ("Softmax", "LogSoftmax", "softmax", "log_softmax"),
        "drop it: apply softmax to the model's output outside the graph",
    ),  # fmt: skip
    **dict.fromkeys(("LSTM", "GRU", "RNN"), "replace it with Linear + LIF layers"),
    **dict.fromkeys(
        ("AdaptiveAvgPool2d", "AdaptiveMaxPool2d"),
        "replace it with AvgPool2d/MaxPool2d of a fixed window",
    ),  # fmt: skip
    "MaxPool1d": "replace it with a strided Conv1d (the Graph IR pools in 2-D only)",
    "AvgPool1d": "replace it with a strided Conv1d (the Graph IR pools in 2-D only)",
    "cat": "merge branches with + (Add); the Graph IR has no concatenation",
    "mul": "use a Linear/Conv weight; the Graph IR has no element-wise product",
}
_SUPPORTED = (
    "Linear, Conv1d, Conv2d (float or Brevitas Quant*), ReLU, MaxPool2d, AvgPool2d, Flatten, "
    "+ (Add), Dropout, Identity, LIF/QuantLIF, Delay, DCLS delay layers"
)


def register_lowering(*keys: Any, time: bool = False) -> Callable[[Callable], Callable]:
    """Decorator: ``fn(lw, module, args, kwargs, where) -> Value`` lowers the module
    classes / functions / ``"method:NAME"`` in ``keys`` (an app's own layers register
    here, the same way as the built-ins)."""

    def deco(fn: Callable[..., Value]) -> Callable[..., Value]:
        for k in keys:
            LOWERINGS[k] = Lowerer(fn, time)
        return fn

    return deco


def _unsupported(where: str, name: str) -> ExportError:
    fix = FIXES.get(name, f"replace it with a supported layer ({_SUPPORTED})")
    return ExportError(f"{where} has no Graph IR equivalent; {fix}")


class Lowering:
    """The Graph under construction: nodes named ``kind + count`` (``input`` for the
    input) and edges, at time step ``dt``; ``time``: tensors are ``[T, B, ...]``."""

    def __init__(self, dt: float, time: bool = False) -> None:
        self.dt, self.time = dt, time
        self.nodes: dict[str, Any] = {}
        self.edges: list[tuple[str, str]] = []
        self.counts: dict[str, int] = {}

    def add(self, node: Any, *inputs: Value) -> str:
        """Emit ``node`` fed by ``inputs`` (emitting pending inputs first); its name."""
        srcs = [self.name(v) for v in inputs]
        k = node.kind
        self.counts[k] = self.counts.get(k, 0) + 1
        name = "input" if k == "Input" else f"{k.lower()}{self.counts[k]}"
        self.nodes[name] = node
        self.edges += [(s, name) for s in srcs]
        return name

    def name(self, v: Value, quant: Any = _KEEP) -> str:
        """The node producing ``v``; a pending value is emitted with ``quant`` (default:
        its own). A settled value must already carry ``quant``."""
        if v.emit is not None:
            q = v.quant if quant is _KEEP else quant
            emit, v.emit = v.emit, None
            v.name, v.quant = emit(q), q
        elif quant is not _KEEP and quant != v.quant:
            raise ExportError(f"node {v.name!r} is consumed at two different quantizations")
        assert v.name is not None
        return v.name


# ------------------------------------------------------------------ built-in lowerings
def _np(t: Any) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32)


def _conv_kw(m: Any, where: str) -> dict[str, Any]:
    if not hasattr(m, "stride"):
        return {}
    if isinstance(m.padding, str) or getattr(m, "padding_mode", "zeros") != "zeros":
        raise ExportError(f"{where}: only integer zero padding lowers, got {m.padding!r}")
    return dict(stride=m.stride, padding=m.padding, dilation=m.dilation, groups=m.groups)


def _weighted(node_cls: type) -> Callable[..., Value]:
    def fn(lw: Lowering, m: Any, args: tuple, kw: dict, where: str) -> Value:
        (x,) = args
        lw.name(x)
        if x.quant is not None:
            raise ExportError(f"{where}: a float layer after a quantizer; prepare() the model")
        b = None if m.bias is None else _np(m.bias)
        return Value(lw.add(node_cls(weight=_np(m.weight), bias=b, **_conv_kw(m, where)), x))

    return fn


def _qweighted(node_cls: type) -> Callable[..., Value]:
    def fn(lw: Lowering, m: Any, args: tuple, kw: dict, where: str) -> Value:
        (x,) = args
        lw.name(x)
        if x.quant is None:
            raise ExportError(f"{where}: needs a quantized input: start the model with an "
                              "input quantizer (prepare() adds one)")  # fmt: skip
        w_spec, w = weight_spec(m)
        kwargs = dict(weight=w, bias=_bias(m, x.quant, w_spec), weight_q=w_spec,
                      **_conv_kw(m, where))  # fmt: skip

        def emit(q: Any) -> str:
            if q is None:
                raise ExportError(f"{where}: needs an output quantizer or a following QuantReLU")
            return lw.add(node_cls(out_q=q, **kwargs), x)

        if m.output_quant.is_quant_enabled:
            q = act_spec(m.output_quant)
            return Value(emit(q), q)
        return Value(None, emit=emit)

    return fn


def _relu(lw: Lowering, m: Any, args: tuple, kw: dict, where: str) -> Value:
    x = args[0]
    return Value(lw.add(_G().ReLU(), x), x.quant)


def _quant_relu(lw: Lowering, m: Any, args: tuple, kw: dict, where: str) -> Value:
    (x,) = args
    if x.emit is None:
        raise ExportError(f"{where} re-quantizes a quantized value; put it right after a "
                          "Quant layer without an output quantizer")  # fmt: skip
    q = act_spec(m.act_quant)
    lw.name(x, q)
    return Value(lw.add(_G().ReLU(), x), q)


def _quant_identity(lw: Lowering, m: Any, args: tuple, kw: dict, where: str) -> Value:
    (x,) = args
    q = act_spec(m.act_quant)
    if x.emit is not None:
        lw.name(x, q)
        return x
    if x.spikes and q.scale == 1.0 and q.zero_point == 0:
        return Value(x.name, q, spikes=True)  # 0/1 spikes on the scale-1 grid: nothing to emit
    if x.quant == q:
        return x
    raise ExportError(f"{where} re-quantizes a quantized value (the Graph IR has no "
                      "requantize node); remove it")  # fmt: skip


def _lif(quantized: bool) -> Callable[..., Value]:
    def fn(lw: Lowering, m: Any, args: tuple, kw: dict, where: str) -> Value:
        (x,) = args
        lw.name(x)
        if (x.quant is not None) != quantized:
            raise ExportError(f"{where}: a {'float' if x.quant is None else 'quantized'} "
                              "current feeds it; prepare() the model (LIF -> QuantLIF)")  # fmt: skip
        G = _G()
        p = dict(v_th=np.float32(m.threshold), v_reset=np.float32(m.v_reset),
                 v_leak=np.float32(m.v_reset), reset=m.reset, v_q=x.quant)  # fmt: skip
        node = G.IF(**p) if m.beta >= 1.0 else G.LIF(tau_mem=np.float32(_tau(m.beta, lw.dt)), **p)
        return Value(lw.add(node, x), None, spikes=True)

    return fn


def _same(node: Callable[[Any, str], Any]) -> Callable[..., Value]:
    """A kind whose output keeps its input's quantization (pools, Flatten, Delay)."""

    def fn(lw: Lowering, m: Any, args: tuple, kw: dict, where: str) -> Value:
        x = args[0]
        lw.name(x)
        return Value(lw.add(node(m, where), x), x.quant, x.spikes)

    return fn


def _pool(kind: str) -> Callable[[Any, str], Any]:
    def node(m: Any, where: str) -> Any:
        pad = _pair(getattr(m, "padding", 0))
        if getattr(m, "ceil_mode", False) or _pair(getattr(m, "dilation", 1)) != (1, 1):
            raise ExportError(f"{where}: ceil_mode and dilation do not lower")
        if kind == "AvgPool2d" and pad != (0, 0) and getattr(m, "count_include_pad", False):
            raise ExportError(f"{where}: padded average pooling lowers with "
                              "count_include_pad=False (the count excludes padding)")  # fmt: skip
        stride = m.stride if m.stride is not None else m.kernel_size
        return getattr(_G(), kind)(kernel=_pair(m.kernel_size), stride=_pair(stride), padding=pad)

    return node


def _identity(lw: Lowering, m: Any, args: tuple, kw: dict, where: str) -> Value:
    return args[0]


def _flatten(lw: Lowering, m: Any, args: tuple, kw: dict, where: str) -> Value:
    """``nn.Flatten`` / ``torch.flatten`` / ``x.flatten``: every feature axis into one."""
    if hasattr(m, "start_dim"):
        args = (args[0], m.start_dim, m.end_dim)
    start = kw.get("start_dim", args[1] if len(args) > 1 else 0)
    end = kw.get("end_dim", args[2] if len(args) > 2 else -1)
    want = 2 if lw.time else 1
    if start != want or end != -1:
        raise ExportError(f"{where}: only flatten(x, {want}) lowers (every feature axis into "
                          "one)")  # fmt: skip
    return _same(lambda m, w: _G().Flatten())(lw, m, args[:1], {}, where)


def _add(lw: Lowering, m: Any, args: tuple, kw: dict, where: str) -> Value:
    if len(args) != 2 or not all(isinstance(a, Value) for a in args) or kw:
        raise ExportError(f"{where}: only the sum of two tensors lowers (no constants, alpha)")
    a, b = args
    q = act_spec(m.quant.act_quant) if hasattr(m, "quant") else None
    lw.name(a), lw.name(b)
    if q is None and (a.quant is not None or b.quant is not None):
        raise ExportError(f"{where}: a quantized sum needs an output quantizer: use "
                          "neuroplast.quantize.qat.QuantAdd, or prepare() the float model")  # fmt: skip
    return Value(lw.add(_G().Add(out_q=q), a, b), q)


def _delay_module(lw: Lowering, m: Any, args: tuple, kw: dict, where: str) -> Value:
    return _same(lambda m, w: _G().Delay(delay=m.delay.detach().cpu().numpy().astype(np.int32)))(
        lw, m, args, kw, where
    )


def _dcls(lw: Lowering, m: Any, args: tuple, kw: dict, where: str) -> Value:
    (x,) = args
    lw.name(x)
    node = delay_linear(delay_layer(m), None if x.quant is None else x.quant.scale)
    return Value(lw.add(node, x), node.out_q)


def _getattr(lw: Lowering, m: Any, args: tuple, kw: dict, where: str) -> Value:
    if args[1] != "value":
        raise ExportError(f"{where}: attribute {args[1]!r} of a tensor does not lower")
    return args[0]  # IntQuantTensor.value: the same tensor


def _G() -> Any:
    from neuroplast import graph

    return graph


@functools.lru_cache(maxsize=1)
def _builtins() -> None:
    """Register the torch / Brevitas / neuroplast layers (once, on first use)."""
    import operator

    import brevitas.nn as qnn
    import torch
    from torch import nn

    from neuroplast.quantize.qat import _torch_classes

    G, c = _G(), _torch_classes()
    table: list[tuple[tuple[Any, ...], Callable[..., Value], bool]] = [
        ((nn.Linear,), _weighted(G.Linear), False),
        ((nn.Conv1d,), _weighted(G.Conv1d), False),
        ((nn.Conv2d,), _weighted(G.Conv2d), False),
        ((qnn.QuantLinear,), _qweighted(G.Linear), False),
        ((qnn.QuantConv1d,), _qweighted(G.Conv1d), False),
        ((qnn.QuantConv2d,), _qweighted(G.Conv2d), False),
        ((nn.ReLU, torch.relu, torch.nn.functional.relu, "method:relu"), _relu, False),
        ((qnn.QuantReLU,), _quant_relu, False),
        ((qnn.QuantIdentity,), _quant_identity, False),
        ((c["LIF"],), _lif(False), True),
        ((c["QuantLIF"],), _lif(True), True),
        ((c["Delay"],), _delay_module, True),
        ((nn.MaxPool2d,), _same(_pool("MaxPool2d")), False),
        ((nn.AvgPool2d, c["QuantAvgPool2d"]), _same(_pool("AvgPool2d")), False),
        ((nn.Flatten, torch.flatten, "method:flatten"), _flatten, False),
        ((nn.Dropout, nn.Identity), _identity, False),
        ((c["QuantAdd"], operator.add, operator.iadd, torch.add, "method:add"), _add, False),
        ((getattr,), _getattr, False),
    ]
    for keys, fn, time in table:
        for k in keys:
            LOWERINGS.setdefault(k, Lowerer(fn, time))
    PROTOCOLS.append((("weight_and_scale", "int_delays", "bits"), Lowerer(_dcls, True)))


def lowerer(key: Any) -> Lowerer | None:
    """The :class:`Lowerer` of a module (by class, through its MRO, then the duck-typed
    :data:`PROTOCOLS`), a function, or ``"method:NAME"``; ``None`` if there is none."""
    _builtins()
    if not isinstance(key, (type, str)) and hasattr(key, "forward"):
        for cls in type(key).__mro__:
            if cls in LOWERINGS:
                return LOWERINGS[cls]
        for attrs, lo in PROTOCOLS:
            if all(hasattr(key, a) for a in attrs):
                return lo
        return None
    try:
        return LOWERINGS.get(key)
    except TypeError:  # an unhashable call target
        return None


def capture(model: Any) -> Any:
    """``torch.fx`` graph of ``model``: every module with a lowering (and every torch.nn /
    Brevitas module) is a leaf; user modules are traced through.

    Raises:
        ExportError: the model cannot be traced, naming the innermost module.
    """
    import torch
    from torch import fx

    class Tracer(fx.Tracer):
        def __init__(self) -> None:
            super().__init__()
            self.stack: list[str] = []

        def is_leaf_module(self, m: Any, qualname: str) -> bool:
            top = type(m).__module__.split(".")[0]
            return (
                lowerer(m) is not None or top == "brevitas" or super().is_leaf_module(m, qualname)
            )

        def call_module(self, m: Any, forward: Any, args: Any, kwargs: Any) -> Any:
            self.stack.append(self.path_of_module(m))
            try:
                return super().call_module(m, forward, args, kwargs)
            finally:
                self.stack.pop()

    root = torch.nn.Sequential(model) if lowerer(model) is not None else model
    tracer = Tracer()
    try:
        graph = tracer.trace(root)
    except Exception as e:  # noqa: BLE001 - any tracing failure is reported in one line
        where = f"module {tracer.stack[-1]!r}" if tracer.stack else type(model).__name__
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ExportError(f"torch.fx cannot trace {where}: {first}; make its forward free of "
                          "data-dependent control flow") from None  # fmt: skip
    return fx.GraphModule(tracer.root, graph)


def describe(gm: Any, n: Any) -> str:
    """``module 'path' (Type)`` or ``function NAME at 'node'`` for an fx node."""
    if n.op == "call_module":
        return f"module {n.target!r} ({type(gm.get_submodule(n.target)).__name__})"
    what = n.target if n.op == "call_method" else getattr(n.target, "__name__", str(n.target))
    return f"{'method' if n.op == 'call_method' else 'function'} {what} at {n.name!r}"


def target_of(gm: Any, n: Any) -> tuple[Any, Any, str]:
    """``(object, table key, name for FIXES)`` of an fx call node."""
    if n.op == "call_module":
        m = gm.get_submodule(n.target)
        return m, m, type(m).__name__
    if n.op == "call_method":
        return n.target, f"method:{n.target}", n.target
    return n.target, n.target, getattr(n.target, "__name__", str(n.target))


def lower(model: Any, example_input: Any, dt: float = 1e-3, name: str = "") -> Any:
    """Lower a torch model to a :class:`~neuroplast.graph.Graph` through ``torch.fx``.

    Any ``nn.Module`` whose traced graph uses the kinds in :data:`LOWERINGS` lowers:
    residual ``+`` and branches, user modules, spiking nets with delays. A Brevitas QAT
    model (:func:`neuroplast.quantize.prepare`) gives a graph with quantization metadata
    read from its learned quantizers; a float model gives a float graph.

    Args:
        model: the torch model (float, or QAT: trained or calibrated).
        example_input: a tensor shaped like the model input: ``[B, ...]`` for
            feed-forward nets, ``[T, B, ...]`` for spiking nets.
        dt: the graph time step in seconds (sets ``tau_mem = dt / (1 - beta)`` of LIF).

    Returns:
        a validated :class:`neuroplast.graph.Graph`.

    Raises:
        ExportError: one line naming the module (path and type) that cannot be lowered
            and what to do instead.
    """
    import torch
    from torch import fx

    G = _G()
    was_training = model.training
    model.eval()
    try:
        gm = capture(model)
        nodes = [n for n in gm.graph.nodes if n.op.startswith("call")]
        found = {n: target_of(gm, n) for n in nodes}
        low = {n: lowerer(found[n][1]) for n in nodes}
        for n in nodes:
            if low[n] is None:
                raise _unsupported(f"lower: {describe(gm, n)}", found[n][2])
        time = any(lo.time for lo in low.values() if lo is not None)
        x = torch.as_tensor(example_input)
        in_shape = tuple(x.shape[2:] if time else x.shape[1:])
        lw = Lowering(dt, time)
        env: dict[Any, Any] = {}
        outs: list[Value] = []
        for n in gm.graph.nodes:
            if n.op == "placeholder":
                if any(isinstance(v, Value) for v in env.values()):
                    raise ExportError(f"lower: the model takes several inputs ({n.name!r}); "
                                      "one input tensor lowers")  # fmt: skip
                env[n] = Value(None, emit=lambda q: lw.add(G.Input(shape=in_shape, quant=q)))
            elif n.op == "output":
                res = fx.node.map_arg(n.args[0], lambda a: env[a])
                outs = list(res) if isinstance(res, (tuple, list)) else [res]
            elif n.op == "get_attr":
                raise ExportError(f"lower: the model reads tensor attribute {n.target!r} in its "
                                  "forward; put it in a Linear/Conv layer")  # fmt: skip
            else:
                obj, _, _ = found[n]
                args = fx.node.map_arg(n.args, lambda a: env[a])
                kwargs = fx.node.map_arg(n.kwargs, lambda a: env[a])
                env[n] = low[n].fn(lw, obj, tuple(args), dict(kwargs), f"lower: {describe(gm, n)}")
        if not all(isinstance(v, Value) for v in outs) or not outs:
            raise ExportError("lower: the model must return one tensor (or a tuple of tensors)")
        out_names = tuple(lw.name(v) for v in outs)
    finally:
        model.train(was_training)
    try:
        return G.Graph(lw.nodes, lw.edges, dt=dt, outputs=out_names)
    except Exception as e:  # GraphError from validation: report as an export failure
        raise ExportError(f"lowered graph is invalid: {e}") from e
