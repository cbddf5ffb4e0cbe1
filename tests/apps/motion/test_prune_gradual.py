"""Gradual split-basis pruning with retraining (``prune_retrain_gradual``): each level
keeps the largest |W_s|, |W_d| of the previous level's retrained kernel (checked against
a numpy ranking), pruned weights stay zero, and a schedule resumed from a cached level
gives the same kernels as one uninterrupted run."""

from __future__ import annotations

import numpy as np
import pytest

from neuroplast.apps.motion.model import HDKernel, TrainParams, prune_retrain_gradual
from neuroplast.errors import DataError

pytest.importorskip("torch")

C, KT, K = 3, 2, 3
TRAIN = TrainParams(epochs=1, batch=2, lr=1e-2, lr_final=1e-3, stride=1)


def _kernel(seed=0) -> HDKernel:
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((C, 2, KT, K, K)).astype(np.float32)
    return HDKernel(w, rng.standard_normal(C).astype(np.float32))


def _data(factor: int):
    rng = np.random.default_rng(factor)
    x = rng.random((4, 2, 8, 6, 6)) < 0.2
    y = rng.integers(0, C, (4, 8))
    return list(x), list(y)


def _split(w: np.ndarray) -> np.ndarray:
    """(W_s, W_d) = (K_OFF + K_ON, K_OFF - K_ON), the runtime's pair."""
    return np.stack([w[:, 0] + w[:, 1], w[:, 0] - w[:, 1]], axis=1)


def test_each_level_keeps_the_largest_split_weights_of_the_previous_level():
    k0 = _kernel()
    ref = int(np.count_nonzero(_split(k0.weight)))
    seen: list[int] = []
    out = prune_retrain_gradual(
        k0, [2, 4, 8], _data, TRAIN, "split", on_level=lambda f, k: seen.append(f)
    )
    assert seen == [2, 4, 8] and sorted(out) == [2, 4, 8]
    prev = k0
    for f in (2, 4, 8):
        keep = ref // f
        a = np.abs(_split(prev.weight)).ravel()
        top = np.zeros(a.size, bool)
        top[np.argsort(a)[a.size - keep :]] = True  # numpy reference ranking
        nz = (np.abs(_split(out[f].weight)) > 1e-6).ravel()
        assert nz.sum() == keep
        np.testing.assert_array_equal(nz, top)  # survivors = the top |w|, pruned stay 0
        cut = np.where(top, _split(prev.weight).ravel(), 0.0)
        assert not np.allclose(_split(out[f].weight).ravel(), cut)  # survivors retrained
        prev = out[f]


def test_resumed_schedule_equals_one_run():
    k0 = _kernel(1)
    ref = k0.nnz_in("split")
    full = prune_retrain_gradual(k0, [2, 5], _data, TRAIN)
    first = prune_retrain_gradual(k0, [2], _data, TRAIN)[2]
    second = prune_retrain_gradual(first, [5], _data, TRAIN, reference=ref)[5]
    np.testing.assert_array_equal(full[2].weight, first.weight)
    np.testing.assert_array_equal(full[5].weight, second.weight)
    np.testing.assert_array_equal(full[5].bias, second.bias)


@pytest.mark.parametrize("factors", [[], [0, 2], [5, 2]])
def test_bad_schedules_raise(factors):
    with pytest.raises(DataError):
        prune_retrain_gradual(_kernel(), factors, _data, TRAIN)


def test_block_schedule_keeps_whole_blocks_of_the_previous_level():
    """``block`` reaches every level: each level's W_d support is ``prune_kernel``'s
    block-structured choice on the previous level's retrained kernel."""
    from neuroplast.apps.motion.model import prune_kernel

    k0 = _kernel(2)
    ref = k0.nnz_in("split")
    out = prune_retrain_gradual(k0, [2, 4], _data, TRAIN, block=2, block_offset=0)
    prev = k0
    for f in (2, 4):
        cut = prune_kernel(prev, ref // f, "split", block=2, block_offset=0)
        np.testing.assert_array_equal(
            np.abs(_split(out[f].weight)) > 1e-6, np.abs(_split(cut.weight)) > 1e-6
        )
        prev = out[f]
