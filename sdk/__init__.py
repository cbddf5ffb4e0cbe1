"""neuroplast: edge inference and on-device learning.

The device runtime: a numpy interpreter of the neuroplast Graph IR with float32 and
integer arithmetic, local plasticity, and a safe bundle format. ``import neuroplast``
never imports torch or brevitas; the toolchain lives in ``neuroplast.quantize``.

Public API: the names in ``__all__``. Everything else is private.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from neuroplast.errors import (
    BoardError,
    BridgeError,
    BundleError,
    DataError,
    ExportError,
    GraphError,
    NeuroplastError,
    PlasticityError,
    RuntimeStateError,
    UnsupportedError,
)

try:
    __version__ = _version("neuroplast")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = [
    "__version__",
    "load",
    "NeuroplastError",
    "GraphError",
    "BundleError",
    "ExportError",
    "BridgeError",
    "BoardError",
    "DataError",
    "PlasticityError",
    "RuntimeStateError",
    "UnsupportedError",
]


def load(path, mode: str | None = None):
    """Load a bundle (directory or zip) and return a ready :class:`~neuroplast.runtime.Runtime`.

    ``mode`` is ``"float"`` or ``"int"``; by default the bundle's preferred mode.
    """
    from neuroplast.bundle import load_runtime

    return load_runtime(path, mode=mode)
