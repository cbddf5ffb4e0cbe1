"""Accuracy of per-ms motion decisions: per step, after warm-up, per movie, and against
the time since the last motion switch."""

from __future__ import annotations

import numpy as np

from neuroplast.apps.motion.simulate import N_CLASSES, N_DIRECTIONS

__all__ = [
    "accuracy_per_step",
    "ms_since_switch",
    "accuracy_vs_since_switch",
    "score",
    "max_factor_within",
]


def accuracy_per_step(evidence: np.ndarray, labels: np.ndarray, skip: int = 0) -> float:
    """Fraction of time steps (after ``skip``) where ``argmax_c evidence == label``."""
    pred = np.argmax(evidence, axis=-1)
    return float(np.mean(pred[..., skip:] == np.asarray(labels)[..., skip:]))


def ms_since_switch(labels: np.ndarray) -> np.ndarray:
    """Per step, the ms since the label last changed (``0`` at a switch and at ``t = 0``,
    where the movie starts with an empty delay window); ``labels`` (..., T)."""
    labels = np.asarray(labels)
    new = np.ones(labels.shape, dtype=bool)
    new[..., 1:] = labels[..., 1:] != labels[..., :-1]
    t = np.broadcast_to(np.arange(labels.shape[-1]), labels.shape)
    last = np.maximum.accumulate(np.where(new, t, 0), axis=-1)
    return t - last


def accuracy_vs_since_switch(
    evidence: np.ndarray, labels: np.ndarray, max_ms: int = 30
) -> dict[int, tuple[float, int]]:
    """``{k: (accuracy, steps)}`` over the steps exactly ``k`` ms after a switch
    (``k < max_ms``; steps further from a switch are pooled into ``max_ms``)."""
    since = np.minimum(ms_since_switch(labels), max_ms)
    hit = np.argmax(evidence, -1) == labels
    return {
        int(k): (float(hit[since == k].mean()), int(np.sum(since == k)))
        for k in range(max_ms + 1)
        if np.any(since == k)
    }


def score(evidence: np.ndarray, labels: np.ndarray, n_delays: int) -> dict:
    """Accuracy numbers of per-ms class evidence ``(N, T, C)`` against labels ``(N, T)``.

    ``per_step_top1``: fraction of 1-ms steps with ``argmax_c evidence == label``;
    ``..._after_warmup``: steps ``t >= n_delays`` (the delay window is full);
    ``per_movie_top1`` (constant-motion movies only): the reference notebook's decision,
    ``argmax_c`` of the evidence averaged over the steps after warm-up.
    """
    pred = np.argmax(evidence, -1)
    counts = np.bincount(labels.ravel(), minlength=N_CLASSES)
    out = {
        "per_step_top1": accuracy_per_step(evidence, labels),
        "per_step_top1_after_warmup": accuracy_per_step(evidence, labels, skip=n_delays),
        "chance": 1.0 / N_CLASSES,
        "majority_class": float(counts.max() / counts.sum()),
        "direction_only": float(np.mean(pred % N_DIRECTIONS == labels % N_DIRECTIONS)),
        "speed_only": float(np.mean(pred // N_DIRECTIONS == labels // N_DIRECTIONS)),
        "n_test_movies": int(labels.shape[0]),
        "n_steps": int(labels.size),
    }
    if np.all(labels == labels[:, :1]):
        movie = evidence[:, n_delays:].mean(1).argmax(-1)
        out["per_movie_top1"] = float(np.mean(movie == labels[:, 0]))
    return out


def max_factor_within(sweep: list[dict], peak: float, key: str = "accuracy") -> int:
    """Largest pruning factor such that it and every smaller one stay within 5 points."""
    best = 1
    for s in sweep:
        if s[key] < peak - 0.05:
            break
        best = s["factor"]
    return best
