"""Evidence read-out: fitting on synthetic evidence, and the read-out as a runtime graph
(float and integer) equal to applying it to the pooled evidence."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from neuroplast.apps.motion.metrics import accuracy_per_step
from neuroplast.apps.motion.model import HDKernel, prune_kernel
from neuroplast.apps.motion.readout import EvidenceReadout, fit_readout, stack_kernels
from neuroplast.errors import DataError

torch = pytest.importorskip("torch")


def _synthetic(n=24, t=96, c=6, seed=0):
    """Family 0 sees the label 5 steps late (clean), family 1 at once (noisy)."""
    rng = np.random.default_rng(seed)
    y = np.repeat(rng.integers(0, c, (n, t // 12)), 12, axis=1)
    late = np.concatenate([np.zeros((n, 5), np.int64), y[:, :-5]], axis=1)
    e0 = np.eye(c)[late] + 0.3 * rng.standard_normal((n, t, c))
    e1 = 0.6 * np.eye(c)[y] + 0.5 * rng.standard_normal((n, t, c))
    return np.concatenate([e0, e1], -1).astype(np.float32), y


def test_fitted_readout_beats_each_family_and_applies_in_numpy(tmp_path):
    e, y = _synthetic()
    ro = fit_readout(e[:16], y[:16], families=2, lags=2)
    assert ro.a.shape == (2, 2) and ro.b.shape == (6,) and ro.hidden == 0
    got = accuracy_per_step(ro.apply(e[16:]), y[16:])
    for f in (0, 1):
        assert got > accuracy_per_step(e[16:, :, 6 * f : 6 * (f + 1)], y[16:]) + 0.05
    # apply() is r_c(t) = sum_k a[k] . x_c(t - k), x centred over classes and scaled
    i, t = 3, 40
    ec = e[i].reshape(-1, 2, 6)
    x = (ec - ec.mean(-1, keepdims=True)) / ro.scale[:, None]
    want = sum(ro.a[k] @ x[t - k] for k in range(2))
    np.testing.assert_allclose(ro.apply(e)[i, t], want, rtol=1e-5, atol=1e-5)
    mlp = fit_readout(e[:16], y[:16], families=2, lags=2, hidden=4, steps=100)
    assert mlp.hidden == 4 and accuracy_per_step(mlp.apply(e[16:]), y[16:]) > 0.5
    mlp.save(tmp_path / "r.npz")
    np.testing.assert_array_equal(EvidenceReadout.load(tmp_path / "r.npz").apply(e), mlp.apply(e))
    with pytest.raises(DataError, match="channels"):
        ro.apply(e[..., :6])


def test_margin_readout_applies_its_formula_and_round_trips(tmp_path):
    """With margins the tanh units see ``[x_c, x_c - max_c' x_c']`` (written out here
    in plain loops); fitted, it still beats each family alone."""
    e, y = _synthetic(seed=1)
    ro = fit_readout(e[:16], y[:16], families=2, lags=2, hidden=3, steps=100, margins=True)
    assert ro.margins and ro.w1.shape == (3, 2, 4)
    assert not fit_readout(e[:4], y[:4], families=2, lags=2, hidden=3, steps=1).margins
    got = ro.apply(e)
    i, t = 5, 30
    ec = e[i].reshape(-1, 2, 6)
    x = (ec - ec.mean(-1, keepdims=True)) / ro.scale[:, None]  # (T, F, C)
    for c in range(6):
        own = np.array([[x[t - k, f, c] for f in range(2)] for k in range(2)])
        lead = np.array([[x[t - k, f].max() for f in range(2)] for k in range(2)])
        u = np.concatenate([own, own - lead], axis=1)  # (L, 2F)
        h = np.tanh([np.sum(ro.w1[j] * u) + ro.b1[j] for j in range(3)])
        want = np.sum(ro.a * own) + h @ ro.w2 + ro.b[c]
        np.testing.assert_allclose(got[i, t, c], want, rtol=1e-5, atol=1e-5)
    acc = accuracy_per_step(ro.apply(e[16:]), y[16:])
    for f in (0, 1):
        assert acc > accuracy_per_step(e[16:, :, 6 * f : 6 * (f + 1)], y[16:]) + 0.05
    ro.save(tmp_path / "m.npz")
    back = EvidenceReadout.load(tmp_path / "m.npz")
    assert back.margins
    np.testing.assert_array_equal(back.apply(e), got)


def test_readout_graph_float_and_int_match_the_numpy_readout():
    from neuroplast.apps.motion.qat import int_evidence, train_hd_qat
    from neuroplast.apps.motion.readout import readout_graph
    from neuroplast.runtime import Runtime, SparseInput

    rng = np.random.default_rng(2)
    ks = [
        prune_kernel(
            HDKernel(
                rng.standard_normal((4, 2, kt, 3, 3)).astype(np.float32), np.zeros(4, np.float32)
            ),
            60,
            "split",
        )
        for kt in (4, 2)
    ]
    both = stack_kernels(ks)
    assert both.weight.shape == (8, 2, 4, 3, 3) and not both.weight[4:, :, :2].any()
    a = rng.random((2, 2, 16, 8, 9)) < 0.15
    z = np.zeros
    ro = EvidenceReadout(
        np.array([[1.0, -0.4]], np.float32),
        np.array([2.0, 0.5], np.float32),
        z((0, 1, 2), np.float32),
        z(0, np.float32),
        z(0, np.float32),
        rng.standard_normal(4).astype(np.float32),
    )
    q, _ = train_hd_qat([], [], both, a)
    ev_int = int_evidence(q, a)  # (N, T, 8) sums of codes
    deq = ev_int * q.out_q.scale / (6 * 7)  # mean over the 6 x 7 grid
    for mode in ("float", "int"):
        g = readout_graph(q, ro, (9, 8))
        rt = Runtime(g, mode=mode)
        out = np.stack([rt.step(SparseInput(np.flatnonzero(a[0][:, t]))) for t in range(16)])
        out = out.reshape(16, 4)
        if mode == "int":  # exact integer arithmetic with the read-out weights on 8 bits
            lin = g.nodes["readout"]
            s_w = lin.weight_q.scale
            w_q = np.round(lin.weight / s_w) * s_w  # the Linear's 8-bit weights
            ref = deq[0] * (6 * 7) @ w_q.T + ro.b
            out = out * lin.out_q.scale
            assert np.abs(out - ref).max() < 1e-5 * np.abs(ref).max() + s_w * q.out_q.scale
            assert np.mean(out.argmax(1) == ro.apply(deq[0]).argmax(1)) > 0.9
        else:  # float graph: the dequantized weights, float evidence
            from neuroplast.apps.motion.model import predict_dense

            ev = predict_dense(q.kernel, a[:1])[0]  # mean z (T, 8)
            w = (ro.a[0] / ro.scale).repeat(4)  # un-centred: the same decision
            ref = (ev * w).reshape(16, 2, 4).sum(1) + ro.b
            np.testing.assert_allclose(out, ref, atol=1e-4)
            assert np.array_equal(out.argmax(1), ro.apply(ev).argmax(1))
    with pytest.raises(DataError, match="lag-1"):
        readout_graph(q, replace(ro, a=np.ones((2, 2), np.float32)), (9, 8))
