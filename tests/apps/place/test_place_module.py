"""Module neuron dynamics (analytic), scoring (VPRSNN reference) and learning."""

import numpy as np
import pytest

from neuroplast.apps.place.module import (
    LIFState,
    ModuleParams,
    assign_neurons,
    lif_wta_step,
    place_scores,
    simulate,
    train_module,
    train_modules,
)
from neuroplast.errors import DataError


def test_subthreshold_membrane_follows_geometric_series():
    p = ModuleParams(n_neurons=1)
    i = np.array([0.5], np.float32)
    v = simulate(np.broadcast_to(i, (30, 1)).copy(), np.array([100.0], np.float32), p)
    assert not v.any()  # far below threshold: no spikes
    st = LIFState.init((1,), p)
    for _ in range(30):
        _, st = lif_wta_step(i, st, np.array([100.0], np.float32), p)
    a = p.alpha_m
    want = p.v_rest + 0.5 * (1 - a**30) / (1 - a)
    assert st.v[0] == pytest.approx(want, abs=1e-3)


def test_first_spike_time_refractory_and_inhibition():
    p = ModuleParams(n_neurons=2, w_inh_mv=5.0, refractory_ms=3.0)
    thr = np.array([p.v_th, 1e9], np.float32)  # neuron 1 never fires
    cur = np.array([4.0, 4.0], np.float32)
    s = simulate(cur, thr - p.v_th, p, steps=20)
    # analytic first crossing of v_rest + 4 (1 - a^k)/(1 - a) > v_th
    a, k = p.alpha_m, 1
    while p.v_rest + 4 * (1 - a**k) / (1 - a) <= p.v_th:
        k += 1
    t0 = int(np.argmax(s[:, 0]))
    assert t0 == k - 1
    # refractory: 3 held steps, then integration restarts from v_reset
    assert not s[t0 + 1 : t0 + 4, 0].any()
    # inhibition: one step after the spike, neuron 1 sits w_inh below the unperturbed path
    st = LIFState.init((2,), p)
    vs = []
    for _ in range(t0 + 2):
        _, st = lif_wta_step(cur, st, thr, p)
        vs.append(st.v.copy())
    free = p.v_rest + 4 * (1 - a ** (t0 + 2)) / (1 - a)
    assert vs[-1][1] == pytest.approx(free - 5.0, abs=1e-3)


def _vprsnn_scores(assignments, counts, labels):
    out = np.zeros(len(labels))
    for k, lab in enumerate(labels):
        n = np.sum(assignments == lab)
        if n > 0:
            out[k] = np.sum(counts[assignments == lab]) / n
    return out


def test_place_scores_match_vprsnn_ranking():
    rng = np.random.default_rng(0)
    asg = rng.integers(-1, 6, 30)
    counts = rng.integers(0, 5, (4, 30)).astype(np.float32)
    got = place_scores(counts, asg, np.arange(6))
    for q in range(4):
        np.testing.assert_allclose(got[q], _vprsnn_scores(asg, counts[q], np.arange(6)), rtol=1e-6)


def test_assignment_is_argmax_of_mean_response():
    counts = np.array([[3, 0, 1], [1, 0, 1], [0, 0, 5]], np.float32)
    labels = np.array([7, 7, 9])
    # means: place 7 -> [2, 0, 1], place 9 -> [0, 0, 5]
    assert assign_neurons(counts, labels).tolist() == [7, -1, 9]


def _toy_region(rng, n_places=5, d=64):
    protos = rng.random((n_places, d)).astype(np.float32)
    x = np.concatenate(
        [np.clip(protos + rng.normal(0, 0.05, protos.shape), 0, 1) for _ in range(2)]
    )
    return protos, x.astype(np.float32), np.tile(np.arange(n_places), 2)


def test_stdp_module_learns_its_places():
    rng = np.random.default_rng(1)
    protos, x, labels = _toy_region(rng, 5, 784)
    p = ModuleParams(n_neurons=20, steps=60, epochs=6)
    m = train_module(x, labels, p, seed=0)
    from neuroplast.apps.place.module import module_counts

    s = place_scores(module_counts(m.weights, m.theta, protos, p), m.assignments, m.places)
    assert (s.argmax(axis=1) == np.arange(5)).mean() >= 0.8
    # learned weights resemble the assigned place more than other places
    own, other = [], []
    for j, a in enumerate(m.assignments):
        if a < 0:
            continue
        c = [np.corrcoef(m.weights[j], protos[k])[0, 1] for k in range(5)]
        own.append(c[a])
        other.append(np.mean([c[k] for k in range(5) if k != a]))
    assert np.mean(own) > np.mean(other) + 0.1
    np.testing.assert_allclose(m.weights.sum(axis=1), 0.1 * 784, rtol=1e-4)
    assert np.all(m.theta >= 0) and m.theta.max() > 0


def test_batched_training_equals_separate_training():
    rng = np.random.default_rng(2)
    jobs = [_toy_region(rng, 3, 32)[1:] for _ in range(2)]
    jobs[1] = (jobs[1][0][:4], jobs[1][1][:4])  # unequal image counts
    p = ModuleParams(n_neurons=8, steps=40, epochs=2)
    both = train_modules(jobs, p, [5, 6])
    for job, seed, m in zip(jobs, [5, 6], both):
        alone = train_module(*job, p, seed=seed)
        np.testing.assert_allclose(alone.weights, m.weights, rtol=1e-4, atol=1e-5)
        np.testing.assert_array_equal(alone.assignments, m.assignments)


def test_bad_training_input_raises():
    with pytest.raises(DataError):
        train_module(np.full((2, 4), 2.0, np.float32), np.array([0, 1]))
    with pytest.raises(DataError):
        train_module(np.zeros((2, 4), np.float32), np.array([0]))
    with pytest.raises(DataError):
        ModuleParams(dt_ms=2.0)  # STDP time step must match
