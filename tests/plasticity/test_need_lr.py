"""Need-based learning-rate regulation vs a fixed learning rate after a label swap."""

from __future__ import annotations

import numpy as np
import pytest

from neuroplast.errors import PlasticityError
from neuroplast.plasticity import NeedLRParams, label_valence, need_lr_init, need_lr_step


def _stream(mode: str, seed: int, eta0: float = 0.02, n: int = 3000, swap_at: int = 2000):
    """Online softmax regression on 10 Gaussian classes; classes 2 and 7 swap labels at
    ``swap_at`` (concept shift). Returns steps until the 100-sample moving accuracy is
    back within 3 points of the pre-swap accuracy, and the eta trace."""
    rng = np.random.default_rng(seed)
    n_cls, d, memory = 10, 20, 20
    mu = rng.standard_normal((n_cls, d))
    W = np.zeros((n_cls, d + 1))
    p = NeedLRParams(eta0=eta0, memory=memory, interval=10, split=5, mode="valence")
    st = need_lr_init(p)
    perm = np.arange(n_cls)
    xs: list[np.ndarray] = []
    ys: list[int] = []
    correct = np.zeros(n)
    for i in range(n):
        if i == swap_at:
            perm[[2, 7]] = perm[[7, 2]]
        c = int(rng.integers(n_cls))
        x = np.append(mu[c] + 0.8 * rng.standard_normal(d), 1.0)
        y = int(perm[c])
        z = W @ x
        pred = int(np.argmax(z))
        correct[i] = pred == y
        xs, ys = (xs + [x])[-memory:], (ys + [y])[-memory:]
        pz = np.exp(z - z.max())
        pz /= pz.sum()
        pz[y] -= 1
        g = np.outer(pz, x)  # cross-entropy gradient
        if mode == "need":
            X, Y = np.array(xs), np.array(ys)

            def score(eta: float, X=X, Y=Y, g=g, W=W) -> float:
                # look-ahead on a copy: mean log-likelihood of the recent samples
                Z = X @ (W - eta * g).T
                Z -= Z.max(axis=1, keepdims=True)
                lp = Z - np.log(np.exp(Z).sum(axis=1, keepdims=True))
                return float(lp[np.arange(len(Y)), Y].mean())

            st = need_lr_step(st, p, true_label=y, predicted_label=pred, score=score)
        W = W - st.eta * g
    pre = correct[swap_at - 500 : swap_at].mean()
    moving = np.convolve(correct[swap_at:], np.ones(100) / 100, mode="valid")
    ok = np.flatnonzero(moving >= pre - 0.03)
    return (int(ok[0]) if ok.size else n), st


def test_need_based_lr_recovers_faster_than_fixed_after_label_swap() -> None:
    fixed = [_stream("fixed", s)[0] for s in range(3)]
    need = [_stream("need", s)[0] for s in range(3)]
    print(f"steps-to-recover fixed={fixed} need-based={need}")
    assert np.median(need) < 0.5 * np.median(fixed), (fixed, need)
    assert all(n < f for n, f in zip(need, fixed)), (fixed, need)


def test_need_lr_step_rules() -> None:
    p = NeedLRParams(eta0=0.1, memory=2, interval=2, split=5)
    st = need_lr_init(p)
    # before `memory` samples nothing is evaluated
    st = need_lr_step(st, p, true_label=7, predicted_label=7, score=lambda e: 1 / 0)
    st = need_lr_step(st, p, true_label=7, predicted_label=7, score=lambda e: 1 / 0)
    assert st.eta == 0.1 and st.count == 2
    st = need_lr_step(st, p, true_label=7, predicted_label=7, score=lambda e: e)  # odd count
    # take-it (eta + 0.01, predicted excitatory) scores higher -> move by true valence
    st = need_lr_step(st, p, true_label=1, predicted_label=8, score=lambda e: e)
    assert st.eta == pytest.approx(0.09) and st.changes == 1  # the "vulnerability"
    st = need_lr_step(st, p, true_label=1, predicted_label=8, score=lambda e: -e)
    st = need_lr_step(st, p, true_label=1, predicted_label=8, score=lambda e: -e)
    assert st.eta == pytest.approx(0.09)  # take-it was worse: unchanged
    assert label_valence(5, p) == 1 and label_valence(4, p) == -1
    with pytest.raises(PlasticityError, match="interval"):
        NeedLRParams(interval=0)
    with pytest.raises(PlasticityError, match="mode"):
        NeedLRParams(mode="magic")
