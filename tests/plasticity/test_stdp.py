"""STDP rules against their analytic windows and hand-derived single-pair results."""

from __future__ import annotations

import math

import numpy as np
import pytest

from neuroplast.errors import DataError, PlasticityError
from neuroplast.plasticity import (
    DiehlCookSTDPParams,
    PairSTDPParams,
    RewardSTDPParams,
    SymmetricSTDPParams,
    diehl_cook_update,
    pair_stdp_update,
    reward_stdp_init,
    reward_stdp_update,
    stdp_init,
    stdp_run,
    stdp_window,
    symmetric_stdp_update,
)


def _pair_run(update, params, delta: int, w0: float = 0.5, t_pre: int = 60, T: int = 140):
    """One synapse; pre spike at t_pre, post spike at t_pre + delta; total dw."""
    w = np.array([[w0]])
    st = stdp_init(1, 1)
    for t in range(T):
        pre = np.array([1.0 if t == t_pre else 0.0])
        post = np.array([1.0 if t == t_pre + delta else 0.0])
        w, st = update(w, pre, post, st, params)
    return float(w[0, 0]) - w0


def test_pair_stdp_window_matches_analytic_exponential() -> None:
    p = PairSTDPParams(eta_plus=0.01, eta_minus=0.012, tau_plus=16.8, tau_minus=33.7, dt=1.0)
    deltas = np.arange(-50, 51)
    measured = np.array([_pair_run(pair_stdp_update, p, int(d)) for d in deltas])
    # independent analytic form (Bi & Poo fit, Song et al. 2000), written out here
    analytic = np.where(
        deltas > 0,
        0.01 * np.exp(-deltas / 16.8),
        np.where(deltas < 0, -0.012 * np.exp(deltas / 33.7), 0.0),
    )
    np.testing.assert_allclose(measured, analytic, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(stdp_window(deltas, p), analytic, rtol=1e-12, atol=1e-15)
    # fitted time constants from the measured curve recover the parameters
    pos = deltas > 0
    slope = np.polyfit(deltas[pos], np.log(measured[pos]), 1)[0]
    assert math.isclose(-1 / slope, 16.8, rel_tol=1e-6)


def test_multiplicative_weight_dependence_soft_bounds() -> None:
    p = PairSTDPParams(eta_plus=0.1, eta_minus=0.1, weight_dependence="multiplicative")
    for w0 in (0.2, 0.9):
        up = _pair_run(pair_stdp_update, p, 5, w0=w0)
        down = _pair_run(pair_stdp_update, p, -5, w0=w0)
        assert math.isclose(up, 0.1 * math.exp(-5 / 20) * (1 - w0), rel_tol=1e-9)
        assert math.isclose(down, -0.1 * math.exp(-5 / 20) * w0, rel_tol=1e-9)


def test_symmetric_stdp_potentiates_both_orders() -> None:
    p = SymmetricSTDPParams(nu_pre=0.005, nu_post=0.005, a_pre=0.1, a_post=0.1, dt=0.5)
    for d in (-20, -3, 3, 20):
        got = _pair_run(symmetric_stdp_update, p, d)
        assert math.isclose(got, 0.005 * 0.1 * math.exp(-abs(d) * 0.5 / 20), rel_tol=1e-9)


@pytest.mark.parametrize("sign", ["+", "-"])
def test_diehl_cook_two_traces(sign: str) -> None:
    p = DiehlCookSTDPParams(nu_pre=1e-3, nu_post=1e-2, pre_sign=sign)
    # post spike at 10, then pre at 30, then post at 40 (post2 remembers the first spike)
    w = np.array([[0.5]])
    st = stdp_init(1, 1)
    for t in range(60):
        pre = np.array([float(t == 30)])
        post = np.array([float(t in (10, 40))])
        w, st = diehl_cook_update(w, pre, post, st, p)
    a = lambda tau, n: math.exp(-n * 0.5 / tau)  # noqa: E731
    s = 1 if sign == "+" else -1
    expected = s * 1e-3 * a(20, 20) + 1e-2 * a(20, 10) * a(40, 30)
    assert math.isclose(float(w[0, 0]) - 0.5, expected, rel_tol=1e-9)


def test_reward_stdp_needs_reward_and_follows_eligibility() -> None:
    p = RewardSTDPParams(eta_plus=1.0, eta_minus=1.0, tau_e=50.0, lr=0.1)
    w = np.array([[0.5]])
    st = reward_stdp_init(1, 1)
    for t in range(30):  # pre at 5, post at 10: eligibility = exp(-5/20)
        w, st = reward_stdp_update(w, [float(t == 5)], [float(t == 10)], st, p, reward=None)
    assert float(w[0, 0]) == 0.5
    e = math.exp(-5 / 20) * math.exp(-(29 - 10) / 50)
    assert math.isclose(float(st.elig[0, 0]), e, rel_tol=1e-9)
    w2, st2 = reward_stdp_update(w, [0.0], [0.0], st, p, reward=-1.0)
    assert math.isclose(float(w2[0, 0]), 0.5 - 0.1 * e * math.exp(-1 / 50), rel_tol=1e-9)


def test_weights_stay_in_bounds_under_heavy_activity() -> None:
    rng = np.random.default_rng(0)
    p = PairSTDPParams(eta_plus=0.5, eta_minus=0.4, w_min=-0.2, w_max=0.3)
    w = rng.uniform(-0.2, 0.3, (6, 9))
    st = stdp_init(9, 6)
    for _ in range(300):
        w, st = pair_stdp_update(w, rng.random(9) < 0.5, rng.random(6) < 0.5, st, p)
        assert w.min() >= -0.2 and w.max() <= 0.3


def test_stdp_pure_and_bad_input() -> None:
    p = PairSTDPParams()
    w = np.full((2, 3), 0.5)
    st = stdp_init(3, 2)
    w1, st1 = pair_stdp_update(w, [1, 1, 1], [1, 1], st, p)
    np.testing.assert_array_equal(w, 0.5)  # inputs untouched
    np.testing.assert_array_equal(st.pre, 0.0)
    with pytest.raises(DataError, match="NaN"):
        pair_stdp_update(w, [np.nan, 0, 0], [0, 0], st, p)
    with pytest.raises(DataError, match="pre"):
        pair_stdp_update(w, [0, 0], [0, 0], st, p)
    with pytest.raises(DataError, match="NaN"):
        pair_stdp_update(np.full((2, 3), np.inf), [0, 0, 0], [0, 0], st, p)
    with pytest.raises(PlasticityError, match="tau_plus"):
        PairSTDPParams(tau_plus=0)
    with pytest.raises(PlasticityError, match="w_min < w_max"):
        PairSTDPParams(w_min=1, w_max=0)
    with pytest.raises(PlasticityError, match="weight_dependence"):
        PairSTDPParams(weight_dependence="triplet")
    with pytest.raises(PlasticityError, match="pre_sign"):
        DiehlCookSTDPParams(pre_sign="*")


@pytest.mark.parametrize(
    "params,update",
    [
        (PairSTDPParams(eta_plus=0.05, eta_minus=0.06), pair_stdp_update),
        (
            PairSTDPParams(
                eta_plus=0.3, eta_minus=0.3, weight_dependence="multiplicative", trace="nearest"
            ),
            pair_stdp_update,
        ),
        (SymmetricSTDPParams(nu_pre=0.1, nu_post=0.1), symmetric_stdp_update),
        (DiehlCookSTDPParams(nu_pre=0.05, nu_post=0.1), diehl_cook_update),
        (DiehlCookSTDPParams(nu_pre=0.05, nu_post=0.1, pre_sign="+", trace="all-to-all"), None),
    ],
)
@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_stdp_run_equals_step_function(params, update, backend) -> None:
    """The chunked event-driven runner (numpy or numba) equals T calls of the step
    function, including coincident pre/post spikes and bound clipping."""
    from neuroplast.plasticity import _accel

    if backend == "numba" and _accel.kernels() is None:
        pytest.skip("numba not installed or disabled")
    update = update or diehl_cook_update
    rng = np.random.default_rng(5)
    T = 300
    pre = (rng.random((T, 7)) < 0.3).astype(float)
    post = (rng.random((T, 5)) < 0.3).astype(float)
    pre[::7] *= -3.0  # graded and negative "spikes": a nearest trace is set only by > 0
    pre[::10] = 1.0  # saturated steps: the rate_cap guard ignores them in every path
    w0 = rng.random((5, 7))
    w, st = w0, stdp_init(7, 5)
    for t in range(T):
        w, st = update(w, pre[t], post[t], st, params)
    w2, st2 = stdp_run(w0, pre, post, stdp_init(7, 5), params, backend=backend)
    np.testing.assert_allclose(w2, w, rtol=0, atol=1e-12)
    np.testing.assert_allclose(st2.pre, st.pre, atol=1e-12)
    np.testing.assert_allclose(st2.post2, st.post2, atol=1e-12)
    np.testing.assert_array_equal(w0, w0.copy())
    with pytest.raises(PlasticityError, match="backend"):
        stdp_run(w0, pre, post, stdp_init(7, 5), params, backend="gpu")
