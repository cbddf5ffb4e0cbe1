"""The compiled STDP kernels (neuroplast._native, the engine's fast path through
``_accel.kernels()``) against the numpy reference: same weights and traces to rounding,
on random spike trains, every trace mode and weight dependence, float32 and float64."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from neuroplast.graph import Graph, Input, Linear
from neuroplast.plasticity import (
    DiehlCookSTDPParams,
    PairSTDPParams,
    SymmetricSTDPParams,
    _accel,
    _native_stdp,
    stdp_init,
    stdp_run,
)
from neuroplast.runtime import Runtime
from neuroplast.runtime.native import native_module

pytestmark = pytest.mark.skipif(native_module() is None, reason="extension not built")

RULES = [
    PairSTDPParams(trace="nearest", w_min=-1.0, w_max=1.0),
    PairSTDPParams(trace="all-to-all", weight_dependence="multiplicative"),
    SymmetricSTDPParams(),
    DiehlCookSTDPParams(),
]


def _trains(seed: int, steps: int, n_pre: int, n_post: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    pre = (rng.random((steps, n_pre)) < 0.08) * rng.choice([1.0, 0.5], (steps, n_pre))
    post = (rng.random((steps, n_post)) < 0.08).astype(np.float64)
    return pre, post


@pytest.mark.parametrize("p", RULES, ids=lambda p: type(p).__name__)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stdp_run_matches_numpy(p, dtype) -> None:  # noqa: ANN001
    assert _accel.which() == "native"
    for seed in range(3):
        pre, post = _trains(seed, 200, 37, 11)
        w0 = np.random.default_rng(seed).uniform(0.1, 0.9, (11, 37)).astype(dtype)
        st = stdp_init(37, 11)
        wn, sn = stdp_run(w0, pre, post, st, p, backend="numpy")
        wc, sc = stdp_run(w0, pre, post, st, p, backend="auto")
        assert not np.array_equal(wn, w0)
        assert np.allclose(wc, wn, rtol=0, atol=1e-9 if dtype == np.float64 else 1e-6)
        for a, b in zip(sc, sn):
            assert np.allclose(a, b, rtol=1e-12, atol=1e-12)


def test_engine_through_rt_step_matches_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The on-device path: rt.step + engine, compiled kernels vs numpy."""
    pre, post = _trains(5, 300, 70, 25)
    w0 = np.random.default_rng(0).uniform(0.2, 0.8, (25, 70)).astype(np.float32)

    def learn() -> np.ndarray:
        g = Graph(
            {"pre": Input(shape=(70,)), "fc": Linear(weight=w0), "post": Input(shape=(25,))},
            [("pre", "fc")],
        )
        rt = Runtime(g)
        rt.plasticity.attach("fc", PairSTDPParams(trace="nearest"), post="post")
        rt.learn(True)
        for t in range(pre.shape[0]):
            rt.step({"pre": pre[t], "post": post[t]})
        return rt.params["fc"]["weight"].copy()

    fast = learn()
    monkeypatch.setattr(_accel, "_CACHE", {"k": None, "which": "numpy"})
    ref = learn()
    assert not np.array_equal(ref, w0)
    assert np.allclose(fast, ref, atol=1e-6)


def test_native_stdp_refuses_bad_buffers() -> None:
    event_apply, _ = _accel.kernels()
    w = np.zeros((4, 5), np.float32)
    with pytest.raises(ValueError, match="out of range"):
        event_apply(w, np.array([7]), np.array([], np.int64), np.ones(1), np.zeros(5),
                    np.zeros(5), np.zeros(4), False, 0.0, 1.0, True)  # fmt: skip
    with pytest.raises(TypeError, match="float32 or float64"):
        event_apply(w.astype(np.int32), np.array([0]), np.array([], np.int64), np.ones(1),
                    np.zeros(5), np.zeros(5), np.zeros(4), False, 0.0, 1.0, True)  # fmt: skip


def _loop_reference(w, pre, post, x, y, y2, cs, nearest, mult, dc, per_term):  # noqa: ANN001
    """Plain loops over the trace-STDP definition (independent of stdp.py and the C code):
    decay; the saturation guard (10th constant); post-spike rows, pre-spike columns, a
    synapse hit by both summed (per_term: each term soft-bounded apart); clip; traces."""
    a_pre, a_post, a_post2, amp_pre, amp_post, g_post, g_pre, lo, hi = cs[:9]
    cap = cs[9] if len(cs) > 9 else np.inf
    w = w.astype(np.float64)

    def soft(d, wv):
        return (d * (hi - wv) if d > 0 else d * (wv - lo)) if mult else d

    for t in range(pre.shape[0]):
        x *= a_pre
        y *= a_post
        if dc:
            y2 *= a_post2
        n_act = np.count_nonzero(pre[t])
        if n_act > 1 and n_act > cap * pre.shape[1]:
            continue
        for i in range(w.shape[0]):
            for j in range(w.shape[1]):
                ltp = (g_post * (y2[i] if dc else 1.0)) * post[t, i] * x[j] if post[t, i] else 0.0
                ltd = y[i] * (g_pre * pre[t, j]) if pre[t, j] and g_pre else 0.0
                if not (post[t, i] or (pre[t, j] and g_pre)):
                    continue
                d = (
                    soft(ltp, w[i, j]) + soft(ltd, w[i, j])
                    if per_term
                    else soft(ltp + ltd, w[i, j])
                )
                w[i, j] = min(max(w[i, j] + d, lo), hi)
        for j in np.flatnonzero(pre[t]):
            if nearest:
                if pre[t, j] > 0 or not per_term:
                    x[j] = amp_pre
            else:
                x[j] += amp_pre * pre[t, j]
        for i in np.flatnonzero(post[t]):
            if nearest:
                if post[t, i] > 0 or not per_term:
                    y[i] = amp_post
                    y2[i] = 1.0 if dc else y2[i]
            else:
                y[i] += amp_post * post[t, i]
                y2[i] += post[t, i] if dc else 0.0
    return w


@pytest.mark.parametrize("per_term", [False, True])
@pytest.mark.parametrize("cap", [None, 0.3])
@pytest.mark.parametrize(
    ("nearest", "mult", "dc"), [(True, True, False), (False, True, True), (True, False, False)]
)
def test_kernel_definitions_against_loops(monkeypatch, per_term, cap, nearest, mult, dc) -> None:  # noqa: ANN001
    """Both definitions the kernel carries (``_accel.SOFT_PER_TERM``), with and without the
    saturation guard, against plain loops; spikes of both signs, saturated steps included."""
    monkeypatch.setattr(_native_stdp, "SOFT_PER_TERM", per_term)
    rng = np.random.default_rng(int(per_term) + 2 * (cap is None) + 4 * nearest)
    n_pre, n_post, steps = 13, 6, 80
    pre = (rng.random((steps, n_pre)) < 0.15) * rng.choice([1.0, -0.5, 0.7], (steps, n_pre))
    post = (rng.random((steps, n_post)) < 0.2) * rng.choice([1.0, -1.0], (steps, n_post))
    pre[::9] = 1.0  # saturated steps: skipped when the guard is on
    cs = [0.9, 0.85, 0.95, 1.0, 0.8, 0.02, -0.015, 0.0, 1.0] + ([cap] if cap is not None else [])
    w0 = rng.uniform(0.1, 0.9, (n_post, n_pre))
    tr = [np.zeros(n_pre), np.zeros(n_post), np.zeros(n_post)]
    ref = _loop_reference(w0, pre, post, *[a.copy() for a in tr], cs, nearest, mult, dc, per_term)
    w = w0.copy()
    _accel.kernels()[1](w, pre, post, *tr, np.array(cs), nearest, mult, dc)
    assert not np.allclose(ref, w0)
    np.testing.assert_allclose(w, ref, rtol=0, atol=1e-12)


STEP_RULES = RULES + [
    PairSTDPParams(trace="all-to-all", w_min=0.0, w_max=1.0, rate_cap=0.2),
    SymmetricSTDPParams(weight_dependence="multiplicative", trace="nearest"),
    DiehlCookSTDPParams(trace="all-to-all"),
]


def _stream(rng: np.random.Generator, steps: int, n_pre: int, n_post: int):  # noqa: ANN202
    """Signed, graded, sparse float32 activity with some saturated and some silent steps."""
    pre = (rng.random((steps, n_pre)) < rng.uniform(0.02, 0.2)) * rng.choice(
        [1.0, 0.5, -0.7], (steps, n_pre)
    )
    post = (rng.random((steps, n_post)) < rng.uniform(0.02, 0.2)) * rng.choice(
        [1.0, 2.0, -1.0], (steps, n_post)
    )
    pre[rng.random(steps) < 0.05] = 1.0  # saturated: skipped by the rate guard
    pre[rng.random(steps) < 0.1] = 0.0
    post[rng.random(steps) < 0.1] = 0.0
    return pre.astype(np.float32), post.astype(np.float32)


@pytest.mark.parametrize("p", STEP_RULES, ids=lambda p: f"{type(p).__name__}-{p.trace}")
def test_bound_step_matches_stdp_run(p) -> None:  # noqa: ANN001
    """The engine's streaming kernel (step_plan: one stdp_run step bound to fixed arrays)
    equals the compiled stdp_run step by step to the bit, and the numpy stdp_run over the
    whole stream to float32 rounding; random shapes, traces and post sum included."""
    from neuroplast.plasticity.stdp import _fast_consts

    c = _fast_consts(p)
    rng = np.random.default_rng(zlib.crc32(repr(p).encode()))
    for _ in range(3):
        n_pre, n_post, steps = (int(v) for v in rng.integers(1, 90, 3))
        pre, post = _stream(rng, steps, n_pre, n_post)
        w0 = rng.uniform(0.05, 0.95, (n_post, n_pre)).astype(np.float32)
        w, wc = w0.copy(), w0.copy()
        tr = [np.zeros(n_pre), np.zeros(n_post), np.zeros(n_post)]
        trc = [a.copy() for a in tr]
        pb, qb, ps = np.zeros(n_pre, np.float32), np.zeros(n_post, np.float32), np.zeros(n_post)
        run = _native_stdp.step_plan(
            w, pb, qb, *tr, c.packed, p.trace == "nearest", c.rule[7], c.dc, ps
        )
        assert run is not None
        for t in range(steps):
            pb[:], qb[:] = pre[t], post[t]
            run()
            _accel.kernels()[1](wc, pre[t : t + 1], post[t : t + 1], *trc, c.packed,
                                p.trace == "nearest", c.rule[7], c.dc)  # fmt: skip
            assert np.array_equal(w, wc)
        for a, b in zip(tr, trc):
            assert np.array_equal(a, b)
        np.testing.assert_array_equal(ps, post.astype(np.float64).sum(axis=0))
        wn, sn = stdp_run(w0, pre, post, stdp_init(n_pre, n_post), p, backend="numpy")
        np.testing.assert_allclose(w, wn, rtol=0, atol=1e-6)
        for a, b in zip(tr, sn):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_bound_step_refuses_nan_and_bad_arrays() -> None:
    c = np.array([0.9, 0.9, 1.0, 1.0, 1.0, 0.01, -0.01, 0.0, 1.0, 0.5])
    w = np.full((3, 4), 0.5, np.float32)
    pre, post = np.zeros(4, np.float32), np.zeros(3, np.float32)
    tr = [np.full(4, 0.5), np.full(3, 0.5), np.zeros(3)]
    run = _native_stdp.step_plan(w, pre, post, *tr, c, True, False, False)
    pre[1], post[0] = 1.0, np.inf
    with pytest.raises(FloatingPointError):
        run()
    assert (w == 0.5).all() and (tr[0] == 0.5).all() and (tr[1] == 0.5).all()  # untouched
    assert (
        _native_stdp.step_plan(w.astype(np.float64), pre, post, *tr, c, True, False, False) is None
    )
    assert _native_stdp.step_plan(w, pre[:3], post, *tr, c, True, False, False) is None
    assert _native_stdp.step_plan(w.T, pre, post, *tr, c, True, False, False) is None


def _learner(w0: np.ndarray, p) -> Runtime:  # noqa: ANN001
    n_post, n_pre = w0.shape
    g = Graph(
        {"pre": Input(shape=(n_pre,)), "fc": Linear(weight=w0), "post": Input(shape=(n_post,))},
        [("pre", "fc")],
    )
    rt = Runtime(g)
    rt.plasticity.attach("fc", p, post="post", force=True)
    rt.learn(True)
    return rt


@pytest.mark.parametrize("p", STEP_RULES, ids=lambda p: f"{type(p).__name__}-{p.trace}")
def test_engine_bound_step_matches_numpy_engine(monkeypatch, p) -> None:  # noqa: ANN001
    """rt.step + engine on the bound native step against the engine with no compiled
    kernels (numpy), random shapes and streams; the stats and update counts agree too."""
    rng = np.random.default_rng(7)
    n_pre, n_post, steps = int(rng.integers(2, 120)), int(rng.integers(2, 60)), 150
    pre, post = _stream(rng, steps, n_pre, n_post)
    w0 = rng.uniform(0.1, 0.9, (n_post, n_pre)).astype(np.float32)

    def learn() -> tuple[np.ndarray, dict, Runtime]:
        rt = _learner(w0, p)
        for t in range(steps):
            rt.step({"pre": pre[t], "post": post[t]})
        return rt.params["fc"]["weight"].copy(), rt.plasticity.stats(rt), rt

    fast, st_fast, rt = learn()
    assert rt.plasticity.bindings[0].plan is not None  # the bound step ran
    monkeypatch.setattr(_accel, "_CACHE", {"k": None, "which": "numpy"})
    ref, st_ref, rt_ref = learn()
    assert rt_ref.plasticity.bindings[0].plan is None
    assert not np.array_equal(ref, w0)
    np.testing.assert_allclose(fast, ref, rtol=0, atol=1e-6)
    assert st_fast["fc:" + rt.plasticity.bindings[0].kind]["updates"] == steps
    for k in ("updates", "firing_rate_mean", "firing_rate_max"):
        key = "fc:" + rt.plasticity.bindings[0].kind
        assert st_fast[key][k] == pytest.approx(st_ref[key][k], rel=1e-12)


def test_bound_step_follows_state_loads_and_copies() -> None:
    """The bound step is rebuilt when the state it views is replaced (load_state_dict) and
    dropped by copies: resumed / copied runtimes learn exactly as the original goes on."""
    import copy

    rng = np.random.default_rng(3)
    pre, post = _stream(rng, 120, 40, 17)
    w0 = rng.uniform(0.1, 0.9, (17, 40)).astype(np.float32)
    p = PairSTDPParams(trace="nearest", w_min=0.0, w_max=1.0)
    rt = _learner(w0, p)
    for t in range(60):
        rt.step({"pre": pre[t], "post": post[t]})
    saved = rt.state_dict()
    twin = copy.deepcopy(rt)
    resumed = _learner(w0, p)
    for t in range(5):  # bind its own step first, on other activity
        resumed.step({"pre": pre[-1 - t], "post": post[-1 - t]})
    resumed.load_state_dict(saved)
    for r in (rt, twin, resumed):
        for t in range(60, 120):
            r.step({"pre": pre[t], "post": post[t]})
    w = rt.params["fc"]["weight"]
    assert rt.plasticity.bindings[0].plan is not None
    np.testing.assert_array_equal(twin.params["fc"]["weight"], w)
    np.testing.assert_array_equal(resumed.params["fc"]["weight"], w)
    a, b = rt.plasticity.state_dict(), resumed.plasticity.state_dict()
    for k in a:
        if k != "rng":
            np.testing.assert_array_equal(a[k], b[k])
