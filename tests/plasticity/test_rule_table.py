"""The rule table: a user rule (BCM) registered with register_rule runs through the
engine like a built-in one; the Hebbian rule against its formula; soft-bound STDP per
term against a textbook scalar loop (van Rossum et al. 2000, Guetig et al. 2003)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import pytest

from neuroplast.errors import PlasticityError, RuntimeStateError
from neuroplast.graph import LIF, Graph, Input, Linear
from neuroplast.plasticity import (
    RULE_KINDS,
    HebbianParams,
    PairSTDPParams,
    PlasticityEngine,
    pair_stdp_update,
    register_rule,
    stdp_init,
    stdp_run,
)
from neuroplast.plasticity.registry import RULE_SPECS
from neuroplast.runtime import Runtime


@dataclass(frozen=True)
class BCMParams:
    """BCM (Bienenstock, Cooper & Munro 1982; Intrator & Cooper 1992 form):
    ``dw = lr * y (y - theta_M) x^T``, ``theta_M <- theta_M + (y^2 - theta_M) / tau``."""

    lr: float = 0.05
    tau: float = 5.0
    w_min: float | None = None
    w_max: float | None = None


def bcm_update(p: BCMParams, io, state):
    y, x = io.post.mean(axis=0), io.pre.mean(axis=0)
    th = state["theta_m"] + (y**2 - state["theta_m"]) / p.tau
    return p.lr * np.outer(y * (y - th), x), {"theta_m": th}


def bcm_state(p, n_post, n_pre):
    return {"theta_m": ((n_post,), "float64")}


@pytest.fixture()
def bcm():
    register_rule("bcm", BCMParams, bcm_update, state=bcm_state)
    yield BCMParams
    RULE_KINDS.pop("bcm")
    RULE_SPECS.pop("bcm")


def _readout(n_in=6, n_out=3, seed=0):
    w = np.random.default_rng(seed).uniform(-0.5, 0.5, (n_out, n_in)).astype(np.float32)
    return Graph.sequential([("in", Input(shape=(n_in,))), ("ro", Linear(weight=w))])


def test_user_bcm_rule_runs_through_the_engine(bcm, tmp_path) -> None:
    rt = Runtime(_readout())
    rt.plasticity.attach("ro", bcm(lr=0.05, tau=5.0))
    rt.learn(True)
    w = rt.params["ro"]["weight"].astype(np.float64)
    lo, hi = -np.abs(w).max() * (1 + 1e-6), np.abs(w).max() * (1 + 1e-6)
    th = np.zeros(3)
    xs = np.random.default_rng(1).uniform(0, 1, (50, 6))
    for x in xs:  # independent loop: the post activity is the layer's output y = w x
        rt.step(x.astype(np.float32))
        y = w @ x
        th = th + (y**2 - th) / 5.0
        w = np.clip(w + 0.05 * np.outer(y * (y - th), x), lo, hi)
        np.testing.assert_allclose(rt.params["ro"]["weight"], w, atol=1e-5)
    assert not np.allclose(w, _readout().nodes["ro"].weight, atol=1e-3)  # it learned
    b = rt.plasticity.bindings[0]
    assert b.kind == "bcm" and b.updates == 50  # not the delta rule (it needs a target)
    np.testing.assert_allclose(b.state["theta_m"], th, atol=1e-5)
    # plasticity.json and the learned state round-trip; a wrong-shape state is refused
    again = PlasticityEngine.from_json(rt.plasticity.to_json())
    assert json.loads(again.to_json())["rules"][0]["kind"] == "bcm"
    rt.save_state(tmp_path / "s.npz")
    rt2 = Runtime(_readout())
    rt2.plasticity = again
    rt2.load_state(tmp_path / "s.npz")
    np.testing.assert_array_equal(rt2.plasticity.bindings[0].state["theta_m"], b.state["theta_m"])
    d = dict(np.load(tmp_path / "s.npz"))
    d["plasticity/0/ro/bcm/theta_m"] = np.zeros(4)
    rt3 = Runtime(_readout())
    rt3.plasticity = PlasticityEngine.from_json(rt.plasticity.to_json())
    w3 = rt3.params["ro"]["weight"].copy()
    with pytest.raises(RuntimeStateError, match="theta_m"):
        rt3.load_state_dict(d)
    np.testing.assert_array_equal(rt3.params["ro"]["weight"], w3)  # nothing applied


def test_a_user_rule_returning_the_wrong_shape_is_named(bcm) -> None:
    register_rule("bad_shape", BadParams, lambda p, io, st: (np.zeros(3), st))
    try:
        rt = Runtime(_readout())
        rt.plasticity.attach("ro", BadParams())
        rt.learn(True)
        with pytest.raises(PlasticityError, match="'bad_shape': update must return"):
            rt.step(np.ones(6, np.float32))
    finally:
        RULE_KINDS.pop("bad_shape")
        RULE_SPECS.pop("bad_shape")


@dataclass(frozen=True)
class BadParams:
    lr: float = 0.1


def test_register_rule_errors() -> None:
    @dataclass
    class Mutable:
        lr: float = 0.1

    with pytest.raises(PlasticityError, match="frozen"):
        register_rule("mutable", Mutable, bcm_update)
    register_rule("only_json", BCMParams)  # serialisable, but no update function
    try:
        with pytest.raises(PlasticityError, match="no update function"):
            PlasticityEngine().attach("ro", BCMParams())
    finally:
        RULE_KINDS.pop("only_json")


def test_hebbian_rule_against_its_formula() -> None:
    """``dw = lr (y x^T / B - decay mean|y| w)`` (rows of active neurons decay) with the
    post LIF's spikes as ``y``, bounds at the layer's range; a silent step changes
    nothing; constant x, y: linear growth."""
    w0 = np.random.default_rng(0).uniform(0.0, 0.5, (4, 8)).astype(np.float32)
    g = Graph.sequential(
        [
            ("in", Input(shape=(8,))),
            ("fc", Linear(weight=w0)),
            ("lif", LIF(tau_mem=[5e-3], v_th=[0.3])),
        ]
    )
    rt = Runtime(g)
    rt.plasticity.attach("fc", HebbianParams(lr=0.01, decay=0.2))
    rt.learn(True)
    w, hi = w0.astype(np.float64), float(w0.max()) * (1 + 1e-6)
    rng = np.random.default_rng(2)
    for t in range(60):
        x = np.zeros((3, 8)) if t % 10 == 0 else (rng.random((3, 8)) < 0.4).astype(float)
        rt.step(x.astype(np.float32))
        y = np.asarray(rt.last_outputs["lif"], np.float64)
        if x.any():
            w = np.clip(w + 0.01 * (y.T @ x / 3 - 0.2 * y.mean(axis=0)[:, None] * w), 0.0, hi)
        np.testing.assert_allclose(rt.params["fc"]["weight"], w, atol=1e-6)
    # analytic: constant pre x and post y, no decay, no bounds hit -> w0 + n lr y x^T
    rt = Runtime(g)
    rt.plasticity.attach("fc", HebbianParams(lr=1e-3, w_min=-10.0, w_max=10.0))
    rt.learn(True)
    x = np.ones(8, np.float32)
    x[::2] = 0
    for _ in range(20):
        rt.step(x)
    y = rt.last_outputs["lif"].astype(np.float64)
    assert y.all()  # every post neuron fires on this input
    np.testing.assert_allclose(
        rt.params["fc"]["weight"], w0 + 20 * 1e-3 * np.outer(y, x), atol=1e-6
    )


def _textbook_soft_stdp(w0, pre_t, post_t, p: PairSTDPParams, summed=False) -> np.ndarray:
    """Scalar loop, one synapse at a time: traces x_j, y_i decay by exp(-dt/tau), then
    dw = eta_plus x_j (w_max - w) on a post spike and - eta_minus y_i (w - w_min) on a
    pre spike (both with the weight before the step), then the spikes enter the traces.
    ``summed``: the old form (the sum of both terms scaled by its own sign)."""
    w = w0.copy()
    n_post, n_pre = w.shape
    x, y = np.zeros(n_pre), np.zeros(n_post)
    ap, am = math.exp(-p.dt / p.tau_plus), math.exp(-p.dt / p.tau_minus)
    for pre, post in zip(pre_t, post_t):
        x, y = x * ap, y * am
        for i in range(n_post):
            for j in range(n_pre):
                up = p.eta_plus * x[j] if post[i] else 0.0
                down = p.eta_minus * y[i] if pre[j] else 0.0
                if summed:
                    d = up - down
                    d = d * (p.w_max - w[i, j]) if d > 0 else d * (w[i, j] - p.w_min)
                else:
                    d = up * (p.w_max - w[i, j]) - down * (w[i, j] - p.w_min)
                w[i, j] = min(max(w[i, j] + d, p.w_min), p.w_max)
        x, y = x + p.a_plus * pre, y + p.a_minus * post
    return w


@pytest.mark.parametrize("backend", ["step", "numpy", "numba", "engine"])
def test_soft_bound_stdp_per_term_matches_textbook(backend: str) -> None:
    if backend == "numba":
        from neuroplast.plasticity import _accel

        if _accel.kernels() is None:
            pytest.skip("numba not installed")
    p = PairSTDPParams(
        eta_plus=0.3, eta_minus=0.35, tau_plus=8.0, tau_minus=12.0, rate_cap=1.0,
        w_min=-0.2, w_max=0.8, weight_dependence="multiplicative",
    )  # fmt: skip
    rng = np.random.default_rng(5)
    pre_t = (rng.random((300, 6)) < 0.3).astype(float)
    post_t = (rng.random((300, 4)) < 0.3).astype(float)
    assert (pre_t.any(1) & post_t.any(1)).sum() > 100  # synapses hit by both terms at once
    w0 = rng.uniform(-0.2, 0.8, (4, 6))
    ref = _textbook_soft_stdp(w0, pre_t, post_t, p)
    if backend == "step":
        w, st = w0, stdp_init(6, 4)
        for a, b in zip(pre_t, post_t):
            w, st = pair_stdp_update(w, a, b, st, p)
    elif backend == "engine":  # the engine's float fast path, in place on float64 rows
        from neuroplast.plasticity.stdp import stdp_fast

        w = w0.copy()
        st = {k: np.zeros(n) for k, n in (("pre", 6), ("post", 4), ("post2", 4))}
        for a, b in zip(pre_t, post_t):
            st = stdp_fast(p, w, a, b, st)
    else:
        w, _ = stdp_run(w0, pre_t, post_t, stdp_init(6, 4), p, backend=backend)
    np.testing.assert_allclose(w, ref, atol=1e-9)
    # the summed form differs by far more than the tolerance (the test can fail)
    assert np.abs(ref - _textbook_soft_stdp(w0, pre_t, post_t, p, summed=True)).max() > 1e-2


@dataclass(frozen=True)
class SignHebbParams:
    """An integer-native user rule: ``q += step`` where pre code > 0 and post spiked,
    ``q -= step`` where pre code > 0 and post silent, clipped to ``[-limit, limit]``."""

    step: int = 1
    limit: int = 100


def sign_hebb_q(p: SignHebbParams, qio, state):
    act = (qio.pre[0] > 0)[None, :]
    sgn = np.where(qio.post[0] != 0, 1, -1)[:, None]
    q = np.clip(qio.q.astype(np.int64) + p.step * sgn * act, -p.limit, p.limit)
    return q.astype(np.int8), {"count": state["count"] + 1}


def sign_hebb_state(p, n_post, n_pre):
    return {"count": ((), "int64")}


def _check_count(p, state) -> None:
    if int(state["count"]) < 0:
        raise RuntimeStateError("sign_hebb: count must be >= 0")


@pytest.fixture()
def sign_hebb():
    register_rule(
        "sign_hebb", SignHebbParams, update_q=sign_hebb_q, state=sign_hebb_state,
        init=lambda p, n_post, n_pre: {"count": np.zeros((), np.int64)},
        check_state=_check_count, batch1=True,
    )  # fmt: skip
    yield SignHebbParams
    RULE_KINDS.pop("sign_hebb")
    RULE_SPECS.pop("sign_hebb")


def _int_plastic(mode="int"):
    from neuroplast.graph import QuantSpec

    rng = np.random.default_rng(0)
    g = Graph.sequential(
        [
            ("x", Input(shape=(10,), quant=QuantSpec(8, 1.0, 0))),
            (
                "fc",
                Linear(
                    weight=rng.normal(0.2, 0.3, (4, 10)),
                    weight_q=QuantSpec(8, 0.01, 0, narrow=True),
                    out_q=QuantSpec(16, 0.01, 0),
                ),
            ),  # fmt: skip
            ("lif", LIF(tau_mem=np.full(4, 0.01), v_th=np.full(4, 0.6), reset="zero")),
        ],
        dt=1e-3,
    )
    return Runtime(g, mode=mode)


def test_user_integer_native_rule_is_exact_and_checked(sign_hebb, tmp_path) -> None:
    """A user ``update_q`` rule runs in integer mode on the runtime's own codes, equal
    to an independent numpy loop over the same activity; its state round-trips and
    ``check_state`` refuses bad loaded values with nothing applied."""
    rt = _int_plastic()
    rt.plasticity.attach("fc", sign_hebb(step=2, limit=90))
    rt.learn(True)
    w = rt.params["fc"]["weight"].astype(np.int64)
    rng = np.random.default_rng(3)
    for _ in range(200):
        x = rng.integers(-3, 4, 10).astype(np.int8)
        y = np.asarray(rt.step(x)).reshape(-1)
        sgn = np.where(y != 0, 1, -1)[:, None]
        w = np.clip(w + 2 * sgn * (x > 0)[None, :], -90, 90)
    np.testing.assert_array_equal(rt.params["fc"]["weight"], w)
    assert rt.params["fc"]["weight"].dtype == np.int8 and np.abs(w).max() == 90
    rt.save_state(tmp_path / "s.npz")
    d = dict(np.load(tmp_path / "s.npz"))
    key = next(k for k in d if k.endswith("sign_hebb/count"))
    assert int(d[key]) == 200
    d[key] = np.array(-1)
    np.savez(tmp_path / "bad.npz", **d)
    rt2 = _int_plastic()
    rt2.plasticity.attach("fc", sign_hebb(step=2, limit=90))
    w2 = rt2.params["fc"]["weight"].copy()
    with pytest.raises(RuntimeStateError, match="count must be"):
        rt2.load_state(tmp_path / "bad.npz")
    np.testing.assert_array_equal(rt2.params["fc"]["weight"], w2)


def test_user_integer_native_rule_refusals(sign_hebb) -> None:
    rt = _int_plastic(mode="float")
    rt.plasticity.attach("fc", sign_hebb())
    rt.learn(True)
    with pytest.raises(PlasticityError, match="integer-only"):
        rt.step(np.ones(10, np.int8))
    # codes outside the layer's range would wrap int8: refused, weights untouched
    register_rule("wrap", BadParams, update_q=lambda p, qio, st: (qio.q.astype(int) + 200, st))
    try:
        rt = _int_plastic()
        rt.plasticity.attach("fc", BadParams())
        rt.learn(True)
        w = rt.params["fc"]["weight"].copy()
        with pytest.raises(PlasticityError, match="outside"):
            rt.step(np.ones(10, np.int8))
        np.testing.assert_array_equal(rt.params["fc"]["weight"], w)
    finally:
        RULE_KINDS.pop("wrap")
        RULE_SPECS.pop("wrap")
    with pytest.raises(PlasticityError, match="update_q must be callable"):
        register_rule("nope", BadParams, update_q=3)
