"""Run a trained place ensemble on the neuroplast runtime (Graph IR + bundle).

The graph is ``Input(D) -> Linear(g * W) -> PlaceWTALIF -> PlaceReadout``:

* ``Linear`` holds every module's input weights stacked (N_total, D), pre-multiplied by the
  input gain ``g`` (mV per unit weight per input spike);
* ``PlaceWTALIF`` is the module excitatory layer (:func:`module.lif_wta_step`: leaky membrane,
  threshold ``v_th + theta`` per neuron, refractory period, one-step-delayed all-but-self
  inhibition inside each block of ``N_total / n_modules`` neurons);
* ``PlaceReadout`` accumulates spike counts and outputs the place scores of
  :func:`module.place_scores` (hyperactive neurons masked) after every step.

A query feeds the expected input per step ``x * p_max`` for ``steps`` steps (rate mode), so the
result equals :meth:`Ensemble.scores` of the numpy model. Both node kinds are float-only; they
are registered when this module is imported (``neuroplast.apps.place`` imports it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from neuroplast.apps.place.ensemble import Ensemble
from neuroplast.apps.place.module import LIFState, ModuleParams, lif_wta_step
from neuroplast.apps.place.preprocess import PreprocessParams, preprocess_batch
from neuroplast.errors import DataError, GraphError
from neuroplast.graph import Graph, Input, Linear, Node, array_field, register_node
from neuroplast.graph.cost import COST
from neuroplast.runtime import BuildContext, Kernel, register_op

__all__ = [
    "PlaceWTALIF",
    "PlaceReadout",
    "ensemble_graph",
    "save_ensemble_bundle",
    "runtime_scores",
    "runtime_query",
]


@register_node
@dataclass(frozen=True, eq=False)
class PlaceWTALIF(Node):
    """Excitatory layer of ``n_modules`` place modules (float only). Per step, mV::

        v' = v_rest + (v - v_rest) exp(-dt/tau_mem) + I - w_inh (S_module - s_self)
        spike where v' > v_thresh; then v' = v_reset, held for ``refractory`` steps

    ``v_thresh`` (N_total,) = v_th + learned theta; ``tau_mem`` in seconds.
    """

    kind: ClassVar[str] = "PlaceWTALIF"
    stateful: ClassVar[bool] = True
    v_thresh: np.ndarray = array_field()
    n_modules: int = 1
    tau_mem: float = 0.1
    v_rest: float = -65.0
    v_reset: float = -65.0
    refractory: int = 5
    w_inh: float = 20.0

    def check(self) -> None:
        if self.v_thresh.ndim != 1 or self.n_modules < 1 or self.v_thresh.size % self.n_modules:
            raise GraphError(
                f"PlaceWTALIF: v_thresh ({self.v_thresh.shape}) must be 1-D and split into "
                f"n_modules={self.n_modules} equal blocks"
            )
        if not self.tau_mem > 0 or self.refractory < 0:
            raise GraphError("PlaceWTALIF: tau_mem must be > 0 and refractory >= 0")

    def out_shape(self, in_shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
        if in_shapes[0] != (self.v_thresh.size,):
            raise GraphError(
                f"PlaceWTALIF expects input ({self.v_thresh.size},), got {in_shapes[0]}"
            )
        return in_shapes[0]


@register_node
@dataclass(frozen=True, eq=False)
class PlaceReadout(Node):
    """Running place scores: counts c += s each step; score_k = sum_{j: a_j = k} c_j (1 - m_j)
    / |{j: a_j = k}|. ``column`` (N,) int: place column of each neuron (-1: unassigned);
    ``masked`` (N,) 0/1: hyperactive neurons; ``place_ids`` (P,): id of each column."""

    kind: ClassVar[str] = "PlaceReadout"
    stateful: ClassVar[bool] = True
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


@COST.register(PlaceWTALIF)
def _wta_cost(node: PlaceWTALIF, in_shapes: list, out_shape: tuple) -> dict:
    """Per step: decay + inhibition per neuron; state v, refractory counter (float32, int32)."""
    n = node.v_thresh.size
    return {"params": n, "macs": 3 * n, "param_bytes": 4 * n, "state_bytes": 8 * n}


@COST.register(PlaceReadout)
def _readout_cost(node: PlaceReadout, in_shapes: list, out_shape: tuple) -> dict:
    """Per step: one count update per neuron (scores are formed once per query)."""
    n = node.column.size
    return {"macs": n, "param_bytes": 9 * n + 8 * node.place_ids.size, "state_bytes": 4 * n}


def _module_params(node: PlaceWTALIF, dt: float) -> ModuleParams:
    from neuroplast.apps.place.rules import DiehlCookSTDPParams

    dt_ms = dt * 1000.0
    return ModuleParams(
        tau_m_ms=node.tau_mem * 1000.0,
        v_rest=node.v_rest,
        v_reset=node.v_reset,
        refractory_ms=node.refractory * dt_ms,
        w_inh_mv=node.w_inh,
        dt_ms=dt_ms,
        max_rate_hz=min(63.75, 1000.0 / dt_ms),
        stdp=DiehlCookSTDPParams(dt=dt_ms),
    )


@register_op(PlaceWTALIF)
class PlaceWTALIFKernel(Kernel):
    stateful = True

    def __init__(self, node: PlaceWTALIF, ctx: BuildContext) -> None:
        super().__init__(node, ctx)
        if ctx.mode != "float":
            raise GraphError(f"node {ctx.name!r}: PlaceWTALIF runs in float mode only")
        self.m = node.n_modules
        self.n = node.v_thresh.size // node.n_modules
        self.p = _module_params(node, ctx.dt)
        self.params = {"v_thresh": np.array(node.v_thresh, np.float32).reshape(self.m, self.n)}

    def init_state(self, batch: int) -> tuple:
        return (LIFState.init((batch, self.m, self.n), self.p),)

    def step(self, inputs: list[Any], state: tuple) -> tuple[np.ndarray, tuple]:
        x = np.asarray(inputs[0], np.float32).reshape(-1, self.m, self.n)
        s, st = lif_wta_step(x, state[0], self.params["v_thresh"], self.p)
        return s.reshape(x.shape[0], -1), (st,)


@register_op(PlaceReadout)
class PlaceReadoutKernel(Kernel):
    """O(N) per step: masked counts gathered by place (neurons sorted by column once)."""

    stateful = True

    def __init__(self, node: PlaceReadout, ctx: BuildContext) -> None:
        super().__init__(node, ctx)
        col = node.column
        keep = np.flatnonzero(col >= 0)
        self.order = keep[np.argsort(col[keep], kind="stable")]
        cols = col[self.order]
        self.starts = np.flatnonzero(np.r_[True, cols[1:] != cols[:-1]]) if cols.size else cols
        self.cols = cols[self.starts] if cols.size else cols
        n_per = np.bincount(cols, minlength=node.place_ids.size).astype(np.float32)
        self.n_per = np.maximum(n_per[self.cols], 1.0) if cols.size else n_per
        self.keep = (node.masked == 0).astype(np.float32)

    def init_state(self, batch: int) -> tuple:
        return (np.zeros((batch, self.node.column.size), np.float32),)

    def step(self, inputs: list[Any], state: tuple) -> tuple[np.ndarray, tuple]:
        c = state[0] + inputs[0]
        out = np.zeros((c.shape[0], self.node.place_ids.size), np.float32)
        if self.order.size:
            sums = np.add.reduceat((c * self.keep)[:, self.order], self.starts, axis=1)
            out[:, self.cols] = sums / self.n_per
        return out, (c,)


def ensemble_graph(ens: Ensemble, threshold: int | None = None) -> Graph:
    """The runtime graph of an ensemble (all modules must share one size)."""
    p = ens.params.module
    sizes = {m.n_neurons for m in ens.modules}
    if len(sizes) != 1:
        raise GraphError(f"modules differ in size {sorted(sizes)}; export one graph per size")
    col = {int(pl): k for k, pl in enumerate(ens.places)}
    column = np.array([col.get(int(a), -1) for a in ens.assignments], np.int64)
    nodes = {
        "image": Input(shape=(ens.modules[0].n_inputs,)),
        "synapses": Linear(weight=np.float32(p.input_gain_mv) * ens.weights),
        "modules": PlaceWTALIF(
            v_thresh=(np.float32(p.v_th) + ens.theta).astype(np.float32),
            n_modules=len(ens.modules),
            tau_mem=p.tau_m_ms / 1000.0,
            v_rest=p.v_rest,
            v_reset=p.v_reset,
            refractory=p.ref_steps,
            w_inh=p.w_inh_mv,
        ),
        "places": PlaceReadout(
            column=column, masked=ens.mask(threshold).astype(np.uint8), place_ids=ens.places
        ),
    }
    edges = [("image", "synapses"), ("synapses", "modules"), ("modules", "places")]
    return Graph(nodes, edges, dt=p.dt_ms / 1000.0)


def save_ensemble_bundle(ens: Ensemble, path: str | Path, threshold: int | None = None) -> Path:
    """Write the ensemble as a neuroplast bundle (folder, or zip if ``path`` ends in .zip)."""
    from neuroplast.bundle import save_bundle

    p, pp = ens.params.module, ens.params.preprocess
    prep = {
        "app": "place",
        "size": list(pp.size),
        "patch": pp.patch,
        "encoding": "rate",
        "p_max": p.p_max,
        "steps": p.steps,
    }
    meta = {
        "n_modules": len(ens.modules),
        "region_size": ens.params.region_size,
        "threshold": int(ens.threshold if threshold is None else threshold),
    }
    return save_bundle(path, ensemble_graph(ens, threshold), preprocessing=prep, meta=meta)


def _prep_of(rt: Any) -> tuple[PreprocessParams, float, int]:
    b = getattr(rt, "bundle", None)
    prep = getattr(b, "preprocessing", None) or {}
    if prep.get("app") != "place":
        raise DataError("runtime was not loaded from a place bundle (preprocessing.app != 'place')")
    try:
        pp = PreprocessParams(size=tuple(prep["size"]), patch=int(prep["patch"]))
        return pp, float(prep["p_max"]), int(prep["steps"])
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"place bundle preprocessing is malformed: {exc}") from None


def runtime_scores(rt: Any, x: np.ndarray, p_max: float, steps: int) -> np.ndarray:
    """Place scores (B, P) from the runtime for preprocessed images x (B, D)."""
    x = np.atleast_2d(np.asarray(x, np.float32))
    drive = x * np.float32(p_max)
    rt.reset(batch=x.shape[0])
    out = rt.run(np.broadcast_to(drive, (steps, *drive.shape)))
    return np.asarray(out[-1])


def runtime_query(rt: Any, images: list | np.ndarray, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Top-k place ids and scores for raw images through a runtime loaded from a bundle
    written by :func:`save_ensemble_bundle` (preprocessing read from the bundle)."""
    pp, p_max, steps = _prep_of(rt)
    x = preprocess_batch(images, pp)
    s = runtime_scores(rt, x, p_max, steps)
    ids = rt.graph.nodes["places"].place_ids
    top = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return ids[top], np.take_along_axis(s, top, axis=1)
