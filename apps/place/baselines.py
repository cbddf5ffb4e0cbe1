"""Non-spiking baseline: sum of absolute differences (SAD) on patch-normalised images."""

from __future__ import annotations

import numpy as np

from neuroplast.errors import DataError

__all__ = ["sad_scores"]


def sad_scores(query: np.ndarray, refs: list[np.ndarray], chunk: int = 32) -> np.ndarray:
    """Similarity = -min over reference traverses of mean |q - r| (patch-normalised pixels).

    query: (Q, D); refs: per traverse (P, D), row k = place k. Returns (Q, P) float32.
    """
    q = np.asarray(query, dtype=np.float32)
    if q.ndim != 2 or not refs:
        raise DataError(f"query must be (Q, D) with at least one reference, got {q.shape}")
    for r in refs:
        if r.ndim != 2 or r.shape[1] != q.shape[1]:
            raise DataError(f"reference shape {r.shape} does not match query width {q.shape[1]}")
    best = None
    for r in refs:
        r32 = np.asarray(r, dtype=np.float32)
        d = np.empty((q.shape[0], r32.shape[0]), dtype=np.float32)
        for a in range(0, q.shape[0], chunk):
            d[a : a + chunk] = np.abs(q[a : a + chunk, None, :] - r32[None]).mean(axis=2)
        best = d if best is None else np.minimum(best, d)
    return -best
