"""On-device keyword enrollment: a plastic readout row per new word, no backprop.

The trained network stays frozen. Its hidden spikes give an embedding per clip::

    e = normalise([c^(l)_b]),  c^(l)_b = spike counts of hidden layer l in time bin b
        (all hidden layers, ``n_bins`` bins over the 1 s window),  normalise(z) = z/||z||

A new word ``k`` gets one readout row ``w_k`` (with a bias) trained by the local delta
rule (Widrow-Hoff / LMS, :func:`neuroplast.plasticity.delta_rule_update`) with teacher
``t = 1`` for the few enrollment examples and ``t = 0`` for a small *guard* set of
old-word embeddings kept on the device. The row is set to the rule's fixed point with
weight decay ``lambda`` (solved directly, which is what iterating the rule converges
to; positives weighted to ``pos_share`` of the total)::

    w_k = argmin_w  sum_i a_i (t_i - w . [e_i, 1])^2 + lambda ||w||^2

Decision: the old readout is unchanged. A clip is reported as word ``k`` when
``w_k . [e, 1] > theta_k`` (the largest margin wins), else the old readout decides.
``theta_k`` comes from cross-validation on the device's own data: the
``1 - max_drop`` quantile of the held-out guard outputs (``folds``-fold), so at most
about ``max_drop`` of old-word clips are taken for the new word (optionally mixed with
the median leave-one-out output of the examples, ``loo_weight``). The guard then checks
old-word accuracy (in sample) and rolls the enrollment back when it would drop by more
than ``max_drop``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from neuroplast.errors import DataError, PlasticityError

__all__ = [
    "EnrollParams",
    "EnrollState",
    "EnrollReport",
    "embed",
    "fit_row",
    "enroll_init",
    "enroll_word",
    "decide",
    "save_enroll_state",
    "load_enroll_state",
]


@dataclass(frozen=True)
class EnrollParams:
    """Embedding, learning and guard settings."""

    n_bins: int = 2  # time bins of the hidden spike counts
    ridge: float = 0.1  # weight decay lambda of the delta rule
    pos_share: float = 0.25  # share of the total sample weight on the examples
    guard_quantile: float | None = None  # None: 1 - max_drop (the old-word budget)
    loo_weight: float = 0.0  # theta = w * median(LOO outputs) + (1 - w) * guard quantile
    folds: int = 5
    max_drop: float = 0.03  # roll back when guard accuracy drops by more
    min_examples: int = 2


@dataclass
class EnrollState:
    """Enrolled words: readout rows ``(K, F + 1)`` (last column the bias), thresholds."""

    words: list[str] = field(default_factory=list)
    weights: np.ndarray = field(default_factory=lambda: np.zeros((0, 1), np.float64))
    thresholds: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
    counts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    n_old: int = 12


@dataclass(frozen=True)
class EnrollReport:
    """What one enrollment did."""

    word: str
    n_examples: int
    threshold: float
    guard_acc_before: float
    guard_acc_after: float
    accepted: bool
    loo_recall: float  # leave-one-out recognition of the enrollment examples
    guard_false_accept_cv: float  # held-out guard clips taken for the new word


def embed(hidden, p: EnrollParams = EnrollParams()) -> np.ndarray:  # noqa: ANN001
    """Hidden spikes (one ``(N, T, n)`` array or a list, one per layer) -> unit-norm
    embeddings ``(N, n_bins * sum(n))``."""
    layers = hidden if isinstance(hidden, (list, tuple)) else [hidden]
    parts = []
    for h in layers:
        h = np.asarray(h, np.float32)
        if h.ndim != 3:
            raise DataError(f"hidden spikes must be (N, T, n), got shape {h.shape}")
        if h.shape[1] < p.n_bins:
            raise DataError(f"{h.shape[1]} time steps is fewer than n_bins={p.n_bins}")
        edges = np.linspace(0, h.shape[1], p.n_bins + 1).astype(int)
        parts += [h[:, a:b].sum(1) for a, b in zip(edges[:-1], edges[1:])]
    e = np.concatenate(parts, axis=1)
    return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-9)


def enroll_init(n_features: int, n_old: int) -> EnrollState:
    """No enrolled words yet."""
    return EnrollState([], np.zeros((0, n_features + 1)), np.zeros(0), np.zeros(0, np.int64), n_old)


def _aug(e: np.ndarray) -> np.ndarray:
    return np.hstack([np.asarray(e, np.float64), np.ones((len(e), 1))])


def fit_row(pos: np.ndarray, neg: np.ndarray, p: EnrollParams = EnrollParams()) -> np.ndarray:
    """Fixed point of the delta rule ``dw = eta sum_i a_i (t_i - w.x_i) x_i - eta lambda w``
    for targets 1 (``pos``) and 0 (``neg``): ``(X^T A X + lambda I) w = X^T A t``."""
    X = _aug(np.concatenate([pos, neg]))
    a = np.concatenate(
        [
            np.full(len(pos), p.pos_share * len(neg) / max(1, len(pos)) / (1 - p.pos_share)),
            np.ones(len(neg)),
        ]
    )
    t = np.concatenate([np.ones(len(pos)), np.zeros(len(neg))])
    A = X.T @ (X * a[:, None]) + p.ridge * np.eye(X.shape[1])
    return np.linalg.solve(A, X.T @ (a * t))


def decide(old_scores: np.ndarray, e: np.ndarray, state: EnrollState) -> np.ndarray:
    """Labels ``(N,)``: an enrolled word (index ``n_old + k``) when its readout beats its
    threshold (largest margin wins), else ``argmax`` of the old readout."""
    old = np.asarray(old_scores).argmax(1)
    if not state.words:
        return old
    s = _aug(e) @ state.weights.T - state.thresholds[None, :]
    best = s.argmax(1)
    hit = s[np.arange(len(s)), best] > 0
    return np.where(hit, state.n_old + best, old)


def enroll_word(
    state: EnrollState,
    word: str,
    examples: np.ndarray,
    guard_emb: np.ndarray,
    guard_scores: np.ndarray,
    guard_labels: np.ndarray,
    p: EnrollParams = EnrollParams(),
) -> tuple[EnrollState, EnrollReport]:
    """Enroll ``word`` from example embeddings ``(n, F)``.

    ``guard_*``: embeddings, old-readout scores and labels of the old-word guard set.
    Returns the new state (the old one if the guard rolled the update back) and a
    report. Enrolling an existing word re-learns its row from these examples.
    """
    ex = np.asarray(examples, np.float64)
    if ex.ndim != 2 or len(ex) < p.min_examples:
        raise PlasticityError(f"enrollment needs >= {p.min_examples} example embeddings (n, F)")
    if state.weights.shape[1] not in (1, ex.shape[1] + 1) or (
        state.words and state.weights.shape[1] != ex.shape[1] + 1
    ):
        raise PlasticityError(
            f"example embeddings have {ex.shape[1]} features, the head has "
            f"{state.weights.shape[1] - 1}"
        )
    if not word or not word.replace("_", "").replace("-", "").isalnum():
        raise PlasticityError(f"word {word!r} must be a non-empty alphanumeric name")
    g = np.asarray(guard_emb, np.float64)
    if len(guard_labels) == 0 or len(g) != len(guard_labels):
        raise PlasticityError("the guard set is empty: keep some old-word embeddings on device")
    if g.shape[1] != ex.shape[1]:
        raise PlasticityError(
            f"guard embeddings have {g.shape[1]} features, examples {ex.shape[1]}"
        )
    w = fit_row(ex, g, p)
    # threshold from cross-validation on the device's own data (never the test set)
    loo = np.array(
        [
            float((_aug(ex[i : i + 1]) @ fit_row(np.delete(ex, i, 0), g, p))[0])
            for i in range(len(ex))
        ]
    )
    folds = np.arange(len(g)) % max(2, p.folds)
    held = np.concatenate(
        [_aug(g[folds == k]) @ fit_row(ex, g[folds != k], p) for k in np.unique(folds)]
    )
    q = 1.0 - p.max_drop if p.guard_quantile is None else p.guard_quantile
    theta = p.loo_weight * float(np.median(loo)) + (1 - p.loo_weight) * float(np.quantile(held, q))
    others = [i for i, x in enumerate(state.words) if x != word]
    new = EnrollState(
        [state.words[i] for i in others] + [word],
        np.concatenate([state.weights[others], w[None]]),
        np.concatenate([state.thresholds[others], [theta]]),
        np.concatenate([state.counts[others], [len(ex)]]).astype(np.int64),
        state.n_old,
    )
    gl = np.asarray(guard_labels)
    acc_before = float(np.mean(decide(guard_scores, g, state) == gl))
    acc_after = float(np.mean(decide(guard_scores, g, new) == gl))
    accepted = acc_before - acc_after <= p.max_drop
    report = EnrollReport(
        word,
        len(ex),
        theta,
        acc_before,
        acc_after,
        accepted,
        float(np.mean(loo > theta)),
        float(np.mean(held > theta)),
    )
    return (new if accepted else state), report


def save_enroll_state(path, state: EnrollState) -> None:  # noqa: ANN001
    """Atomically write the enrolled words (``.npz``, no pickle)."""
    import io

    from neuroplast.runtime.runtime import atomic_write_bytes

    buf = io.BytesIO()
    np.savez(
        buf,
        words=np.array(state.words, dtype="U64"),
        weights=state.weights,
        thresholds=state.thresholds,
        counts=state.counts,
        n_old=np.array(state.n_old),
    )
    atomic_write_bytes(path, buf.getvalue())


def load_enroll_state(path) -> EnrollState:  # noqa: ANN001
    """Read what :func:`save_enroll_state` wrote; :class:`PlasticityError` if malformed."""
    try:
        with np.load(path, allow_pickle=False) as z:
            st = EnrollState(
                [str(w) for w in z["words"]],
                z["weights"].astype(np.float64),
                z["thresholds"].astype(np.float64),
                z["counts"].astype(np.int64),
                int(z["n_old"]),
            )
    except (OSError, KeyError, ValueError) as e:
        raise PlasticityError(f"enrollment state {path} is unreadable: {e}") from e
    k = len(st.words)
    if st.weights.shape[0] != k or st.thresholds.shape != (k,) or st.counts.shape != (k,):
        raise PlasticityError(f"enrollment state {path}: arrays disagree on the word count {k}")
    return st
