"""The batched STDP / homeostasis rules against neuroplast.plasticity and VPRSNN code."""

import numpy as np
import pytest

from neuroplast.apps.place import rules
from neuroplast.plasticity.stdp import DiehlCookSTDPParams, diehl_cook_delta, stdp_init


def _per_step_sum(pre, post, p):
    w = np.full((post.shape[1], pre.shape[1]), 0.5)
    st = stdp_init(pre.shape[1], post.shape[1])
    total = np.zeros_like(w)
    for t in range(pre.shape[0]):
        dw, st = diehl_cook_delta(w, pre[t], post[t], st, p)
        total += dw
    return total


@pytest.mark.parametrize("sign", ["+", "-"])
def test_presentation_delta_equals_sum_of_plasticity_steps(sign):
    rng = np.random.default_rng(0)
    p = DiehlCookSTDPParams(nu_pre=3e-3, nu_post=1e-2, dt=1.0, pre_sign=sign)
    pre = (rng.random((60, 30)) < 0.1).astype(np.float32)
    post = (rng.random((60, 7)) < 0.05).astype(np.float32)
    post[:, 3] = 0  # a silent neuron
    got = rules.diehl_cook_presentation_delta(pre, post, p)
    np.testing.assert_allclose(got, _per_step_sum(pre, post, p), rtol=1e-5, atol=1e-7)


def test_presentation_delta_batched_modules_match_single():
    rng = np.random.default_rng(1)
    p = DiehlCookSTDPParams(nu_pre=1e-3, nu_post=1e-2, dt=1.0, pre_sign="+")
    pre = (rng.random((3, 40, 20)) < 0.1).astype(np.float32)
    post = (rng.random((3, 40, 5)) < 0.08).astype(np.float32)
    got = rules.diehl_cook_presentation_delta(pre, post, p)
    for m in range(3):
        np.testing.assert_allclose(got[m], _per_step_sum(pre[m], post[m], p), rtol=1e-5, atol=1e-7)


def test_no_post_spikes_no_update():
    p = DiehlCookSTDPParams(dt=1.0)
    d = rules.diehl_cook_presentation_delta(np.ones((5, 4)), np.zeros((5, 3)), p)
    assert not d.any()


def test_normalize_weights_row_sums():
    w = np.random.default_rng(2).random((4, 9)).astype(np.float32)
    w[2] = 0
    out = rules.normalize_weights(w, 3.0)
    np.testing.assert_allclose(out.sum(axis=1)[[0, 1, 3]], 3.0, rtol=1e-6)
    assert not out[2].any()


def test_hyperactive_mask_matches_vprsnn():
    n_spk = np.array([0, 3, 10, 11, 50])
    monitor = np.ones((2, 5))
    # VPRSNN ignore_hyperactive_neurons: zero neurons with n_spk >= threshold (0 = off).
    for thr in (0, 10, 11):
        ref = monitor.copy()
        if thr != 0:
            ref[:, n_spk >= thr] = 0
        got = np.where(rules.hyperactive_mask(n_spk, thr), 0, monitor)
        np.testing.assert_array_equal(got, ref)


def test_per_presentation_theta_and_scaling_match_plasticity_package():
    from neuroplast.plasticity.homeostasis import (
        SpikeThresholdParams,
        SynapticScalingParams,
        spike_threshold_update,
        synaptic_scaling,
    )

    rng = np.random.default_rng(3)
    spikes = (rng.random((100, 6)) < 0.05).astype(float)
    th0 = rng.random(6) * 10
    p = SpikeThresholdParams(theta_plus=0.3, tau_theta=1e7, dt=1.0)
    th = th0.copy()
    for s in spikes:
        th = spike_threshold_update(th, s, p)
    decay = np.exp(-100 * 1.0 / 1e7)
    got = rules.theta_update(th0, spikes.sum(axis=0), 0.3, decay)
    # per-presentation form ignores decay of this presentation's increments: <= T dt / tau_theta
    np.testing.assert_allclose(got, th, rtol=2 * 100 / 1e7)
    w = rng.random((5, 50)) * 0.05
    np.testing.assert_allclose(
        rules.normalize_weights(w, 2.0), synaptic_scaling(w, SynapticScalingParams(target=2.0))
    )
