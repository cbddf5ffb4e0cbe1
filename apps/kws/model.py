"""Delay-learning spiking network for keyword spotting (DCLS-Delays, Brevitas QAT).

Toolchain side: imports torch and brevitas, so only import this module where training
happens (``neuroplast.apps.kws`` itself never imports it).

Synapse ``j -> i`` carries a weight ``w_ij`` (a ``brevitas.nn.QuantLinear`` weight,
8 or 4 bits, symmetric, per tensor) and a learnable delay position
``p_ij in [0, D]`` (steps). During training the synapse is a temporal kernel over the
delays ``d = 0..D`` (Gaussian interpolation, Hammouamri et al., ICLR 2024)::

    k_ij[d] = w_ij * g(d) / (sum_d' g(d') + 1e-7),  g(d) = exp(-((d - p_ij) / sigma)^2 / 2)

and the current is the causal convolution ``I_i[t] = sum_j sum_d k_ij[d] x_j[t - d]``.
``sigma`` follows the paper's schedule (from ``D/2`` down to 0.5 over the first quarter
of the epochs). At evaluation the kernel is the exact integer delay
``round(p_ij)``: ``I_i[t] = sum_j w_ij x_j[t - round(p_ij)]``, which is what the
bundle's ``DelayLinear`` ring buffers compute.

Neurons run the integer LIF recurrence of the neuroplast contract in units of the
layer's weight scale ``s`` (so the QAT model and the integer runtime agree)::

    beta_q = round(beta * 2^15),  th_q = max(1, round(v_th / s)),  I_q = round(I / s)
    v = floor((v * beta_q + 2^14) / 2^15) + I_q          (STE rounding)
    spike = v > th_q;  hard reset v = 0 where spike

The readout is the same recurrence without spikes (leaky integrator); the loss is
cross-entropy of the time-summed softmax ``m = sum_t softmax(v_out[t] * s)``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from neuroplast.checks import require_int, require_real
from neuroplast.errors import NeuroplastError

#: the longest delay a synapse may learn, in steps: one clip (1 s at dt = 10 ms); the
#: delay line of every synapse is this deep, so a typo here would allocate without bound
MAX_DELAY = 100

__all__ = [
    "MAX_DELAY",
    "KwsNetConfig",
    "DelayQuantLinear",
    "KwsNet",
    "summed_softmax",
    "sigma_at_epoch",
]


@dataclass(frozen=True)
class KwsNetConfig:
    """Network shape and neuron constants (steps of ``dt`` seconds)."""

    n_in: int = 80
    hidden: tuple[int, ...] = (128, 128)
    n_classes: int = 12
    max_delay: int = 15  # D: delays 0..D steps (150 ms at dt = 10 ms)
    learn_delays: bool = True  # False: every delay fixed at 0 (the baseline)
    beta: float = 0.5  # membrane decay per step of the hidden LIF neurons
    beta_out: float = 0.5  # decay of the readout leaky integrator
    v_th: float = 1.0
    weight_bits: int = 8  # 8 or 4 (Brevitas QuantLinear); 0 = float weights
    dropout: float = 0.1
    dt: float = 0.01
    delays_in_readout: bool = True

    def __post_init__(self) -> None:
        if self.weight_bits not in (0, 4, 8):
            raise NeuroplastError(f"weight_bits must be 0, 4 or 8, got {self.weight_bits}")
        require_int(NeuroplastError, "KwsNetConfig", 0, MAX_DELAY, max_delay=self.max_delay)
        require_int(NeuroplastError, "KwsNetConfig", 1, n_in=self.n_in, n_classes=self.n_classes)
        require_real(NeuroplastError, "KwsNetConfig", 0.0, open_lo=True, v_th=self.v_th, dt=self.dt)
        if not 0.0 <= self.dropout < 1.0:  # NaN fails too
            raise NeuroplastError(f"KwsNetConfig.dropout must be in [0, 1), got {self.dropout}")
        if not (0.0 <= self.beta < 1.0 and 0.0 <= self.beta_out < 1.0):
            raise NeuroplastError("beta and beta_out must be in [0, 1)")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> KwsNetConfig:
        d = dict(d)
        d["hidden"] = tuple(d.get("hidden", (128, 128)))
        return cls(**d)


def _ste_round(x: torch.Tensor) -> torch.Tensor:
    """``floor(x + 0.5)`` forward (round half up, as the integer runtime), identity backward."""
    return x + (torch.floor(x + 0.5) - x).detach()


class _Spike(torch.autograd.Function):
    """Heaviside forward; ATan surrogate ``alpha / 2 / (1 + (pi/2 alpha u)^2)`` backward."""

    @staticmethod
    def forward(ctx, u: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        ctx.save_for_backward(u)
        return (u > 0).to(u.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        (u,) = ctx.saved_tensors
        alpha = 5.0
        return grad * alpha / 2 / (1 + (math.pi / 2 * alpha * u) ** 2)


def sigma_at_epoch(epoch: int, epochs: int, max_delay: int) -> float:
    """DCLS sigma schedule: ``sigma_0 = max(D/2, 0.23)``, multiplied by
    ``(0.23 / sigma_0)^(1/E_f)`` each epoch for the first ``E_f = epochs/4`` epochs;
    the kernel uses ``sigma_eff = sigma + 0.27``."""
    s0 = max(max_delay / 2.0, 0.23)
    ef = max(1, epochs // 4)
    return s0 * (0.23 / s0) ** (min(epoch, ef) / ef) + 0.27


class DelayQuantLinear(nn.Module):
    """Fully connected synapses with one learnable delay each (see module docstring).

    Input ``x``: ``(B, n_in, T)``; output current ``(B, n_out, T)``.
    """

    def __init__(self, n_in: int, n_out: int, max_delay: int, learn: bool, bits: int) -> None:
        super().__init__()
        self.n_in, self.n_out, self.max_delay, self.learn = n_in, n_out, max_delay, learn
        self.bits = bits
        if bits:
            import brevitas.nn as qnn
            from brevitas.quant import Int8WeightPerTensorFloat

            self.fc = qnn.QuantLinear(
                n_in,
                n_out,
                bias=False,
                weight_quant=Int8WeightPerTensorFloat,
                weight_bit_width=bits,
            )
        else:
            self.fc = nn.Linear(n_in, n_out, bias=False)
        # kaiming-uniform as DCLS; the kernel is normalised over delays so the gain is w
        bound = math.sqrt(6.0 / n_in)
        nn.init.uniform_(self.fc.weight, -bound, bound)
        pos = (
            torch.rand(n_out, n_in) * max_delay if learn and max_delay else torch.zeros(n_out, n_in)
        )
        self.pos = nn.Parameter(pos, requires_grad=learn and max_delay > 0)
        self.sigma = max(max_delay / 2.0, 0.23) + 0.27
        self.hard = False  # True: exact integer delays (evaluation / deployment)

    def weight_and_scale(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Quantized (fake-quant) weight ``(n_out, n_in)`` and its scale (float)."""
        if self.bits:
            qw = self.fc.quant_weight()
            return qw.value, qw.scale.reshape(())
        return self.fc.weight, torch.ones(())

    def int_delays(self) -> torch.Tensor:
        """Deployment delays ``clamp(round(p), 0, D)`` as int64 ``(n_out, n_in)``."""
        return torch.clamp(torch.round(self.pos.detach()), 0, self.max_delay).long()

    def kernel(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Conv1d weight ``(n_out, n_in, D+1)`` (index ``D - d`` holds delay ``d``) and scale."""
        w, s = self.weight_and_scale()
        d_axis = torch.arange(self.max_delay + 1, dtype=w.dtype, device=w.device)
        if self.hard or not self.learn or self.max_delay == 0:
            g = (d_axis[None, None, :] == self.int_delays()[..., None]).to(w.dtype)
        else:
            g = torch.exp(-0.5 * ((d_axis - self.pos[..., None]) / self.sigma) ** 2)
            g = g / (g.sum(-1, keepdim=True) + 1e-7)
        return (w[..., None] * g).flip(-1), s

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k, s = self.kernel()
        xp = nn.functional.pad(x, (self.max_delay, 0))
        return nn.functional.conv1d(xp, k), s

    def clamp_(self) -> None:
        with torch.no_grad():
            self.pos.clamp_(0, self.max_delay)


class _LifScan(torch.autograd.Function):
    """The LIF / LI recurrence over ``iq (B, N, T)`` as one autograd node.

    Forward (no autograd graph per step)::

        u_t = v_{t-1} * b                      b = beta_q / 2^15 (integer) or beta (float)
        p_t = floor(u_t + 1/2) + iq_t          (integer; float: u_t + iq_t)
        s_t = [(p_t - th) / th > 0],  v_t = p_t (1 - s_t)    (spiking; readout: v_t = p_t)

    Backward, the same gradient as autograd through the step loop (STE rounding is the
    identity, the reset factor is detached): with ``S_t = sg((p_t - th) / th) / th`` the
    ATan surrogate of :class:`_Spike`,

        g_t = dL/ds_t S_t + (1 - s_t) b g_{t+1}     (spiking; readout: g_t = dL/dp_t + b g_{t+1})
        dL/diq_t = g_t

    a linear recurrence of one fused multiply-add per step (the per-step graph cost
    dominated training on a GPU: ~10k tiny kernels per batch).
    """

    @staticmethod
    def forward(ctx, iq: torch.Tensor, b: float, th: float, spiking: bool, integer: bool):  # noqa: ANN001, ANN205
        # time-major buffers: each step reads and writes one contiguous (B, N) slice
        x = iq.movedim(-1, 0).contiguous()
        pre, out = torch.empty_like(x), torch.empty_like(x)
        v = torch.zeros_like(x[0])
        for t in range(x.shape[0]):
            u = v * b
            if integer:
                u = torch.floor_(u.add_(0.5))
            p = torch.add(u, x[t], out=pre[t])
            if spiking:  # (p - th) / th > 0 is p > th for th > 0
                v = p.masked_fill(torch.gt(p, th, out=out[t]).bool(), 0.0)
            else:
                v = p
        ctx.b, ctx.th, ctx.spiking = b, th, spiking
        if spiking:
            ctx.save_for_backward(pre, out)
            return out.movedim(0, -1)
        return pre.movedim(0, -1)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # noqa: ANN001, ANN205
        b = ctx.b
        c = grad.movedim(-1, 0)
        if ctx.spiking:
            pre, spk = ctx.saved_tensors
            alpha, th = 5.0, ctx.th
            u = (pre - th) / th
            c = c * (alpha / 2 / (1 + (math.pi / 2 * alpha * u) ** 2)) / th
            a = (1.0 - spk) * b
        c = c.contiguous()
        g = torch.empty_like(c)
        acc = torch.zeros_like(c[0])
        for t in range(c.shape[0] - 1, -1, -1):
            if ctx.spiking:
                acc = torch.addcmul(c[t], a[t], acc, out=g[t])
            else:
                acc = torch.add(c[t], acc, alpha=b, out=g[t])
        return g.movedim(0, -1), None, None, None, None


def _lif(
    cur: torch.Tensor, s: torch.Tensor, beta: float, v_th: float, spiking: bool, integer: bool
) -> torch.Tensor:
    """LIF / LI over ``cur (B, N, T)``; with ``integer`` the contract's fixed-point
    recurrence in units of scale ``s``, else plain float ``v = beta v + I``.

    Returns spikes ``(B, N, T)`` (spiking) or the membrane in real units (readout).
    """
    if not integer:
        return _LifScan.apply(cur, beta, v_th, spiking, False)
    # exact integer currents; float64 outside training keeps v * beta_q exact
    iq = _ste_round(cur / s)
    if not torch.is_grad_enabled():
        iq = iq.double()
    b = round(beta * 2**15) / 2**15  # a power-of-two scaling of beta_q: exact
    th_q = max(1.0, float(np.round(v_th / float(s.detach()))))
    v = _LifScan.apply(iq, b, th_q, spiking, True)
    return v.to(cur.dtype) if spiking else (v * float(s.detach())).to(cur.dtype)


def summed_softmax(v_out: torch.Tensor) -> torch.Tensor:
    """``m = sum_t softmax(v_out[:, :, t])`` -> ``(B, classes)``; argmax m is the prediction."""
    return torch.softmax(v_out, dim=1).sum(-1)


class KwsNet(nn.Module):
    """``[DelayQuantLinear -> LIF -> Dropout] x len(hidden) -> DelayQuantLinear -> LI``."""

    def __init__(self, cfg: KwsNetConfig = KwsNetConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        sizes = [cfg.n_in, *cfg.hidden, cfg.n_classes]
        layers = []
        for i in range(len(sizes) - 1):
            last = i == len(sizes) - 2
            d = cfg.max_delay if (cfg.learn_delays and (cfg.delays_in_readout or not last)) else 0
            layers.append(
                DelayQuantLinear(sizes[i], sizes[i + 1], d, cfg.learn_delays, cfg.weight_bits)
            )
        self.layers = nn.ModuleList(layers)
        self.drop = nn.Dropout(cfg.dropout)

    def set_sigma(self, sigma: float) -> None:
        for m in self.layers:
            m.sigma = sigma

    def set_hard(self, hard: bool) -> None:
        for m in self.layers:
            m.hard = hard

    def clamp_(self) -> None:
        for m in self.layers:
            m.clamp_()

    def position_params(self) -> list[nn.Parameter]:
        return [m.pos for m in self.layers if m.pos.requires_grad]

    def weight_params(self) -> list[nn.Parameter]:
        pos = {id(p) for p in self.position_params()}
        return [p for p in self.parameters() if id(p) not in pos and p.requires_grad]

    def forward(self, x: torch.Tensor, record: bool = False):  # noqa: ANN201
        """``x (B, n_in, T)`` spikes -> readout membrane ``(B, classes, T)``.

        With ``record=True`` also returns the hidden spike trains.
        """
        spikes = []
        h = x
        for i, layer in enumerate(self.layers):
            cur, s = layer(h)
            if i < len(self.layers) - 1:
                h = _lif(cur, s, self.cfg.beta, self.cfg.v_th, True, layer.bits > 0)
                spikes.append(h)
                h = self.drop(h)
            else:
                out = _lif(cur, s, self.cfg.beta_out, self.cfg.v_th, False, layer.bits > 0)
        return (out, spikes) if record else out

    @torch.no_grad()
    def deploy_arrays(self) -> list[dict[str, np.ndarray | float]]:
        """Per layer: integer weights ``w_q`` (int8), scale, integer delays, bits."""
        out = []
        for m in self.layers:
            w, s = m.weight_and_scale()
            sc = float(s)
            wq = torch.round(w / s).to(torch.int64).numpy() if m.bits else None
            out.append(
                {
                    "weight": w.numpy().astype(np.float32),
                    "weight_q": wq,
                    "scale": sc,
                    "delay": m.int_delays().numpy().astype(np.int32),
                    "bits": m.bits,
                }
            )
        return out
