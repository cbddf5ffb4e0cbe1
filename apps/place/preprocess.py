"""Image preprocessing and spike encoding for place recognition (numpy only; runs on device).

The pipeline follows VPRSNN (`tools/data_utils.py`): resize to ``size`` (default 28x28),
convert to grey, patch-normalise each pixel over its ``patch x patch`` neighbourhood,

    z = clip((x - mu_patch) / sigma_patch, -1, 1),    out = (1 + z) / 2   in [0, 1],

then encode as spikes with the single-spike temporal (latency) code of VPRTempo: input i
fires once, at step ``t_i = round((1 - out_i)(T - 1))``, brighter pixels first.
:func:`graded_spikes` is the same code as one graded spike per input. :func:`jitter_views`
makes the shifted views of a reference image that a place's neurons learn from.
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
    "ViewParams",
    "jitter_views",
    "latency_encode",
    "graded_spikes",
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
    return _gray_stack(_check_image(img)[None])[0]


def _scale01(a: np.ndarray) -> np.ndarray:
    x = a.astype(np.float32)
    if np.issubdtype(a.dtype, np.integer):
        x = x / np.float32(np.iinfo(a.dtype).max if a.dtype != np.uint8 else 255.0)
    return x


def _gray_stack(a: np.ndarray) -> np.ndarray:
    """:func:`to_gray` over a stack (n, H, W[, C]) -> (n, H, W) float32."""
    if a.ndim == 3:
        return _scale01(a)
    if a.ndim == 4 and a.shape[-1] == 1:
        return _scale01(a[..., 0])
    if a.ndim == 4 and a.shape[-1] in (3, 4):
        x = _scale01(a)
        return (x[..., 0] * 0.299 + x[..., 1] * 0.587 + x[..., 2] * 0.114).astype(np.float32)
    raise DataError(f"images must be (n, H, W) or (n, H, W, C in 1,3,4), got shape {a.shape}")


def _area_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) box-filter weights: output o covers [o n_in/n_out, (o+1) n_in/n_out)."""
    edges = np.arange(n_out + 1) * (n_in / n_out)
    lo, hi = edges[:-1, None], edges[1:, None]
    pix = np.arange(n_in)[None, :]
    overlap = np.clip(np.minimum(hi, pix + 1) - np.maximum(lo, pix), 0.0, None)
    return overlap / overlap.sum(axis=1, keepdims=True)


def resize(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-average resize of grey images (..., H, W) to ``size`` = (height, width).

    Each output pixel is the mean of the input area it covers (exact box filter with
    fractional overlaps), which is what cv2.INTER_AREA does for downscaling.
    """
    a = np.asarray(img, dtype=np.float64)
    if a.ndim < 2:
        raise DataError(f"resize expects grey images (..., H, W), got shape {a.shape}")
    h, w = size
    rows, cols = _area_weights(a.shape[-2], h), _area_weights(a.shape[-1], w)
    return (rows @ a @ cols.T).astype(np.float32)


def patch_normalize(img: np.ndarray, patch: int = 7) -> np.ndarray:
    """Sliding-window patch normalisation of grey images (..., H, W), VPRSNN
    ``patch_normalise_pad``.

    For each pixel: z = (x - mean) / std over the ``patch x patch`` window centred on it
    (windows are cut at the border, as with NaN padding), z = 0 where std == 0, then clipped
    to [-1, 1] and mapped to [0, 1] as (1 + z) / 2.
    """
    a = np.asarray(img, dtype=np.float64)
    if a.ndim < 2:
        raise DataError(f"patch_normalize expects grey images (..., H, W), got shape {a.shape}")
    r = patch // 2
    hh, ww = a.shape[-2:]
    i0, i1 = np.clip(np.arange(hh) - r, 0, hh), np.clip(np.arange(hh) + r + 1, 0, hh)
    j0, j1 = np.clip(np.arange(ww) - r, 0, ww), np.clip(np.arange(ww) + r + 1, 0, ww)

    def box_sum(x: np.ndarray) -> np.ndarray:
        # Integral image: window sums with the window cut at the border.
        pad = [(0, 0)] * (x.ndim - 2) + [(1, 0), (1, 0)]
        c = np.pad(x, pad).cumsum(-2).cumsum(-1)
        return (
            c[..., i1, :][..., j1]
            - c[..., i0, :][..., j1]
            - c[..., i1, :][..., j0]
            + c[..., i0, :][..., j0]
        )

    n = box_sum(np.ones((hh, ww)))
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
    """Preprocess a stack of images -> (N, n_inputs) float32 (vectorised over a stack of
    one shape; equal to :func:`preprocess` image by image)."""
    if len(images) == 0:
        raise DataError("no images to preprocess")
    if len({np.shape(im) for im in images}) != 1:
        return np.stack([preprocess(im, params) for im in images]).astype(np.float32)
    a = np.asarray(images)
    _check_image(a[0])
    if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        raise DataError("images contain NaN or Inf")
    return _grey_to_input(_gray_stack(a), params)


def _grey_to_input(g: np.ndarray, params: PreprocessParams, chunk: int = 2048) -> np.ndarray:
    if g.shape[-2] < 2 or g.shape[-1] < 2:
        raise DataError(f"image of shape {g.shape[-2:]} is too small to resize to {params.size}")
    out = np.empty((len(g), params.n_inputs), np.float32)
    for a in range(0, len(g), chunk):
        r = patch_normalize(resize(g[a : a + chunk], params.size), params.patch)
        out[a : a + chunk] = r.reshape(len(r), -1)
    return out


@dataclass(frozen=True)
class ViewParams:
    """Jittered views of each reference image (what a camera sees a little off the place).

    Shifts of ``-shift .. +shift`` times the image height and width, ``steps`` values per
    axis (``steps**2`` views per image, the unshifted one included); borders are
    replicated. ``steps = 1`` gives the image itself only.
    """

    shift: float = 0.05
    steps: int = 5

    def __post_init__(self) -> None:
        if not 0 <= self.shift < 0.5 or self.steps < 1 or self.steps % 2 == 0:
            raise DataError(f"ViewParams: need 0 <= shift < 0.5 and an odd steps >= 1, got {self}")

    def offsets(self, height: int, width: int) -> list[tuple[int, int]]:
        """Integer (dy, dx) pixel shifts for images of this size, (0, 0) first (duplicates
        removed)."""
        ys = np.unique(np.rint(np.linspace(-1, 1, self.steps) * self.shift * height))
        xs = np.unique(np.rint(np.linspace(-1, 1, self.steps) * self.shift * width))
        return sorted({(int(dy), int(dx)) for dy in ys for dx in xs}, key=lambda o: o != (0, 0))


def _shift(g: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Shift grey images (n, H, W) by (dy, dx) px, replicating the border."""
    h, w = g.shape[-2:]
    rows = np.clip(np.arange(h) - dy, 0, h - 1)
    cols = np.clip(np.arange(w) - dx, 0, w - 1)
    return g[:, rows][:, :, cols]


def jitter_views(
    images: np.ndarray,
    views: ViewParams = ViewParams(),
    params: PreprocessParams = PreprocessParams(),
) -> np.ndarray:
    """Preprocessed jittered views of images (n, H, W[, C]) -> (n_views, n, n_inputs);
    view 0 is the unshifted image."""
    a = np.asarray(images)
    if a.ndim not in (3, 4) or len(a) == 0:
        raise DataError(f"images must be a non-empty (n, H, W[, C]) stack, got {a.shape}")
    g = _gray_stack(a)
    offs = views.offsets(*g.shape[1:3])
    return np.stack([_grey_to_input(_shift(g, dy, dx), params) for dy, dx in offs])


def _latency_steps(x: np.ndarray, steps: int, what: str) -> np.ndarray:
    xa = np.asarray(x, dtype=np.float32)
    if np.any(xa < 0) or np.any(xa > 1) or not np.all(np.isfinite(xa)):
        raise DataError(f"{what} expects intensities in [0, 1]")
    if not 1 <= steps <= 127:
        raise DataError(f"steps must be in 1..127, got {steps}")
    return np.rint((1.0 - xa) * (steps - 1)).astype(np.int64)


def latency_encode(x: np.ndarray, steps: int) -> np.ndarray:
    """Single-spike temporal code: input i fires once at step t_i = round((1 - x_i)(T - 1)).

    x: (..., D) in [0, 1]. Returns uint8 spikes (steps, ..., D), exactly one spike per input.
    """
    t = _latency_steps(x, steps, "latency_encode")
    out = np.zeros((steps, *t.shape), dtype=np.uint8)
    np.put_along_axis(out, t[None, ...], 1, axis=0)
    return out


def graded_spikes(x: np.ndarray, steps: int) -> np.ndarray:
    """The latency code as one graded spike per input: g_i = T - t_i in {1..T} (int8).

    g_i is how many steps of the window the synapse opened by input i's spike stays open
    (sustained synaptic current), so a non-leaky neuron's potential after the window is
    sum_i w_i g_i: one step with graded spikes gives what T steps of latency spikes give.
    """
    return (steps - _latency_steps(x, steps, "graded_spikes")).astype(np.int8)
