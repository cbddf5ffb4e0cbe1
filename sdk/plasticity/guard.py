"""LearningGuard: roll back on-device learning that hurts a held-out check.

Every ``every`` learning steps the guard evaluates ``check(rt) -> metric`` (higher is
better, e.g. accuracy on a small held-out set) with learning switched off and the
neuron state preserved. The bar is fixed, not the last accepted score (small accepted
drops would ratchet down)::

    reference = max(baseline, best accepted metric)      # never decreases
    keep      = metric >= max(reference - max_drop, floor)

``baseline`` is the metric before learning; ``floor`` an absolute minimum (default
``None``: none). A rejected state is rolled back to the last accepted one (weights,
neuron states, plasticity traces and thresholds); an accepted one becomes the good
state (and, with ``path``, is saved atomically with ``rt.save_state``). Every
decision is passed to ``report`` (e.g. ``print``) and appended to the engine's
``log``, which is saved with the learned state (``plasticity/guard``).
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
        max_drop: allowed drop below the reference (see the module docstring).
        floor: absolute minimum metric (None: none).
        path: optional file; every accepted state is saved there atomically.
        report: optional ``report(line)`` called with each decision.
    """

    def __init__(
        self,
        rt: Any,
        check: Callable[[Any], float],
        every: int = 100,
        max_drop: float = 0.02,
        path: str | Path | None = None,
        floor: float | None = None,
        report: Callable[[str], Any] | None = None,
    ) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise PlasticityError(f"LearningGuard.every must be an int >= 1, got {every!r}")
        if not isinstance(max_drop, (int, float)) or not math.isfinite(max_drop) or max_drop < 0:
            raise PlasticityError(f"LearningGuard.max_drop must be >= 0, got {max_drop!r}")
        if floor is not None and (
            isinstance(floor, bool)
            or not isinstance(floor, (int, float))
            or not math.isfinite(floor)
        ):
            raise PlasticityError(f"LearningGuard.floor must be a finite number, got {floor!r}")
        if not callable(check):
            raise PlasticityError("LearningGuard.check must be callable: check(rt) -> float")
        self.rt, self.check, self.every, self.max_drop = rt, check, every, float(max_drop)
        self.path = None if path is None else Path(path)
        self.steps = 0
        self.rollbacks = 0
        self.history: list[tuple[int, float, bool]] = []
        self.floor = None if floor is None else float(floor)
        self.report = report
        self.baseline = self.good_metric = self.best = self._evaluate()
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

    @property
    def bar(self) -> float:
        """The metric a state needs to be kept."""
        bar = max(self.baseline, self.best) - self.max_drop
        return bar if self.floor is None else max(bar, self.floor)

    def check_now(self) -> bool:
        """Evaluate now; returns True if the state was kept, False if rolled back."""
        m = self._evaluate()
        bar = self.bar
        keep = m >= bar
        self.history.append((self.steps, m, keep))
        entry = {
            "step": int(self.steps),
            "metric": m,
            "bar": bar,
            "baseline": self.baseline,
            "kept": bool(keep),
        }
        eng = self.rt.plasticity
        past = list(getattr(eng, "log", []))
        if hasattr(eng, "log"):
            eng.log = past + [entry]  # before the copy: the saved state holds the decision
        if keep:
            self.good_metric, self.good_state = m, _copy(self.rt.state_dict())
            self.best = max(self.best, m)
        else:
            self._restore(self.good_state)
            self.rollbacks += 1
            if hasattr(eng, "log"):
                eng.log = past + [entry]  # the rollback restored an older log
        if keep and self.path is not None:
            self.rt.save_state(self.path)
        if self.report is not None:
            self.report(
                f"guard step {self.steps}: check {m:.4g} vs bar {bar:.4g} "
                f"(baseline {self.baseline:.4g}): {'kept' if keep else 'rolled back'}"
            )
        return keep
