"""``least_squares(shared=True)``: one statistic for all rows gives the per-row rule's
weights (and numpy's weighted ridge fit) whenever every row weighs a step alike, with
``n_post`` times less state; per-row weights are refused in one line."""

from __future__ import annotations

import numpy as np
import pytest

from neuroplast.errors import NeuroplastError, PlasticityError
from neuroplast.graph import Graph, Input, Linear
from neuroplast.plasticity import LeastSquaresParams
from neuroplast.runtime import Runtime

N_PRE, N_POST = 9, 5


def _rt(shared: bool) -> Runtime:
    g = Graph.sequential([
        ("x", Input(shape=(N_PRE,))),
        ("fc", Linear(weight=np.zeros((N_POST, N_PRE), np.float32),
                      bias=np.zeros(N_POST, np.float32))),
    ])  # fmt: skip
    rt = Runtime(g)
    rt.plasticity.attach("fc", LeastSquaresParams(ridge=0.5, shared=shared))
    rt.learn(True)
    return rt


def test_shared_statistics_give_the_per_row_fit_and_numpys():
    rng = np.random.default_rng(0)
    rts = {s: _rt(s) for s in (False, True)}
    X, T, A = [], [], []
    for a in (1.0, 0.0, 3.5, -2.0, 0.25):  # 0 and negative: no learning
        x = rng.standard_normal((7, N_PRE)).astype(np.float32)
        t = rng.standard_normal((len(x), N_POST))
        for rt in rts.values():
            rt.plasticity.set_target("fc", t)
            rt.step(x, reward=a)
        X.append(x.astype(np.float64)), T.append(t), A.append(np.full(len(x), max(a, 0.0)))
    x, t, a = np.concatenate(X), np.concatenate(T), np.concatenate(A)
    ref = np.linalg.solve((x * a[:, None]).T @ x + 0.5 * np.eye(N_PRE), (x * a[:, None]).T @ t).T
    for rt in rts.values():
        np.testing.assert_allclose(rt.params["fc"]["weight"], ref, rtol=1e-5, atol=1e-6)
    sizes = {
        s: {k: v.shape for k, v in rt.plasticity.state_dict().items()} for s, rt in rts.items()
    }
    assert (N_PRE, N_PRE) in sizes[True].values()
    assert (N_POST, N_PRE, N_PRE) in sizes[False].values()


def test_per_row_weights_are_refused_by_the_shared_form():
    rt = _rt(True)
    rt.plasticity.set_target("fc", np.zeros(N_POST))
    with pytest.raises(
        PlasticityError, match=r"shared=True\) takes one sample weight .*shared=False"
    ):
        rt.step(np.ones(N_PRE, np.float32), reward=np.arange(N_POST, dtype=float))
    rt.step(np.ones(N_PRE, np.float32), reward=np.full(N_POST, 2.0))  # all alike: fine


def test_a_per_row_state_does_not_load_into_the_shared_form():
    a, b = _rt(False), _rt(True)
    a.plasticity.set_target("fc", np.zeros(N_POST))
    a.step(np.ones(N_PRE, np.float32))
    with pytest.raises(NeuroplastError, match="least_squares"):
        b.plasticity.load_state_dict(a.plasticity.state_dict(), rt=b)
