"""Chip-constraint checker for NIR models: does this network fit board X?

:func:`check_nir` reads a ``.nir`` file (or takes a Graph), gathers per-layer
numbers and compares them with the board's :class:`~neuroplast.boards.NeuromorphicLimits`
(from ``neuroplast.boards.load_profile``: ``boards/profiles/<name>.toml``). Rules:

* ``neuron-type``: every spiking node kind must be in ``neuron_types``.
* ``cores`` / ``neurons``: a layer of n neurons takes ``ceil(n / neurons_per_core)``
  cores (on a one-core chip such as Xylo all layers share the core); the sum must fit
  ``cores`` and the neuron total ``max_neurons``.
* ``fan-in``: synapses into one neuron (non-zero weights of a Linear row; ``in/groups *
  kernel`` for a convolution) must not exceed ``fan_in``.
* ``fan-out``: a limit of at most 8 is read as *destination layers per layer* (Speck's
  definition); a larger one as *synapses per hidden neuron* (Xylo's hidden fan-out;
  synapses from input channels are not counted).
* ``weight-bits`` / ``state-bits``: quantization metadata must not exceed the chip's
  widths; float weights without metadata are a warning (quantize before mapping).
* ``delays``: Delay/DelayLinear need ``synaptic_delays``.
* ``inputs`` / ``outputs``: input width and output neurons within ``max_inputs`` /
  ``max_outputs``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neuroplast.errors import BoardError

__all__ = ["Violation", "CheckReport", "check_nir", "check_graph"]

_WEIGHTED = ("Linear", "Conv1d", "Conv2d", "DelayLinear")


@dataclass(frozen=True)
class Violation:
    """One finding: ``severity`` is ``"error"`` (does not fit) or ``"warning"``."""

    severity: str
    rule: str
    node: str
    detail: str


@dataclass
class CheckReport:
    """Result of :func:`check_graph`; ``ok`` when there is no error-severity finding."""

    board: str
    violations: list[Violation] = field(default_factory=list)
    layers: list[dict[str, Any]] = field(default_factory=list)
    totals: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not any(v.severity == "error" for v in self.violations)

    def to_dict(self) -> dict[str, Any]:
        return {
            "board": self.board,
            "ok": self.ok,
            "violations": [v.__dict__ for v in self.violations],
            "layers": self.layers,
            "totals": self.totals,
        }


def _limits(board: str) -> Any:
    from neuroplast.boards import load_profile

    prof = load_profile(board)
    if prof.neuromorphic is None:
        raise BoardError(
            f"board {board!r} ({prof.kind}) has no neuromorphic limits; the NIR check needs a "
            "spiking chip profile such as xylo, speck or loihi2"
        )
    return prof.neuromorphic


def check_nir(path: str | os.PathLike, board: str) -> CheckReport:
    """Read a ``.nir`` file and check it against ``board``."""
    from neuroplast.quantize.nir import read

    return check_graph(read(path), board)


def check_graph(graph: Any, board: str) -> CheckReport:
    """Check a neuroplast Graph against ``board``'s neuromorphic limits."""
    lim = _limits(board)
    rep = CheckReport(board=board)
    shapes = graph.shapes()
    order = graph.topo_order()
    add = rep.violations.append

    cores_used = 0
    neurons_total = 0
    neuron_layers: list[str] = []
    for name in order:
        node = graph.nodes[name]
        kind = node.kind
        n = int(np.prod(shapes[name]))
        if node.neuron:
            neuron_layers.append(name)
            neurons_total += n
            cores = math.ceil(n / lim.neurons_per_core)
            # one-core chips (Xylo) host every layer in that core; else one layer per core group
            cores_used = (
                math.ceil((neurons_total) / lim.neurons_per_core)
                if lim.cores == 1
                else cores_used + cores
            )
            rep.layers.append({"node": name, "kind": kind, "neurons": n, "cores": cores})
            if kind not in lim.neuron_types:
                add(Violation("error", "neuron-type", name,
                              f"{kind} is not supported (chip has {list(lim.neuron_types)})"))  # fmt: skip
            vq = getattr(node, "v_q", None)
            if vq is not None and vq.bits > lim.state_bits:
                add(Violation("error", "state-bits", name,
                              f"membrane is {vq.bits}-bit, chip state is {lim.state_bits}-bit"))  # fmt: skip
        if kind in ("Delay", "DelayLinear") and not lim.synaptic_delays:
            add(Violation("error", "delays", name, "the chip has no synaptic/axonal delays"))
        if kind in _WEIGHTED:
            w = np.asarray(node.weight)
            if kind in ("Linear", "DelayLinear"):
                fan_in = int((w != 0).sum(axis=1).max(initial=0))
                fan_out_syn = int((w != 0).sum(axis=0).max(initial=0))
            else:
                fan_in = int(np.prod(w.shape[1:]))
                fan_out_syn = int(w.shape[0] * np.prod(w.shape[2:]))
            if fan_in > lim.fan_in:
                add(Violation("error", "fan-in", name,
                              f"a neuron receives {fan_in} synapses, limit {lim.fan_in}"))  # fmt: skip
            from_neurons = _nearest_neuron_upstream(graph, name) is not None
            if (
                from_neurons  # input channels are dense on these chips; the limit is hidden fan-out
                and lim.fan_out is not None
                and lim.fan_out > 8
                and fan_out_syn > lim.fan_out
            ):
                add(Violation("error", "fan-out", name,
                              f"a source neuron drives {fan_out_syn} synapses, limit {lim.fan_out}"))  # fmt: skip
            wq = getattr(node, "weight_q", None)
            if wq is None:
                add(Violation("warning", "weight-bits", name,
                              f"float weights without quantization metadata; quantize to "
                              f"<= {lim.weight_bits} bits before mapping"))  # fmt: skip
            elif wq.bits > lim.weight_bits:
                add(Violation("error", "weight-bits", name,
                              f"{wq.bits}-bit weights, chip supports {lim.weight_bits}"))  # fmt: skip
    # layer-level fan-out (destination layers per neuron layer)
    if lim.fan_out is not None and lim.fan_out <= 8:
        for name in neuron_layers:
            direct = [m for m in neuron_layers if _nearest_neuron_upstream(graph, m) == name]
            if len(direct) > lim.fan_out:
                add(Violation("error", "fan-out", name,
                              f"feeds {len(direct)} layers, limit {lim.fan_out}"))  # fmt: skip
    if cores_used > lim.cores:
        add(Violation("error", "cores", "*", f"needs {cores_used} cores, chip has {lim.cores}"))
    if neurons_total > lim.max_neurons:
        add(Violation("error", "neurons", "*",
                      f"{neurons_total} neurons, chip holds {lim.max_neurons}"))  # fmt: skip
    n_in = sum(int(np.prod(shapes[i])) for i in graph.inputs)
    if lim.max_inputs is not None and n_in > lim.max_inputs:
        add(Violation("error", "inputs", ",".join(graph.inputs),
                      f"{n_in} input channels, chip has {lim.max_inputs}"))  # fmt: skip
    n_out = sum(int(np.prod(shapes[o])) for o in graph.outputs)
    if lim.max_outputs is not None and n_out > lim.max_outputs:
        add(Violation("error", "outputs", ",".join(graph.outputs),
                      f"{n_out} output neurons, chip has {lim.max_outputs}"))  # fmt: skip
    rep.totals = {"neurons": neurons_total, "cores": cores_used, "inputs": n_in, "outputs": n_out,
                  "limits": {"cores": lim.cores, "neurons": lim.max_neurons, "fan_in": lim.fan_in,
                             "fan_out": lim.fan_out, "weight_bits": lim.weight_bits}}  # fmt: skip
    return rep


def _nearest_neuron_upstream(graph: Any, node: str) -> str | None:
    stack, seen = list(graph.predecessors(node)), set()
    while stack:
        p = stack.pop(0)
        if graph.nodes[p].neuron:
            return p
        if p not in seen:
            seen.add(p)
            stack.extend(graph.predecessors(p))
    return None
