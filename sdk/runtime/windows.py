"""Sliding-window helpers (im2col) for convolution and pooling in numpy.

Convolution is one GEMM (or one grouped ``einsum``) over a strided window view, so
the float and integer paths share the same loop structure. The integer path runs
the GEMM in floating point on integer values, which is exact while every partial
sum stays below the mantissa limit: ``exact_float_dtype`` picks float32 when
``max|x| * max|w| * terms < 2^24`` and float64 otherwise (exact below 2^53).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

__all__ = ["conv2d", "conv1d", "pool2d_windows", "pad2d", "exact_float_dtype"]


def exact_float_dtype(max_x: int, max_w: int, terms: int) -> type:
    """Smallest float dtype that sums ``terms`` integer products exactly."""
    return np.float32 if max_x * max_w * terms < (1 << 24) else np.float64


def pad2d(x: np.ndarray, padding: tuple[int, int], value: float = 0.0) -> np.ndarray:
    """Pad the last two axes of (B, C, H, W) with ``value``."""
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    b, c, h, w = x.shape
    out = np.full((b, c, h + 2 * ph, w + 2 * pw), value, dtype=x.dtype)
    out[:, :, ph : ph + h, pw : pw + w] = x
    return out


def _windows(
    xp: np.ndarray, kh: int, kw: int, stride: tuple[int, int], dilation: tuple[int, int]
) -> np.ndarray:
    """Strided view (B, C, Ho, Wo, kh, kw) of a padded (B, C, H, W) array; no copy."""
    b, c, h, w = xp.shape
    sh, sw = stride
    dh, dw = dilation
    ho = (h - dh * (kh - 1) - 1) // sh + 1
    wo = (w - dw * (kw - 1) - 1) // sw + 1
    s = xp.strides
    return as_strided(
        xp,
        shape=(b, c, ho, wo, kh, kw),
        strides=(s[0], s[1], s[2] * sh, s[3] * sw, s[2] * dh, s[3] * dw),
        writeable=False,
    )


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

    Computed in ``w``'s dtype (float32 for float mode; the exact dtype for integers).
    """
    b = x.shape[0]
    o, cg, kh, kw = w.shape
    xp = np.ascontiguousarray(pad2d(x, padding, pad_value), dtype=w.dtype)
    win = _windows(xp, kh, kw, stride, dilation)  # (B, C, Ho, Wo, kh, kw)
    ho, wo = win.shape[2], win.shape[3]
    if groups == 1:
        cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(b * ho * wo, cg * kh * kw)
        y = cols @ w.reshape(o, -1).T
        return y.reshape(b, ho, wo, o).transpose(0, 3, 1, 2)
    og = o // groups
    wg = win.reshape(b, groups, cg, ho, wo, kh, kw)
    ww = w.reshape(groups, og, cg, kh, kw)
    y = np.einsum("bgchwij,gocij->bgohw", wg, ww, optimize=True)
    return y.reshape(b, o, ho, wo)


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
    xp = np.ascontiguousarray(pad2d(x, padding, pad_value))
    return _windows(xp, kernel[0], kernel[1], stride, (1, 1))
