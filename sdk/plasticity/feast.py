"""FEAST: competitive Hebbian layer with adaptive selection thresholds (Afshar et al. 2020).

Per event with (time-surface) input ``ts`` (n_in,): L2-normalise it; ``d = W ts``
with unit-norm rows of ``W`` (n_neurons, n_in). Among neurons with ``d_i > theta_i``
the argmax wins: ``w_win <- normalise((1-eta) w_win + eta ts)`` and
``theta_win += delta_close``. With no winner (a "miss") every ``theta -= delta_open``
(thresholds are kept in the cosine range ``[-1, 1]``, so a silent stream cannot push them
without bound).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from neuroplast.errors import PlasticityError
from neuroplast.plasticity._common import as_float_array, check_len, require_positive
from neuroplast.plasticity.spec import RuleSpec, StateDecl, StepIO

__all__ = [
    "FeastParams",
    "FeastState",
    "feast_init",
    "feast_step",
    "time_surface",
    "feast_rule_update",
]


@dataclass(frozen=True)
class FeastParams:
    """``eta`` (0.001 author / 0.01 SimpleFeast), ``delta_close`` (0.001 / 0.02),
    ``delta_open`` (0.01 / 0.2), ``theta0`` initial threshold (cosine units)."""

    eta: float = 1e-3
    delta_close: float = 1e-3
    delta_open: float = 1e-2
    theta0: float = 0.0

    def __post_init__(self) -> None:
        require_positive(
            "FeastParams", eta=self.eta, delta_close=self.delta_close, delta_open=self.delta_open
        )
        if not isinstance(self.theta0, (int, float)) or not math.isfinite(self.theta0):
            raise PlasticityError(
                f"FeastParams.theta0 must be a finite number, got {self.theta0!r}"
            )


class FeastState(NamedTuple):
    """``W`` (n_neurons, n_in) unit-norm rows, ``theta`` (n_neurons,), counters."""

    W: np.ndarray
    theta: np.ndarray
    events: int
    misses: int


def feast_init(n_neurons: int, n_in: int, rng: np.random.Generator, p: FeastParams) -> FeastState:
    """Random unit-norm weights, thresholds at ``theta0``."""
    W = rng.random((n_neurons, n_in))
    W /= np.linalg.norm(W, axis=1, keepdims=True)
    return FeastState(W, np.full(n_neurons, float(p.theta0)), 0, 0)


def feast_step(state: FeastState, ts: object, p: FeastParams) -> tuple[FeastState, int]:
    """Process one event; returns ``(new_state, winner)`` with ``winner = -1`` on a miss.
    An all-zero input is a miss (it has no direction)."""
    x = as_float_array(ts, "ts", ndim=1)
    check_len(x, state.W.shape[1], "ts", "inputs")
    nrm = np.linalg.norm(x)
    theta = state.theta.copy()
    if nrm > 0:
        x = x / nrm
        d = state.W @ x
        d_masked = np.where(d > theta, d, -np.inf)
        win = int(np.argmax(d_masked))
        if np.isfinite(d_masked[win]):
            W = state.W.copy()
            w = (1 - p.eta) * W[win] + p.eta * x
            W[win] = w / max(np.linalg.norm(w), 1e-12)
            theta[win] = min(theta[win] + p.delta_close, 1.0)  # thresholds stay in [-1, 1]
            return FeastState(W, theta, state.events + 1, state.misses), win
    theta = np.maximum(theta - p.delta_open, -1.0)  # cosine range: below -1 means "any"
    return FeastState(state.W, theta, state.events + 1, state.misses + 1), -1


def time_surface(t_last: object, t: float, tau: float) -> np.ndarray:
    """``TS = exp((t_last - t) / tau)`` (0 where a pixel never fired: ``t_last=-inf``)."""
    tl = np.asarray(t_last, dtype=np.float64)
    with np.errstate(over="ignore"):
        return np.exp(np.minimum(tl - t, 0.0) / tau)


# --------------------------------------------------------------------------- engine form


def _feast_state(p: FeastParams, n_post: int, n_pre: int) -> StateDecl:
    return {"theta": ((n_post,), "float64"), "misses": ((), "int64")}


def _feast_init(p: FeastParams, n_post: int, n_pre: int) -> dict:
    return {"theta": np.full(n_post, float(p.theta0)), "misses": np.zeros((), np.int64)}


def feast_rule_update(p: FeastParams, io: StepIO, state: dict) -> tuple:
    """Engine form: one :func:`feast_step` per sample of the batch; ``dw`` moves the
    winners' rows."""
    st = FeastState(io.w, state["theta"], 0, 0)
    misses = int(state["misses"])
    for xb in io.pre:
        st, win = feast_step(st, xb, p)
        misses += win < 0
    return st.W - io.w, {"theta": st.theta, "misses": np.array(misses, np.int64)}


SPECS = (
    RuleSpec("feast", FeastParams, feast_rule_update, _feast_state, post=False, init=_feast_init),
)
