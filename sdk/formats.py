"""Readers of model files into a Graph, keyed by file suffix.

Bundles (a folder or ``.zip``) are read here; other formats register a reader from the
package that knows them (NIR from the toolchain) and are found through
:func:`neuroplast.targets.load_plugins`, so the device runtime never imports them by name.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from neuroplast.errors import DataError

__all__ = ["READERS", "register_reader", "read_graph"]

#: suffix (".nir") -> ``fn(path) -> Graph``
READERS: dict[str, Callable[[Path], Any]] = {}


def register_reader(suffix: str, fn: Callable[[Path], Any]) -> Callable[[Path], Any]:
    """Make ``fn`` the reader of files ending in ``suffix`` (e.g. ``".nir"``)."""
    READERS[suffix.lower()] = fn
    return fn


def read_graph(path: str | os.PathLike) -> Any:
    """The Graph stored in ``path``: a bundle (folder or .zip) or a registered format."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{str(p)!r} does not exist")
    if p.is_dir() or p.suffix.lower() == ".zip":
        from neuroplast.bundle import load_bundle

        return load_bundle(p).graph
    suffix = p.suffix.lower()
    if suffix not in READERS:
        from neuroplast.targets import load_plugins

        load_plugins()
    if suffix not in READERS:
        known = ", ".join(sorted(READERS)) or "none installed"
        raise DataError(
            f"{str(p)!r}: no reader for {suffix or 'files without a suffix'!r} "
            f"(bundles: a folder or .zip; other formats: {known})"
        )
    return READERS[suffix](p)
