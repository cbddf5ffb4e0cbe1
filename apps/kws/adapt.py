"""On-device voice adaptation: the readout of the existing words refitted on a user's
own examples of them, through the plasticity engine, no backprop.

A keyword model trained on synthetic voices hears a new speaker (or a microphone, or a
text-to-speech engine it never met) worse than the voices it was trained on. Here the
frozen network's clip embeddings ``e`` (:func:`~neuroplast.apps.kws.enroll.embed`, with
the old readout's evidence as their last ``K`` features) feed a new readout ``W`` of the
``K`` old classes, learned by the engine's ``least_squares`` rule (one statistic shared
by all rows) on the old-word guard set (the device's own copy of the training clips'
embeddings) plus the user's examples and their augmented copies, the examples weighted
to a share ``rho`` of the total::

    W = argmin_W  sum_i a_i ||onehot(y_i) - W [e_i, 1]||^2 + lambda ||W||^2
    a_i = 1 (guard clip),  a_i = rho / (1 - rho) * N_guard / N_user (user's embedding)

and the prediction becomes ``argmax_k W_k [e, 1]``. Before any example ``W`` is either
the old readout (picking the old evidence out of the embedding, ``W_k = e_{F-K+k}``, so it
predicts exactly what the bundle does) or the guard set's own least-squares readout
(:func:`adapt_init` with a guard: 66.7 -> 69.4 % on the benchmark's held-out engine,
87.5 -> 88.1 % in domain, no user data). Every call refits from the guard and *all* the
user's examples so far (kept in the state, a few KB each), so examples accumulate and
nothing is counted twice. The guard's statistics (``G = sum x x^T``, ``c``:
:class:`AdaptGuard`) are summed once, so a refit costs the user's rows and one
``(F + 1)^2`` solve.

How much to trust the user (``rho``, ``lambda``) depends on how badly the old readout
hears that voice, so by default (:class:`AdaptParams` ``share=None``, ``ridge=None``)
each call chooses them for this user by cross-validation on the user's own examples:
fold ``j`` holds out the ``j``-th example of every word, the readout is refitted on the
rest for every point of the grid (``AUTO_SHARES`` x ``AUTO_RIDGES``), and the point with
the most held-out examples right wins (ties: the smaller share, then the larger ridge),
among those whose full refit keeps the guard's accuracy within ``max_drop``. Measured on
the benchmark model (``bench/kws_adapt.py``, 5 examples per word of a held-out engine's
voices, 64.4 % before): 77.4 % with the best fixed setting chosen on validation voices,
78.5 % chosen per user. A :class:`~neuroplast.plasticity.LearningGuard` compares guard
accuracy before and after and rolls the refit back when it drops by more than
``max_drop``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neuroplast.apps.kws.enroll import _aug, _head
from neuroplast.errors import PlasticityError

__all__ = [
    "AUTO_RIDGES",
    "AUTO_SHARES",
    "AdaptGuard",
    "AdaptParams",
    "GUARD_RIDGE",
    "AdaptState",
    "AdaptReport",
    "adapt_guard",
    "adapt_init",
    "adapt_readout",
    "adapted_scores",
    "save_adapt_state",
    "load_adapt_state",
]


AUTO_SHARES = (0.1, 0.2, 0.35, 0.5, 0.7)  # the grid a user's settings are chosen on ...
AUTO_RIDGES = (1.0, 10.0, 100.0)  # ... by cross-validation on their examples
FALLBACK = (0.2, 1.0)  # (share, ridge) when no word has two examples to cross-validate
#: ridge of the guard-only refit (no user examples; chosen on the benchmark's validation
#: voices: 0.1 and 1 tie at 85.8 %, 10 gave 85.1 %)
GUARD_RIDGE = 1.0
GUARD_CHUNK = 4096  # guard rows per engine step when its statistics are summed


@dataclass(frozen=True)
class AdaptParams:
    """Learning and guard settings. ``share`` / ``ridge`` ``None``: chosen per user by
    cross-validation on the user's examples (module docstring); a number fixes it."""

    share: float | None = None  # rho: share of the total sample weight on the user's rows
    ridge: float | None = None  # lambda (absolute, not per clip)
    max_drop: float = 0.03  # roll back when guard accuracy drops by more
    n_aug: int = 4  # augmented copies per example (the embedding side makes them)

    def __post_init__(self) -> None:
        if self.share is not None and not 0.0 < self.share < 1.0:
            raise PlasticityError(f"AdaptParams.share must be in (0, 1), got {self.share}")
        if self.ridge is not None and not self.ridge > 0:
            raise PlasticityError(f"AdaptParams.ridge must be > 0, got {self.ridge}")
        if not self.max_drop >= 0:
            raise PlasticityError(f"AdaptParams.max_drop must be >= 0, got {self.max_drop}")
        if self.n_aug < 0:
            raise PlasticityError(f"AdaptParams.n_aug must be >= 0, got {self.n_aug}")


@dataclass(frozen=True)
class AdaptGuard:
    """The old-word guard set (embeddings ``(N, F)``, labels), its least-squares
    statistics (the engine's state after stepping through it) and the guard-only
    readout, computed once by :func:`adapt_guard` and reused by every refit."""

    emb: np.ndarray
    labels: np.ndarray
    stats: dict = field(repr=False, compare=False)
    #: the guard-only refit ``(K, F + 1)`` (ridge ``GUARD_RIDGE``): the device's readout
    #: before any user example (:func:`adapt_init` with ``guard``)
    weights: np.ndarray = field(repr=False, compare=False)

    def accuracy(self, weights: np.ndarray) -> float:
        """Guard accuracy of a readout ``(K, F + 1)`` (float32 scores, as the guard)."""
        w = np.asarray(weights, np.float32)
        return float(np.mean((self.emb @ w[:, :-1].T + w[:, -1]).argmax(1) == self.labels))


@dataclass
class AdaptState:
    """The adapted readout ``(K, F + 1)`` (last column the bias) and the user's examples
    it was fitted on (embeddings ``(n, F)``, augmented copies ``(n, A, F)``, labels)."""

    weights: np.ndarray
    examples: np.ndarray
    augmented: np.ndarray
    labels: np.ndarray
    #: the learning readout (Runtime + engine state) the weights came from, if any
    head: Any = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class AdaptReport:
    """What one adaptation did."""

    n_examples: int  # the user's examples the readout was fitted on (all calls so far)
    per_class: dict[int, int]
    guard_acc_before: float
    guard_acc_after: float
    accepted: bool
    share: float = 0.0  # the settings the refit used
    ridge: float = 0.0
    #: held-out accuracy of the chosen settings in the cross-validation (None: fixed)
    cv_accuracy: float | None = None


def adapt_guard(guard_emb: np.ndarray, guard_labels: np.ndarray, n_classes: int) -> AdaptGuard:
    """Sum the guard set's statistics once (engine steps of ``GUARD_CHUNK`` rows, every
    sample weight 1); the embeddings are kept as float32 (what the engine steps on; half
    the bytes)."""
    g, gl = np.asarray(guard_emb, np.float32), np.asarray(guard_labels)
    if (
        g.ndim != 2 or len(g) == 0 or gl.shape != (len(g),) or gl.dtype.kind not in "iu"
        or gl.min() < 0 or gl.max() >= n_classes
    ):  # fmt: skip
        raise PlasticityError(
            f"the guard must be (N >= 1, F) embeddings with N labels in [0, {n_classes}): "
            "keep the training clips' embeddings on the device"
        )
    rt = _head(g.shape[1], n_classes, GUARD_RIDGE, shared=True)
    rt.learn(True)
    # in steps of GUARD_CHUNK rows (the statistics add up; the engine works in float64,
    # so one step over the whole guard would hold it twice more), the last one padded
    # with zero rows, which add nothing to G or c
    n = min(GUARD_CHUNK, len(g))
    for lo in range(0, len(g), n):
        k = min(n, len(g) - lo)
        x, t = np.zeros((n, g.shape[1] + 1), np.float32), np.zeros((n, n_classes))
        x[:k, :-1], x[:k, -1], t[np.arange(k), gl[lo : lo + k]] = g[lo : lo + k], 1.0, 1.0
        rt.plasticity.set_target("words", t)
        rt.step(x, reward=1.0)
    rt.learn(False)
    stats = {k: np.array(v) for k, v in rt.plasticity.state_dict().items()}
    return AdaptGuard(g, gl, stats, rt.params["words"]["weight"].astype(np.float64))


def adapt_init(n_features: int, n_classes: int, guard: AdaptGuard | None = None) -> AdaptState:
    """The device's readout before any user example. Without ``guard``: the one that
    reproduces the old readout, ``W_k`` picking the old evidence ``v_k`` (the last
    ``n_classes`` of the ``n_features`` embedding features, ``score_weight`` > 0), so
    ``argmax W [e, 1] = argmax`` of the old readout's scores. With ``guard``: the
    least-squares readout of the guard set alone (:attr:`AdaptGuard.weights`)."""
    if n_features <= n_classes or n_classes < 2:
        raise PlasticityError(
            f"adaptation needs embeddings that end in the old readout's {n_classes} scores "
            f"(EnrollParams.score_weight > 0), got {n_features} features"
        )
    w = np.zeros((n_classes, n_features + 1))
    w[np.arange(n_classes), n_features - n_classes + np.arange(n_classes)] = 1.0
    if guard is not None:
        if guard.weights.shape != w.shape:
            raise PlasticityError(
                f"the guard's readout must be ({n_classes}, {n_features + 1}) (adapt_guard)"
            )
        w = guard.weights.copy()
    return AdaptState(w, np.zeros((0, n_features)), np.zeros((0, 0, n_features)), np.zeros(0, int))


def adapted_scores(state: AdaptState, e: np.ndarray) -> np.ndarray:
    """Scores ``(N, K)`` of the adapted readout; their argmax is the prediction."""
    e = np.asarray(e, np.float64)
    if e.ndim != 2 or e.shape[1] + 1 != state.weights.shape[1]:
        raise PlasticityError(
            f"embeddings must be (N, {state.weights.shape[1] - 1}), got shape {e.shape}"
        )
    return _aug(e) @ state.weights.T


def _refit(rt, guard: AdaptGuard, x: np.ndarray, y: np.ndarray, share: float) -> np.ndarray:  # noqa: ANN001
    """One engine step of ``rt`` (a shared-statistics head) on the user's rows ``x``
    ``(n, F)`` on top of the guard's statistics, weighted to ``share``; the weights."""
    K = rt.params["words"]["weight"].shape[0]
    rt.reset()
    rt.plasticity.load_state_dict(guard.stats, rt=rt)
    rt.plasticity.set_target("words", np.eye(K)[y])
    rt.learn(True)
    rt.step(_aug(x).astype(np.float32), reward=share / (1 - share) * len(guard.emb) / len(x))
    rt.learn(False)
    return rt.params["words"]["weight"].astype(np.float64)


def _rows(ex: np.ndarray, aug: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The user's rows: the examples, then their augmented copies."""
    return (
        np.concatenate([ex, aug.reshape(-1, ex.shape[1])]),
        np.concatenate([y, np.repeat(y, aug.shape[1])]),
    )


def _choose(
    heads: dict, guard: AdaptGuard, ex: np.ndarray, aug: np.ndarray, y: np.ndarray,
    p: AdaptParams, base: float,
) -> tuple[float, float, float | None]:  # fmt: skip
    """(share, ridge, cv accuracy) for these examples: the free settings of ``p`` by
    cross-validation (module docstring); ``FALLBACK`` when no word has 2 examples."""
    shares = AUTO_SHARES if p.share is None else (p.share,)
    ridges = AUTO_RIDGES if p.ridge is None else (p.ridge,)
    if len(shares) * len(ridges) == 1:
        return shares[0], ridges[0], None
    fold = np.zeros(len(y), int)  # fold j: the j-th example of every word
    for c in np.unique(y):
        fold[y == c] = np.arange(np.count_nonzero(y == c))
    if fold.max() < 1:
        return (p.share or FALLBACK[0]), (p.ridge or FALLBACK[1]), None
    scored = []
    for share in shares:
        for ridge in ridges:
            hits = 0
            for j in range(fold.max() + 1):
                tr, te = fold != j, fold == j
                w = _refit(heads[ridge], guard, *_rows(ex[tr], aug[tr], y[tr]), share)
                hits += int(np.sum((_aug(ex[te]) @ w.T).argmax(1) == y[te]))
            scored.append((hits / len(y), share, ridge))
    scored.sort(key=lambda t: (-t[0], t[1], -t[2]))
    for acc, share, ridge in scored:  # the best whose full refit the guard would accept
        w = _refit(heads[ridge], guard, *_rows(ex, aug, y), share)
        if base - guard.accuracy(w) <= p.max_drop:
            return share, ridge, acc
    return scored[0][1], scored[0][2], scored[0][0]  # none would pass: the guard rolls back


def adapt_readout(
    state: AdaptState,
    examples: np.ndarray,
    labels: np.ndarray,
    guard: AdaptGuard,
    p: AdaptParams = AdaptParams(),
    augmented: np.ndarray | None = None,
) -> tuple[AdaptState, AdaptReport]:
    """Add the user's example embeddings ``(n, F)`` with their old-class ``labels`` (and
    optionally the embeddings of their augmented copies ``(n, A, F)``) and refit the
    readout on the guard set (:func:`adapt_guard`) plus every example so far (module
    docstring), with the settings of ``p`` (``None``: chosen by cross-validation on the
    examples). Returns the new state (the old one if the guard rolled the refit back)
    and a report."""
    K, F1 = state.weights.shape
    ex = np.asarray(examples, np.float64)
    y = np.asarray(labels)
    if ex.ndim != 2 or ex.shape[1] != F1 - 1 or len(ex) == 0:
        raise PlasticityError(f"examples must be (n >= 1, {F1 - 1}) embeddings, got {ex.shape}")
    if y.shape != (len(ex),) or y.dtype.kind not in "iu" or y.min() < 0 or y.max() >= K:
        raise PlasticityError(f"labels must be {len(ex)} class indices in [0, {K}), got {y!r}")
    aug = np.zeros((len(ex), 0, F1 - 1)) if augmented is None else np.asarray(augmented, np.float64)
    if aug.ndim != 3 or aug.shape[0] != len(ex) or aug.shape[2] != F1 - 1:
        raise PlasticityError(
            f"augmented embeddings must be (n={len(ex)}, A, F={F1 - 1}), got {aug.shape}"
        )
    if len(state.labels) and state.augmented.shape[1] != aug.shape[1]:
        raise PlasticityError(
            f"{aug.shape[1]} augmented copies per example, earlier calls had "
            f"{state.augmented.shape[1]}"
        )
    if not isinstance(guard, AdaptGuard) or guard.emb.shape[1] != F1 - 1:
        raise PlasticityError(
            f"the guard must be an AdaptGuard of {F1 - 1}-feature embeddings (adapt_guard)"
        )
    all_ex = np.concatenate([state.examples, ex]) if len(state.labels) else ex
    all_aug = np.concatenate([state.augmented, aug]) if len(state.labels) else aug
    all_y = np.concatenate([state.labels, y]) if len(state.labels) else y
    base = guard.accuracy(state.weights)
    ridges = AUTO_RIDGES if p.ridge is None else (p.ridge,)
    heads = {r: _head(F1 - 1, K, r, shared=True) for r in {*ridges, FALLBACK[1]}}
    share, ridge, cv = _choose(heads, guard, all_ex, all_aug, all_y, p, base)

    from neuroplast.plasticity import LearningGuard

    rt = heads[ridge]
    rt.params["words"]["weight"][:] = state.weights  # what a rollback restores
    lg = LearningGuard(
        rt, lambda r: guard.accuracy(r.params["words"]["weight"]), max_drop=p.max_drop
    )
    _refit(rt, guard, *_rows(all_ex, all_aug, all_y), share)
    accepted = lg.check_now()
    new = AdaptState(rt.params["words"]["weight"].astype(np.float64), all_ex, all_aug, all_y, rt)
    report = AdaptReport(
        len(all_y),
        {int(c): int(n) for c, n in zip(*np.unique(all_y, return_counts=True), strict=True)},
        lg.baseline,
        lg.history[-1][1],
        accepted,
        share,
        ridge,
        cv,
    )
    return (new if accepted else state), report


def save_adapt_state(path, state: AdaptState) -> None:  # noqa: ANN001
    """Atomically write the adapted readout and the user's examples (``.npz``, no
    pickle); the learning head is not stored (every adaptation refits from the guard)."""
    from neuroplast.arrayfile import npz_bytes
    from neuroplast.runtime.runtime import atomic_write_bytes

    arrays = {
        "adapt/weights": np.asarray(state.weights, np.float64),
        "adapt/examples": np.asarray(state.examples, np.float64),
        "adapt/augmented": np.asarray(state.augmented, np.float64),
        "adapt/labels": np.asarray(state.labels, np.int64),
    }
    atomic_write_bytes(path, npz_bytes(arrays))


def load_adapt_state(path) -> AdaptState:  # noqa: ANN001
    """Read what :func:`save_adapt_state` wrote, validated all or nothing (shapes,
    finiteness, labels in range); :class:`PlasticityError` naming what is wrong."""
    from neuroplast.arrayfile import read_npz
    from neuroplast.errors import NeuroplastError

    try:
        d = read_npz(path, str(path))
        w, ex, aug, y = (
            np.asarray(d[f"adapt/{k}"]) for k in ("weights", "examples", "augmented", "labels")
        )
        if w.ndim != 2 or w.shape[0] < 2 or ex.ndim != 2 or ex.shape[1] + 1 != w.shape[1]:
            raise ValueError(f"weights {w.shape} and examples {ex.shape} do not fit")
        if aug.ndim != 3 or aug.shape[0] != len(ex) or aug.shape[2] != ex.shape[1]:
            raise ValueError(f"augmented {aug.shape} does not fit examples {ex.shape}")
        if (
            y.shape != (len(ex),)
            or y.dtype.kind != "i"
            or (len(y) and not 0 <= y.min() <= y.max() < len(w))
        ):
            raise ValueError(f"labels must be {len(ex)} class indices below {len(w)}")
        if not all(np.all(np.isfinite(a)) for a in (w, ex, aug)):
            raise ValueError("non-finite values")
    except (OSError, KeyError, ValueError, TypeError, NeuroplastError) as e:
        raise PlasticityError(f"adaptation state {path} is unreadable: {e}") from e
    return AdaptState(
        w.astype(np.float64), ex.astype(np.float64), aug.astype(np.float64), y.astype(np.int64)
    )
