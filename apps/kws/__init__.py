"""Audio keyword spotting reference app: a delay-learning SNN (DCLS), Brevitas QAT,
export to a neuroplast bundle (integer delays in ring buffers), ONNX/TFLite (a
non-spiking reference variant), and on-device keyword enrollment.

Device-side modules (numpy only): :mod:`~neuroplast.apps.kws.frontend`,
:mod:`~neuroplast.apps.kws.data`, :mod:`~neuroplast.apps.kws.lower`,
:mod:`~neuroplast.apps.kws.infer`, :mod:`~neuroplast.apps.kws.enroll`.
Toolchain-side modules (import torch): :mod:`~neuroplast.apps.kws.model`,
:mod:`~neuroplast.apps.kws.train`, :mod:`~neuroplast.apps.kws.reference`.
Importing this package imports none of them eagerly.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "CLASSES",
    "KEYWORDS",
    "MelParams",
    "DeltaParams",
    "log_mel",
    "encode",
    "generate_synthetic",
    "load_gsc",
    "load_shd",
    "KwsDeployment",
    "to_graph",
    "KeywordStreamer",
    "runtime_scores",
    "EnrollParams",
    "enroll_word",
    "decide",
    "PipelineConfig",
    "run_pipeline",
]

_LAZY = {
    "CLASSES": "data",
    "KEYWORDS": "data",
    "generate_synthetic": "data",
    "load_gsc": "data",
    "load_shd": "data",
    "MelParams": "frontend",
    "DeltaParams": "frontend",
    "log_mel": "frontend",
    "encode": "frontend",
    "KwsDeployment": "lower",
    "to_graph": "lower",
    "KeywordStreamer": "infer",
    "runtime_scores": "infer",
    "EnrollParams": "enroll",
    "enroll_word": "enroll",
    "decide": "enroll",
    "PipelineConfig": "pipeline",
    "run_pipeline": "pipeline",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"neuroplast.apps.kws.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'neuroplast.apps.kws' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
