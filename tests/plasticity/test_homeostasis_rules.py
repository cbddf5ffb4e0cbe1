"""Homeostasis: rate-target thresholds under input drift, long-run stability (10^6
steps), spike-triggered thresholds, synaptic scaling, hyperactive masking."""

from __future__ import annotations

import math

import numpy as np
import pytest

from neuroplast.errors import DataError, PlasticityError
from neuroplast.plasticity import (
    PairSTDPParams,
    RateThresholdParams,
    SpikeThresholdParams,
    SynapticScalingParams,
    hyperactive_mask,
    pair_stdp_delta,
    pair_stdp_update,
    quantized_apply,
    rate_threshold_update,
    reference_spike_counts,
    spike_threshold_update,
    stdp_init,
    stdp_run,
    synaptic_scaling,
)


def _lif_run(w, theta, p_in, steps, rng, rp=None, v_th=1.0, beta=0.9):
    """Closed-loop LIF layer with Poisson inputs; returns (spike counts, theta)."""
    n_post, n_pre = w.shape
    v = np.zeros(n_post)
    counts = np.zeros(n_post)
    inp = rng.random((steps, n_pre)) < p_in
    for t in range(steps):
        v = beta * v + w @ inp[t]
        s = v > v_th + theta
        v[s] = 0.0
        counts += s
        if rp is not None:
            theta = rate_threshold_update(theta, s, rp)
    return counts, theta


def test_rate_threshold_restores_target_rate_after_input_drift() -> None:
    rng = np.random.default_rng(0)
    w = rng.uniform(0.0, 0.2, (20, 50))
    rp = RateThresholdParams(eta_ip=0.02, r_target=0.05, theta_min=-0.9)
    theta = np.zeros(20)
    _, theta = _lif_run(w, theta, 0.05, 15000, rng, rp)
    base, _ = _lif_run(w, theta, 0.05, 5000, rng, rp)
    assert abs(base.mean() / 5000 - 0.05) < 0.005
    # drift: input rates x4; without adaptation firing is far off target
    frozen, _ = _lif_run(w, theta, 0.20, 5000, rng, None)
    assert frozen.mean() / 5000 > 1.5 * 0.05
    _, theta = _lif_run(w, theta, 0.20, 20000, rng, rp)
    after, _ = _lif_run(w, theta, 0.20, 5000, rng, rp)
    rate = after.mean() / 5000
    assert abs(rate - 0.05) / 0.05 < 0.10, rate


def test_million_steps_bounded_and_finite() -> None:
    """10^6 STDP steps (event-driven stdp_run) with rate-target thresholds and synaptic
    scaling every 1000 steps, inputs drifting x4 half way; weights stay in bounds and
    nothing becomes NaN. Post spikes are Bernoulli with p = sigmoid(w r_in - theta)."""
    rng = np.random.default_rng(1)
    n_pre, n_post, chunk = 10, 4, 1000
    p = PairSTDPParams(eta_plus=0.02, eta_minus=0.021, w_min=0.0, w_max=1.0)
    rp = RateThresholdParams(eta_ip=0.5, r_target=0.02, theta_min=-50.0, theta_max=50.0)
    sp = SynapticScalingParams(target=3.0, w_min=0.0, w_max=1.0)
    w = rng.uniform(0, 1, (n_post, n_pre))
    w0 = w.copy()
    st, theta = stdp_init(n_pre, n_post), np.zeros(n_post)
    total = 0
    for c in range(1_000_000 // chunk):
        rate = 0.01 if c < 500 else 0.04
        pre = rng.random((chunk, n_pre)) < rate
        drive = w @ np.full(n_pre, rate) * 40 - theta
        p_post = 1 / (1 + np.exp(-np.clip(drive, -30, 30))) * 0.1
        post = rng.random((chunk, n_post)) < p_post
        w, st = stdp_run(w, pre, post, st, p)
        theta = rate_threshold_update(theta, post.mean(axis=0), rp)
        w = synaptic_scaling(w, sp)
        total += chunk
        assert w.min() >= 0.0 and w.max() <= 1.0
    assert total == 1_000_000
    for a in (w, st.pre, st.post, theta):
        assert np.isfinite(a).all()
    assert np.abs(w - w0).max() > 0.1  # the rules really acted
    assert 0.0 <= st.pre.max() < 20 and 0.0 <= st.post.max() < 20


def test_int8_long_run_stays_in_bounds() -> None:
    """Integer mode: 5k per-step STDP updates on int8 weights with stochastic rounding."""
    rng = np.random.default_rng(2)
    p = PairSTDPParams(eta_plus=0.05, eta_minus=0.05, w_min=-0.5, w_max=0.5)
    scale = 0.5 / 127
    q = rng.integers(-127, 128, (4, 8)).astype(np.int8)
    st = stdp_init(8, 4)
    pre_all, post_all = rng.random((5000, 8)) < 0.3, rng.random((5000, 4)) < 0.3
    for t in range(5000):
        dw, st = pair_stdp_delta(q * scale, pre_all[t], post_all[t], st, p)
        q = quantized_apply(q, dw, scale, rng, p.w_min, p.w_max, -127, 127)
    assert q.dtype == np.int8 and q.min() >= -127 and q.max() <= 127
    assert np.isfinite(st.pre).all() and len(np.unique(q)) > 10


def test_spike_threshold_closed_form() -> None:
    p = SpikeThresholdParams(theta_plus=0.05, tau_theta=100.0, dt=1.0)
    theta = np.zeros(2)
    spikes = np.zeros((50, 2))
    spikes[[3, 10, 40], 0] = 1
    for s in spikes:
        theta = spike_threshold_update(theta, s, p)
    a = math.exp(-1 / 100)
    expected = 0.05 * (a ** (49 - 3) + a ** (49 - 10) + a ** (49 - 40))
    assert math.isclose(theta[0], expected, rel_tol=1e-12) and theta[1] == 0
    ps = SpikeThresholdParams(theta_plus=0.07, mode="sym-stdp", center=10.0, tau_theta=1e9)
    t2 = spike_threshold_update(np.array([2.0]), [1.0], ps)
    assert math.isclose(t2[0], 2.0 * math.exp(-0.5 / 1e9) + 0.07 * 10 / 8, rel_tol=1e-9)


def test_synaptic_scaling_rows_sum_to_target() -> None:
    rng = np.random.default_rng(3)
    w = rng.uniform(0, 0.2, (5, 784))
    out = synaptic_scaling(w, SynapticScalingParams(target=78.4, w_max=1.0))
    np.testing.assert_allclose(out.sum(axis=1), 78.4, rtol=1e-12)
    np.testing.assert_allclose(out / w, np.broadcast_to((78.4 / w.sum(axis=1))[:, None], w.shape))
    z = synaptic_scaling(np.zeros((2, 3)), SynapticScalingParams(target=1.0))
    np.testing.assert_array_equal(z, 0.0)


def test_hyperactive_mask_against_bruteforce() -> None:
    rng = np.random.default_rng(4)
    resp = rng.poisson(rng.uniform(0, 2, 30), size=(40, 30))
    n_spk = reference_spike_counts(resp)
    ref = [sum(1 for s in range(40) if resp[s, j] >= 1) for j in range(30)]
    np.testing.assert_array_equal(n_spk, ref)
    for T in (0, 5, 20, 40, 41):
        np.testing.assert_array_equal(hyperactive_mask(n_spk, T), np.array(ref) >= T)
    trains = (rng.random((10, 7, 30)) < 0.05).astype(float)
    np.testing.assert_array_equal(
        reference_spike_counts(trains), (trains.sum(axis=1) > 0).sum(axis=0)
    )
    with pytest.raises(DataError, match="threshold"):
        hyperactive_mask(n_spk, 2.5)
    with pytest.raises(DataError, match=">= 0"):
        reference_spike_counts(-np.ones((2, 2)))


def test_homeostasis_bad_params_and_input() -> None:
    with pytest.raises(PlasticityError, match="eta_ip"):
        RateThresholdParams(eta_ip=-1)
    with pytest.raises(PlasticityError, match="mode"):
        SpikeThresholdParams(mode="x")
    with pytest.raises(DataError, match="NaN"):
        rate_threshold_update(np.zeros(2), [np.nan, 0.0], RateThresholdParams())
    with pytest.raises(DataError, match="neurons"):
        spike_threshold_update(np.zeros(2), [1.0], SpikeThresholdParams())
    w = np.full((2, 2), 0.5)
    with pytest.raises(DataError, match="NaN"):
        pair_stdp_update(w, [1, 0], [np.inf, 0], stdp_init(2, 2), PairSTDPParams())


def test_rate_threshold_groups_share_one_threshold_per_block() -> None:
    """groups=g: each of g contiguous blocks moves by its mean rate (engine form)."""
    from neuroplast.errors import PlasticityError
    from neuroplast.plasticity.homeostasis import threshold_rule_update
    from neuroplast.plasticity.registry import rule_from_dict, rule_to_dict
    from neuroplast.plasticity.spec import StepIO

    p = RateThresholdParams(eta_ip=0.5, r_target=0.25, groups=2)
    post = np.array([[1.0, 0.0, 0.0, 0.0, 1.0, 1.0]])  # block rates 1/3 and 2/3
    _, st = threshold_rule_update(p, StepIO(None, None, post), {"theta": np.zeros(6)})
    np.testing.assert_allclose(st["theta"], np.repeat(0.5 * (np.array([1, 2]) / 3 - 0.25), 3))
    assert rule_from_dict(rule_to_dict(p)) == p
    with pytest.raises(PlasticityError, match="groups"):
        threshold_rule_update(
            RateThresholdParams(groups=4), StepIO(None, None, post), {"theta": np.zeros(6)}
        )
    with pytest.raises(PlasticityError, match="groups"):
        RateThresholdParams(groups=-1)
