"""Brevitas quantization-aware training of the HD kernel, and the integer layer it defines.

The weights are quantized by a Brevitas weight quantizer (``Int8WeightPerChannelFloat``:
symmetric, narrow range, one scale per class from the weight statistics, or
``Int8WeightPerTensorFloat``); the bias is quantized onto the accumulator grid
``s_w[c]`` (events are 0/1 codes of scale 1). Training is :func:`train_hd` with the
fake-quantized parameters in every forward pass (straight-through rounding), on the
exact pooled loss. The output scale ``s_out`` (int8, per tensor) is then calibrated by a
Brevitas ``Int8ActPerTensorFloat`` quantizer on the dense per-position logits.

The integer layer (the definition the runtime's integer ``HDDelayConv`` reproduces bit
for bit, see :mod:`neuroplast.apps.motion.runtime_node`)::

    B_p = K_q * A_p  (int32),  acc = max(B_0, B_1) + b_q,
    z_q = clamp(requantize(acc, M_c) + zp),  M_c = s_w[c] / s_out

:func:`int_logits` (dense conv3d in float64) and :func:`int_evidence` (the sum of
``z_q`` over the output grid, by FFT in float64, rounding checked) compute it from the
codes; both are exact integer arithmetic. torch and brevitas are imported lazily.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from neuroplast.apps.motion.model import HDKernel, HDParams, TrainParams, train_hd
from neuroplast.errors import DataError
from neuroplast.quant import QuantSpec, quantize, quantize_multiplier, requantize

__all__ = [
    "HDQuantParams",
    "QuantizedHD",
    "hd_fake_quant",
    "train_hd_qat",
    "calibrate_output",
    "stack_quantized",
    "int_logits",
    "int_evidence",
]


@dataclass(frozen=True)
class HDQuantParams:
    """Bit widths: ``weight_bits`` (2..8, symmetric narrow range), one weight scale per
    class (``per_class``) or per tensor, ``out_bits`` for the per-position logits."""

    weight_bits: int = 8
    per_class: bool = True
    out_bits: int = 8

    def __post_init__(self) -> None:
        if not 2 <= self.weight_bits <= 8 or not 2 <= self.out_bits <= 8:
            raise DataError("HD quantization: weight_bits and out_bits must be in 2..8")


@dataclass(frozen=True)
class QuantizedHD:
    """An integer HD layer: ``kernel`` holds the dequantized values ``s_w * K_q`` and
    ``s_w * b_q`` (exactly representable, so the codes are recovered exactly)."""

    kernel: HDKernel
    weight_q: QuantSpec
    out_q: QuantSpec

    def codes(self) -> tuple[np.ndarray, np.ndarray]:
        """``(K_q int8 (C, 2, K_T, K, K), b_q int64 (C,))``."""
        bias_q = QuantSpec(bits=32, scale=tuple(float(v) for v in self.w_scale), axis=0)
        return quantize(self.kernel.weight, self.weight_q), quantize(
            self.kernel.bias, bias_q
        ).astype(np.int64)

    @property
    def w_scale(self) -> np.ndarray:
        c = self.kernel.weight.shape[0]
        return np.broadcast_to(np.asarray(self.weight_q.scale, np.float32).ravel(), (c,))

    def requant(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-class fixed-point multiplier ``(qm, shift)`` of ``M_c = s_w[c] / s_out``."""
        s_out = np.float64(np.float32(self.out_q.scale))
        return quantize_multiplier(self.w_scale.astype(np.float64) / s_out)

    def graph(self, sensor_size: tuple[int, int], pooled: bool = True):
        """The runtime graph (:func:`~neuroplast.apps.motion.runtime_node.hd_graph`)."""
        from neuroplast.apps.motion.runtime_node import hd_graph

        k = self.kernel
        return hd_graph(k.weight, k.bias, sensor_size, self.weight_q, self.out_q, pooled)

    def save(self, path) -> None:
        from neuroplast.arrayfile import save_npz

        save_npz(
            path,
            {
                "weight": self.kernel.weight,
                "bias": self.kernel.bias,
                "weight_scale": np.asarray(self.w_scale, np.float32),
                "weight_bits": self.weight_q.bits,
                "out_scale": np.float32(self.out_q.scale),
                "out_bits": self.out_q.bits,
            },
        )

    @staticmethod
    def load(path) -> QuantizedHD:
        k = HDKernel.load(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                ws, wb = np.asarray(z["weight_scale"], np.float32), int(z["weight_bits"])
                os_, ob = float(z["out_scale"]), int(z["out_bits"])
        except KeyError as e:
            raise DataError(f"{path} is not a quantized HD kernel (no {e})") from None
        return QuantizedHD(k, _weight_spec(ws, wb), QuantSpec(bits=ob, scale=os_))


def _weight_spec(scale: np.ndarray, bits: int) -> QuantSpec:
    s = np.asarray(scale, np.float32).ravel()
    per = s.size > 1
    return QuantSpec(
        bits=bits,
        scale=tuple(float(v) for v in s) if per else float(s[0]),
        axis=0 if per else None,
        narrow=True,
    )


def _weight_quantizer(kernel: HDKernel, params: HDQuantParams):
    """A Brevitas ``QuantConv3d`` whose weight quantizer we apply to the HD weight."""
    import brevitas.nn as qnn
    from brevitas.quant import Int8WeightPerChannelFloat, Int8WeightPerTensorFloat

    c, _, kt, ky, kx = kernel.weight.shape
    wq = Int8WeightPerChannelFloat if params.per_class else Int8WeightPerTensorFloat
    return qnn.QuantConv3d(
        2, c, (kt, ky, kx), bias=False, weight_quant=wq, weight_bit_width=params.weight_bits
    )


def hd_fake_quant(kernel: HDKernel, params: HDQuantParams = HDQuantParams()) -> Callable:
    """``(weight, bias) -> (fake-quantized weight, bias on the s_w grid)`` for
    :func:`train_hd`'s ``fake_quant``: Brevitas' weight quantizer (straight-through
    rounding) and ``b -> s_w round(b / s_w)`` with a straight-through estimator."""
    import torch

    conv = _weight_quantizer(kernel, params)

    def fq(w, b):  # noqa: ANN001, ANN202 (torch tensors)
        qw = conv.weight_quant(w)
        s = qw.scale.reshape(-1)
        s = s.expand(w.shape[0]) if s.numel() == 1 else s
        bq = b / s
        bq = bq + (torch.round(bq) - bq).detach()
        return qw.value, bq * s

    fq.conv = conv  # the quantizer (its narrow range and bit width are read at export)
    return fq


def _export(kernel: HDKernel, params: HDQuantParams, out_q: QuantSpec) -> QuantizedHD:
    """Integer codes of a float kernel under the Brevitas weight quantizer."""
    import torch

    fq = hd_fake_quant(kernel, params)
    with torch.no_grad():
        qw = fq.conv.weight_quant(torch.from_numpy(kernel.weight))
    if not fq.conv.weight_quant.is_narrow_range:
        raise DataError("the HD weight quantizer must be narrow range (symmetric codes)")
    s = qw.scale.detach().reshape(-1).double().numpy().astype(np.float32)
    spec = _weight_spec(s, int(qw.bit_width))
    codes = qw.int().detach().numpy().astype(np.int64)
    c = kernel.weight.shape[0]
    sw = np.broadcast_to(s, (c,)).astype(np.float32)
    w = (codes.astype(np.float32) * sw[:, None, None, None, None]).astype(np.float32)
    bq = np.clip(np.round(kernel.bias.astype(np.float64) / sw), -(2**31), 2**31 - 1)
    b = (bq * sw).astype(np.float32)
    return QuantizedHD(HDKernel(w, b), spec, out_q)


def calibrate_output(
    kernel: HDKernel, voxels: np.ndarray, params: HDQuantParams = HDQuantParams()
) -> QuantSpec:
    """Output spec from a Brevitas ``Int8ActPerTensorFloat`` quantizer calibrated on the
    dense per-position logits of ``voxels`` (N, 2, T, H, W) (signed, zero point 0)."""
    import brevitas.nn as qnn
    import torch
    from brevitas.graph.calibrate import calibration_mode
    from brevitas.quant import Int8ActPerTensorFloat

    from neuroplast.apps.motion.model import hd_logits_torch

    act = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, bit_width=params.out_bits)
    w, b = torch.from_numpy(kernel.weight), torch.from_numpy(kernel.bias)
    with torch.no_grad(), calibration_mode(act):
        for v in voxels:
            act(hd_logits_torch(torch.from_numpy(v[None].astype(np.float32)), w, b))
    act.eval()
    s = float(act.act_quant.scale().detach().reshape(-1)[0])
    return QuantSpec(bits=params.out_bits, scale=float(np.float32(s)), zero_point=0)


def train_hd_qat(
    voxels: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    kernel: HDKernel,
    calib: np.ndarray,
    params: HDQuantParams = HDQuantParams(),
    train: TrainParams | None = None,
    prune_mask: np.ndarray | None = None,
    mask_basis: str = "split",
    progress: Callable | None = None,
) -> tuple[QuantizedHD, list[float]]:
    """Quantization-aware fine-tuning of ``kernel`` (``train=None``: post-training
    quantization only), then output calibration on ``calib`` rasters; returns the
    integer layer and the per-epoch losses. A ``prune_mask`` keeps pruned weights at
    zero (read in ``mask_basis``), so a pruned kernel stays pruned."""
    losses: list[float] = []
    if train is not None and train.epochs > 0:
        c, _, kt, k, _ = kernel.weight.shape
        kernel, losses = train_hd(
            list(voxels),
            list(labels),
            HDParams(n_classes=c, n_delays=kt, kernel=k),
            train,
            progress=progress,
            init=kernel,
            prune_mask=prune_mask,
            mask_basis=mask_basis,
            fake_quant=hd_fake_quant(kernel, params),
        )
    q = _export(kernel, params, QuantSpec(bits=params.out_bits, scale=1.0))
    return QuantizedHD(q.kernel, q.weight_q, calibrate_output(q.kernel, calib, params)), losses


def stack_quantized(models: Sequence[QuantizedHD], calib: np.ndarray) -> QuantizedHD:
    """Several integer layers (e.g. a long- and a short-window family, each trained and
    quantized as its own 36-class layer) as the channel groups of one layer: the
    per-class weight scales are kept, the shared output scale is calibrated anew on
    ``calib`` (:func:`calibrate_output`)."""
    from neuroplast.apps.motion.readout import stack_kernels

    bits = {m.weight_q.bits for m in models}
    if len(bits) != 1:
        raise DataError(f"cannot stack layers with weight bit widths {sorted(bits)}")
    kernel = stack_kernels([m.kernel for m in models])
    spec = _weight_spec(np.concatenate([m.w_scale for m in models]), bits.pop())
    out_bits = models[0].out_q.bits
    return QuantizedHD(
        kernel, spec, calibrate_output(kernel, calib, HDQuantParams(out_bits=out_bits))
    )


def _requant_codes(q: QuantizedHD, acc: np.ndarray, axis: int, cls: slice = slice(None)):
    """int accumulators with classes ``cls`` on ``axis`` -> output codes (int64)."""
    qm, shift = q.requant()
    shape = [1] * acc.ndim
    shape[axis] = -1
    lo, hi = q.out_q.range
    zp = int(np.ravel(q.out_q.zero_point)[0])
    y = requantize(acc, qm[cls].reshape(shape), shift[cls].reshape(shape)) + zp
    return np.clip(y, lo, hi)


def int_logits(q: QuantizedHD, voxels: np.ndarray) -> np.ndarray:
    """Integer output codes ``(N, C, T, Ho, Wo)`` by direct conv3d on the codes (float64,
    exact): the reference for small inputs."""
    import torch
    import torch.nn.functional as F

    wq, bq = q.codes()
    kt = wq.shape[2]
    x = torch.from_numpy(np.asarray(voxels, np.float64))
    x = F.pad(x, (0, 0, 0, 0, kt - 1, 0))
    w = torch.from_numpy(wq.astype(np.float64))
    b0 = F.conv3d(x, w)
    b1 = F.conv3d(x[:, [1, 0]], w)
    acc = np.rint(torch.maximum(b0, b1).numpy()).astype(np.int64) + bq[None, :, None, None, None]
    return _requant_codes(q, acc, 1)


def int_evidence(q: QuantizedHD, voxels: np.ndarray) -> np.ndarray:
    """Pooled integer evidence ``sum_{y,x} z_q`` ``(N, T, C)`` (int64) of rasters
    ``(N, 2, T, H, W)``, one class at a time by FFT in float64.

    ``max(B_0, B_1) = (S + |D|) / 2`` with ``S = W_s * A_s`` and ``D = W_d * A_d`` on
    the integer codes; each correlation is rounded to the nearest integer, and a
    DataError is raised if any value lies more than 0.25 from an integer (the FFT would
    then not be exact)."""
    wq, bq = q.codes()
    wq = wq.astype(np.int64)  # int8 sums overflow
    c, _, kt, ky, kx = wq.shape
    n, _, n_t, h, w = np.shape(voxels)
    ho, wo = h - ky + 1, w - kx + 1
    ws = (wq[:, 0] + wq[:, 1]).astype(np.float64)  # W_s, index 0 = OFF
    wd = (wq[:, 0] - wq[:, 1]).astype(np.float64)
    tp = n_t + kt - 1
    shape, ax = (tp, h, w), (0, 1, 2)
    out = np.zeros((n, n_t, c), np.int64)
    spectra = []  # (S, D) input spectra of every movie: each kernel spectrum is made once
    for i in range(n):
        a = np.asarray(voxels[i], np.float64)
        a = np.concatenate([np.zeros((2, kt - 1, h, w)), a], axis=1)
        spectra.append((np.fft.rfftn(a[0] + a[1], shape, ax), np.fft.rfftn(a[0] - a[1], shape, ax)))
    for cc in range(c):
        fk = [np.conj(np.fft.rfftn(k[cc], shape, ax)) for k in (ws, wd)]  # (time index, dy, dx)
        for i, fx in enumerate(spectra):
            res = []
            for f, g in zip(fx, fk):
                r = np.fft.irfftn(f * g, shape, ax)[:n_t, :ho, :wo]
                ri = np.rint(r)
                if np.abs(r - ri).max() > 0.25:
                    raise DataError("FFT correlation not exact enough for integer evidence")
                res.append(ri.astype(np.int64))
            acc = (res[0] + np.abs(res[1])) // 2 + bq[cc]
            z = _requant_codes(q, acc[None], 0, slice(cc, cc + 1))
            out[i, :, cc] = z[0].sum(axis=(1, 2))
    return out
