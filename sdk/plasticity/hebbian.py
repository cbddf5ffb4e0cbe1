"""Rate-based Hebbian learning: plain Hebbian, Oja's rule, the delta rule readout and its
fixed point learned online (least squares).

Weights ``w`` have shape ``(n_post, n_pre)``; ``x`` is presynaptic activity (rates or
graded values, any unit), ``y = w @ x`` the postsynaptic response.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neuroplast.plasticity._common import (
    as_float_array,
    bounds_of,
    check_len,
    check_weight,
    require_bounds,
    require_nonnegative,
    require_positive,
)
from neuroplast.plasticity.spec import RuleSpec, StepIO

__all__ = [
    "HebbianParams",
    "OjaParams",
    "DeltaRuleParams",
    "hebbian_delta",
    "hebbian_update",
    "oja_delta",
    "oja_update",
    "delta_rule_delta",
    "delta_rule_update",
    "hebbian_rule_update",
    "oja_rule_update",
    "delta_rule_rule_update",
    "LeastSquaresParams",
    "least_squares_rule_update",
]


def _batch(x: object, n: int, name: str) -> np.ndarray:
    """Accept ``(n,)`` or ``(B, n)``; return ``(B, n)``."""
    a = as_float_array(x, name, ndim=(1, 2))
    check_len(a, n, name, "features")
    return a[None, :] if a.ndim == 1 else a


@dataclass(frozen=True)
class HebbianParams:
    """Hebbian rule with activity-gated weight decay:
    ``dw_i = lr * (y_i x^T - decay * |y_i| w_i)`` (Grossberg's instar for ``decay = 1``
    and ``y >= 0``): a neuron's weights decay only while it is active, so a neuron that
    stays silent (or a silent/saturated stream it does not answer) does not forget.

    ``y`` is the given postsynaptic activity (or ``w @ x`` if omitted); batches are
    averaged. Bounds ``[w_min, w_max]`` are enforced after each update (``None``: the
    layer's range in the engine, ``[-1, 1]`` in the pure functions; Oja and the delta
    rule: ``[-10, 10]``). In the engine a silent step (``x = 0``)
    changes nothing: the decay acts only while there is input, so silence cannot
    erase a layer.
    """

    lr: float = 1e-3
    decay: float = 0.0
    w_min: float | None = None
    w_max: float | None = None

    def __post_init__(self) -> None:
        require_nonnegative("HebbianParams", lr=self.lr, decay=self.decay)
        require_bounds("HebbianParams", self.w_min, self.w_max)


def hebbian_delta(
    w: np.ndarray, x: object, p: HebbianParams, y: object | None = None
) -> np.ndarray:
    """``dw = lr * mean_b (y_b x_b^T - decay * |y_b| w)`` (decay per active row)."""
    w = check_weight(w)
    xb = _batch(x, w.shape[1], "x")
    yb = xb @ w.T if y is None else _batch(y, w.shape[0], "y")
    b = xb.shape[0]
    return p.lr * (yb.T @ xb / b - p.decay * np.abs(yb).mean(axis=0)[:, None] * w)


def hebbian_update(
    w: np.ndarray, x: object, p: HebbianParams, y: object | None = None
) -> np.ndarray:
    """Clipped Hebbian update; returns a new array."""
    return np.clip(check_weight(w) + hebbian_delta(w, x, p, y), *bounds_of(p, (-1.0, 1.0)))


@dataclass(frozen=True)
class OjaParams:
    """Oja's rule (one row) / Oja's subspace rule (several rows).

    ``y = w x``; ``dw = lr * (y x^T - y y^T w)``. For a single output neuron this is
    ``dw = lr * y (x - y w)``, whose fixed point is the unit-norm first principal
    component of ``E[x x^T]``; with ``k`` rows it converges to an orthonormal basis of
    the top-``k`` principal subspace. Bounds guard against divergence at large ``lr``.
    """

    lr: float = 1e-3
    w_min: float | None = None
    w_max: float | None = None

    def __post_init__(self) -> None:
        require_positive("OjaParams", lr=self.lr)
        require_bounds("OjaParams", self.w_min, self.w_max)


def oja_delta(w: np.ndarray, x: object, p: OjaParams) -> np.ndarray:
    """``dw = lr * mean_b (y_b x_b^T - y_b y_b^T w)`` with ``y_b = w x_b``."""
    w = check_weight(w)
    xb = _batch(x, w.shape[1], "x")
    yb = xb @ w.T
    b = xb.shape[0]
    return p.lr * (yb.T @ xb - (yb.T @ yb) @ w) / b


def oja_update(w: np.ndarray, x: object, p: OjaParams) -> np.ndarray:
    """Clipped Oja update; returns a new array."""
    return np.clip(check_weight(w) + oja_delta(w, x, p), *bounds_of(p, (-10.0, 10.0)))


@dataclass(frozen=True)
class DeltaRuleParams:
    """Local delta (Widrow-Hoff / LMS) rule for a linear readout ``y = w x``.

    ``dw = lr * (t - w x) x_u^T`` where ``x_u`` is the input used for the update:
    ``x`` itself, or a projected input (e.g. HLOP's ``x - H^T H x``) so that learning
    leaves old tasks' responses unchanged. Batches are averaged.
    """

    lr: float = 1e-2
    w_min: float | None = None
    w_max: float | None = None

    def __post_init__(self) -> None:
        require_positive("DeltaRuleParams", lr=self.lr)
        require_bounds("DeltaRuleParams", self.w_min, self.w_max)


def delta_rule_delta(
    w: np.ndarray,
    x: object,
    target: object,
    p: DeltaRuleParams,
    x_update: object | None = None,
) -> np.ndarray:
    """``dw = lr * mean_b (t_b - w x_b) x_u,b^T``."""
    w = check_weight(w)
    xb = _batch(x, w.shape[1], "x")
    tb = _batch(target, w.shape[0], "target")
    if tb.shape[0] != xb.shape[0]:
        from neuroplast.errors import DataError

        raise DataError(f"target batch {tb.shape[0]} != input batch {xb.shape[0]}")
    xu = xb if x_update is None else _batch(x_update, w.shape[1], "x_update")
    err = tb - xb @ w.T
    return p.lr * err.T @ xu / xb.shape[0]


def delta_rule_update(
    w: np.ndarray,
    x: object,
    target: object,
    p: DeltaRuleParams,
    x_update: object | None = None,
) -> np.ndarray:
    """Clipped delta-rule update; returns a new array."""
    return np.clip(
        check_weight(w) + delta_rule_delta(w, x, target, p, x_update), *bounds_of(p, (-10.0, 10.0))
    )


# --------------------------------------------------------------------------- engine form


def hebbian_rule_update(p: HebbianParams, io: StepIO, state: dict) -> tuple:
    """Engine form: :func:`hebbian_delta` on the (HLOP-projected) input and the post
    activity; nothing on a silent step."""
    if not np.any(io.pre):
        return None, state
    return hebbian_delta(io.w, io.pre_u, p, io.post), state


def oja_rule_update(p: OjaParams, io: StepIO, state: dict) -> tuple:
    """Engine form: :func:`oja_delta` (``y = w x``; self-normalising)."""
    return oja_delta(io.w, io.pre, p), state


def delta_rule_rule_update(p: DeltaRuleParams, io: StepIO, state: dict) -> tuple:
    """Engine form of the delta rule against the layer's actual output ``y``:
    ``dw = lr * mean_b (t_b - y_b) x_u,b^T``; no target this step: no change."""
    if io.target is None:
        return None, state
    y = io.post
    t = np.broadcast_to(io.target, y.shape) if io.target.ndim == 1 else io.target
    if t.shape != y.shape:
        from neuroplast.errors import DataError

        raise DataError(f"delta-rule target has shape {t.shape}, need {y.shape}")
    return p.lr * (t - y).T @ io.pre_u / y.shape[0], state


@dataclass(frozen=True)
class LeastSquaresParams:
    """The delta rule's fixed point, learned online: ridge regression per readout row.

    Iterating the delta rule with weight decay ``ridge`` on samples ``x_i`` with targets
    ``t_i`` and sample weights ``a_i`` converges to::

        w_j = argmin_w  sum_i a_ij (t_ij - w . x_i)^2 + ridge ||w||^2
            = (G_j + ridge I)^-1 c_j,   G_j = sum_i a_ij x_i x_i^T,  c_j = sum_i a_ij t_ij x_i

    This rule keeps the sufficient statistics ``G`` (n_post, n_pre, n_pre) and ``c``
    (n_post, n_pre) as state, adds each step's batch to them and sets every row that
    learned to its fixed point (one solve per row and step; no learning rate, exact
    after any number of steps). The step's ``reward`` is the sample weight ``a``: a
    scalar or one per row (``None``: 1); negative values count as 0 and a row with
    weight 0 does not change. No target this step: no change. Weights are unbounded
    (the ridge term keeps them finite); integer layers round as every rule does.

    ``shared=True``: every row weighs every sample alike (``a_ij = a_i``), so the rows
    share one ``G`` (n_pre, n_pre): ``n_post`` times less state and one factorisation
    per step (``W = ((G + ridge I)^-1 C^T)^T``) instead of one per row. A step's reward
    must then be one number (a scalar, or the same value on every row); rows with
    different weights need the per-row form.
    """

    ridge: float = 0.1
    shared: bool = False

    def __post_init__(self) -> None:
        require_positive("LeastSquaresParams", ridge=self.ridge)


def _ls_state(p: LeastSquaresParams, n_post: int, n_pre: int) -> dict:
    g_shape = (n_pre, n_pre) if p.shared else (n_post, n_pre, n_pre)
    return {"G": (g_shape, "float64"), "c": ((n_post, n_pre), "float64")}


def least_squares_rule_update(p: LeastSquaresParams, io: StepIO, state: dict) -> tuple:
    """Engine form of :class:`LeastSquaresParams` (pure: returns new ``G``, ``c``)."""
    if io.target is None:
        return None, state
    w = io.w
    n_post, n_pre = w.shape
    x = io.pre
    t = np.broadcast_to(io.target, (x.shape[0], n_post)) if io.target.ndim == 1 else io.target
    if t.shape != (x.shape[0], n_post):
        from neuroplast.errors import DataError

        raise DataError(f"least-squares target has shape {t.shape}, need {(x.shape[0], n_post)}")
    a = np.ones(n_post) if io.reward is None else np.asarray(io.reward, np.float64)
    a = np.maximum(np.broadcast_to(a, (n_post,)), 0.0)
    if p.shared:
        if np.any(a != a[0]):
            from neuroplast.errors import PlasticityError

            raise PlasticityError(
                "least_squares(shared=True) takes one sample weight for all rows, got "
                f"{np.unique(a).size} different ones; use shared=False for per-row weights"
            )
        if a[0] == 0:
            return None, state
        G = state["G"] + a[0] * (x.T @ x)
        c = state["c"] + a[0] * (t.T @ x)
        sol = np.linalg.solve(G + p.ridge * np.eye(n_pre), c.T).T
        return sol - w, {"G": G, "c": c}
    rows = np.flatnonzero(a > 0)
    if not rows.size:
        return None, state
    G, c = state["G"].copy(), state["c"].copy()
    G[rows] += a[rows, None, None] * (x.T @ x)[None]
    c[rows] += a[rows, None] * (t[:, rows].T @ x)
    dw = np.zeros_like(w)
    eye = p.ridge * np.eye(n_pre)
    dw[rows] = np.linalg.solve(G[rows] + eye, c[rows][..., None])[..., 0] - w[rows]
    return dw, {"G": G, "c": c}


SPECS = (
    RuleSpec("hebbian", HebbianParams, hebbian_rule_update),
    RuleSpec("oja", OjaParams, oja_rule_update, post=False, fallback_bounds=(-10.0, 10.0)),
    RuleSpec("delta_rule", DeltaRuleParams, delta_rule_rule_update, fallback_bounds=(-10.0, 10.0)),
    RuleSpec("least_squares", LeastSquaresParams, least_squares_rule_update, _ls_state, post=False),
)
