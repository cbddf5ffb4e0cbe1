"""The compiled STDP kernels (neuroplast._native, the engine's fast path through
``_accel.kernels()``) against the numpy reference: same weights and traces to rounding,
on random spike trains, every trace mode and weight dependence, float32 and float64."""

from __future__ import annotations

import numpy as np
import pytest

from neuroplast.graph import Graph, Input, Linear
from neuroplast.plasticity import (
    DiehlCookSTDPParams,
    PairSTDPParams,
    SymmetricSTDPParams,
    _accel,
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
