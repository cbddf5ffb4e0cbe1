"""Sequence matching over consecutive queries (SeqSLAM-style add-on, after Milford & Wyeth
2012 and the journal version of the ensemble paper). Not part of the spiking model: it
post-processes any (Q, P) score matrix whose rows are consecutive frames of one traverse.

Each query row is normalised to zero mean and unit standard deviation over places (local
contrast), then the score of place p for query t is the mean over the last ``length``
queries of the normalised score along the constant-velocity diagonal:

    S_seq[t, p] = mean_{k = 0 .. L_t - 1} z[t - k, p - k],    L_t = min(length, t + 1)

with ``z = 0`` where ``p - k < 0``. Only past queries are used, so it runs online.
"""

from __future__ import annotations

import numpy as np

from neuroplast.errors import DataError

__all__ = ["sequence_scores"]


def sequence_scores(scores: np.ndarray, length: int = 5) -> np.ndarray:
    """Sequence-matched scores (Q, P) for consecutive queries; see the module docstring."""
    s = np.asarray(scores, np.float64)
    if s.ndim != 2 or s.shape[0] == 0 or not np.all(np.isfinite(s)):
        raise DataError(f"scores must be a finite (Q, P) matrix, got shape {s.shape}")
    if not isinstance(length, (int, np.integer)) or length < 1:
        raise DataError(f"sequence length must be an int >= 1, got {length!r}")
    sd = s.std(axis=1, keepdims=True)
    z = (s - s.mean(axis=1, keepdims=True)) / np.where(sd > 0, sd, 1.0)
    acc = np.zeros_like(z)
    n = np.zeros((len(z), 1))
    for k in range(min(length, len(z))):
        acc[k:, k:] += z[: len(z) - k, : z.shape[1] - k]
        n[k:] += 1
    return (acc / n).astype(np.float32)
