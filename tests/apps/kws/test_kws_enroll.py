"""On-device enrollment: embeddings, raster augmentation, the delta-rule readout row,
open-set decisions with the unknown-class gate, guard."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from neuroplast.apps.kws import enroll as E
from neuroplast.errors import DataError, PlasticityError


def test_embed_is_binned_counts_normalised_over_layers():
    h = np.zeros((1, 4, 2), np.float32)
    h[0, 0, 0] = 1  # bin 0, neuron 0
    h[0, 1, 0] = 1  # bin 0, neuron 0
    h[0, 3, 1] = 1  # bin 1, neuron 1
    h2 = np.zeros((1, 4, 1), np.float32)
    h2[0, 2, 0] = 2  # second layer, bin 1
    fixed = E.EnrollParams(n_bins=2, align="fixed", score_weight=0.0)
    e = E.embed([h, h2], replace(fixed, transform="none"))
    # [layer1 bin0: 2, 0 | layer1 bin1: 0, 1 | layer2 bin0: 0 | layer2 bin1: 2] / 3
    np.testing.assert_allclose(e[0], np.array([2, 0, 0, 1, 0, 2]) / 3.0, rtol=1e-6)
    # the default square-root transform: sqrt of those counts, normalised (||.||^2 = 5)
    e = E.embed([h, h2], fixed)
    c = np.sqrt([2, 0, 0, 1, 0, 2])
    np.testing.assert_allclose(e[0], c / np.sqrt(5.0), rtol=1e-6)
    with pytest.raises(DataError, match="transform"):
        E.embed(h, E.EnrollParams(transform="cube"))
    with pytest.raises(DataError, match="scores"):
        E.embed(h, E.EnrollParams())  # the default embedding includes the readout evidence


def test_onset_aligned_bins_and_readout_evidence_match_a_loop_reference():
    """Onset-aligned bins follow the word's activity: a clip and its time-shifted copy
    embed identically (fixed bins do not); checked against a per-step loop reference."""
    rng = np.random.default_rng(2)
    T, n = 40, 5
    h1 = np.zeros((3, T, n), np.float32)
    h1[:, 5:20] = rng.random((3, 15, n)) < 0.4  # a word in steps 5..19
    h2 = (rng.random((3, T, 3)) < 0.1).astype(np.float32) * (
        (np.arange(T) >= 5) & (np.arange(T) < 25)
    )[None, :, None]
    p = E.EnrollParams(n_bins=3, score_weight=0.0, transform="none")

    def ref(hs):  # loop reference: share of spikes strictly before step t decides the bin
        out = []
        for i in range(len(hs[0])):
            act = sum(h[i].sum(1) for h in hs)
            tot, before, rows = act.sum(), 0.0, [np.zeros((p.n_bins, h.shape[2])) for h in hs]
            for t in range(T):
                b = min(int(np.floor(before / tot * p.n_bins)), p.n_bins - 1)
                for r, h in zip(rows, hs):
                    r[b] += h[i, t]
                before += act[t]
            v = np.concatenate([r.reshape(-1) for r in rows])
            out.append(v / np.linalg.norm(v))
        return np.array(out)

    np.testing.assert_allclose(E.embed([h1, h2], p), ref([h1, h2]), atol=1e-6)
    shifted = [np.roll(h1, 12, axis=1), np.roll(h2, 12, axis=1)]  # the word 12 steps later
    np.testing.assert_allclose(E.embed(shifted, p), E.embed([h1, h2], p), atol=1e-6)
    fixed = replace(p, align="fixed")
    assert np.abs(E.embed(shifted, fixed) - E.embed([h1, h2], fixed)).max() > 0.1
    # readout evidence: [u, w v] / sqrt(1 + w^2), v the centred, unit-norm scores
    z = rng.random((3, 4))
    q = replace(p, score_weight=0.5)
    v = (z - z.mean(1, keepdims=True)) / np.linalg.norm(z - z.mean(1, keepdims=True), axis=1)[
        :, None
    ]
    want = np.hstack([ref([h1, h2]), 0.5 * v]) / np.sqrt(1.25)
    np.testing.assert_allclose(E.embed([h1, h2], q, z), want, atol=1e-6)
    with pytest.raises(DataError, match="align"):
        E.embed(h1, replace(p, align="late"))


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


def test_engine_rows_and_decisions_equal_the_closed_form_ridge():
    """The readout learned through the engine's least_squares rule equals the earlier
    closed-form solve (the reference here) and so does every decision."""
    rng = np.random.default_rng(11)
    p = E.EnrollParams()

    def ridge_row(pos, neg):  # the pre-engine implementation
        X = np.hstack([np.concatenate([pos, neg]), np.ones((len(pos) + len(neg), 1))])
        a = np.r_[np.full(len(pos), p.pos_share * len(neg) / len(pos) / (1 - p.pos_share)),
                  np.ones(len(neg))]  # fmt: skip
        t = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
        return np.linalg.solve(X.T @ (X * a[:, None]) + p.ridge * np.eye(X.shape[1]), X.T @ (a * t))

    for d, n_pos, n_neg in [(8, 5, 40), (33, 85, 200)]:
        pos, neg = rng.random((n_pos, d)), rng.random((n_neg, d))
        np.testing.assert_allclose(E.fit_row(pos, neg, p), ridge_row(pos, neg), atol=1e-6)
    centres, g_emb, g_scores, g_lab = _old_world(rng)
    st = E.enroll_init(16, n_old=3)
    for word, c in (("a", 3), ("b", 0)):
        ex = _clusters(rng, centres[c], 5)
        st, rep = E.enroll_word(st, word, ex, g_emb, g_scores, g_lab, replace(p, max_drop=1.0))
        np.testing.assert_allclose(st.weights[-1], ridge_row(ex, g_emb), atol=1e-6)
        assert st.thresholds[-1] == pytest.approx(rep.threshold, abs=1e-7)
    # the guard's decision is in the engine's log, saved with the state
    assert st.head.plasticity.log[-1]["kept"] is True


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
    # theta is the 98 % quantile of held-out guard outputs: ~2 % false accepts, plus
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
    with pytest.raises(PlasticityError, match="augmented"):
        E.enroll_word(st, "w", ex, g_emb, g_scores, g_lab, augmented=ex[:, None, :8])
    path = tmp_path / "enroll.npz"
    gated, _ = E.enroll_word(
        E.enroll_init(16, 3, open_class=2), "w", ex, g_emb, g_scores, g_lab,
        E.EnrollParams(gate=True),
    )  # fmt: skip
    E.save_enroll_state(path, gated)
    back = E.load_enroll_state(path)
    assert back.words == ["w"] and back.n_old == 3 and back.open_class == 2
    np.testing.assert_array_equal(back.weights, gated.weights)
    np.testing.assert_array_equal(back.thresholds, gated.thresholds)
    # it is the readout's runtime state: the engine's rule statistics came along
    G = back.head.state_dict()["plasticity/0/words/least_squares/G"]
    assert G.shape == (1, 17, 17) and G[0].trace() > 0
    saved = dict(np.load(path))
    # validated all or nothing like any runtime state: a wrong-shape rule array, NaN
    # weights, a word count that disagrees, a file from before the engine
    for key, bad in [
        ("plasticity/0/words/least_squares/G", np.zeros((1, 16, 16))),
        ("param/words/weight", np.full((1, 17), np.nan, np.float32)),
        ("enroll/counts", np.zeros(2, np.int64)),
    ]:
        np.savez(path, **{**saved, key: bad})
        with pytest.raises(PlasticityError, match="unreadable"):
            E.load_enroll_state(path)
    np.savez(path, words=np.array(["w"]), weights=np.zeros((1, 17)), n_old=np.array(3))
    with pytest.raises(PlasticityError, match="enroll/"):
        E.load_enroll_state(path)
    path.write_bytes(b"not an npz")
    with pytest.raises(PlasticityError, match="unreadable"):
        E.load_enroll_state(path)


def test_augment_raster_is_seeded_keeps_the_startup_frame_and_can_be_identity():
    rng = np.random.default_rng(5)
    X = (rng.random((3, 30, 8)) < 0.2).astype(np.uint8)
    p = E.RasterAugmentParams(n_aug=4, seed=7)
    A = E.augment_raster(X, 4, p)
    assert A.shape == (3, 4, 30, 8) and A.dtype == X.dtype
    np.testing.assert_array_equal(A, E.augment_raster(X, 4, p))  # seeded
    assert not np.array_equal(A, E.augment_raster(X, 4, E.RasterAugmentParams(n_aug=4, seed=8)))
    assert A.max() <= 1 and A.sum() <= 4 * X.sum()  # moves/drops spikes, never invents
    # frame 0 (the encoder start-up burst) stays, up to the channel shift and dropout
    still = E.RasterAugmentParams(n_aug=2, speed=0.0, shift=0, mel_shift=0, drop=0.0)
    np.testing.assert_array_equal(E.augment_raster(X, 4, still), np.repeat(X[:, None], 2, 1))
    late = E.augment_raster(
        X, 4, E.RasterAugmentParams(n_aug=3, speed=0.0, shift=5, mel_shift=0, drop=0.0)
    )
    np.testing.assert_array_equal(late[:, :, 0], np.repeat(X[:, None, 0], 3, 1))
    # a mel shift stays inside each polarity block of 4 bands
    one = np.zeros((1, 2, 8), np.uint8)
    one[0, 1, 3] = 1  # top band of the first block
    up = E.augment_raster(one, 4, E.RasterAugmentParams(n_aug=20, speed=0.0, shift=0, drop=0.0))
    assert up[..., 4:].sum() == 0
    with pytest.raises(DataError):
        E.augment_raster(X, 3)


def test_enrollment_augmentation_shifts_bands_within_every_front_end_group():
    from neuroplast.apps.kws.frontend import DeltaParams, MelParams
    from neuroplast.apps.kws.pipeline import with_bands

    mel = MelParams(n_mels=6)
    p = with_bands(E.EnrollParams(), mel).augment
    assert p.bands == 6
    groups = DeltaParams().groups  # on, off and the spectral-shape levels
    x = np.zeros((1, 2, groups * 6), np.uint8)
    x[0, 1, 5::6] = 1  # the top band of every group
    shifted = E.augment_raster(x, p.bands, replace(p, n_aug=30, speed=0.0, shift=0, drop=0.0))
    per = shifted.reshape(30, 2, groups, 6)
    # an up shift drops the top band, a down shift moves it to band 4 -- in every group alike
    np.testing.assert_array_equal(per, np.broadcast_to(per[:, :, :1], per.shape))
    assert set(per[:, 1, 0].argmax(-1)[per[:, 1, 0].any(-1)]) <= {4, 5}


def test_gate_keeps_keywords_and_augmented_copies_are_positives(tmp_path):
    # old classes 0, 1 are keywords, 2 is the open-set "unknown"; the new word is filed
    # under unknown by the old readout but its embeddings sit close to keyword 0
    rng = np.random.default_rng(6)
    d = 16
    centres = np.abs(rng.standard_normal((4, d))) * (rng.random((4, d)) < 0.4) + 0.01
    centres[3] = 0.6 * centres[0] / np.linalg.norm(centres[0]) + 0.4 * centres[3] / np.linalg.norm(
        centres[3]
    )
    g_lab = np.repeat(np.arange(3), 40)
    g_emb = np.concatenate([_clusters(rng, centres[c], 40, noise=0.1) for c in range(3)])
    g_scores = np.eye(3)[g_lab] + 0.1
    ex = _clusters(rng, centres[3], 5, noise=0.1)
    aug = np.stack([_clusters(rng, centres[3], 6, noise=0.1) for _ in range(5)])
    test_kw = _clusters(rng, centres[0], 200, noise=0.1)
    kw_scores = np.tile([1.1, 0.1, 0.1], (200, 1))
    test_new = _clusters(rng, centres[3], 200, noise=0.1)
    new_scores = np.tile([0.1, 0.1, 1.1], (200, 1))  # the old readout says unknown
    # lax threshold and guard: even then the gate must not steal keywords
    p = E.EnrollParams(guard_quantile=0.9, max_drop=0.2, gate=True)
    gated, rep = E.enroll_word(
        E.enroll_init(d, 3, open_class=2), "w", ex, g_emb, g_scores, g_lab, p, aug
    )
    assert rep.accepted and gated.open_class == 2
    assert np.all(E.decide(kw_scores, test_kw, gated) == 0)  # keywords are never taken
    assert np.mean(E.decide(new_scores, test_new, gated) == 3) >= 0.9
    # without the gate the new row takes ~10 % of everything, keyword clips included
    free, _ = E.enroll_word(E.enroll_init(d, 3), "w", ex, g_emb, g_scores, g_lab, p, aug)
    assert free.open_class == -1
    assert np.mean(E.decide(kw_scores, test_kw, free) == 3) > 0
    # gate=False ignores the state's open class
    off, _ = E.enroll_word(
        E.enroll_init(d, 3, open_class=2),
        "w",
        ex,
        g_emb,
        g_scores,
        g_lab,
        replace(p, gate=False, open_budget=None),
        aug,
    )
    assert off.open_class == -1
    # the soft gate: a laxer threshold where the old readout says unknown, decided per
    # clip against the row's margin (reference: the two thresholds applied by hand)
    soft, rep = E.enroll_word(
        E.enroll_init(d, 3, open_class=2), "w", ex, g_emb, g_scores, g_lab,
        replace(p, gate=False, guard_quantile=0.99, open_budget=0.05), aug,
    )  # fmt: skip
    assert rep.accepted and soft.open_class == 2 and soft.open_thresholds.shape == (1,)
    for sc, x in [(kw_scores, test_kw), (new_scores, test_new)]:
        m = np.hstack([x, np.ones((len(x), 1))]) @ soft.weights[0]
        th = np.where(sc.argmax(1) == 2, soft.open_thresholds[0], soft.thresholds[0])
        np.testing.assert_array_equal(E.decide(sc, x, soft), np.where(m > th, 3, sc.argmax(1)))
    assert np.mean(E.decide(new_scores, test_new, soft) == 3) >= 0.9
    path = tmp_path / "soft.npz"
    E.save_enroll_state(path, soft)
    back = E.load_enroll_state(path)
    np.testing.assert_array_equal(back.open_thresholds, soft.open_thresholds)
    np.testing.assert_array_equal(
        E.decide(kw_scores, test_kw, back), E.decide(kw_scores, test_kw, soft)
    )
    # the augmented copies are positives: they change the row
    plain, _ = E.enroll_word(E.enroll_init(d, 3, open_class=2), "w", ex, g_emb, g_scores, g_lab, p)
    assert not np.allclose(plain.weights, gated.weights)


def test_guard_groups_keep_a_clip_and_its_copies_in_one_fold():
    """The threshold is the quantile of held-out guard outputs with the folds taken by
    group (``group mod folds``): reference, the closed-form ridge row of each fold and
    numpy's quantile; without groups every row is its own group (``i mod folds``)."""
    rng = np.random.default_rng(5)
    p = replace(E.EnrollParams(augment=E.RasterAugmentParams(n_aug=0)), open_budget=None,
                guard_quantile=0.9, max_drop=1.0)  # fmt: skip
    centres, g_emb, g_scores, g_lab = _old_world(rng)
    n = len(g_lab)
    # a guard of the clips and one noisy copy of each (rows: clips, then copies)
    copies = _clusters(rng, g_emb, 1, noise=0.05)[0]
    G = np.concatenate([g_emb, copies])
    S, L = np.concatenate([g_scores, g_scores]), np.concatenate([g_lab, g_lab])
    groups = np.tile(np.arange(n), 2)
    ex = _clusters(rng, centres[3], 5)

    def ridge_row(pos, neg):
        X = np.hstack([np.concatenate([pos, neg]), np.ones((len(pos) + len(neg), 1))])
        a = np.r_[np.full(len(pos), p.pos_share * len(neg) / len(pos) / (1 - p.pos_share)),
                  np.ones(len(neg))]  # fmt: skip
        t = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
        return np.linalg.solve(X.T @ (X * a[:, None]) + p.ridge * np.eye(X.shape[1]), X.T @ (a * t))

    def reference_theta(folds):
        held = np.empty(len(G))
        for k in np.unique(folds):
            w = ridge_row(ex, G[folds != k])
            held[folds == k] = np.hstack([G[folds == k], np.ones((np.sum(folds == k), 1))]) @ w
        return float(np.quantile(held, p.guard_quantile))

    st = E.enroll_init(16, n_old=3)
    _, rep = E.enroll_word(st, "w", ex, G, S, L, p, guard_groups=groups)
    assert rep.threshold == pytest.approx(reference_theta(groups % p.folds), abs=1e-6)
    _, rep0 = E.enroll_word(st, "w", ex, G, S, L, p)
    assert rep0.threshold == pytest.approx(reference_theta(np.arange(2 * n) % p.folds), abs=1e-6)
    for bad in (groups[:-1], -groups - 1, groups.astype(float)):
        with pytest.raises(PlasticityError, match="guard_groups"):
            E.enroll_word(st, "w", ex, G, S, L, p, guard_groups=bad)
