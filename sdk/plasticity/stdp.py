"""Spike-timing-dependent plasticity with exponential traces (pure step functions).

Notation (seed-algorithms section 10.5): presynaptic ``j``, postsynaptic ``i``, spikes
``s in {0, 1}``, step ``dt``; a trace decays by ``alpha = exp(-dt / tau)`` per step.
Weights ``w`` have shape ``(n_post, n_pre)``.

Order inside one step (the same for every rule here, so the timing window is exact):

1. traces decay: ``x_j <- alpha_pre * x_j``, ``y_i <- alpha_post * y_i``;
2. weights change using the decayed traces (spikes of *this* step are not yet in
   them, so a pre and a post spike in the same step do not interact):

   * on a post spike of ``i``: ``dw_ij += post_gain_i * x_j`` (potentiation),
   * on a pre spike of ``j``:  ``dw_ij += pre_gain * y_i`` (sign chosen by the rule);

3. weight dependence: ``additive`` uses ``dw`` as is; ``multiplicative`` (soft bounds,
   van Rossum et al. 2000; Guetig et al. 2003) scales each term on its own:
   potentiation by ``(w_max - w)``, depression by ``(w - w_min)``, both with the
   weight before this step (``dw = ltp * (w_max - w) + ltd * (w - w_min)``);
4. bounds ``w_min <= w <= w_max`` are enforced on every update (``None`` = the
   layer's own range and sign, resolved by the engine when the rule is bound; the
   pure functions use ``[0, 1]`` for a bound left ``None``);
5. the spikes of this step enter the traces: ``x_j += a_pre * s_j`` ("all-to-all") or
   ``x_j = a_pre`` where ``s_j`` ("nearest").

Saturation guard (``rate_cap``, default 0.5): a step on which more than
``rate_cap * n_pre`` inputs (and more than one) are active (all-ones, bursts) carries no timing information
and is ignored: no weight change and no trace increment (traces still decay). So a
saturated or silent stream cannot drive a layer to its bound.

For a single pre/post pair with ``delta = t_post - t_pre`` (in units of ``dt``) the pair
rule therefore gives exactly ``dw = eta_plus*a_plus*exp(-delta*dt/tau_plus)`` for
``delta > 0`` and ``-eta_minus*a_minus*exp(delta*dt/tau_minus)`` for ``delta < 0``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from neuroplast.errors import DataError, PlasticityError
from neuroplast.plasticity import _accel
from neuroplast.plasticity._common import (
    as_float_array,
    bounds_of,
    check_len,
    check_weight,
    decay_factor,
    require_bounds,
    require_choice,
    require_nonnegative,
    require_positive,
    require_rate_cap,
    saturated,
)
from neuroplast.plasticity.spec import RuleSpec, StateDecl, StepIO

__all__ = [
    "STDPState",
    "PairSTDPParams",
    "SymmetricSTDPParams",
    "DiehlCookSTDPParams",
    "RewardSTDPParams",
    "RewardSTDPState",
    "stdp_init",
    "reward_stdp_init",
    "pair_stdp_delta",
    "pair_stdp_update",
    "symmetric_stdp_delta",
    "symmetric_stdp_update",
    "diehl_cook_delta",
    "diehl_cook_update",
    "reward_stdp_delta",
    "reward_stdp_update",
    "stdp_window",
    "stdp_run",
    "stdp_rule_update",
    "stdp_fast",
    "stdp_fast_plan",
]

_DEPENDENCE = ("additive", "multiplicative")
#: bounds the pure functions use for ``w_min``/``w_max`` left ``None`` (the engine
#: uses the layer's range instead)
UNIT_BOUNDS = (0.0, 1.0)
_TRACE = ("all-to-all", "nearest")


class STDPState(NamedTuple):
    """Synaptic traces: ``pre`` (n_pre,), ``post`` (n_post,), ``post2`` (n_post,; D&C only)."""

    pre: np.ndarray
    post: np.ndarray
    post2: np.ndarray


def stdp_init(n_pre: int, n_post: int) -> STDPState:
    """All-zero traces for a ``(n_post, n_pre)`` synapse matrix."""
    return STDPState(np.zeros(n_pre), np.zeros(n_post), np.zeros(n_post))


@dataclass(frozen=True)
class PairSTDPParams:
    """Pair STDP with traces (Song/Bi-Poo window; BindsNET ``PostPre``).

    ``dw_ij = +eta_plus * x_j`` on a post spike, ``-eta_minus * y_i`` on a pre spike;
    ``x`` (pre trace, time constant ``tau_plus``) and ``y`` (post trace, ``tau_minus``)
    jump by ``a_plus``/``a_minus``. Times (``tau_*``, ``dt``) share one unit (ms).
    ``weight_dependence``: ``"additive"`` (hard bounds) or ``"multiplicative"``
    (soft bounds per term, van Rossum 2000). ``trace``: ``"all-to-all"`` or
    ``"nearest"``. ``w_min``/``w_max``: ``None`` = the layer's range (see the module
    docstring); ``rate_cap``: the saturation guard.
    """

    eta_plus: float = 1e-2
    eta_minus: float = 1e-2
    tau_plus: float = 20.0
    tau_minus: float = 20.0
    a_plus: float = 1.0
    a_minus: float = 1.0
    dt: float = 1.0
    w_min: float | None = None
    w_max: float | None = None
    rate_cap: float = 0.5
    weight_dependence: str = "additive"
    trace: str = "all-to-all"

    def __post_init__(self) -> None:
        n = type(self).__name__
        require_nonnegative(n, eta_plus=self.eta_plus, eta_minus=self.eta_minus)
        require_nonnegative(n, a_plus=self.a_plus, a_minus=self.a_minus)
        require_positive(n, tau_plus=self.tau_plus, tau_minus=self.tau_minus, dt=self.dt)
        require_bounds(n, self.w_min, self.w_max)
        require_rate_cap(n, self.rate_cap)
        require_choice(n, "weight_dependence", self.weight_dependence, _DEPENDENCE)
        require_choice(n, "trace", self.trace, _TRACE)


@dataclass(frozen=True)
class SymmetricSTDPParams:
    """Symmetric STDP of Hao et al. 2020 (sym-STDP): both spike orders potentiate.

    On a pre spike ``g_ij += nu_pre * y_i``; on a post spike ``g_ij += nu_post * x_j``;
    traces jump by ``a_pre``/``a_post`` (0.1 in the paper) and decay with
    ``tau_pre``/``tau_post`` (20 ms); ``dt`` 0.5 ms; ``g`` clipped to ``[w_min, w_max]``.
    """

    nu_pre: float = 0.005
    nu_post: float = 0.005
    tau_pre: float = 20.0
    tau_post: float = 20.0
    a_pre: float = 0.1
    a_post: float = 0.1
    dt: float = 0.5
    w_min: float | None = None
    w_max: float | None = None
    rate_cap: float = 0.5
    weight_dependence: str = "additive"
    trace: str = "all-to-all"

    def __post_init__(self) -> None:
        n = type(self).__name__
        require_nonnegative(n, nu_pre=self.nu_pre, nu_post=self.nu_post)
        require_nonnegative(n, a_pre=self.a_pre, a_post=self.a_post)
        require_positive(n, tau_pre=self.tau_pre, tau_post=self.tau_post, dt=self.dt)
        require_bounds(n, self.w_min, self.w_max)
        require_rate_cap(n, self.rate_cap)
        require_choice(n, "weight_dependence", self.weight_dependence, _DEPENDENCE)
        require_choice(n, "trace", self.trace, _TRACE)


@dataclass(frozen=True)
class DiehlCookSTDPParams:
    """Diehl & Cook (2015) two-trace STDP, as in VPRSNN.

    On a pre spike: ``w += sign * nu_pre * post1`` where ``pre_sign`` is ``"-"``
    (original Diehl & Cook code: depression) or ``"+"`` (VPRSNN repository).
    On a post spike: ``w += nu_post * pre * post2_before`` (``post2`` read before this
    spike increments it). Traces ``pre``/``post1``/``post2`` with ``tau_pre``/
    ``tau_post1``/``tau_post2`` (20/20/40 ms) are *set* to 1 on a spike ("nearest").
    """

    nu_pre: float = 1e-4
    nu_post: float = 1e-2
    tau_pre: float = 20.0
    tau_post1: float = 20.0
    tau_post2: float = 40.0
    dt: float = 0.5
    w_min: float | None = None
    w_max: float | None = None
    rate_cap: float = 0.5
    pre_sign: str = "-"
    trace: str = "nearest"

    def __post_init__(self) -> None:
        n = type(self).__name__
        require_nonnegative(n, nu_pre=self.nu_pre, nu_post=self.nu_post)
        require_positive(
            n, tau_pre=self.tau_pre, tau_post1=self.tau_post1, tau_post2=self.tau_post2
        )
        require_positive(n, dt=self.dt)
        require_bounds(n, self.w_min, self.w_max)
        require_rate_cap(n, self.rate_cap)
        require_choice(n, "pre_sign", self.pre_sign, ("+", "-"))
        require_choice(n, "trace", self.trace, _TRACE)


@dataclass(frozen=True)
class RewardSTDPParams:
    """Three-factor (reward-modulated) pair STDP with an eligibility trace (R-STDP).

    ``e <- exp(-dt/tau_e) * e + stdp_dw`` (pair STDP, additive, as in
    :class:`PairSTDPParams`); ``w <- clip(w + lr * r * e)`` with a scalar or
    per-postsynaptic-neuron reward/error signal ``r`` (``None`` means 0: the
    eligibility still evolves, weights do not move).
    """

    eta_plus: float = 1.0
    eta_minus: float = 1.0
    tau_plus: float = 20.0
    tau_minus: float = 20.0
    tau_e: float = 200.0
    lr: float = 1e-2
    dt: float = 1.0
    w_min: float | None = None
    w_max: float | None = None
    rate_cap: float = 0.5
    trace: str = "all-to-all"

    def __post_init__(self) -> None:
        n = type(self).__name__
        require_nonnegative(n, eta_plus=self.eta_plus, eta_minus=self.eta_minus, lr=self.lr)
        require_positive(
            n, tau_plus=self.tau_plus, tau_minus=self.tau_minus, tau_e=self.tau_e, dt=self.dt
        )
        require_bounds(n, self.w_min, self.w_max)
        require_rate_cap(n, self.rate_cap)
        require_choice(n, "trace", self.trace, _TRACE)


class RewardSTDPState(NamedTuple):
    """Traces plus the eligibility matrix ``elig`` (n_post, n_pre)."""

    traces: STDPState
    elig: np.ndarray


def reward_stdp_init(n_pre: int, n_post: int) -> RewardSTDPState:
    """Zero traces and zero eligibility."""
    return RewardSTDPState(stdp_init(n_pre, n_post), np.zeros((n_post, n_pre)))


# --------------------------------------------------------------------------- kernel


def _spikes(s: object, n: int, name: str) -> np.ndarray:
    a = as_float_array(s, name, ndim=1)
    check_len(a, n, name, "neurons")
    return a


def _check_state(state: STDPState, n_pre: int, n_post: int) -> None:
    if state.pre.shape != (n_pre,) or state.post.shape != (n_post,):
        raise DataError(
            f"STDP state shape mismatch: traces pre {state.pre.shape}, post "
            f"{state.post.shape}, weights need ({n_pre},), ({n_post},)"
        )


def _trace_step(x: np.ndarray, s: np.ndarray, amp: float, mode: str) -> np.ndarray:
    if mode == "nearest":
        return np.where(s > 0, amp, x)
    return x + amp * s


def _soft(d: np.ndarray, w: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Soft bounds for one term: potentiation ``* (hi - w)``, depression ``* (w - lo)``."""
    return np.where(d > 0, d * (hi - w), d * (w - lo))


def _kernel(
    w: np.ndarray,
    s_pre: np.ndarray,
    s_post: np.ndarray,
    x_pre: np.ndarray,
    y_post: np.ndarray,
    post_gain: np.ndarray | float,
    pre_gain: float,
    multiplicative: bool,
    w_min: float,
    w_max: float,
) -> np.ndarray:
    """Dense ``dw`` for one step: the post-spike term (rows with a post spike) plus the
    pre-spike term (columns with a pre spike), each soft-bounded on its own when
    ``multiplicative``."""
    if multiplicative and not (np.isfinite(w_min) and np.isfinite(w_max)):
        raise PlasticityError("multiplicative (soft-bound) STDP needs finite w_min and w_max")
    t_post = np.zeros_like(w)
    t_pre = np.zeros_like(w)
    rows = np.flatnonzero(s_post)
    cols = np.flatnonzero(s_pre)
    if rows.size:
        g = post_gain[rows] if isinstance(post_gain, np.ndarray) else post_gain
        t_post[rows] += np.multiply.outer(np.broadcast_to(g, rows.shape) * s_post[rows], x_pre)
    if cols.size and pre_gain != 0.0:
        t_pre[:, cols] += pre_gain * np.multiply.outer(y_post, s_pre[cols])
    if multiplicative:
        return _soft(t_post, w, w_min, w_max) + _soft(t_pre, w, w_min, w_max)
    return t_post + t_pre


def _apply(w: np.ndarray, dw: np.ndarray, p: object) -> np.ndarray:
    lo, hi = bounds_of(p, UNIT_BOUNDS)
    return np.clip(w + dw, lo, hi)


def _gate(s_pre: np.ndarray, s_post: np.ndarray, p: object) -> tuple[np.ndarray, np.ndarray]:
    """The saturation guard: a saturated step counts as a step without spikes."""
    if saturated(s_pre, p.rate_cap):
        return np.zeros_like(s_pre), np.zeros_like(s_post)
    return s_pre, s_post


# --------------------------------------------------------------------------- pair


def pair_stdp_delta(
    w: np.ndarray, pre: np.ndarray, post: np.ndarray, state: STDPState, p: PairSTDPParams
) -> tuple[np.ndarray, STDPState]:
    """One step of pair STDP: returns ``(dw, new_state)`` (``dw`` before clipping).

    ``pre`` (n_pre,) and ``post`` (n_post,) are this step's spikes (0/1, or graded).
    """
    w = check_weight(w)
    n_post, n_pre = w.shape
    s_pre, s_post = _gate(_spikes(pre, n_pre, "pre"), _spikes(post, n_post, "post"), p)
    _check_state(state, n_pre, n_post)
    lo, hi = bounds_of(p, UNIT_BOUNDS)
    x = state.pre * decay_factor(p.tau_plus, p.dt)
    y = state.post * decay_factor(p.tau_minus, p.dt)
    dw = _kernel(
        w,
        s_pre,
        s_post,
        x,
        y,
        p.eta_plus,
        -p.eta_minus,
        p.weight_dependence == "multiplicative",
        lo,
        hi,
    )
    new = STDPState(
        _trace_step(x, s_pre, p.a_plus, p.trace),
        _trace_step(y, s_post, p.a_minus, p.trace),
        state.post2,
    )
    return dw, new


def pair_stdp_update(
    w: np.ndarray, pre: np.ndarray, post: np.ndarray, state: STDPState, p: PairSTDPParams
) -> tuple[np.ndarray, STDPState]:
    """``w_new = clip(w + dw, w_min, w_max)`` for :func:`pair_stdp_delta`; pure."""
    dw, new = pair_stdp_delta(w, pre, post, state, p)
    return _apply(np.asarray(w, dtype=np.float64), dw, p), new


def stdp_window(delta_steps: np.ndarray, p: PairSTDPParams) -> np.ndarray:
    """Analytic pair-STDP window ``dw(delta)`` for one pair, ``delta = t_post - t_pre``
    in steps (additive dependence): ``eta_plus*a_plus*exp(-delta*dt/tau_plus)`` for
    ``delta > 0``, ``-eta_minus*a_minus*exp(delta*dt/tau_minus)`` for ``delta < 0``, 0 at 0."""
    d = np.asarray(delta_steps, dtype=np.float64)
    ltp = p.eta_plus * p.a_plus * np.exp(-np.abs(d) * p.dt / p.tau_plus)
    ltd = -p.eta_minus * p.a_minus * np.exp(-np.abs(d) * p.dt / p.tau_minus)
    return np.where(d > 0, ltp, np.where(d < 0, ltd, 0.0))


# --------------------------------------------------------------------------- symmetric


def symmetric_stdp_delta(
    w: np.ndarray, pre: np.ndarray, post: np.ndarray, state: STDPState, p: SymmetricSTDPParams
) -> tuple[np.ndarray, STDPState]:
    """One step of symmetric STDP (Hao et al.): both orders potentiate; ``(dw, state)``."""
    w = check_weight(w)
    n_post, n_pre = w.shape
    s_pre, s_post = _gate(_spikes(pre, n_pre, "pre"), _spikes(post, n_post, "post"), p)
    _check_state(state, n_pre, n_post)
    lo, hi = bounds_of(p, UNIT_BOUNDS)
    x = state.pre * decay_factor(p.tau_pre, p.dt)
    y = state.post * decay_factor(p.tau_post, p.dt)
    dw = _kernel(
        w,
        s_pre,
        s_post,
        x,
        y,
        p.nu_post,
        p.nu_pre,
        p.weight_dependence == "multiplicative",
        lo,
        hi,
    )
    new = STDPState(
        _trace_step(x, s_pre, p.a_pre, p.trace),
        _trace_step(y, s_post, p.a_post, p.trace),
        state.post2,
    )
    return dw, new


def symmetric_stdp_update(
    w: np.ndarray, pre: np.ndarray, post: np.ndarray, state: STDPState, p: SymmetricSTDPParams
) -> tuple[np.ndarray, STDPState]:
    """Clipped symmetric-STDP update; pure."""
    dw, new = symmetric_stdp_delta(w, pre, post, state, p)
    return _apply(np.asarray(w, dtype=np.float64), dw, p), new


# --------------------------------------------------------------------------- Diehl & Cook


def diehl_cook_delta(
    w: np.ndarray, pre: np.ndarray, post: np.ndarray, state: STDPState, p: DiehlCookSTDPParams
) -> tuple[np.ndarray, STDPState]:
    """One step of Diehl & Cook two-trace STDP; ``(dw, state)``.

    ``state.post`` is ``post1`` and ``state.post2`` is ``post2``; the post-spike term
    uses ``post2`` after decay but before this step's increment ("post2before").
    """
    w = check_weight(w)
    n_post, n_pre = w.shape
    s_pre, s_post = _gate(_spikes(pre, n_pre, "pre"), _spikes(post, n_post, "post"), p)
    _check_state(state, n_pre, n_post)
    lo, hi = bounds_of(p, UNIT_BOUNDS)
    x = state.pre * decay_factor(p.tau_pre, p.dt)
    y1 = state.post * decay_factor(p.tau_post1, p.dt)
    y2 = state.post2 * decay_factor(p.tau_post2, p.dt)
    sign = 1.0 if p.pre_sign == "+" else -1.0
    dw = _kernel(w, s_pre, s_post, x, y1, p.nu_post * y2, sign * p.nu_pre, False, lo, hi)
    new = STDPState(
        _trace_step(x, s_pre, 1.0, p.trace),
        _trace_step(y1, s_post, 1.0, p.trace),
        _trace_step(y2, s_post, 1.0, p.trace),
    )
    return dw, new


def diehl_cook_update(
    w: np.ndarray, pre: np.ndarray, post: np.ndarray, state: STDPState, p: DiehlCookSTDPParams
) -> tuple[np.ndarray, STDPState]:
    """Clipped Diehl & Cook update; pure."""
    dw, new = diehl_cook_delta(w, pre, post, state, p)
    return _apply(np.asarray(w, dtype=np.float64), dw, p), new


# --------------------------------------------------------------------------- three-factor


def _reward(reward: object, n_post: int) -> np.ndarray | float:
    if reward is None:
        return 0.0
    r = as_float_array(reward, "reward", ndim=(0, 1))
    if r.ndim == 0:
        return float(r)
    check_len(r, n_post, "reward", "postsynaptic neurons")
    return r[:, None]


def reward_stdp_delta(
    w: np.ndarray,
    pre: np.ndarray,
    post: np.ndarray,
    state: RewardSTDPState,
    p: RewardSTDPParams,
    reward: object = None,
) -> tuple[np.ndarray, RewardSTDPState]:
    """Three-factor STDP step: eligibility ``e <- a_e*e + stdp_dw``; ``dw = lr*r*e``."""
    w = check_weight(w)
    n_post, n_pre = w.shape
    if state.elig.shape != w.shape:
        raise DataError(f"eligibility shape {state.elig.shape} does not match weights {w.shape}")
    r = _reward(reward, n_post)
    pp = PairSTDPParams(
        eta_plus=p.eta_plus,
        eta_minus=p.eta_minus,
        tau_plus=p.tau_plus,
        tau_minus=p.tau_minus,
        dt=p.dt,
        w_min=p.w_min,
        w_max=p.w_max,
        trace=p.trace,
        rate_cap=p.rate_cap,
    )
    stdp_dw, traces = pair_stdp_delta(w, pre, post, state.traces, pp)
    elig = state.elig * decay_factor(p.tau_e, p.dt) + stdp_dw
    dw = p.lr * r * elig if not (isinstance(r, float) and r == 0.0) else np.zeros_like(w)
    return dw, RewardSTDPState(traces, elig)


def reward_stdp_update(
    w: np.ndarray,
    pre: np.ndarray,
    post: np.ndarray,
    state: RewardSTDPState,
    p: RewardSTDPParams,
    reward: object = None,
) -> tuple[np.ndarray, RewardSTDPState]:
    """Clipped three-factor STDP update; pure."""
    dw, new = reward_stdp_delta(w, pre, post, state, p, reward)
    return _apply(np.asarray(w, dtype=np.float64), dw, p), new


# --------------------------------------------------------------------------- chunked


def _rule_consts(p: object) -> tuple[float, float, float, float, float, float, str, bool]:
    """(alpha_pre, alpha_post, amp_pre, amp_post, post_gain, pre_gain, trace, mult)."""
    if isinstance(p, PairSTDPParams):
        return (
            decay_factor(p.tau_plus, p.dt),
            decay_factor(p.tau_minus, p.dt),
            p.a_plus,
            p.a_minus,
            p.eta_plus,
            -p.eta_minus,
            p.trace,
            p.weight_dependence == "multiplicative",
        )
    if isinstance(p, SymmetricSTDPParams):
        return (
            decay_factor(p.tau_pre, p.dt),
            decay_factor(p.tau_post, p.dt),
            p.a_pre,
            p.a_post,
            p.nu_post,
            p.nu_pre,
            p.trace,
            p.weight_dependence == "multiplicative",
        )
    if isinstance(p, DiehlCookSTDPParams):
        sign = 1.0 if p.pre_sign == "+" else -1.0
        return (
            decay_factor(p.tau_pre, p.dt),
            decay_factor(p.tau_post1, p.dt),
            1.0,
            1.0,
            p.nu_post,
            sign * p.nu_pre,
            p.trace,
            False,
        )
    raise PlasticityError(f"stdp_run: unsupported rule {type(p).__name__}")


def _event_apply(
    w: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    gain_rows: np.ndarray | None,
    x: np.ndarray,
    coef_cols: np.ndarray,
    y: np.ndarray,
    mult: bool,
    lo: float,
    hi: float,
) -> None:
    """In place: ``w[rows] += gain_rows (x) x`` (post-spike term) and
    ``w[:, cols] += y (x) coef_cols`` (pre-spike term), each soft-bounded on its own
    (``mult``) with the weight before the step, summed where both hit, then clipped;
    touches only the spiking rows and columns."""
    d_rows = d_cols = None
    if rows.size:
        d_rows = np.multiply.outer(gain_rows, x)
        if mult:
            d_rows = _soft(d_rows, w[rows], lo, hi)
    if cols.size and np.any(coef_cols):
        d_cols = np.multiply.outer(y, coef_cols)
        if mult:
            d_cols = _soft(d_cols, w[:, cols], lo, hi)
        if d_rows is not None:
            # a synapse hit by both terms gets their sum in one update (as in the
            # step function), so move the overlap block into d_rows
            d_rows[:, cols] += d_cols[rows]
            d_cols[rows] = 0.0
    if d_rows is not None:
        w[rows] = np.minimum(np.maximum(w[rows] + d_rows, lo), hi)
    if d_cols is not None:
        w[:, cols] = np.minimum(np.maximum(w[:, cols] + d_cols, lo), hi)


def stdp_run(
    w: np.ndarray,
    pre_train: object,
    post_train: object,
    state: STDPState,
    p: PairSTDPParams | SymmetricSTDPParams | DiehlCookSTDPParams,
    backend: str = "auto",
) -> tuple[np.ndarray, STDPState]:
    """Run ``T`` steps of a trace STDP rule over given spike trains ``pre_train``
    (T, n_pre) and ``post_train`` (T, n_post) (binary). Identical, step for step, to
    ``T`` calls of the matching ``*_update`` function, but validated once and
    event-driven: per step only rows with a post spike and columns with a pre spike
    are touched, so it is fast for sparse activity. Returns new arrays (pure).

    ``backend``: ``"numpy"``, ``"numba"`` (compiled loop; numba is optional) or
    ``"auto"`` (numba when installed). Both give the same result to rounding."""
    w = check_weight(w).copy()
    n_post, n_pre = w.shape
    pre_t = as_float_array(pre_train, "pre_train", ndim=2)
    post_t = as_float_array(post_train, "post_train", ndim=2)
    check_len(pre_t, n_pre, "pre_train", "neurons")
    check_len(post_t, n_post, "post_train", "neurons")
    if pre_t.shape[0] != post_t.shape[0]:
        raise DataError(f"pre_train has {pre_t.shape[0]} steps, post_train {post_t.shape[0]}")
    _check_state(state, n_pre, n_post)
    a_pre, a_post, amp_pre, amp_post, g_post, g_pre, mode, mult = _rule_consts(p)
    dc = isinstance(p, DiehlCookSTDPParams)
    a_post2 = decay_factor(p.tau_post2, p.dt) if dc else 1.0
    lo, hi = bounds_of(p, UNIT_BOUNDS)
    if mult and not (np.isfinite(lo) and np.isfinite(hi)):
        raise PlasticityError("multiplicative (soft-bound) STDP needs finite w_min and w_max")
    x, y, y2 = state.pre.copy(), state.post.copy(), state.post2.copy()
    nearest = mode == "nearest"
    if backend not in ("auto", "numpy", "numba"):
        raise PlasticityError(f"stdp_run: backend must be auto|numpy|numba, got {backend!r}")
    acc = None if backend == "numpy" else _accel.kernels()
    if backend == "numba" and acc is None:
        raise PlasticityError("stdp_run: backend='numba' needs the numba package")
    if acc is not None:
        consts = np.array(
            [a_pre, a_post, a_post2, amp_pre, amp_post, g_post, g_pre, lo, hi, p.rate_cap],
            np.float64,
        )
        acc[1](w, pre_t, post_t, x, y, y2, consts, nearest, mult, dc)
        return w, STDPState(x, y, y2)
    n_steps = pre_t.shape[0]
    n_act = np.count_nonzero(pre_t, axis=1)
    gated = (n_act > 1) & (n_act > p.rate_cap * n_pre)  # the saturation guard
    if gated.any():
        pre_t, post_t = pre_t.copy(), post_t.copy()
        pre_t[gated] = 0.0
        post_t[gated] = 0.0
    t_idx_post, i_post = np.nonzero(post_t)
    t_idx_pre, j_pre = np.nonzero(pre_t)
    # Only steps with a spike do any work; between them traces decay lazily by
    # alpha**k (equal to k per-step decays up to float rounding).
    ev_steps = np.union1d(t_idx_post, t_idx_pre)
    b_post = np.searchsorted(t_idx_post, ev_steps, side="right").tolist()
    b_pre = np.searchsorted(t_idx_pre, ev_steps, side="right").tolist()
    s_post = s_pre = 0
    t_last = -1
    for k, t in enumerate(ev_steps.tolist()):
        gap = t - t_last
        t_last = t
        x *= a_pre**gap
        y *= a_post**gap
        if dc:
            y2 *= a_post2**gap
        rows, cols = i_post[s_post : b_post[k]], j_pre[s_pre : b_pre[k]]
        s_post, s_pre = b_post[k], b_pre[k]
        gain = (g_post * y2[rows] if dc else g_post) * post_t[t, rows] if rows.size else None
        _event_apply(w, rows, cols, gain, x, g_pre * pre_t[t, cols], y, mult, lo, hi)
        if cols.size:
            if nearest:  # as the step function: a positive spike sets the trace
                x[cols[pre_t[t, cols] > 0]] = amp_pre
            else:
                x[cols] += amp_pre * pre_t[t, cols]
        if rows.size:
            if nearest:
                up = rows[post_t[t, rows] > 0]
                y[up] = amp_post
                if dc:
                    y2[up] = 1.0
            else:
                y[rows] += amp_post * post_t[t, rows]
                if dc:
                    y2[rows] += post_t[t, rows]
    gap = n_steps - 1 - t_last
    x *= a_pre**gap
    y *= a_post**gap
    if dc:
        y2 *= a_post2**gap
    return w, STDPState(x, y, y2)


# --------------------------------------------------------------------------- engine form


def _stdp_state(p: object, n_post: int, n_pre: int) -> StateDecl:
    d: StateDecl = {
        "pre": ((n_pre,), "float64"),
        "post": ((n_post,), "float64"),
        "post2": ((n_post,), "float64"),
    }
    if isinstance(p, RewardSTDPParams):
        d["elig"] = ((n_post, n_pre), "float64")
    return d


def _traces_after(
    p: object, x: np.ndarray, y: np.ndarray, y2: np.ndarray, pre: np.ndarray, post: np.ndarray
) -> dict[str, np.ndarray]:
    _, _, amp_pre, amp_post, _, _, mode, _ = _rule_consts(p)
    dc = isinstance(p, DiehlCookSTDPParams)
    return {
        "pre": _trace_step(x, pre, amp_pre, mode),
        "post": _trace_step(y, post, amp_post, mode),
        "post2": _trace_step(y2, post, 1.0, mode) if dc else y2,
    }


def stdp_rule_update(
    p: object, io: StepIO, state: dict[str, np.ndarray]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Engine form of the trace STDP rules (pair, symmetric, Diehl & Cook, reward):
    one step on ``io.pre[0]``/``io.post[0]`` (batch 1); returns ``(dw, new_state)``.
    Equal to the ``*_delta`` functions (the event-driven arithmetic; to rounding).
    In integer mode ``dw`` is what :func:`~neuroplast.plasticity.quantized_apply`
    rounds: ``(w + dw_event) - w`` on the dequantized weights, not clipped here."""
    pre, post = io.pre[0], io.post[0]
    if isinstance(p, RewardSTDPParams):
        st = RewardSTDPState(STDPState(state["pre"], state["post"], state["post2"]), state["elig"])
        dw, st = reward_stdp_delta(io.w, pre, post, st, p, io.reward)
        t = st.traces
        return dw, {"pre": t.pre, "post": t.post, "post2": t.post2, "elig": st.elig}
    pre, post = _gate(pre, post, p)
    a_pre, a_post, _, _, g_post, g_pre, _, mult = _rule_consts(p)
    dc = isinstance(p, DiehlCookSTDPParams)
    x = state["pre"] * a_pre
    y = state["post"] * a_post
    y2 = state["post2"] * (decay_factor(p.tau_post2, p.dt) if dc else 1.0)
    rows, cols = np.flatnonzero(post), np.flatnonzero(pre)
    gain = (g_post * y2[rows] if dc else g_post) * post[rows]
    lo, hi = bounds_of(p, UNIT_BOUNDS) if mult else (-np.inf, np.inf)
    if mult and not (np.isfinite(lo) and np.isfinite(hi)):
        raise PlasticityError("multiplicative (soft-bound) STDP needs finite w_min and w_max")
    w_new = io.w.copy()
    _event_apply(w_new, rows, cols, gain, x, g_pre * pre[cols], y, mult, lo, hi)
    return w_new - io.w, _traces_after(p, x, y, y2, pre, post)


class _FastConsts(NamedTuple):
    params: object
    rule: tuple
    dc: bool
    a_post2: float
    lo: float
    hi: float
    packed: np.ndarray  # the compiled kernel's 10 constants


_FAST_CONSTS: dict[int, _FastConsts] = {}


def _fast_consts(p: object) -> _FastConsts:
    """The per-step constants of ``p`` (decays are exp() calls), computed once per params
    object: the streaming path would otherwise spend a tenth of a step on them."""
    c = _FAST_CONSTS.get(id(p))
    if c is not None and c.params is p:
        return c
    rule = _rule_consts(p)
    a_pre, a_post, amp_pre, amp_post, g_post, g_pre, _, _ = rule
    dc = isinstance(p, DiehlCookSTDPParams)
    a_post2 = decay_factor(p.tau_post2, p.dt) if dc else 1.0
    lo, hi = bounds_of(p, UNIT_BOUNDS)
    packed = np.array(
        [a_pre, a_post, a_post2, amp_pre, amp_post, g_post, g_pre, lo, hi, p.rate_cap]
    )  # the C kernel reads it only
    if len(_FAST_CONSTS) > 256:  # params objects come and go (guard rollbacks, re-attach)
        _FAST_CONSTS.clear()
    c = _FAST_CONSTS[id(p)] = _FastConsts(p, rule, dc, a_post2, lo, hi, packed)
    return c


def stdp_fast(
    p: object, w: np.ndarray, pre: np.ndarray, post: np.ndarray, state: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """In-place float fast path of :func:`stdp_rule_update` + clipping on float32
    weights ``w`` (numba when installed, else event-driven numpy); returns the new
    traces. Equal to the pure update to rounding (tested)."""
    c = _fast_consts(p)
    a_pre, a_post, amp_pre, amp_post, g_post, g_pre, mode, mult = c.rule
    dc, a_post2, lo, hi = c.dc, c.a_post2, c.lo, c.hi
    acc = _accel.kernels()
    if acc is not None and w.flags.c_contiguous and w.flags.writeable:
        tr = [np.array(state[k], np.float64) for k in ("pre", "post", "post2")]
        acc[1](w, pre[None], post[None], tr[0], tr[1], tr[2], c.packed, mode == "nearest", mult, dc)
        return {"pre": tr[0], "post": tr[1], "post2": tr[2]}
    pre, post = _gate(pre, post, p)
    x, y, y2 = state["pre"] * a_pre, state["post"] * a_post, state["post2"] * a_post2
    rows, cols = np.flatnonzero(post), np.flatnonzero(pre)
    if rows.size or cols.size:
        gain = (g_post * y2[rows] if dc else g_post) * post[rows]
        _event_apply(w, rows, cols, gain, x, g_pre * pre[cols], y, mult, lo, hi)
    return _traces_after(p, x, y, y2, pre, post)


def stdp_fast_plan(
    p: object,
    w: np.ndarray,
    pre: np.ndarray,
    post: np.ndarray,
    state: dict[str, np.ndarray],
    post_sum: np.ndarray | None,
) -> Callable[[], None] | None:
    """:func:`stdp_fast` bound to fixed arrays (the compiled kernel's streaming step, see
    :func:`~neuroplast.plasticity._native_stdp.step_plan`): each call of the result is one
    :func:`stdp_fast` step on ``w`` and the traces in ``state``, updated in place (the same
    arithmetic as the compiled ``stdp_run``, hence the same bits), plus ``post_sum += post``.
    ``None`` without the extension or for arrays it does not take."""
    from neuroplast.plasticity._native_stdp import step_plan

    if _accel.which() != "native":  # the kernels stdp_fast uses (numba or numpy otherwise)
        return None
    c = _fast_consts(p)
    mode, mult = c.rule[6], c.rule[7]
    return step_plan(
        w, pre, post, state["pre"], state["post"], state["post2"], c.packed,
        mode == "nearest", mult, c.dc, post_sum,
    )  # fmt: skip


_STDP = {"update": stdp_rule_update, "state": _stdp_state, "batch1": True}
_FAST = {"fast": stdp_fast, "fast_plan": stdp_fast_plan}
SPECS = (
    RuleSpec("pair_stdp", PairSTDPParams, fallback_bounds=UNIT_BOUNDS, **_FAST, **_STDP),
    RuleSpec("symmetric_stdp", SymmetricSTDPParams, fallback_bounds=UNIT_BOUNDS, **_FAST, **_STDP),
    RuleSpec("diehl_cook_stdp", DiehlCookSTDPParams, fallback_bounds=UNIT_BOUNDS, **_FAST, **_STDP),
    RuleSpec("reward_stdp", RewardSTDPParams, fallback_bounds=UNIT_BOUNDS, **_STDP),
)
