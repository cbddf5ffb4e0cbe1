"""Preprocessing and encoders against brute-force / analytic references."""

import numpy as np
import pytest

from neuroplast.apps.place.preprocess import (
    PreprocessParams,
    ViewParams,
    graded_spikes,
    jitter_views,
    latency_encode,
    patch_normalize,
    preprocess,
    preprocess_batch,
    resize,
    to_gray,
)
from neuroplast.errors import DataError


def _vprsnn_patch_normalise(img, patch):
    """Direct transcription of VPRSNN's NaN-padded sliding-window normalisation."""
    r = (patch - 1) // 2
    pad = np.pad(img.astype(np.float64), r, constant_values=np.nan)
    out = np.zeros(img.shape)
    for i in range(img.shape[0]):
        for j in range(img.shape[1]):
            w = pad[i : i + patch, j : j + patch]
            mu, sd = np.nanmean(w), np.nanstd(w)
            out[i, j] = 0.0 if sd == 0 else (img[i, j] - mu) / sd
    return (1 + np.clip(out, -1, 1)) / 2


def test_patch_normalize_matches_vprsnn_loop():
    rng = np.random.default_rng(0)
    img = rng.random((12, 15))
    img[:4, :4] = 0.3  # a flat patch (std 0 inside) must give z = 0
    ref = _vprsnn_patch_normalise(img, 5)
    np.testing.assert_allclose(patch_normalize(img, 5), ref, atol=1e-5)


def test_resize_is_block_mean_for_integer_factors():
    rng = np.random.default_rng(1)
    img = rng.random((56, 84))
    want = img.reshape(28, 2, 28, 3).mean(axis=(1, 3))
    np.testing.assert_allclose(resize(img, (28, 28)), want, atol=1e-6)


def test_gray_uses_bt601_luma():
    px = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255]]], np.uint8)
    np.testing.assert_allclose(to_gray(px)[0], [0.299, 0.587, 0.114], atol=1e-6)


def test_preprocess_output_range_and_size():
    img = np.random.default_rng(2).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    x = preprocess(img, PreprocessParams())
    assert x.shape == (784,) and x.min() >= 0 and x.max() <= 1


def test_batch_preprocessing_equals_per_image():
    rng = np.random.default_rng(5)
    imgs = rng.integers(0, 256, (6, 30, 41, 3), dtype=np.uint8)
    want = np.stack([preprocess(im) for im in imgs])
    np.testing.assert_allclose(preprocess_batch(imgs), want, atol=1e-6)
    grey = rng.random((3, 30, 41)).astype(np.float32)
    np.testing.assert_allclose(
        preprocess_batch(grey), np.stack([preprocess(im) for im in grey]), atol=1e-6
    )


def _edge_shift(img, dy, dx):
    """Independent reference: pad by replicating the border, then cut the shifted window."""
    r = 8
    pad = np.pad(img, ((0, 0), (r, r), (r, r)), mode="edge")
    h, w = img.shape[1:]
    return pad[:, r - dy : r - dy + h, r - dx : r - dx + w]


def test_jitter_views_are_shifted_images():
    rng = np.random.default_rng(6)
    img = rng.random((2, 40, 60)).astype(np.float32)
    p = ViewParams(shift=0.05, steps=3)
    offs = p.offsets(40, 60)
    assert offs[0] == (0, 0) and set(offs) == {(a, b) for a in (-2, 0, 2) for b in (-3, 0, 3)}
    v = jitter_views(img, p)
    for k, (dy, dx) in enumerate(offs):
        np.testing.assert_allclose(v[k], preprocess_batch(_edge_shift(img, dy, dx)), atol=1e-6)
    with pytest.raises(DataError):
        ViewParams(steps=2)


def test_latency_one_spike_brighter_first():
    x = np.array([1.0, 0.5, 0.0], np.float32)
    s = latency_encode(x, 11)
    assert s.sum(axis=0).tolist() == [1, 1, 1]
    assert np.argmax(s, axis=0).tolist() == [0, 5, 10]


@pytest.mark.parametrize(
    "bad",
    [np.full((4, 4), np.nan), np.zeros((0, 3)), np.zeros((3, 3, 2)), np.array([["a"]])],
)
def test_bad_images_raise_data_error(bad):
    with pytest.raises(DataError):
        preprocess(bad)


def test_bad_encoder_input_raises():
    with pytest.raises(DataError):
        latency_encode(np.array([1.5]), 3)
    with pytest.raises(DataError):
        graded_spikes(np.array([0.5]), 0)
