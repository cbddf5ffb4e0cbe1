"""Golden traces for the neuron step functions, computed by hand in the comments."""

import numpy as np
import pytest

from neuroplast.graph import IF, LI, LIF, CubaLIF, Graph, Input, QuantSpec
from neuroplast.neurons import LIFIntParams, LIFParams, LIFState, lif_step, lif_step_int
from neuroplast.runtime import Runtime


def _run(node, xs, dt=1e-3, mode="float"):
    g = Graph.sequential([("in", Input(shape=(1,))), ("n", node)], dt=dt)
    rt = Runtime(g, mode=mode)
    outs, vs = [], []
    for x in xs:
        outs.append(float(rt.step(np.array([x], np.float32))[0]))
        vs.append(float(np.ravel(rt.state["n"][-1])[0]))
    return outs, vs


def test_lif_zero_reset_golden():
    # tau=2ms, dt=1ms -> beta=0.5, gain=1. v: .6, .9, 1.05->spike->0, 0, 1.2->spike->0
    s, v = _run(LIF(tau_mem=[2e-3], v_th=[1.0]), [0.6, 0.6, 0.6, 0.0, 1.2])
    assert s == [0, 0, 1, 0, 1]
    np.testing.assert_allclose(v, [0.6, 0.9, 0.0, 0.0, 0.0], atol=1e-6)


def test_lif_subtract_reset_golden():
    # same input; reset by subtraction: 1.05-1=.05, .025, .0125+1.2=1.2125->.2125
    s, v = _run(LIF(tau_mem=[2e-3], v_th=[1.0], reset="subtract"), [0.6, 0.6, 0.6, 0.0, 1.2])
    assert s == [0, 0, 1, 0, 1]
    np.testing.assert_allclose(v, [0.6, 0.9, 0.05, 0.025, 0.2125], atol=1e-6)


def test_lif_leak_and_gain_golden():
    # v_leak=.2, beta=.5, r=1 -> gain = r*dt/tau = 0.5. v1=.2+.5(0-.2)+.5*.4=.3, v2=.2+.5*.1+0=.25
    s, v = _run(LIF(tau_mem=[2e-3], v_th=[10.0], v_leak=[0.2], r=[1.0]), [0.4, 0.0])
    np.testing.assert_allclose(v, [0.3, 0.25], atol=1e-6)


def test_cubalif_golden():
    # alpha=.5 (tau_syn 2ms), beta=.75 (tau_mem 4ms): i=1,.5,.25; v=1, 1.25, 1.1875
    s, v = _run(CubaLIF(tau_syn=[2e-3], tau_mem=[4e-3], v_th=[10.0]), [1.0, 0.0, 0.0])
    np.testing.assert_allclose(v, [1.0, 1.25, 1.1875], atol=1e-6)
    assert s == [0, 0, 0]


def test_if_and_li_golden():
    s, v = _run(IF(v_th=[1.0], r=[0.5]), [1.0, 1.0, 1.0])  # v=.5, 1.0 (not > 1), 1.5->spike->0
    assert s == [0, 0, 1]
    np.testing.assert_allclose(v, [0.5, 1.0, 0.0], atol=1e-6)
    y, _ = _run(LI(tau_mem=[4e-3]), [1.0, 0.0, 0.0])  # beta=.75: 1, .75, .5625
    np.testing.assert_allclose(y, [1.0, 0.75, 0.5625], atol=1e-6)


def test_pure_step_does_not_mutate():
    p = LIFParams.from_node(LIF(tau_mem=[2e-3], v_th=[1.0]), 1e-3)
    st = LIFState(np.array([[0.9]], np.float32))
    s, st2 = lif_step(np.array([[0.6]], np.float32), st, p)
    assert st.v[0, 0] == np.float32(0.9) and st2.v[0, 0] == 0.0 and s[0, 0] == 1.0


def test_integer_lif_golden():
    # beta_q = round(.5 * 2^15) = 16384; v = ((v*16384 + 2^14) >> 15) + x
    p = LIFIntParams.from_node(
        LIF(tau_mem=[2e-3], v_th=[1.0]), 1e-3, QuantSpec(bits=32, scale=0.01)
    )
    assert int(p.beta_q[0]) == 16384 and int(p.v_th[0]) == 100
    st = LIFState(np.array([0], np.int64))
    trace = []
    for x in [60, 60, 60, -3]:
        s, st = lif_step_int(np.array([x]), st, p)
        trace.append((int(s[0]), int(st.v[0])))
    # 60 ; 30+60=90 ; 45+60=105>100 -> spike, 0 ; (0)+(-3) = -3
    assert trace == [(0, 60), (0, 90), (1, 0), (0, -3)]
    s, st = lif_step_int(np.array([0]), st, p)
    assert int(st.v[0]) == -1  # -1.5 rounds half toward +inf -> -1


def test_integer_lif_tracks_float():
    rng = np.random.default_rng(1)
    node = LIF(tau_mem=[5e-3] * 16, v_th=[1.0] * 16)
    s_v = 1 / 4096
    g = Graph.sequential(
        [("in", Input(shape=(16,), quant=QuantSpec(bits=32, scale=s_v))), ("n", node)]
    )
    xs = rng.uniform(0, 0.5, (200, 16)).astype(np.float32)
    xs = np.round(xs / s_v) * s_v  # inputs exactly on the integer grid
    yf = Runtime(g).run(xs)
    yi = Runtime(g, mode="int").run(xs)
    assert (yf == yi).mean() > 0.99


@pytest.mark.parametrize(
    "bad", [dict(tau_mem=[0.0], v_th=[1.0]), dict(tau_mem=[1e-3], v_th=[1.0], reset="soft")]
)
def test_bad_neuron_params(bad):
    from neuroplast.errors import GraphError

    with pytest.raises(GraphError):
        LIF(**bad)
