"""On-device keyword enrollment: a plastic readout row per new word, no backprop.

The trained network stays frozen. Its hidden spikes and its readout's evidence give an
embedding per clip (:func:`embed`)::

    u = normalise(phi([c^(l)_b])),  c^(l)_b = spike counts of hidden layer l in time bin b
    e = [u, w_s v] / sqrt(1 + w_s^2),  v = normalise(z - mean(z))

(all hidden layers, ``n_bins`` bins, ``normalise(x) = x / ||x||``) with ``phi`` the count
transform (``transform``): ``sqrt`` (default; a variance-stabilising transform of
Poisson-like counts, so a few very active neurons do not dominate the embedding: the
Hellinger embedding) or ``none`` (raw counts). The bins (``align``) are either equal
spans of the 1 s window (``fixed``) or aligned to the word (``onset``, default: bin ``b``
holds the steps before which a share in ``[b/B, (b+1)/B)`` of the clip's hidden spikes
fell, so the bins follow the word's onset and speed, not the clock). ``z`` is the old
readout's per-class evidence (summed softmax) and ``w_s`` = ``score_weight`` (0: the
hidden part alone). All of it is numpy on the device runtime's outputs.

The few enrollment recordings are augmented on the device (:func:`augment_raster`:
``n_aug`` copies of each input spike raster with a random time warp, time shift,
mel-channel shift and spike dropout, run through the same frozen network), so the
positives are ``n * (1 + n_aug)`` embeddings.

A new word ``k`` gets one readout row ``w_k`` (with a bias) learned through the
plasticity engine: the enrolled words are a readout :class:`~neuroplast.runtime.Runtime`
(``embedding`` -> Linear ``words``) with the ``least_squares`` rule attached, the delta
rule's (Widrow-Hoff / LMS) fixed point with weight decay ``lambda`` learned online from
its sufficient statistics, teacher ``t = 1`` for the positives and ``t = 0`` for a small
*guard* set of old-word embeddings kept on the device (positives weighted to
``pos_share`` of the total; the step's reward is the per-row sample weight, so only the
new row learns)::

    w_k = argmin_w  sum_i a_i (t_i - w . [e_i, 1])^2 + lambda ||w||^2

Decision: the old readout is unchanged. A clip is reported as word ``k`` when
``w_k . [e, 1] > theta_k`` (the largest margin wins); otherwise the old readout decides.
Where the old readout files the clip under its open-set class (``unknown``,
``open_class``) the threshold is the laxer ``theta^open_k`` (the soft gate: a new word
is expected there, a keyword clip is not)::

    theta = theta^open_k  if argmax old = open_class  else  theta_k

Both come from cross-validation on the device's own data, the held-out guard outputs
(``folds``-fold): ``theta_k`` is their ``guard_quantile`` quantile over the guard clips
the old readout files elsewhere and ``theta^open_k`` the quantile over those it files
under ``open_class`` that takes at most ``open_budget`` of *all* guard clips there
(quantile ``1 - open_budget * N / N_open``), so the open side's share of old-word clips
taken does not grow with the share of ``unknown`` clips. With ``gate`` (the hard gate) new words are only
looked for in ``open_class`` clips and ``theta_k`` is the ``guard_quantile`` quantile of
all held-out guard outputs (the closed ones counting as never taken); with neither
(``open_budget=None``) it is that quantile over all of them, with no gate. The guard then checks old-word accuracy (in
sample) with a :class:`~neuroplast.plasticity.LearningGuard` on the readout runtime and
rolls the enrollment back when it would drop by more than ``max_drop``. The saved state
is that runtime's state (validated on load) plus the word list.

The defaults (onset-aligned bins, ``score_weight=0.5``, soft gate with
``open_budget=0.0225``, ``guard_quantile=0.99``, ``transform="sqrt"``, ``n_aug=16`` copies
with speed +-20 % and shift +-15 frames, ``ridge=2.0``, ``pos_share=0.1``, ``n_bins=2``,
a guard of every training clip (``guard_per_class=None``)) were chosen on validation voices only (``bench/kws_enroll.py``; see ``docs/kws.md``). The hard
gate caps recall at the share of new-word clips the old readout files under ``unknown``
(about half on both the demo and the benchmark model). ``guard_aug`` (augmented copies
of the guard clips as extra negatives) and ``open_budget`` are chosen per model on its
validation voices by the pipeline (``calibrate_open_budget``): the copies raised one
model's validation recall at equal drop and lowered another's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neuroplast.apps.kws.frontend import MelParams
from neuroplast.errors import DataError, PlasticityError

__all__ = [
    "EnrollParams",
    "EnrollState",
    "EnrollReport",
    "RasterAugmentParams",
    "augment_raster",
    "embed",
    "fit_row",
    "guard_cv_outputs",
    "open_threshold",
    "enroll_init",
    "open_class_of",
    "enroll_word",
    "decide",
    "save_enroll_state",
    "load_enroll_state",
]


@dataclass(frozen=True)
class RasterAugmentParams:
    """Augmentation of the enrollment examples' input spike rasters (numpy only): each
    example gets ``n_aug`` copies with a random time warp (speed), time shift, shift of
    the mel channels (a vocal-tract-length change) and spike dropout."""

    n_aug: int = 16
    speed: float = 0.2  # factor uniform in [1 - speed, 1 + speed]
    shift: int = 15  # frames, uniform in [-shift, shift]
    mel_shift: int = 1  # channels, uniform in [-mel_shift, mel_shift]
    drop: float = 0.05  # probability of deleting a spike
    seed: int = 0
    bands: int = MelParams.n_mels  # mel bands per channel group: the bundle's MelParams.n_mels


@dataclass(frozen=True)
class EnrollParams:
    """Embedding, augmentation, learning and guard settings (defaults chosen on
    validation voices, see the module docstring)."""

    n_bins: int = 2  # time bins of the hidden spike counts
    align: str = "onset"  # bin edges: "fixed" (equal time) or "onset" (equal spike mass)
    score_weight: float = 0.5  # weight of the old readout's evidence vector in the embedding
    transform: str = "sqrt"  # count transform before normalising: "sqrt" or "none"
    augment: RasterAugmentParams = RasterAugmentParams()  # n_aug=0: no augmentation
    ridge: float = 2.0  # weight decay lambda of the delta rule (absolute, not per guard clip)
    pos_share: float = 0.1  # share of the total sample weight on the positives
    guard_quantile: float | None = 0.99  # None: 1 - max_drop (the old-word budget)
    gate: bool = False  # hard gate: new words only where the old readout says open_class
    open_budget: float | None = 0.0225  # soft gate: share of guard clips taken on open side
    loo_weight: float = 0.0  # theta = w * median(LOO outputs) + (1 - w) * guard quantile
    folds: int = 5
    max_drop: float = 0.03  # roll back when guard accuracy drops by more
    min_examples: int = 2
    #: guard set size: training clips kept per old class (all of a class if it has
    #: fewer); None: every training clip
    guard_per_class: int | None = None
    #: augmented copies of every guard clip added to the guard (negatives, targets 0):
    #: the positives' augmentation (``augment``, seeded apart) applied to the old words
    #: too, so the row does not learn "augmented = new word" and the thresholds see
    #: old words in shifted voices; 0: the guard clips alone
    guard_aug: int = 0


@dataclass
class EnrollState:
    """Enrolled words: readout rows ``(K, F + 1)`` (last column the bias), thresholds,
    and the gate (``open_class``: from :func:`enroll_init`; :func:`enroll_word` keeps it
    when ``p.gate`` and sets -1 otherwise)."""

    words: list[str] = field(default_factory=list)
    weights: np.ndarray = field(default_factory=lambda: np.zeros((0, 1), np.float64))
    thresholds: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
    counts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    n_old: int = 12
    open_class: int = -1  # old class a new word must come from (``unknown``); -1: any
    #: the learning readout (Runtime + engine state) these rows came from, if any
    head: Any = field(default=None, repr=False, compare=False)
    #: soft gate: thresholds ``(K,)`` on clips the old readout files under
    #: ``open_class``; None: the hard gate (only those clips, at ``thresholds``)
    open_thresholds: np.ndarray | None = None


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


def augment_raster(
    X: np.ndarray, n_channels_per_polarity: int, p: RasterAugmentParams = RasterAugmentParams()
) -> np.ndarray:
    """``(N, T, C)`` delta-spike rasters -> ``(N, n_aug, T, C)`` augmented copies (seeded).

    Frame 0 (the encoder's start-up burst) stays in place; the rest is warped by the
    speed factor (each source frame's spikes move to frame ``round(t / f)``), shifted
    by whole frames, and its channels shifted within each block of
    ``n_channels_per_polarity`` mel bands (the front end's channel groups: on, off and
    the spectral-shape levels; ``p.bands`` where the pipeline calls it).
    """
    X = np.asarray(X)
    if X.ndim != 3:
        raise DataError(f"rasters must be (N, T, C), got shape {X.shape}")
    N, T, C = X.shape
    m = n_channels_per_polarity
    if m < 1 or C % m:
        raise DataError(f"{C} channels is not a multiple of {m} mel bands")
    rng = np.random.default_rng(p.seed)
    out = np.zeros((N, p.n_aug, T, C), X.dtype)
    t = np.arange(1, T)
    for i in range(N):
        for k in range(p.n_aug):
            f = 1.0 + rng.uniform(-p.speed, p.speed)
            s = int(rng.integers(-p.shift, p.shift + 1))
            tt = np.round(t / f).astype(int) + s
            ok = (tt >= 1) & (tt < T)
            y = np.zeros((T, C), X.dtype)
            y[0] = X[i, 0]
            np.maximum.at(y, tt[ok], X[i, t[ok]])
            ms = int(rng.integers(-p.mel_shift, p.mel_shift + 1))
            if ms:
                y = y.reshape(T, C // m, m)
                y = np.roll(y, ms, axis=2)
                if ms > 0:
                    y[:, :, :ms] = 0
                else:
                    y[:, :, ms:] = 0
                y = y.reshape(T, C)
            if p.drop > 0:
                y = y * (rng.random(y.shape) >= p.drop)
            out[i, k] = y
    return out


_TRANSFORMS = {"none": lambda c: c, "sqrt": np.sqrt}


def _bin_masks(act: np.ndarray, n_bins: int, align: str) -> np.ndarray:
    """``(N, T)`` activity -> ``(N, n_bins, T)`` 0/1 masks of the time bins.

    ``fixed``: ``n_bins`` equal spans of the window. ``onset``: aligned to the word's own
    activity: with ``C(t) = sum_{s < t} a(s) / sum_s a(s)`` (the share of the clip's
    hidden spikes before step ``t``), step ``t`` is in bin ``b`` when
    ``b / B <= C(t) < (b + 1) / B`` (the last bin takes ``C(t) = 1``), so the bins follow
    the word's onset and speed instead of the clock; a silent clip falls in bin 0.
    """
    N, T = act.shape
    if align == "fixed":
        b = np.minimum((np.arange(T) * n_bins) // T, n_bins - 1)
        b = np.broadcast_to(b, (N, T))
    elif align == "onset":
        c = np.cumsum(act, 1, dtype=np.float64)
        before = np.concatenate([np.zeros((N, 1)), c[:, :-1]], 1)
        share = before / np.maximum(c[:, -1:], 1e-12)
        b = np.minimum(np.floor(share * n_bins).astype(np.int64), n_bins - 1)
    else:
        raise DataError(f"align {align!r} is not one of ['fixed', 'onset']")
    return (b[:, None, :] == np.arange(n_bins)[None, :, None]).astype(np.float32)


def embed(hidden, p: EnrollParams = EnrollParams(), scores: np.ndarray | None = None) -> np.ndarray:  # noqa: ANN001
    """Hidden spikes (one ``(N, T, n)`` array or a list, one per layer) -> embeddings
    ``(N, n_bins * sum(n) [+ K])``::

        u = phi([c^(l)_b]) / ||phi([c^(l)_b])||,   c^(l)_b = sum_{t in bin b} s^(l)(t)
        e = [u, w_s v] / sqrt(1 + w_s^2),          v = (z - mean(z)) / ||z - mean(z)||

    with bins from :func:`_bin_masks` (``p.align``; the activity is the spike count of all
    hidden layers per step), ``phi`` = ``p.transform`` and, when ``w_s = p.score_weight``
    > 0, ``z`` the old readout's ``(N, K)`` evidence (``scores``, the summed softmax of
    :func:`~neuroplast.apps.kws.infer.runtime_scores`). ``||e|| = 1``."""
    if p.transform not in _TRANSFORMS:
        raise DataError(f"transform {p.transform!r} is not one of {sorted(_TRANSFORMS)}")
    layers = [
        np.asarray(h, np.float32)
        for h in (hidden if isinstance(hidden, (list, tuple)) else [hidden])
    ]
    for h in layers:
        if h.ndim != 3 or h.shape[:2] != layers[0].shape[:2]:
            raise DataError(f"hidden spikes must be (N, T, n) with one N, T; got shape {h.shape}")
        if h.shape[1] < p.n_bins:
            raise DataError(f"{h.shape[1]} time steps is fewer than n_bins={p.n_bins}")
    masks = _bin_masks(sum(h.sum(2) for h in layers), p.n_bins, p.align)
    parts = [np.einsum("nbt,ntk->nbk", masks, h).reshape(len(h), -1) for h in layers]
    # bin-major per layer: [layer 0 bin 0, layer 0 bin 1, ..., layer 1 bin 0, ...]
    e = _TRANSFORMS[p.transform](np.concatenate(parts, axis=1))
    e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-9)
    if p.score_weight > 0:
        if scores is None or np.shape(scores)[0] != len(e) or np.ndim(scores) != 2:
            raise DataError(f"score_weight > 0 needs the old readout's scores (N={len(e)}, K)")
        z = np.asarray(scores, np.float64)
        z = z - z.mean(1, keepdims=True)
        z = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-9)
        e = np.hstack([e, p.score_weight * z]) / np.sqrt(1.0 + p.score_weight**2)
    return e


def enroll_init(n_features: int, n_old: int, open_class: int = -1) -> EnrollState:
    """No enrolled words yet; ``open_class``: the old readout's open-set class (new
    words are only looked for in clips it files there), -1 for none."""
    return EnrollState(
        [], np.zeros((0, n_features + 1)), np.zeros(0), np.zeros(0, np.int64), n_old, open_class
    )


def open_class_of(classes) -> int:  # noqa: ANN001
    """Index of the open-set class (``unknown``, else ``_unknown_``) or -1 if none."""
    for name in ("unknown", "_unknown_"):
        if name in classes:
            return list(classes).index(name)
    return -1


def _aug(e: np.ndarray) -> np.ndarray:
    return np.hstack([np.asarray(e, np.float64), np.ones((len(e), 1))])


def _head(n_features: int, n_rows: int, ridge: float, shared: bool = False):  # noqa: ANN202
    """A learning readout: Runtime ``embedding`` ``(F + 1,)`` -> Linear ``words``
    ``(n_rows, F + 1)`` (zero weights; bias ``-theta``) with the engine's
    ``least_squares`` rule attached (``shared``: one statistic for all rows, when every
    row weighs every sample alike). Its graph depends only on the sizes, so saved
    state loads into a fresh head."""
    from neuroplast.graph import Graph, Input, Linear
    from neuroplast.plasticity import LeastSquaresParams
    from neuroplast.runtime import Runtime

    g = Graph.sequential(
        [
            ("embedding", Input(shape=(n_features + 1,))),
            (
                "words",
                Linear(
                    weight=np.zeros((n_rows, n_features + 1), np.float32),
                    bias=np.zeros(n_rows, np.float32),
                ),
            ),
        ]
    )
    rt = Runtime(g)
    rt.plasticity.attach("words", LeastSquaresParams(ridge=ridge, shared=shared))
    return rt


def _learn_row(rt, row: int, pos: np.ndarray, neg: np.ndarray, p: EnrollParams) -> None:  # noqa: ANN001
    """One learning step of the head's ``least_squares`` rule on row ``row`` only (the
    reward, the rule's per-row sample weight, is 1 there and 0 on the other rows): the
    positives (target 1) scaled by ``sqrt(a_pos)`` (input and target, so they count
    ``a_pos`` times in the squared error) and the negatives (target 0) in one batch."""
    n = rt.params["words"]["weight"].shape[0]
    s = np.sqrt(p.pos_share * len(neg) / max(1, len(pos)) / (1 - p.pos_share))
    x = np.concatenate([s * _aug(pos), _aug(neg)])
    tgt = np.zeros((len(x), n))
    tgt[: len(pos), row] = s
    weight = np.zeros(n)
    weight[row] = 1.0
    rt.reset()
    rt.plasticity.set_target("words", tgt)
    rt.learn(True)
    rt.step(x.astype(np.float32), reward=weight)
    rt.learn(False)


def fit_row(pos: np.ndarray, neg: np.ndarray, p: EnrollParams = EnrollParams()) -> np.ndarray:
    """A readout row learned through the plasticity engine's ``least_squares`` rule: the
    fixed point of the delta rule ``dw = eta sum_i a_i (t_i - w.x_i) x_i - eta lambda w``
    for targets 1 (``pos``) and 0 (``neg``), ``(X^T A X + lambda I) w = X^T A t``."""
    rt = _head(np.shape(pos)[1], 1, p.ridge)
    _learn_row(rt, 0, np.asarray(pos), np.asarray(neg), p)
    return rt.params["words"]["weight"][0].astype(np.float64)


def guard_cv_outputs(
    pos: np.ndarray,
    guard_emb: np.ndarray,
    p: EnrollParams = EnrollParams(),
    guard_groups: np.ndarray | None = None,
) -> np.ndarray:
    """Held-out outputs ``(len(guard),)`` of a new row on its guard set: guard row ``i``
    is scored by the row fitted (:func:`fit_row`, positives ``pos``) without the guard
    fold ``groups[i] mod folds`` (``groups`` = ``guard_groups``, default every row its
    own group), ``o_i = w_{-f(i)} . [g_i, 1]``. The thresholds are quantiles of these."""
    g = np.asarray(guard_emb, np.float64)
    groups = np.arange(len(g)) if guard_groups is None else np.asarray(guard_groups)
    folds = groups % max(2, p.folds)
    held = np.empty(len(g))
    for k in np.unique(folds):
        held[folds == k] = _aug(g[folds == k]) @ fit_row(pos, g[folds != k], p)
    return held


def open_threshold(held: np.ndarray, closed: np.ndarray, budget: float) -> float:
    """The soft gate's threshold on the open side: the ``1 - budget * N / N_open``
    quantile of the held-out outputs ``held`` of the ``N_open`` guard clips the old
    readout files under the open class (``~closed``), so at most ``budget`` of all ``N``
    guard clips are taken there."""
    held, closed = np.asarray(held), np.asarray(closed, bool)
    if not (~closed).any():
        raise PlasticityError("no guard clip on the open side of the gate")
    q_open = max(0.0, 1.0 - budget * len(held) / np.count_nonzero(~closed))
    return float(np.quantile(held[~closed], q_open))


def decide(old_scores: np.ndarray, e: np.ndarray, state: EnrollState) -> np.ndarray:
    """Labels ``(N,)``: an enrolled word (index ``n_old + k``) when its readout beats its
    threshold (largest margin wins; ``state.open_thresholds`` where the old readout says
    ``state.open_class``, the soft gate), and, with the hard gate (``open_thresholds``
    None), the old readout says ``state.open_class`` (any class when -1); else
    ``argmax`` of the old readout."""
    old = np.asarray(old_scores).argmax(1)
    if not state.words:
        return old
    th = np.broadcast_to(state.thresholds[None, :], (len(old), len(state.words)))
    soft = state.open_class >= 0 and state.open_thresholds is not None
    if soft:
        th = np.where((old == state.open_class)[:, None], state.open_thresholds[None, :], th)
    s = _aug(e) @ state.weights.T - th
    best = s.argmax(1)
    hit = s[np.arange(len(s)), best] > 0
    if state.open_class >= 0 and not soft:
        hit &= old == state.open_class
    return np.where(hit, state.n_old + best, old)


def enroll_word(
    state: EnrollState,
    word: str,
    examples: np.ndarray,
    guard_emb: np.ndarray,
    guard_scores: np.ndarray,
    guard_labels: np.ndarray,
    p: EnrollParams = EnrollParams(),
    augmented: np.ndarray | None = None,
    guard_groups: np.ndarray | None = None,
) -> tuple[EnrollState, EnrollReport]:
    """Enroll ``word`` from example embeddings ``(n, F)`` and optionally the embeddings
    of their augmented copies ``(n, n_aug, F)`` (extra positives).

    ``guard_groups``: ``(len(guard),)`` non-negative integers, the source clip of each
    guard embedding (an augmented copy shares its clip's group); the thresholds'
    cross-validation keeps a group in one fold (fold ``group mod folds``), so no clip is
    held out while a copy of it is fitted. None: every guard embedding its own group.

    ``guard_*``: embeddings, old-readout scores and labels of the old-word guard set.
    The gate is ``state.open_class`` (from :func:`enroll_init`) when ``p.gate``.
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
    if augmented is None:
        augmented = np.zeros((len(ex), 0, ex.shape[1]))
    augmented = np.asarray(augmented, np.float64)
    if augmented.ndim != 3 or augmented.shape[0] != len(ex) or augmented.shape[2] != ex.shape[1]:
        raise PlasticityError(
            f"augmented embeddings must be (n={len(ex)}, n_aug, F={ex.shape[1]}), "
            f"got {augmented.shape}"
        )

    def positives(keep: np.ndarray) -> np.ndarray:
        return np.concatenate([ex[keep], augmented[keep].reshape(-1, ex.shape[1])])

    if guard_groups is None:
        guard_groups = np.arange(len(g))
    guard_groups = np.asarray(guard_groups)
    if (
        guard_groups.shape != (len(g),)
        or guard_groups.dtype.kind not in "iu"
        or (len(g) and guard_groups.min() < 0)
    ):
        raise PlasticityError(
            f"guard_groups must be {len(g)} non-negative integers, got shape "
            f"{guard_groups.shape} of {guard_groups.dtype}"
        )
    everyone = np.arange(len(ex))
    soft = not p.gate and p.open_budget is not None and state.open_class >= 0
    gate = state.open_class if (p.gate or soft) else -1
    # threshold from cross-validation on the device's own data (never the test set)
    loo = np.array(
        [
            float((_aug(ex[i : i + 1]) @ fit_row(positives(np.delete(everyone, i)), g, p))[0])
            for i in range(len(ex))
        ]
    )
    held = guard_cv_outputs(positives(everyone), g, p, guard_groups)
    q = 1.0 - p.max_drop if p.guard_quantile is None else p.guard_quantile
    theta_open = None
    closed = np.asarray(guard_scores).argmax(1) != gate
    if soft and closed.all() or soft and not closed.any():
        soft = False  # no guard clips on one side of the gate: one threshold, no gate
        gate = -1
    if soft:
        theta_open = open_threshold(held, closed, p.open_budget)
        held_q = float(np.quantile(held[closed], q))
    else:
        if gate >= 0:  # guard clips the hard gate closes are never taken
            held[closed] = held.min() - 1.0
        held_q = float(np.quantile(held, q))
    theta = p.loo_weight * float(np.median(loo)) + (1 - p.loo_weight) * held_q
    # the readout learns the new row through the engine, under the LearningGuard
    others = [i for i, x in enumerate(state.words) if x != word]
    words = [state.words[i] for i in others] + [word]
    counts = np.concatenate([state.counts[others], [len(ex)]]).astype(np.int64)
    rt = _head(ex.shape[1], len(words), p.ridge)
    rt.params["words"]["weight"][:-1] = state.weights[others]
    rt.params["words"]["bias"][:-1] = -state.thresholds[others]  # new row: never fires yet
    gl = np.asarray(guard_labels)
    open_th = None
    if soft:
        old_open = state.thresholds if state.open_thresholds is None else state.open_thresholds
        open_th = np.concatenate([np.asarray(old_open, np.float64)[others], [np.inf]])

    def view(r) -> EnrollState:  # noqa: ANN001
        w, b = r.params["words"]["weight"], r.params["words"]["bias"]
        return EnrollState(
            list(words), w.astype(np.float64), -b.astype(np.float64), counts, state.n_old, gate,
            r, None if open_th is None else open_th.copy(),
        )  # fmt: skip

    from neuroplast.plasticity import LearningGuard

    guard = LearningGuard(
        rt, lambda r: float(np.mean(decide(guard_scores, g, view(r)) == gl)), max_drop=p.max_drop
    )
    _learn_row(rt, len(words) - 1, positives(everyone), g, p)
    rt.params["words"]["bias"][-1] = -theta
    if soft:
        open_th[-1] = theta_open
    accepted = guard.check_now()
    report = EnrollReport(
        word,
        len(ex),
        theta,
        guard.baseline,
        guard.history[-1][1],
        accepted,
        float(np.mean(loo > (theta if theta_open is None else min(theta, theta_open)))),
        float(
            np.mean(np.where(closed, held > theta, held > theta_open))
            if soft
            else np.mean(held > theta)
        ),
    )
    return (view(rt) if accepted else state), report


def _state_head(state: EnrollState):  # noqa: ANN202
    """The runtime holding ``state``'s rows (its learning head, else a fresh one)."""
    if state.head is not None:
        return state.head
    rt = _head(state.weights.shape[1] - 1, len(state.words), EnrollParams().ridge)
    rt.params["words"]["weight"][...] = state.weights
    rt.params["words"]["bias"][...] = -state.thresholds
    return rt


def save_enroll_state(path, state: EnrollState) -> None:  # noqa: ANN001
    """Atomically write the enrolled words as the readout's runtime state (rows, bias
    ``-theta``, the ``least_squares`` rule's statistics, the guard's decisions: see
    :meth:`~neuroplast.runtime.Runtime.state_dict`) plus ``enroll/*`` (words, counts,
    ``n_old``, ``open_class``); ``.npz``, no pickle."""
    from neuroplast.arrayfile import npz_bytes
    from neuroplast.runtime.runtime import atomic_write_bytes

    d = _state_head(state).state_dict()
    d.update(
        {
            "enroll/words": np.array(state.words, dtype="U64"),
            "enroll/counts": np.asarray(state.counts, np.int64),
            "enroll/n_old": np.array(state.n_old, np.int64),
            "enroll/open_class": np.array(state.open_class, np.int64),
            "enroll/open_thresholds": np.asarray(
                np.full(0, np.nan) if state.open_thresholds is None else state.open_thresholds,
                np.float64,
            ),
            "enroll/n_features": np.array(state.weights.shape[1] - 1, np.int64),
        }
    )
    atomic_write_bytes(path, npz_bytes(d))


def load_enroll_state(path, ridge: float = EnrollParams().ridge) -> EnrollState:  # noqa: ANN001
    """Read what :func:`save_enroll_state` wrote into a fresh readout head, validated
    all or nothing by :meth:`~neuroplast.runtime.Runtime.load_state_dict` (shapes,
    dtypes, finiteness, the rule's declared state); :class:`PlasticityError` naming
    what is wrong otherwise. ``ridge``: the rule's decay for further learning."""
    from neuroplast.arrayfile import read_npz
    from neuroplast.errors import NeuroplastError

    try:
        d = read_npz(path, str(path))
        words = [str(w) for w in np.asarray(d["enroll/words"]).reshape(-1)]
        meta = {
            k: np.asarray(d[f"enroll/{k}"]) for k in ("counts", "n_old", "open_class", "n_features")
        }
        if any(
            meta[k].shape != () or meta[k].dtype.kind != "i"
            for k in ("n_old", "open_class", "n_features")
        ):
            raise ValueError("enroll/n_old, open_class and n_features must be integers")
        n_feat = int(meta["n_features"])
        if not 1 <= n_feat <= 1 << 20 or meta["counts"].shape != (len(words),):
            raise ValueError(
                f"{len(words)} words but counts {meta['counts'].shape}, {n_feat} features"
            )
        open_th = None  # absent (older files) or empty: the hard gate
        if "enroll/open_thresholds" in d and np.asarray(d["enroll/open_thresholds"]).size:
            open_th = np.asarray(d["enroll/open_thresholds"], np.float64)
            if open_th.shape != (len(words),) or not np.all(np.isfinite(open_th)):
                raise ValueError(f"enroll/open_thresholds must be {len(words)} finite numbers")
        d = {k: v for k, v in d.items() if k != "enroll/open_thresholds"}
        rt = _head(n_feat, len(words), ridge)
        rt.load_state_dict(d)
    except (OSError, KeyError, ValueError, TypeError, NeuroplastError) as e:
        raise PlasticityError(f"enrollment state {path} is unreadable: {e}") from e
    w, b = rt.params["words"]["weight"], rt.params["words"]["bias"]
    return EnrollState(
        words, w.astype(np.float64), -b.astype(np.float64), meta["counts"].astype(np.int64),
        int(meta["n_old"]), int(meta["open_class"]), rt, open_th,
    )  # fmt: skip
