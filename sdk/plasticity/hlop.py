"""HLOP: Hebbian-learning-based orthogonal projection (Xiao et al., ICLR 2024).

``k`` lateral subspace neurons with weights ``H`` (k, n) see presynaptic activity
``x`` (n,):  ``y = H x``; Oja-subspace update ``dH = eta * y (x - H^T y)^T``
(Hebbian ``y x^T`` minus anti-Hebbian lateral ``y y^T H``), batch-averaged, clipped to
``+-clip``, smoothed by momentum ``M <- m M + (1-m) dH``, ``H <- H + M`` on rows that
are not frozen. Rows converge to an orthonormal basis of the principal subspace of
``E[x x^T]``. For continual learning, each task *adds* rows (initialised orthogonal to
the existing ones), learns them with old rows frozen, then *merges* (freezes) them.
Any learning rule can then use ``x~ = x - H^T H x`` in place of ``x`` so its update is
orthogonal to the old tasks' input subspace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from neuroplast.errors import DataError
from neuroplast.plasticity._common import (
    as_float_array,
    check_len,
    require,
    require_nonnegative,
    require_positive,
)
from neuroplast.plasticity.spec import RuleSpec, StateDecl, StepIO

__all__ = [
    "HLOPParams",
    "HLOPState",
    "hlop_init",
    "hlop_add_rows",
    "hlop_freeze",
    "hlop_update",
    "hlop_project",
    "hlop_orthonormality_error",
    "hlop_rule_update",
]


@dataclass(frozen=True)
class HLOPParams:
    """HLOP learning parameters: ``lr`` (eta), ``momentum`` m (0.9 in the paper),
    ``clip`` on ``|dH|`` (10), ``iterations`` per call (5 in the paper)."""

    lr: float = 1e-2
    momentum: float = 0.0
    clip: float = 10.0
    iterations: int = 1

    def __post_init__(self) -> None:
        require_positive("HLOPParams", lr=self.lr, clip=self.clip)
        require_nonnegative("HLOPParams", momentum=self.momentum)
        require(self.momentum < 1.0, f"HLOPParams.momentum must be < 1, got {self.momentum}")
        require(
            isinstance(self.iterations, int) and self.iterations >= 1,
            f"HLOPParams.iterations must be an int >= 1, got {self.iterations!r}",
        )


class HLOPState(NamedTuple):
    """``H`` (k, n) subspace weights, ``frozen`` (k,) bool, ``M`` (k, n) momentum."""

    H: np.ndarray
    frozen: np.ndarray
    M: np.ndarray


def hlop_init(n: int) -> HLOPState:
    """Empty subspace over ``n`` input features (``k = 0``)."""
    require(isinstance(n, int) and n > 0, f"hlop_init: n must be a positive int, got {n!r}")
    return HLOPState(np.zeros((0, n)), np.zeros(0, dtype=bool), np.zeros((0, n)))


def hlop_add_rows(
    state: HLOPState, k: int, rng: np.random.Generator, scale: float = 0.1
) -> HLOPState:
    """Add ``k`` trainable rows, random and orthogonal to the existing rows and to each
    other (Gram-Schmidt via QR), with norm ``scale``."""
    n = state.H.shape[1]
    require(isinstance(k, int) and k >= 0, f"hlop_add_rows: k must be an int >= 0, got {k!r}")
    require(state.H.shape[0] + k <= n, f"hlop_add_rows: {state.H.shape[0]}+{k} rows > n={n}")
    if k == 0:
        return state
    r = rng.standard_normal((n, k))
    if state.H.shape[0]:
        q_old, _ = np.linalg.qr(state.H.T)
        r -= q_old @ (q_old.T @ r)
    q, _ = np.linalg.qr(r)
    new = scale * q.T
    return HLOPState(
        np.vstack([state.H, new]),
        np.concatenate([state.frozen, np.zeros(k, dtype=bool)]),
        np.vstack([state.M, np.zeros_like(new)]),
    )


def hlop_freeze(state: HLOPState) -> HLOPState:
    """Merge: freeze every row (end of a task); momentum is cleared."""
    return HLOPState(state.H.copy(), np.ones_like(state.frozen), np.zeros_like(state.M))


def hlop_update(state: HLOPState, x: object, p: HLOPParams) -> HLOPState:
    """``p.iterations`` Oja-subspace steps on a sample ``(n,)`` or batch ``(B, n)``;
    frozen rows do not change but take part in the reconstruction ``H^T y``."""
    xb = as_float_array(x, "x", ndim=(1, 2))
    check_len(xb, state.H.shape[1], "x", "features")
    xb = xb[None] if xb.ndim == 1 else xb
    H, M = state.H.copy(), state.M.copy()
    train = ~state.frozen
    if not train.any():
        return state
    for _ in range(p.iterations):
        y = xb @ H.T  # (B, k)
        dH = y.T @ (xb - y @ H) / xb.shape[0]
        np.clip(dH, -p.clip, p.clip, out=dH)
        if p.momentum > 0:
            M[train] = p.momentum * M[train] + (1 - p.momentum) * dH[train]
            H[train] += p.lr * M[train]
        else:
            H[train] += p.lr * dH[train]
    if not np.isfinite(H).all():
        raise DataError("hlop_update diverged (non-finite H); lower HLOPParams.lr")
    return HLOPState(H, state.frozen.copy(), M)


def hlop_project(H: np.ndarray, x: object) -> np.ndarray:
    """``x~ = x - H^T (H x)`` for ``x`` (n,) or (B, n): the component orthogonal to
    the subspace spanned by ``H`` (exact when H's rows are orthonormal)."""
    xb = as_float_array(x, "x", ndim=(1, 2))
    check_len(xb, H.shape[1], "x", "features")
    return xb - (xb @ H.T) @ H


def hlop_orthonormality_error(H: np.ndarray) -> float:
    """``||H H^T - I||_2``: how far the projection is from exact."""
    if H.shape[0] == 0:
        return 0.0
    return float(np.linalg.norm(H @ H.T - np.eye(H.shape[0]), 2))


# --------------------------------------------------------------------------- engine form


def _hlop_state(p: HLOPParams, n_post: int, n_pre: int) -> StateDecl:
    return {
        "H": (("k", n_pre), "float64"),
        "frozen": (("k",), "int8"),
        "M": (("k", n_pre), "float64"),
    }


def hlop_rule_update(p: HLOPParams, io: StepIO, state: dict) -> tuple:
    """Engine form: learn the subspace of the layer's input (weights unchanged)."""
    st = HLOPState(state["H"], state["frozen"].astype(bool), state["M"])
    if st.frozen.all():
        return None, state
    st = hlop_update(st, io.pre, p)
    return None, {"H": st.H, "frozen": st.frozen.astype(np.int8), "M": st.M}


SPECS = (RuleSpec("hlop", HLOPParams, hlop_rule_update, _hlop_state, target="inputs", post=False),)
