"""Sequence matching against a direct loop over the diagonal."""

import numpy as np
import pytest

from neuroplast.apps.place.sequence import sequence_scores
from neuroplast.errors import DataError


def _loop(s, length):
    z = (s - s.mean(1, keepdims=True)) / s.std(1, keepdims=True)
    out = np.zeros_like(z)
    for t in range(s.shape[0]):
        ks = range(min(length, t + 1))
        for p in range(s.shape[1]):
            out[t, p] = np.mean([z[t - k, p - k] if p - k >= 0 else 0.0 for k in ks])
    return out


def test_sequence_scores_equal_loop_and_recover_a_route():
    rng = np.random.default_rng(0)
    s = rng.random((30, 25))
    np.testing.assert_allclose(sequence_scores(s, 4), _loop(s, 4), atol=1e-5)
    noisy = rng.normal(0, 1.0, (40, 40)) + 1.2 * np.eye(40)  # weak single-frame evidence
    single = (noisy.argmax(1) == np.arange(40)).mean()
    seq = (sequence_scores(noisy, 8).argmax(1) == np.arange(40))[8:].mean()
    assert seq > single and seq >= 0.9


def test_sequence_bad_input():
    with pytest.raises(DataError):
        sequence_scores(np.ones((3, 3)), 0)
    with pytest.raises(DataError):
        sequence_scores(np.array([[np.nan]]), 2)
