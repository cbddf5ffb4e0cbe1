"""Evidence read-out over several HD windows: follow motion switches sooner.

One HD layer over the full delay window (21 ms) separates the 36 motions well once its
window holds a single motion, but after a switch it needs ~11 ms until the new motion
outweighs the old one. A second group of HD channels over a short window (the first
``S`` delays) sees the new motion after a few ms, less reliably. The read-out weighs
the per-step class evidence of the ``F`` channel groups (families), optionally over the
last ``L`` steps, and adds a class bias::

    r_c(t) = b_c + sum_{f < F} sum_{k < L} a[k, f] E_{f, c}(t - k)

``E_{f, c}`` is the position-mean evidence of class ``c`` in family ``f`` (channel
``f C + c`` of an HD layer with ``F C`` output channels). The decision is
``argmax_c r_c(t)``. With ``L = 1`` it is one ``Linear`` node after the pooled HD layer
(:func:`readout_graph`), integer mode included.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neuroplast.apps.motion.model import HDKernel, HDParams, embed_kernel
from neuroplast.errors import DataError

__all__ = ["EvidenceReadout", "fit_readout", "stack_kernels", "readout_graph"]


@dataclass(frozen=True)
class EvidenceReadout:
    """``a`` (L, F) weights per lag and family; ``b`` (C,) class bias."""

    a: np.ndarray
    b: np.ndarray

    @property
    def lags(self) -> int:
        return int(self.a.shape[0])

    @property
    def families(self) -> int:
        return int(self.a.shape[1])

    def apply(self, evidence: np.ndarray) -> np.ndarray:
        """``(..., T, F C)`` evidence -> ``(..., T, C)`` read-out logits."""
        e = np.asarray(evidence, np.float64)
        c = self.b.size
        if e.shape[-1] != self.families * c:
            raise DataError(
                f"evidence has {e.shape[-1]} channels, read-out expects {self.families * c}"
            )
        e = e.reshape(*e.shape[:-1], self.families, c)
        out = np.zeros(e.shape[:-2] + (c,))
        n_t = e.shape[-3]
        for k in range(self.lags):  # E(t - k), zero before the stream starts
            shifted = np.zeros_like(e)
            shifted[..., k:, :, :] = e[..., : n_t - k, :, :]
            out += np.einsum("...fc,f->...c", shifted, self.a[k])
        return (out + self.b).astype(np.float32)

    def save(self, path) -> None:
        np.savez(path, a=self.a, b=self.b)

    @staticmethod
    def load(path) -> EvidenceReadout:
        try:
            with np.load(path, allow_pickle=False) as z:
                return EvidenceReadout(
                    np.asarray(z["a"], np.float32), np.asarray(z["b"], np.float32)
                )
        except (OSError, ValueError, KeyError) as e:
            raise DataError(f"cannot read evidence read-out {path}: {e}") from None


def fit_readout(
    evidence: np.ndarray,
    labels: np.ndarray,
    families: int,
    lags: int = 1,
    bias: bool = True,
    steps: int = 300,
    l2: float = 1e-3,
    lr: float = 0.05,
) -> EvidenceReadout:
    """Fit :class:`EvidenceReadout` by per-step cross-entropy on ``evidence (N, T, F C)``
    against ``labels (N, T)`` (full-batch Adam; ``F L + C`` parameters, so a few dozen
    movies suffice). Starts from the first family alone (``a[0, 0] = 1``, the plain
    layer); ``l2`` shrinks the class bias."""
    import torch
    import torch.nn.functional as F

    e = np.asarray(evidence, np.float32)
    n, n_t, fc = e.shape
    if fc % families or np.shape(labels) != (n, n_t):
        raise DataError(f"evidence {e.shape} / labels {np.shape(labels)} / {families} families")
    c = fc // families
    x = torch.from_numpy(e.reshape(n, n_t, families, c))
    scale = x.std(dim=(0, 1, 3)).clamp_min(1e-12)  # per family: fit on unit scale
    xs = x / scale[None, None, :, None]
    lagged = torch.stack(
        [F.pad(xs, (0, 0, 0, 0, k, 0))[:, :n_t] for k in range(lags)], dim=2
    )  # (N, T, L, F, C)
    a = torch.zeros(lags, families, dtype=torch.float32)
    a[0, 0] = 1.0
    a.requires_grad_(True)
    b = torch.zeros(c, requires_grad=True)
    y = torch.from_numpy(np.asarray(labels, np.int64)).reshape(-1)
    opt = torch.optim.Adam([a, b] if bias else [a], lr=lr)
    for _ in range(steps):
        r = torch.einsum("ntlfc,lf->ntc", lagged, a) + b
        loss = F.cross_entropy(r.reshape(-1, c), y) + l2 * b.pow(2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return EvidenceReadout(
            (a / scale[None, :]).numpy().astype(np.float32), b.detach().numpy().astype(np.float32)
        )


def stack_kernels(kernels: list[HDKernel]) -> HDKernel:
    """One HD layer holding several kernels as channel groups (families), each embedded
    in the largest delay window and field (:func:`~neuroplast.apps.motion.model.embed_kernel`:
    the same layer, zeros elsewhere)."""
    kt = max(k.weight.shape[2] for k in kernels)
    ks = max(k.weight.shape[3] for k in kernels)
    out = [
        embed_kernel(k, HDParams(n_classes=k.weight.shape[0], n_delays=kt, kernel=ks))
        for k in kernels
    ]
    return HDKernel(np.concatenate([k.weight for k in out]), np.concatenate([k.bias for k in out]))


def readout_graph(quantized, readout: EvidenceReadout, sensor_size: tuple[int, int]):
    """The detector as a runtime graph: the (integer) HD layer of all families, pooled
    (sum over the grid), then ``Linear`` ``r = W E + b`` with ``W = a[0] (x) I_C``
    scaled to the sum (a lag-1 read-out only). ``quantized`` is a
    :class:`~neuroplast.apps.motion.qat.QuantizedHD`; the Linear gets 8-bit weights and
    a 32-bit output (its argmax is the decision)."""
    from neuroplast.graph import Graph
    from neuroplast.graph.nodes import Linear
    from neuroplast.quant import QuantSpec

    if readout.lags != 1:
        raise DataError("only a lag-1 read-out is one Linear node; refit with lags=1")
    g = quantized.graph(sensor_size, pooled=True)
    c = readout.b.size
    _, _, _, ky, kx = quantized.kernel.weight.shape
    w_s, h_s = sensor_size
    count = (h_s - ky + 1) * (w_s - kx + 1)
    w = np.kron(readout.a[0][None, :], np.eye(c)).astype(np.float32) / count
    s_in = float(np.float32(quantized.out_q.scale))
    s_w = float(np.abs(w).max()) / 127
    acc_scale = s_in * s_w
    lin = Linear(
        weight=w,
        bias=readout.b.astype(np.float32),
        weight_q=QuantSpec(bits=8, scale=s_w, narrow=True),
        out_q=QuantSpec(bits=32, scale=acc_scale),
    )
    nodes = [(name, g.nodes[name]) for name in g.topo_order()] + [("readout", lin)]
    return Graph.sequential(nodes, dt=g.dt)
