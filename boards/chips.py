"""Spiking-chip mapping: one table of what each node kind uses on a neuromorphic chip, and
the one check that ``neuroplast fit`` (neuromorphic and SFQ profiles) and ``neuroplast
check --board`` both run.

:data:`CHIP` (a target of the capability matrix) holds per node kind ``fn(node, in_shape,
out_shape) -> Use``: its *role* on a chip (``neuron``, ``synapse``, ``routing``,
``delay``) and what it uses. :func:`check_graph` compares the sum with the board
profile's :class:`~neuroplast.boards.NeuromorphicLimits`, after the board's exporter
target (``nir``, or ``sfq``) has accepted every node. Rules (``Violation.rule``):

* ``target`` / ``kind``: the exporter or the chip has no such node kind.
* ``neuron-type``: a neuron kind must be in ``neuron_types``; ``delays``: Delay and
  DelayLinear need ``synaptic_delays``.
* ``cores`` / ``neurons``: a layer of n neurons takes ``ceil(n / neurons_per_core)`` cores
  (on a one-core chip such as Xylo all layers share it); totals within ``cores`` and
  ``max_neurons``.
* ``fan-in``: synapses into one neuron (non-zero weights of a Linear row; ``in/groups *
  kernel`` for a convolution, the kernel area for a pool) within ``fan_in``.
* ``fan-out``: a limit of at most 8 means *destination layers per neuron layer* (Speck);
  a larger one *synapses per source neuron* (Xylo's hidden fan-out; input channels are
  not counted).
* ``weight-bits`` / ``state-bits``: quantization metadata within the chip's widths; float
  weights are a warning (quantize before mapping).
* ``inputs`` / ``outputs``: input channels and output neurons within ``max_inputs`` /
  ``max_outputs``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

import numpy as np

from neuroplast.boards.profile import BoardProfile, load_profile
from neuroplast.errors import BoardError
from neuroplast.graph import nodes as N
from neuroplast.targets import CheckContext, Target, get_target, register_target

__all__ = ["CHIP", "Use", "Violation", "ChipReport", "chip_target", "check_graph"]

CHIP = register_target(
    Target(
        "chip",
        "spiking-chip mapping (neuroplast check --board, fit)",
        engine="board profile [neuromorphic] limits",
        hint="a spiking chip maps neurons, synapses, routing and delays only",
    )
)


@dataclass(frozen=True)
class Use:
    """What one node uses on a chip. ``fan_in``: synapses into one target element;
    ``fan_out``: synapses out of one source element; ``weight_q``/``state_q``: the
    quantization of its weights / membrane (``weighted``: it has weights at all)."""

    role: str
    neurons: int = 0
    fan_in: int = 0
    fan_out: int = 0
    weighted: bool = False
    weight_q: Any = None
    state_q: Any = None


def _neuron_ok(name: str, node: Any, ctx: CheckContext) -> str | None:
    lim = ctx.options.get("limits")
    if lim is None or node.kind in lim.neuron_types:
        return None
    return f"{node.kind} is not a neuron of this chip (it has {', '.join(lim.neuron_types)})"


def _delays_ok(name: str, node: Any, ctx: CheckContext) -> str | None:
    lim = ctx.options.get("limits")
    return None if lim is None or lim.synaptic_delays else "the chip has no synaptic delays"


@CHIP.register(N.LIF, N.CubaLIF, N.IF, N.LI, N.Threshold, N.ReLU, check=_neuron_ok,
               note="neuron, if in the profile's neuron_types")  # fmt: skip
def _neuron(node: Any, in_shape: tuple, out_shape: tuple) -> Use:
    return Use("neuron", neurons=int(np.prod(out_shape)), state_q=getattr(node, "v_q", None))


def _dense(node: Any) -> Use:
    nz = np.asarray(node.weight) != 0
    return Use("synapse", fan_in=int(nz.sum(axis=1).max(initial=0)),
               fan_out=int(nz.sum(axis=0).max(initial=0)), weighted=True, weight_q=node.weight_q)  # fmt: skip


CHIP.register(N.Linear, note="synapses (non-zero weights)")(lambda node, i, o: _dense(node))
CHIP.register(N.DelayLinear, check=_delays_ok, note="synapses with delays, if the chip has them")(
    lambda node, i, o: _dense(node)
)


@CHIP.register(N.Conv1d, N.Conv2d, note="shared-weight synapses")
def _conv(node: Any, in_shape: tuple, out_shape: tuple) -> Use:
    w = np.asarray(node.weight)
    k = int(np.prod(w.shape[2:]))
    return Use("synapse", fan_in=int(w.shape[1]) * k, fan_out=w.shape[0] // node.groups * k,
               weighted=True, weight_q=node.weight_q)  # fmt: skip


@CHIP.register(N.SumPool2d, N.AvgPool2d, note="fixed synapses")
def _pool(node: Any, in_shape: tuple, out_shape: tuple) -> Use:
    k = node.kernel[0] * node.kernel[1]
    return Use("synapse", fan_in=k, fan_out=k)


CHIP.register(N.Input, N.Flatten, N.Add, note="routing")(lambda node, i, o: Use("routing"))
CHIP.register(N.Delay, check=_delays_ok, note="axonal delays, if the chip has them")(
    lambda node, i, o: Use("delay")
)
CHIP.refuse(N.MaxPool2d, "spiking chips have no max pooling", "use AvgPool2d/SumPool2d")
CHIP.refuse(N.Scale, "a chip has no per-neuron scale", "fold the scale into the weights before it")


@dataclass(frozen=True)
class Violation:
    """One finding: ``severity`` is ``"error"`` (does not fit) or ``"warning"``;
    ``node`` is ``"*"`` for the graph as a whole."""

    severity: str
    rule: str
    node: str
    detail: str
    kind: str = ""

    def __str__(self) -> str:
        where = "the graph" if self.node == "*" else f"node {self.node!r} ({self.kind})"
        return f"{where}: {self.detail}"


@dataclass
class ChipReport:
    """Result of :func:`check_graph`; ``ok`` when there is no error-severity finding."""

    board: str
    violations: list[Violation] = field(default_factory=list)
    layers: list[dict[str, Any]] = field(default_factory=list)
    totals: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def errors(self) -> list[Violation]:
        return [v for v in self.violations if v.severity == "error"]

    @property
    def warnings(self) -> list[Violation]:
        return [v for v in self.violations if v.severity == "warning"]

    def to_dict(self) -> dict[str, Any]:
        return {"board": self.board, "ok": self.ok, "layers": self.layers, "totals": self.totals,
                "violations": [asdict(v) for v in self.violations]}  # fmt: skip


def chip_target(prof: BoardProfile) -> str:
    """The exporter target that reaches a spiking board: ``sfq`` or ``nir``."""
    return "sfq" if prof.kind == "sfq" else "nir"


def _profile(board: str | BoardProfile) -> tuple[BoardProfile, Any]:
    prof = board if isinstance(board, BoardProfile) else load_profile(board)
    if prof.neuromorphic is None:
        raise BoardError(
            f"board {prof.name!r} ({prof.kind}) has no neuromorphic limits; the chip check needs a "
            "spiking chip profile such as xylo, speck or loihi2"
        )
    return prof, prof.neuromorphic


def check_graph(graph: Any, board: str | BoardProfile) -> ChipReport:
    """Check a neuroplast Graph against ``board``'s exporter and neuromorphic limits (see
    the module docstring for the rules)."""
    prof, lim = _profile(board)
    rep = ChipReport(board=prof.name)
    add = rep.violations.append
    found = get_target(chip_target(prof)).refusals(graph)
    for r in found:  # the exporter cannot even write it: nothing else is worth checking
        hint = f"; {r.hint}" if r.hint else ""
        add(
            Violation(
                "error", "target", r.node, f"cannot run on {r.target}: {r.reason}{hint}", r.kind
            )
        )
    if found:
        return rep
    for r in CHIP.refusals(graph, limits=lim):
        h = CHIP.lookup(type(graph.nodes[r.node]))
        rule = "kind" if h is None else ("delays" if h.check is _delays_ok else "neuron-type")
        add(Violation("error", rule, r.node, r.reason + (f"; {r.hint}" if r.hint else ""), r.kind))
    shapes = graph.shapes()
    uses: dict[str, Use] = {}
    for name in graph.topo_order():
        node = graph.nodes[name]
        h = CHIP.lookup(type(node))
        if h is not None:
            preds = graph.predecessors(name)
            uses[name] = h.fn(node, shapes[preds[0]] if preds else (), shapes[name])
    neurons = [n for n, u in uses.items() if u.role == "neuron"]
    total = sum(uses[n].neurons for n in neurons)
    per_layer = {n: math.ceil(uses[n].neurons / lim.neurons_per_core) for n in neurons}
    # one-core chips (Xylo) host every layer in that core; else one layer per core group
    cores = math.ceil(total / lim.neurons_per_core) if lim.cores == 1 else sum(per_layer.values())
    for name, u in uses.items():
        node = graph.nodes[name]
        err = partial(_error, add, name, node.kind)
        if u.role == "neuron":
            rep.layers.append({"node": name, "kind": node.kind, "neurons": u.neurons,
                               "cores": per_layer[name]})  # fmt: skip
            if u.state_q is not None and u.state_q.bits > lim.state_bits:
                err(
                    "state-bits",
                    f"membrane is {u.state_q.bits}-bit, chip state is {lim.state_bits}-bit",
                )
        if u.fan_in > lim.fan_in:
            err("fan-in", f"a neuron receives {u.fan_in} synapses, limit {lim.fan_in}")
        # input channels are dense on these chips; the synapse limit is on hidden neurons
        fan_out_syn = lim.fan_out is not None and lim.fan_out > 8 and u.fan_out > lim.fan_out
        if fan_out_syn and _nearest_neuron_upstream(graph, name) is not None:
            err("fan-out", f"a source neuron drives {u.fan_out} synapses, limit {lim.fan_out}")
        if u.weighted and u.weight_q is None:
            add(Violation("warning", "weight-bits", name, "float weights without quantization "
                          f"metadata; quantize to <= {lim.weight_bits} bits", node.kind))  # fmt: skip
        elif u.weighted and u.weight_q.bits > lim.weight_bits:
            err("weight-bits", f"{u.weight_q.bits}-bit weights, chip supports {lim.weight_bits}")
    if lim.fan_out is not None and lim.fan_out <= 8:  # destination layers per neuron layer
        for name in neurons:
            direct = [m for m in neurons if _nearest_neuron_upstream(graph, m) == name]
            if len(direct) > lim.fan_out:
                add(Violation("error", "fan-out", name, f"feeds {len(direct)} layers, limit "
                              f"{lim.fan_out}", graph.nodes[name].kind))  # fmt: skip
    if cores > lim.cores:
        add(Violation("error", "cores", "*", f"needs {cores} cores, chip has {lim.cores}"))
    if total > lim.max_neurons:
        add(Violation("error", "neurons", "*", f"{total} neurons, chip holds {lim.max_neurons}"))
    n_in = sum(int(np.prod(shapes[i])) for i in graph.inputs)
    if lim.max_inputs is not None and n_in > lim.max_inputs:
        add(Violation("error", "inputs", "*", f"{n_in} input channels, chip has {lim.max_inputs}"))
    n_out = sum(int(np.prod(shapes[o])) for o in graph.outputs)
    if lim.max_outputs is not None and n_out > lim.max_outputs:
        add(Violation("error", "outputs", "*", f"{n_out} outputs, chip has {lim.max_outputs}"))
    rep.totals = {"neurons": total, "cores": cores, "inputs": n_in, "outputs": n_out,
                  "limits": {"cores": lim.cores, "neurons": lim.max_neurons, "fan_in": lim.fan_in,
                             "fan_out": lim.fan_out, "weight_bits": lim.weight_bits}}  # fmt: skip
    return rep


def _error(add: Any, name: str, kind: str, rule: str, detail: str) -> None:
    add(Violation("error", rule, name, detail, kind))


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
