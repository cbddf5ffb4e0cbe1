"""One table of exporters: ``EXPORTERS[name]`` -> how to write that format.

Graph-based exporters take the lowered :class:`~neuroplast.graph.Graph`
(``bundle``, ``tflite``, ``nir``, ``sfq``); ``onnx`` takes the Brevitas QAT model
itself (QCDQ export keeps the float fake-quant semantics that onnxruntime runs), or,
given a Graph, writes ONNX QDQ from the graph (:mod:`neuroplast.quantize.onnx_graph`).
Each entry names its implementation as ``"module:function"`` and is imported only
when used, so no exporter's heavy dependency loads unless it is asked for.
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
    ``"model"``; ``suffix`` = the usual file suffix ('' for a folder)."""

    target: str
    needs: str
    suffix: str
    description: str

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


def _onnx(model: Any, path: str | os.PathLike, example_input: Any = None, **_: Any) -> Path:
    from neuroplast.quantize.onnx_export import export_onnx

    if example_input is None:
        raise ExportError("onnx export needs example_input (a tensor with the input shape)")
    return export_onnx(model, example_input, path)


EXPORTERS: dict[str, ExporterSpec] = {
    "bundle": ExporterSpec(
        "neuroplast.quantize.export:export_bundle", "graph", ".zip", "neuroplast bundle"
    ),
    "onnx": ExporterSpec("neuroplast.quantize.export:_onnx", "model", ".onnx", "ONNX QCDQ"),
    "tflite": ExporterSpec(
        "neuroplast.quantize.tflite_export:export_tflite", "graph", ".tflite", "TFLite int8"
    ),
    "nir": ExporterSpec("neuroplast.quantize.nir:export_nir", "graph", ".nir", "NIR graph"),
    "sfq": ExporterSpec(
        "neuroplast.quantize.sfq:export_sfq", "graph", ".json", "SFQ pulse netlist"
    ),
}


def export(
    model: Any,
    path: str | os.PathLike,
    to: str,
    example_input: Any = None,
    dt: float = 1e-3,
    **options: Any,
) -> Path:
    """Export a QAT model (or an already lowered Graph) to format ``to``.

    Args:
        model: a Brevitas QAT model from :func:`prepare`, or a Graph (graph formats).
        path: output file/folder.
        to: a key of :data:`EXPORTERS`.
        example_input: input tensor (needed to lower a model and for ONNX).
        dt: time step for lowering spiking models.
        options: passed to the exporter (e.g. ``io="int8"`` for tflite).

    Raises:
        ExportError: unknown format, or the model cannot be expressed in it.
    """
    from neuroplast.graph import Graph

    if to not in EXPORTERS:
        raise ExportError(f"unknown export format {to!r}; choose one of {sorted(EXPORTERS)}")
    spec = EXPORTERS[to]
    fn = spec.load()
    if spec.needs == "model":
        if isinstance(model, Graph) and to == "onnx":
            # no QAT model at hand: write ONNX QDQ straight from the graph
            from neuroplast.quantize.onnx_graph import export_onnx_graph

            return export_onnx_graph(model, path)
        if isinstance(model, Graph):
            raise ExportError(f"{to} export needs the QAT model, not a lowered Graph")
        return Path(fn(model, path, example_input=example_input, **options))
    if isinstance(model, Graph):
        graph = model
    else:
        from neuroplast.quantize.lower import lower

        if example_input is None:
            raise ExportError(
                "lowering a model needs example_input (a tensor with the input shape)"
            )
        graph = lower(model, example_input, dt=dt)
    from neuroplast.targets import TARGETS, load_plugins

    load_plugins()
    if to in TARGETS:  # refuse what the format cannot express before writing anything
        TARGETS[to].require(graph)
    return Path(fn(graph, path, **options))
