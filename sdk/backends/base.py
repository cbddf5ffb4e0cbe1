"""The backend protocol and the suffix-based loader."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from neuroplast.errors import DataError, GraphError

__all__ = ["Backend", "load_backend", "available_backends", "to_native", "from_native"]


class Backend(Protocol):
    """A loaded model in a third-party runtime.

    ``run(x)`` takes a batch ``(B, *input_shape)`` and returns ``(B, *output_shape)``.
    """

    name: str
    input_shape: tuple[int, ...]

    def run(self, x: np.ndarray) -> np.ndarray: ...


def available_backends() -> dict[str, bool]:
    """Which optional runtimes are importable here."""
    return {
        "onnxruntime": importlib.util.find_spec("onnxruntime") is not None,
        "litert": importlib.util.find_spec("ai_edge_litert") is not None
        or importlib.util.find_spec("tflite_runtime") is not None,
    }


def load_backend(path: str | os.PathLike, **kw: Any) -> Backend:
    """Open ``.onnx`` with onnxruntime, ``.tflite`` with LiteRT."""
    p = Path(path)
    if p.suffix == ".onnx":
        from neuroplast.backends.onnxrt import OnnxBackend

        return OnnxBackend(p, **kw)
    if p.suffix == ".tflite":
        from neuroplast.backends.litert import LiteRTBackend

        return LiteRTBackend(p, **kw)
    raise GraphError(f"{str(p)!r}: no backend for suffix {p.suffix!r} (use .onnx or .tflite)")


def to_native(x: np.ndarray, ndim_native: int) -> np.ndarray:
    """neuroplast layout -> channels-last TFLite layout for a batch ``x``:
    ``(B, C, H, W) -> (B, H, W, C)``, ``(B, C, L) -> (B, 1, L, C)`` (when the model
    input has 4 dims), else unchanged."""
    if x.ndim == 4:
        return np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    if x.ndim == 3 and ndim_native == 4:
        return np.ascontiguousarray(x.transpose(0, 2, 1)[:, None])
    return x


def from_native(y: np.ndarray) -> np.ndarray:
    """Channels-last output ``(B, H, W, C)`` -> ``(B, C, H, W)``."""
    return y.transpose(0, 3, 1, 2) if y.ndim == 4 else y


def check_batch(x: Any, name: str) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise DataError(f"{name}: input dtype {x.dtype} is not numeric")
    if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
        raise DataError(f"{name}: input contains NaN or Inf")
    return x
