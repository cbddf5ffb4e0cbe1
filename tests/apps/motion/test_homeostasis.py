"""Homeostatic threshold: the output rate returns to target after a x4 input event rate."""

from __future__ import annotations

import numpy as np
import pytest

from neuroplast.apps.motion.event_layer import compile_taps, hd_event_run
from neuroplast.apps.motion.events import make_events
from neuroplast.apps.motion.homeostasis import HomeostasisParams, run_homeostasis
from neuroplast.errors import DataError

SIZE = (14, 14)


def _poisson_events(rate, n_bins, t0_bin, rng):
    """Independent Bernoulli voxels: ``rate`` events per polarity-pixel per ms."""
    w, h = SIZE
    a = rng.random((2, n_bins, h, w)) < rate
    p, t, y, x = np.nonzero(a)
    return make_events((t + t0_bin) * 1000, x, y, p)


def test_rate_returns_to_target_after_x4_event_rate():
    rng = np.random.default_rng(0)
    w = np.abs(rng.standard_normal((4, 2, 4, 5, 5))).astype(np.float32) * 0.2
    taps = compile_taps(w, np.zeros(4, np.float32), SIZE)
    n1, n2 = 800, 1600
    ev = np.concatenate([_poisson_events(0.01, n1, 0, rng), _poisson_events(0.04, n2, n1, rng)])
    z = hd_event_run(taps, ev, n1 + n2, chunk=200)
    params = HomeostasisParams(r_target=0.05, eta=0.2)
    rate, theta = run_homeostasis(z, np.zeros(4), params)
    target = params.r_target
    before = rate[n1 - 300 : n1].mean(axis=0)
    after = rate[-300:].mean(axis=0)
    assert np.all(np.abs(before - target) <= 0.15 * target)
    assert np.all(np.abs(after - target) <= 0.15 * target)  # the criterion
    assert np.all(theta[-1] > theta[n1 - 1])  # thresholds rose with the input
    # without adaptation the x4 input drives the rate far off target
    frozen, _ = run_homeostasis(z[n1:], theta[n1 - 1], params, adapt=False)
    assert np.all(frozen[-300:].mean(axis=0) > 2 * target)


def test_engine_controller_equals_the_per_class_formula():
    """Through the engine (memoryless LIF + rate_threshold with one group per class) the
    rates and thresholds are the controller's formula, stepped here by hand."""
    rng = np.random.default_rng(2)
    z = rng.standard_normal((300, 3, 5, 6)) * np.array([1.0, 2.0, 0.5])[:, None, None]
    p = HomeostasisParams(r_target=0.1, eta=0.3)
    th0 = np.array([0.5, -0.2, 1.0])
    rate, theta = run_homeostasis(z, th0, p)
    th, ref_r, ref_t = th0.copy(), [], []
    for zt in z.astype(np.float32):
        r = (zt > th.astype(np.float32)[:, None, None]).mean(axis=(1, 2))
        th = np.clip(th + p.eta * (r - p.r_target), th0 + p.theta_min, th0 + p.theta_max)
        ref_r.append(r)
        ref_t.append(th)
    np.testing.assert_allclose(rate, ref_r, atol=1e-12)
    np.testing.assert_allclose(theta, ref_t, atol=1e-9)
    frozen, th_f = run_homeostasis(z, th0, p, adapt=False)
    assert np.all(th_f == th0)


def test_run_validates_shapes():
    with pytest.raises(DataError, match="evidence"):
        run_homeostasis(np.zeros((5, 3, 2, 2)), np.zeros(4), HomeostasisParams())
