"""Integer-mode updates: stochastic rounding is unbiased (statistical test)."""

from __future__ import annotations

import numpy as np
import pytest

from neuroplast.errors import DataError, PlasticityError
from neuroplast.plasticity import (
    PairSTDPParams,
    pair_stdp_delta,
    quantized_apply,
    stdp_init,
    stochastic_round,
)


def test_stochastic_round_unbiased() -> None:
    rng = np.random.default_rng(0)
    u = np.array([0.01, 0.3, -0.37, 1.5, -2.71, 0.999])
    n = 200_000
    r = stochastic_round(np.broadcast_to(u, (n, u.size)), rng)
    mean = r.mean(axis=0)
    se = np.sqrt((u - np.floor(u)) * (1 - (u - np.floor(u))) / n) + 1e-12
    z = np.abs(mean - u) / se
    assert (z < 5).all(), z  # 5-sigma: fails only if biased
    # deterministic rounding would be badly biased for sub-LSB updates
    assert abs(np.round(0.3) - 0.3) > 0.2


def test_int8_stdp_expected_update_equals_float_update() -> None:
    """Sub-LSB STDP updates on int8 weights: mean over many seeded trials matches the
    float update (per synapse, z-test), and the result stays int8 within bounds."""
    p = PairSTDPParams(eta_plus=0.004, eta_minus=0.003, w_min=-1.0, w_max=1.0)
    rng = np.random.default_rng(1)
    scale = np.array([1 / 100.0, 1 / 64.0, 1 / 127.0])  # per output row
    q0 = rng.integers(-60, 60, (3, 8)).astype(np.int8)
    w_f = q0 * scale[:, None]
    st = stdp_init(8, 3)._replace(pre=rng.random(8), post=rng.random(3))
    pre = (rng.random(8) < 0.5).astype(float)
    post = np.array([1.0, 0.0, 1.0])
    dw, _ = pair_stdp_delta(w_f, pre, post, st, p)
    assert np.abs(dw / scale[:, None]).max() < 1.0  # genuinely sub-LSB
    trials = 20_000
    acc = np.zeros((3, 8))
    for _ in range(trials):
        q = quantized_apply(q0, dw, scale, rng, p.w_min, p.w_max, -127, 127)
        assert q.dtype == np.int8
        acc += q.astype(np.int64) - q0
    mean = acc / trials
    u = dw / scale[:, None]
    frac = u - np.floor(u)
    se = np.sqrt(frac * (1 - frac) / trials) + 1e-12
    assert (np.abs(mean - u) / se < 5).all()


def test_quantized_bounds_and_errors() -> None:
    rng = np.random.default_rng(0)
    q = np.array([[120, -120]], dtype=np.int8)
    out = quantized_apply(q, np.array([[5.0, -5.0]]), 0.01, rng, w_min=-1.0, w_max=1.0)
    np.testing.assert_array_equal(out, [[100, -100]])  # float bounds +-1.0 = +-100 LSB
    with pytest.raises(PlasticityError, match="integer"):
        quantized_apply(q.astype(float), np.zeros((1, 2)), 0.1, rng)
    with pytest.raises(DataError, match="NaN"):
        quantized_apply(q, np.array([[np.nan, 0]]), 0.1, rng)
    with pytest.raises(PlasticityError, match="scale"):
        quantized_apply(q, np.zeros((1, 2)), 0.0, rng)
