"""Voice adaptation (``apps.kws.adapt``): the engine's refit against closed-form weighted
ridge regression, the identity start, accumulation, the guard's rollback, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from neuroplast.apps.kws.adapt import AdaptParams, adapt_init, adapt_readout, adapted_scores
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


def test_refit_is_weighted_ridge_regression():
    rng = np.random.default_rng(0)
    g, gy = _voice(rng, 200)
    ex, ey = _voice(rng, 12)
    aug = ex[:, None, :] + 0.05 * rng.standard_normal((12, 3, F))
    p = AdaptParams(share=0.4, ridge=3.0, max_drop=1.0)
    st, rep = adapt_readout(adapt_init(F, K), ex, ey, g, gy, p, aug)
    # independent reference: numpy least squares on the same weighted problem
    user = np.concatenate([ex, aug.reshape(-1, F)])
    uy = np.concatenate([ey, np.repeat(ey, 3)])
    a = np.concatenate([np.full(len(user), 0.4 / 0.6 * len(g) / len(user)), np.ones(len(g))])
    X = np.hstack([np.concatenate([user, g]), np.ones((len(user) + len(g), 1))])
    T = np.eye(K)[np.concatenate([uy, gy])]
    W = np.linalg.solve((X * a[:, None]).T @ X + 3.0 * np.eye(F + 1), (X * a[:, None]).T @ T).T
    np.testing.assert_allclose(st.weights, W, rtol=2e-4, atol=2e-5)  # float32 parameters
    assert rep.accepted and rep.n_examples == 12 and rep.per_class == {0: 3, 1: 3, 2: 3, 3: 3}


def test_start_reproduces_the_old_readout_and_adaptation_learns_a_shifted_voice():
    rng = np.random.default_rng(1)
    g, gy = _voice(rng, 400)
    new, ny = _voice(rng, 400, new=True)  # a voice the old readout mis-hears
    st0 = adapt_init(F, K)
    np.testing.assert_array_equal(adapted_scores(st0, new).argmax(1), new[:, F - K :].argmax(1))
    before = float(np.mean(adapted_scores(st0, new[40:]).argmax(1) == ny[40:]))
    st, rep = adapt_readout(st0, new[:20], ny[:20], g, gy, AdaptParams(share=0.5, ridge=1.0))
    after = float(np.mean(adapted_scores(st, new[40:]).argmax(1) == ny[40:]))
    assert before < 0.6 and after > before + 0.25 and rep.accepted
    # a second call keeps the first call's examples (fitted on all 40)
    st2, rep2 = adapt_readout(st, new[20:40], ny[20:40], g, gy, AdaptParams(share=0.5, ridge=1.0))
    assert rep2.n_examples == 40 and len(st2.labels) == 40


def test_guard_rolls_back_a_refit_that_forgets_the_old_voices():
    rng = np.random.default_rng(2)
    g, gy = _voice(rng, 400)
    ex, _ = _voice(rng, 40)
    wrong = (np.arange(40) + 1) % K  # examples of the old voice under the wrong labels
    st0 = adapt_init(F, K)
    st, rep = adapt_readout(st0, ex, wrong, g, gy, AdaptParams(share=0.95, max_drop=0.03))
    assert not rep.accepted and rep.guard_acc_after < rep.guard_acc_before - 0.03
    assert st is st0  # nothing changed


@pytest.mark.parametrize(
    ("call", "msg"),
    [
        (lambda s, g, gy: adapt_readout(s, np.zeros((2, F - 1)), [0, 1], g, gy), "examples must be"),
        (lambda s, g, gy: adapt_readout(s, np.zeros((2, F)), np.array([0, K]), g, gy), "labels must be"),
        (lambda s, g, gy: adapt_readout(s, np.zeros((2, F)), np.array([0, 1]), g[:0], gy[:0]), "guard"),
        (lambda s, g, gy: adapt_readout(s, np.zeros((2, F)), np.array([0, 1]), g, gy,
                                        augmented=np.zeros((3, 1, F))), "augmented"),
        (lambda s, g, gy: adapted_scores(s, np.zeros((3, F + 2))), "embeddings must be"),
        (lambda s, g, gy: AdaptParams(share=1.0), "share"),
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
    st, _ = adapt_readout(adapt_init(F, K), new, ny, g, gy, augmented=new[:, None, :] + 0.01)
    save_adapt_state(tmp_path / "a.npz", st)
    back = load_adapt_state(tmp_path / "a.npz")
    for k in ("weights", "examples", "augmented", "labels"):
        np.testing.assert_array_equal(getattr(back, k), getattr(st, k))
    # further examples add to the loaded ones, with as many augmented copies each
    _, rep = adapt_readout(back, new[:4], ny[:4], g, gy, augmented=new[:4, None, :] + 0.01)
    assert rep.n_examples == 16
    with pytest.raises(
        PlasticityError, match="0 augmented copies per example, earlier calls had 1"
    ):
        adapt_readout(back, new[:4], ny[:4], g, gy)
    bad = dict(np.load(tmp_path / "a.npz"))
    bad["adapt/labels"] = bad["adapt/labels"] + K  # out of range
    np.savez(tmp_path / "b.npz", **bad)
    with pytest.raises(PlasticityError, match="b.npz is unreadable: labels"):
        load_adapt_state(tmp_path / "b.npz")
    (tmp_path / "c.npz").write_bytes(b"not a zip")
    with pytest.raises(PlasticityError, match="c.npz is unreadable"):
        load_adapt_state(tmp_path / "c.npz")
