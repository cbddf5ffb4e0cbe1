"""neuroplast toolchain: Brevitas QAT, lowering to the Graph IR, and exporters.

Every submodule imports only numpy and neuroplast at import time (torch, brevitas,
onnx and LiteRT load inside the functions that need them), so ``import
neuroplast.quantize`` is cheap and each submodule is importable on its own.

Public API: the names in ``__all__``. Everything else is private.
"""

from __future__ import annotations

import warnings

# Functions share their submodule's name (lower, calibrate, train, export): importing
# them here binds the package attribute to the function once, for good.
from neuroplast.quantize.calibrate import calibrate
from neuroplast.quantize.export import EXPORTERS, export
from neuroplast.quantize.lower import lower
from neuroplast.quantize.onnx_export import export_onnx
from neuroplast.quantize.onnx_graph import export_onnx_graph
from neuroplast.quantize.qat import QATConfig, prepare
from neuroplast.quantize.recipes import RECIPES, get_recipe, load_model, save_model
from neuroplast.quantize.tflite_export import export_tflite
from neuroplast.quantize.train import TrainConfig, evaluate, train

# Brevitas warns at import that an optional CUDA kernel package (fast_hadamard_transform)
# is missing; no neuroplast path uses it, so every export/train run would print noise.
# (brevitas loads lazily, inside the functions above, so this filter is in place first.)
warnings.filterwarnings("ignore", message="fast_hadamard_transform package not found")

__all__ = [
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
