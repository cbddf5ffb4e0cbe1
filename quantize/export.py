"""One table of exporters: ``EXPORTERS[name]`` -> how to write that format.

Graph-based exporters take the lowered :class:`~neuroplast.graph.Graph`
(``bundle``, ``tflite``, ``nir``, ``sfq``); ``onnx`` takes the Brevitas QAT model
itself (QCDQ export keeps the float fake-quant semantics that onnxruntime runs), or,
given a Graph, writes ONNX QDQ from the graph (:mod:`neuroplast.export.onnx`).
Each entry names its implementation as ``"module:function"`` and is imported only
when used, so no exporter's heavy dependency loads unless it is asked for. Whichever
path is taken, the format's target (:mod:`neuroplast.targets`) sees the lowered graph
first and refuses what it cannot express in one line, before anything is written.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from neuroplast.errors import ExportError

__all__ = ["Exporter", "ExporterSpec", "EXPORTERS", "export", "export_bundle"]


class Exporter(Protocol):
    """``fn(source, path, **options) -> Path``; ``source`` is a Graph or a QAT model."""

    def __call__(self, source: Any, path: str | os.PathLike, **options: Any) -> Path: ...


@dataclass(frozen=True)
class ExporterSpec:
    """An exporter: ``target`` = ``"module:function"``; ``needs`` = ``"graph"`` or
    ``"model"``; ``suffix`` = the usual file suffix ('' for a folder); ``dt`` = the time
    step (s) a per-step spiking model (``beta``, no physical time) is lowered with."""

    target: str
    needs: str
    suffix: str
    description: str
    dt: float = 1e-3

    def load(self) -> Exporter:
        mod, fn = self.target.split(":")
        try:
            return getattr(importlib.import_module(mod), fn)
        except (ImportError, AttributeError) as e:
            raise ExportError(f"exporter {self.target} is not available: {e}") from e


def export_bundle(graph: Any, path: str | os.PathLike, mode: str = "int", **kw: Any) -> Path:
    """neuroplast's own bundle (zip if ``path`` ends in .zip, else a folder)."""
    from neuroplast.bundle import save_bundle

    return Path(save_bundle(path, graph, mode=mode, **kw))


def _onnx(source: Any, path: str | os.PathLike, example_input: Any = None, **_: Any) -> Path:
    """ONNX QCDQ of a QAT model (Brevitas), or ONNX QDQ written from a Graph."""
    from neuroplast.graph import Graph

    if isinstance(source, Graph):
        from neuroplast.export.onnx import export_onnx_graph

        return export_onnx_graph(source, path)
    from neuroplast.quantize.onnx_export import export_onnx

    return export_onnx(source, example_input, path)


EXPORTERS: dict[str, ExporterSpec] = {
    "bundle": ExporterSpec(
        "neuroplast.quantize.export:export_bundle", "graph", ".zip", "neuroplast bundle"
    ),
    "onnx": ExporterSpec(
        "neuroplast.quantize.export:_onnx", "model", ".onnx", "ONNX QCDQ (model) / QDQ (Graph)"
    ),
    "tflite": ExporterSpec(
        "neuroplast.export.tflite:export_tflite", "graph", ".tflite", "TFLite int8"
    ),
    # snnTorch's NIR importer steps at a hard-coded 1e-4 s: lower per-step models at that dt
    "nir": ExporterSpec("neuroplast.quantize.nir:export_nir", "graph", ".nir", "NIR graph", 1e-4),
    "sfq": ExporterSpec(
        "neuroplast.quantize.sfq:export_sfq", "graph", ".json", "SFQ pulse netlist"
    ),
}


def export(
    model: Any,
    path: str | os.PathLike,
    to: str,
    example_input: Any = None,
    dt: float | None = None,
    **options: Any,
) -> Path:
    """Export a QAT model (or an already lowered Graph) to format ``to``.

    Args:
        model: a Brevitas QAT model from :func:`prepare`, or a Graph (graph formats).
        path: output file/folder.
        to: a key of :data:`EXPORTERS`.
        example_input: input tensor (needed to lower a model and for ONNX).
        dt: time step (s) for lowering spiking models (default: the format's
            :attr:`ExporterSpec.dt`, 1e-4 s for NIR, else 1e-3 s).
        options: passed to the exporter (e.g. ``io="int8"`` for tflite).

    Raises:
        ExportError: unknown format, or the model cannot be expressed in it.
    """
    from neuroplast.graph import Graph
    from neuroplast.targets import TARGETS, load_plugins

    if to not in EXPORTERS:
        raise ExportError(f"unknown export format {to!r}; choose one of {sorted(EXPORTERS)}")
    spec = EXPORTERS[to]
    fn = spec.load()
    graph = model if isinstance(model, Graph) else None
    if graph is None:
        if example_input is None:
            raise ExportError(f"{to} export needs example_input (a tensor with the input shape)")
        from neuroplast.quantize.lower import lower

        try:
            graph = lower(model, example_input, dt=spec.dt if dt is None else dt)
        except ExportError:
            if spec.needs == "graph":
                raise
            # not lowerable (yet): the model exporter reads the model itself and says
            # what it cannot export
    load_plugins()
    if graph is not None and to in TARGETS:  # refuse what the format cannot express first
        TARGETS[to].require(graph)
    if spec.needs == "model" and not isinstance(model, Graph):
        return Path(fn(model, path, example_input=example_input, **options))
    return Path(fn(graph, path, **options))
