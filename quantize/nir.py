"""NIR (Neuromorphic Intermediate Representation) export and import of neuroplast graphs.

``export_nir(graph, path)`` writes a ``.nir`` file with ``nir.write``; ``read(path)``
turns any NIR file (ours, snnTorch's, Norse's) into a neuroplast :class:`Graph`. Both
directions are tables: :data:`NIR` (a target of the capability matrix) holds one export
handler per node kind, :data:`IMPORTERS` one import handler per NIR node type. An app's
node kind exports by registering ``@NIR.register(MyKind)`` (``fn(w, name, node)``
returning a ``nir`` node, see :class:`NIRWriter`).

Conventions (docs/nir.md has them all, with what snnTorch and Norse do)
---------------------------------------------------------------------
NIR neurons are continuous-time ODEs; neuroplast steps them with forward Euler at the
graph's ``dt`` (seconds), immediate reset, spike when ``v > v_th``::

    NIR LIF      tau dv/dt = (v_leak - v) + r I
    neuroplast   v' = v_leak + (1 - dt/tau)(v - v_leak) + (r dt / tau) I

so ``tau`` and ``r`` carry over unchanged (the default ``r = tau/dt`` is written
explicitly); each handler's note says how its kind maps. A file is written at a time step
``ts`` (default ``dt``; ``time_step=`` rescales time constants and delays by ``ts/dt``)
and records ``dt``, ``time_step``, the node kinds, reset modes and quantization metadata
(JSON under ``metadata["neuroplast"]``), which ``read`` restores. Export warns
(:class:`NIRPeerWarning`) when a peer would misread the file.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from neuroplast import graph as G
from neuroplast.errors import DataError, ExportError, GraphError
from neuroplast.formats import register_reader
from neuroplast.targets import Target, register_target

__all__ = [
    "NIR",
    "IMPORTERS",
    "NIRWriter",
    "NIRReader",
    "NIRPeerWarning",
    "PEER_TIME_STEP",
    "NIR_META_KEY",
    "export_nir",
    "to_nir",
    "peer_warnings",
    "read",
    "from_nir",
    "describe_nir",
]

NIR_META_KEY = "neuroplast"
_FORMAT_VERSION = 1
#: snnTorch's ``import_from_nir`` steps every neuron at this hard-coded time step (s).
PEER_TIME_STEP = 1e-4


class NIRPeerWarning(UserWarning):
    """A NIR file was written that a known peer (snnTorch, Norse) would misread."""


NIR = register_target(
    Target(
        "nir",
        "NIR graph (.nir)",
        engine="snnTorch, Norse (nir 1.0)",
        hint="NIR has no such primitive; replace it or export ONNX/TFLite",
        requires=("nir",),
        extra="train",
    )
)
NIR.refuse(G.ReLU, "NIR has no ReLU primitive", "use a spiking neuron, or export ONNX/TFLite")
NIR.refuse(
    G.MaxPool2d, "NIR has no MaxPool primitive", "use AvgPool2d/SumPool2d, or export ONNX/TFLite"
)


# ============================================================================ helpers
def _bcast(arr: Any, shape: tuple[int, ...], default: float) -> np.ndarray:
    """Per-neuron parameter -> array of the node's full shape (scalar / per element /
    per channel along axis 0)."""
    a = np.asarray(default if arr is None else arr, dtype=np.float32).ravel()
    n = int(np.prod(shape))
    if a.size == 1:
        return np.full(shape, a[0], np.float32)
    if a.size == n:
        return a.reshape(shape).copy()
    if a.size == shape[0]:
        return np.broadcast_to(a.reshape((shape[0],) + (1,) * (len(shape) - 1)), shape).copy()
    raise ExportError(f"{a.size} parameters do not fit shape {shape}")


def _squeeze(a: Any) -> np.ndarray:
    """Collapse a uniform array to one value (keeps graphs small), else flatten."""
    a = np.asarray(a, dtype=np.float32).ravel()
    return a[:1].copy() if a.size and np.all(a == a[0]) else a


def _f32(a: Any) -> np.ndarray:
    return np.asarray(a, np.float32)


def _tuple2(v: Any) -> tuple[int, int]:
    t = tuple(int(x) for x in np.atleast_1d(v))
    return (t[0], t[0]) if len(t) == 1 else (t[0], t[1])


def _int1(v: Any) -> int:
    return int(np.ravel(v)[0])


# ============================================================================ export
@dataclass
class NIRWriter:
    """What an export handler ``fn(w, name, node) -> nir node | None`` works with.

    ``dt``: the graph's step (s); ``ts``: the file's time step (s); time constants are
    written multiplied by ``k = ts / dt``. A handler returns the NIR node for ``name``
    (the caller attaches its metadata and wires it to ``name``'s predecessors), or
    ``None`` after adding its own nodes (with :meth:`meta`) and edges.
    """

    nir: Any
    graph: Any
    ts: float
    r_mode: str
    shapes: dict[str, tuple[int, ...]]
    nodes: dict[str, Any] = field(default_factory=dict)
    edges: list[tuple[str, str]] = field(default_factory=list)

    @property
    def dt(self) -> float:
        return float(self.graph.dt)

    @property
    def k(self) -> np.float32:
        return np.float32(self.ts / self.dt)

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(int(s) for s in self.shapes[name])

    def in_shape(self, name: str) -> tuple[int, ...]:
        return self.shape(self.graph.predecessors(name)[0])

    def param(self, name: str, node: Any, attr: str, default: float) -> np.ndarray:
        """A neuron parameter over the node's full output shape (float32)."""
        return _bcast(getattr(node, attr), self.shape(name), default)

    def meta(self, name: str, node: Any, **extra: Any) -> dict[str, str]:
        quant = {
            f.name: asdict(getattr(node, f.name))
            for f in fields(node)
            if f.metadata.get("kind") == "quant" and getattr(node, f.name) is not None
        }
        d = {"kind": node.kind, "name": name, "quant": quant, **extra}
        if hasattr(node, "reset"):
            d["reset"] = node.reset
        return {NIR_META_KEY: json.dumps(d)}

    def fold(self, name: str, gain: np.ndarray) -> np.ndarray:
        """``r_mode="fold"``: multiply the rows of the Linear feeding ``name`` by ``gain``
        and return ones (the gain the neuron then writes); other modes return ``gain``."""
        if self.r_mode != "fold":
            return gain
        ones = np.ones_like(gain)
        (pred,) = self.graph.predecessors(name)
        prod = self.nodes.get(pred)
        if type(prod).__name__ not in ("Affine", "Linear") or self.graph.successors(pred) != [name]:
            if np.allclose(gain, 1.0):
                return ones
            raise ExportError(
                f"r_mode='fold': neuron {name!r} needs a Linear producer used only by it "
                f"to absorb its input gain, but its input comes from {pred!r}"
            )
        f = gain.ravel().astype(np.float32)
        prod.weight = prod.weight * f[:, None]
        if type(prod).__name__ == "Affine":
            prod.bias = prod.bias * f
        meta = json.loads(prod.metadata[NIR_META_KEY])
        prod.metadata[NIR_META_KEY] = json.dumps({**meta, "folded_gain": f.tolist()})
        return ones


@NIR.register(G.Input, note="shape without batch axis")
def _x_input(w: NIRWriter, name: str, node: Any) -> Any:
    return w.nir.Input(input_type={"input": np.array(w.shape(name))})


@NIR.register(G.Linear, note="Affine with a bias, else Linear")
def _x_linear(w: NIRWriter, name: str, node: Any) -> Any:
    if node.bias is None:
        return w.nir.Linear(weight=_f32(node.weight))
    return w.nir.Affine(weight=_f32(node.weight), bias=_f32(node.bias))


def _conv_bias(node: Any) -> np.ndarray:
    return _f32(node.bias if node.bias is not None else np.zeros(node.weight.shape[0]))


def _ungrouped(name: str, node: Any, ctx: Any) -> str | None:
    # nir's type inference takes weight.shape[1] as the input channels (ignoring groups)
    if node.groups != 1:
        return (f"NIR cannot type-check a grouped convolution (groups={node.groups}); "
                "use groups=1, or export ONNX/TFLite")  # fmt: skip
    return None


@NIR.register(G.Conv1d, check=_ungrouped, note="groups=1 only")
def _x_conv1d(w: NIRWriter, name: str, node: Any) -> Any:
    return w.nir.Conv1d(input_shape=w.in_shape(name)[1], weight=_f32(node.weight),
                        stride=node.stride[0], padding=node.padding[0], dilation=node.dilation[0],
                        groups=node.groups, bias=_conv_bias(node))  # fmt: skip


@NIR.register(G.Conv2d, check=_ungrouped, note="groups=1 only")
def _x_conv2d(w: NIRWriter, name: str, node: Any) -> Any:
    return w.nir.Conv2d(input_shape=w.in_shape(name)[1:], weight=_f32(node.weight),
                        stride=node.stride, padding=node.padding, dilation=node.dilation,
                        groups=node.groups, bias=_conv_bias(node))  # fmt: skip


def _avg_unpadded(name: str, node: Any, ctx: Any) -> str | None:
    # the runtime (like TFLite) leaves padded cells out of the average; NIR's AvgPool2d,
    # like PyTorch's default, divides by the full window
    if node.kind == "AvgPool2d" and any(node.padding):
        return ("NIR's AvgPool2d divides by the whole window, padding included, while the "
                "runtime averages only real cells; use padding 0, or SumPool2d")  # fmt: skip
    return None


@NIR.register(G.SumPool2d, G.AvgPool2d, check=_avg_unpadded, note="AvgPool2d: padding 0")
def _x_pool(w: NIRWriter, name: str, node: Any) -> Any:
    cls = getattr(w.nir, node.kind)  # the NIR type of the same name
    return cls(kernel_size=np.array(node.kernel), stride=np.array(node.stride),
               padding=np.array(node.padding))  # fmt: skip


@NIR.register(G.Flatten, note="start_dim=0 over the batch-free shape")
def _x_flatten(w: NIRWriter, name: str, node: Any) -> Any:
    return w.nir.Flatten(input_type={"input": np.array(w.in_shape(name))}, start_dim=0,
                         end_dim=-1)  # fmt: skip


@NIR.register(G.Scale)
def _x_scale(w: NIRWriter, name: str, node: Any) -> Any:
    return w.nir.Scale(scale=w.param(name, node, "scale", 1.0))


@NIR.register(G.Add, note="Scale(1) with two incoming edges (NIR sums fan-in)")
def _x_add(w: NIRWriter, name: str, node: Any) -> Any:
    return w.nir.Scale(scale=np.ones(w.shape(name), np.float32))


def _leaky(w: NIRWriter, name: str, node: Any, tau_attr: str = "tau_mem") -> tuple:
    """``(param, tau, r)`` of a leaky neuron: a parameter getter, its time constant and
    NIR ``r`` (the node's, or the unit-gain default ``tau/dt``)."""
    p = partial(w.param, name, node)
    tau = p(tau_attr, 1.0)
    return p, tau, p("r", 1.0) if node.r is not None else tau / np.float32(w.dt)


def _zero_reset(name: str, node: Any, ctx: Any) -> str | None:
    # NIR's neurons reset to v_reset: any reader would run a subtractive reset differently
    if node.reset == "subtract":
        return ("NIR neurons reset to v_reset, so reset='subtract' would run as a different "
                "network in every NIR reader; use reset='zero' (LIF(reset='zero') in QAT)")  # fmt: skip
    return None


@NIR.register(G.LIF, check=_zero_reset, note="r written explicitly (default tau/dt); reset='zero'")
def _x_lif(w: NIRWriter, name: str, node: Any) -> Any:
    p, tau, r = _leaky(w, name, node)
    return w.nir.LIF(tau=tau * w.k, r=w.fold(name, r), v_leak=p("v_leak", 0.0),
                     v_threshold=p("v_th", 1.0), v_reset=p("v_reset", 0.0))  # fmt: skip


@NIR.register(
    G.CubaLIF, check=_zero_reset, note="w_in = runtime w_in * tau_syn / dt; reset='zero'"
)  # runtime i' = alpha i + w_in' S
def _x_cubalif(w: NIRWriter, name: str, node: Any) -> Any:
    p, tau, r = _leaky(w, name, node)
    tau_syn = p("tau_syn", 1.0)
    return w.nir.CubaLIF(tau_syn=tau_syn * w.k, tau_mem=tau * w.k, r=r, v_leak=p("v_leak", 0.0),
                         v_threshold=p("v_th", 1.0), v_reset=p("v_reset", 0.0),
                         w_in=p("w_in", 1.0) * tau_syn / np.float32(w.dt))  # fmt: skip


@NIR.register(G.IF, check=_zero_reset, note="r = runtime r / dt; reset='zero'")
def _x_if(w: NIRWriter, name: str, node: Any) -> Any:
    p = partial(w.param, name, node)
    return w.nir.IF(r=w.fold(name, p("r", 1.0)) / np.float32(w.ts), v_threshold=p("v_th", 1.0),
                    v_reset=p("v_reset", 0.0))  # fmt: skip


@NIR.register(G.LI)
def _x_li(w: NIRWriter, name: str, node: Any) -> Any:
    p, tau, r = _leaky(w, name, node)
    return w.nir.LI(tau=tau * w.k, r=r, v_leak=p("v_leak", 0.0))


@NIR.register(G.Threshold)
def _x_threshold(w: NIRWriter, name: str, node: Any) -> Any:
    return w.nir.Threshold(threshold=w.param(name, node, "v_th", 0.0))


@NIR.register(G.Delay, note="seconds = steps * time step")
def _x_delay(w: NIRWriter, name: str, node: Any) -> Any:
    d = _bcast(node.delay, w.shape(name), 0.0).astype(np.float64) * w.ts
    return w.nir.Delay(delay=d.astype(np.float32))


@NIR.register(G.DelayLinear, note="one Delay -> Linear branch per delay value, summed")
def _x_delay_linear(w: NIRWriter, name: str, node: Any) -> None:
    """DelayLinear -> per-delay-value branches Delay(d) -> Linear(masked W) summed in Scale(1)."""
    (src,) = w.graph.predecessors(name)
    wt = _f32(node.weight)
    dly = np.asarray(node.delay, np.int64)
    n_out, n_in = wt.shape
    for k, d in enumerate(sorted(int(v) for v in np.unique(dly))):
        wk = np.where(dly == d, wt, 0).astype(np.float32)
        dn, wn = f"{name}__d{d}", f"{name}__w{d}"
        m = {NIR_META_KEY: json.dumps({"kind": "DelayLinearBranch", "of": name, "delay": d})}
        w.nodes[dn] = w.nir.Delay(delay=np.full(n_in, d * w.ts, np.float32), metadata=m)
        if k == 0 and node.bias is not None:
            w.nodes[wn] = w.nir.Affine(weight=wk, bias=_f32(node.bias), metadata=m)
        else:
            w.nodes[wn] = w.nir.Linear(weight=wk, metadata=m)
        w.edges += [(src, dn), (dn, wn), (wn, name)]
    w.nodes[name] = w.nir.Scale(scale=np.ones(n_out, np.float32), metadata=w.meta(name, node))


def to_nir(graph: Any, *, r_mode: str = "spec", time_step: float | None = None) -> Any:
    """Convert a neuroplast Graph to a ``nir.NIRGraph`` (see module docstring).

    ``r_mode``: ``"spec"`` (default) writes NIR-exact ``r``; ``"fold"`` moves LIF/IF
    input gains into the preceding Linear weights and writes unit ``r`` (for Norse).
    ``time_step``: the file's time step in seconds (default ``graph.dt``); time
    constants and delays are rescaled by ``time_step / graph.dt``.

    Raises:
        UnsupportedError: a node kind NIR has no primitive for (before any work).
        ExportError: a bad option, or a gain that ``r_mode="fold"`` cannot absorb.
    """
    import nir

    if r_mode not in ("spec", "fold"):
        raise ExportError(f"r_mode must be 'spec' or 'fold', not {r_mode!r}")
    ts = float(graph.dt if time_step is None else time_step)
    if not ts > 0:
        raise ExportError(f"time_step must be > 0 seconds, got {time_step!r}")
    graph.validate()
    NIR.require(graph)
    w = NIRWriter(nir, graph, ts, r_mode, graph.shapes())
    for name in graph.topo_order():
        node = graph.nodes[name]
        out = NIR.handler(name, node)(w, name, node)
        if out is not None:
            out.metadata = w.meta(name, node)
            w.nodes[name] = out
            w.edges += [(p, name) for p in graph.predecessors(name)]
    outputs = list(graph.outputs)
    for k, o in enumerate(outputs):
        oname = "output" if len(outputs) == 1 else f"output_{k}"
        w.nodes[oname] = nir.Output(output_type={"output": np.array(w.shapes[o])})
        w.edges.append((o, oname))
    node_meta = {n: json.loads(v.metadata[NIR_META_KEY]) for n, v in w.nodes.items()
                 if NIR_META_KEY in (getattr(v, "metadata", None) or {})}  # fmt: skip
    gmeta = {"format_version": _FORMAT_VERSION, "dt": float(graph.dt), "time_step": ts,
             "r_mode": r_mode, "outputs": outputs, "nodes": node_meta}  # fmt: skip
    try:
        return nir.NIRGraph(
            nodes=w.nodes, edges=w.edges, metadata={NIR_META_KEY: json.dumps(gmeta)}
        )
    except (AssertionError, ValueError) as e:
        raise ExportError(f"NIR rejected the graph: {e}") from e


def peer_warnings(ng: Any) -> list[str]:
    """What other NIR readers (snnTorch 1.0, Norse 1.1, any reader for the reset) would
    misread in ``ng`` (a ``nir.NIRGraph`` we wrote): one line per issue naming the first
    affected node and the fix."""
    ts = float(_node_meta(ng).get("time_step", PEER_TIME_STEP))
    first: dict[str, str] = {}
    for name, n in ng.nodes.items():
        kind = type(n).__name__
        if kind in ("LIF", "CubaLIF") and not np.isclose(ts, PEER_TIME_STEP):
            t = float(np.ravel(getattr(n, "tau_mem", getattr(n, "tau", None)))[0])
            first.setdefault("snntorch", f"snnTorch's import_from_nir steps at {PEER_TIME_STEP:g} s "
                f"but this file's time step is {ts:g} s: node {name!r} would decay by "
                f"{1 - PEER_TIME_STEP / t:.4g} per step instead of {1 - ts / t:.4g}; export with "
                f"time_step={PEER_TIME_STEP:g} (neuroplast export --nir-time-step 1e-4) for snnTorch")  # fmt: skip
        unit = {"LIF": 1.0, "IF": 1.0 / ts}.get(kind)
        if unit is not None and not np.allclose(n.r, unit):
            first.setdefault("norse", f"Norse's from_nir ignores r on LIF/IF: node {name!r} (r = "
                f"{float(np.ravel(n.r)[0]):.4g}) would get the wrong input gain; export with "
                "r_mode='fold' (--nir-r-mode fold) for Norse and run "
                f"norse.torch.from_nir(graph, dt={ts:g})")  # fmt: skip
    return list(first.values())


def export_nir(
    graph: Any, path: str | os.PathLike, *, r_mode: str = "spec", time_step: float | None = None
) -> Path:
    """Write ``graph`` as a ``.nir`` (HDF5) file with ``nir.write``; returns the path.

    Options as in :func:`to_nir`. Warns (:class:`NIRPeerWarning`) for each peer that
    would misread the file (:func:`peer_warnings`).
    """
    import nir

    ng = to_nir(graph, r_mode=r_mode, time_step=time_step)
    p = Path(path)
    tmp = p.with_name(p.name + ".tmp")
    nir.write(str(tmp), ng)
    os.replace(tmp, p)
    for msg in peer_warnings(ng):
        warnings.warn(f"{p.name}: {msg}", NIRPeerWarning, stacklevel=2)
    return p


# ============================================================================ import
def _node_meta(n: Any) -> dict[str, Any]:
    m = getattr(n, "metadata", None) or {}
    raw = m.get(NIR_META_KEY) if isinstance(m, dict) else None
    if isinstance(raw, bytes):
        raw = raw.decode()
    try:
        d = json.loads(raw) if raw is not None else {}
    except (TypeError, ValueError):
        return {}
    return d if isinstance(d, dict) else {}


def _quants(meta: dict[str, Any]) -> dict[str, Any]:
    from neuroplast.quant import QuantSpec

    out = {}
    for k, v in (meta.get("quant") or {}).items():
        try:
            out[k] = QuantSpec(
                **{kk: tuple(vv) if isinstance(vv, list) else vv for kk, vv in v.items()}
            )
        except (TypeError, GraphError) as e:
            raise GraphError(f"bad quantization metadata {k!r}: {e}") from e
    return out


@dataclass
class NIRReader:
    """What an import handler ``fn(r, name, n, meta, quants) -> Node`` works with.

    ``dt``: the graph's step (s); ``ts``: the step the file is read at (its recorded
    ``time_step``, else ``dt``); ``norse``: Norse 1.1's ``to_nir`` convention. ``ins``:
    each node's inputs (a handler may rewire its own entry); ``metas``: each node's
    neuroplast metadata (from the node, else the graph's copy).
    """

    ng: Any
    dt: float
    ts: float
    norse: bool
    ins: dict[str, list[str]]
    metas: dict[str, dict[str, Any]]

    def tau(self, a: Any) -> np.ndarray:
        """A NIR time constant in model seconds (Norse writes ``ts * tau``)."""
        t = np.asarray(a, np.float64) / (self.ts if self.norse else 1.0) * (self.dt / self.ts)
        if np.any(t < self.dt):
            raise GraphError(
                f"time constant {float(t.min()):g} s is shorter than dt={self.dt:g} s; files from "
                "Norse's to_nir store dt*tau: read them with convention='norse' and their dt"
            )
        return _squeeze(t)

    def steps(self, delay: Any) -> np.ndarray:
        s = np.asarray(delay, np.float64) / self.ts
        if not np.allclose(s, np.round(s), atol=1e-3):
            raise GraphError(
                f"delays {np.ravel(delay)[:4]} s are not multiples of dt={self.ts:g} s"
            )
        return np.round(s).astype(np.int32)


#: NIR node type name -> (neuroplast node class it becomes, handler).
IMPORTERS: dict[str, tuple[type, Callable[..., Any]]] = {}


def importer(nir_type: str, node_cls: type) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: ``fn`` imports NIR nodes of type ``nir_type`` as ``node_cls``."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        IMPORTERS[nir_type] = (node_cls, fn)
        return fn

    return deco


@importer("Input", G.Input)
def _i_input(r: NIRReader, name: str, n: Any, m: dict, q: dict) -> Any:
    shape = tuple(int(s) for s in np.ravel(n.input_type["input"]))
    consumers = [type(r.ng.nodes[b]).__name__ for a, b in r.ng.edges if a == name]
    if len(shape) >= 2 and shape[0] == 1 and consumers and set(consumers) <= {"Affine", "Linear"}:
        shape = shape[1:]  # a batch axis some exporters (Norse) leave in the type
    return G.Input(shape=shape, quant=q.get("quant"))


@importer("Affine", G.Linear)
@importer("Linear", G.Linear)
def _i_linear(r: NIRReader, name: str, n: Any, m: dict, q: dict) -> Any:
    return G.Linear(weight=n.weight, bias=getattr(n, "bias", None), **q)


def _pad(n: Any, nd: int) -> Any:
    """NIR padding: integers, or the strings 'valid' / 'same'."""
    if not isinstance(n.padding, str):
        return n.padding
    k, dil = n.weight.shape[-nd:], np.broadcast_to(np.ravel(n.dilation), (nd,))
    return [0 if n.padding == "valid" else (k[i] - 1) * int(dil[i]) // 2 for i in range(nd)]


@importer("Conv1d", G.Conv1d)
def _i_conv1d(r: NIRReader, name: str, n: Any, m: dict, q: dict) -> Any:
    return G.Conv1d(weight=n.weight, bias=n.bias, stride=(_int1(n.stride),),
                    padding=(_int1(_pad(n, 1)),), dilation=(_int1(n.dilation),),
                    groups=int(n.groups), **q)  # fmt: skip


@importer("Conv2d", G.Conv2d)
def _i_conv2d(r: NIRReader, name: str, n: Any, m: dict, q: dict) -> Any:
    return G.Conv2d(weight=n.weight, bias=n.bias, stride=_tuple2(n.stride),
                    padding=_tuple2(_pad(n, 2)), dilation=_tuple2(n.dilation),
                    groups=int(n.groups), **q)  # fmt: skip


def _i_pool(cls: type) -> Callable[..., Any]:
    def fn(r: NIRReader, name: str, n: Any, m: dict, q: dict) -> Any:
        return cls(kernel=_tuple2(n.kernel_size), stride=_tuple2(n.stride),
                   padding=_tuple2(n.padding))  # fmt: skip

    return fn


importer("SumPool2d", G.SumPool2d)(_i_pool(G.SumPool2d))
importer("AvgPool2d", G.AvgPool2d)(_i_pool(G.AvgPool2d))
importer("Flatten", G.Flatten)(lambda r, name, n, m, q: G.Flatten())


@importer("Scale", G.Scale)
def _i_scale(r: NIRReader, name: str, n: Any, m: dict, q: dict) -> Any:
    if m.get("kind") == "Add" and len(r.ins[name]) == 2:
        return G.Add(**q)
    if m.get("kind") == "DelayLinear":
        return _fold_delay_linear(r, name, q)
    return G.Scale(scale=_squeeze(n.scale), **q)


def _fold_delay_linear(r: NIRReader, name: str, q: dict) -> Any:
    """Our DelayLinear expansion (branches Delay(d) -> Linear summed here) back into one
    node; ``r.ins[name]`` becomes the branches' common source."""
    w = dly = bias = None
    src = []
    for wn in r.ins[name]:
        wnode = r.ng.nodes[wn]
        dn = r.ins[wn][0]
        d = r.metas[dn].get("delay")
        d = int(d) if d is not None else int(r.steps(np.ravel(r.ng.nodes[dn].delay)[:1])[0])
        wk = _f32(wnode.weight)
        w = wk.copy() if w is None else w + wk
        # zero weights keep delay 0 only for reporting; the branch delay where w != 0
        dly = np.where(wk != 0, d, 0 if dly is None else dly)
        bias = getattr(wnode, "bias", bias)
        src = r.ins[dn]
    r.ins[name] = src
    return G.DelayLinear(weight=w, delay=dly.astype(np.int32), bias=bias, **q)


def _reset(m: dict) -> str:
    return m.get("reset", "zero")


@importer("LIF", G.LIF)
def _i_lif(r: NIRReader, name: str, n: Any, m: dict, q: dict) -> Any:
    return G.LIF(tau_mem=r.tau(n.tau), v_th=_squeeze(n.v_threshold), v_reset=_squeeze(n.v_reset),
                 v_leak=_squeeze(n.v_leak), r=_squeeze(n.r), reset=_reset(m), **q)  # fmt: skip


@importer("CubaLIF", G.CubaLIF)
def _i_cubalif(r: NIRReader, name: str, n: Any, m: dict, q: dict) -> Any:
    tau_syn = r.tau(n.tau_syn)
    w_in = np.ravel(np.asarray(n.w_in, np.float64)) * r.dt / tau_syn.astype(np.float64)
    return G.CubaLIF(tau_syn=tau_syn, tau_mem=r.tau(n.tau_mem), v_th=_squeeze(n.v_threshold),
                     v_reset=_squeeze(n.v_reset), v_leak=_squeeze(n.v_leak), r=_squeeze(n.r),
                     w_in=_squeeze(w_in), reset=_reset(m), **q)  # fmt: skip


@importer("IF", G.IF)
def _i_if(r: NIRReader, name: str, n: Any, m: dict, q: dict) -> Any:
    gain = np.asarray(n.r, np.float64) * (1.0 if r.norse else r.ts)  # Norse: r is per step
    return G.IF(v_th=_squeeze(n.v_threshold), v_reset=_squeeze(n.v_reset), r=_squeeze(gain),
                reset=_reset(m), **q)  # fmt: skip


@importer("LI", G.LI)
def _i_li(r: NIRReader, name: str, n: Any, m: dict, q: dict) -> Any:
    return G.LI(tau_mem=r.tau(n.tau), v_leak=_squeeze(n.v_leak), r=_squeeze(n.r), **q)


@importer("Threshold", G.Threshold)
def _i_threshold(r: NIRReader, name: str, n: Any, m: dict, q: dict) -> Any:
    return G.Threshold(v_th=_squeeze(n.threshold))


@importer("Delay", G.Delay)
def _i_delay(r: NIRReader, name: str, n: Any, m: dict, q: dict) -> Any:
    return G.Delay(delay=_squeeze(r.steps(n.delay)).astype(np.int32))


def _infer_dt(ng: Any, default: float) -> float:
    """``tau / r`` when every leaky neuron agrees on it (snnTorch writes ``r = tau/dt``)."""
    cands = []
    for n in ng.nodes.values():
        tau = getattr(n, "tau_mem", getattr(n, "tau", None))
        if tau is None or getattr(n, "r", None) is None:
            continue
        r, t = np.asarray(n.r, np.float64).ravel(), np.asarray(tau, np.float64).ravel()
        if np.all(r > 0) and np.allclose(t / r, (t / r)[0], rtol=1e-5):
            cands.append(float((t / r)[0]))
    if cands and np.allclose(cands, cands[0], rtol=1e-5) and cands[0] < 1.0:
        return cands[0]
    return default


def from_nir(ng: Any, *, dt: float | None = None, convention: str = "nir") -> Any:
    """Convert a ``nir.NIRGraph`` to a neuroplast Graph (see module docstring for dt).

    ``dt``: read the file at this step (default: the ``dt`` and ``time_step`` it records,
    else inferred from ``r = tau/dt``, else 1e-4 s). ``convention="norse"`` reads files
    written by Norse 1.1's ``to_nir``, which stores ``tau = dt / tau_mem_inv`` (that is
    dt*tau, not a time constant) and means IF as the per-step ``v += r I``: pass the
    ``dt`` the Norse model was exported with.
    """
    import nir

    if not isinstance(ng, nir.NIRGraph):
        raise GraphError(f"expected a nir.NIRGraph, got {type(ng).__name__}")
    if convention not in ("nir", "norse"):
        raise GraphError(f"convention must be 'nir' or 'norse', not {convention!r}")
    if convention == "norse" and dt is None:
        raise GraphError("convention='norse' needs the dt the Norse model was exported with")
    gm = _node_meta(ng)
    if dt is not None:
        model_dt = ts = float(dt)
    elif "dt" in gm:
        model_dt = float(gm["dt"])
        ts = float(gm.get("time_step", model_dt))
    else:
        model_dt = ts = _infer_dt(ng, PEER_TIME_STEP)
    ins: dict[str, list[str]] = {k: [] for k in ng.nodes}
    for a, b in ng.edges:
        if a not in ng.nodes or b not in ng.nodes:
            raise GraphError(f"NIR edge ({a!r} -> {b!r}) names a missing node")
        ins[b].append(a)
    saved = gm.get("nodes") if isinstance(gm.get("nodes"), dict) else {}
    metas = {k: _node_meta(n) or dict(saved.get(k, {})) for k, n in ng.nodes.items()}
    r = NIRReader(ng, model_dt, ts, convention == "norse", ins, metas)
    skip = {k for k, m in metas.items() if m.get("kind") == "DelayLinearBranch"}
    out: dict[str, Any] = {}
    edges: list[tuple[str, str]] = []
    outputs: list[str] = []
    for name, n in ng.nodes.items():
        tname = type(n).__name__
        if name in skip:
            continue
        if tname == "Output":
            outputs.extend(ins[name])
            continue
        if tname not in IMPORTERS:
            raise GraphError(
                f"NIR node {name!r} of type {tname} is not supported by neuroplast "
                f"(supported: {', '.join(sorted(IMPORTERS))})"
            )
        try:
            node = IMPORTERS[tname][1](r, name, n, metas[name], _quants(metas[name]))
        except GraphError as e:
            raise GraphError(f"NIR node {name!r}: {e}") from None
        out[name] = node
        ps = ins[name]
        if len(ps) <= max(1, node.n_inputs):
            edges += [(p, name) for p in ps]
            continue
        acc = ps[0]  # NIR sums every edge into a node: make the sum explicit with Add nodes
        for i, p in enumerate(ps[1:]):
            out[f"{name}__sum{i}"] = G.Add()
            edges += [(acc, f"{name}__sum{i}"), (p, f"{name}__sum{i}")]
            acc = f"{name}__sum{i}"
        edges.append((acc, name))
    try:
        return G.Graph(
            nodes=out, edges=edges, dt=model_dt, outputs=tuple(gm.get("outputs") or outputs)
        )
    except GraphError as e:
        raise GraphError(f"NIR graph does not form a valid neuroplast graph: {e}") from None


@partial(register_reader, ".nir")
def read(path: str | os.PathLike, *, dt: float | None = None, convention: str = "nir") -> Any:
    """Read a ``.nir`` file into a neuroplast Graph; raises :class:`DataError` if unreadable.

    ``dt`` and ``convention`` as in :func:`from_nir`.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"NIR file {p} does not exist")
    return from_nir(_nir_read(p), dt=dt, convention=convention)


def _nir_read(p: Path) -> Any:
    """``nir.read`` with type checking; files whose stored types disagree (e.g. Norse's
    batch axis on Input) are re-read without it and checked by the Graph instead."""
    import nir

    try:
        return nir.read(str(p))
    except ValueError as e:
        if "type" not in str(e).lower():
            raise DataError(f"cannot read NIR file {p}: {e}") from None
    except Exception as e:  # h5py/nir raise many types on corrupt files
        raise DataError(f"cannot read NIR file {p}: {type(e).__name__}: {e}") from None
    try:
        return nir.read(str(p), type_check=False)
    except Exception as e:
        raise DataError(f"cannot read NIR file {p}: {type(e).__name__}: {e}") from None


def describe_nir(path: str | os.PathLike) -> dict[str, Any]:
    """Summary of a ``.nir`` file for ``neuroplast info``: nodes, types, shapes, params."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"NIR file {p} does not exist")
    ng = _nir_read(p)
    rows = []
    n_params = n_neurons = 0
    for name, n in ng.nodes.items():
        cls = IMPORTERS.get(type(n).__name__, (G.Node, None))[0]
        params = sum(int(np.size(v)) for k, v in vars(n).items()
                     if isinstance(v, np.ndarray) and k not in ("input_type", "output_type"))  # fmt: skip
        n_params += params if hasattr(n, "weight") else 0
        out_t = getattr(n, "output_type", None) or {}
        shape = [int(s) for s in np.ravel(next(iter(out_t.values()), []))] if out_t else []
        n_neurons += int(np.prod(shape)) if cls.neuron and shape else 0
        rows.append({"name": name, "type": type(n).__name__, "shape": shape, "params": params,
                     "neuroplast": _node_meta(n)})  # fmt: skip
    gm = _node_meta(ng)
    return {
        "path": str(p),
        "nir_version": _read_version(p),
        "written_by_neuroplast": bool(gm),
        "dt": gm.get("dt"),
        "time_step": gm.get("time_step", gm.get("dt")),
        "nodes": rows,
        "edges": [list(e) for e in ng.edges],
        "n_weights": n_params,
        "n_neurons": n_neurons,
    }


def _read_version(p: Path) -> str:
    from nir import serialization

    try:
        return str(serialization.read_version(str(p)))
    except Exception:  # older files carry no version field
        return "unknown"
