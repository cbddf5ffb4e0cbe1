"""Place cells: the latency code against the runtime's own neuron, and engine learning
against an independent re-implementation of the documented rule."""

import numpy as np
import pytest

from neuroplast.apps.place.module import (
    PlaceParams,
    consolidate,
    group_max,
    potentials,
    region_views,
    train_module,
)
from neuroplast.apps.place.preprocess import ViewParams, graded_spikes, latency_encode
from neuroplast.apps.place.synth import make_route
from neuroplast.errors import DataError

SMALL = PlaceParams(neurons_per_place=2, epochs=2, views=ViewParams(shift=0.05, steps=3), rate=0.3)


def test_graded_spikes_equal_latency_window_in_runtime_neuron():
    """T steps of latency spikes through Linear -> non-leaky CubaLIF (sustained synaptic
    current) leave the membrane at W g: what one graded-spike step computes."""
    from neuroplast.graph import CubaLIF, Graph, Input, Linear
    from neuroplast.runtime import Runtime

    rng = np.random.default_rng(0)
    x, w, t = rng.random((3, 40)).astype(np.float32), rng.standard_normal((5, 40)), 8
    big = np.array([1e30])
    graph = Graph(
        {
            "x": Input(shape=(40,)),
            "syn": Linear(weight=w.astype(np.float32)),
            "cell": CubaLIF(tau_syn=big, tau_mem=big, r=big / 1e-3, v_th=np.array([1e9])),
        },
        [("x", "syn"), ("syn", "cell")],
        dt=1e-3,
    )
    rt = Runtime(graph)
    rt.reset(3)
    rt.run(latency_encode(x, t).astype(np.float32))
    want = graded_spikes(x, t).astype(np.float64) @ w.T
    np.testing.assert_allclose(rt.state["cell"].v, want, rtol=1e-5, atol=1e-4)
    # the graded code is the number of steps each input's synapse is open
    np.testing.assert_array_equal(graded_spikes(x, t), t - latency_encode(x, t).argmax(axis=0))


def _reference_training(g_all, k, p, seed):
    """Independent re-implementation of module.py's rule: one view per place per step,
    teacher on the first blank neuron else the group's best; the taught row moves to
    (w + eta g) / sum, eta from the annealed fraction a."""
    n_views, n_places, _ = g_all.shape
    w = np.zeros((n_places * k, g_all.shape[2]))
    rng = np.random.default_rng(seed)
    mean_sum = g_all.sum(axis=2).mean()
    shown = np.zeros(n_places, int)
    for e in range(p.epochs):
        a = p.rate + (p.rate_min - p.rate) * e / max(p.epochs - 1, 1)
        eta = a / ((1 - a) * mean_sum)
        order = np.stack([rng.permutation(n_views) for _ in range(n_places)], axis=1)
        for s in range(n_views):
            for pl in range(n_places):
                g = g_all[order[s, pl], pl].astype(np.float64)
                rows = pl * k + np.arange(k)
                j = rows[shown[pl]] if shown[pl] < k else rows[np.argmax(w[rows] @ g)]
                w[j] = w[j] + eta * g
                w[j] = w[j] / w[j].sum()
                shown[pl] += 1
    return w


def test_engine_learning_equals_reference_rule():
    _, refs, _ = make_route(6, seed=3)
    imgs = np.stack([r.images for r in refs])
    p = PlaceParams(**{**SMALL.__dict__, "centre": False})
    mod = train_module(imgs, np.arange(10, 16), p, seed=5)
    ref = _reference_training(region_views(imgs, p), 2, p, seed=5)
    np.testing.assert_allclose(mod.weights, ref, atol=1e-6)
    np.testing.assert_array_equal(mod.owner, np.repeat(np.arange(10, 16), 2))


def test_module_learns_its_places_and_is_calibrated():
    _, refs, q = make_route(10, seed=4)
    imgs = np.stack([r.images for r in refs])
    mod = train_module(imgs, np.arange(10), SMALL)
    w = mod.weights
    np.testing.assert_allclose(w.sum(axis=1), 0, atol=1e-5)  # centred ...
    np.testing.assert_allclose(np.linalg.norm(w, axis=1), 1, atol=1e-5)  # ... unit norm
    from neuroplast.apps.place.preprocess import preprocess_batch

    v = potentials(w, graded_spikes(preprocess_batch(q.images), SMALL.steps))
    s = group_max(v, mod.owner, 10, -1e9)
    assert (s.argmax(axis=1) == np.arange(10)).mean() >= 0.6  # chance is 0.1
    # thresholds: a fraction of each neuron's best potential on its own references
    assert np.all(mod.threshold > 0)


def test_group_max_and_consolidate_reference():
    v = np.array([[1.0, 5.0, 2.0, 7.0], [3.0, 0.0, 4.0, -1.0]], np.float32)
    out = group_max(v, np.array([1, 0, 1, -1]), 3, -9.0)
    np.testing.assert_array_equal(out, [[5, 2, -9], [0, 4, -9]])
    w = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    c = consolidate(w)
    np.testing.assert_allclose(c[0], np.array([-1, 0, 1]) / np.sqrt(2), rtol=1e-6)
    assert not c[1].any()


def test_bad_training_input_raises():
    with pytest.raises(DataError):
        train_module(np.zeros((2, 3, 8)), np.arange(3))  # not (n_t, P, H, W[, C])
    _, refs, _ = make_route(3, seed=1)
    imgs = np.stack([r.images for r in refs])
    with pytest.raises(DataError):
        train_module(imgs, np.arange(4), SMALL)
    with pytest.raises(DataError):
        train_module(imgs, np.array([1, 1, 2]), SMALL)
    with pytest.raises(DataError):
        PlaceParams(steps=0)
    with pytest.raises(DataError):
        PlaceParams(rate=1.0)


def test_int8_learning_on_integer_runtime_tracks_float():
    _, refs, q = make_route(10, seed=4)
    imgs = np.stack([r.images for r in refs])
    f = train_module(imgs, np.arange(10), SMALL)
    i = train_module(imgs, np.arange(10), PlaceParams(**{**SMALL.__dict__, "learn_mode": "int"}))
    corr = (f.weights * i.weights).sum(axis=1)  # both rows are centred unit vectors
    assert corr.min() > 0.9
    from neuroplast.apps.place.preprocess import preprocess_batch

    v = potentials(i.weights, graded_spikes(preprocess_batch(q.images), SMALL.steps))
    assert (group_max(v, i.owner, 10, -1e9).argmax(axis=1) == np.arange(10)).mean() >= 0.6
    with pytest.raises(DataError):
        PlaceParams(learn_mode="int4")
