"""Device-side inference: run the lowered KWS graph in the neuroplast runtime.

Numpy only. Batch evaluation (:func:`runtime_scores`) runs whole 1 s windows through
``Runtime.run``; :class:`KeywordStreamer` is the streaming path used on the device:
every 10 ms hop of audio goes through the log-mel front end, the delta encoder and
one ``Runtime.step``, and the decision is the running summed softmax

    m_c(t) = sum_{t' in window} softmax(v_out(t'))_c

over the last ``window`` steps.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from neuroplast.apps.kws.frontend import (
    DeltaParams,
    MelParams,
    delta_init,
    delta_step,
    log_mel_init,
    log_mel_step,
)
from neuroplast.errors import DataError

__all__ = [
    "softmax",
    "summed_softmax_np",
    "readout_scale",
    "with_outputs",
    "runtime_scores",
    "StreamResult",
    "KeywordStreamer",
]


def softmax(v: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax."""
    z = v - v.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def summed_softmax_np(v_out: np.ndarray) -> np.ndarray:
    """``(T, B, C)`` readout membranes -> ``(B, C)`` time-summed softmax."""
    return softmax(np.asarray(v_out, np.float64), axis=-1).sum(axis=0)


def readout_scale(rt) -> float:  # noqa: ANN001 - neuroplast.runtime.Runtime
    """Real units per integer unit of the readout membrane (1.0 in float mode)."""
    if rt.mode == "float":
        return 1.0
    return float(np.asarray(rt.kernels["out"].out_quant.scale))


def with_outputs(graph, outputs: tuple[str, ...]):  # noqa: ANN001, ANN201
    """The same graph with other output nodes (e.g. hidden spikes for enrollment)."""
    from neuroplast.graph import Graph

    return Graph(graph.nodes, graph.edges, dt=graph.dt, outputs=outputs)


def runtime_scores(
    rt,
    X: np.ndarray,
    batch_size: int = 128,
    hidden: str | tuple[str, ...] | None = None,  # noqa: ANN001
):  # noqa: ANN201
    """Run ``(N, T, C)`` spike rasters through a runtime -> (summed softmax ``(N, classes)``,
    hidden spikes: ``(N, T, n)`` of node ``hidden``, a list of those for a tuple of
    names, or None).

    The runtime's graph must output ``"out"`` (and the ``hidden`` nodes when asked).
    """
    X = np.asarray(X)
    if X.ndim != 3:
        raise DataError(f"spike rasters must be (N, T, C), got shape {X.shape}")
    scale = readout_scale(rt)
    scores, hid = [], []
    for i in range(0, len(X), batch_size):
        xb = np.ascontiguousarray(X[i : i + batch_size].transpose(1, 0, 2))
        if rt.mode == "int":
            xb = xb.astype(np.int8)
        rt.reset()
        y = rt.run(xb)
        out = y["out"] if isinstance(y, dict) else y
        scores.append(summed_softmax_np(np.asarray(out, np.float64) * scale))
        if hidden is not None:
            names = (hidden,) if isinstance(hidden, str) else tuple(hidden)
            hid.append([np.asarray(y[n], np.float32).transpose(1, 0, 2) for n in names])
    if hidden is None:
        return np.concatenate(scores), None
    layers = [np.concatenate([h[k] for h in hid]) for k in range(len(hid[0]))]
    return np.concatenate(scores), (layers[0] if isinstance(hidden, str) else layers)


@dataclass
class StreamResult:
    """Per-hop latencies (s) and the decisions of a streamed clip."""

    latencies: np.ndarray
    scores: np.ndarray  # (classes,) summed softmax over the last window
    label: int


class KeywordStreamer:
    """Streaming keyword spotter: 10 ms of audio in, running decision out.

    Holds explicit state (front-end buffers, encoder reference, runtime state, the
    softmax history) and processes one hop per :meth:`push`.
    """

    def __init__(
        self,
        rt,  # noqa: ANN001
        mel: MelParams = MelParams(),
        delta: DeltaParams = DeltaParams(),
        window: int = 100,
    ) -> None:
        self.rt, self.mel, self.delta, self.window = rt, mel, delta, window
        self.scale = readout_scale(rt)
        self.reset()

    def reset(self) -> None:
        self.mel_state = log_mel_init(self.mel)
        self.ref = delta_init(self.mel.n_mels, self.delta)
        self.history: deque[np.ndarray] = deque(maxlen=self.window)
        self.rt.reset()

    def push(self, chunk: np.ndarray) -> np.ndarray:
        """One hop (``hop_length`` samples) -> current summed-softmax scores ``(classes,)``."""
        frame, self.mel_state = log_mel_step(chunk, self.mel_state, self.mel)
        spikes, self.ref = delta_step(frame, self.ref, self.delta)
        x = spikes.astype(np.int8) if self.rt.mode == "int" else spikes
        y = self.rt.step(x)
        out = y["out"] if isinstance(y, dict) else y
        self.history.append(softmax(np.asarray(out, np.float64) * self.scale))
        return np.sum(self.history, axis=0)

    def stream(self, audio: np.ndarray) -> StreamResult:
        """Stream a whole clip hop by hop, timing every hop (front end + network)."""
        hop = self.mel.hop_length
        audio = np.asarray(audio)
        n = len(audio) // hop
        if n == 0:
            raise DataError(f"audio has fewer samples than one hop ({hop})")
        lat = np.empty(n)
        scores = None
        for k in range(n):
            t0 = time.perf_counter()
            scores = self.push(audio[k * hop : (k + 1) * hop])
            lat[k] = time.perf_counter() - t0
        return StreamResult(lat, scores, int(np.argmax(scores)))
