"""Homeostasis: adaptive thresholds, synaptic scaling, hyperactive-neuron masking.

All functions are pure; per-neuron arrays have shape ``(n_post,)``; weights
``(n_post, n_pre)``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from neuroplast.errors import DataError, PlasticityError
from neuroplast.plasticity._common import (
    as_float_array,
    bounds_of,
    check_len,
    check_weight,
    decay_factor,
    require,
    require_bounds,
    require_choice,
    require_nonnegative,
    require_positive,
)
from neuroplast.plasticity.spec import RuleSpec, StateDecl, StepIO

__all__ = [
    "SpikeThresholdParams",
    "RateThresholdParams",
    "SynapticScalingParams",
    "spike_threshold_update",
    "rate_threshold_update",
    "synaptic_scaling",
    "reference_spike_counts",
    "hyperactive_mask",
    "threshold_rule_update",
    "scaling_rule_update",
]


def _require_theta(n: str, lo: float, hi: float | None) -> None:
    require(
        isinstance(lo, (int, float)) and not isinstance(lo, bool) and np.isfinite(lo),
        f"{n}.theta_min must be a finite number, got {lo!r}",
    )
    if hi is not None:
        require(
            isinstance(hi, (int, float)) and not isinstance(hi, bool) and not np.isnan(hi),
            f"{n}.theta_max must be a number or None, got {hi!r}",
        )
        require(lo < hi, f"{n}: need theta_min < theta_max")


def _theta_max(p: object) -> float:
    return np.inf if p.theta_max is None else float(p.theta_max)


@dataclass(frozen=True)
class SpikeThresholdParams:
    """Spike-triggered adaptive threshold (intrinsic plasticity; Diehl & Cook, VPRSNN).

    Effective threshold ``V_th,i = V_th + theta_i``. Per step:
    ``theta <- exp(-dt/tau_theta) * theta``, then on a spike ``theta += theta_plus``
    (``mode="constant"``) or ``theta += theta_plus * c / |theta - c|``
    (``mode="sym-stdp"``, Hao et al., with ``c = center``). ``theta`` is clipped to
    ``[theta_min, theta_max]``. Units: threshold units (mV); ``tau_theta``, ``dt`` in ms.
    ``theta_max=None``: the engine uses the layer's base threshold ``max|v_th0|`` (the
    threshold at most doubles, so a saturated stream cannot silence the layer for good);
    the pure function treats ``None`` as unbounded.
    """

    theta_plus: float = 0.05
    tau_theta: float = 1e7
    dt: float = 0.5
    mode: str = "constant"
    center: float = 10.0
    theta_min: float = 0.0
    theta_max: float | None = None

    def __post_init__(self) -> None:
        n = "SpikeThresholdParams"
        require_nonnegative(n, theta_plus=self.theta_plus)
        require_positive(n, tau_theta=self.tau_theta, dt=self.dt, center=self.center)
        require_choice(n, "mode", self.mode, ("constant", "sym-stdp"))
        _require_theta(n, self.theta_min, self.theta_max)


def spike_threshold_update(
    theta: np.ndarray, spikes: object, p: SpikeThresholdParams
) -> np.ndarray:
    """One step of the spike-triggered threshold; returns new ``theta``."""
    th = as_float_array(theta, "theta", ndim=1)
    s = as_float_array(spikes, "spikes", ndim=1)
    check_len(s, th.shape[0], "spikes", "neurons")
    th = th * decay_factor(p.tau_theta, p.dt)
    if p.mode == "constant":
        inc = p.theta_plus
    else:
        # Hao et al.: increment shrinks as theta approaches ``center``; guard |.| -> 0.
        inc = p.theta_plus * p.center / np.maximum(np.abs(th - p.center), 1e-6)
    return np.clip(th + inc * s, p.theta_min, _theta_max(p))


@dataclass(frozen=True)
class RateThresholdParams:
    """Rate-target adaptive threshold (VPRTempo): ``theta += eta_ip * (r - r_target)``.

    ``r`` is the observed activity per step (spikes 0/1, or a rate in the same unit as
    ``r_target``: spikes per step). An integral controller: at the fixed point the mean
    firing equals ``r_target``. Clipped to ``[theta_min, theta_max]`` (``None``: as in
    :class:`SpikeThresholdParams`). ``groups`` (engine): 0, every neuron has its own
    threshold; ``g > 0``, the node's neurons form ``g`` equal contiguous blocks (the
    channels of a ``(C, H, W)`` layer) that share one threshold driven by the block's
    mean rate ``r_g``.
    """

    eta_ip: float = 1e-2
    r_target: float = 0.05
    theta_min: float = 0.0
    theta_max: float | None = None
    groups: int = 0

    def __post_init__(self) -> None:
        n = "RateThresholdParams"
        if isinstance(self.groups, bool) or not isinstance(self.groups, int) or self.groups < 0:
            raise PlasticityError(f"{n}: groups must be an int >= 0, got {self.groups!r}")
        require_positive(n, eta_ip=self.eta_ip)
        require_nonnegative(n, r_target=self.r_target)
        _require_theta(n, self.theta_min, self.theta_max)


def rate_threshold_update(
    theta: np.ndarray, activity: object, p: RateThresholdParams
) -> np.ndarray:
    """One step of the rate-target threshold; returns new ``theta``."""
    th = as_float_array(theta, "theta", ndim=1)
    r = as_float_array(activity, "activity", ndim=1)
    check_len(r, th.shape[0], "activity", "neurons")
    return np.clip(th + p.eta_ip * (r - p.r_target), p.theta_min, _theta_max(p))


@dataclass(frozen=True)
class SynapticScalingParams:
    """Synaptic scaling: each postsynaptic neuron's incoming weights are rescaled to
    sum to ``target`` (78.4 for 784 inputs in Diehl & Cook / sym-STDP):
    ``w_i. <- w_i. * target / sum_j w_ij``. In Brian2's ``(pre, post)`` layout this is
    the column normalisation of the papers; here it is a row of ``(n_post, n_pre)``.
    Rows whose sum is ``<= eps`` are left unchanged (nothing to scale).
    ``target=None``: the engine uses the layer's mean row sum when the rule is bound
    (keeps a trained layer's scale); bounds ``None``: the layer's range."""

    target: float | None = None
    w_min: float | None = None
    w_max: float | None = None
    eps: float = 1e-12

    def __post_init__(self) -> None:
        if self.target is not None:
            require_positive("SynapticScalingParams", target=self.target)
        require_positive("SynapticScalingParams", eps=self.eps)
        require_bounds("SynapticScalingParams", self.w_min, self.w_max)


def synaptic_scaling(w: np.ndarray, p: SynapticScalingParams) -> np.ndarray:
    """Row-normalise ``w`` to sum ``target``, then enforce bounds; returns a new array.

    (Clipping at ``w_max`` after scaling can leave a row's sum below target; that is the
    documented behaviour of bounded scaling.)"""
    w = check_weight(w)
    if p.target is None:
        raise DataError("synaptic_scaling: target is None (resolved by the engine); pass one")
    s = w.sum(axis=1, keepdims=True)
    factor = np.where(s > p.eps, p.target / np.where(s > p.eps, s, 1.0), 1.0)
    return np.clip(w * factor, *bounds_of(p, (0.0, 1.0)))


def reference_spike_counts(responses: object) -> np.ndarray:
    """``n_spk[j]`` = number of reference samples to which neuron ``j`` fired at least
    once. ``responses``: spike counts ``(n_samples, n_neurons)`` (or ``(n_samples, T,
    n_neurons)`` spike trains, summed over T). Compute it over the *global* reference set
    (all regions), not a module's own places (VPRSNN)."""
    r = as_float_array(responses, "responses", ndim=(2, 3))
    if r.ndim == 3:
        r = r.sum(axis=1)
    if (r < 0).any():
        raise DataError("responses: spike counts must be >= 0")
    return (r > 0).sum(axis=0).astype(np.int64)


def hyperactive_mask(n_spk: object, threshold: int) -> np.ndarray:
    """Boolean mask of hyperactive neurons: ``n_spk >= threshold`` (zero them at query
    time). ``threshold <= 0`` masks every neuron; choose it on a calibration split."""
    if isinstance(threshold, bool) or not isinstance(threshold, (int, np.integer)):
        raise DataError(f"hyperactive_mask: threshold must be an int, got {threshold!r}")
    c = as_float_array(n_spk, "n_spk", ndim=1)
    return c >= threshold


# --------------------------------------------------------------------------- engine form


def _theta_state(p: object, n_post: int, n_pre: int) -> StateDecl:
    return {"theta": ((n_post,), "float64")}


def threshold_rule_update(p: object, io: StepIO, state: dict) -> tuple:
    """Engine form of both threshold rules: ``io.post`` (B, n) is the node's own
    output, averaged over the batch (and over each block when ``groups``); returns
    ``(None, {"theta": new})``."""
    s = io.post.mean(axis=0)
    g = getattr(p, "groups", 0)
    if g:
        if s.size % g:
            raise PlasticityError(f"rate_threshold: {s.size} neurons do not form {g} groups")
        s = np.repeat(s.reshape(g, -1).mean(axis=1), s.size // g)
    f = spike_threshold_update if isinstance(p, SpikeThresholdParams) else rate_threshold_update
    return None, {"theta": f(state["theta"], s, p)}


def scaling_rule_update(p: SynapticScalingParams, io: StepIO, state: dict) -> tuple:
    """Engine form: ``dw = synaptic_scaling(w) - w`` (rows of a conv layer are its output
    channels)."""
    return synaptic_scaling(io.w, p) - io.w, state


def _scaling_resolve(p: SynapticScalingParams, w: np.ndarray) -> SynapticScalingParams:
    if p.target is not None:
        return p
    t = float(np.mean(w.sum(axis=1)))
    return replace(p, target=t if t > p.eps else 1.0)


_NEURONS = ("LIF", "CubaLIF", "IF")
SPECS = (
    RuleSpec(
        "spike_threshold",
        SpikeThresholdParams,
        threshold_rule_update,
        _theta_state,
        target="neurons",
        layers=_NEURONS,
    ),
    RuleSpec(
        "rate_threshold",
        RateThresholdParams,
        threshold_rule_update,
        _theta_state,
        target="neurons",
        layers=_NEURONS,
    ),
    RuleSpec(
        "synaptic_scaling",
        SynapticScalingParams,
        scaling_rule_update,
        layers=("Linear", "Conv1d", "Conv2d"),
        post=False,
        pre=False,
        fallback_bounds=(0.0, 1.0),
        resolve=_scaling_resolve,
    ),
)
