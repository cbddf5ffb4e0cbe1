"""Static cost of a graph per time step: parameters, MACs, synaptic ops, memory.

Definitions (per step, batch 1):
- ``macs``: multiply-accumulates of a dense evaluation.
- ``synops``: synaptic operations when the layer's input is spikes: each input spike
  costs its fan-out (``synops = rate * fan_out * n_in``); reported at the given input
  activity (default 100%, an upper bound; pass measured rates for an estimate).
- ``param_bytes``: weights at their quantized width (float32 when unquantized).
- ``state_bytes``: neuron membranes/currents and delay ring buffers (float32 or int32).
- ``act_bytes``: the layer's output activation buffer.
- ``event_macs``: the part of ``macs`` that an event-driven kernel does per input event,
  summed over a step at 100% input activity; its ``synops = rate * event_macs`` whatever
  kind feeds it, and ``macs - event_macs`` is the dense work it does every step (readout,
  requantization). 0 for every other kind.
- ``step_bytes``: memory an event-driven kernel moves every step whatever the events
  (its time-slot buffers), for a bandwidth bound.
- ``event_unit``: what ``event_macs`` counts: ``"taps"`` (scalar tap updates of a
  scatter, the default) or ``"chunks"`` (vector row-chunk updates of a pull path); the
  board estimate charges each at its own rate.

Per backend: a handler may add a ``"native"`` dict of the keys whose figures differ when
the Python runtime steps the node with the compiled extension (an op that runs another
algorithm there; or a function of no arguments returning that dict, called only when that
backend is asked for); ``cost(graph, backend="native")`` takes them over the handler's own,
as a profile's ``[cost.native]`` table does over ``[cost]``.

Each node kind has one handler in the :data:`COST` table (a target of the capability
matrix): ``fn(node, in_shapes, out_shape) -> dict`` with any of the keys ``params``,
``macs`` (dense work per step), ``event_macs`` (event-driven kinds: operations per
step at 100% input activity, scaled by the input rate), ``step_bytes``, ``param_bytes``
and ``state_bytes``. App node kinds register with ``@COST.register(Kind)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from neuroplast.errors import GraphError
from neuroplast.graph.graph import Graph
from neuroplast.graph.nodes import (
    IF,
    LI,
    LIF,
    Add,
    Conv1d,
    Conv2d,
    CubaLIF,
    Delay,
    DelayLinear,
    Flatten,
    Input,
    Linear,
    Node,
    ReLU,
    Scale,
    Threshold,
    _Pool2d,
)
from neuroplast.targets import Target, register_target

__all__ = ["COST", "COST_BACKENDS", "LayerCost", "cost", "total_cost"]


@dataclass(frozen=True)
class LayerCost:
    """Per-step cost of one node."""

    name: str
    kind: str
    out_shape: tuple[int, ...]
    params: int
    macs: int
    synops: int
    param_bytes: int
    state_bytes: int
    act_bytes: int
    event_macs: int = 0
    step_bytes: int = 0
    event_unit: str = "taps"


def _weight_bytes(node: Node, n: int) -> int:
    q = getattr(node, "weight_q", None)
    bits = q.bits if q is not None else 32
    return (n * bits + 7) // 8


COST = register_target(
    Target(
        "cost",
        "static cost model (neuroplast info / fit)",
        engine="analytic",
        hint="register a cost handler with @neuroplast.graph.cost.COST.register(Kind)",
    )
)


def _bias_size(node: Node) -> int:
    return 0 if node.bias is None else int(node.bias.size)


@COST.register(Linear)
def _linear(node: Linear, in_shapes: list, out_shape: tuple) -> dict:
    nb = _bias_size(node)
    return {
        "params": node.weight.size + nb,
        "macs": node.weight.size,
        "param_bytes": _weight_bytes(node, node.weight.size) + 4 * nb,
    }


@COST.register(DelayLinear)
def _delay_linear(node: DelayLinear, in_shapes: list, out_shape: tuple) -> dict:
    c = _linear(node, in_shapes, out_shape)
    depth = int(node.delay.max(initial=0)) + 1
    c["state_bytes"] = depth * node.weight.shape[1] * 4
    c["param_bytes"] += node.delay.size * (1 if depth <= 256 else 2)
    return c


@COST.register(Conv1d, Conv2d)
def _conv(node: Any, in_shapes: list, out_shape: tuple) -> dict:
    nb = _bias_size(node)
    return {
        "params": node.weight.size + nb,
        "macs": int(np.prod(out_shape)) * int(np.prod(node.weight.shape[1:])),
        "param_bytes": _weight_bytes(node, node.weight.size) + 4 * nb,
    }


@COST.register(_Pool2d)
def _pool(node: Any, in_shapes: list, out_shape: tuple) -> dict:
    return {"macs": int(np.prod(out_shape)) * node.kernel[0] * node.kernel[1]}


@COST.register(LIF, IF, LI, CubaLIF)
def _neuron(node: Any, in_shapes: list, out_shape: tuple) -> dict:
    params = sum(a.size for a in node.arrays().values())
    n_state = 2 if isinstance(node, CubaLIF) else 1  # CubaLIF: current and membrane
    return {
        "params": params,
        "param_bytes": 4 * params,
        "state_bytes": n_state * 4 * int(np.prod(out_shape)),
    }


@COST.register(Delay)
def _delay(node: Delay, in_shapes: list, out_shape: tuple) -> dict:
    depth = int(node.delay.max(initial=0)) + 1
    return {"state_bytes": depth * int(np.prod(out_shape)) * 4, "param_bytes": node.delay.size * 2}


@COST.register(Input, Flatten, ReLU, Add, Scale, Threshold)
def _free(node: Any, in_shapes: list, out_shape: tuple) -> dict:
    return {}


#: The Python runtime's kernel backends a cost can be asked for (``Runtime.backend``).
COST_BACKENDS = ("numpy", "native")


def cost(
    graph: Graph, input_rate: float | dict[str, float] = 1.0, backend: str = "numpy"
) -> list[LayerCost]:
    """Per-node costs in topological order.

    ``input_rate``: fraction of active inputs per step for spiking-input layers
    (one value, or per layer name). ``backend``: ``"numpy"`` (the handlers' own figures)
    or ``"native"`` (their ``"native"`` figures over those, where a handler gives them).

    Raises:
        UnsupportedError: a node kind without a cost handler (one line naming it).
        GraphError: an unknown ``backend``.
    """
    if backend not in COST_BACKENDS:
        raise GraphError(f"backend must be one of {', '.join(COST_BACKENDS)}, got {backend!r}")
    shapes = graph.shapes()
    out: list[LayerCost] = []
    for name in graph.topo_order():
        node = graph.nodes[name]
        preds = graph.predecessors(name)
        c = COST.handler(name, node)(node, [shapes[p] for p in preds], shapes[name])
        native = c.pop("native", None)
        if backend == "native" and native:
            c = {**c, **(native() if callable(native) else native)}
        event = int(c.get("event_macs", 0))
        params, macs = int(c.get("params", 0)), int(c.get("macs", 0)) + event
        osz = int(np.prod(shapes[name]))
        synops = 0
        rate = input_rate.get(name, 1.0) if isinstance(input_rate, dict) else float(input_rate)
        if event:  # an event-driven kernel: only its per-event work scales with the input
            synops = int(round(rate * event))
        elif macs and preds and graph.nodes[preds[0]].spiking:
            synops = int(round(rate * macs))
        out.append(
            LayerCost(
                name=name,
                kind=node.kind,
                out_shape=shapes[name],
                params=params,
                macs=macs,
                synops=synops,
                param_bytes=int(c.get("param_bytes", 0)),
                state_bytes=int(c.get("state_bytes", 0)),
                act_bytes=int(osz * 4),
                event_macs=event,
                step_bytes=int(c.get("step_bytes", 0)),
                event_unit=str(c.get("event_unit", "taps")),
            )
        )
    return out


def total_cost(graph: Graph, input_rate: float | dict[str, float] = 1.0) -> LayerCost:
    """Sum of :func:`cost` over all nodes (``act_bytes`` is the peak single buffer)."""
    rows = cost(graph, input_rate)
    return LayerCost(
        name="total",
        kind="",
        out_shape=(),
        params=sum(r.params for r in rows),
        macs=sum(r.macs for r in rows),
        synops=sum(r.synops for r in rows),
        param_bytes=sum(r.param_bytes for r in rows),
        state_bytes=sum(r.state_bytes for r in rows),
        act_bytes=max((r.act_bytes for r in rows), default=0),
        event_macs=sum(r.event_macs for r in rows),
        step_bytes=sum(r.step_bytes for r in rows),
    )
