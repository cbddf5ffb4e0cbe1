"""Shared, cached QAT models for the toolchain tests (calibrated on random data so
every activation scale is irregular: many exact rounding ties would hide bugs)."""

from __future__ import annotations

import functools
import warnings

import numpy as np

warnings.filterwarnings("ignore", message=".*fast_hadamard.*")
warnings.filterwarnings("ignore", category=UserWarning, module="brevitas")
warnings.filterwarnings("ignore", category=DeprecationWarning)

SHAPES = {"mlp": (64,), "cnn": (1, 8, 8), "audio1d": (8, 8)}


@functools.cache
def calibrated(name: str, weight_bits: int = 8, act_bits: int = 8):
    """A recipe's QAT model with random weights, calibrated on 256 random inputs."""
    import torch

    from neuroplast.quantize import calibrate
    from neuroplast.quantize.recipes import build

    torch.set_num_threads(1)
    torch.manual_seed(1234 + weight_bits)
    model, recipe = build(name, weight_bits, act_bits)
    g = torch.Generator().manual_seed(7)
    calib = [torch.rand((64,) + recipe.input_shape, generator=g) * 2 - 0.5 for _ in range(4)]
    calibrate(model, calib)
    model.eval()
    return model, recipe


def random_inputs(shape: tuple[int, ...], n: int = 100, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random((n,) + shape, dtype=np.float32) * 2 - 0.5).astype(np.float32)


def to_nhwc(x: np.ndarray) -> np.ndarray:
    if x.ndim == 4:
        return x.transpose(0, 2, 3, 1)
    if x.ndim == 3:
        return x.transpose(0, 2, 1)[:, None]
    return x
