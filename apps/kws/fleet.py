"""Fleet consolidation of enrolled keywords: speakers that each enrolled their own words.

Each device holds an :class:`~neuroplast.apps.kws.enroll.EnrollState` (one readout row
``w_k`` with bias and one threshold ``theta_k`` per enrolled word, learned on the device by
the delta rule). One round: every device sends its rows (int16 codes, a scale per row),
thresholds (int16) and example counts (exact). The server

1. checks every device's row alone on a shared validation set (old-word clips:
   embeddings, old-readout scores, labels): a row that costs more than ``max_drop``
   accuracy there is dropped;
2. merges the remaining rows of the same word (several devices enrolled it) as the
   example-count weighted mean ``w = sum_i n_i w_i / sum_i n_i`` (the same for ``theta``);
3. adds the words one at a time (by name) and keeps a word only when the accuracy on a
   shared validation set (old-word clips: embeddings, old-readout scores, labels) drops by
   at most ``max_drop`` (the on-device guard of :func:`enroll_word`, applied fleet-wide;
   a poisoned row that grabs old-word clips is dropped here).

Range check (else the update is rejected as out of range): the delta rule's fixed point
``w = argmin sum_i a_i (t_i - w.x_i)^2 + lambda ||w||^2`` has ``lambda ||w||^2 <= sum_i a_i
t_i^2``, the positives' total weight ``pos_share n_guard / (1 - pos_share)``, so

    ||w||_2 <= sqrt(pos_share n_guard / ((1 - pos_share) lambda)),   |theta| <= sqrt(2) ||w||

(``theta`` is a quantile of ``w . [e, 1]`` with ``||e|| = 1``), with ``n_guard`` at most
``max_guard`` clips on a device.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from neuroplast.apps.kws.enroll import EnrollParams, EnrollState, decide
from neuroplast.boards.fleet.merge import Learner, Merger, Update, check_arrays
from neuroplast.boards.fleet.wire import QArray, exact, quantize
from neuroplast.errors import FleetError

__all__ = ["KwsMerger", "KwsLearner", "state_arrays"]

_WORD = re.compile(r"[A-Za-z0-9_-]{1,64}")


def state_arrays(st: EnrollState) -> tuple[dict[str, QArray], list[str]]:
    """Enrolled rows as wire arrays, and the word names (for the meta)."""
    return {"weights": quantize(st.weights, 16), "thresholds": quantize(st.thresholds, 16),
            "counts": exact(st.counts)}, list(st.words)  # fmt: skip


class KwsMerger(Merger):
    """Server side (see the module docstring). ``base``: the fleet's empty state
    (:func:`enroll_init`: features, old classes, gate); ``val_*``: the shared validation
    set of old-word clips."""

    kind = "kws"
    phases = 1

    def __init__(
        self,
        base: EnrollState,
        val_emb: np.ndarray,
        val_scores: np.ndarray,
        val_labels: np.ndarray,
        *,
        max_drop: float = 0.03,
        enroll: EnrollParams = EnrollParams(),
        max_guard: int = 1000,
    ) -> None:
        self.state = base
        self.val = (np.asarray(val_emb), np.asarray(val_scores), np.asarray(val_labels))
        self.max_drop = max_drop
        ps = enroll.pos_share
        self.row_bound = float(np.sqrt(ps * max_guard / ((1 - ps) * enroll.ridge)))
        self.guard_rejected: list[str] = []
        self._rounds = 0

    @property
    def n_features(self) -> int:
        return int(self.state.weights.shape[1] - 1)

    def payload(self, phase: int) -> tuple[dict[str, QArray], dict[str, Any]]:
        arrays, words = state_arrays(self.state)
        return arrays, {"kind": self.kind, "words": words}

    def check(self, phase: int, upd: Update) -> None:
        words = upd.meta.get("words")
        if not isinstance(words, list) or not all(
            isinstance(w, str) and _WORD.fullmatch(w) for w in words
        ):
            raise FleetError("out of range: meta words must be a list of word names")
        k = len(words)
        if len(set(words)) != k:
            raise FleetError("out of range: a word repeats")
        check_arrays(upd, {"weights": ((k, self.n_features + 1), True), "thresholds": ((k,), True),
                           "counts": ((k,), False)})  # fmt: skip
        norms = np.linalg.norm(upd.arrays["weights"].value(), axis=1)
        if k and norms.max() > self.row_bound * 1.001:
            raise FleetError(f"out of range: row norm {norms.max():.3g} > {self.row_bound:.3g}")
        th = upd.arrays["thresholds"].value()
        if k and np.any(np.abs(th) > np.sqrt(2) * norms * 1.001 + 1e-6):
            raise FleetError("out of range: |threshold| > sqrt(2) ||row||")
        c = upd.arrays["counts"].value()
        if c.size and (c.min() < 1 or c.max() > 1 << 20):
            raise FleetError("out of range: example counts outside [1, 2^20]")

    def _acc(self, st: EnrollState) -> float:
        e, s, y = self.val
        return float(np.mean(decide(s, e, st) == y))

    def merge(self, phase: int, updates: list[Update]) -> dict[str, float]:
        self._rounds += 1
        rows: dict[str, list[tuple[np.ndarray, float, int]]] = {}
        st = self.state
        for i, w in enumerate(st.words):
            rows.setdefault(w, []).append(
                (st.weights[i], float(st.thresholds[i]), int(st.counts[i]))
            )
        empty = EnrollState([], np.zeros((0, self.n_features + 1)), np.zeros(0),
                            np.zeros(0, np.int64), st.n_old, st.open_class)  # fmt: skip
        acc0 = self._acc(empty)
        self.guard_rejected = []
        for u in updates:
            w_, th, c = (u.arrays[k].value() for k in ("weights", "thresholds", "counts"))
            for i, word in enumerate(u.meta["words"]):
                one = EnrollState([word], w_[i : i + 1].astype(np.float64), th[i : i + 1].astype(np.float64),
                                  c[i : i + 1], st.n_old, st.open_class)  # fmt: skip
                if acc0 - self._acc(one) > self.max_drop:
                    self.guard_rejected.append(f"{word}@{u.device}")
                    continue
                rows.setdefault(word, []).append(
                    (w_[i].astype(np.float64), float(th[i]), int(c[i]))
                )
        new, acc = empty, acc0
        for word in sorted(rows):
            n = np.array([r[2] for r in rows[word]], np.float64)
            w = np.tensordot(n / n.sum(), np.stack([r[0] for r in rows[word]]), axes=1)
            th = float(np.dot(n / n.sum(), [r[1] for r in rows[word]]))
            cand = EnrollState([*new.words, word], np.vstack([new.weights, w]),
                               np.r_[new.thresholds, th], np.r_[new.counts, int(n.sum())],
                               st.n_old, st.open_class)  # fmt: skip
            a = self._acc(cand)
            if acc - a > self.max_drop:
                self.guard_rejected.append(word)
                continue
            new = cand
        self.state = new
        return {"words": float(len(new.words)), "guard_rejected": float(len(self.guard_rejected)),
                "val_acc": self._acc(new)}  # fmt: skip

    def converged(self) -> bool:
        return self._rounds >= 1


class KwsLearner(Learner):
    """A speaker: the words it enrolled on the device."""

    kind = "kws"

    def __init__(self, state: EnrollState) -> None:
        self.state = state

    def fit(self, phase, arrays, meta):  # noqa: ANN001
        out, words = state_arrays(self.state)
        return out, {"kind": self.kind, "words": words}, int(self.state.counts.sum())
