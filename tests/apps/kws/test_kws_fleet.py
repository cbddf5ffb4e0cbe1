"""Enrolled keywords consolidated across speakers; the shared-set guard drops a poisoned row."""

from __future__ import annotations

import numpy as np

from neuroplast.apps.kws.enroll import EnrollParams, decide, enroll_init, enroll_word
from neuroplast.apps.kws.fleet import KwsLearner, KwsMerger
from neuroplast.apps.kws.synth import Embedder, WordParams, word_clips, word_protos
from neuroplast.boards.fleet.merge import consolidate_local

# the second-round settings (ridge 0.1, open budget 0.025): these 80-clip synthetic guards
# are far smaller than the KWS training-set guard the defaults (ridge 2.0) were chosen for
SMALL_GUARD = {"ridge": 0.1, "open_budget": 0.025}


def test_speakers_consolidate_words():
    p, n_old, n_unk, n_new = WordParams(), 4, 6, 3
    protos = word_protos(n_old + n_unk + n_new, p, seed=3)
    rng, emb = np.random.default_rng(0), Embedder(p)
    old, unk = list(range(n_old)), list(range(n_old, n_old + n_unk))
    new = list(range(n_old + n_unk, len(protos)))
    clips = lambda ws, k: np.concatenate([word_clips(protos, w, k, rng, p) for w in ws])  # noqa: E731
    E = emb(clips(old + unk, 20))
    y = np.r_[np.repeat(old, 20), np.full(20 * n_unk, n_old)]
    A = np.hstack([E, np.ones((len(E), 1))])
    W = np.linalg.solve(A.T @ A + 0.1 * np.eye(A.shape[1]), A.T @ np.eye(n_old + 1)[y])
    score = lambda e: np.hstack([e, np.ones((len(e), 1))]) @ W  # noqa: E731
    Ev = emb(clips(old + unk, 8))
    yv = np.r_[np.repeat(old, 8), np.full(8 * n_unk, n_old)]
    ep = EnrollParams(augment=EnrollParams().augment.__class__(n_aug=0), **SMALL_GUARD)
    learners = {}
    for j, w in enumerate(new):
        st = enroll_init(E.shape[1], n_old + 1, n_old)
        st, rep = enroll_word(
            st, f"w{j}", emb(word_clips(protos, w, 5, rng, p)), Ev, score(Ev), yv, ep
        )
        assert rep.accepted
        learners[f"spk{j}"] = KwsLearner(st)
    # a poisoned speaker: a row that says "w9" for everything the gate lets through
    bad = learners["spk0"].state
    learners["spk9"] = KwsLearner(type(bad)(["w9"], np.c_[np.zeros((1, E.shape[1])), [[5.0]]],
                                            np.zeros(1), np.ones(1, np.int64), bad.n_old, bad.open_class,
                                            None, np.zeros(1)))  # fmt: skip
    s0 = learners["spk0"].state  # and one whose row is scaled by 1000 (beyond the fixed point)
    learners["spk8"] = KwsLearner(type(s0)(s0.words, s0.weights * 1000, s0.thresholds * 1000,
                                           s0.counts, s0.n_old, s0.open_class, None,
                                           s0.open_thresholds * 1000))  # fmt: skip
    m = KwsMerger(enroll_init(E.shape[1], n_old + 1, n_old), Ev, score(Ev), yv)
    log = consolidate_local(m, learners)
    assert m.state.words == ["w0", "w1", "w2"] and m.guard_rejected == ["w9@spk9"]
    assert list(log[0]["rejected"]) == ["spk8"] and "row norm" in log[0]["rejected"]["spk8"]
    assert log[0]["metrics"]["val_acc"] >= 0.97
    Et = emb(clips(new, 10))
    yt = np.repeat(np.arange(n_new) + n_old + 1, 10)
    alone = [np.mean(decide(score(Et), Et, learners[f"spk{j}"].state) == yt) for j in range(n_new)]
    merged = np.mean(decide(score(Et), Et, m.state) == yt)
    # each speaker alone knows one word of three (its own is index n_old + 1 in its state)
    assert max(alone) <= 1 / n_new + 1e-9 and merged >= 0.8
    # independent reference: a row merged from one device equals that device's row
    np.testing.assert_allclose(m.state.weights[1], learners["spk1"].state.weights[0], atol=1e-3)


def test_merged_state_keeps_soft_gate_thresholds():
    """Merged soft-gate states keep ``open_thresholds`` (the count-weighted mean of the
    devices' values) and decide like the device on clips it has seen; a hard-gate device
    in a soft-gate fleet is out of range."""
    p, n_old, n_unk = WordParams(), 4, 6
    protos = word_protos(n_old + n_unk + 2, p, seed=5)
    rng, emb = np.random.default_rng(1), Embedder(p)
    clips = lambda ws, k: np.concatenate([word_clips(protos, w, k, rng, p) for w in ws])  # noqa: E731
    ws = list(range(n_old + n_unk))
    E = emb(clips(ws, 20))
    y = np.r_[np.repeat(range(n_old), 20), np.full(20 * n_unk, n_old)]
    A = np.hstack([E, np.ones((len(E), 1))])
    W = np.linalg.solve(A.T @ A + 0.1 * np.eye(A.shape[1]), A.T @ np.eye(n_old + 1)[y])
    score = lambda e: np.hstack([e, np.ones((len(e), 1))]) @ W  # noqa: E731
    Ev = emb(clips(ws, 8))
    yv = np.r_[np.repeat(range(n_old), 8), np.full(8 * n_unk, n_old)]
    ep = EnrollParams(augment=EnrollParams().augment.__class__(n_aug=0), **SMALL_GUARD)
    states = []
    for k in (5, 7):  # two speakers enroll the same word with 5 and 7 examples
        st, rep = enroll_word(enroll_init(E.shape[1], n_old + 1, n_old), "w0",
                              emb(word_clips(protos, len(protos) - 1, k, rng, p)),
                              Ev, score(Ev), yv, ep)  # fmt: skip
        assert rep.accepted and st.open_thresholds is not None
        states.append(st)
    m = KwsMerger(enroll_init(E.shape[1], n_old + 1, n_old), Ev, score(Ev), yv, enroll=ep)
    consolidate_local(m, {"a": KwsLearner(states[0]), "b": KwsLearner(states[1])})
    assert m.state.words == ["w0"] and m.state.open_thresholds is not None
    # independent reference: the example-count weighted mean of the devices' values
    want = (5 * states[0].open_thresholds + 7 * states[1].open_thresholds) / 12
    np.testing.assert_allclose(m.state.open_thresholds, want, rtol=1e-3, atol=1e-4)
    # one device alone: the merged state decides as the device does (up to int16 codes)
    m1 = KwsMerger(enroll_init(E.shape[1], n_old + 1, n_old), Ev, score(Ev), yv, enroll=ep)
    consolidate_local(m1, {"a": KwsLearner(states[0])})
    Et = emb(np.concatenate([clips(ws, 10), word_clips(protos, len(protos) - 1, 20, rng, p)]))
    s0 = states[0]
    margin = np.abs(np.hstack([Et, np.ones((len(Et), 1))]) @ s0.weights[0]
                    - np.where(score(Et).argmax(1) == n_old, s0.open_thresholds[0],
                               s0.thresholds[0]))  # fmt: skip
    sure = margin > 1e-3
    np.testing.assert_array_equal(
        decide(score(Et), Et, m1.state)[sure], decide(score(Et), Et, s0)[sure]
    )
    assert np.any(decide(score(Et), Et, s0) == n_old + 1)  # the word is recognised at all
    # a hard-gate device (no open thresholds) does not fit a soft-gate fleet
    hard = type(s0)(s0.words, s0.weights, s0.thresholds, s0.counts, s0.n_old, s0.open_class)
    m2 = KwsMerger(enroll_init(E.shape[1], n_old + 1, n_old), Ev, score(Ev), yv, enroll=ep)
    log = consolidate_local(m2, {"h": KwsLearner(hard)})
    assert "h" in log[0]["rejected"] and "open_thresholds" in log[0]["rejected"]["h"]
