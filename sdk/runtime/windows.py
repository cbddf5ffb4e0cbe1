"""Sliding-window helpers (im2col) for convolution and pooling in numpy.

Convolution is one GEMM over an im2col view (``numpy.lib.stride_tricks``), so the
float and integer paths share the same loop structure. The integer path runs the
GEMM in float64, which is exact while ``|acc| < 2^53`` (int8 x int8 sums over fewer
than 2^38 terms).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["conv2d", "conv1d", "pool2d_windows", "pad2d"]


def pad2d(x: np.ndarray, padding: tuple[int, int], value: float = 0.0) -> np.ndarray:
    """Pad the last two axes of (B, C, H, W)."""
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


def conv2d(
    x: np.ndarray,
    w: np.ndarray,
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    groups: int,
    pad_value: float = 0.0,
) -> np.ndarray:
    """Cross-correlation of (B, C, H, W) with (O, C/g, kh, kw) -> (B, O, Ho, Wo).

    Computed in ``w``'s dtype (float32 for float mode, float64 for exact integer mode).
    """
    b, c, _, _ = x.shape
    o, cg, kh, kw = w.shape
    xp = pad2d(x, padding, pad_value)
    dh, dw = dilation
    # windows: (B, C, Ho', Wo', kh_eff, kw_eff) then subsample for stride/dilation
    win = sliding_window_view(xp, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), axis=(2, 3))
    win = win[:, :, :: stride[0], :: stride[1], ::dh, ::dw]  # (B, C, Ho, Wo, kh, kw)
    ho, wo = win.shape[2], win.shape[3]
    og = o // groups
    out = np.empty((b, o, ho, wo), dtype=w.dtype)
    for g in range(groups):
        wg = w[g * og : (g + 1) * og].reshape(og, cg * kh * kw)
        xg = win[:, g * cg : (g + 1) * cg]  # (B, cg, Ho, Wo, kh, kw)
        cols = xg.transpose(0, 2, 3, 1, 4, 5).reshape(b * ho * wo, cg * kh * kw).astype(w.dtype)
        out[:, g * og : (g + 1) * og] = (cols @ wg.T).reshape(b, ho, wo, og).transpose(0, 3, 1, 2)
    return out


def conv1d(
    x: np.ndarray,
    w: np.ndarray,
    stride: int,
    padding: int,
    dilation: int,
    groups: int,
    pad_value: float = 0.0,
) -> np.ndarray:
    """(B, C, L) * (O, C/g, k) -> (B, O, Lo), via :func:`conv2d` with H = 1."""
    y = conv2d(
        x[:, :, None, :],
        w[:, :, None, :],
        (1, stride),
        (0, padding),
        (1, dilation),
        groups,
        pad_value,
    )
    return y[:, :, 0, :]


def pool2d_windows(
    x: np.ndarray,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    pad_value: float,
) -> np.ndarray:
    """(B, C, H, W) -> windows (B, C, Ho, Wo, kh, kw) with padding filled by ``pad_value``."""
    xp = pad2d(x, padding, pad_value)
    win = sliding_window_view(xp, kernel, axis=(2, 3))
    return win[:, :, :: stride[0], :: stride[1]]
