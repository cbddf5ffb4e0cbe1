"""Quantization-aware training (QAT) recipes on Brevitas.

:func:`prepare` turns a float ``torch.nn.Sequential`` (MLP, CNN, 1-D conv net or a
spiking net built from :class:`LIF`) into a Brevitas QAT model whose integer
semantics are exactly the ones the neuroplast integer runtime and the TFLite export
use (see ``docs/CONTRIBUTING-contract.md``):

* the input is quantized by a signed per-tensor activation quantizer (``act_bits``),
  or, for spiking nets, by a fixed scale-1 quantizer (spikes are 0/1 integers);
* ``Linear``/``Conv1d``/``Conv2d`` get symmetric narrow-range weights
  (``weight_bits``, per output channel or per tensor, zero point 0) and an int32 bias
  with scale ``s_in * s_w``;
* a layer followed by ``ReLU`` is requantized by an unsigned ``act_bits`` quantizer
  (the ReLU is the clamp at 0); otherwise by a signed one; a layer feeding a
  :class:`LIF` outputs a signed 16-bit *current* (zero point 0);
* ``MaxPool``/``Flatten`` pass the quantized grid through unchanged;
  ``AvgPool2d`` re-rounds the mean onto its input grid (half away from zero on the
  int8 codes, as LiteRT's int8 ``AVERAGE_POOL_2D``) so QAT sees the integer behaviour;
* :class:`LIF` becomes :class:`QuantLIF`, which runs the integer LIF recurrence
  ``v = v_reset + round((v - v_reset) * beta_q / 2^15) + i`` in units of the input
  current's scale, with a fast-sigmoid surrogate gradient for the spike.

torch and brevitas are imported lazily inside the functions/classes that need them so
that ``import neuroplast.quantize.qat`` stays cheap; the module-level classes are
created on first use through :func:`_torch_classes`.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from typing import Any

from neuroplast.errors import NeuroplastError

__all__ = [
    "QATConfig",
    "CURRENT_BITS",
    "prepare",
    "LIF",  # noqa: F822 - provided lazily by __getattr__ (torch classes)
    "QuantLIF",  # noqa: F822
    "QuantAvgPool2d",  # noqa: F822
    "QuantAdd",  # noqa: F822
    "Delay",  # noqa: F822
    "DelayLinear",  # noqa: F822
    "SpikeQuant",
    "lif_module_classes",
]

CURRENT_BITS = 16  # width of the current feeding a LIF (contract: 16 or 32, zero point 0)


@dataclass(frozen=True)
class QATConfig:
    """Bit widths of one QAT recipe.

    Attributes:
        weight_bits: 2, 4 or 8 (symmetric, narrow range, zero point 0).
        act_bits: 4 or 8 (activations, per tensor).
        per_channel: per-output-channel weight scales (else one per tensor).
    """

    weight_bits: int = 8
    act_bits: int = 8
    per_channel: bool = True

    def __post_init__(self) -> None:
        if self.weight_bits not in (2, 4, 8):
            raise NeuroplastError(f"weight_bits must be 2, 4 or 8, got {self.weight_bits!r}")
        if self.act_bits not in (4, 8):
            raise NeuroplastError(f"act_bits must be 4 or 8, got {self.act_bits!r}")
        if not isinstance(self.per_channel, bool):
            raise NeuroplastError("per_channel must be a bool")


@functools.lru_cache(maxsize=1)
def _torch_classes() -> dict[str, type]:
    """Build the torch module classes on first use (keeps torch out of import time)."""
    import numpy as np
    import torch
    from brevitas.quant_tensor import IntQuantTensor

    def _ste_round_half_up(x: torch.Tensor) -> torch.Tensor:
        # floor(x + 0.5) forward, identity backward
        return x + (torch.floor(x + 0.5) - x).detach()

    def _ste_round_even(x: torch.Tensor) -> torch.Tensor:
        return x + (torch.round(x) - x).detach()

    def _ste_round_half_away(x: torch.Tensor) -> torch.Tensor:
        r = torch.sign(x) * torch.floor(torch.abs(x) + 0.5)
        return x + (r - x).detach()

    class _SpikeFn(torch.autograd.Function):
        """Heaviside forward; fast-sigmoid surrogate ``1 / (1 + k|u|)^2`` backward."""

        @staticmethod
        def forward(ctx: Any, u: torch.Tensor, k: float) -> torch.Tensor:
            ctx.save_for_backward(u)
            ctx.k = k
            return (u > 0).to(u.dtype)

        @staticmethod
        def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
            (u,) = ctx.saved_tensors
            return grad / (1.0 + ctx.k * u.abs()) ** 2, None

    class LIF(torch.nn.Module):
        """Float leaky integrate-and-fire layer over a ``[T, B, ...]`` current sequence.

        ``v[t] = v_reset + beta * (v[t-1] - v_reset) + i[t]``; spike ``s = v > v_th``;
        reset ``"subtract"`` (``v -= v_th``) or ``"zero"`` (``v = v_reset``).
        Potentials are in the units of the input current (dimensionless, dt = 1 step).
        """

        def __init__(
            self,
            beta: float = 0.9,
            threshold: float = 1.0,
            reset: str = "subtract",
            v_reset: float = 0.0,
            surrogate_slope: float = 5.0,
        ) -> None:
            super().__init__()
            if not 0.0 <= beta <= 1.0:
                raise NeuroplastError(f"LIF beta must be in [0, 1], got {beta}")
            if threshold <= 0:
                raise NeuroplastError(f"LIF threshold must be > 0, got {threshold}")
            if reset not in ("subtract", "zero"):
                raise NeuroplastError(f"LIF reset must be 'subtract' or 'zero', got {reset!r}")
            self.beta, self.threshold, self.reset = float(beta), float(threshold), reset
            self.v_reset, self.slope = float(v_reset), float(surrogate_slope)

        def forward(self, i: torch.Tensor) -> torch.Tensor:
            i = i.value if isinstance(i, IntQuantTensor) else i
            v = torch.zeros_like(i[0])  # the runtime's initial state: v = 0
            out = []
            for t in range(i.shape[0]):
                v = self.v_reset + self.beta * (v - self.v_reset) + i[t]
                s = _SpikeFn.apply((v - self.threshold) / self.threshold, self.slope)
                out.append(s)
                v = self._reset(v, s.detach(), self.threshold)
            return torch.stack(out)

        def _reset(self, v: torch.Tensor, s: torch.Tensor, th: Any) -> torch.Tensor:
            if self.reset == "subtract":
                return v - s * th
            return torch.where(s > 0, torch.full_like(v, self.v_reset), v)

    class QuantLIF(LIF):
        """Integer-faithful LIF: runs the contract's fixed-point recurrence in units of the
        input current's scale ``s_i`` (read from the incoming quant tensor)::

            beta_q = round(beta * 2^15);  v_th_q = round(v_th / s_i)
            v = v_reset_q + floor(((v - v_reset_q) * beta_q + 2^14) / 2^15) + i_q
            spike = v > v_th_q

        Rounding uses straight-through estimators so gradients flow to the weights.
        Output: spikes ``[T, B, ...]`` as float 0/1.
        """

        def forward(self, i: Any) -> torch.Tensor:
            if not isinstance(i, IntQuantTensor):
                # quantization disabled (Brevitas calibration mode): the float LIF
                return super().forward(i)
            s = i.scale
            iq = _ste_round_half_up(i.value / s)
            beta_q = float(np.round(np.float32(self.beta) * 2**15))
            # round half to even, as the runtime's np.round of v_th / s
            th_q = torch.clamp(_ste_round_even(self.threshold / s), min=1.0)
            vr_q = _ste_round_even(self.v_reset / s)
            v = torch.zeros_like(iq[0])  # the runtime's initial state: v = 0
            out = []
            for t in range(iq.shape[0]):
                v = vr_q + _ste_round_half_up((v - vr_q) * beta_q / 2**15) + iq[t]
                spk = _SpikeFn.apply((v - th_q) / th_q, self.slope)
                out.append(spk)
                if self.reset == "subtract":
                    v = v - spk.detach() * th_q
                else:
                    v = torch.where(spk.detach() > 0, vr_q.expand_as(v), v)
            return torch.stack(out)

    class QuantAvgPool2d(torch.nn.Module):
        """Average pooling that stays on its input's integer grid:
        ``c_out = round_half_away(mean(c_in))`` on the int8 codes ``c`` (an unsigned
        tensor's codes shifted by ``-2^(bits-1)``), with the input's scale and zero point:
        what LiteRT's int8 ``AVERAGE_POOL_2D`` and the integer runtime compute."""

        def __init__(self, kernel_size: Any, stride: Any = None) -> None:
            super().__init__()
            self.kernel_size = kernel_size
            self.stride = stride if stride is not None else kernel_size

        def forward(self, x: Any) -> Any:
            if not isinstance(x, IntQuantTensor):
                # quantization disabled (Brevitas calibration mode): plain float pooling
                return torch.nn.functional.avg_pool2d(x, self.kernel_size, self.stride)
            # integer codes first (exact), so ties of the mean are exact ties; the int8
            # code is c = q + zp - off (off = 2^(bits-1) for an unsigned tensor)
            off = 0 if x.signed else 2.0 ** (float(x.bit_width) - 1)
            shift = x.zero_point - off
            q = _ste_round_even(x.value / x.scale) + shift
            m = torch.nn.functional.avg_pool2d(q, self.kernel_size, self.stride)
            v = (_ste_round_half_away(m) - shift) * x.scale
            return IntQuantTensor(v, x.scale, x.zero_point, x.bit_width, x.signed, x.training)

    class QuantAdd(torch.nn.Module):
        """A residual sum ``y = q(a + b)``, requantized by its own signed per-tensor
        quantizer ``quant`` (the Graph IR's ``Add.out_q``): ``prepare`` turns ``+`` into it."""

        def __init__(self, bits: int = 8) -> None:
            super().__init__()
            self.quant = _act_quant(bits, signed=True)

        def forward(self, a: Any, b: Any) -> Any:
            a = a.value if isinstance(a, IntQuantTensor) else a
            b = b.value if isinstance(b, IntQuantTensor) else b
            return self.quant(a + b)

    class Delay(torch.nn.Module):
        """Axonal delay over a ``[T, B, *shape]`` sequence: ``y[t] = x[t - d]`` (0 before
        the first step), ``d`` integer steps, one for all neurons or one per neuron
        (``shape``). A quantized input keeps its quantization (a pure shift in time)."""

        def __init__(self, delay: Any) -> None:
            super().__init__()
            d = torch.as_tensor(np.asarray(delay), dtype=torch.long)
            if d.numel() == 0 or bool((d < 0).any()):
                raise NeuroplastError("Delay: delays must be integer steps >= 0")
            self.register_buffer("delay", d.reshape(-1))

        def forward(self, x: Any) -> Any:
            v = x.value if isinstance(x, IntQuantTensor) else x
            t, b, n = v.shape[0], v.shape[1], int(np.prod(v.shape[2:]))
            if self.delay.numel() not in (1, n):
                raise NeuroplastError(f"Delay has {self.delay.numel()} delays for {n} neurons")
            dmax = int(self.delay.max())
            flat = torch.cat([v.new_zeros((dmax, b, n)), v.reshape(t, b, n)])
            idx = torch.arange(t)[:, None] + dmax - self.delay.expand(n)[None]  # [T, N]
            y = torch.gather(flat, 0, idx[:, None, :].expand(t, b, n)).reshape(v.shape)
            if isinstance(x, IntQuantTensor):
                return IntQuantTensor(y, x.scale, x.zero_point, x.bit_width, x.signed, x.training)
            return y

    class DelayLinear(torch.nn.Module):
        """Fully connected synapses with one integer delay each, over ``[T, B, n_in]``:
        ``y_i[t] = sum_j W_ij x_j[t - D_ij]`` (no bias; ``D`` in steps, shape
        ``(n_out, n_in)`` or broadcastable). ``bits`` 0: float weights; 2/4/8: symmetric
        narrow per-tensor weights (Brevitas), the output an exact current at scale
        ``s_in * s_w`` (32 bits), the DCLS deployment rule (``weight_and_scale``,
        ``int_delays``, ``bits``: the delay-layer protocol the lowering reads)."""

        def __init__(self, n_in: int, n_out: int, delay: Any, bits: int = 0) -> None:
            super().__init__()
            import brevitas.nn as qnn
            from brevitas.quant import Int8WeightPerTensorFloat

            if bits not in (0, 2, 4, 8):
                raise NeuroplastError(f"DelayLinear bits must be 0, 2, 4 or 8, got {bits!r}")
            d = torch.as_tensor(np.asarray(delay), dtype=torch.long)
            if bool((d < 0).any()):
                raise NeuroplastError("DelayLinear: delays must be integer steps >= 0")
            self.bits = int(bits)
            self.fc = (
                qnn.QuantLinear(n_in, n_out, bias=False, weight_quant=Int8WeightPerTensorFloat,
                                weight_bit_width=bits)
                if bits else torch.nn.Linear(n_in, n_out, bias=False)
            )  # fmt: skip
            self.register_buffer("delay", d.expand(n_out, n_in).clone())

        def weight_and_scale(self) -> tuple[torch.Tensor, torch.Tensor]:
            """Fake-quantized weight ``(n_out, n_in)`` and its per-tensor scale."""
            qw = self.fc.quant_weight() if self.bits else None
            if isinstance(qw, IntQuantTensor):  # (a plain tensor in calibration mode)
                return qw.value, qw.scale.reshape(())
            return self.fc.weight, torch.ones(())

        def int_delays(self) -> torch.Tensor:
            return self.delay

        def quantized(self, bits: int) -> Any:
            """A copy with ``bits``-bit weights (the float weights copied)."""
            q = DelayLinear(self.fc.in_features, self.fc.out_features, self.delay, bits)
            with torch.no_grad():
                q.fc.weight.copy_(self.fc.weight)
            return q

        def forward(self, x: Any) -> Any:
            v = x.value if isinstance(x, IntQuantTensor) else x
            w, s = self.weight_and_scale()
            y = v.new_zeros(v.shape[:-1] + (w.shape[0],))
            for d in torch.unique(self.delay).tolist():
                shifted = torch.cat([v.new_zeros((d,) + v.shape[1:]), v[: v.shape[0] - d]])
                y = y + shifted @ (w * (self.delay == d)).T
            if isinstance(x, IntQuantTensor) and self.bits:
                zero, b32 = torch.zeros(()), torch.tensor(32.0)
                return IntQuantTensor(y, x.scale * s, zero, b32, True, x.training)
            return y

    class QATGraph(torch.nn.Module):
        """A prepared ``torch.fx`` graph module (any architecture) that returns a plain
        tensor (the dequantized output)."""

        def __init__(self, graph_module: Any) -> None:
            super().__init__()
            self.graph_module = graph_module

        def forward(self, x: Any) -> Any:
            y = self.graph_module(x)
            return y.value if isinstance(y, IntQuantTensor) else y

    class QATSequential(torch.nn.Sequential):
        """``Sequential`` that returns a plain tensor (the dequantized output)."""

        def forward(self, x: Any) -> Any:
            y = super().forward(x)
            return y.value if isinstance(y, IntQuantTensor) else y

    return {
        "QATSequential": QATSequential,
        "LIF": LIF,
        "QuantLIF": QuantLIF,
        "QuantAvgPool2d": QuantAvgPool2d,
        "QuantAdd": QuantAdd,
        "Delay": Delay,
        "DelayLinear": DelayLinear,
        "QATGraph": QATGraph,
    }


def lif_module_classes() -> tuple[type, type]:
    """``(LIF, QuantLIF)`` torch module classes."""
    c = _torch_classes()
    return c["LIF"], c["QuantLIF"]


def __getattr__(name: str) -> Any:
    # lazily expose the torch classes as module attributes (LIF, QuantLIF, QuantAvgPool2d)
    if name in ("LIF", "QuantLIF", "QuantAvgPool2d", "QuantAdd", "Delay", "DelayLinear"):
        return _torch_classes()[name]
    raise AttributeError(name)


def SpikeQuant() -> Any:  # noqa: N802 - factory that reads like a layer class
    """A fixed-scale (1.0) signed 8-bit quantizer for 0/1 spike inputs."""
    import brevitas.nn as qnn
    from brevitas.core.scaling import ScalingImplType

    return qnn.QuantIdentity(
        bit_width=8,
        scaling_impl_type=ScalingImplType.CONST,
        scaling_init=128.0,  # CONST scaling sets the max: scale = 128 / 2^7 = 1
        return_quant_tensor=True,
    )


def _act_quant(bits: int, signed: bool) -> Any:
    import brevitas.nn as qnn
    from brevitas.quant import Int8ActPerTensorFloat, Uint8ActPerTensorFloat

    if signed:
        return qnn.QuantIdentity(
            act_quant=Int8ActPerTensorFloat, bit_width=bits, return_quant_tensor=True
        )
    return qnn.QuantReLU(act_quant=Uint8ActPerTensorFloat, bit_width=bits, return_quant_tensor=True)


def _weight_layer(m: Any, cfg: QATConfig, output_quant: Any, out_bits: int) -> Any:
    import brevitas.nn as qnn
    import torch
    from brevitas.quant import (
        Int8ActPerTensorFloat,
        Int8WeightPerChannelFloat,
        Int8WeightPerTensorFloat,
        Int32Bias,
    )

    wq = Int8WeightPerChannelFloat if cfg.per_channel else Int8WeightPerTensorFloat
    common: dict[str, Any] = dict(
        bias=m.bias is not None,
        weight_quant=wq,
        weight_bit_width=cfg.weight_bits,
        bias_quant=Int32Bias if m.bias is not None else None,
    )
    if output_quant:
        common.update(
            output_quant=Int8ActPerTensorFloat, output_bit_width=out_bits, return_quant_tensor=True
        )
    else:
        common.update(return_quant_tensor=False)
    if isinstance(m, torch.nn.Linear):
        q = qnn.QuantLinear(m.in_features, m.out_features, **common)
    elif isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d)):
        if m.padding_mode != "zeros" or isinstance(m.padding, str):
            raise NeuroplastError(
                f"{type(m).__name__}: only integer zero padding is supported, got "
                f"padding={m.padding!r}, padding_mode={m.padding_mode!r}"
            )
        cls = qnn.QuantConv1d if isinstance(m, torch.nn.Conv1d) else qnn.QuantConv2d
        q = cls(
            m.in_channels,
            m.out_channels,
            m.kernel_size,
            stride=m.stride,
            padding=m.padding,
            dilation=m.dilation,
            groups=m.groups,
            **common,
        )
    else:  # pragma: no cover - guarded by caller
        raise NeuroplastError(f"not a weight layer: {type(m).__name__}")
    with torch.no_grad():
        q.weight.copy_(m.weight)
        if m.bias is not None:
            q.bias.copy_(m.bias)
    return q


class _Prep:
    """The ``torch.fx`` graph being prepared and the edits a swap handler makes."""

    def __init__(self, gm: Any, cfg: QATConfig) -> None:
        import itertools

        self.gm, self.g, self.cfg = gm, gm.graph, cfg
        self.ids = itertools.count()
        self.quant_relu: set[Any] = set()  # ReLU nodes that get a weight layer's quantizer

    def mod(self, n: Any) -> Any:
        return self.gm.get_submodule(n.target) if n.op == "call_module" else None

    def key(self, n: Any) -> Any:
        """The :func:`_prepare_table` key: a module's exact class (a quantized subclass is
        kept as it is), a function, or ``"method:NAME"``."""
        if n.op == "call_module":
            return type(self.mod(n))
        return f"method:{n.target}" if n.op == "call_method" else n.target

    def call(self, m: Any, prefix: str, args: tuple, at: Any) -> Any:
        name = f"{prefix}_{next(self.ids)}"
        self.gm.add_submodule(name, m)
        with self.g.inserting_after(at):
            return self.g.call_module(name, args)

    def swap(self, n: Any, m: Any, prefix: str = "", n_args: int = 1) -> None:
        """Node ``n`` runs module ``m`` instead (a module is replaced in place)."""
        if n.op == "call_module":
            self.gm.add_submodule(n.target, m)
            return
        new = self.call(m, prefix, tuple(n.args[:n_args]), n)
        n.replace_all_uses_with(new)
        self.g.erase_node(n)

    def after(self, n: Any, m: Any, prefix: str) -> None:
        """Insert module ``m`` on every use of ``n``'s output."""
        q = self.call(m, prefix, (n,), n)
        n.replace_all_uses_with(q, delete_user_cb=lambda u: u is not q)


def _p_weight(p: _Prep, n: Any, m: Any) -> None:
    users = list(n.users)
    table = _prepare_table()
    if len(users) == 1 and table.get(p.key(users[0])) is _p_relu:
        p.quant_relu.add(users[0])  # the ReLU's unsigned quantizer requantizes the layer
        p.swap(n, _weight_layer(m, p.cfg, output_quant=False, out_bits=p.cfg.act_bits))
        return
    lif = any(isinstance(p.mod(u), _torch_classes()["LIF"]) for u in users)
    bits = CURRENT_BITS if lif else p.cfg.act_bits
    p.swap(n, _weight_layer(m, p.cfg, output_quant=True, out_bits=bits))


def _p_relu(p: _Prep, n: Any, m: Any) -> None:
    import torch

    quant = n in p.quant_relu
    p.swap(n, _act_quant(p.cfg.act_bits, signed=False) if quant else torch.nn.ReLU(), "relu")


def _p_lif(p: _Prep, n: Any, m: Any) -> None:
    p.swap(n, _torch_classes()["QuantLIF"](m.beta, m.threshold, m.reset, m.v_reset, m.slope))
    if any(u.op != "output" for u in n.users):
        p.after(n, SpikeQuant(), "spike_quant")


def _p_delay_linear(p: _Prep, n: Any, m: Any) -> None:
    if not m.bits:
        p.swap(n, m.quantized(p.cfg.weight_bits))


def _p_avgpool(p: _Prep, n: Any, m: Any) -> None:
    from neuroplast.quantize.lower import describe

    if m.padding not in (0, (0, 0)) or m.ceil_mode:
        raise NeuroplastError(f"prepare: {describe(p.gm, n)}: only plain average pooling "
                              "(no padding, no ceil_mode) is quantized")  # fmt: skip
    p.swap(n, _torch_classes()["QuantAvgPool2d"](m.kernel_size, m.stride))


def _p_add(p: _Prep, n: Any, m: Any) -> None:
    p.swap(n, _torch_classes()["QuantAdd"](p.cfg.act_bits), "add", n_args=2)


def _p_drop(p: _Prep, n: Any, m: Any) -> None:
    n.replace_all_uses_with(n.args[0])
    p.g.erase_node(n)


@functools.lru_cache(maxsize=1)
def _prepare_table() -> dict[Any, Any]:
    """Float kind -> ``fn(prep, node, module)`` that swaps in its QAT form (one handler per
    kind, keyed as :meth:`_Prep.key`); kinds not here are kept if they lower as they are."""
    import operator

    import torch
    from torch import nn

    c = _torch_classes()
    groups: list[tuple[tuple[Any, ...], Any]] = [
        ((nn.Linear, nn.Conv1d, nn.Conv2d), _p_weight),
        ((nn.ReLU, torch.relu, nn.functional.relu, "method:relu"), _p_relu),
        ((c["LIF"],), _p_lif),
        ((c["DelayLinear"],), _p_delay_linear),
        ((nn.AvgPool2d,), _p_avgpool),
        ((operator.add, operator.iadd, torch.add, "method:add"), _p_add),
        ((nn.Dropout, nn.Identity), _p_drop),
    ]
    return {k: fn for keys, fn in groups for k in keys}


def prepare(
    model: Any,
    weight_bits: int = 8,
    act_bits: int = 8,
    per_channel: bool = True,
    spike_input: bool | None = None,
) -> Any:
    """Return a Brevitas QAT copy of a float ``torch.nn.Module``.

    The model is captured with ``torch.fx`` (:func:`neuroplast.quantize.lower.capture`), so
    any architecture built from the supported layers works: ``Linear``, ``Conv1d``,
    ``Conv2d`` (incl. depthwise ``groups``), ``ReLU`` (module or function), ``MaxPool2d``,
    ``AvgPool2d``, ``Flatten``, residual ``+``, ``Dropout``/``Identity`` (dropped),
    :class:`LIF`, :class:`Delay` and :class:`DelayLinear`; user modules are traced through, and layers that are
    already quantized (Brevitas layers, DCLS delay layers) are kept. The float weights are
    copied, so a trained float model can be fine-tuned with QAT. Rules (the contract in
    the module docstring): a weight layer followed by ``ReLU`` gets the unsigned quantizer
    of a ``QuantReLU``; one feeding a :class:`LIF` a 16-bit current; ``+`` becomes
    :class:`QuantAdd`; a ``ReLU`` of an already quantized value clamps on its grid.

    A chain of layers gives a ``Sequential`` (the layout recipe checkpoints store); any
    other graph a ``QATGraph`` wrapping the prepared ``torch.fx.GraphModule``.

    Args:
        model: the float model.
        weight_bits: 2, 4 or 8.
        act_bits: 4 or 8.
        per_channel: per-output-channel weight scales.
        spike_input: the input is 0/1 spikes (fixed scale 1); default: the model
            contains a :class:`LIF`.

    Raises:
        NeuroplastError: for an unsupported layer, one line naming its module path, its
            type and what to use instead.
    """
    from neuroplast.quantize.lower import FIXES, capture, describe, lowerer, target_of

    cfg = QATConfig(weight_bits, act_bits, per_channel)
    cls = _torch_classes()
    p = _Prep(capture(copy.deepcopy(model)), cfg)
    gm, g = p.gm, p.g
    if spike_input is None:
        spike_input = any(isinstance(m, cls["LIF"]) for m in gm.modules())
    table = _prepare_table()
    for n in list(g.nodes):
        if n.op == "placeholder":
            p.after(n, SpikeQuant() if spike_input else _act_quant(act_bits, True), "input_quant")
        elif n.op.startswith("call"):
            fn = table.get(p.key(n))
            if fn is not None:
                fn(p, n, p.mod(n))
            elif lowerer(target_of(gm, n)[1]) is None:  # neither prepared nor lowerable
                fix = FIXES.get(target_of(gm, n)[2], "replace it with a supported layer")
                raise NeuroplastError(f"prepare: {describe(gm, n)} is not supported; {fix}")
    g.lint()
    gm.recompile()
    calls = [n for n in g.nodes if n.op not in ("placeholder", "output")]
    chain = all(
        b.op == "call_module" and b.all_input_nodes == [a] and len(a.users) == 1
        for a, b in zip([next(iter(g.nodes))] + calls, calls)
    )
    if chain:
        qat = cls["QATSequential"](*[gm.get_submodule(n.target) for n in calls])
    else:
        qat = cls["QATGraph"](gm)
    qat.qat_config = cfg
    return qat
