"""Bundle format v1: the deployable artifact (folder or zip), safe to load.

Public API: the names in ``__all__``; everything else is private.
"""

from neuroplast.bundle.format import (
    BUNDLE_FORMAT,
    BUNDLE_VERSION,
    LIMITS,
    Bundle,
    load_bundle,
    load_runtime,
    read_npz_bytes,
    save_bundle,
)

__all__ = [
    "Bundle",
    "BUNDLE_FORMAT",
    "BUNDLE_VERSION",
    "LIMITS",
    "save_bundle",
    "load_bundle",
    "load_runtime",
    "read_npz_bytes",
]
