"""Evidence read-out over several HD windows: follow motion switches sooner.

One HD layer over the full delay window (21 ms) separates the 36 motions well once its
window holds a single motion, but after a switch it needs ~11 ms until the new motion
outweighs the old one. A second group of HD channels over a short window (the first
``S`` delays) sees the new motion after a few ms, less reliably. The read-out weighs
the per-step class evidence of the ``F`` channel groups (families) over the last ``L``
steps with one small network shared by all classes (:class:`EvidenceReadout`): linear,
or with ``H`` tanh units, which learn rules such as "the short window is sure and the
long window does not contradict it".

``E_{f, c}`` is the position-mean evidence of class ``c`` in family ``f`` (channel
``f C + c`` of an HD layer with ``F C`` output channels). The decision is
``argmax_c r_c(t)``. A linear read-out with ``L = 1`` is one ``Linear`` node after the
pooled HD layer (:func:`readout_graph`), integer mode included; the others run in float
on the (integer) evidence, a few thousand operations per ms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neuroplast.apps.motion.model import HDKernel, HDParams, embed_kernel
from neuroplast.errors import DataError

__all__ = ["EvidenceReadout", "fit_readout", "stack_kernels", "readout_graph"]


@dataclass(frozen=True)
class EvidenceReadout:
    """Per class ``c``, features ``x_c[k, f] = (E_fc(t-k) - mean_c' E_fc'(t-k)) / s_f``
    (the last ``L`` steps of every family, centred over classes, family scale ``s_f``)::

        r_c(t) = b_c + sum_{k,f} a[k, f] x_c[k, f] + w2 . tanh(w1 x_c + b1)

    One small network shared by all classes (``L F + H (L F' + 2) + C`` parameters,
    ``F' = F`` or ``2 F`` with margins;
    ``H = 0``: linear). ``a`` (L, F), ``scale`` (F,), ``w1`` (H, L, F), ``b1``, ``w2`` (H,),
    ``b`` (C,).

    With ``w1`` (H, L, 2 F) the tanh units also see each class's margin to the best
    class, ``x_c[k, f] - max_c' x_c'[k, f]`` (0 for the leading class): rules such as
    "the short window's leader is not the long window's" need it, the class's own
    evidence alone cannot tell."""

    a: np.ndarray
    scale: np.ndarray
    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b: np.ndarray

    @property
    def lags(self) -> int:
        return int(self.a.shape[0])

    @property
    def families(self) -> int:
        return int(self.a.shape[1])

    @property
    def hidden(self) -> int:
        return int(self.w2.size)

    @property
    def margins(self) -> bool:
        """Whether the tanh units also see the margins to the leading class."""
        return bool(self.w1.shape[2] == 2 * self.families)

    def hidden_input(self, x: np.ndarray) -> np.ndarray:
        """Features ``x`` (..., C, L, F) -> the tanh units' input (..., C, L, F or 2 F)."""
        if not self.margins:
            return x
        return np.concatenate([x, x - x.max(-3, keepdims=True)], -1)

    def features(self, evidence: np.ndarray) -> np.ndarray:
        """``(..., T, F C)`` -> ``x`` ``(..., T, C, L, F)``."""
        e = np.asarray(evidence, np.float64)
        c = self.b.size
        if e.shape[-1] != self.families * c:
            raise DataError(
                f"evidence has {e.shape[-1]} channels, read-out expects {self.families * c}"
            )
        e = e.reshape(*e.shape[:-1], self.families, c)
        e = (e - e.mean(-1, keepdims=True)) / self.scale[:, None]
        n_t = e.shape[-3]
        x = np.zeros(e.shape[:-3] + (n_t, c, self.lags, self.families))
        for k in range(self.lags):  # E(t - k), zero before the stream starts
            x[..., k:, :, k, :] = np.swapaxes(e[..., : n_t - k, :, :], -1, -2)
        return x

    def apply(self, evidence: np.ndarray) -> np.ndarray:
        """``(..., T, F C)`` evidence -> ``(..., T, C)`` read-out logits."""
        x = self.features(evidence)
        r = np.einsum("...kf,kf->...", x, self.a)
        if self.hidden:
            h = np.tanh(np.einsum("...kf,hkf->...h", self.hidden_input(x), self.w1) + self.b1)
            r = r + h @ self.w2
        return (r + self.b).astype(np.float32)

    def save(self, path) -> None:
        from neuroplast.arrayfile import save_npz

        save_npz(path, {k: getattr(self, k) for k in ("a", "scale", "w1", "b1", "w2", "b")})

    @staticmethod
    def load(path) -> EvidenceReadout:
        try:
            with np.load(path, allow_pickle=False) as z:
                return EvidenceReadout(
                    *(np.asarray(z[k], np.float32) for k in ("a", "scale", "w1", "b1", "w2", "b"))
                )
        except (OSError, ValueError, KeyError) as e:
            raise DataError(f"cannot read evidence read-out {path}: {e}") from None


def fit_readout(
    evidence: np.ndarray,
    labels: np.ndarray,
    families: int,
    lags: int = 1,
    hidden: int = 0,
    bias: bool = False,
    steps: int = 400,
    lr: float = 0.01,
    weight_decay: float = 1e-4,
    seed: int = 0,
    margins: bool = False,
) -> EvidenceReadout:
    """Fit :class:`EvidenceReadout` by per-step cross-entropy on ``evidence (N, T, F C)``
    against ``labels (N, T)`` (full-batch Adam). Starts from the first family alone
    (``a[0, 0] = 1``: the plain layer's decision); ``bias`` adds a class bias.
    ``margins``: the tanh units also see the margins to the leading class."""
    import torch
    import torch.nn.functional as F

    e = np.asarray(evidence, np.float32)
    n, n_t, fc = e.shape
    if fc % families or np.shape(labels) != (n, n_t):
        raise DataError(f"evidence {e.shape} / labels {np.shape(labels)} / {families} families")
    c = fc // families
    ec = e.reshape(n, n_t, families, c)
    scale = (ec - ec.mean(-1, keepdims=True)).std(axis=(0, 1, 3)).clip(1e-12).astype(np.float32)
    probe = EvidenceReadout(
        np.zeros((lags, families), np.float32),
        scale,
        np.zeros((0, lags, families), np.float32),
        np.zeros(0, np.float32),
        np.zeros(0, np.float32),
        np.zeros(c, np.float32),
    )
    x = torch.from_numpy(probe.features(e).astype(np.float32))  # (N, T, C, L, F)
    xh = torch.cat([x, x - x.amax(2, keepdim=True)], -1) if margins else x
    torch.manual_seed(seed)
    a = torch.zeros(lags, families)
    a[0, 0] = 1.0
    a.requires_grad_(True)
    w1 = (0.3 * torch.randn(hidden, lags, families * (1 + margins))).requires_grad_(True)
    b1 = torch.zeros(hidden, requires_grad=True)
    w2 = torch.zeros(hidden, requires_grad=True)
    b = torch.zeros(c, requires_grad=True)
    params = [a, w1, b1, w2] + ([b] if bias else [])
    opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    y = torch.from_numpy(np.asarray(labels, np.int64)).reshape(-1)
    for _ in range(steps):
        r = torch.einsum("ntckf,kf->ntc", x, a) + b
        if hidden:
            r = r + torch.tanh(torch.einsum("ntckf,hkf->ntch", xh, w1) + b1) @ w2
        loss = F.cross_entropy(r.reshape(-1, c), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return EvidenceReadout(
        *(t.detach().numpy().astype(np.float32) for t in (a,)),
        scale,
        *(t.detach().numpy().astype(np.float32) for t in (w1, b1, w2, b)),
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

    if readout.lags != 1 or readout.hidden:
        raise DataError(
            "only a linear lag-1 read-out is one Linear node; refit with lags=1, hidden=0"
        )
    g = quantized.graph(sensor_size, pooled=True)
    c = readout.b.size
    _, _, _, ky, kx = quantized.kernel.weight.shape
    w_s, h_s = sensor_size
    count = (h_s - ky + 1) * (w_s - kx + 1)
    # centring over classes shifts every class alike: the decision is the same without it
    w = np.kron((readout.a[0] / readout.scale)[None, :], np.eye(c)).astype(np.float32) / count
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
