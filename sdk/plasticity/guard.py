"""LearningGuard: roll back on-device learning that hurts a held-out check.

Every ``every`` learning steps the guard evaluates ``check(rt) -> metric`` (higher is
better, e.g. accuracy on a small held-out set) with learning switched off and the
neuron state preserved. If the metric fell by more than ``max_drop`` below the metric
of the last good state, the runtime is restored to that state (weights, neuron
states, plasticity traces and thresholds); otherwise the current state becomes the
new good state (and, with ``path``, is saved atomically with ``rt.save_state``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from neuroplast.errors import DataError, PlasticityError

__all__ = ["LearningGuard"]


def _copy(d: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.array(v, copy=True) for k, v in d.items()}


class LearningGuard:
    """Wrap a learning :class:`~neuroplast.runtime.Runtime` with a check-and-rollback.

    Args:
        rt: the runtime (learning enabled by the caller).
        check: ``check(rt) -> float``; runs the held-out set through ``rt``.
        every: evaluate after this many guarded steps.
        max_drop: roll back when ``metric < good_metric - max_drop``.
        path: optional file; every accepted state is saved there atomically.
    """

    def __init__(
        self,
        rt: Any,
        check: Callable[[Any], float],
        every: int = 100,
        max_drop: float = 0.02,
        path: str | Path | None = None,
    ) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise PlasticityError(f"LearningGuard.every must be an int >= 1, got {every!r}")
        if not isinstance(max_drop, (int, float)) or not math.isfinite(max_drop) or max_drop < 0:
            raise PlasticityError(f"LearningGuard.max_drop must be >= 0, got {max_drop!r}")
        if not callable(check):
            raise PlasticityError("LearningGuard.check must be callable: check(rt) -> float")
        self.rt, self.check, self.every, self.max_drop = rt, check, every, float(max_drop)
        self.path = None if path is None else Path(path)
        self.steps = 0
        self.rollbacks = 0
        self.history: list[tuple[int, float, bool]] = []
        self.good_metric = self._evaluate()
        self.good_state = _copy(rt.state_dict())
        if self.path is not None:
            rt.save_state(self.path)

    def _evaluate(self) -> float:
        """Metric with learning off; the runtime's state is restored afterwards."""
        rt = self.rt
        saved, was = _copy(rt.state_dict()), rt.learning
        rt.learn(False)
        try:
            m = float(self.check(rt))
        finally:
            self._restore(saved)
            rt.learn(was)
        if not math.isfinite(m):
            raise DataError(f"LearningGuard check returned a non-finite metric {m!r}")
        return m

    def _restore(self, state: dict[str, np.ndarray]) -> None:
        self.rt.load_state_dict(_copy(state))
        sync = getattr(self.rt.plasticity, "sync", None)
        if sync is not None:  # thresholds live in neuron kernels, not in the state arrays
            sync(self.rt)

    def step(self, x: Any, reward: float | None = None) -> Any:
        """``rt.step(x, reward)``, then a check every ``every`` steps."""
        out = self.rt.step(x, reward)
        self.steps += 1
        if self.steps % self.every == 0:
            self.check_now()
        return out

    def check_now(self) -> bool:
        """Evaluate now; returns True if the state was kept, False if rolled back."""
        m = self._evaluate()
        keep = m >= self.good_metric - self.max_drop
        self.history.append((self.steps, m, keep))
        if keep:
            self.good_metric, self.good_state = m, _copy(self.rt.state_dict())
            if self.path is not None:
                self.rt.save_state(self.path)
        else:
            self._restore(self.good_state)
            self.rollbacks += 1
        return keep
