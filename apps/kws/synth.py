"""Synthetic keywords for fleet drills: spike-raster "words" and a frozen random SNN on the
numpy runtime that turns them into enrollment embeddings (offline, no audio, no torch).

A word is a prototype raster: each of ``C`` input channels fires with a rate profile
``r_wc(t) = r_max * exp(-(t - mu_wc)^2 / (2 sigma^2))`` (``mu_wc`` uniform in the window,
different per word). A clip is Bernoulli spikes of ``r_wc(t - s)`` with a random shift
``s`` (up to ``max_shift`` steps), plus background spikes at ``noise`` per step. The
embedder is ``Input(C) -> Linear(H) -> LIF`` with seeded Gaussian weights; a clip's
embedding is :func:`~neuroplast.apps.kws.enroll.embed` of its hidden spikes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from neuroplast.apps.kws.enroll import EnrollParams, embed

__all__ = ["WordParams", "word_protos", "word_clips", "Embedder"]


@dataclass(frozen=True)
class WordParams:
    """steps T, channels C, peak rate r_max (spikes/step), bump width sigma (steps),
    shift (steps), background noise (spikes/step)."""

    steps: int = 40
    channels: int = 32
    r_max: float = 0.6
    sigma: float = 4.0
    max_shift: int = 3
    noise: float = 0.03


def word_protos(n_words: int, p: WordParams = WordParams(), seed: int = 0) -> np.ndarray:
    """Rate profiles (n_words, T + 2 max_shift, C) of ``n_words`` distinct words."""
    rng = np.random.default_rng(seed)
    t = np.arange(p.steps + 2 * p.max_shift)[None, :, None]
    mu = rng.uniform(0, p.steps + 2 * p.max_shift, (n_words, 1, p.channels))
    amp = rng.uniform(0.3, 1.0, (n_words, 1, p.channels)) * p.r_max
    return amp * np.exp(-((t - mu) ** 2) / (2 * p.sigma**2))


def word_clips(
    protos: np.ndarray, word: int, n: int, rng: np.random.Generator, p: WordParams = WordParams()
) -> np.ndarray:
    """``n`` spike rasters (n, T, C) float32 of word ``word``."""
    out = np.empty((n, p.steps, p.channels), np.float32)
    for i in range(n):
        s = int(rng.integers(0, 2 * p.max_shift + 1))
        r = protos[word, s : s + p.steps] + p.noise
        out[i] = rng.random(r.shape) < r
    return out


class Embedder:
    """The frozen network on a neuroplast :class:`~neuroplast.runtime.Runtime`."""

    def __init__(self, p: WordParams = WordParams(), hidden: int = 64, seed: int = 0,
                 enroll: EnrollParams = EnrollParams()) -> None:  # fmt: skip
        from neuroplast.graph import LIF, Graph, Input, Linear
        from neuroplast.runtime import Runtime

        rng = np.random.default_rng(seed)
        w = (rng.standard_normal((hidden, p.channels)) / np.sqrt(p.channels) * 1.5).astype(
            np.float32
        )
        g = Graph.sequential(
            [
                ("in", Input(shape=(p.channels,))),
                ("fc", Linear(weight=w, bias=np.full(hidden, 0.1, np.float32))),
                (
                    "lif",
                    LIF(
                        tau_mem=np.full(hidden, 0.01, np.float32),
                        v_th=np.full(hidden, 0.5, np.float32),
                    ),
                ),
            ],
            dt=1e-3,
        )
        self.rt, self.enroll = Runtime(g), enroll

    def __call__(self, clips: np.ndarray) -> np.ndarray:
        """Embeddings (N, n_bins * H) of rasters (N, T, C)."""
        x = np.asarray(clips, np.float32)
        self.rt.reset(len(x))
        h = self.rt.run(np.ascontiguousarray(x.transpose(1, 0, 2)))  # (T, N, H)
        # no old readout here: the hidden-spike part of the embedding only
        p = replace(self.enroll, score_weight=0.0)
        return embed(np.asarray(h).transpose(1, 0, 2), p)
