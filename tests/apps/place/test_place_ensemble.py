"""Ensemble training (processes and Ray == serial), the regulariser, calibration,
persistence, adding a region on the device, the single network, and the runtime export."""

from dataclasses import replace

import numpy as np
import pytest

import neuroplast
from neuroplast.apps.place import (
    Ensemble,
    EnsembleParams,
    PlaceParams,
    ViewParams,
    calibrate_threshold,
    make_route,
    preprocess_batch,
    recall_at_n,
    runtime_query,
    runtime_scores,
    save_ensemble_bundle,
    train_ensemble,
    train_module,
    train_single,
)
from neuroplast.errors import DataError

P = 12
PARAMS = EnsembleParams(
    region_size=4,
    batch=2,
    place=PlaceParams(neurons_per_place=2, epochs=2, views=ViewParams(steps=3)),
)


@pytest.fixture(scope="module")
def data():
    _, refs, q = make_route(P + 4, seed=7)
    imgs = np.stack([r.images for r in refs])
    return imgs, [preprocess_batch(r.images) for r in refs], preprocess_batch(q.images)


@pytest.fixture(scope="module")
def ens(data):
    imgs, xr, _ = data
    e = train_ensemble(imgs[:, :P], np.arange(P), PARAMS, workers=1, seed=3)
    return e.with_reference_stats(np.concatenate([x[:P] for x in xr]))


def test_parallel_training_equals_serial_and_modules_are_independent(data, ens):
    imgs, _, _ = data
    par = train_ensemble(imgs[:, :P], np.arange(P), PARAMS, workers=2, seed=3)
    np.testing.assert_array_equal(par.weights, ens.weights)
    assert len(ens.modules) == 3 and ens.places.tolist() == list(range(P))
    alone = train_module(imgs[:, 8:12], np.arange(8, 12), PARAMS.place, seed=3 * 100003 + 2)
    np.testing.assert_array_equal(alone.weights, ens.modules[2].weights)
    assert set(ens.modules[2].owner.tolist()) <= set(range(8, 12))


@pytest.mark.slow
def test_ray_training_equals_serial(data, ens):
    ray = pytest.importorskip("ray")
    imgs, _, _ = data
    try:
        e = train_ensemble(
            imgs[:, :P], np.arange(P), PARAMS, workers=1, ray_address="local", seed=3
        )
    finally:
        ray.shutdown()
    np.testing.assert_array_equal(e.weights, ens.weights)


def test_scores_hyperactivity_and_calibration_against_brute_force(data, ens):
    _, xr, xq = data
    ref = np.concatenate([x[:P] for x in xr])
    v = ens.potentials(ref)
    fires = (v >= ens.fire_threshold) & (ens.owner >= 0)
    np.testing.assert_array_equal(ens.n_spk, fires.sum(axis=0))
    t = int(np.median(ens.n_spk)) + 1
    masked = ens.n_spk >= t
    s = ens.scores(xq[:P], t)
    vq = ens.potentials(xq[:P])
    for q in range(3):  # a place scores its best unmasked neuron
        for col in range(P):
            own = (ens.owner == col) & ~masked
            want = vq[q, own].max() if own.any() else s[q].min()
            assert s[q, col] == pytest.approx(want)
    thr, table = calibrate_threshold(ens, vq, np.arange(P), (0, t))
    assert table[0] == recall_at_n(ens.scores_from_potentials(vq, 0), np.arange(P), (1,))[1]
    assert table[thr] == max(table.values())


def test_save_load_roundtrip_and_corrupt_file(tmp_path, data, ens):
    _, _, xq = data
    e = replace(ens, threshold=2)
    e.save(tmp_path / "e.npz")
    back = Ensemble.load(tmp_path / "e.npz")
    np.testing.assert_array_equal(back.scores(xq), e.scores(xq))
    assert back.params == e.params and back.threshold == 2
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError):
        Ensemble.load(tmp_path / "bad.npz")
    with pytest.raises(DataError):
        Ensemble.load(tmp_path / "missing.npz")


def test_new_region_leaves_old_places_untouched(data, ens):
    imgs, xr, xq = data
    new = train_module(imgs[:, P:], np.arange(P, P + 4), PARAMS.place, seed=9)
    big = ens.add_modules([new])
    np.testing.assert_array_equal(big.scores(xq)[:, :P], ens.scores(xq))
    assert big.places.tolist() == list(range(P + 4))
    with pytest.raises(DataError, match="repeat"):
        big.add_modules([new])


def test_single_network_learns_through_feast(data):
    _, xr, xq = data
    x = np.concatenate([x[:P] for x in xr])
    net = train_single(x, np.tile(np.arange(P), 2), 2 * P, epochs=2, batch=8)
    s = net.scores(xq[:P])
    assert s.shape == (P, P)
    assert not np.allclose(net.module.weights[0], net.module.weights[1])


def test_runtime_float_and_int_match_the_model(tmp_path, data, ens):
    _, _, xq = data
    path = save_ensemble_bundle(ens, tmp_path / "b")
    ref = ens.scores(xq)
    f = runtime_scores(neuroplast.load(path, mode="float"), xq, PARAMS.place.steps)
    np.testing.assert_allclose(f, ref, rtol=1e-5, atol=1e-4)
    i = runtime_scores(neuroplast.load(path, mode="int"), xq, PARAMS.place.steps)
    # int8 weights (per-neuron scale a_j / 127): |dV| <= T ||w_j||_1 / 254 + 1 output LSB
    w = ens.weights
    bound = (PARAMS.place.steps * np.abs(w).sum(1) / 254).max() + 0.01
    assert np.abs(i - ref).max() <= bound
    assert (i.argmax(1) == ref.argmax(1)).mean() >= 0.9
    ids, _ = runtime_query(neuroplast.load(path, mode="int"), data[0][0, :3], k=3)
    assert ids.shape == (3, 3)


def test_graph_cost_and_fit_count_the_readout(tmp_path, ens):
    from neuroplast.apps.place import ensemble_graph
    from neuroplast.graph.cost import cost

    rows = {r.name: r for r in cost(ensemble_graph(ens))}
    assert rows["places"].macs == ens.n_neurons
    assert rows["synapses"].macs == ens.weights.size
    from neuroplast.boards.estimate import fit

    r = fit(save_ensemble_bundle(ens, tmp_path / "b"), "rpi5", learning=False, mode="int")
    assert not any("no cost model" in w for w in r.warnings)


def test_runtime_query_needs_place_bundle(tmp_path):
    from neuroplast.bundle import save_bundle
    from neuroplast.graph import LIF, Graph, Input, Linear

    g = Graph.sequential(
        [
            ("x", Input(shape=(3,))),
            ("l", Linear(weight=np.eye(3))),
            ("n", LIF(tau_mem=[0.01], v_th=[1.0])),
        ]
    )
    save_bundle(tmp_path / "other", g)
    with pytest.raises(DataError, match="place bundle"):
        runtime_query(neuroplast.load(tmp_path / "other"), [np.zeros((8, 8))])
