"""Fleet consolidation of enrolled keywords: speakers that each enrolled their own words.

Each device holds an :class:`~neuroplast.apps.kws.enroll.EnrollState` (one readout row
``w_k`` with bias, one threshold ``theta_k`` and, with the soft gate, one open-side
threshold ``theta^open_k`` per enrolled word, learned on the device by the delta rule).
One round: every device sends its rows (int16 codes, a scale per row), thresholds (int16),
open-side thresholds (int16; exactly when the fleet uses the soft gate) and example counts
(exact). The server

1. checks every device's row alone on a shared validation set (old-word clips:
   embeddings, old-readout scores, labels): a row that costs more than ``max_drop``
   accuracy there is dropped;
2. merges the remaining rows of the same word (several devices enrolled it) as the
   example-count weighted mean ``w = sum_i n_i w_i / sum_i n_i`` (the same for ``theta``
   and ``theta^open``);
3. adds the words one at a time (by name) and keeps a word only when the accuracy on a
   shared validation set (old-word clips: embeddings, old-readout scores, labels) drops by
   at most ``max_drop`` (the on-device guard of :func:`enroll_word`, applied fleet-wide;
   a poisoned row that grabs old-word clips is dropped here).

Range check (else the update is rejected as out of range): the delta rule's fixed point
``w = argmin sum_i a_i (t_i - w.x_i)^2 + lambda ||w||^2`` has ``lambda ||w||^2 <= sum_i a_i
t_i^2``, the positives' total weight ``pos_share n_guard / (1 - pos_share)``, so

    ||w||_2 <= sqrt(pos_share n_guard / ((1 - pos_share) lambda)),   |theta| <= sqrt(2) ||w||

(``theta`` and ``theta^open`` are quantiles of ``w . [e, 1]`` with ``||e|| = 1``), with
``n_guard`` at most ``max_guard`` clips on a device.

Gate: the fleet uses the soft gate (merged states keep ``open_thresholds``, so
:func:`~neuroplast.apps.kws.enroll.decide` behaves as on the devices) when ``base`` has an
open class and ``enroll`` selects it (``open_budget`` set, ``gate`` off), the rule
:func:`~neuroplast.apps.kws.enroll.enroll_word` uses; a device whose state does not match
the fleet's gate is rejected as out of range.
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
    """Enrolled rows as wire arrays (``open_thresholds`` only for a soft-gate state), and
    the word names (for the meta)."""
    out = {"weights": quantize(st.weights, 16), "thresholds": quantize(st.thresholds, 16),
           "counts": exact(st.counts)}  # fmt: skip
    if st.open_thresholds is not None:
        out["open_thresholds"] = quantize(np.asarray(st.open_thresholds, np.float64), 16)
    return out, list(st.words)


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
        max_guard: int = 10_000,
    ) -> None:
        self.soft = base.open_class >= 0 and not enroll.gate and enroll.open_budget is not None
        self.state = self._state(base, [], np.zeros((0, base.weights.shape[1])), np.zeros(0),
                                 np.zeros(0), np.zeros(0, np.int64))  # fmt: skip
        self.val = (np.asarray(val_emb), np.asarray(val_scores), np.asarray(val_labels))
        self.max_drop = max_drop
        ps = enroll.pos_share
        self.row_bound = float(np.sqrt(ps * max_guard / ((1 - ps) * enroll.ridge)))
        self.guard_rejected: list[str] = []
        self._rounds = 0

    def _state(self, st: EnrollState, words: list[str], w: np.ndarray, th: np.ndarray,
               th_open: np.ndarray, counts: np.ndarray) -> EnrollState:  # fmt: skip
        """A state with ``st``'s old classes and gate and the fleet's gate mode."""
        return EnrollState(list(words), np.asarray(w, np.float64), np.asarray(th, np.float64),
                           np.asarray(counts, np.int64), st.n_old, st.open_class, None,
                           np.asarray(th_open, np.float64) if self.soft else None)  # fmt: skip

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
        want = {"weights": ((k, self.n_features + 1), True), "thresholds": ((k,), True),
                "counts": ((k,), False)}  # fmt: skip
        if self.soft:
            want["open_thresholds"] = ((k,), True)
        check_arrays(upd, want)
        norms = np.linalg.norm(upd.arrays["weights"].value(), axis=1)
        if k and norms.max() > self.row_bound * 1.001:
            raise FleetError(f"out of range: row norm {norms.max():.3g} > {self.row_bound:.3g}")
        for name in ("thresholds", "open_thresholds") if self.soft else ("thresholds",):
            th = upd.arrays[name].value()
            if k and np.any(np.abs(th) > np.sqrt(2) * norms * 1.001 + 1e-6):
                raise FleetError(f"out of range: |{name}| > sqrt(2) ||row||")
        c = upd.arrays["counts"].value()
        if c.size and (c.min() < 1 or c.max() > 1 << 20):
            raise FleetError("out of range: example counts outside [1, 2^20]")

    def _acc(self, st: EnrollState) -> float:
        e, s, y = self.val
        return float(np.mean(decide(s, e, st) == y))

    def merge(self, phase: int, updates: list[Update]) -> dict[str, float]:
        self._rounds += 1
        rows: dict[str, list[tuple[np.ndarray, float, float, int]]] = {}
        st = self.state
        st_open = st.open_thresholds if self.soft else st.thresholds
        for i, w in enumerate(st.words):
            rows.setdefault(w, []).append(
                (st.weights[i], float(st.thresholds[i]), float(st_open[i]), int(st.counts[i]))
            )
        z = np.zeros(0)
        empty = self._state(st, [], np.zeros((0, self.n_features + 1)), z, z, z)
        acc0 = self._acc(empty)
        self.guard_rejected = []
        for u in updates:
            w_, th, c = (u.arrays[k].value() for k in ("weights", "thresholds", "counts"))
            tho = u.arrays["open_thresholds"].value() if self.soft else th
            for i, word in enumerate(u.meta["words"]):
                one = self._state(st, [word], w_[i : i + 1], th[i : i + 1], tho[i : i + 1],
                                  c[i : i + 1])  # fmt: skip
                if acc0 - self._acc(one) > self.max_drop:
                    self.guard_rejected.append(f"{word}@{u.device}")
                    continue
                rows.setdefault(word, []).append(
                    (w_[i].astype(np.float64), float(th[i]), float(tho[i]), int(c[i]))
                )
        new, acc = empty, acc0
        for word in sorted(rows):
            n = np.array([r[3] for r in rows[word]], np.float64)
            share = n / n.sum()
            w = np.tensordot(share, np.stack([r[0] for r in rows[word]]), axes=1)
            th, tho = (float(np.dot(share, [r[j] for r in rows[word]])) for j in (1, 2))
            cand = self._state(st, [*new.words, word], np.vstack([new.weights, w]),
                               np.r_[new.thresholds, th],
                               np.r_[new.open_thresholds if self.soft else z, tho],
                               np.r_[new.counts, int(n.sum())])  # fmt: skip
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
