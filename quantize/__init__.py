"""neuroplast toolchain: Brevitas QAT, lowering to the Graph IR, and exporters.

Every submodule imports only numpy and neuroplast at import time (torch, brevitas,
onnx and LiteRT load inside the functions that need them), so ``import
neuroplast.quantize`` is cheap and each submodule is importable on its own.

Public API: the names in ``__all__``. Everything else is private.
"""

from __future__ import annotations

import warnings

from neuroplast.export.onnx import export_onnx_graph
from neuroplast.export.tflite import export_tflite

# Functions share their submodule's name (lower, calibrate, train, export): importing
# them here binds the package attribute to the function once, for good.
from neuroplast.quantize.calibrate import calibrate
from neuroplast.quantize.export import EXPORTERS, export
from neuroplast.quantize.lower import lower
from neuroplast.quantize.onnx_export import export_onnx
from neuroplast.quantize.qat import QATConfig, prepare
from neuroplast.quantize.recipes import RECIPES, get_recipe, load_model, save_model
from neuroplast.quantize.train import TrainConfig, evaluate, train


def quiet_third_party() -> None:
    """Silence third-party warnings that are noise here: Brevitas warns at import that an
    optional CUDA kernel package (fast_hadamard_transform) is missing, which no neuroplast
    path uses. Applied at import (brevitas loads lazily, inside the functions above, so
    the filter is in place first); call again inside ``warnings.catch_warnings``."""
    warnings.filterwarnings("ignore", message="fast_hadamard_transform package not found")


quiet_third_party()

__all__ = [
    "quiet_third_party",
    "prepare",
    "QATConfig",
    "calibrate",
    "train",
    "TrainConfig",
    "evaluate",
    "lower",
    "export",
    "EXPORTERS",
    "export_onnx",
    "export_onnx_graph",
    "export_tflite",
    "get_recipe",
    "RECIPES",
    "save_model",
    "load_model",
]
