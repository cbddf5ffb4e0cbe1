"""Model files: readers into a Graph, keyed by file suffix, and :func:`open_model`.

Bundles (a folder or ``.zip``) are read here; other graph formats register a reader from
the package that knows them (NIR from the toolchain) and are found through
:func:`neuroplast.targets.load_plugins`, so the device runtime never imports them by name.
``.onnx`` and ``.tflite`` files are not read into a Graph: :func:`open_model` runs them in
their own engines (onnxruntime, LiteRT), so ``neuroplast run/info/compare`` take every
format the SDK writes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from neuroplast.errors import DataError

__all__ = [
    "READERS",
    "ENGINE_SUFFIXES",
    "register_reader",
    "read_graph",
    "open_model",
    "sample_shape",
]

#: suffixes run by a third-party engine (not read into a Graph): suffix -> engine
ENGINE_SUFFIXES = {".onnx": "onnxruntime", ".tflite": "LiteRT"}

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


def open_model(path: str | os.PathLike, mode: str | None = None) -> Any:
    """``path`` loaded in the engine that runs its format.

    * a bundle -> :class:`~neuroplast.runtime.Runtime` in ``mode`` (default: the bundle's);
    * a registered graph format (``.nir``) -> :func:`read_graph` into a
      :class:`~neuroplast.runtime.Runtime` (``mode`` default ``"float"``);
    * ``.onnx`` -> :class:`~neuroplast.backends.OnnxBackend` (onnxruntime);
    * ``.tflite`` -> :class:`~neuroplast.backends.LiteRTBackend` in neuroplast's layout
      (channels first), so all four take the same input arrays.

    A Runtime is stateful (``step``/``run`` over time); a backend runs a batch of
    independent samples (``run``). ``mode`` applies only to the neuroplast runtime.
    """
    p = Path(path)
    if not p.exists():
        raise DataError(f"{str(p)!r} does not exist")
    suffix = p.suffix.lower()
    if suffix in ENGINE_SUFFIXES and p.is_file():
        if mode is not None:
            raise DataError(
                f"--mode applies to bundles and graph formats; {p.name} runs in "
                f"{ENGINE_SUFFIXES[suffix]} with the arithmetic stored in the file"
            )
        from neuroplast.backends import LiteRTBackend, OnnxBackend

        return OnnxBackend(p) if suffix == ".onnx" else LiteRTBackend(p, layout="neuroplast")
    if p.is_dir() or suffix == ".zip":
        from neuroplast.bundle import load_runtime

        return load_runtime(p, mode=mode)
    from neuroplast.runtime import Runtime

    return Runtime(read_graph(p), mode=mode or "float")


def sample_shape(model: Any) -> tuple[int, ...]:
    """The shape of one input sample (one time step) of an :func:`open_model` result, in
    neuroplast's layout; ``-1`` marks a dimension the model leaves free."""
    if hasattr(model, "shapes"):  # Runtime
        return tuple(model.shapes[model.inputs[0]])
    return tuple(model.sample_shape)
