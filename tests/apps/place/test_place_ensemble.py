"""Ensemble training (parallel == serial), the regulariser, calibration, persistence,
adding a region on the device, and the runtime export."""

from dataclasses import replace

import numpy as np
import pytest

import neuroplast
from neuroplast.apps.place import (
    Ensemble,
    EnsembleParams,
    ModuleParams,
    calibrate_threshold,
    make_route,
    preprocess_batch,
    recall_at_n,
    runtime_query,
    runtime_scores,
    save_ensemble_bundle,
    train_ensemble,
    train_single,
)
from neuroplast.apps.place.ensemble import region_jobs, split_regions
from neuroplast.apps.place.module import place_scores, train_modules
from neuroplast.errors import BundleError, DataError

P = 20
PARAMS = EnsembleParams(
    region_size=5, batch=2, module=ModuleParams(n_neurons=16, steps=50, epochs=3)
)


@pytest.fixture(scope="module")
def data():
    _, refs, q = make_route(P + 5, seed=7)
    xr = [preprocess_batch(r.images) for r in refs]
    return xr, preprocess_batch(q.images)


@pytest.fixture(scope="module")
def ens(data):
    xr, _ = data
    return train_ensemble([x[:P] for x in xr], np.arange(P), PARAMS, workers=1, seed=3)


def test_parallel_training_equals_serial(data, ens):
    xr, _ = data
    par = train_ensemble([x[:P] for x in xr], np.arange(P), PARAMS, workers=2, seed=3)
    np.testing.assert_array_equal(par.weights, ens.weights)
    np.testing.assert_array_equal(par.assignments, ens.assignments)
    assert len(ens.modules) == 4 and ens.places.tolist() == list(range(P))


def test_modules_are_independent_region_networks(data, ens):
    xr, _ = data
    jobs = region_jobs([x[:P] for x in xr], np.arange(P), split_regions(np.arange(P), 5))
    m2 = train_modules([jobs[2]], PARAMS.module, [3 * 100003 + 2])[0]
    np.testing.assert_allclose(m2.weights, ens.modules[2].weights, rtol=1e-4, atol=1e-5)
    assert set(ens.modules[2].assignments[ens.modules[2].assignments >= 0]) <= set(range(10, 15))


def test_hyperactivity_counts_and_calibration(data, ens):
    xr, xq = data
    allref = np.concatenate([x[:P] for x in xr])
    c = ens.counts(allref)
    np.testing.assert_array_equal(ens.n_spk, (c > 0).sum(axis=0))  # global, all regions
    cq = ens.counts(xq[:P])
    cal, test = np.arange(8), np.arange(8, P)
    t, table = calibrate_threshold(ens, cq[cal], cal, (0, 3, 6, 10, 20, 40))
    brute = {
        th: np.mean(
            [
                np.all(s[g] > np.delete(s, g))
                for s, g in zip(
                    place_scores(
                        cq[cal], ens.assignments, ens.places, ens.n_spk >= th if th else None
                    ),
                    cal,
                )
            ]
        )
        for th in (0, 3, 6, 10, 20, 40)
    }
    assert table == pytest.approx(brute)
    assert table[t] == max(table.values())
    masked = ens.scores_from_counts(cq[test], t)
    assert masked.shape == (len(test), P)


def test_save_load_roundtrip_and_corrupt_file(tmp_path, data, ens):
    e = replace(ens, threshold=5)
    e.save(tmp_path / "e.npz")
    back = Ensemble.load(tmp_path / "e.npz")
    np.testing.assert_array_equal(back.weights, e.weights)
    np.testing.assert_array_equal(back.n_spk, e.n_spk)
    assert back.threshold == 5 and back.params == e.params
    np.testing.assert_array_equal(back.scores(data[1][:4]), e.scores(data[1][:4]))
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 nonsense")
    with pytest.raises(DataError, match="bad.npz"):
        Ensemble.load(tmp_path / "bad.npz")


def test_new_region_added_without_touching_old_modules(data, ens):
    xr, xq = data
    new_jobs = region_jobs(xr, np.arange(P + 5), [np.arange(P, P + 5)])
    new = train_modules(new_jobs, PARAMS.module, [99])
    bigger = ens.add_modules(new, np.concatenate(xr))
    for a, b in zip(ens.modules, bigger.modules):
        assert a is b  # old modules are the same objects, unchanged
    s = bigger.scores(xq[P:], 0)
    assert s.shape == (5, P + 5)
    # old modules' counts on old queries are unchanged; only the new columns are added
    old_cols = bigger.counts(xq[:P])[:, : ens.n_neurons]
    np.testing.assert_array_equal(old_cols, ens.counts(xq[:P]))
    with pytest.raises(DataError, match="repeat"):
        bigger.add_modules(new, np.concatenate(xr))


def test_single_network_baseline_shape(data):
    xr, xq = data
    single = train_single([x[:10] for x in xr], np.arange(10), PARAMS)
    assert len(single.modules) == 1 and single.n_neurons == 10 * (16 // 5)
    assert single.scores(xq[:10]).shape == (10, 10)


def test_runtime_bundle_gives_the_same_places(tmp_path, data, ens):
    _, xq = data
    e = replace(ens, threshold=6)
    save_ensemble_bundle(e, tmp_path / "b.zip")
    rt = neuroplast.load(tmp_path / "b.zip")
    p = e.params.module
    s_rt = runtime_scores(rt, xq[:P], p.p_max, p.steps)
    s_np = e.scores(xq[:P])
    np.testing.assert_array_equal(s_rt, s_np)
    gt = np.arange(P)
    assert recall_at_n(s_rt, gt) == recall_at_n(s_np, gt)
    _, refs, q = make_route(P + 5, seed=7)
    ids, _ = runtime_query(rt, q.images[:3], k=3)
    np.testing.assert_array_equal(ids, e.query(xq[:3], k=3)[0])
    with pytest.raises(BundleError, match="integer mode"):
        neuroplast.load(tmp_path / "b.zip", mode="int")


def test_runtime_query_needs_place_bundle(tmp_path):
    from neuroplast.graph import LIF, Graph, Input, Linear

    g = Graph.sequential(
        [
            ("x", Input(shape=(3,))),
            ("l", Linear(weight=np.eye(3))),
            ("n", LIF(tau_mem=[0.01], v_th=[1.0])),
        ]
    )
    from neuroplast.bundle import save_bundle

    save_bundle(tmp_path / "other", g)
    with pytest.raises(DataError, match="place bundle"):
        runtime_query(neuroplast.load(tmp_path / "other"), [np.zeros((8, 8))])
