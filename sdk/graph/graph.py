"""The Graph: named nodes, directed edges, a time step, and (de)serialization.

``Graph.to_dict()`` gives a JSON-able dict; arrays are either inlined (default) or
moved into a caller-supplied ``arrays`` dict and referenced by key (the bundle puts
them in ``weights.npz``). ``Graph.from_dict`` validates everything it reads and raises
:class:`GraphError` naming the node and field.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from neuroplast.errors import GraphError
from neuroplast.graph.nodes import NODE_KINDS, Input, Node
from neuroplast.quant import QuantSpec

__all__ = ["Graph", "GRAPH_FORMAT", "GRAPH_VERSION"]

GRAPH_FORMAT = "neuroplast-graph"
GRAPH_VERSION = 1
_MAX_NODES = 100_000


@dataclass(frozen=True, eq=False)
class Graph:
    """A directed acyclic graph of IR nodes.

    Attributes:
        nodes: mapping name -> node (insertion order is kept).
        edges: (src, dst) pairs; a node with several inputs takes them in edge order.
        dt: simulation time step in seconds.
        outputs: output node names; default: the sinks in insertion order.
    """

    nodes: dict[str, Node]
    edges: list[tuple[str, str]]
    dt: float = 1e-3
    outputs: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", dict(self.nodes))
        object.__setattr__(self, "edges", [(str(a), str(b)) for a, b in self.edges])
        if not self.outputs:
            has_out = {a for a, _ in self.edges}
            object.__setattr__(self, "outputs", tuple(n for n in self.nodes if n not in has_out))
        else:
            object.__setattr__(self, "outputs", tuple(self.outputs))
        self.validate()

    # ------------------------------------------------------------------ structure
    @classmethod
    def sequential(cls, layers: list[tuple[str, Node]], dt: float = 1e-3) -> Graph:
        """Chain ``[(name, node), ...]`` in order."""
        names = [n for n, _ in layers]
        return cls(dict(layers), list(zip(names[:-1], names[1:])), dt=dt)

    @property
    def inputs(self) -> tuple[str, ...]:
        return tuple(n for n, node in self.nodes.items() if isinstance(node, Input))

    def predecessors(self, name: str) -> list[str]:
        return [a for a, b in self.edges if b == name]

    def successors(self, name: str) -> list[str]:
        return [b for a, b in self.edges if a == name]

    def topo_order(self) -> list[str]:
        """Nodes in a topological order (Kahn, stable w.r.t. insertion order)."""
        indeg = {n: 0 for n in self.nodes}
        for _, b in self.edges:
            indeg[b] += 1
        order: list[str] = []
        ready = [n for n in self.nodes if indeg[n] == 0]
        succ: dict[str, list[str]] = {n: [] for n in self.nodes}
        for a, b in self.edges:
            succ[a].append(b)
        while ready:
            n = ready.pop(0)
            order.append(n)
            for m in succ[n]:
                indeg[m] -= 1
                if indeg[m] == 0:
                    ready.append(m)
        if len(order) != len(self.nodes):
            cyc = sorted(n for n, d in indeg.items() if d > 0)
            raise GraphError(f"graph has a cycle through nodes {cyc}")
        return order

    def validate(self) -> None:
        """Check names, node types, edges, arity, and shapes; raise GraphError."""
        if not self.nodes:
            raise GraphError("graph has no nodes")
        if len(self.nodes) > _MAX_NODES:
            raise GraphError(f"graph has {len(self.nodes)} nodes (limit {_MAX_NODES})")
        if not (isinstance(self.dt, (int, float)) and np.isfinite(self.dt) and self.dt > 0):
            raise GraphError(f"graph dt must be a positive number of seconds, got {self.dt!r}")
        for name, node in self.nodes.items():
            if not isinstance(name, str) or not name or "/" in name:
                raise GraphError(f"node name {name!r} must be a non-empty string without '/'")
            if not isinstance(node, Node):
                raise GraphError(f"node {name!r} is a {type(node).__name__}, not a graph Node")
        seen = set()
        for a, b in self.edges:
            if a not in self.nodes:
                raise GraphError(f"edge ({a!r} -> {b!r}): source node {a!r} does not exist")
            if b not in self.nodes:
                raise GraphError(f"edge ({a!r} -> {b!r}): target node {b!r} does not exist")
            if (a, b) in seen and self.nodes[b].n_inputs < 2:
                raise GraphError(f"edge ({a!r} -> {b!r}) is duplicated")
            seen.add((a, b))
        for name, node in self.nodes.items():
            k = len(self.predecessors(name))
            if k != node.n_inputs:
                raise GraphError(
                    f"node {name!r} ({node.kind}) needs {node.n_inputs} input edge(s), has {k}"
                )
        if not self.inputs:
            raise GraphError("graph has no Input node")
        for o in self.outputs:
            if o not in self.nodes:
                raise GraphError(f"output {o!r} is not a node")
        self.shapes()  # shape inference validates every node against its inputs

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Output shape of every node (batch/time axes excluded)."""
        out: dict[str, tuple[int, ...]] = {}
        for name in self.topo_order():
            node = self.nodes[name]
            ins = [out[p] for p in self.predecessors(name)]
            try:
                out[name] = tuple(int(s) for s in node.out_shape(ins))
            except GraphError as e:
                raise GraphError(f"node {name!r} ({node.kind}): {e}") from None
        return out

    # ------------------------------------------------------------- serialization
    def to_dict(self, arrays: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
        """JSON-able dict. With ``arrays``, arrays go there under ``"node/field"`` keys."""
        nodes: dict[str, Any] = {}
        for name, node in self.nodes.items():
            d: dict[str, Any] = {"kind": node.kind}
            for f in fields(node):
                v = getattr(node, f.name)
                kind = f.metadata.get("kind")
                if v is None:
                    continue
                if kind == "array":
                    if arrays is None:
                        d[f.name] = {
                            "$ndarray": {
                                "dtype": v.dtype.str,
                                "shape": list(v.shape),
                                "data": v.ravel().tolist(),
                            }
                        }
                    else:
                        key = f"{name}/{f.name}"
                        arrays[key] = v
                        d[f.name] = {"$array": key}
                elif kind == "quant":
                    d[f.name] = v.to_dict()
                elif kind == "tuple":
                    d[f.name] = list(v)
                else:
                    d[f.name] = v
            nodes[name] = d
        return {
            "format": GRAPH_FORMAT,
            "version": GRAPH_VERSION,
            "dt": self.dt,
            "nodes": nodes,
            "edges": [list(e) for e in self.edges],
            "outputs": list(self.outputs),
        }

    @classmethod
    def from_dict(cls, d: Any, arrays: dict[str, np.ndarray] | None = None) -> Graph:
        """Inverse of :meth:`to_dict`; validates types and references."""
        if not isinstance(d, dict):
            raise GraphError(f"graph must be a mapping, got {type(d).__name__}")
        if d.get("format") != GRAPH_FORMAT:
            raise GraphError(f"graph.format must be {GRAPH_FORMAT!r}, got {d.get('format')!r}")
        if d.get("version") != GRAPH_VERSION:
            raise GraphError(
                f"graph.version {d.get('version')!r} unsupported (this is {GRAPH_VERSION})"
            )
        raw_nodes = d.get("nodes")
        if not isinstance(raw_nodes, dict):
            raise GraphError("graph.nodes must be a mapping")
        nodes: dict[str, Node] = {}
        for name, nd in raw_nodes.items():
            nodes[name] = _node_from_dict(name, nd, arrays)
        edges = d.get("edges")
        if not isinstance(edges, list) or not all(
            isinstance(e, list) and len(e) == 2 and all(isinstance(x, str) for x in e)
            for e in edges
        ):
            raise GraphError("graph.edges must be a list of [src, dst] string pairs")
        outputs = d.get("outputs", [])
        if not isinstance(outputs, list) or not all(isinstance(o, str) for o in outputs):
            raise GraphError("graph.outputs must be a list of node names")
        dt = d.get("dt", 1e-3)
        if isinstance(dt, bool) or not isinstance(dt, (int, float)):
            raise GraphError(f"graph.dt must be a number, got {dt!r}")
        return cls(nodes, [tuple(e) for e in edges], dt=float(dt), outputs=tuple(outputs))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def fingerprint(self) -> str:
        """sha256 of the canonical JSON: identifies the graph (e.g. for saved state)."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()

    def replace_node(self, name: str, node: Node) -> Graph:
        """A copy with one node replaced (e.g. learned weights written back)."""
        if name not in self.nodes:
            raise GraphError(f"no node named {name!r}")
        nodes = dict(self.nodes)
        nodes[name] = node
        return Graph(nodes, list(self.edges), dt=self.dt, outputs=self.outputs)


def _node_from_dict(name: str, nd: Any, arrays: dict[str, np.ndarray] | None) -> Node:
    if not isinstance(nd, dict):
        raise GraphError(f"node {name!r} must be a mapping")
    kind = nd.get("kind")
    cls = NODE_KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise GraphError(f"node {name!r}: unknown kind {kind!r} (known: {sorted(NODE_KINDS)})")
    known = {f.name: f for f in fields(cls)}
    unknown = set(nd) - set(known) - {"kind"}
    if unknown:
        raise GraphError(f"node {name!r} ({kind}): unknown fields {sorted(unknown)}")
    kwargs: dict[str, Any] = {}
    for fname, f in known.items():
        if fname not in nd:
            continue
        v = nd[fname]
        fk = f.metadata.get("kind")
        if fk == "array":
            kwargs[fname] = _array_from(name, fname, v, arrays, f.metadata["dtype"])
        elif fk == "quant":
            try:
                kwargs[fname] = QuantSpec.from_dict(v)
            except GraphError as e:
                raise GraphError(f"node {name!r} field {fname!r}: {e}") from None
        elif fk == "tuple":
            if not isinstance(v, list) or not all(
                isinstance(x, int) and not isinstance(x, bool) for x in v
            ):
                raise GraphError(f"node {name!r} field {fname!r} must be a list of integers")
            kwargs[fname] = tuple(v)
        else:
            kwargs[fname] = v
    for fname, f in known.items():  # simple scalar fields: check the type against the default
        if fname in kwargs and f.metadata.get("kind") is None and f.default is not None:
            want = type(f.default)
            got = kwargs[fname]
            if want is int and (isinstance(got, bool) or not isinstance(got, int)):
                raise GraphError(f"node {name!r} field {fname!r} must be an integer")
            if want is str and not isinstance(got, str):
                raise GraphError(f"node {name!r} field {fname!r} must be a string")
            if want is float and (isinstance(got, bool) or not isinstance(got, (int, float))):
                raise GraphError(f"node {name!r} field {fname!r} must be a number")
    try:
        return cls(**kwargs)
    except GraphError as e:
        raise GraphError(f"node {name!r}: {e}") from None
    except (TypeError, ValueError) as e:
        raise GraphError(f"node {name!r} ({kind}): {e}") from None


def _array_from(name: str, fname: str, v: Any, arrays: dict | None, dtype: str) -> np.ndarray:
    if isinstance(v, dict) and "$array" in v:
        key = v["$array"]
        if arrays is None or not isinstance(key, str) or key not in arrays:
            raise GraphError(f"node {name!r} field {fname!r}: array {key!r} not found")
        arr = arrays[key]
    elif isinstance(v, dict) and "$ndarray" in v:
        spec = v["$ndarray"]
        try:
            shape = tuple(int(s) for s in spec["shape"])
            arr = np.asarray(spec["data"], dtype=np.dtype(spec["dtype"]))
            if any(s < 0 for s in shape) or arr.size != int(np.prod(shape)):
                raise ValueError(f"{arr.size} values for shape {shape}")
            arr = arr.reshape(shape)
        except (KeyError, TypeError, ValueError) as e:
            raise GraphError(f"node {name!r} field {fname!r}: bad inline array: {e}") from None
    else:
        raise GraphError(f"node {name!r} field {fname!r} must be an array reference")
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "biuf":
        raise GraphError(f"node {name!r} field {fname!r}: array is not numeric")
    return arr
