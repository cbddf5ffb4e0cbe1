"""The integer STDP rule (int_stdp.py, the board's rule) against analytic expectations,
and the engine running it through ``rt.step``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from neuroplast.errors import PlasticityError, RuntimeStateError
from neuroplast.graph import LIF, Graph, Input, Linear, QuantSpec
from neuroplast.plasticity import PairSTDPParams, PlasticityEngine, stdp_window
from neuroplast.plasticity.int_stdp import (
    IntSTDPParams,
    IntSTDPState,
    int_stdp_check_state,
    int_stdp_from_pair,
    int_stdp_init,
    int_stdp_step,
    seed_mix,
    xorshift32,
)
from neuroplast.runtime import Runtime


def test_xorshift32_reference_values():
    # Marsaglia (2003), xorshift32 with (13, 17, 5) from seed 2463534242
    x = 2463534242
    seq = []
    for _ in range(3):
        x = xorshift32(x)
        seq.append(x)
    assert seq == [723471715, 2497366906, 2064144800]
    # murmur3 fmix32 (the seed scrambler) of 1 is 0x514E28B7; 0 maps to a nonzero state
    assert seed_mix(1) == 0x514E28B7 and seed_mix(0) != 0


def test_xorshift32_stream_equals_the_sequential_generator():
    from neuroplast.plasticity.int_stdp import xorshift32_stream

    rng = np.random.default_rng(0)
    for n in (1, 2, 4095, 4096, 4097, 10_001):
        s0 = int(rng.integers(1, 2**32))
        got, last = xorshift32_stream(s0, n)
        want, s = [], s0
        for _ in range(n):
            s = xorshift32(s)
            want.append(s)
        assert got.tolist() == want and last == s


def test_causal_pair_potentiates_unbiased():
    """pre at t0, post at t1: dw = eta_plus * x(t1) / 2^16 in expectation (stochastic
    rounding is unbiased); anti-causal order depresses by eta_minus * y / 2^16."""
    p = IntSTDPParams(
        a_pre=20000,
        a_post=20000,
        decay_pre=16384,
        decay_post=16384,
        eta_plus=15,
        eta_minus=11,
    )
    x1 = (20000 * 16384 + (1 << 14)) >> 15  # pre trace after one decay
    d_plus = p.eta_plus * x1 / 65536  # expected potentiation in LSB
    y1 = x1
    d_minus = p.eta_minus * y1 / 65536
    w0 = np.zeros((1, 1), np.int8)
    ups, downs = [], []
    for seed in range(1, 801):
        st = int_stdp_init(1, 1, seed)
        w, st, _ = int_stdp_step(w0, [True], [False], st, p)
        w, st, _ = int_stdp_step(w, [False], [True], st, p)
        ups.append(int(w[0, 0]))
        st = int_stdp_init(1, 1, seed)
        w, st, _ = int_stdp_step(w0, [False], [True], st, p)
        w, st, _ = int_stdp_step(w, [True], [False], st, p)
        downs.append(int(w[0, 0]))
    assert set(ups) <= {int(np.floor(d_plus)), int(np.floor(d_plus)) + 1}
    assert abs(np.mean(ups) - d_plus) < 0.05
    assert abs(np.mean(downs) + d_minus) < 0.05


def test_bounds_and_no_change_without_spikes():
    p = IntSTDPParams(eta_plus=65535, a_pre=32767, decay_pre=32768, w_min=-5, w_max=5)
    st = int_stdp_init(3, 2, 1)
    w = np.array([[4, 0, -5], [1, 2, 3]], np.int8)
    w1, st1, n = int_stdp_step(w, [False] * 3, [False] * 2, st, p)
    assert n == 0 and np.array_equal(w1, w) and st1.rng == st.rng
    for _ in range(5):
        w, st, _ = int_stdp_step(w, [True] * 3, [True] * 2, st, p)
    assert w.max() == 5 and w.min() >= -5


def test_bad_params_raise():
    with pytest.raises(PlasticityError):
        IntSTDPParams(decay_pre=40000)
    with pytest.raises(PlasticityError):
        IntSTDPParams(w_min=3, w_max=2)


def _plastic(n_in=14, n_out=6, seed=0, zp_in=0, mode="int"):
    rng = np.random.default_rng(seed)
    g = Graph.sequential(
        [
            ("x", Input(shape=(n_in,), quant=QuantSpec(8, 1.0, zp_in))),
            (
                "fc",
                Linear(
                    weight=rng.normal(0.2, 0.3, (n_out, n_in)),
                    weight_q=QuantSpec(8, 0.01, 0, narrow=True),
                    out_q=QuantSpec(16, 0.01, 0),
                ),
            ),
            ("lif", LIF(tau_mem=np.full(n_out, 0.01), v_th=np.full(n_out, 0.6), reset="zero")),
        ],
        dt=1e-3,
    )
    return Runtime(g, mode=mode)


@pytest.mark.parametrize("zp_in", [0, -3])
def test_engine_int_stdp_is_the_pure_function(zp_in: int) -> None:
    """rt.step + PlasticityEngine('int_stdp') == int_stdp_step on the runtime's own
    activity (pre = input code - zp_in > 0, post = LIF spikes), bit for bit."""
    rt = _plastic(zp_in=zp_in)
    p = IntSTDPParams(eta_plus=400, eta_minus=300, seed=5)
    eng = PlasticityEngine()
    eng.attach("fc", p)
    rt.plasticity = eng
    rt.learn(True)
    w = rt.params["fc"]["weight"].copy()
    st = int_stdp_init(w.shape[1], w.shape[0], p.seed)
    rng = np.random.default_rng(2)
    changed = 0
    for _ in range(300):
        x = rng.integers(-6, 6, 14).astype(np.int8)
        y = rt.step(x)
        w, st, n = int_stdp_step(w, x.astype(int) - zp_in > 0, np.asarray(y) != 0, st, p)
        changed += n
    np.testing.assert_array_equal(rt.params["fc"]["weight"], w)
    sd = eng.state_dict()
    np.testing.assert_array_equal(sd["0/fc/int_stdp/x"], st.x)
    np.testing.assert_array_equal(sd["0/fc/int_stdp/y"], st.y)
    assert int(sd["0/fc/int_stdp/rng"]) == st.rng and changed > 20
    assert int(sd["0/fc/int_stdp/changed"]) == changed


def test_engine_int_stdp_state_round_trip_continues_identically(tmp_path) -> None:
    p = IntSTDPParams(eta_plus=500, eta_minus=400, seed=9)
    x = (np.random.default_rng(4).random((200, 14)) < 0.3).astype(np.int8)

    def make():
        rt = _plastic()
        eng = PlasticityEngine.from_json(PlasticityEngine().to_json())
        eng.attach("fc", p)
        rt.plasticity = eng
        return rt.learn(True)

    ref = make()
    for xt in x:
        ref.step(xt)
    a = make()
    for xt in x[:120]:
        a.step(xt)
    a.save_state(tmp_path / "s.npz")
    b = make()
    b.load_state(tmp_path / "s.npz")
    for xt in x[120:]:
        b.step(xt)
    np.testing.assert_array_equal(b.params["fc"]["weight"], ref.params["fc"]["weight"])
    # plasticity.json carries the rule as data
    d = json.loads(ref.plasticity.to_json())
    assert d["rules"][0]["kind"] == "int_stdp" and d["rules"][0]["params"]["eta_plus"] == 500


def test_int_stdp_refusals() -> None:
    eng = PlasticityEngine()
    eng.attach("fc", IntSTDPParams())
    rt = _plastic(mode="float")
    rt.plasticity = eng
    rt.learn(True)
    with pytest.raises(PlasticityError, match="integer-only"):
        rt.step(np.ones(14, np.float32))
    # bounds are weight codes; bounds that would clip the layer are refused unless forced
    rt = _plastic()
    assert (rt.params["fc"]["weight"] < 0).mean() > 0.1
    eng = PlasticityEngine()
    eng.attach("fc", IntSTDPParams(w_min=0))
    rt.plasticity = eng
    with pytest.raises(PlasticityError, match="codes would clip"):
        eng.validate(rt)
    eng = PlasticityEngine()
    eng.attach("fc", IntSTDPParams(w_min=0), force=True)
    eng.validate(rt)
    # loaded state is checked against the rule (values, not only shapes) before use
    rt = _plastic()
    eng = PlasticityEngine()
    eng.attach("fc", IntSTDPParams())
    rt.plasticity = eng
    eng.validate(rt)
    d = eng.state_dict()
    d["0/fc/int_stdp/x"] = np.full(14, 40000, np.int64)
    with pytest.raises(RuntimeStateError, match="0..32767"):
        eng.load_state_dict(d, rt)
    with pytest.raises(RuntimeStateError):
        int_stdp_check_state(IntSTDPState(np.zeros(3, np.int64), np.zeros(2), 1), 3, 2)
    with pytest.raises(RuntimeStateError):
        int_stdp_check_state(IntSTDPState(np.full(3, 40000), np.zeros(2, int), 1), 3, 2)
    with pytest.raises(RuntimeStateError):
        int_stdp_check_state(IntSTDPState(np.zeros(3, int), np.zeros(2, int), 0), 3, 2)
    with pytest.raises(PlasticityError):
        IntSTDPParams(eta_plus=1.5)  # type: ignore[arg-type]


def test_from_pair_matches_the_analytic_window() -> None:
    """The converted rule's expected single-pair update equals the float window
    (stdp_window / weight scale), to the rounding of its integer parameters."""
    fp = PairSTDPParams(eta_plus=0.02, eta_minus=0.015, tau_plus=8.0, tau_minus=12.0,
                        w_min=-1.0, w_max=1.0)  # fmt: skip
    s = 0.01
    p = int_stdp_from_pair(fp, s, seed=3)
    assert (p.w_min, p.w_max) == (-100, 100)
    for delta in (1, 2, 5, -1, -3):
        st = int_stdp_init(1, 1, 1)
        first, second = ([True], [False]), ([False], [True])
        if delta < 0:
            first, second = second, first
        w = np.zeros((1, 1), np.int8)
        _, st, _ = int_stdp_step(w, *first, st, p)
        for _ in range(abs(delta) - 1):
            _, st, _ = int_stdp_step(w, [False], [False], st, p)
        # expected update of the second spike, in LSB (before stochastic rounding)
        x = (st.x * p.decay_pre + (1 << 14)) >> 15
        y = (st.y * p.decay_post + (1 << 14)) >> 15
        d = (p.eta_plus * x[0] if delta > 0 else -p.eta_minus * y[0]) / 65536
        want = stdp_window(np.array([delta]), fp)[0] / s
        assert d == pytest.approx(want, rel=0.02), (delta, d, want)
    with pytest.raises(PlasticityError):
        int_stdp_from_pair(PairSTDPParams(weight_dependence="multiplicative"), s)
