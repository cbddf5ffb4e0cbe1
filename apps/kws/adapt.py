"""On-device voice adaptation: the readout of the existing words refitted on a user's
own examples of them, through the plasticity engine, no backprop.

A keyword model trained on synthetic voices hears a new speaker (or a microphone, or a
text-to-speech engine it never met) worse than the voices it was trained on. Here the
frozen network's clip embeddings ``e`` (:func:`~neuroplast.apps.kws.enroll.embed`, with
the old readout's evidence as their last ``K`` features) feed a new readout ``W`` of the
``K`` old classes, learned by the engine's ``least_squares`` rule on the old-word guard
set (the device's own copy of the training clips' embeddings) plus the user's examples
and their augmented copies, the examples weighted to a share ``rho`` of the total::

    W = argmin_W  sum_i a_i ||onehot(y_i) - W [e_i, 1]||^2 + lambda ||W||^2
    a_i = 1 (guard clip),  a_i = rho / (1 - rho) * N_guard / N_user (user's embedding)

and the prediction becomes ``argmax_k W_k [e, 1]``. Before any adaptation ``W`` picks
the old evidence out of the embedding (``W_k = e_{F-K+k}``), so it predicts exactly what
the old readout does. Every call refits from the guard and *all* the user's examples so
far (kept in the state, a few KB each), so examples accumulate and nothing is counted
twice. A :class:`~neuroplast.plasticity.LearningGuard` compares guard accuracy before
and after and rolls the refit back when it drops by more than ``max_drop``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neuroplast.apps.kws.enroll import _aug, _head
from neuroplast.errors import PlasticityError

__all__ = [
    "AdaptParams",
    "AdaptState",
    "AdaptReport",
    "adapt_init",
    "adapt_readout",
    "adapted_scores",
    "save_adapt_state",
    "load_adapt_state",
]


@dataclass(frozen=True)
class AdaptParams:
    """Learning and guard settings (defaults chosen on validation voices,
    ``bench/kws_adapt.py``)."""

    share: float = 0.2  # rho: share of the total sample weight on the user's embeddings
    ridge: float = 1.0  # lambda (absolute, not per clip)
    max_drop: float = 0.03  # roll back when guard accuracy drops by more
    n_aug: int = 4  # augmented copies per example (the embedding side makes them)

    def __post_init__(self) -> None:
        if not 0.0 < self.share < 1.0:
            raise PlasticityError(f"AdaptParams.share must be in (0, 1), got {self.share}")
        if not self.ridge > 0:
            raise PlasticityError(f"AdaptParams.ridge must be > 0, got {self.ridge}")
        if not self.max_drop >= 0:
            raise PlasticityError(f"AdaptParams.max_drop must be >= 0, got {self.max_drop}")
        if self.n_aug < 0:
            raise PlasticityError(f"AdaptParams.n_aug must be >= 0, got {self.n_aug}")


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


def adapt_init(n_features: int, n_classes: int) -> AdaptState:
    """The readout that reproduces the old one: ``W_k`` picks the old evidence ``v_k``,
    the last ``n_classes`` of the ``n_features`` embedding features (``score_weight``
    > 0), so ``argmax W [e, 1] = argmax`` of the old readout's scores."""
    if n_features <= n_classes or n_classes < 2:
        raise PlasticityError(
            f"adaptation needs embeddings that end in the old readout's {n_classes} scores "
            f"(EnrollParams.score_weight > 0), got {n_features} features"
        )
    w = np.zeros((n_classes, n_features + 1))
    w[np.arange(n_classes), n_features - n_classes + np.arange(n_classes)] = 1.0
    return AdaptState(w, np.zeros((0, n_features)), np.zeros((0, 0, n_features)), np.zeros(0, int))


def adapted_scores(state: AdaptState, e: np.ndarray) -> np.ndarray:
    """Scores ``(N, K)`` of the adapted readout; their argmax is the prediction."""
    e = np.asarray(e, np.float64)
    if e.ndim != 2 or e.shape[1] + 1 != state.weights.shape[1]:
        raise PlasticityError(
            f"embeddings must be (N, {state.weights.shape[1] - 1}), got shape {e.shape}"
        )
    return _aug(e) @ state.weights.T


def adapt_readout(
    state: AdaptState,
    examples: np.ndarray,
    labels: np.ndarray,
    guard_emb: np.ndarray,
    guard_labels: np.ndarray,
    p: AdaptParams = AdaptParams(),
    augmented: np.ndarray | None = None,
) -> tuple[AdaptState, AdaptReport]:
    """Add the user's example embeddings ``(n, F)`` with their old-class ``labels`` (and
    optionally the embeddings of their augmented copies ``(n, A, F)``) and refit the
    readout on the guard set plus every example so far (module docstring). Returns the
    new state (the old one if the guard rolled the refit back) and a report."""
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
    g, gl = np.asarray(guard_emb, np.float64), np.asarray(guard_labels)
    if g.ndim != 2 or g.shape[1] != F1 - 1 or len(g) == 0 or gl.shape != (len(g),):
        raise PlasticityError(
            f"the guard must be (N >= 1, {F1 - 1}) embeddings with N labels: keep the "
            "training clips' embeddings on the device"
        )
    all_ex = np.concatenate([state.examples, ex]) if len(state.labels) else ex
    all_aug = np.concatenate([state.augmented, aug]) if len(state.labels) else aug
    all_y = np.concatenate([state.labels, y]) if len(state.labels) else y
    user = np.concatenate([all_ex, all_aug.reshape(-1, F1 - 1)])
    user_y = np.concatenate([all_y, np.repeat(all_y, all_aug.shape[1])])
    # the user's rows count a = rho/(1-rho) N_guard/N_user times: scale input and target
    # by sqrt(a), one engine step with every row learning (reward 1)
    s = np.sqrt(p.share / (1 - p.share) * len(g) / len(user))
    x = np.concatenate([s * _aug(user), _aug(g)])
    t = np.concatenate([s * np.eye(K)[user_y], np.eye(K)[gl]])
    rt = _head(F1 - 1, K, p.ridge)
    rt.params["words"]["weight"][:] = state.weights  # its input ends in the constant 1

    def acc(r) -> float:  # noqa: ANN001
        w = r.params["words"]["weight"].astype(np.float64)
        return float(np.mean((_aug(g) @ w.T).argmax(1) == gl))

    from neuroplast.plasticity import LearningGuard

    guard = LearningGuard(rt, acc, max_drop=p.max_drop)
    rt.reset()
    rt.plasticity.set_target("words", t)
    rt.learn(True)
    rt.step(x.astype(np.float32), reward=np.ones(K))
    rt.learn(False)
    accepted = guard.check_now()
    new = AdaptState(rt.params["words"]["weight"].astype(np.float64), all_ex, all_aug, all_y, rt)
    report = AdaptReport(
        len(all_y),
        {int(c): int(n) for c, n in zip(*np.unique(all_y, return_counts=True), strict=True)},
        guard.baseline,
        guard.history[-1][1],
        accepted,
    )
    return (new if accepted else state), report


def save_adapt_state(path, state: AdaptState) -> None:  # noqa: ANN001
    """Atomically write the adapted readout and the user's examples (``.npz``, no
    pickle); the learning head is not stored (every adaptation refits from the guard)."""
    import io

    from neuroplast.runtime.runtime import atomic_write_bytes

    buf = io.BytesIO()
    np.savez(
        buf,
        **{
            "adapt/weights": np.asarray(state.weights, np.float64),
            "adapt/examples": np.asarray(state.examples, np.float64),
            "adapt/augmented": np.asarray(state.augmented, np.float64),
            "adapt/labels": np.asarray(state.labels, np.int64),
        },
    )
    atomic_write_bytes(path, buf.getvalue())


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
