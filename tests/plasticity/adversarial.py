"""The trained-readout scenario of issue 16 (shared by test_safe_defaults.py and
bench/plasticity_adversarial.py).

A spiking readout ``Linear(64 -> 4) -> LIF`` is fitted in closed form to four Poisson
spike-pattern classes (class templates minus their mean: a third of the weights are
negative); accuracy is the argmax of the LIF spike counts over a 20-step window. Then
pair STDP is attached and fed a stream (normal class windows, all-ones, silence,
bursts) and the accuracy is measured again: with the old defaults (``w_min=0``, no
saturation guard, forced), with the safe defaults, and with the safe defaults plus a
LearningGuard scoring the held-out accuracy.
"""

from __future__ import annotations

import numpy as np

from neuroplast.graph import LIF, Graph, Input, Linear
from neuroplast.plasticity import LearningGuard, PairSTDPParams
from neuroplast.runtime import Runtime

N_IN, N_CLS, WIN = 64, 4, 20
STREAMS = ("normal", "all-ones", "silence", "burst")


def task(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per-class firing probabilities (4, 64): 0.35 on the class's 16 inputs, 0.05 else."""
    rates = np.full((N_CLS, N_IN), 0.05)
    perm = np.random.default_rng(seed).permutation(N_IN)
    for c in range(N_CLS):
        rates[c, perm[c * 16 : (c + 1) * 16]] = 0.35
    return rates, perm


def windows(rates: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` labelled windows (n, WIN, 64) of Poisson spikes."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, N_CLS, n)
    x = (rng.random((n, WIN, N_IN)) < rates[y][:, None, :]).astype(np.float32)
    return x, y


def trained_readout(rates: np.ndarray) -> Graph:
    """Closed-form readout: templates minus their mean, scaled so the right neuron
    fires every few steps."""
    w = (rates - rates.mean(axis=0)) * 0.6
    return Graph.sequential(
        [
            ("in", Input(shape=(N_IN,))),
            ("ro", Linear(weight=w.astype(np.float32))),
            ("lif", LIF(tau_mem=[5e-3], v_th=[0.5])),
        ]
    )


def accuracy(rt: Runtime, x: np.ndarray, y: np.ndarray) -> float:
    """Held-out accuracy with learning off (an all-silent window counts as wrong)."""
    was, hits = rt.learning, 0
    rt.learn(False)
    for xi, yi in zip(x, y, strict=True):
        rt.reset()
        counts = np.asarray(rt.run(xi)).sum(axis=0)
        hits += int(np.argmax(counts) == yi and counts.max() > 0)
    rt.learn(was)
    return hits / len(y)


def stream(name: str, rates: np.ndarray, steps: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if name == "all-ones":
        return np.ones((steps, N_IN), np.float32)
    if name == "silence":
        return np.zeros((steps, N_IN), np.float32)
    x, _ = windows(rates, steps // WIN + 1, seed)
    x = x.reshape(-1, N_IN)[:steps]
    if name == "burst":  # 20 all-ones steps out of every 100
        x[(np.arange(steps) % 100) < 20] = 1.0
    _ = rng
    return x


def run(name: str, setting: str, steps: int = 2000, seed: int = 0) -> dict:
    """One row: accuracy before/after ``steps`` of stream ``name`` under ``setting``
    (``"old"``: w_min=0 forced, no saturation guard; ``"safe"``: defaults;
    ``"safe+guard"``: defaults and a LearningGuard on the held-out accuracy)."""
    rates, _ = task()
    xh, yh = windows(rates, 60, seed=100 + seed)
    rt = Runtime(trained_readout(rates))
    before = accuracy(rt, xh, yh)
    p = PairSTDPParams(eta_plus=0.01, eta_minus=0.012)
    if setting == "old":
        p = PairSTDPParams(eta_plus=0.01, eta_minus=0.012, w_min=0.0, w_max=1.0, rate_cap=1.0)
    rt.plasticity.attach("ro", p, force=setting == "old")
    rt.learn(True)
    g = None
    if setting == "safe+guard":
        g = LearningGuard(rt, lambda r: accuracy(r, xh, yh), every=250, max_drop=0.05)
    rt.reset()
    step = rt.step if g is None else g.step
    for x in stream(name, rates, steps, seed):
        step(x)
    after = accuracy(rt, xh, yh)
    w = rt.params["ro"]["weight"]
    return {
        "stream": name,
        "setting": setting,
        "before": before,
        "after": after,
        "rollbacks": 0 if g is None else g.rollbacks,
        "neg_weights": int((w < 0).sum()),
    }
