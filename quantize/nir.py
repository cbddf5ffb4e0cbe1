"""NIR (Neuromorphic Intermediate Representation) export and import of neuroplast graphs.

``export_nir(graph, path)`` writes a ``.nir`` file with ``nir.write``; ``read(path)``
turns any NIR file (ours, snnTorch's, Norse's) into a neuroplast :class:`Graph`.

Time-constant, gain and reset conventions (docs/nir.md)
-------------------------------------------------------
NIR neurons are continuous-time ODEs; neuroplast steps them with forward Euler at the
graph's ``dt`` (seconds), immediate reset, spike when ``v > v_th``::

    NIR LIF      tau dv/dt = (v_leak - v) + r I
    neuroplast   v' = v_leak + (1 - dt/tau)(v - v_leak) + (r dt / tau) I

so ``tau`` and ``r`` carry over unchanged; neuroplast's default ``r = tau/dt`` (unit
input gain) is written explicitly. Other nodes:

* CubaLIF: NIR ``tau_syn dI/dt = -I + w_in S``  ->  runtime ``i' = alpha i + w_in' S``
  with ``w_in' = w_in dt / tau_syn`` (the runtime folds the Euler input factor into w_in).
* IF: NIR ``dv/dt = r I``  ->  runtime ``v' = v + r' I``, ``r' = r dt``.
* Delay: NIR seconds  <->  runtime integer steps, ``d = delay / dt`` (must be integral).
* Reset: NIR defines only reset-to-``v_reset``. neuroplast's ``reset="subtract"`` is
  kept in node metadata (restored on import); peers will reset to ``v_reset``.
* Flatten: NIR types have no batch axis; we write ``start_dim=0`` over the full shape.
* Add: NIR sums all edges entering a node; neuroplast ``Add`` is written as an identity
  ``Scale`` node with two incoming edges.
* DelayLinear (per-synapse delays): expanded into one branch per distinct delay value
  ``d``: ``Delay(d) -> Linear(W masked to D == d)``, all branches summed into an
  identity ``Scale`` node; the first branch carries the bias (``Affine``). Our reader
  folds the branches back into one DelayLinear; other readers see plain NIR.

Peer conventions (checked in tests): snnTorch's ``import_from_nir`` hard-codes
``dt = 1e-4`` and honours ``r``; Norse's ``from_nir(dt=...)`` takes any dt but ignores
``r`` on LIF and IF nodes. ``r_mode="fold"`` writes ``r = 1`` (IF: ``r = 1/dt``) and
multiplies the gain into the preceding Affine's rows instead, which Norse runs
correctly. Without neuroplast metadata, ``read`` infers ``dt`` from ``r = tau/dt`` of
LIF/CubaLIF nodes (snnTorch writes that) and otherwise uses its ``dt`` argument.

Quantization metadata (``QuantSpec`` fields) and the node kind are stored as JSON in
each node's ``metadata["neuroplast"]`` and in the graph metadata, and restored on import.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, fields
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from neuroplast import graph as G
from neuroplast.errors import DataError, ExportError, GraphError
from neuroplast.formats import register_reader
from neuroplast.targets import Target, register_target

__all__ = ["export_nir", "to_nir", "read", "from_nir", "describe_nir", "NIR_META_KEY"]

NIR_META_KEY = "neuroplast"
_FORMAT_VERSION = 1

# The NIR target of the capability matrix. TODO(platform): the per-kind export code below
# becomes these handlers (no isinstance chain); until then they only declare support.
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
NIR.register(G.Input, G.Linear, G.Conv1d, G.Conv2d, G.SumPool2d, G.AvgPool2d, G.Flatten,
             G.Scale, G.Add, G.LIF, G.CubaLIF, G.IF, G.LI, G.Threshold, G.Delay,
             G.DelayLinear)(None)  # fmt: skip


def _ungrouped(name: str, node: Any, ctx: Any) -> str | None:
    # nir's type inference takes weight.shape[1] as the input channels (ignoring groups)
    if node.groups != 1:
        return (f"NIR cannot type-check a grouped convolution (groups={node.groups}); "
                "use groups=1, or export ONNX/TFLite")  # fmt: skip
    return None


NIR.register(G.Conv1d, G.Conv2d, check=_ungrouped, note="groups=1 only")(None)
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


def _squeeze(a: np.ndarray) -> np.ndarray:
    """Collapse a uniform array to one value (keeps graphs small), else flatten."""
    a = np.asarray(a, dtype=np.float32).ravel()
    return a[:1].copy() if a.size and np.all(a == a[0]) else a


def _quant_meta(node: Any) -> dict[str, Any]:
    out = {}
    for f in fields(node):
        if f.metadata.get("kind") == "quant" and getattr(node, f.name) is not None:
            out[f.name] = asdict(getattr(node, f.name))
    return out


def _meta(node: Any, name: str, **extra: Any) -> dict[str, str]:
    d = {"kind": node.kind, "name": name, "quant": _quant_meta(node), **extra}
    if hasattr(node, "reset"):
        d["reset"] = node.reset
    return {NIR_META_KEY: json.dumps(d)}


def _tuple2(v: Any) -> tuple[int, int]:
    t = tuple(int(x) for x in np.atleast_1d(v))
    return (t[0], t[0]) if len(t) == 1 else (t[0], t[1])


# ============================================================================ export
def to_nir(graph: Any, *, r_mode: str = "spec") -> Any:
    """Convert a neuroplast Graph to a ``nir.NIRGraph`` (see module docstring).

    ``r_mode``: ``"spec"`` (default) writes NIR-exact ``r``; ``"fold"`` moves LIF/IF
    input gains into the preceding Affine weights and writes unit ``r`` (for Norse).
    """
    import nir

    from neuroplast.graph import (
        IF,
        LI,
        LIF,
        Add,
        AvgPool2d,
        Conv1d,
        Conv2d,
        CubaLIF,
        Delay,
        DelayLinear,
        Flatten,
        Input,
        Linear,
        Scale,
        SumPool2d,
        Threshold,
    )

    if r_mode not in ("spec", "fold"):
        raise ExportError(f"r_mode must be 'spec' or 'fold', not {r_mode!r}")
    graph.validate()
    dt = float(graph.dt)
    shapes = graph.shapes()
    nodes: dict[str, Any] = {}
    edges: list[tuple[str, str]] = []
    # fold factors for r_mode="fold": neuron name -> per-neuron gain moved into its producer
    fold: dict[str, np.ndarray] = {}
    if r_mode == "fold":
        for name in graph.topo_order():
            node = graph.nodes[name]
            if isinstance(node, (LIF, IF)):
                if isinstance(node, LIF):
                    tau = np.asarray(node.tau_mem, np.float64).ravel()
                    r = tau / dt if node.r is None else np.asarray(node.r, np.float64).ravel()
                    gain = r * dt / tau
                    factor = r  # NIR r = 1: v' = beta v + (dt/tau) * (r W x)
                else:
                    gain = np.asarray(1.0 if node.r is None else node.r, np.float64).ravel()
                    factor = gain
                preds = graph.predecessors(name)
                prod = graph.nodes[preds[0]]
                if not isinstance(prod, Linear) or graph.successors(preds[0]) != [name]:
                    if np.allclose(factor, 1.0):
                        continue
                    raise ExportError(
                        f"r_mode='fold': neuron {name!r} needs a Linear producer used only by it "
                        f"to absorb its input gain, but its input comes from {preds[0]!r}"
                    )
                fold[preds[0]] = np.broadcast_to(factor, (prod.weight.shape[0],)).astype(np.float64)
                fold[name] = gain

    graph_outputs = list(graph.outputs)
    for name in graph.topo_order():
        node = graph.nodes[name]
        shape = tuple(int(s) for s in shapes[name])
        preds = graph.predecessors(name)
        meta = _meta(node, name)
        if isinstance(node, Input):
            nodes[name] = nir.Input(input_type={"input": np.array(shape)}, metadata=meta)
        elif isinstance(node, Linear):
            w = np.asarray(node.weight, np.float32)
            b = None if node.bias is None else np.asarray(node.bias, np.float32)
            if name in fold:
                f = fold[name].astype(np.float32)
                w = w * f[:, None]
                b = None if b is None else b * f
                meta = _meta(node, name, folded_gain=fold[name].tolist())
            nodes[name] = (
                nir.Affine(weight=w, bias=b, metadata=meta)
                if b is not None
                else nir.Linear(weight=w, metadata=meta)
            )
        elif isinstance(node, Conv1d):
            in_len = int(shapes[preds[0]][1])
            bias = node.bias if node.bias is not None else np.zeros(node.weight.shape[0])
            nodes[name] = nir.Conv1d(
                input_shape=in_len,
                weight=np.asarray(node.weight, np.float32),
                stride=int(node.stride[0]),
                padding=int(node.padding[0]),
                dilation=int(node.dilation[0]),
                groups=int(node.groups),
                bias=np.asarray(bias, np.float32),
                metadata=meta,
            )
        elif isinstance(node, Conv2d):
            hw = tuple(int(s) for s in shapes[preds[0]][1:])
            bias = node.bias if node.bias is not None else np.zeros(node.weight.shape[0])
            nodes[name] = nir.Conv2d(
                input_shape=hw,
                weight=np.asarray(node.weight, np.float32),
                stride=tuple(node.stride),
                padding=tuple(node.padding),
                dilation=tuple(node.dilation),
                groups=int(node.groups),
                bias=np.asarray(bias, np.float32),
                metadata=meta,
            )
        elif isinstance(node, (SumPool2d, AvgPool2d)):
            cls = nir.SumPool2d if isinstance(node, SumPool2d) else nir.AvgPool2d
            nodes[name] = cls(
                kernel_size=np.array(node.kernel),
                stride=np.array(node.stride),
                padding=np.array(node.padding),
                metadata=meta,
            )
        elif isinstance(node, Flatten):
            in_shape = tuple(int(s) for s in shapes[preds[0]])
            nodes[name] = nir.Flatten(
                input_type={"input": np.array(in_shape)}, start_dim=0, end_dim=-1, metadata=meta
            )
        elif isinstance(node, Scale):
            nodes[name] = nir.Scale(scale=_bcast(node.scale, shape, 1.0), metadata=meta)
        elif isinstance(node, Add):
            nodes[name] = nir.Scale(scale=np.ones(shape, np.float32), metadata=meta)
        elif isinstance(node, LIF):
            tau = _bcast(node.tau_mem, shape, 1.0)
            r = _bcast(node.r, shape, 1.0) if node.r is not None else tau / np.float32(dt)
            if name in fold:
                r = np.ones(shape, np.float32)
            nodes[name] = nir.LIF(
                tau=tau,
                r=r.astype(np.float32),
                v_leak=_bcast(node.v_leak, shape, 0.0),
                v_threshold=_bcast(node.v_th, shape, 1.0),
                v_reset=_bcast(node.v_reset, shape, 0.0),
                metadata=meta,
            )
        elif isinstance(node, CubaLIF):
            tau_syn = _bcast(node.tau_syn, shape, 1.0)
            tau_mem = _bcast(node.tau_mem, shape, 1.0)
            r = _bcast(node.r, shape, 1.0) if node.r is not None else tau_mem / np.float32(dt)
            w_in_rt = _bcast(node.w_in, shape, 1.0)
            nodes[name] = nir.CubaLIF(
                tau_syn=tau_syn,
                tau_mem=tau_mem,
                r=r.astype(np.float32),
                v_leak=_bcast(node.v_leak, shape, 0.0),
                v_threshold=_bcast(node.v_th, shape, 1.0),
                v_reset=_bcast(node.v_reset, shape, 0.0),
                w_in=(w_in_rt * tau_syn / np.float32(dt)).astype(np.float32),
                metadata=meta,
            )
        elif isinstance(node, IF):
            r_rt = _bcast(node.r, shape, 1.0)
            if name in fold:
                r_rt = np.ones(shape, np.float32)
            nodes[name] = nir.IF(
                r=(r_rt / np.float32(dt)).astype(np.float32),
                v_threshold=_bcast(node.v_th, shape, 1.0),
                v_reset=_bcast(node.v_reset, shape, 0.0),
                metadata=meta,
            )
        elif isinstance(node, LI):
            tau = _bcast(node.tau_mem, shape, 1.0)
            r = _bcast(node.r, shape, 1.0) if node.r is not None else tau / np.float32(dt)
            nodes[name] = nir.LI(
                tau=tau,
                r=r.astype(np.float32),
                v_leak=_bcast(node.v_leak, shape, 0.0),
                metadata=meta,
            )
        elif isinstance(node, Threshold):
            nodes[name] = nir.Threshold(threshold=_bcast(node.v_th, shape, 0.0), metadata=meta)
        elif isinstance(node, Delay):
            d = _bcast(node.delay, shape, 0.0).astype(np.float64) * dt
            nodes[name] = nir.Delay(delay=d.astype(np.float32), metadata=meta)
        elif isinstance(node, DelayLinear):
            # branches are wired into `name`; edges out of it are added by its successors
            _expand_delay_linear(nir, name, node, preds[0], dt, nodes, edges, meta)
        else:
            raise ExportError(
                f"node {name!r} ({node.kind}) has no NIR primitive (NIR has no ReLU/MaxPool); "
                "replace it or export to ONNX"
            )
        if not isinstance(node, (Input, DelayLinear)):
            for p in preds:
                edges.append((p, name))
    # outputs
    for k, o in enumerate(graph_outputs):
        oname = "output" if len(graph_outputs) == 1 else f"output_{k}"
        nodes[oname] = nir.Output(output_type={"output": np.array(shapes[o])})
        edges.append((o, oname))
    gmeta = {
        NIR_META_KEY: json.dumps(
            {
                "format_version": _FORMAT_VERSION,
                "dt": dt,
                "r_mode": r_mode,
                "outputs": graph_outputs,
                "nodes": {
                    n: json.loads(v.metadata[NIR_META_KEY])
                    for n, v in nodes.items()
                    if NIR_META_KEY in getattr(v, "metadata", {})
                },  # fmt: skip
            }
        )
    }
    try:
        return nir.NIRGraph(nodes=nodes, edges=edges, metadata=gmeta)
    except (AssertionError, ValueError) as e:
        raise ExportError(f"NIR rejected the graph: {e}") from e


def _expand_delay_linear(
    nir: Any, name: str, node: Any, src: str, dt: float, nodes: dict, edges: list, meta: dict
) -> None:
    """DelayLinear -> per-delay-value branches Delay(d) -> Linear(masked W) summed in Scale(1)."""
    w = np.asarray(node.weight, np.float32)
    dly = np.asarray(node.delay, np.int64)
    n_out, n_in = w.shape
    values = sorted(int(v) for v in np.unique(dly))
    for k, d in enumerate(values):
        mask = dly == d
        wk = np.where(mask, w, 0).astype(np.float32)
        dn, wn = f"{name}__d{d}", f"{name}__w{d}"
        bmeta = {NIR_META_KEY: json.dumps({"kind": "DelayLinearBranch", "of": name, "delay": d})}
        nodes[dn] = nir.Delay(delay=np.full(n_in, d * dt, np.float32), metadata=bmeta)
        if k == 0 and node.bias is not None:
            nodes[wn] = nir.Affine(
                weight=wk, bias=np.asarray(node.bias, np.float32), metadata=bmeta
            )
        else:
            nodes[wn] = nir.Linear(weight=wk, metadata=bmeta)
        edges += [(src, dn), (dn, wn), (wn, name)]
    nodes[name] = nir.Scale(scale=np.ones(n_out, np.float32), metadata=meta)


def export_nir(graph: Any, path: str | os.PathLike, *, r_mode: str = "spec") -> Path:
    """Write ``graph`` as a ``.nir`` (HDF5) file with ``nir.write``; returns the path."""
    import nir

    ng = to_nir(graph, r_mode=r_mode)
    p = Path(path)
    tmp = p.with_name(p.name + ".tmp")
    nir.write(str(tmp), ng)
    os.replace(tmp, p)
    return p


# ============================================================================ import
def _node_meta(n: Any) -> dict[str, Any]:
    m = getattr(n, "metadata", None) or {}
    raw = m.get(NIR_META_KEY) if isinstance(m, dict) else None
    if raw is None:
        return {}
    if isinstance(raw, bytes):
        raw = raw.decode()
    try:
        d = json.loads(raw)
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


def _infer_dt(ng: Any, default: float) -> float:
    import nir

    cands = []
    for n in ng.nodes.values():
        tau = getattr(n, "tau", None) if isinstance(n, nir.LIF) else None
        if isinstance(n, nir.CubaLIF):
            tau = n.tau_mem
        if tau is not None:
            r = np.asarray(n.r, np.float64).ravel()
            t = np.asarray(tau, np.float64).ravel()
            if np.all(r > 0):
                ratio = t / r
                if np.allclose(ratio, ratio[0], rtol=1e-5):
                    cands.append(float(ratio[0]))
    if cands and np.allclose(cands, cands[0], rtol=1e-5) and cands[0] < 1.0:
        return cands[0]
    return default


def from_nir(ng: Any, *, dt: float | None = None, convention: str = "nir") -> Any:
    """Convert a ``nir.NIRGraph`` to a neuroplast Graph (see module docstring for dt).

    ``convention="norse"`` reads files written by Norse 1.1's ``to_nir``, which stores
    ``tau = dt / tau_mem_inv`` (that is dt*tau, not a time constant) and means IF as the
    per-step ``v += r I``: time constants are divided by ``dt`` and IF's ``r`` is taken
    per step. Pass the ``dt`` the Norse model was exported with.
    """
    import nir

    from neuroplast.graph import (
        IF,
        LI,
        LIF,
        Add,
        AvgPool2d,
        Conv1d,
        Conv2d,
        CubaLIF,
        Delay,
        DelayLinear,
        Flatten,
        Graph,
        Input,
        Linear,
        Scale,
        SumPool2d,
        Threshold,
    )

    if not isinstance(ng, nir.NIRGraph):
        raise GraphError(f"expected a nir.NIRGraph, got {type(ng).__name__}")
    if convention not in ("nir", "norse"):
        raise GraphError(f"convention must be 'nir' or 'norse', not {convention!r}")
    if convention == "norse" and dt is None:
        raise GraphError("convention='norse' needs the dt the Norse model was exported with")
    gm = _node_meta(ng)
    if dt is None:
        dt = float(gm["dt"]) if "dt" in gm else _infer_dt(ng, 1e-4)
    node_meta = gm.get("nodes", {}) if isinstance(gm.get("nodes"), dict) else {}
    norse = convention == "norse"

    def tau_of(a: Any) -> np.ndarray:
        t = np.asarray(a, np.float64)
        t = t / dt if norse else t
        if np.any(t < dt):
            raise GraphError(
                f"time constant {float(t.min()):g} s is shorter than dt={dt:g} s; files from "
                "Norse's to_nir store dt*tau: read them with convention='norse' and their dt"
            )
        return _squeeze(t)

    preds: dict[str, list[str]] = {k: [] for k in ng.nodes}
    for a, b in ng.edges:
        if a not in ng.nodes or b not in ng.nodes:
            raise GraphError(f"NIR edge ({a!r} -> {b!r}) names a missing node")
        preds[b].append(a)

    out: dict[str, Any] = {}
    out_edges: list[tuple[str, str]] = []
    outputs: list[str] = []
    skip: set[str] = set()

    def meta_of(name: str, n: Any) -> dict[str, Any]:
        m = _node_meta(n)
        return m if m else dict(node_meta.get(name, {}))

    # fold our own DelayLinear expansions back
    for name, n in ng.nodes.items():
        m = meta_of(name, n)
        if m.get("kind") == "DelayLinear" and isinstance(n, nir.Scale):
            branches = preds[name]
            w = None
            dly = None
            bias = None
            src = None
            for wn in branches:
                wnode = ng.nodes[wn]
                dn = preds[wn][0]
                d = int(
                    _node_meta(ng.nodes[dn]).get(
                        "delay", round(float(np.ravel(ng.nodes[dn].delay)[0]) / dt)
                    )
                )
                wk = np.asarray(wnode.weight, np.float32)
                w = wk.copy() if w is None else w + wk
                dly = np.where(wk != 0, d, 0) if dly is None else np.where(wk != 0, d, dly)
                if isinstance(wnode, nir.Affine):
                    bias = np.asarray(wnode.bias, np.float32)
                src = preds[dn][0]
                skip.update({wn, dn})
            # zero weights keep their delay only for reporting; use the branch delay where w != 0
            out[name] = DelayLinear(weight=w, delay=dly.astype(np.int32), bias=bias, **_quants(m))
            out_edges.append((src, name))
            skip.add(name)

    for name, n in ng.nodes.items():
        if name in skip and name not in out:
            continue
        m = meta_of(name, n)
        q = _quants(m)
        ps = preds[name]
        try:
            if isinstance(n, nir.Input):
                shape = tuple(int(s) for s in np.ravel(n.input_type["input"]))
                consumers = [ng.nodes[b] for a, b in ng.edges if a == name]
                if (
                    len(shape) >= 2
                    and shape[0] == 1
                    and consumers
                    and all(isinstance(c, (nir.Affine, nir.Linear)) for c in consumers)
                ):
                    shape = shape[1:]  # a batch axis some exporters (Norse) leave in the type
                out[name] = Input(shape=shape, **{k: v for k, v in q.items() if k == "quant"})
                continue
            if isinstance(n, nir.Output):
                outputs.extend(ps)
                continue
            if name in out:  # DelayLinear rebuilt above
                continue
            if isinstance(n, nir.Affine):
                node = Linear(weight=n.weight, bias=n.bias, **q)
            elif isinstance(n, nir.Linear):
                node = Linear(weight=n.weight, **q)
            elif isinstance(n, nir.Conv1d):
                pad = n.padding
                if isinstance(pad, str):
                    pad = 0 if pad == "valid" else (n.weight.shape[-1] - 1) * int(n.dilation) // 2
                node = Conv1d(weight=n.weight, bias=n.bias, stride=(int(np.ravel(n.stride)[0]),),
                              padding=(int(np.ravel(pad)[0]),),
                              dilation=(int(np.ravel(n.dilation)[0]),), groups=int(n.groups), **q)  # fmt: skip
            elif isinstance(n, nir.Conv2d):
                pad = n.padding
                if isinstance(pad, str):
                    k = n.weight.shape[-2:]
                    dil = _tuple2(n.dilation)
                    pad = (
                        (0, 0)
                        if pad == "valid"
                        else tuple((k[i] - 1) * dil[i] // 2 for i in (0, 1))
                    )
                node = Conv2d(weight=n.weight, bias=n.bias, stride=_tuple2(n.stride), padding=_tuple2(pad),
                              dilation=_tuple2(n.dilation), groups=int(n.groups), **q)  # fmt: skip
            elif isinstance(n, nir.SumPool2d):
                node = SumPool2d(
                    kernel=_tuple2(n.kernel_size),
                    stride=_tuple2(n.stride),
                    padding=_tuple2(n.padding),
                )
            elif isinstance(n, nir.AvgPool2d):
                node = AvgPool2d(
                    kernel=_tuple2(n.kernel_size),
                    stride=_tuple2(n.stride),
                    padding=_tuple2(n.padding),
                )
            elif isinstance(n, nir.Flatten):
                node = Flatten()
            elif isinstance(n, nir.Scale):
                if m.get("kind") == "Add" and len(ps) == 2:
                    out[name] = Add(**q)
                    out_edges += [(p, name) for p in ps]
                    continue
                node = Scale(scale=_squeeze(n.scale), **q)
            elif isinstance(n, nir.LIF):
                node = LIF(tau_mem=tau_of(n.tau), v_th=_squeeze(n.v_threshold),
                           v_reset=_squeeze(n.v_reset), v_leak=_squeeze(n.v_leak), r=_squeeze(n.r),
                           reset=m.get("reset", "zero"), **q)  # fmt: skip
            elif isinstance(n, nir.CubaLIF):
                tau_syn = np.asarray(tau_of(n.tau_syn), np.float64)
                w_in = np.asarray(n.w_in, np.float64).ravel() * dt / tau_syn.ravel()
                node = CubaLIF(tau_syn=_squeeze(tau_syn), tau_mem=tau_of(n.tau_mem),
                               v_th=_squeeze(n.v_threshold), v_reset=_squeeze(n.v_reset),
                               v_leak=_squeeze(n.v_leak), r=_squeeze(n.r), w_in=_squeeze(w_in),
                               reset=m.get("reset", "zero"), **q)  # fmt: skip
            elif isinstance(n, nir.IF):
                node = IF(v_th=_squeeze(n.v_threshold), v_reset=_squeeze(n.v_reset),
                          r=_squeeze(np.asarray(n.r, np.float64) * (1.0 if norse else dt)), reset=m.get("reset", "zero"), **q)  # fmt: skip
            elif isinstance(n, nir.LI):
                node = LI(tau_mem=tau_of(n.tau), v_leak=_squeeze(n.v_leak), r=_squeeze(n.r), **q)
            elif isinstance(n, nir.Threshold):
                node = Threshold(v_th=_squeeze(n.threshold))
            elif isinstance(n, nir.Delay):
                steps = np.asarray(n.delay, np.float64) / dt
                if not np.allclose(steps, np.round(steps), atol=1e-3):
                    raise GraphError(
                        f"delays {np.ravel(n.delay)[:4]} s are not multiples of dt={dt:g} s"
                    )
                node = Delay(delay=_squeeze(np.round(steps)).astype(np.int32))
            else:
                raise GraphError(
                    f"NIR node {name!r} of type {type(n).__name__} is not supported by neuroplast"
                )
        except GraphError as e:
            raise GraphError(f"NIR node {name!r}: {e}") from None
        out[name] = node
        if len(ps) <= 1:
            out_edges += [(p, name) for p in ps]
        else:  # NIR sums every edge into a node: make the sum explicit with Add nodes
            acc = ps[0]
            for i, p in enumerate(ps[1:]):
                an = f"{name}__sum{i}"
                out[an] = Add()
                out_edges += [(acc, an), (p, an)]
                acc = an
            out_edges.append((acc, name))
    # keep Add helpers before their consumers (Graph.topo_order sorts; dict order is cosmetic)
    try:
        return Graph(nodes=out, edges=out_edges, dt=dt, outputs=tuple(gm.get("outputs") or outputs))
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
    import nir

    p = Path(path)
    if not p.is_file():
        raise DataError(f"NIR file {p} does not exist")
    ng = _nir_read(p)
    rows = []
    n_params = 0
    n_neurons = 0
    for name, n in ng.nodes.items():
        params = sum(int(np.size(v)) for k, v in vars(n).items()
                     if isinstance(v, np.ndarray) and k not in ("input_type", "output_type"))  # fmt: skip
        n_params += params if isinstance(n, (nir.Affine, nir.Linear, nir.Conv1d, nir.Conv2d)) else 0
        out_t = getattr(n, "output_type", None) or {}
        shape = [int(s) for s in np.ravel(next(iter(out_t.values()), []))] if out_t else []
        if isinstance(n, (nir.LIF, nir.CubaLIF, nir.IF, nir.LI)):
            n_neurons += int(np.prod(shape)) if shape else 0
        rows.append({"name": name, "type": type(n).__name__, "shape": shape, "params": params,
                     "neuroplast": _node_meta(n)})  # fmt: skip
    gm = _node_meta(ng)
    return {
        "path": str(p),
        "nir_version": _read_version(p),
        "written_by_neuroplast": bool(gm),
        "dt": gm.get("dt"),
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
