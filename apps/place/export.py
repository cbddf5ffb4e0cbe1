"""Run a trained place ensemble on the neuroplast runtime (Graph IR + bundle), float or int.

The graph is ``Input(D) -> Linear(W) -> PlaceReadout``:

* ``Input`` carries the latency code as graded spikes ``g = T - t`` in {1..T}
  (:func:`~neuroplast.apps.place.preprocess.graded_spikes`); in integer mode these are the
  int8 codes themselves (scale 1);
* ``Linear`` holds every module's synapses stacked (N, D): int8 per-neuron scales, int32
  accumulation, potentials requantized to int16 with a scale chosen so no potential can
  clip (|V_j| <= T ||w_j||_1);
* ``PlaceReadout`` (registered here) scores each place by its most depolarised unmasked
  neuron (first to fire); hyperactive neurons are masked.

One runtime step is one query (the T-step latency window folded into graded spikes, see
module.py); the potentials equal :meth:`Ensemble.potentials` (float mode: to float32
rounding; int mode: within the int8 weight quantization). ``PlaceReadout`` registers its
cost (for ``neuroplast fit``) in the cost table ``neuroplast.graph.cost.COST``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from neuroplast.apps.place.ensemble import Ensemble
from neuroplast.apps.place.module import group_max
from neuroplast.apps.place.preprocess import PreprocessParams, graded_spikes, preprocess_batch
from neuroplast.errors import DataError, GraphError
from neuroplast.graph import Graph, Input, Linear, Node, array_field, register_node
from neuroplast.graph.cost import COST
from neuroplast.quant import QuantSpec
from neuroplast.runtime import BuildContext, Kernel, register_op

__all__ = [
    "PlaceReadout",
    "ensemble_graph",
    "save_ensemble_bundle",
    "runtime_scores",
    "runtime_query",
]


@register_node
@dataclass(frozen=True, eq=False)
class PlaceReadout(Node):
    """Place scores from potentials: ``score_k = max_{j: column_j = k, masked_j = 0} V_j``
    (places without unmasked neurons get the lowest representable score).
    ``column`` (N,) int: place column of each neuron (-1: none); ``masked`` (N,) 0/1:
    hyperactive neurons; ``place_ids`` (P,): id of each column."""

    kind: ClassVar[str] = "PlaceReadout"
    column: np.ndarray = array_field(np.int64)
    masked: np.ndarray = array_field(np.uint8)
    place_ids: np.ndarray = array_field(np.int64)

    def check(self) -> None:
        if self.column.shape != self.masked.shape or self.column.ndim != 1:
            raise GraphError("PlaceReadout: column and masked must be 1-D of equal length")
        if self.column.size and (
            self.column.max() >= self.place_ids.size or self.column.min() < -1
        ):
            raise GraphError("PlaceReadout: column entries must lie in [-1, n_places)")

    def out_shape(self, in_shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
        if in_shapes[0] != self.column.shape:
            raise GraphError(f"PlaceReadout expects input {self.column.shape}, got {in_shapes[0]}")
        return (int(self.place_ids.size),)


@COST.register(PlaceReadout)
def _readout_cost(node: PlaceReadout, in_shapes: list, out_shape: tuple) -> dict:
    """Per step: one compare per neuron; tables: int32 column + mask bit per neuron, int32
    id per place; no state."""
    n, p = node.column.size, node.place_ids.size
    return {"params": 2 * n + p, "macs": n, "param_bytes": 4 * n + (n + 7) // 8 + 4 * p}


@register_op(PlaceReadout)
class PlaceReadoutKernel(Kernel):
    """Float: max of float potentials; int: max of the input codes (output keeps the input's
    quantization, so scores dequantize with the potentials' scale)."""

    def __init__(self, node: PlaceReadout, ctx: BuildContext) -> None:
        super().__init__(node, ctx)
        self.col = np.where(node.masked.astype(bool), -1, node.column)
        if ctx.mode == "int":
            q = ctx.in_quants[0]
            if q is None:
                raise GraphError(f"node {ctx.name!r}: integer mode needs quantized potentials")
            self.low = q.range[0]
        else:
            self.low = np.finfo(np.float32).min

    def step(self, inputs: list[Any], state: tuple) -> tuple[np.ndarray, tuple]:
        v = np.asarray(inputs[0])
        out = group_max(v.astype(np.float32), self.col, self.node.place_ids.size, self.low)
        if self.ctx.mode == "int":
            out = out.astype(v.dtype)  # codes are exact in float32 (<= 2^24)
        return out, state


def _quant(ens: Ensemble) -> tuple[QuantSpec, QuantSpec, QuantSpec]:
    """Input (graded spikes, scale 1), per-neuron int8 weights, int16 potentials."""
    w = ens.weights.astype(np.float64)
    t = ens.params.place.steps
    amax = np.maximum(np.abs(w).max(axis=1), 1e-12)
    w_q = QuantSpec(bits=8, scale=tuple(amax / 127.0), axis=0, narrow=True)
    bound = float(t * np.abs(w).sum(axis=1).max()) or 1.0  # |V_j| <= T ||w_j||_1
    return QuantSpec(bits=8, scale=1.0), w_q, QuantSpec(bits=16, scale=bound / 32767.0)


def ensemble_graph(ens: Ensemble, threshold: int | None = None) -> Graph:
    """The runtime graph of an ensemble (float or int mode)."""
    q_in, q_w, q_out = _quant(ens)
    nodes = {
        "image": Input(shape=(ens.weights.shape[1],), quant=q_in),
        "synapses": Linear(weight=ens.weights.astype(np.float32), weight_q=q_w, out_q=q_out),
        "places": PlaceReadout(
            column=ens.column, masked=ens.mask(threshold).astype(np.uint8), place_ids=ens.places
        ),
    }
    edges = [("image", "synapses"), ("synapses", "places")]
    return Graph(nodes, edges, dt=1e-3 * ens.params.place.steps)


def save_ensemble_bundle(ens: Ensemble, path: str | Path, threshold: int | None = None) -> Path:
    """Write the ensemble as a neuroplast bundle (folder, or zip if ``path`` ends in .zip)."""
    from neuroplast.bundle import save_bundle

    pp = ens.params.place.preprocess
    prep = {
        "app": "place",
        "size": list(pp.size),
        "patch": pp.patch,
        "encoding": "graded latency spikes",
        "steps": ens.params.place.steps,
    }
    meta = {
        "n_modules": len(ens.modules),
        "region_size": ens.params.region_size,
        "threshold": int(ens.threshold if threshold is None else threshold),
    }
    return save_bundle(path, ensemble_graph(ens, threshold), preprocessing=prep, meta=meta)


def _prep_of(rt: Any) -> tuple[PreprocessParams, int]:
    b = getattr(rt, "bundle", None)
    prep = getattr(b, "preprocessing", None) or {}
    if prep.get("app") != "place":
        raise DataError("runtime was not loaded from a place bundle (preprocessing.app != 'place')")
    try:
        pp = PreprocessParams(size=tuple(prep["size"]), patch=int(prep["patch"]))
        return pp, int(prep["steps"])
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"place bundle preprocessing is malformed: {exc}") from None


def runtime_scores(rt: Any, x: np.ndarray, steps: int) -> np.ndarray:
    """Place scores (B, P) from the runtime (one step) for preprocessed images x (B, D),
    in potential units (int mode: dequantized)."""
    g = graded_spikes(np.atleast_2d(np.asarray(x, np.float32)), steps)
    rt.reset(batch=g.shape[0])
    out = rt.step(g if rt.mode == "int" else g.astype(np.float32))
    if rt.mode == "int":
        return out.astype(np.float32) * np.float32(rt.kernels["synapses"].out_quant.scale)
    return np.asarray(out)


def runtime_query(rt: Any, images: list | np.ndarray, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Top-k place ids and scores for raw images through a runtime loaded from a bundle
    written by :func:`save_ensemble_bundle` (preprocessing read from the bundle)."""
    pp, steps = _prep_of(rt)
    s = runtime_scores(rt, preprocess_batch(images, pp), steps)
    ids = rt.graph.nodes["places"].place_ids
    top = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return ids[top], np.take_along_axis(s, top, axis=1)
