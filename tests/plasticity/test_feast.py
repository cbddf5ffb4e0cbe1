"""FEAST competitive layer: neurons converge to the input prototypes."""

from __future__ import annotations

import numpy as np
import pytest

from neuroplast.errors import DataError, PlasticityError
from neuroplast.plasticity import FeastParams, feast_init, feast_step, time_surface


def test_feast_learns_prototypes_and_miss_rate_falls() -> None:
    rng = np.random.default_rng(0)
    n_in, k = 25, 4
    protos = np.abs(rng.standard_normal((k, n_in)))
    protos /= np.linalg.norm(protos, axis=1, keepdims=True)
    p = FeastParams(eta=0.02, delta_close=0.002, delta_open=0.02, theta0=0.0)
    st = feast_init(k, n_in, rng, p)
    wins = []
    for _ in range(6000):
        c = rng.integers(k)
        x = protos[c] + 0.05 * np.abs(rng.standard_normal(n_in))
        st, win = feast_step(st, x, p)
        wins.append((c, win))
    np.testing.assert_allclose(np.linalg.norm(st.W, axis=1), 1.0, atol=1e-9)
    # independent check: cosine of every prototype to its best neuron
    cos = protos @ st.W.T
    assert (cos.max(axis=1) > 0.97).all(), cos
    # winners are consistent: each prototype is served by one dominant neuron
    late = wins[-1000:]
    for c in range(k):
        ws = [w for cc, w in late if cc == c and w >= 0]
        assert ws and np.bincount(ws).max() / len(ws) > 0.9
    # analytic equilibrium of the thresholds: each neuron wins (1-m)/k of events and
    # every miss opens it, so (1-m)/k * d_close = m * d_open  ->  m = dc / (dc + k do)
    late_miss = np.mean([w < 0 for _, w in late])
    m_eq = p.delta_close / (p.delta_close + k * p.delta_open)
    assert abs(late_miss - m_eq) < 0.015, (late_miss, m_eq)
    assert (st.theta > 0.85).all()  # selectivity rose to near the cluster cosine


def test_feast_miss_opens_all_thresholds() -> None:
    rng = np.random.default_rng(1)
    p = FeastParams(theta0=2.0, delta_open=0.5)  # cosine never exceeds 1: a miss
    st = feast_init(3, 5, rng, p)
    st2, win = feast_step(st, np.ones(5), p)
    assert win == -1 and st2.misses == 1
    np.testing.assert_allclose(st2.theta, 1.5)
    np.testing.assert_array_equal(st2.W, st.W)


def test_time_surface_and_errors() -> None:
    ts = time_surface(np.array([-np.inf, 0.0, 9.0]), 10.0, 5.0)
    np.testing.assert_allclose(ts, [0.0, np.exp(-2.0), np.exp(-0.2)])
    st = feast_init(2, 3, np.random.default_rng(0), FeastParams())
    with pytest.raises(DataError, match="NaN"):
        feast_step(st, [np.nan, 0, 0], FeastParams())
    with pytest.raises(PlasticityError, match="eta"):
        FeastParams(eta=0)
