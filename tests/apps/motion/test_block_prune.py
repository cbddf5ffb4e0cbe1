"""Chunk-structured (block) pruning of W_d: exact budget, whole blocks, the greedy rule
against a loop-by-loop reference, chunk count of the pull path, mask kept in retraining."""

from __future__ import annotations

import numpy as np
import pytest

from neuroplast.apps.motion.event_layer import compile_taps
from neuroplast.apps.motion.model import (
    HDKernel,
    block_offset_of,
    prune_kernel,
    prune_mask_of,
    split_weight,
)
from neuroplast.errors import DataError


def _kernel(seed: int = 0, shape=(3, 2, 4, 5, 17), zeros: float = 0.2) -> HDKernel:
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(shape).astype(np.float32)
    w[rng.random(shape) < zeros] = 0.0  # some exact zeros in K (W_s / W_d stay mostly dense)
    return HDKernel(w, rng.standard_normal(shape[0]).astype(np.float32))


def _windows(kx: int, block: int, offset: int) -> list[tuple[int, int]]:
    edges = sorted({0, kx, *range(offset, kx, block)})
    return list(zip(edges[:-1], edges[1:], strict=True))


def _reference(kernel: HDKernel, keep: int, block: int, offset: int) -> np.ndarray:
    """The rule written out item by item: W_d blocks scored by mean |w| over their
    non-zeros, W_s weights by |w|, taken greedily in decreasing score while they fit."""
    s = split_weight(kernel.weight).astype(np.float64)
    c_n, _, kt, ky, kx = s.shape
    items = []  # (score, order key, size, entries)
    for c in range(c_n):
        for k in range(kt):
            for dy in range(ky):
                for a, b in _windows(kx, block, offset):
                    nz = [dx for dx in range(a, b) if s[c, 1, k, dy, dx] != 0]
                    if nz:
                        mean = sum(abs(s[c, 1, k, dy, dx]) for dx in nz) / len(nz)
                        items.append((mean, len(nz), [(c, 1, k, dy, dx) for dx in nz]))
    for idx in zip(*np.nonzero(s[:, 0]), strict=True):
        c, k, dy, dx = (int(i) for i in idx)
        items.append((abs(s[c, 0, k, dy, dx]), 1, [(c, 0, k, dy, dx)]))
    items.sort(key=lambda it: -it[0])
    out = np.zeros_like(s)
    left = keep
    for _, n, entries in items:
        if n <= left:
            for e in entries:
                out[e] = s[e]
            left -= n
    return out


@pytest.mark.parametrize("offset", [0, 1, 4, 7])
@pytest.mark.parametrize("keep", [1, 37, 300, 1200])
def test_block_pruning_matches_the_rule(offset, keep):
    k = _kernel(offset + keep)
    p = prune_kernel(k, keep, "split", block=8, block_offset=offset)
    got = split_weight(p.weight)
    ref = _reference(k, keep, 8, offset)
    assert p.nnz_in("split") == keep  # exact budget (W_s weights fill the rest)
    np.testing.assert_array_equal(got != 0, ref != 0)
    np.testing.assert_allclose(got, ref, atol=1e-6)  # values are the original ones


def test_whole_blocks_kept_and_fewer_chunks_than_blocks():
    k = _kernel(3, shape=(4, 2, 5, 7, 17))
    s0 = split_weight(k.weight)
    for offset in range(8):
        p = prune_kernel(k, k.nnz_in("split") // 6, "split", block=8, block_offset=offset)
        wd = split_weight(p.weight)[:, 1]
        n_blocks = 0
        for a, b in _windows(17, 8, offset):
            kept = wd[..., a:b] != 0
            orig = s0[:, 1, ..., a:b] != 0
            any_kept = kept.any(axis=-1)
            # a block is all or nothing: every original non-zero of a kept block survives
            assert np.array_equal(kept, orig & any_kept[..., None])
            n_blocks += int(any_kept.sum())
        rows = compile_taps(p.weight, p.bias, (24, 20)).rows
        assert n_blocks > 0 and rows.n_chunks <= n_blocks
        # the per-weight ranking of the same budget needs more chunks on this kernel
        pw = prune_kernel(k, k.nnz_in("split") // 6, "split")
        assert compile_taps(pw.weight, pw.bias, (24, 20)).rows.n_chunks > rows.n_chunks


def test_block_one_is_the_per_weight_ranking():
    k = _kernel(5)
    keep = 250
    s = split_weight(k.weight)
    thresh = np.sort(np.abs(s).ravel())[-keep]
    p = prune_kernel(k, keep, "split", block=1)
    np.testing.assert_array_equal(split_weight(p.weight) != 0, np.abs(s) >= thresh)


def test_block_offset_and_bad_input():
    assert block_offset_of(17, 8) == 4  # windows [0, 4), [4, 12), [12, 17)
    assert block_offset_of(9, 8) == 0
    assert block_offset_of(17, 8, 2) == 2
    k = _kernel(1)
    centred = prune_kernel(k, 100, "split", block=8)
    explicit = prune_kernel(k, 100, "split", block=8, block_offset=4)
    np.testing.assert_array_equal(centred.weight, explicit.weight)
    with pytest.raises(DataError, match="basis='split'"):
        prune_kernel(k, 10, "onoff", block=8)
    with pytest.raises(DataError, match="block_offset"):
        prune_kernel(k, 10, "split", block=8, block_offset=8)
    with pytest.raises(DataError, match="block must be"):
        prune_kernel(k, 10, "split", block=0)


def test_block_mask_stays_fixed_in_retraining():
    torch = pytest.importorskip("torch")
    from neuroplast.apps.motion.events import events_to_voxels
    from neuroplast.apps.motion.model import HDParams, TrainParams, init_kernel, train_hd
    from neuroplast.apps.motion.simulate import DVSParams, SceneParams, simulate_movie

    torch.manual_seed(0)
    scene = SceneParams(size=12, texture_size=24, n_steps=20, f_cut=0.15)
    movies = [simulate_movie(s, scene, DVSParams(threshold=0.8)) for s in range(2)]
    vox = [events_to_voxels(m.events, m.sensor_size, m.n_steps) for m in movies]
    hp = HDParams(n_delays=4, kernel=9)
    k0 = init_kernel(hp, 0)
    kp = prune_kernel(k0, k0.weight.size // 10, "split", block=8)
    m = prune_mask_of(kp, "split")
    k1, _ = train_hd(
        vox,
        [mv.labels for mv in movies],
        hp,
        TrainParams(epochs=1, batch=2, lr=1e-2, stride=1),
        init=kp,
        prune_mask=m,
        mask_basis="split",
    )
    w1 = split_weight(k1.weight)
    assert np.all(w1[~m] == 0)
    assert not np.allclose(w1[m], split_weight(kp.weight)[m])
    # same chunks after retraining: the block structure survives
    rows0 = compile_taps(kp.weight, kp.bias, (12, 12)).rows
    rows1 = compile_taps(k1.weight, k1.bias, (12, 12)).rows
    assert rows1.n_chunks == rows0.n_chunks
