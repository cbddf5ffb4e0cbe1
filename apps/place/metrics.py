"""Place-recognition metrics: Recall@N, precision-recall curve and its area.

``scores`` is a (Q, P) similarity matrix (higher = more similar) between Q queries and P
reference places; ``gt`` holds the true place column of each query.
"""

from __future__ import annotations

import numpy as np

from neuroplast.errors import DataError

__all__ = ["recall_at_n", "precision_recall", "pr_auc", "ranks"]


def _check(scores: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64)
    g = np.asarray(gt, dtype=np.int64)
    if s.ndim != 2 or g.shape != (s.shape[0],):
        raise DataError(f"scores must be (Q, P) and gt (Q,), got {s.shape} and {g.shape}")
    if s.shape[0] == 0:
        raise DataError("no queries to evaluate")
    if np.any(g < 0) or np.any(g >= s.shape[1]):
        raise DataError(f"gt columns must lie in [0, {s.shape[1]})")
    if not np.all(np.isfinite(s)):
        raise DataError("scores contain NaN or Inf")
    return s, g


def ranks(scores: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """0-based rank of the true place per query; ties count against the query (a tied
    wrong place ranks ahead), so an all-zero score row never counts as a hit."""
    s, g = _check(scores, gt)
    true = s[np.arange(len(g)), g]
    return (s >= true[:, None]).sum(axis=1) - 1


def recall_at_n(scores: np.ndarray, gt: np.ndarray, ns: tuple[int, ...] = (1, 5, 10)) -> dict:
    """Recall@N: fraction of queries whose true place is among the N best-scoring places."""
    r = ranks(scores, gt)
    return {int(n): float(np.mean(r < n)) for n in ns}


def precision_recall(scores: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """PR curve of single-best matching: each query proposes its top place with confidence =
    its top score; sweeping a threshold over the confidences, precision = correct accepted /
    accepted and recall = correct accepted / all queries (every query has a true match).
    Returns (precision, recall) arrays ordered by increasing recall."""
    s, g = _check(scores, gt)
    best = s.argmax(axis=1)
    conf = s.max(axis=1)
    correct = (best == g) & (ranks(s, g) == 0)
    order = np.argsort(-conf, kind="stable")
    tp = np.cumsum(correct[order])
    k = np.arange(1, len(order) + 1)
    return tp / k, tp / len(g)


def pr_auc(scores: np.ndarray, gt: np.ndarray) -> float:
    """Area under the PR curve (step integration over recall, starting at recall 0)."""
    prec, rec = precision_recall(scores, gt)
    d_rec = np.diff(np.concatenate([[0.0], rec]))
    return float(np.sum(prec * d_rec))
