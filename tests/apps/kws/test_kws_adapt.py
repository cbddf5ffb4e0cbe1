"""Voice adaptation (``apps.kws.adapt``): the engine's refit against closed-form weighted
ridge regression, the identity start, accumulation, the guard's rollback, settings chosen
by cross-validation (against a numpy re-implementation of the folds), bad input."""

from __future__ import annotations

import numpy as np
import pytest

from neuroplast.apps.kws.adapt import (
    AUTO_RIDGES,
    AUTO_SHARES,
    AdaptParams,
    adapt_guard,
    adapt_init,
    adapt_readout,
    adapted_scores,
)
from neuroplast.errors import PlasticityError

K, F = 4, 14  # classes; embedding features, the last K the old readout's evidence
MU = np.eye(K, F - K) * 2.0  # the old voices' class means


def _voice(rng, n, new=False):  # noqa: ANN001, ANN202
    """Clips of K classes; the last K features are an old readout (nearest old mean).
    The ``new`` voice puts class k in features K + k, with a trace of class k + 1's old
    mean, so the old readout hears k + 1."""
    y = np.arange(n) % K
    mu = np.eye(K, F - K, K) * 2.0 + 0.5 * MU[(np.arange(K) + 1) % K] if new else MU
    u = mu[y] + 0.3 * rng.standard_normal((n, F - K))
    old = -(((u[:, None, :] - MU[None]) ** 2).sum(-1))
    return np.hstack([u, old]), y


def _g(g, gy):  # noqa: ANN001, ANN202
    return adapt_guard(g, gy, K)


def _ridge_fit(ex, aug, ey, g, gy, share, ridge):  # noqa: ANN001, ANN202
    """Independent reference: numpy weighted ridge regression (normal equations)."""
    user = np.concatenate([ex, aug.reshape(-1, F)])
    uy = np.concatenate([ey, np.repeat(ey, aug.shape[1])])
    a = np.concatenate([np.full(len(user), share / (1 - share) * len(g) / len(user)),
                        np.ones(len(g))])  # fmt: skip
    X = np.hstack([np.concatenate([user, g]), np.ones((len(user) + len(g), 1))])
    T = np.eye(K)[np.concatenate([uy, gy])]
    return np.linalg.solve((X * a[:, None]).T @ X + ridge * np.eye(F + 1), (X * a[:, None]).T @ T).T


def test_refit_is_weighted_ridge_regression():
    rng = np.random.default_rng(0)
    g, gy = _voice(rng, 200)
    ex, ey = _voice(rng, 12)
    aug = ex[:, None, :] + 0.05 * rng.standard_normal((12, 3, F))
    p = AdaptParams(share=0.4, ridge=3.0, max_drop=1.0)
    st, rep = adapt_readout(adapt_init(F, K), ex, ey, _g(g, gy), p, aug)
    W = _ridge_fit(ex, aug, ey, g, gy, 0.4, 3.0)
    np.testing.assert_allclose(st.weights, W, rtol=2e-4, atol=2e-5)  # float32 parameters
    assert rep.accepted and rep.n_examples == 12 and rep.per_class == {0: 3, 1: 3, 2: 3, 3: 3}
    assert (rep.share, rep.ridge, rep.cv_accuracy) == (0.4, 3.0, None)


def test_the_guard_only_refit_is_the_start_with_a_guard():
    rng = np.random.default_rng(7)
    g, gy = _voice(rng, 200)
    st = adapt_init(F, K, _g(g, gy))
    X = np.hstack([g, np.ones((len(g), 1))])
    ref = np.linalg.solve(X.T @ X + 1.0 * np.eye(F + 1), X.T @ np.eye(K)[gy]).T
    np.testing.assert_allclose(st.weights, ref, rtol=2e-4, atol=2e-5)
    assert len(st.labels) == 0
    with pytest.raises(PlasticityError, match=r"guard's readout must be \(4, 12\)"):
        adapt_init(F - 3, K, _g(g, gy))


def test_settings_are_chosen_by_cross_validation_on_the_examples():
    rng = np.random.default_rng(5)
    g, gy = _voice(rng, 300)
    ex, ey = _voice(rng, 16, new=True)  # 4 examples per word: 4 folds
    aug = ex[:, None, :] + 0.05 * rng.standard_normal((16, 2, F))
    st, rep = adapt_readout(adapt_init(F, K), ex, ey, _g(g, gy), AdaptParams(max_drop=1.0), aug)
    # reference: the same folds (j-th example of every word) refitted by numpy
    fold = np.arange(16) // K
    table = []
    for share in AUTO_SHARES:
        for ridge in AUTO_RIDGES:
            hits = 0
            for j in range(4):
                W = _ridge_fit(ex[fold != j], aug[fold != j], ey[fold != j], g, gy, share, ridge)
                pred = (np.hstack([ex[fold == j], np.ones((K, 1))]) @ W.T).argmax(1)
                hits += int(np.sum(pred == ey[fold == j]))
            table.append((-hits / 16, share, -ridge))
    acc, share, ridge = min(table)
    assert (rep.share, rep.ridge) == (share, -ridge) and rep.cv_accuracy == pytest.approx(-acc)
    np.testing.assert_allclose(st.weights, _ridge_fit(ex, aug, ey, g, gy, share, -ridge),
                               rtol=2e-4, atol=2e-5)  # fmt: skip
    # one example per word: nothing to cross-validate, the fixed fallback
    _, rep1 = adapt_readout(adapt_init(F, K), ex[:K], ey[:K], _g(g, gy))
    assert (rep1.share, rep1.ridge, rep1.cv_accuracy) == (0.2, 1.0, None)


def test_a_setting_the_guard_would_refuse_is_not_chosen():
    rng = np.random.default_rng(6)
    g, gy = _voice(rng, 400)
    ex, _ = _voice(rng, 24)
    wrong = (np.arange(24) + 1) % K  # the old voice relabelled: consistent, so folds agree
    st0, gd = adapt_init(F, K), _g(g, gy)
    free = {sh: adapt_readout(st0, ex, wrong, gd, AdaptParams(share=sh, max_drop=1.0))[1]
            for sh in AUTO_SHARES}  # fmt: skip
    top = max(AUTO_SHARES, key=lambda sh: (free[sh].cv_accuracy, -sh))
    assert free[top].guard_acc_after < free[top].guard_acc_before - 0.03  # the CV's favourite
    _, rep = adapt_readout(st0, ex, wrong, gd, AdaptParams(max_drop=0.03))
    assert rep.accepted and rep.share < top
    assert rep.guard_acc_before - rep.guard_acc_after <= 0.03


def test_start_reproduces_the_old_readout_and_adaptation_learns_a_shifted_voice():
    rng = np.random.default_rng(1)
    g, gy = _voice(rng, 400)
    new, ny = _voice(rng, 400, new=True)  # a voice the old readout mis-hears
    st0 = adapt_init(F, K)
    np.testing.assert_array_equal(adapted_scores(st0, new).argmax(1), new[:, F - K :].argmax(1))
    before = float(np.mean(adapted_scores(st0, new[40:]).argmax(1) == ny[40:]))
    st, rep = adapt_readout(st0, new[:20], ny[:20], _g(g, gy), AdaptParams(share=0.5, ridge=1.0))
    after = float(np.mean(adapted_scores(st, new[40:]).argmax(1) == ny[40:]))
    assert before < 0.6 and after > before + 0.25 and rep.accepted
    # a second call keeps the first call's examples (fitted on all 40)
    st2, rep2 = adapt_readout(
        st, new[20:40], ny[20:40], _g(g, gy), AdaptParams(share=0.5, ridge=1.0)
    )
    assert rep2.n_examples == 40 and len(st2.labels) == 40


def test_guard_rolls_back_a_refit_that_forgets_the_old_voices():
    rng = np.random.default_rng(2)
    g, gy = _voice(rng, 400)
    ex, _ = _voice(rng, 40)
    wrong = (np.arange(40) + 1) % K  # examples of the old voice under the wrong labels
    st0 = adapt_init(F, K)
    st, rep = adapt_readout(st0, ex, wrong, _g(g, gy), AdaptParams(share=0.95, ridge=1.0))
    assert not rep.accepted and rep.guard_acc_after < rep.guard_acc_before - 0.03
    assert st is st0  # nothing changed


@pytest.mark.parametrize(
    ("call", "msg"),
    [
        (lambda s, g, gy: adapt_readout(s, np.zeros((2, F - 1)), [0, 1], _g(g, gy)), "examples must be"),
        (lambda s, g, gy: adapt_readout(s, np.zeros((2, F)), np.array([0, K]), _g(g, gy)), "labels must be"),
        (lambda s, g, gy: adapt_guard(g[:0], gy[:0], K), "guard must be"),
        (lambda s, g, gy: adapt_guard(g, gy + K, K), "guard must be"),
        (lambda s, g, gy: adapt_readout(s, np.zeros((2, F)), np.array([0, 1]), g), "AdaptGuard"),
        (lambda s, g, gy: adapt_readout(s, np.zeros((2, F)), np.array([0, 1]), _g(g[:, 1:], gy)),
         "AdaptGuard of 14-feature"),
        (lambda s, g, gy: adapt_readout(s, np.zeros((2, F)), np.array([0, 1]), _g(g, gy),
                                        augmented=np.zeros((3, 1, F))), "augmented"),
        (lambda s, g, gy: adapted_scores(s, np.zeros((3, F + 2))), "embeddings must be"),
        (lambda s, g, gy: AdaptParams(share=1.0), "share"),
        (lambda s, g, gy: AdaptParams(ridge=0.0), "ridge"),
        (lambda s, g, gy: adapt_init(K, K), "score_weight"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_in_one_line(call, msg):
    g, gy = _voice(np.random.default_rng(3), 40)
    with pytest.raises(PlasticityError, match=msg):
        call(adapt_init(F, K), g, gy)


def test_state_round_trips_and_a_damaged_file_is_refused(tmp_path):
    from neuroplast.apps.kws.adapt import load_adapt_state, save_adapt_state

    rng = np.random.default_rng(4)
    g, gy = _voice(rng, 200)
    new, ny = _voice(rng, 12, new=True)
    gd = _g(g, gy)
    st, _ = adapt_readout(adapt_init(F, K), new, ny, gd, augmented=new[:, None, :] + 0.01)
    save_adapt_state(tmp_path / "a.npz", st)
    back = load_adapt_state(tmp_path / "a.npz")
    for k in ("weights", "examples", "augmented", "labels"):
        np.testing.assert_array_equal(getattr(back, k), getattr(st, k))
    # further examples add to the loaded ones, with as many augmented copies each
    _, rep = adapt_readout(back, new[:4], ny[:4], gd, augmented=new[:4, None, :] + 0.01)
    assert rep.n_examples == 16
    with pytest.raises(
        PlasticityError, match="0 augmented copies per example, earlier calls had 1"
    ):
        adapt_readout(back, new[:4], ny[:4], gd)
    bad = dict(np.load(tmp_path / "a.npz"))
    bad["adapt/labels"] = bad["adapt/labels"] + K  # out of range
    np.savez(tmp_path / "b.npz", **bad)
    with pytest.raises(PlasticityError, match="b.npz is unreadable: labels"):
        load_adapt_state(tmp_path / "b.npz")
    (tmp_path / "c.npz").write_bytes(b"not a zip")
    with pytest.raises(PlasticityError, match="c.npz is unreadable"):
        load_adapt_state(tmp_path / "c.npz")


def test_a_damaged_or_incomplete_guard_file_is_refused_in_one_line(tmp_path):
    from neuroplast.apps.kws.pipeline import load_guard
    from neuroplast.errors import DataError

    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="guard set .*junk.npz"):
        load_guard(tmp_path / "junk.npz")
    np.savez(tmp_path / "part.npz", emb=np.zeros((2, 3), np.float32), labels=np.zeros(2, int))
    with pytest.raises(DataError, match="part.npz is unreadable: no scores"):
        load_guard(tmp_path / "part.npz")
