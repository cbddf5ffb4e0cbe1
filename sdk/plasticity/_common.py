"""Shared validation and weight-bound helpers for plasticity rules.

Weight layout everywhere in this package: ``w`` has shape ``(n_post, n_pre)``, i.e.
``(out_features, in_features)`` like a Linear layer, so ``post = w @ pre``. One row is
the set of incoming synapses of one postsynaptic neuron.
"""

from __future__ import annotations

import math

import numpy as np

from neuroplast.checks import is_real as _is_real
from neuroplast.checks import require_real
from neuroplast.errors import DataError, PlasticityError

__all__ = [
    "as_float_array",
    "check_finite",
    "check_weight",
    "clip_weights",
    "decay_factor",
    "require",
    "require_positive",
    "require_nonnegative",
    "require_choice",
    "require_bounds",
    "require_rate_cap",
    "bounds_of",
    "saturated",
]


def require(cond: bool, msg: str) -> None:
    """Raise :class:`PlasticityError` with ``msg`` unless ``cond`` holds."""
    if not cond:
        raise PlasticityError(msg)


def require_positive(owner: str, **values: float) -> None:
    """Every named value must be a finite real number > 0."""
    require_real(PlasticityError, owner, 0.0, open_lo=True, **values)


def require_nonnegative(owner: str, **values: float) -> None:
    """Every named value must be a finite real number >= 0."""
    require_real(PlasticityError, owner, 0.0, **values)


def require_choice(owner: str, name: str, value: object, choices: tuple) -> None:
    """``value`` must be one of ``choices``."""
    if value not in choices:
        raise PlasticityError(f"{owner}.{name} must be one of {choices}, got {value!r}")


def require_bounds(owner: str, w_min: float | None, w_max: float | None) -> None:
    """Weight bounds must be numbers (or +-inf) with ``w_min < w_max``; ``None`` means
    "the layer's own range and sign", resolved by the engine when the rule is bound."""
    for name, v in (("w_min", w_min), ("w_max", w_max)):
        if v is not None and (not _is_real(v) or math.isnan(float(v))):
            raise PlasticityError(f"{owner}.{name} must be a number or None, got {v!r}")
    if w_min is not None and w_max is not None and not float(w_min) < float(w_max):
        raise PlasticityError(f"{owner}: need w_min < w_max, got w_min={w_min}, w_max={w_max}")


def bounds_of(
    p: object, default: tuple[float, float] = (-math.inf, math.inf)
) -> tuple[float, float]:
    """``(w_min, w_max)`` of a params object as floats; a bound left ``None`` (the
    engine resolves it to the layer's range) is ``default`` in the pure functions."""
    lo, hi = getattr(p, "w_min", None), getattr(p, "w_max", None)
    return (default[0] if lo is None else float(lo), default[1] if hi is None else float(hi))


def require_rate_cap(owner: str, rate_cap: float) -> None:
    """``0 < rate_cap <= 1`` (the share of active inputs above which a step is ignored)."""
    if not _is_real(rate_cap) or not 0.0 < float(rate_cap) <= 1.0:
        raise PlasticityError(f"{owner}.rate_cap must be in (0, 1], got {rate_cap!r}")


def saturated(pre: np.ndarray, rate_cap: float) -> bool:
    """True when more than ``rate_cap`` of the inputs, and more than one, are active
    (nonzero) this step: a saturated (all-ones, burst) step carries no timing
    information, so the spike rules ignore it (no weight change, no trace increment;
    traces still decay)."""
    n = np.count_nonzero(pre)
    return bool(n > 1 and n > rate_cap * pre.size)


def decay_factor(tau: float, dt: float) -> float:
    """Per-step decay ``alpha = exp(-dt / tau)`` of an exponential trace (tau, dt same unit)."""
    return float(math.exp(-dt / tau))


def as_float_array(x: object, name: str, ndim: int | tuple[int, ...] | None = None) -> np.ndarray:
    """Convert ``x`` to a float64 array, checking rank and finiteness (raises DataError)."""
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name}: cannot be read as a numeric array ({exc})") from None
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if a.ndim not in allowed:
            raise DataError(f"{name}: expected {allowed} dimension(s), got shape {a.shape}")
    check_finite(a, name)
    return a


def check_finite(a: np.ndarray, name: str) -> None:
    """Raise :class:`DataError` if ``a`` holds NaN or Inf (before it can reach weights)."""
    if a.dtype.kind in "fc" and not np.isfinite(a).all():
        bad = int(np.size(a) - np.count_nonzero(np.isfinite(a)))
        raise DataError(f"{name}: contains {bad} NaN/Inf value(s); refusing to update weights")


def check_weight(w: object, name: str = "w") -> np.ndarray:
    """Weights must be a finite 2-D array ``(n_post, n_pre)``; returns a float64 view/copy."""
    return as_float_array(w, name, ndim=2)


def check_len(a: np.ndarray, n: int, name: str, what: str) -> None:
    """``a`` must have last dimension ``n``."""
    if a.shape[-1] != n:
        raise DataError(f"{name}: expected {n} {what} (last dim), got shape {a.shape}")


def clip_weights(w: np.ndarray, w_min: float, w_max: float) -> np.ndarray:
    """Enforce weight bounds in place and return ``w``."""
    np.clip(w, w_min, w_max, out=w)
    return w
