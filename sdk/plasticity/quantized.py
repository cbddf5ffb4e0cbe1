"""Integer-mode weight updates: unbiased stochastic rounding of float updates.

Choice (documented in docs/plasticity.md): **stochastic rounding with a seeded
``numpy.random.Generator``**, not an int16 shadow accumulator. A rule computes its float
update ``dw`` on the dequantized weights ``w = s * q``; in units of the weight scale
``u = dw / s`` it is rounded to ``floor(u + U)`` with ``U ~ Uniform[0, 1)``, so
``E[round(u)] = u`` exactly (unbiased), and the int8 weight moves by that integer.
Why: it keeps the on-device state at one int8 per synapse (a shadow accumulator
doubles or triples it), updates far below one LSB still act in expectation, and the
generator's state is saved with the learned state so runs are reproducible.
Bounds: the result is clipped to ``[max(q_min, ceil(w_min/s)), min(q_max,
floor(w_max/s))]`` -- only clipping at a bound makes the expected update differ.
"""

from __future__ import annotations

import numpy as np

from neuroplast.errors import DataError, PlasticityError
from neuroplast.plasticity._common import check_finite

__all__ = ["stochastic_round", "quantized_apply", "int_bounds"]


def stochastic_round(u: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``floor(u + U)``, ``U ~ Uniform[0, 1)``; unbiased: ``E[result] = u``. int64."""
    u = np.asarray(u, dtype=np.float64)
    return np.floor(u + rng.random(u.shape)).astype(np.int64)


def int_bounds(
    scale: np.ndarray | float, w_min: float, w_max: float, q_min: int = -128, q_max: int = 127
) -> tuple[np.ndarray, np.ndarray]:
    """Integer bounds (per row when ``scale`` is per row) implied by float bounds."""
    s = np.asarray(scale, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        lo = np.maximum(q_min, np.ceil(np.float64(w_min) / s))
        hi = np.minimum(q_max, np.floor(np.float64(w_max) / s))
    return lo, hi


def quantized_apply(
    q: np.ndarray,
    dw: np.ndarray,
    scale: np.ndarray | float,
    rng: np.random.Generator,
    w_min: float = -np.inf,
    w_max: float = np.inf,
    q_min: int = -128,
    q_max: int = 127,
) -> np.ndarray:
    """Apply float update ``dw`` to integer weights ``q`` (scale ``scale``, scalar or
    per output row ``(n_post,)``) by stochastic rounding; returns a new array of
    ``q``'s dtype. Only nonzero entries of ``dw`` draw random numbers (sparse STDP)."""
    q = np.asarray(q)
    if q.dtype.kind not in "iu":
        raise PlasticityError(f"quantized_apply: weights must be integer, got {q.dtype}")
    dw = np.asarray(dw, dtype=np.float64)
    check_finite(dw, "dw")
    if dw.shape != q.shape:
        raise DataError(f"quantized_apply: dw shape {dw.shape} != weight shape {q.shape}")
    s = np.asarray(scale, dtype=np.float64)
    if (s <= 0).any() or not np.isfinite(s).all():
        raise PlasticityError("quantized_apply: weight scale must be finite and > 0")
    s_full = np.broadcast_to(s.reshape(-1, *([1] * (q.ndim - 1))) if s.ndim else s, q.shape)
    lo, hi = int_bounds(s_full, w_min, w_max, q_min, q_max)
    out = q.astype(np.int64)
    idx = np.nonzero(dw)
    if idx[0].size:
        out[idx] += stochastic_round(dw[idx] / s_full[idx], rng)
    out = np.clip(out, lo, hi)
    return out.astype(q.dtype)
