"""The firmware's output-buffer plan (``plan_outputs``, mirrored from np_model.c; the
board's ARENA_USED equals the prediction on every random graph in test_bridge_kernels):
no two outputs live at the same time share a byte, a chain needs only its two largest
neighbours, and a Linear -> LIF pair keeps its input through the LIF (on-board learning
reads it there)."""

from __future__ import annotations

import numpy as np
import pytest

from neuroplast.firmware_bridge import spec
from neuroplast.firmware_bridge.image import LayerInfo, plan_outputs

K = spec.LayerKind


def _layers(kinds, sizes, sources):
    return [LayerInfo(f"l{i}", int(k), 1, n, None, tuple(s))
            for i, (k, n, s) in enumerate(zip(kinds, sizes, sources, strict=True))]  # fmt: skip


def _live(layers):
    """Independent liveness: layer i's output is needed at every step from i to each
    reader, to the end for the last layer, and through the LIF after a Linear."""
    n = len(layers)
    need = [{i} for i in range(n)]
    need[-1] = set(range(n - 1, n + 1))
    for j, L in enumerate(layers):
        for s in L.sources:
            if s:
                need[s - 1] |= set(range(s - 1, j + 1))
        if (j + 1 < n and L.kind == K.LINEAR and layers[j + 1].kind == K.LIF
                and L.sources[0] == j and layers[j + 1].sources[0] == j + 1 and j > 0):  # fmt: skip
            need[j - 1].add(j + 1)
    return need


@pytest.mark.parametrize("seed", range(40))
def test_random_dags_never_share_a_live_byte(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 33))
    kinds = rng.choice([K.LINEAR, K.LIF, K.RELU, K.ADD, K.CONV], n)
    sizes = rng.integers(1, 3000, n)
    sources = []
    for i in range(n):
        if kinds[i] == K.ADD and i >= 1:
            sources.append(tuple(int(x) for x in rng.integers(0, i + 1, 2)))
        else:  # mostly the previous layer, sometimes a skip
            sources.append((i if rng.random() < 0.8 else int(rng.integers(0, i + 1)),))
    layers = _layers(kinds, sizes, sources)
    off, pool = plan_outputs(layers)
    need = _live(layers)
    for i in range(n):
        assert off[i] % 8 == 0 and off[i] + 4 * sizes[i] <= pool
        for j in range(i):
            if need[i] & need[j]:  # live together: disjoint bytes
                assert off[i] >= off[j] + 4 * sizes[j] or off[j] >= off[i] + 4 * sizes[i]
    assert pool <= sum((4 * int(s) + 7) & ~7 for s in sizes)


def test_a_chain_needs_its_largest_neighbouring_pair() -> None:
    sizes = [1024, 1024, 2048, 2048, 512, 10]
    layers = _layers([K.CONV, K.RELU, K.CONV, K.RELU, K.MAXPOOL, K.LINEAR], sizes,
                     [(i,) for i in range(6)])  # fmt: skip
    _, pool = plan_outputs(layers)
    assert pool == 4 * (2048 + 2048)  # was the sum, 4 * 6,666, before planning


def test_learnable_pair_keeps_its_input_through_the_lif() -> None:
    layers = _layers([K.RELU, K.LINEAR, K.LIF, K.LINEAR], [64, 64, 64, 64],
                     [(0,), (1,), (2,), (3,)])  # fmt: skip
    off, _ = plan_outputs(layers)
    # the ReLU output (the Linear's input) must not be reused by the LIF's output
    assert off[2] >= off[0] + 256 or off[0] >= off[2] + 256
