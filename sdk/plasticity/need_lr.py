"""Need-based learning-rate regulation ("Need is all you need", Man, Damasio, Neven 2022).

The learning rate ``eta`` is internal state that a look-ahead regulator nudges.
Every ``interval`` samples (once more than ``memory`` samples were seen):

1. "leave it": simulate one update with ``eta`` and score the ``memory`` most recent
   samples -> ``acc_leave``;
2. "take it": simulate it with ``eta' = eta + d * step`` where ``d`` comes from the
   *predicted* label's valence (``mode="valence"``, the paper: labels ``>= split`` are
   "excitatory" (+1), others "inhibitory" (-1)) -> ``acc_take``;
3. if ``acc_take > acc_leave``: ``eta += d_true * step`` with ``d_true`` the valence of
   the *true* label (paper; a wrong guess moves eta the wrong way -- the
   "vulnerability"). ``mode="search"`` instead tries both ``eta +- step`` and moves to
   the better one when it beats "leave it" (no label valence needed).

``eta`` is clipped to ``[eta_min, eta_max]``. Step size defaults to ``eta0 / 10``.
The look-ahead evaluation is model-specific, so it is passed in as a callable
``score(eta) -> accuracy`` that must not modify the model (simulate on copies).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from neuroplast.plasticity._common import (
    require,
    require_choice,
    require_positive,
)

__all__ = ["NeedLRParams", "NeedLRState", "need_lr_init", "need_lr_step", "label_valence"]


@dataclass(frozen=True)
class NeedLRParams:
    """Regulator parameters: ``eta0`` initial rate, ``step`` (0 means ``eta0/10``),
    ``interval`` (10), ``memory`` (20), ``split`` label for valence (5),
    ``eta_min`` (1e-8), ``eta_max``, ``mode`` ("valence" | "search")."""

    eta0: float = 1e-3
    step: float = 0.0
    interval: int = 10
    memory: int = 20
    split: int = 5
    eta_min: float = 1e-8
    eta_max: float = 1.0
    mode: str = "valence"

    def __post_init__(self) -> None:
        n = "NeedLRParams"
        require_positive(n, eta0=self.eta0, eta_min=self.eta_min, eta_max=self.eta_max)
        require(self.step >= 0, f"{n}.step must be >= 0, got {self.step}")
        for name in ("interval", "memory"):
            v = getattr(self, name)
            require(isinstance(v, int) and v >= 1, f"{n}.{name} must be an int >= 1, got {v!r}")
        require(self.eta_min < self.eta_max, f"{n}: need eta_min < eta_max")
        require_choice(n, "mode", self.mode, ("valence", "search"))

    @property
    def delta(self) -> float:
        """The step actually used: ``step`` or ``eta0 / 10``."""
        return self.step if self.step > 0 else self.eta0 / 10


class NeedLRState(NamedTuple):
    """``eta`` current learning rate, ``count`` samples seen, ``changes`` eta moves."""

    eta: float
    count: int
    changes: int


def need_lr_init(p: NeedLRParams) -> NeedLRState:
    """Start at ``eta0``."""
    return NeedLRState(float(p.eta0), 0, 0)


def label_valence(label: int, p: NeedLRParams) -> int:
    """+1 for "excitatory" labels (``>= split``), -1 for "inhibitory"."""
    return 1 if int(label) >= p.split else -1


def need_lr_step(
    state: NeedLRState,
    p: NeedLRParams,
    *,
    true_label: int,
    predicted_label: int,
    score: Callable[[float], float],
) -> NeedLRState:
    """Account for one sample; every ``interval`` samples (after ``memory``) run the
    look-ahead via ``score(eta)`` and return the regulated state."""
    count = state.count + 1
    eta = state.eta
    if count <= p.memory or count % p.interval:
        return NeedLRState(eta, count, state.changes)
    clip = lambda e: min(max(e, p.eta_min), p.eta_max)  # noqa: E731
    acc_leave = float(score(eta))
    if p.mode == "valence":
        d = label_valence(predicted_label, p)
        if float(score(clip(eta + d * p.delta))) > acc_leave:
            new = clip(eta + label_valence(true_label, p) * p.delta)
            return NeedLRState(new, count, state.changes + int(new != eta))
        return NeedLRState(eta, count, state.changes)
    best, best_acc = eta, acc_leave
    for d in (1, -1):
        cand = clip(eta + d * p.delta)
        acc = float(score(cand))
        if acc > best_acc:
            best, best_acc = cand, acc
    return NeedLRState(best, count, state.changes + int(best != eta))
