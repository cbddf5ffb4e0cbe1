"""The firmware's output-buffer plan (``plan_outputs``, mirrored from np_model.c; the
board's ARENA_USED equals the prediction on every random graph in test_bridge_kernels),
checked by simulating a step over the planned bytes: every layer finds each input still
intact when it runs (an elementwise layer may overwrite the input it reads last, element
by element), on-board learning finds a Linear's input intact after the LIF that follows
it, and the model output survives to the end of the step."""

from __future__ import annotations

import numpy as np
import pytest

from neuroplast.firmware_bridge import spec
from neuroplast.firmware_bridge.image import LayerInfo, plan_outputs

K = spec.LayerKind
ELEMENTWISE = {K.RELU, K.SCALE, K.THRESHOLD, K.LIF, K.LI, K.CUBALIF}


def _layers(kinds, sizes, sources):
    return [LayerInfo(f"l{i}", int(k), 1, int(n), None, tuple(s))
            for i, (k, n, s) in enumerate(zip(kinds, sizes, sources, strict=True))]  # fmt: skip


def _simulate(layers, off, pool) -> None:
    """Bytes of the block tagged with the layer whose output they hold (-1: nobody)."""
    owner = np.full(pool, -1)
    n = len(layers)
    for i, L in enumerate(layers):
        lo, hi = off[i], off[i] + 4 * L.out_n
        assert lo % 8 == 0 and hi <= pool
        for s in L.sources:  # read before this layer writes (in place: element-wise)
            if s:
                a = off[s - 1]
                region = owner[a : a + 4 * layers[s - 1].out_n]
                assert (region == s - 1).all(), f"layer {i}: input {s - 1} overwritten"
        owner[lo:hi] = i
        learn = (i >= 2 and L.kind == K.LIF and layers[i - 1].kind == K.LINEAR
                 and L.sources[0] == i and layers[i - 1].sources[0] == i - 1)  # fmt: skip
        if learn:  # the rule reads the Linear's input right after this LIF
            a = off[i - 2]
            assert (owner[a : a + 4 * layers[i - 2].out_n] == i - 2).all()
    a = off[n - 1]
    assert (owner[a : a + 4 * layers[-1].out_n] == n - 1).all()


def _random(seed: int):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 33))
    kinds = list(rng.choice([K.LINEAR, K.LIF, K.RELU, K.ADD, K.CONV, K.SCALE, K.LI], n))
    sizes = rng.integers(1, 3000, n)
    sources = []
    for i in range(n):
        if kinds[i] == K.ADD and i >= 1:
            sources.append(tuple(int(x) for x in rng.integers(0, i + 1, 2)))
            continue
        src = i if rng.random() < 0.8 else int(rng.integers(0, i + 1))
        if kinds[i] in ELEMENTWISE and src > 0 and rng.random() < 0.7:
            sizes[i] = sizes[src - 1]  # elementwise layers keep their input's size
        sources.append((src,))
    return _layers(kinds, sizes, sources)


@pytest.mark.parametrize("seed", range(60))
def test_random_dags_never_lose_a_value(seed: int) -> None:
    layers = _random(seed)
    off, pool = plan_outputs(layers)
    _simulate(layers, off, pool)
    assert pool <= sum((4 * L.out_n + 7) & ~7 for L in layers)


def test_a_chain_needs_its_largest_neighbouring_pair_and_relu_runs_in_place() -> None:
    sizes = [1024, 1024, 2048, 2048, 512, 10]
    layers = _layers([K.CONV, K.RELU, K.CONV, K.RELU, K.MAXPOOL, K.LINEAR], sizes,
                     [(i,) for i in range(6)])  # fmt: skip
    off, pool = plan_outputs(layers)
    assert off[1] == off[0] and off[3] == off[2]  # ReLU in place
    assert pool == 4 * (1024 + 2048)  # conv2's ReLU'd input + its output; the sum: 4 * 6,666


def test_learnable_pair_keeps_its_input_through_the_lif() -> None:
    layers = _layers([K.RELU, K.LINEAR, K.LIF, K.LINEAR], [64, 64, 64, 64],
                     [(0,), (1,), (2,), (3,)])  # fmt: skip
    off, pool = plan_outputs(layers)
    _simulate(layers, off, pool)
    assert off[2] == off[1]  # the LIF writes its spikes over the Linear's currents
    assert not (off[0] < off[2] + 256 and off[2] < off[0] + 256)  # ReLU out kept apart
