"""Image preprocessing and spike encoding for place recognition (numpy only; runs on device).

The pipeline follows VPRSNN (`tools/data_utils.py`): resize to ``size`` (default 28x28),
convert to grey, patch-normalise each pixel over its ``patch x patch`` neighbourhood,

    z = clip((x - mu_patch) / sigma_patch, -1, 1),    out = (1 + z) / 2   in [0, 1],

then encode as spikes. The Poisson encoder gives each input neuron a rate
``out * max_rate_hz`` (VPRSNN: pixel/4 Hz for pixels in 0..255, i.e. 63.75 Hz max) and draws a
Bernoulli spike per time step ``dt_ms``. The single-spike (latency) encoder fires every
input exactly once, earlier for brighter pixels (VPRTempo-style temporal code).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neuroplast.errors import DataError

__all__ = [
    "PreprocessParams",
    "to_gray",
    "resize",
    "patch_normalize",
    "preprocess",
    "preprocess_batch",
    "poisson_encode",
    "latency_encode",
]


@dataclass(frozen=True)
class PreprocessParams:
    """Preprocessing settings.

    size: (height, width) after resizing, pixels. patch: side of the patch-normalisation
    window, pixels (odd). VPRSNN defaults: 28x28, patch 7.
    """

    size: tuple[int, int] = (28, 28)
    patch: int = 7

    def __post_init__(self) -> None:
        if len(self.size) != 2 or min(self.size) < 1:
            raise DataError(f"PreprocessParams.size must be (height, width) >= 1, got {self.size}")
        if self.patch < 1 or self.patch % 2 == 0:
            raise DataError(f"PreprocessParams.patch must be an odd integer >= 1, got {self.patch}")

    @property
    def n_inputs(self) -> int:
        return int(self.size[0] * self.size[1])


def _check_image(img: np.ndarray, what: str = "image") -> np.ndarray:
    a = np.asarray(img)
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (1, 3, 4)):
        raise DataError(f"{what} must be HxW or HxWxC (C in 1,3,4), got shape {a.shape}")
    if a.size == 0:
        raise DataError(f"{what} is empty (shape {a.shape})")
    if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise DataError(f"{what} has unsupported dtype {a.dtype}")
    if np.issubdtype(a.dtype, np.floating) and not np.all(np.isfinite(a)):
        raise DataError(f"{what} contains NaN or Inf")
    return a


def to_gray(img: np.ndarray) -> np.ndarray:
    """Grey level in [0, 1] (float32): ITU-R 601 luma 0.299 R + 0.587 G + 0.114 B.

    uint8 input is scaled by 1/255; float input is taken as already in [0, 1].
    """
    a = _check_image(img)
    x = a.astype(np.float32)
    if np.issubdtype(a.dtype, np.integer):
        x = x / np.float32(np.iinfo(a.dtype).max if a.dtype != np.uint8 else 255.0)
    if x.ndim == 3:
        if x.shape[2] == 1:
            x = x[:, :, 0]
        else:
            x = x[:, :, 0] * 0.299 + x[:, :, 1] * 0.587 + x[:, :, 2] * 0.114
    return x.astype(np.float32)


def resize(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-average resize of a 2-D float image to ``size`` = (height, width).

    Each output pixel is the mean of the input area it covers (exact box filter with
    fractional overlaps), which is what cv2.INTER_AREA does for downscaling.
    """
    a = np.asarray(img, dtype=np.float64)
    if a.ndim != 2:
        raise DataError(f"resize expects a 2-D grey image, got shape {a.shape}")
    h, w = size

    def weights(n_in: int, n_out: int) -> np.ndarray:
        # Row o covers input interval [o*n_in/n_out, (o+1)*n_in/n_out).
        edges = np.arange(n_out + 1) * (n_in / n_out)
        lo, hi = edges[:-1, None], edges[1:, None]
        pix = np.arange(n_in)[None, :]
        overlap = np.clip(np.minimum(hi, pix + 1) - np.maximum(lo, pix), 0.0, None)
        return overlap / overlap.sum(axis=1, keepdims=True)

    out = weights(a.shape[0], h) @ a @ weights(a.shape[1], w).T
    return out.astype(np.float32)


def patch_normalize(img: np.ndarray, patch: int = 7) -> np.ndarray:
    """Sliding-window patch normalisation, VPRSNN ``patch_normalise_pad``.

    For each pixel: z = (x - mean) / std over the ``patch x patch`` window centred on it
    (windows are cut at the border, as with NaN padding), z = 0 where std == 0, then clipped
    to [-1, 1] and mapped to [0, 1] as (1 + z) / 2.
    """
    a = np.asarray(img, dtype=np.float64)
    if a.ndim != 2:
        raise DataError(f"patch_normalize expects a 2-D grey image, got shape {a.shape}")
    r = patch // 2

    def box_sum(x: np.ndarray) -> np.ndarray:
        # Integral image: window sums with the window cut at the border.
        c = np.pad(x, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
        hh, ww = x.shape
        i0 = np.clip(np.arange(hh) - r, 0, hh)
        i1 = np.clip(np.arange(hh) + r + 1, 0, hh)
        j0 = np.clip(np.arange(ww) - r, 0, ww)
        j1 = np.clip(np.arange(ww) + r + 1, 0, ww)
        return c[i1][:, j1] - c[i0][:, j1] - c[i1][:, j0] + c[i0][:, j0]

    n = box_sum(np.ones_like(a))
    mu = box_sum(a) / n
    var = np.maximum(box_sum(a * a) / n - mu * mu, 0.0)
    sd = np.sqrt(var)
    # Tiny variances are float noise from the cumulative sums: treat as flat.
    flat = sd < 1e-6
    z = np.where(flat, 0.0, (a - mu) / np.where(flat, 1.0, sd))
    return ((1.0 + np.clip(z, -1.0, 1.0)) / 2.0).astype(np.float32)


def preprocess(img: np.ndarray, params: PreprocessParams = PreprocessParams()) -> np.ndarray:
    """Image -> flat float32 vector in [0, 1] of length ``params.n_inputs``.

    Order as VPRSNN: resize, grey, patch-normalise (we convert to grey first, which commutes
    with the linear area resize).
    """
    g = to_gray(img)
    if g.shape[0] < params.size[0] or g.shape[1] < params.size[1]:
        # Upscaling is allowed but flagged by the shape being tiny, e.g. a 1x1 image.
        if g.shape[0] < 2 or g.shape[1] < 2:
            raise DataError(f"image of shape {g.shape} is too small to resize to {params.size}")
    return patch_normalize(resize(g, params.size), params.patch).reshape(-1)


def preprocess_batch(
    images: np.ndarray | list, params: PreprocessParams = PreprocessParams()
) -> np.ndarray:
    """Preprocess a stack of images -> (N, n_inputs) float32."""
    if len(images) == 0:
        raise DataError("no images to preprocess")
    return np.stack([preprocess(im, params) for im in images]).astype(np.float32)


def poisson_encode(
    x: np.ndarray,
    steps: int,
    rng: np.random.Generator,
    max_rate_hz: float = 63.75,
    dt_ms: float = 1.0,
) -> np.ndarray:
    """Bernoulli approximation of Poisson spike trains.

    x: (..., D) intensities in [0, 1]. Returns uint8 spikes (steps, ..., D) with
    P(spike in a step) = x * max_rate_hz * dt_ms / 1000 (must be <= 1).
    """
    xa = np.asarray(x, dtype=np.float32)
    if np.any(xa < 0) or np.any(xa > 1) or not np.all(np.isfinite(xa)):
        raise DataError("poisson_encode expects intensities in [0, 1]")
    p = xa * np.float32(max_rate_hz * dt_ms / 1000.0)
    if np.any(p > 1.0):
        raise DataError(f"max_rate_hz*dt_ms/1000 = {max_rate_hz * dt_ms / 1000} exceeds 1")
    return (rng.random((steps, *xa.shape), dtype=np.float32) < p).astype(np.uint8)


def latency_encode(x: np.ndarray, steps: int) -> np.ndarray:
    """Single-spike temporal code: input i fires once at step round((1 - x_i) * (steps - 1)).

    x: (..., D) in [0, 1]. Returns uint8 spikes (steps, ..., D), exactly one spike per input.
    """
    xa = np.asarray(x, dtype=np.float32)
    if np.any(xa < 0) or np.any(xa > 1) or not np.all(np.isfinite(xa)):
        raise DataError("latency_encode expects intensities in [0, 1]")
    if steps < 1:
        raise DataError(f"steps must be >= 1, got {steps}")
    t = np.rint((1.0 - xa) * (steps - 1)).astype(np.int64)
    out = np.zeros((steps, *xa.shape), dtype=np.uint8)
    np.put_along_axis(out, t[None, ...], 1, axis=0)
    return out
