"""Heterogeneous-delay (HD-SNN) motion layer in PyTorch: training, evaluation, pruning.

The layer (Grimaldi & Perrinet 2023, section 2) is a causal 3-D convolution over
polarity x delay x space with one output channel per motion class::

    B(c, t, y, x) = b_c + sum_{p, d, dy, dx} K(c, p, d, dy, dx) A(p, t - d, y + dy, x + dx)

with ``A`` the Boolean event raster (1 ms bins), ``d = 0..n_delays-1`` ms. ON/OFF
symmetry (a complex-cell-like max) gives the logit
``z = max(B[A], B[A with polarities swapped])``, and ``Pr(c | t, y, x)`` is a
softmax/logistic readout of ``z``. The per-time-step decision is
``argmax_c mean_{y,x} z(c, t, y, x)``.

Weights are stored in torch ``Conv3d`` layout ``W[c, p, k, dy, dx]`` with the
time index flipped, ``k = n_delays - 1 - d`` (the conv is a cross-correlation over a
front-padded input), and the output grid is the valid one: ``(H - ky + 1, W - kx + 1)``.
torch is imported inside the functions so importing this module stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from neuroplast.arrayfile import read_npz, save_npz
from neuroplast.checks import require_int, require_real, require_seed
from neuroplast.errors import DataError

__all__ = [
    "HDParams",
    "TrainParams",
    "HDKernel",
    "delay_mask",
    "init_kernel",
    "hd_logits_torch",
    "hd_pooled_torch",
    "embed_kernel",
    "train_hd",
    "predict_dense",
    "prune_kernel",
    "prune_mask_of",
    "block_offset_of",
    "prune_retrain_gradual",
    "split_weight",
    "unsplit_weight",
    "weights_in",
    "PRUNE_BASES",
]


@dataclass(frozen=True)
class HDParams:
    """Layer sizes. The paper uses (36, 2, 21, 17, 17) on 128x128; we default to a CPU size."""

    n_classes: int = 36
    n_delays: int = 12  #: K_T, ms
    kernel: int = 9  #: K_X = K_Y, pixels (odd)
    v_max: float = 2.5  #: mask widening with delay (paper)
    r0: float = 0.05  #: mask width at zero delay (paper)

    def __post_init__(self) -> None:
        require_int(DataError, "HDParams", 1, n_classes=self.n_classes, n_delays=self.n_delays)
        require_int(DataError, "HDParams", 1, kernel=self.kernel)
        if self.kernel % 2 == 0:
            raise DataError(f"HDParams.kernel must be odd (a centre tap), got {self.kernel}")
        require_real(DataError, "HDParams", 0.0, v_max=self.v_max, r0=self.r0)


@dataclass(frozen=True)
class TrainParams:
    """Adam on per-voxel cross-entropy (the reference notebook's loss)."""

    epochs: int = 4
    batch: int = 8
    lr: float = 1e-2
    stride: int = 2  #: spatial stride of the outputs used for the loss (speed only)
    seed: int = 0
    use_mask: bool = False  #: clamp to the paper mask after each step (slows CPU-budget runs)
    pooled_weight: float = 1.0  #: weight of the CE on the position-averaged logit (ours)
    voxel_weight: float = 0.0  #: weight of the per-voxel CE (the notebook's loss)
    motion_init: bool = True  #: start from velocity delay lines (False = paper's init)
    lr_final: float | None = None  #: cosine-anneal lr -> lr_final over all steps (None: constant)
    fft: bool = True  #: pooled loss through :func:`hd_pooled_torch` (exact, 3-20x cheaper)

    def __post_init__(self) -> None:
        n = "TrainParams"
        require_int(DataError, n, 0, epochs=self.epochs)
        require_int(DataError, n, 1, batch=self.batch, stride=self.stride)
        require_seed(DataError, n, self.seed)
        require_real(DataError, n, 0.0, open_lo=True, lr=self.lr)
        require_real(
            DataError, n, 0.0, pooled_weight=self.pooled_weight, voxel_weight=self.voxel_weight
        )
        if self.lr_final is not None:
            require_real(DataError, n, 0.0, open_lo=True, lr_final=self.lr_final)


@dataclass(frozen=True)
class HDKernel:
    """Trained layer in numpy: ``weight[c, p, k, dy, dx]`` (torch layout), ``bias[c]``."""

    weight: np.ndarray
    bias: np.ndarray

    @property
    def n_delays(self) -> int:
        return int(self.weight.shape[2])

    @property
    def nnz(self) -> int:
        """Non-zero weights in the ON/OFF basis ``K(c, p, ...)``."""
        return int(np.count_nonzero(self.weight))

    @property
    def nnz_split(self) -> tuple[int, int]:
        """Non-zero weights of the sum and difference kernels ``(W_s, W_d)`` that the
        layer executes (:func:`split_weight`); an event costs ``nnz(W_d)`` taps."""
        s = split_weight(self.weight)
        return int(np.count_nonzero(s[:, 0])), int(np.count_nonzero(s[:, 1]))

    def nnz_in(self, basis: str) -> int:
        """Non-zero weights in a pruning basis (:data:`PRUNE_BASES`)."""
        return int(np.count_nonzero(weights_in(self.weight, basis)))

    def save(self, path) -> None:
        save_npz(path, {"weight": self.weight, "bias": self.bias})

    @staticmethod
    def load(path) -> HDKernel:
        z = read_npz(path, f"HD kernel {path}", names=("weight", "bias"), unlisted="skip")
        w, b = np.asarray(z["weight"], np.float32), np.asarray(z["bias"], np.float32)
        if w.ndim != 5 or w.shape[1] != 2 or b.shape != (w.shape[0],):
            raise DataError(f"HD kernel {path}: weight {w.shape} / bias {b.shape} mismatch")
        return HDKernel(w, b)


def delay_mask(params: HDParams) -> np.ndarray:
    """Spatio-temporal prior mask ``(n_delays, k, k)`` in torch layout (index k, not delay d).

    ``m = (((cos(pi r) + 1) / 2) [r < 1])^(1/4) exp(-r^2 / (2 (V_max (1 - s) + r0)^2))``
    with ``r`` the radius normalised by the kernel half-width and ``s = k / (K_T - 1)``
    (``s = 1`` is zero delay: narrow; long delays allow wider displacement).
    """
    kt, k = params.n_delays, params.kernel
    half = (k - 1) / 2.0
    yy, xx = np.mgrid[0:k, 0:k]
    r = np.sqrt((yy - half) ** 2 + (xx - half) ** 2) / (half + 0.5)
    s = np.linspace(0.0, 1.0, kt)[:, None, None] if kt > 1 else np.ones((1, 1, 1))
    ring = (((np.cos(np.pi * r) + 1) / 2) * (r < 1)) ** 0.25
    width = params.v_max * (1 - s) + params.r0
    return (ring[None] * np.exp(-(r[None] ** 2) / (2 * width**2))).astype(np.float32)


def init_kernel(
    params: HDParams, seed: int = 0, velocities: np.ndarray | None = None, sigma: float = 0.7
) -> HDKernel:
    """Initial kernel.

    Paper: ``W ~ 0.01 N(0,1) mask``; zero-delay centre tap +4 (ON) and -4 (OFF).
    With ``velocities`` (C, 2) px/ms, each class also gets a delay line along its
    trajectory (our addition; it replaces the paper's 80,000 training trials):
    ``K_c(ON, d, dy, dx) = -K_c(OFF, ...) = exp(-|(dx, dy) + v_c d|^2 / (2 sigma^2)) / n_delays``,
    i.e. an event seen ``d`` ms ago at ``-v_c d`` from here supports motion ``v_c``.
    """
    rng = np.random.default_rng(seed)
    m = delay_mask(params)
    w = 0.01 * rng.standard_normal((params.n_classes, 2, *m.shape)).astype(np.float32) * m
    kt, k = params.n_delays, params.kernel
    half = k // 2
    if velocities is not None:
        v = np.asarray(velocities, dtype=np.float64)
        if v.shape != (params.n_classes, 2):
            raise DataError(f"velocities must be ({params.n_classes}, 2), got {v.shape}")
        yy, xx = np.mgrid[-half : half + 1, -half : half + 1]
        for d in range(kt):
            kk = kt - 1 - d  # torch layout: time index flipped
            gx = xx[None] + v[:, 0, None, None] * d
            gy = yy[None] + v[:, 1, None, None] * d
            g = np.exp(-(gx**2 + gy**2) / (2 * sigma**2)) / kt
            w[:, 1, kk] += g.astype(np.float32)
            w[:, 0, kk] -= g.astype(np.float32)
    else:
        w[:, 1, -1, half, half] = 4.0
        w[:, 0, -1, half, half] = -4.0
    return HDKernel(w, np.zeros(params.n_classes, np.float32))


def hd_logits_torch(a, weight, bias, stride: int = 1):
    """Flip-max logits ``z = max(conv(A), conv(A[:, ::-1]))`` for ``a`` of shape (B, 2, T, H, W).

    Causal in time: the input is front-padded by ``n_delays - 1`` frames, so output
    ``t`` sees inputs ``t - n_delays + 1 .. t`` only. Computed with the exact identity
    ``max(B1, B2) = (B1 + B2)/2 + |B1 - B2|/2`` where
    ``B1 + B2 = (W_off + W_on) * (A_off + A_on)`` and ``B1 - B2 = (W_off - W_on) * (A_off - A_on)``:
    one grouped conv with one input channel per group, half the work of two
    two-channel convs. Returns (B, C, T, Ho, Wo).
    """
    import torch
    import torch.nn.functional as F

    kt = weight.shape[2]
    c = weight.shape[0]
    ap = F.pad(a, (0, 0, 0, 0, kt - 1, 0))
    x = torch.cat([ap[:, 0:1] + ap[:, 1:2], ap[:, 0:1] - ap[:, 1:2]], dim=1)
    g = torch.cat([weight[:, 0:1] + weight[:, 1:2], weight[:, 0:1] - weight[:, 1:2]], dim=0)
    out = F.conv3d(x, g, stride=(1, stride, stride), groups=2)
    z = 0.5 * out[:, :c] + 0.5 * out[:, c:].abs()
    return z if bias is None else z + bias[None, :, None, None, None]


def _fft_size(n: int) -> int:
    """Smallest 5-smooth integer >= n (pocketfft is slow on large prime factors)."""
    while True:
        m = n
        for f in (2, 3, 5):
            while m % f == 0:
                m //= f
        if m == 1:
            return n
        n += 1


def hd_pooled_torch(a, weight, bias, stride: int = 1):
    """Pooled evidence ``mean_{y,x} z(c, t, y, x)`` (B, C, T) without the dense conv.

    Same value as ``hd_logits_torch(a, weight, bias).mean((3, 4))`` (to float32
    rounding, test-checked) at ``stride=1``, from the split
    ``z = (W_s * A_s)/2 + |W_d * A_d|/2`` (sum/difference channels):

    * the linear half is pooled *before* convolving: ``mean_{y,x} (W_s * A_s) =
      sum_{d,dy,dx} W_s(d,dy,dx) S(t-d, dy, dx) / (H_o W_o)`` where ``S`` are box sums
      of ``A_s`` over the valid window shifted by ``(dy, dx)`` (integral images), so it
      costs a 1-D conv over time;
    * the rectified half is a circular cross-correlation by FFT over (y, x, t); with the
      input front-padded by ``K_T - 1`` frames every valid output is exact.
      ``stride > 1`` averages ``|.|`` over every ``stride``-th position, folding the
      spectrum (aliasing) before the inverse FFT so that FFT is ``stride^2`` smaller.

    Cost is independent of the kernel size (the paper's 21 x 17 x 17 kernel trains at
    the price of a 12 x 9 x 9 direct conv).
    """
    import torch
    import torch.nn.functional as F

    n_b, _, n_t, h, w = a.shape
    c, _, kt, k, _ = weight.shape
    ho, wo = h - k + 1, w - k + 1
    if ho < 1 or wo < 1:
        raise DataError(f"input {h}x{w} is smaller than the {k}x{k} kernel")
    tp = n_t + kt - 1
    tf = _fft_size(tp)
    ap = F.pad(a, (0, 0, 0, 0, kt - 1, 0))
    xs, xd = ap[:, 0] + ap[:, 1], ap[:, 0] - ap[:, 1]  # (B, Tp, H, W)
    ws, wd = weight[:, 0] + weight[:, 1], weight[:, 0] - weight[:, 1]  # (C, kt, k, k)
    cs = F.pad(xs.cumsum(2).cumsum(3), (1, 0, 1, 0))
    box = (
        cs[:, :, ho : ho + k, wo : wo + k]
        - cs[:, :, 0:k, wo : wo + k]
        - cs[:, :, ho : ho + k, 0:k]
        + cs[:, :, 0:k, 0:k]
    )  # (B, Tp, k, k): sum of A_s over rows dy..dy+ho-1, cols dx..dx+wo-1
    box = box.reshape(n_b, tp, k * k).transpose(1, 2)
    lin = F.conv1d(box, ws.permute(0, 2, 3, 1).reshape(c, k * k, kt)) / (ho * wo)
    s = int(stride)
    hs, ws_ = h // s, w // s
    xf = torch.fft.rfftn(
        xd.permute(0, 2, 3, 1)[:, : hs * s, : ws_ * s], s=(hs * s, ws_ * s, tf), dim=(1, 2, 3)
    )
    kp = weight.new_zeros((c, hs * s, ws_ * s, tf))
    kp[:, :k, :k, :kt] = wd.permute(0, 2, 3, 1)
    prod = xf[:, None] * torch.fft.rfftn(kp, dim=(1, 2, 3)).conj()[None]
    if s > 1:  # sub-sampling in space = summing aliased copies of the spectrum
        prod = prod.reshape(n_b, c, s, hs, s, ws_, -1).sum(dim=(2, 4)) / (s * s)
    out = torch.fft.irfftn(prod, s=(hs, ws_, tf), dim=(2, 3, 4))
    ny, nx = (ho - 1) // s + 1, (wo - 1) // s + 1
    z = 0.5 * lin + 0.5 * out[:, :, :ny, :nx, :n_t].abs().mean(dim=(2, 3))
    return z if bias is None else z + bias[None, :, None]


def embed_kernel(kernel: HDKernel, params: HDParams) -> HDKernel:
    """Place a trained kernel inside a larger one (more delays and/or a wider field),
    zeros elsewhere: the same layer, as a warm start for a bigger model.

    Delay ``d`` stays delay ``d`` (torch layout: time index ``K_T - 1 - d``) and the
    spatial centre stays the centre.
    """
    w = kernel.weight
    c, p, kt, k, _ = w.shape
    if params.n_classes != c or params.n_delays < kt or params.kernel < k:
        raise DataError(
            f"cannot embed kernel {w.shape} into ({params.n_classes}, 2, "
            f"{params.n_delays}, {params.kernel}, {params.kernel})"
        )
    if (params.kernel - k) % 2:
        raise DataError("kernel sides must both be odd")
    out = np.zeros((c, p, params.n_delays, params.kernel, params.kernel), np.float32)
    o = (params.kernel - k) // 2
    out[:, :, params.n_delays - kt :, o : o + k, o : o + k] = w
    return HDKernel(out, kernel.bias.copy())


def _stack(voxels: Sequence[np.ndarray]):
    import torch

    return torch.from_numpy(np.stack(voxels).astype(np.float32))


def train_hd(
    voxels: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    params: HDParams = HDParams(),
    train: TrainParams = TrainParams(),
    progress: Callable[[int, int, float], None] | None = None,
    init: HDKernel | None = None,
    prune_mask: np.ndarray | None = None,
    on_epoch: Callable[[int, HDKernel], None] | None = None,
    mask_basis: str = "onoff",
    fake_quant: Callable | None = None,
) -> tuple[HDKernel, list[float]]:
    """Train the layer on rasters ``voxels[i]`` (2, T, H, W) bool with labels ``(T,)``.

    ``init`` warm-starts from a trained kernel (same shape as ``params``) instead of
    ``init_kernel``; ``train.lr_final`` anneals the learning rate on a cosine.
    ``prune_mask`` (same shape as the weight, 0/1) keeps pruned weights at zero while
    the survivors are retrained (pruning-aware fine-tuning); ``mask_basis="split"``
    reads the mask on ``(W_s, W_d)`` (:func:`split_weight`). ``on_epoch(epoch, kernel)``
    is called after every epoch (validation / checkpointing by the caller).
    ``fake_quant(weight, bias) -> (weight, bias)`` (torch tensors) is applied to the
    masked parameters in every forward pass: quantization-aware training
    (:mod:`neuroplast.apps.motion.qat`); the returned kernel holds the float parameters.

    Loss: mean over voxels of ``CE(softmax_c z(c, t, y, x), label[t])``. After every
    Adam step weights are clamped to ``+-mask * max|W|`` (the paper's prior).
    Returns the kernel and the per-epoch mean loss. ``torch.set_num_threads`` is
    left to the caller.
    """
    import torch
    import torch.nn.functional as F

    if len(voxels) != len(labels) or not voxels:
        raise DataError("train_hd needs equally many (non-zero) rasters and label arrays")
    torch.manual_seed(train.seed)
    from neuroplast.apps.motion.simulate import class_velocities

    vel = class_velocities() if (train.motion_init and params.n_classes == 36) else None
    k0 = init_kernel(params, train.seed, velocities=vel) if init is None else init
    shape = (params.n_classes, 2, params.n_delays, params.kernel, params.kernel)
    if k0.weight.shape != shape or k0.bias.shape != (params.n_classes,):
        raise DataError(f"initial kernel {k0.weight.shape} does not match {shape}")
    pm = None
    if prune_mask is not None:
        if np.shape(prune_mask) != shape:
            raise DataError(f"prune mask {np.shape(prune_mask)} does not match {shape}")
        if mask_basis not in PRUNE_BASES:
            raise DataError(f"mask basis {mask_basis!r} is not one of {PRUNE_BASES}")
        pm = torch.from_numpy((np.asarray(prune_mask) != 0).astype(np.float32))
        k0 = HDKernel(_masked(torch.from_numpy(k0.weight), pm, mask_basis).numpy(), k0.bias)
    w = torch.nn.Parameter(torch.from_numpy(k0.weight.copy()))
    b = torch.nn.Parameter(torch.from_numpy(k0.bias.copy()))
    mask = torch.from_numpy(delay_mask(params))[None, None]
    opt = torch.optim.Adam([w, b], lr=train.lr)
    rng = np.random.default_rng(train.seed)
    n = len(voxels)
    losses = []
    step, n_steps = 0, train.epochs * ((n + train.batch - 1) // train.batch)
    sched = None
    if train.lr_final is not None:
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(
            opt, T_max=max(1, n_steps), eta_min=train.lr_final
        )
    for _ in range(train.epochs):
        order = rng.permutation(n)
        tot, cnt = 0.0, 0
        for i in range(0, n, train.batch):
            idx = order[i : i + train.batch]
            a = _stack([voxels[j] for j in idx])
            y = torch.from_numpy(np.stack([labels[j] for j in idx]))
            wm, bm = _masked(w, pm, mask_basis), b
            if fake_quant is not None:
                wm, bm = fake_quant(wm, bm)
            # CE on the evaluated readout mean_{y,x} z: on CPU budgets the per-voxel CE
            # alone barely moves off chance, and the two objectives conflict
            if train.fft and not train.voxel_weight:
                loss = train.pooled_weight * F.cross_entropy(
                    hd_pooled_torch(a, wm, bm, stride=train.stride), y
                )
            else:
                z = hd_logits_torch(a, wm, bm, stride=train.stride)
                tgt = y[:, :, None, None].expand(-1, -1, z.shape[3], z.shape[4])
                loss = train.pooled_weight * F.cross_entropy(z.mean(dim=(3, 4)), y)
                if train.voxel_weight:
                    loss = loss + train.voxel_weight * F.cross_entropy(z, tgt)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            if train.use_mask:
                with torch.no_grad():
                    lim = mask * w.abs().max()
                    w.copy_(torch.maximum(torch.minimum(w, lim), -lim))
            tot += float(loss.detach()) * len(idx)
            cnt += len(idx)
            step += 1
            if progress:
                progress(step, n_steps, float(loss.detach()))
        losses.append(tot / cnt)
        if on_epoch is not None:
            on_epoch(len(losses) - 1, _snapshot(w, b, pm, mask_basis))
    return _snapshot(w, b, pm, mask_basis), losses


def _masked(w, pm, basis: str):  # noqa: ANN001, ANN202 (torch tensors)
    """Weight with the pruned entries zeroed, the mask read in ``basis``."""
    if pm is None:
        return w
    if basis == "onoff":
        return w * pm
    import torch

    ws = (w[:, 0] + w[:, 1]) * pm[:, 0]
    wd = (w[:, 0] - w[:, 1]) * pm[:, 1]
    return torch.stack([0.5 * (ws + wd), 0.5 * (ws - wd)], dim=1)


def _snapshot(w, b, pm, basis: str = "onoff") -> HDKernel:  # noqa: ANN001
    import torch

    with torch.no_grad():
        wn = _masked(w.detach(), pm, basis).numpy().copy()
    return HDKernel(wn, b.detach().numpy().copy())


def predict_dense(
    kernel: HDKernel, voxels: np.ndarray, batch: int | None = None, max_bytes: float = 1.5e9
) -> np.ndarray:
    """Per-time-step class evidence ``mean_{y,x} z`` (N, T, C) from the dense torch layer
    (computed by :func:`hd_pooled_torch`, which equals the pooled conv3d).

    ``batch=None`` sizes batches so the FFT buffers (about ``4 C H W T`` complex64 per
    movie) stay under ``max_bytes``: a 128 x 128 movie takes ~0.8 GB.
    """
    import torch

    voxels = np.asarray(voxels)
    if voxels.ndim == 4:
        voxels = voxels[None]
    if batch is None:
        _, _, n_t, h, w = voxels.shape
        per_movie = 4 * 8 * kernel.weight.shape[0] * h * w * (n_t + kernel.n_delays)
        batch = int(max(1, min(8, max_bytes // per_movie)))
    w = torch.from_numpy(np.ascontiguousarray(kernel.weight, dtype=np.float32))
    b = torch.from_numpy(np.ascontiguousarray(kernel.bias, dtype=np.float32))
    outs = []
    with torch.no_grad():
        for i in range(0, len(voxels), batch):
            z = hd_pooled_torch(_stack(list(voxels[i : i + batch])), w, b)
            outs.append(z.permute(0, 2, 1).numpy())
    return np.concatenate(outs)


def split_weight(weight: np.ndarray) -> np.ndarray:
    """ON/OFF kernel ``K (C, 2, ...)`` -> ``(C, 2, ...)`` stacking ``W_s = K_0 + K_1``
    and ``W_d = K_0 - K_1``: with ``A_s = A_0 + A_1`` and ``A_d = A_0 - A_1`` the
    flip-max layer is ``z = (W_s * A_s)/2 + |W_d * A_d|/2`` (see :func:`hd_pooled_torch`)."""
    return np.stack([weight[:, 0] + weight[:, 1], weight[:, 0] - weight[:, 1]], axis=1)


def unsplit_weight(split: np.ndarray) -> np.ndarray:
    """Inverse of :func:`split_weight`: ``K_0 = (W_s + W_d)/2``, ``K_1 = (W_s - W_d)/2``
    (a zero in ``W_s`` or ``W_d`` stays an exact zero after a round trip)."""
    ws, wd = split[:, 0], split[:, 1]
    return np.stack([(ws + wd) / 2, (ws - wd) / 2], axis=1).astype(np.float32)


PRUNE_BASES = ("onoff", "split")


def weights_in(weight: np.ndarray, basis: str) -> np.ndarray:
    """The kernel's weights in a pruning basis: ``K`` itself for ``"onoff"``,
    ``(W_s, W_d)`` (:func:`split_weight`) for ``"split"``; other names raise DataError."""
    if basis not in PRUNE_BASES:
        raise DataError(f"pruning basis {basis!r} is not one of {PRUNE_BASES}")
    return weight if basis == "onoff" else split_weight(weight)


def block_offset_of(kx: int, block: int, block_offset: int | None = None) -> int:
    """First block boundary of a ``kx``-wide kernel row for :func:`prune_kernel`:
    ``block_offset`` itself, or (``None``) the one that centres a window on the centre tap
    ``kx // 2``: ``(kx // 2 - block // 2) mod block`` (4 for ``kx = 17``, ``block = 8``:
    windows ``[0, 4), [4, 12), [12, 17)``)."""
    if block_offset is None:
        return (kx // 2 - block // 2) % block
    if not 0 <= int(block_offset) < block:
        raise DataError(f"block_offset {block_offset}: need 0 <= offset < block = {block}")
    return int(block_offset)


def _block_index(kx: int, block: int, offset: int) -> np.ndarray:
    """Block of each ``dx`` of a ``kx``-wide kernel row: windows start at ``offset + j
    block`` (``[0, offset)`` is a block of its own when ``offset > 0``), clipped to the row."""
    return (np.arange(kx) + (block - offset) % block) // block


def prune_kernel(
    kernel: HDKernel,
    keep: int,
    basis: str = "onoff",
    block: int = 1,
    block_offset: int | None = None,
) -> HDKernel:
    """Keep the ``keep`` largest-|w| weights, zero the rest.

    ``basis="onoff"`` ranks the ON/OFF kernel ``K`` (the paper's pruning);
    ``basis="split"`` ranks ``(W_s, W_d)`` (:func:`split_weight`), the weights the
    runtime executes, so ``keep`` counts ``nnz(W_s) + nnz(W_d)``. The result is stored
    in the ON/OFF layout either way.

    ``block > 1`` (split basis only) is chunk-structured pruning: the rectified half
    ``W_d`` is kept or dropped in whole blocks of ``block`` consecutive ``dx`` of one
    kernel row ``(c, d, dy)``, the windows ``[offset + j block, offset + (j + 1) block)``
    clipped to the row (``offset`` = :func:`block_offset_of`: by default a window centred
    on the centre tap; with ``offset > 0`` the row's first ``offset`` taps are a block of
    their own). A block ``B`` with ``n_B`` non-zero weights is ranked by its mean
    magnitude ``s_B = sum_{w in B} |w| / n_B`` jointly with the individual ``|W_s|``
    weights (``n = 1``), and items are taken in decreasing ``s`` while their ``n`` fits
    the budget (an item that would overflow it is skipped, the smaller ones after it fill
    the rest): the result has exactly ``keep`` non-zero weights whenever the remainder can
    be filled (always while ``W_s`` weights are left). Every kept block lies in one
    ``block``-wide window, so
    :func:`~neuroplast.apps.motion.event_layer.compile_taps`' greedy row chunks of
    ``block`` lanes (greedy covering of points by fixed-width intervals is optimal)
    number at most the kept blocks: ``block = 8`` matches the pull path's 8-lane chunks,
    whose count, not ``nnz(W_d)``, is its cost per event. ``W_s`` stays per weight: it
    costs per ms (box counts), not per event. ``block = 1`` is the per-weight ranking.
    """
    block = int(block)
    if block < 1:
        raise DataError(f"block must be >= 1, got {block}")
    if block > 1 and basis != "split":
        raise DataError("block pruning groups W_d: it needs basis='split'")
    w = weights_in(kernel.weight, basis)
    kx = w.shape[-1]
    offset = block_offset_of(kx, block, block_offset) if block > 1 else 0
    keep = int(max(0, min(keep, w.size)))
    out = np.zeros_like(w)
    if block == 1:
        flat = np.abs(w).ravel()
        if keep:
            idx = np.argpartition(flat, flat.size - keep)[flat.size - keep :]
            out.ravel()[idx] = w.ravel()[idx]
    elif keep:
        ws, wd = w[:, 0], w[:, 1]
        bid = _block_index(kx, block, offset)
        onehot = (bid[:, None] == np.arange(int(bid.max()) + 1)[None, :]).astype(np.float64)
        mass = (np.abs(wd).astype(np.float64) @ onehot).ravel()  # (C, K_T, K_Y, n_b)
        count = ((wd != 0).astype(np.float64) @ onehot).ravel().astype(np.int64)
        blocks = np.flatnonzero(count)
        s_idx = np.flatnonzero(ws.ravel())
        score = np.concatenate([mass[blocks] / count[blocks], np.abs(ws.ravel()[s_idx])])
        size = np.concatenate([count[blocks], np.ones(s_idx.size, np.int64)])
        order = np.argsort(-score, kind="stable")
        take = np.zeros(score.size, bool)
        left = keep
        for i in order.tolist():  # greedy by score; skip items that overflow the budget
            if size[i] <= left:
                take[i] = True
                left -= int(size[i])
                if not left:
                    break
        n_b = blocks.size
        keep_b = np.zeros(mass.size, bool)
        keep_b[blocks[take[:n_b]]] = True
        keep_d = keep_b.reshape(count.size // onehot.shape[1], -1)[:, bid].reshape(wd.shape)
        out[:, 1] = np.where(keep_d, wd, 0)
        out_s = np.zeros(ws.size, w.dtype)
        out_s[s_idx[take[n_b:]]] = ws.ravel()[s_idx[take[n_b:]]]
        out[:, 0] = out_s.reshape(ws.shape)
    if basis == "split":
        out = unsplit_weight(out)
    return HDKernel(out, kernel.bias.copy())


def prune_mask_of(kernel: HDKernel, basis: str = "onoff") -> np.ndarray:
    """Boolean mask of the non-zero weights of ``kernel`` in ``basis`` (for
    :func:`train_hd`'s ``prune_mask`` / ``mask_basis``)."""
    return weights_in(kernel.weight, basis) != 0


def prune_retrain_gradual(
    kernel: HDKernel,
    factors: Sequence[int],
    data: Callable[[int], tuple[Sequence[np.ndarray], Sequence[np.ndarray]]],
    train: TrainParams,
    basis: str = "split",
    reference: int | None = None,
    on_level: Callable[[int, HDKernel], None] | None = None,
    block: int = 1,
    block_offset: int | None = None,
) -> dict[int, HDKernel]:
    """Gradual magnitude pruning with retraining: for each ``factor`` in order, keep the
    ``max(1, reference // factor)`` largest weights (in ``basis``, :func:`prune_kernel`)
    of the previous level's retrained kernel, then retrain the survivors with the mask
    fixed (:func:`train_hd` with ``prune_mask``/``mask_basis``) on ``data(factor) ->
    (rasters, labels)``.

    ``reference`` is the weight count the factors refer to (default: ``kernel``'s
    ``nnz_in(basis)``), so a schedule can be resumed from a cached level by passing the
    remaining factors, that level's kernel and the original count. ``on_level(factor,
    kernel)`` sees every retrained level. ``block`` / ``block_offset`` are
    :func:`prune_kernel`'s (chunk-structured pruning of ``W_d``). Returns ``{factor:
    retrained kernel}``.
    """
    fs = [int(f) for f in factors]
    if not fs or min(fs) < 1 or any(b < a for a, b in zip(fs, fs[1:])):
        raise DataError(f"pruning factors must be >= 1 and non-decreasing, got {fs}")
    ref = kernel.nnz_in(basis) if reference is None else int(reference)
    c, _, kt, k, _ = kernel.weight.shape
    hp = HDParams(n_classes=c, n_delays=kt, kernel=k)
    out: dict[int, HDKernel] = {}
    cur = kernel
    for factor in fs:
        cut = prune_kernel(cur, max(1, ref // factor), basis, block, block_offset)
        x, y = data(factor)
        cur, _ = train_hd(
            list(x),
            list(y),
            hp,
            train,
            init=cut,
            prune_mask=prune_mask_of(cut, basis),
            mask_basis=basis,
        )
        out[factor] = cur
        if on_level is not None:
            on_level(factor, cur)
    return out
