"""The enrollment measurement shared by the demo pipeline and bench/kws_enroll.py: seeded
draws (cross-voice, leave-one-voice-out, personal) and their evaluation."""

from __future__ import annotations

import numpy as np
import pytest

from neuroplast.apps.kws import enroll as E
from neuroplast.apps.kws.pipeline import (
    choose_on_validation,
    cross_voice_draws,
    evaluate_enrollment,
    leave_voice_out_draws,
    personal_draws,
)
from neuroplast.errors import DataError


def test_cross_voice_draws_use_distinct_voices_and_test_only_other_voices():
    pool = np.repeat([f"p{i}" for i in range(6)], 3)
    test = np.repeat(["p0", "p1", "t0", "t1"], 2)  # two voices also in the pool
    draws = cross_voice_draws(pool, test, n_draws=30, n_examples=5, seed=3)
    assert len(draws) == 30
    for idx, mask in draws:
        assert len(idx) == 5 and len(set(pool[idx])) == 5  # 5 clips, 5 voices
        np.testing.assert_array_equal(mask, [v not in set(pool[idx]) for v in test])
    # reproducible from the seed, different across seeds
    again = cross_voice_draws(pool, test, 30, 5, 3)
    assert all((a[0] == b[0]).all() for a, b in zip(draws, again))
    assert any((a[0] != b[0]).any() for a, b in zip(draws, cross_voice_draws(pool, test, 30, 5, 4)))
    # fewer voices than examples: spread 2 + 2 + 1 over 3 voices, no clip twice
    for idx, _ in cross_voice_draws(np.repeat(["a", "b", "c"], 4), test, 10, 5, 0):
        assert len(set(idx)) == 5
        assert sorted(np.unique(np.repeat(["a", "b", "c"], 4)[idx], return_counts=True)[1]) == [
            1,
            2,
            2,
        ]
    with pytest.raises(DataError, match="fewer than"):
        cross_voice_draws(np.array(["a", "a", "b"]), test, 1, 5, 0)


def test_leave_voice_out_and_personal_draws():
    voice = np.array(["a"] * 4 + ["b"] * 3 + ["c"] * 7 + ["d"])
    lovo = leave_voice_out_draws(voice, draws_per_voice=2, n_examples=5, seed=0)
    assert len(lovo) == 8
    for idx, mask in lovo:
        (left,) = set(voice[mask])
        np.testing.assert_array_equal(mask, voice == left)
        assert left not in set(voice[idx]) and len(set(idx)) == 5
    pers = personal_draws(voice, n_examples=5, draws_per_voice=2, seed=0)
    assert len(pers) == 6  # "d" has one clip: skipped
    for idx, mask in pers:
        (v,) = set(voice[idx])
        n_v = int(np.sum(voice == v))
        assert len(idx) == min(5, n_v - 1) and len(set(idx)) == len(idx)
        want = voice == v
        want[idx] = False
        np.testing.assert_array_equal(mask, want)


def _world(rng, d=16, k=3, n=30):
    centres = np.abs(rng.standard_normal((k + 1, d))) * (rng.random((k + 1, d)) < 0.4) + 0.01

    def clips(c, m):
        x = np.abs(centres[c][None] + 0.15 * rng.standard_normal((m, d)))
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    return centres, clips


def test_evaluate_enrollment_measures_recall_on_masked_clips_and_old_drop():
    rng = np.random.default_rng(0)
    _, clips = _world(rng)
    n_old = 3
    g_lab = np.repeat(np.arange(n_old), 30)
    guard = {
        "emb": np.concatenate([clips(c, 30) for c in range(n_old)]),
        "scores": np.eye(n_old)[g_lab] + 0.1,
        "labels": g_lab,
    }
    o_lab = np.repeat(np.arange(n_old), 20)
    old = {"emb": np.concatenate([clips(c, 20) for c in range(n_old)]),
           "scores": np.eye(n_old)[o_lab] + 0.1, "labels": o_lab}  # fmt: skip
    voice = np.repeat(["a", "b", "c", "d"], 6)
    pool = {"emb": clips(3, 24), "aug": np.zeros((24, 0, 16)), "voice": voice,
            "scores": np.tile([0.5, 0.2, 0.1], (24, 1))}  # fmt: skip
    # test clips: 10 of the new word, then 10 of old word 0
    test = {"emb": np.concatenate([clips(3, 10), clips(0, 10)]),
            "scores": np.r_[np.tile([0.5, 0.2, 0.1], (10, 1)), np.tile([1.1, 0.1, 0.1], (10, 1))]}  # fmt: skip
    first = np.arange(20) < 10
    draws = [(np.array([0, 6, 12, 18, 1]), first), (np.array([2, 3, 7, 8, 13]), ~first)]
    p = E.EnrollParams(augment=E.RasterAugmentParams(n_aug=0), score_weight=0.0)
    r = evaluate_enrollment("w", draws, pool, test, old, guard, n_old, -1, p)
    # reference: enroll each draw by hand, count the recognised masked clips
    rec = []
    for idx, mask in draws:
        st, rep = E.enroll_word(E.enroll_init(16, n_old), "w", pool["emb"][idx],
                                guard["emb"], guard["scores"], guard["labels"], p)  # fmt: skip
        assert rep.accepted
        rec.append(np.mean(E.decide(test["scores"][mask], test["emb"][mask], st) == n_old))
    assert rec[0] >= 0.9 and rec[1] == 0.0  # the new word found; old-word clips are not it
    assert r["recall_mean"] == pytest.approx(np.mean(rec)) and r["recall_min"] == 0.0
    assert r["draws"] == 2 and r["refused"] == 0 and r["examples_per_draw"] == [5]
    assert r["old_acc_before"] == 1.0 and 0.0 <= r["old_drop_points_max"] <= 3.0
    with pytest.raises(DataError, match="no enrollment draws"):
        evaluate_enrollment("w", [], pool, test, old, guard, n_old, -1, p)


def test_guard_set_keeps_guard_per_class_clips_of_each_class(monkeypatch):
    """guard_set: p.guard_per_class distinct clips of every class (all of a smaller
    class), each with its own label and the embedding of that clip."""
    from dataclasses import replace
    from types import SimpleNamespace

    import neuroplast.apps.kws.pipeline as P

    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], [9, 3, 6])
    X = rng.integers(0, 2, (len(y), 6, 4)).astype(np.float32)
    X[:, 0, 0] = np.arange(len(y))  # clip id, read back from the guard's scores
    fake = SimpleNamespace(outputs=("out", "h0"))

    def scores(rt, X, hidden):  # noqa: ANN001, ANN202 - a stand-in runtime
        return np.asarray(X)[:, 0, :3].astype(np.float64), [np.asarray(X)[:, 1:, :]]

    monkeypatch.setattr(P, "runtime_scores", scores)
    p = replace(E.EnrollParams(n_bins=1, score_weight=0.0), guard_per_class=5, guard_aug=0)
    g = P.guard_set(fake, X, y, seed=3, p=p)
    ids = g["scores"][:, 0].astype(int)
    assert len(set(ids.tolist())) == len(ids)  # no clip twice
    np.testing.assert_array_equal(np.bincount(g["labels"]), [5, 3, 5])
    np.testing.assert_array_equal(g["labels"], y[ids])
    # the embedding is the stored clip's own: sqrt counts over its steps 1.., normalised
    c = np.sqrt(X[ids, 1:, :].sum(1))
    np.testing.assert_allclose(g["emb"], c / np.linalg.norm(c, axis=1, keepdims=True), atol=1e-6)
    # an explicit per_class overrides p; the whole set when it is larger than every class
    assert len(P.guard_set(fake, X, y, per_class=100, seed=3, p=p)["labels"]) == len(y)
    with pytest.raises(DataError):
        P.guard_set(fake, X, y, p=replace(p, guard_per_class=0))
    with pytest.raises(DataError):
        P.guard_set(fake, X, y, p=replace(p, guard_aug=-1))


def test_guard_set_adds_augmented_copies_of_its_clips(monkeypatch):
    """guard_aug copies per guard clip: rows are the clips, then copy 1 of every clip,
    copy 2, ...; each copy keeps its clip's label and group, and its embedding is that
    of the clip's raster augmented by augment_raster (the documented seed) - reference:
    the sqrt counts computed here with numpy; chunking does not change the result."""
    from dataclasses import replace
    from types import SimpleNamespace

    import neuroplast.apps.kws.pipeline as P

    rng = np.random.default_rng(1)
    y = np.repeat([0, 1], [4, 3])
    X = (rng.random((len(y), 12, 8)) < 0.3).astype(np.uint8)
    fake = SimpleNamespace(outputs=("out", "h0"))

    def scores(rt, X, hidden):  # noqa: ANN001, ANN202 - a stand-in runtime
        X = np.asarray(X, np.float64)
        return X[:, :, :3].sum(1), [X[:, 1:, :]]

    monkeypatch.setattr(P, "runtime_scores", scores)
    p = E.EnrollParams(n_bins=1, score_weight=0.0, guard_aug=2, guard_per_class=None)
    p = replace(p, augment=replace(p.augment, bands=4))  # two groups of 4 bands
    g = P.guard_set(fake, X, y, seed=4, p=p)
    order = np.random.default_rng(4)  # guard_set's clip order: one seeded stream
    idx = np.concatenate([order.permutation(np.flatnonzero(y == c)) for c in (0, 1)])
    n = len(idx)
    assert len(g["emb"]) == 3 * n
    np.testing.assert_array_equal(g["labels"], np.tile(y[idx], 3))
    np.testing.assert_array_equal(g["group"], np.tile(np.arange(n), 3))
    A = E.augment_raster(X[idx], 4, replace(p.augment, n_aug=2, seed=p.augment.seed + 10_004))
    for k, block in enumerate([X[idx]] + [A[:, j] for j in range(2)]):
        c = np.sqrt(block[:, 1:, :].astype(np.float64).sum(1))
        ref = c / np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-9)
        np.testing.assert_allclose(g["emb"][k * n : (k + 1) * n], ref, atol=1e-6)
    small = P.guard_set(fake, X, y, seed=4, p=p, chunk=2)
    np.testing.assert_allclose(small["emb"], g["emb"], atol=1e-12)


def test_choose_on_validation_takes_the_best_recall_within_the_drop_limits():
    def r(rec, mean, worst):
        return {"recall": rec, "old_drop_points": mean, "old_drop_points_max": worst}

    table = {
        0.01: r(0.60, 0.8, 1.5),
        0.02: r(0.70, 1.9, 2.9),
        0.03: r(0.80, 2.1, 2.5),  # mean over 2 points
        0.04: r(0.90, 1.5, 3.4),  # one enrollment over 3 points
    }
    assert choose_on_validation(table) == (0.02, True)
    assert choose_on_validation(table, max_mean_drop=2.5) == (0.03, True)
    # none within the limits: the smallest mean drop, flagged
    assert choose_on_validation({k: v for k, v in table.items() if k > 0.02}) == (0.04, False)
    with pytest.raises(DataError, match="no enrollment candidates"):
        choose_on_validation({})


def test_evaluate_budgets_equals_one_evaluation_per_budget_and_guard_rows():
    """evaluate_budgets (one enrollment per draw, open thresholds per budget) gives what
    evaluate_enrollment gives run once per budget (the reference); guard_rows keeps the
    clips and their first k copies."""
    from dataclasses import replace

    from neuroplast.apps.kws.pipeline import evaluate_budgets, guard_rows

    rng = np.random.default_rng(3)
    _, clips = _world(rng)
    n_old, open_class = 3, 2  # class 2 is the open set (unknown)
    g_lab = np.repeat(np.arange(n_old), 30)
    g_emb = np.concatenate([clips(c, 30) for c in range(n_old)])
    g_sc = np.eye(n_old)[g_lab] + 0.1
    g_sc[::7] = [0.1, 0.1, 1.0]  # some old-word guard clips filed under unknown
    copies = np.abs(g_emb + 0.05 * rng.standard_normal(g_emb.shape))
    guard = {
        "emb": np.concatenate([g_emb, copies / np.linalg.norm(copies, axis=1, keepdims=True)]),
        "scores": np.concatenate([g_sc, g_sc]),
        "labels": np.concatenate([g_lab, g_lab]),
        "group": np.tile(np.arange(len(g_lab)), 2),
    }
    o_lab = np.repeat(np.arange(n_old), 20)
    old = {"emb": np.concatenate([clips(c, 20) for c in range(n_old)]),
           "scores": np.eye(n_old)[o_lab] + 0.1, "labels": o_lab}  # fmt: skip
    old["scores"][1::5] = [0.1, 0.1, 1.0]
    voice = np.repeat(["a", "b", "c", "d"], 6)
    pool = {"emb": clips(3, 24), "aug": np.zeros((24, 0, 16)), "voice": voice,
            "scores": np.tile([0.1, 0.2, 0.5], (24, 1))}  # fmt: skip
    pool["scores"][::3] = [0.5, 0.2, 0.1]  # a third of the new word filed under word 0
    draws = leave_voice_out_draws(voice, 2, 5, seed=2)
    p = E.EnrollParams(augment=E.RasterAugmentParams(n_aug=0), score_weight=0.0,
                       open_budget=0.02)  # fmt: skip
    budgets = (0.01, 0.05, 0.2)
    for g in (guard_rows(guard, 0), guard):
        got = evaluate_budgets("w", draws, pool, pool, old, g, n_old, open_class, p, budgets)
        for b in budgets:
            ref = evaluate_enrollment(
                "w", draws, pool, pool, old, g, n_old, open_class, replace(p, open_budget=b)
            )
            assert got[b].keys() == ref.keys()
            for key, v in ref.items():
                assert got[b][key] == pytest.approx(v, abs=1e-9), (b, key)
    # no guard clip filed under unknown: enroll_word drops the soft gate (one threshold),
    # so every budget gives the same result, the reference's
    shut = {**guard_rows(guard, 0), "scores": np.eye(n_old)[np.minimum(g_lab, 1)] + 0.1}
    one = evaluate_budgets("w", draws, pool, pool, old, shut, n_old, open_class, p, budgets)
    for b in budgets:
        ref = evaluate_enrollment(
            "w", draws, pool, pool, old, shut, n_old, open_class, replace(p, open_budget=b)
        )
        for key, v in ref.items():
            assert one[b][key] == pytest.approx(v, abs=1e-9), (b, key)
    # the budget moves the operating point: 0.2 takes so many guard clips that the guard
    # rolls every enrollment back (the refusal path is covered), 0.01 never
    assert got[0.2]["refused"] == len(draws) and got[0.01]["refused"] == 0
    assert got[0.01]["recall_mean"] > 0.5
    g0 = guard_rows(guard, 0)
    assert len(g0["labels"]) == 90 and np.array_equal(g0["emb"], guard["emb"][:90])
    assert len(guard_rows(guard, 1)["labels"]) == 180
    with pytest.raises(DataError):
        guard_rows(guard, 2)
    with pytest.raises(DataError):
        evaluate_budgets("w", draws, pool, pool, old, g, n_old, -1, p, budgets)
