"""Oja and HLOP against numpy.linalg (eigh / svd), and HLOP continual learning."""

from __future__ import annotations

import numpy as np
import pytest

from neuroplast.errors import DataError, PlasticityError
from neuroplast.plasticity import (
    DeltaRuleParams,
    HLOPParams,
    OjaParams,
    delta_rule_update,
    hlop_add_rows,
    hlop_freeze,
    hlop_init,
    hlop_orthonormality_error,
    hlop_project,
    hlop_update,
    oja_update,
)


def _cov(rng: np.random.Generator, n: int, eig: np.ndarray) -> np.ndarray:
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return (q * eig) @ q.T


def test_oja_converges_to_first_pc() -> None:
    rng = np.random.default_rng(0)
    n = 10
    c = _cov(rng, n, np.array([5.0, 2.0, 1.5, 1, 0.8, 0.5, 0.4, 0.3, 0.2, 0.1]))
    x = rng.multivariate_normal(np.zeros(n), c, size=6000)
    w = rng.standard_normal((1, n)) * 0.1
    for t, xb in enumerate(x.reshape(-1, 10, n)):
        w = oja_update(w, xb, OjaParams(lr=0.05 / (1 + t / 200)))
    evals, evecs = np.linalg.eigh(c)
    pc1 = evecs[:, -1]
    cos = abs(w[0] @ pc1) / np.linalg.norm(w[0])
    assert cos > 0.99
    assert abs(np.linalg.norm(w[0]) - 1.0) < 0.05  # Oja's fixed point is unit norm


def _subspace_error(H: np.ndarray, U: np.ndarray) -> float:
    """Spectral norm of the difference of projectors (sine of the largest angle)."""
    q, _ = np.linalg.qr(H.T)
    return float(np.linalg.norm(q @ q.T - U @ U.T, 2))


def test_hlop_rows_converge_to_principal_subspace() -> None:
    rng = np.random.default_rng(1)
    n, k = 30, 4
    eig = np.concatenate([[6.0, 5.0, 4.0, 3.0], np.full(n - k, 0.1)])
    x = rng.multivariate_normal(np.zeros(n), _cov(rng, n, eig), size=4000)
    st = hlop_add_rows(hlop_init(n), k, rng)
    for t, xb in enumerate(x.reshape(-1, 20, n)):
        st = hlop_update(st, xb, HLOPParams(lr=0.05 / (1 + t / 30), momentum=0.5))
    u, _, _ = np.linalg.svd(x.T @ x)
    err = _subspace_error(st.H, u[:, :k])
    assert err < 0.05, err
    assert hlop_orthonormality_error(st.H) < 0.05
    # projection removes the subspace: residual equals numpy's orthogonal complement
    xt = hlop_project(st.H, x[:50])
    ref = x[:50] - x[:50] @ u[:, :k] @ u[:, :k].T
    assert np.linalg.norm(xt - ref) / np.linalg.norm(ref) < 0.1


def _task(rng, basis, teacher, m, noise=0.02):
    z = rng.standard_normal((m, basis.shape[1]))
    x = z @ basis.T + noise * rng.standard_normal((m, basis.shape[0]))
    return x, np.argmax(z @ teacher.T, axis=1)


def _acc(w, x, y):
    return 100.0 * np.mean(np.argmax(x @ w.T, axis=1) == y)


def _train(w, x, y, n_cls, st=None, epochs=3, lr=0.05):
    p = DeltaRuleParams(lr=lr)
    t = np.eye(n_cls)[y]
    for _ in range(epochs):
        for i in range(0, len(x), 10):
            xb = x[i : i + 10]
            xu = None if st is None else hlop_project(st.H[st.frozen], xb)
            w = delta_rule_update(w, xb, t[i : i + 10], p, x_update=xu)
    return w


def test_hlop_two_tasks_forgetting() -> None:
    """Shared linear readout trained by the local delta rule on two tasks whose input
    subspaces overlap (45 degrees). HLOP projection keeps task 1; plain delta rule
    overwrites it."""
    rng = np.random.default_rng(2)
    n, d, n_cls = 40, 5, 4
    q, _ = np.linalg.qr(rng.standard_normal((n, 2 * d)))
    b1, r = q[:, :d], q[:, d:]
    b2 = (b1 + r) / np.sqrt(2)
    t1, t2 = rng.standard_normal((n_cls, d)), rng.standard_normal((n_cls, d))
    x1, y1 = _task(rng, b1, t1, 3000)
    x2, y2 = _task(rng, b2, t2, 3000)
    xe1, ye1 = _task(rng, b1, t1, 1000)
    xe2, ye2 = _task(rng, b2, t2, 1000)

    results = {}
    for use_hlop in (False, True):
        w = np.zeros((n_cls, n))
        st = hlop_add_rows(hlop_init(n), d, np.random.default_rng(3))
        w = _train(w, x1, y1, n_cls)
        if use_hlop:  # learn the task-1 input subspace with the Hebbian rule, then freeze
            for i in range(0, len(x1), 20):
                st = hlop_update(st, x1[i : i + 20], HLOPParams(lr=0.05, momentum=0.5))
            st = hlop_freeze(st)
        a1 = _acc(w, xe1, ye1)
        w = _train(w, x2, y2, n_cls, st if use_hlop else None)
        results[use_hlop] = (a1, _acc(w, xe1, ye1), _acc(w, xe2, ye2))
    a1, a1_after, a2 = results[True]
    assert a1 > 70 and a2 > 60, results
    assert a1 - a1_after < 2.0, results
    b1_, b1_after, _ = results[False]
    assert b1_ - b1_after > 20.0, results


def test_hlop_add_rows_orthogonal_and_frozen_rows_fixed() -> None:
    rng = np.random.default_rng(4)
    st = hlop_freeze(hlop_add_rows(hlop_init(12), 3, rng, scale=1.0))
    st = hlop_add_rows(st, 2, rng, scale=1.0)
    assert hlop_orthonormality_error(st.H) < 1e-10
    before = st.H[:3].copy()
    st2 = hlop_update(st, rng.standard_normal((8, 12)), HLOPParams(lr=0.1))
    np.testing.assert_array_equal(st2.H[:3], before)
    assert not np.allclose(st2.H[3:], st.H[3:])


def test_hlop_bad_input() -> None:
    st = hlop_add_rows(hlop_init(5), 2, np.random.default_rng(0))
    with pytest.raises(DataError, match="NaN"):
        hlop_update(st, [1.0, np.nan, 0, 0, 0], HLOPParams())
    with pytest.raises(DataError, match="features"):
        hlop_update(st, np.ones(4), HLOPParams())
    with pytest.raises(PlasticityError, match="momentum"):
        HLOPParams(momentum=1.5)
    with pytest.raises(PlasticityError, match="rows > n"):
        hlop_add_rows(st, 4, np.random.default_rng(0))
