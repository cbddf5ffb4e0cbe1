"""Optional inference backends: run standard (non-spiking) models in onnxruntime or
LiteRT instead of the numpy interpreter.

``load_backend(path)`` picks the backend from the file suffix; ``LiteRTBackend.from_graph``
builds an int8 TFLite model from a neuroplast Graph in memory (no torch needed) so a
bundle's feed-forward graph can run on LiteRT. Both backends accept inputs in
neuroplast's layout (channels first) when ``layout="neuroplast"``, so they are drop-in
interchangeable with :class:`neuroplast.runtime.Runtime`.

Public API: the names in ``__all__``; everything else is private.
"""

from __future__ import annotations

from neuroplast.backends.base import Backend, available_backends, load_backend
from neuroplast.backends.litert import LiteRTBackend
from neuroplast.backends.onnxrt import OnnxBackend

__all__ = ["Backend", "OnnxBackend", "LiteRTBackend", "load_backend", "available_backends"]
