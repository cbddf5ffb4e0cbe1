"""The local learning rules a place module uses, in one place.

Diehl & Cook two-trace STDP comes from :mod:`neuroplast.plasticity` (``DiehlCookSTDPParams``,
per-step reference ``diehl_cook_delta``). The module simulation presents one image for
``T`` steps with the weights held fixed and applies the summed update at the end of the
presentation, so here the same per-step rule is evaluated for all ``T`` steps at once with
matrix products (:func:`diehl_cook_presentation_delta`); a test checks it equals the sum of
the per-step ``diehl_cook_delta`` calls.

Hyperactive-neuron statistics and masking call ``neuroplast.plasticity.homeostasis``. The
adaptive threshold and synaptic scaling are applied once per presentation (not per step) on
float32 stacks of modules, so they are written here as one-liners; tests check them against
the per-step ``spike_threshold_update`` and ``synaptic_scaling`` of the plasticity package.
"""

from __future__ import annotations

import numpy as np

from neuroplast.errors import DataError
from neuroplast.plasticity.homeostasis import hyperactive_mask as _plasticity_mask
from neuroplast.plasticity.homeostasis import reference_spike_counts as _plasticity_ref_counts
from neuroplast.plasticity.stdp import DiehlCookSTDPParams

__all__ = [
    "DiehlCookSTDPParams",
    "nearest_trace_before",
    "diehl_cook_presentation_delta",
    "normalize_weights",
    "theta_update",
    "hyperactive_mask",
    "reference_counts",
]


def nearest_trace_before(spikes: np.ndarray, alpha: float) -> np.ndarray:
    """Nearest-spike trace seen at each step *before* that step's spikes enter it.

    spikes: (T, n) 0/1, traces start at 0. Returns (T, n) float32 with
    ``trace[t] = alpha ** (t - t_last)`` where ``t_last < t`` is the last spike, else 0.
    (Trace set to 1 on a spike, decaying by ``alpha`` per step: Diehl & Cook.)
    """
    s = np.asarray(spikes) > 0
    t_len = s.shape[0]
    idx = np.where(s, np.arange(t_len, dtype=np.int32)[:, None], np.int32(-1))
    last_incl = np.maximum.accumulate(idx, axis=0)
    t = np.arange(t_len)
    last = np.where(t[:, None] > 0, last_incl[np.maximum(t - 1, 0)], -1)
    powers = (alpha ** np.arange(t_len + 1, dtype=np.float64)).astype(np.float32)
    return np.where(last >= 0, powers[np.minimum(t[:, None] - last, t_len)], np.float32(0))


def diehl_cook_presentation_delta(
    pre: np.ndarray, post: np.ndarray, p: DiehlCookSTDPParams
) -> np.ndarray:
    """Summed Diehl & Cook STDP update over one presentation with frozen weights.

    pre: (T, n_pre) and post: (T, n_post) spikes, or stacks (M, T, n) for M independent
    modules; all traces 0 at the start. With traces read after decay and before this step's
    spikes (x = pre, y1 = post1, y2 = post2), exactly as ``neuroplast.plasticity``'s per-step
    ``diehl_cook_delta``:

        dW = nu_post * (post * y2)^T @ x  +  sign * nu_pre * y1^T @ pre      (n_post, n_pre)

    The pre trace is only evaluated at steps where some neuron fired.
    """
    pre = np.asarray(pre, dtype=np.float32)
    post = np.asarray(post, dtype=np.float32)
    single = pre.ndim == 2
    if single:
        pre, post = pre[None], post[None]
    if pre.ndim != 3 or post.ndim != 3 or pre.shape[:2] != post.shape[:2]:
        raise DataError(
            f"pre/post must be (T, n) or (M, T, n) with equal T, got {pre.shape}, {post.shape}"
        )
    m, t_len, n_post = post.shape
    dw = np.zeros((m, n_post, pre.shape[2]), dtype=np.float32)
    mi, ti, ni = np.nonzero(post)  # post-spike events
    if mi.size == 0:
        return dw[0] if single else dw
    a = lambda tau: float(np.exp(-p.dt / tau))  # noqa: E731 - tiny local helper
    # Pre trace (all modules at once) sampled at the steps that hold a post spike.
    t_post = np.unique(ti)
    slot = np.full(t_len, -1, dtype=np.int64)
    slot[t_post] = np.arange(t_post.size)
    xs = np.zeros((m, t_post.size, pre.shape[2]), dtype=np.float32)
    x = np.zeros((m, pre.shape[2]), dtype=np.float32)
    fired = pre > 0
    ap = np.float32(a(p.tau_pre))
    for t in range(int(t_post[-1]) + 1):
        x *= ap
        if slot[t] >= 0:
            xs[:, slot[t]] = x
        np.copyto(x, np.float32(1.0), where=fired[:, t])
    # post2 "before": decayed from the same neuron's previous spike (0 if none).
    order = np.lexsort((ti, ni, mi))
    mo, no, to = mi[order], ni[order], ti[order]
    same = np.zeros(mo.size, dtype=bool)
    same[1:] = (mo[1:] == mo[:-1]) & (no[1:] == no[:-1])
    prev = np.zeros_like(to)
    prev[1:] = to[:-1]
    y2 = np.where(same, a(p.tau_post2) ** (to - prev).astype(np.float64), 0.0)
    vals = (np.float32(p.nu_post) * y2.astype(np.float32) * post[mo, to, no])[:, None]
    starts = np.flatnonzero(~same)  # events are grouped by (module, neuron)
    summed = np.add.reduceat(vals * xs[mo, slot[to]], starts, axis=0)
    dw[mo[starts], no[starts]] += summed
    if p.nu_pre:
        # On a pre spike: w += sign nu_pre post1. post1 is zero before a neuron's first spike,
        # so only neurons that fired and steps after the first post spike matter.
        sign = 1.0 if p.pre_sign == "+" else -1.0
        t0 = int(t_post[0])
        cols = np.unique(ni)
        flat = post[:, t0:, cols].transpose(1, 0, 2).reshape(t_len - t0, m * cols.size)
        y1 = nearest_trace_before(flat, a(p.tau_post1)).reshape(t_len - t0, m, cols.size)
        upd = np.matmul(y1.transpose(1, 2, 0), pre[:, t0:])
        dw[:, cols] += np.float32(sign * p.nu_pre) * upd
    return dw[0] if single else dw


def normalize_weights(w: np.ndarray, total: float) -> np.ndarray:
    """Synaptic scaling: each neuron's incoming weights rescaled to sum to ``total``.

    ``w_i. <- w_i. * total / sum_j w_ij`` for w of shape (..., n_post, n_pre); rows summing
    to 0 are left unchanged.
    """
    s = w.sum(axis=-1, keepdims=True)
    scale = np.where(s > 0, np.float32(total) / np.where(s > 0, s, 1), 1).astype(w.dtype)
    return w * scale


def theta_update(
    theta: np.ndarray, n_spikes: np.ndarray, theta_plus: float, decay: float
) -> np.ndarray:
    """Adaptive threshold after one presentation: ``theta <- decay * theta + theta_plus * n``.

    n_spikes: spikes of each neuron in the presentation; ``decay = exp(-T dt / tau_theta)``.
    """
    return (theta * decay + theta_plus * n_spikes).astype(theta.dtype)


def hyperactive_mask(n_spk: np.ndarray, threshold: int | None) -> np.ndarray:
    """Neurons to silence: ``n_spk >= threshold`` (VPRSNN ``ignore_hyperactive_neurons``),
    via ``neuroplast.plasticity.hyperactive_mask``.

    n_spk: for each neuron, the number of reference images (all regions) it fired for.
    ``threshold`` None or 0 disables the regulariser (all False), as in VPRSNN.
    """
    n = np.asarray(n_spk)
    if threshold is None or threshold == 0:
        return np.zeros(n.shape, dtype=bool)
    return _plasticity_mask(n, int(threshold))


def reference_counts(counts: np.ndarray) -> np.ndarray:
    """n_spk per neuron from (n_reference_images, N) spike counts, via
    ``neuroplast.plasticity.reference_spike_counts``."""
    return _plasticity_ref_counts(counts)
