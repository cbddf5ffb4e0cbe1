"""On-device enrollment: embeddings, the delta-rule readout row, open-set decisions, guard."""

from __future__ import annotations

import numpy as np
import pytest

from neuroplast.apps.kws import enroll as E
from neuroplast.errors import PlasticityError


def test_embed_is_binned_counts_normalised_over_layers():
    h = np.zeros((1, 4, 2), np.float32)
    h[0, 0, 0] = 1  # bin 0, neuron 0
    h[0, 1, 0] = 1  # bin 0, neuron 0
    h[0, 3, 1] = 1  # bin 1, neuron 1
    h2 = np.zeros((1, 4, 1), np.float32)
    h2[0, 2, 0] = 2  # second layer, bin 1
    e = E.embed([h, h2], E.EnrollParams(n_bins=2))
    # [layer1 bin0: 2, 0 | layer1 bin1: 0, 1 | layer2 bin0: 0 | layer2 bin1: 2] / 3
    np.testing.assert_allclose(e[0], np.array([2, 0, 0, 1, 0, 2]) / 3.0, rtol=1e-6)


def test_readout_row_is_the_fixed_point_of_the_plasticity_delta_rule():
    from neuroplast.plasticity import DeltaRuleParams, delta_rule_update

    rng = np.random.default_rng(4)
    pos, neg = rng.random((6, 3)), rng.random((14, 3))
    # equal sample weights (pos_share = 6/20) and no decay: plain least squares
    p = E.EnrollParams(ridge=1e-12, pos_share=6 / 20)
    w_fix = E.fit_row(pos, neg, p)
    X = np.hstack([np.concatenate([pos, neg]), np.ones((20, 1))])
    t = np.concatenate([np.ones(6), np.zeros(14)])[:, None]
    w = np.zeros((1, 4))
    rule = DeltaRuleParams(lr=0.5, w_min=-50.0, w_max=50.0)
    for _ in range(20000):
        w = delta_rule_update(w, X, t, rule)
    np.testing.assert_allclose(w[0], w_fix, atol=1e-4)


def _clusters(rng, centres, n, noise=0.15):
    x = centres[None] + noise * rng.standard_normal((n, *centres.shape))
    x = np.abs(x)  # spike counts are non-negative
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _old_world(rng, d=16, k=3, n=30):
    centres = np.abs(rng.standard_normal((k + 1, d)))
    centres[:, :] *= rng.random((k + 1, d)) < 0.4  # sparse, distinct patterns
    centres += 0.01
    emb = np.concatenate([_clusters(rng, centres[c], n) for c in range(k)])
    labels = np.repeat(np.arange(k), n)
    scores = np.eye(k)[labels] + 0.1  # the old readout is right on old words
    return centres, emb, scores, labels


def test_new_word_is_recognised_and_old_words_kept():
    rng = np.random.default_rng(0)
    centres, g_emb, g_scores, g_lab = _old_world(rng)
    ex = _clusters(rng, centres[3], 5)
    st = E.enroll_init(16, n_old=3)
    new, rep = E.enroll_word(st, "marvin", ex, g_emb, g_scores, g_lab)
    assert rep.accepted and new.words == ["marvin"] and rep.loo_recall >= 0.8
    # held-out: new-word clips are recognised, old words keep their labels
    test_new = _clusters(rng, centres[3], 50)
    pred_new = E.decide(np.tile([0.5, 0.2, 0.1], (50, 1)), test_new, new)
    assert np.mean(pred_new == 3) >= 0.9
    t_lab = np.repeat(np.arange(3), 30)
    t_scores = np.eye(3)[t_lab] + 0.1
    t_emb = np.concatenate([_clusters(rng, centres[c], 30) for c in range(3)])
    before = np.mean(E.decide(t_scores, t_emb, st) == t_lab)
    after = np.mean(E.decide(t_scores, t_emb, new) == t_lab)
    # theta is the 97 % quantile of held-out guard outputs: ~3 % false accepts, plus
    # sampling noise on 90 clips
    assert before == 1.0 and before - after <= 0.06


def test_guard_rolls_back_an_enrollment_that_steals_an_old_word():
    rng = np.random.default_rng(2)
    centres, g_emb, g_scores, g_lab = _old_world(rng)
    ex = _clusters(rng, centres[0], 5)  # the "new" word is class 0 again
    st = E.enroll_init(16, n_old=3)
    p = E.EnrollParams(guard_quantile=0.5, pos_share=0.9)  # lax, so the steal is visible
    new, rep = E.enroll_word(st, "bogus", ex, g_emb, g_scores, g_lab, p)
    assert not rep.accepted
    assert rep.guard_acc_before - rep.guard_acc_after > p.max_drop
    assert new is st and new.words == []


def test_enroll_errors_and_state_roundtrip(tmp_path):
    rng = np.random.default_rng(3)
    centres, g_emb, g_scores, g_lab = _old_world(rng)
    st = E.enroll_init(16, n_old=3)
    ex = _clusters(rng, centres[3], 5)
    with pytest.raises(PlasticityError, match="guard"):
        E.enroll_word(st, "w", ex, g_emb[:0], g_scores[:0], g_lab[:0])
    with pytest.raises(PlasticityError, match="word"):
        E.enroll_word(st, "bad word!", ex, g_emb, g_scores, g_lab)
    new, _ = E.enroll_word(st, "w", ex, g_emb, g_scores, g_lab)
    with pytest.raises(PlasticityError, match="features"):
        E.enroll_word(new, "v", ex[:, :8], g_emb, g_scores, g_lab)
    path = tmp_path / "enroll.npz"
    E.save_enroll_state(path, new)
    back = E.load_enroll_state(path)
    assert back.words == ["w"] and back.n_old == 3
    np.testing.assert_array_equal(back.weights, new.weights)
    path.write_bytes(b"not an npz")
    with pytest.raises(PlasticityError, match="unreadable"):
        E.load_enroll_state(path)
