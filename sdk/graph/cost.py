"""Static cost of a graph per time step: parameters, MACs, synaptic ops, memory.

Definitions (per step, batch 1):
- ``macs``: multiply-accumulates of a dense evaluation.
- ``synops``: synaptic operations when the layer's input is spikes: each input spike
  costs its fan-out (``synops = rate * fan_out * n_in``); reported at the given input
  activity (default 100%, an upper bound; pass measured rates for an estimate).
- ``param_bytes``: weights at their quantized width (float32 when unquantized).
- ``state_bytes``: neuron membranes/currents and delay ring buffers (float32 or int32).
- ``act_bytes``: the layer's output activation buffer.

A node kind outside the core (an app's own) describes itself with a method
``step_cost(in_shapes, out_shape) -> dict`` with any of the keys ``params``, ``macs``,
``param_bytes``, ``state_bytes`` (``macs`` = expected synaptic operations per step).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neuroplast.graph.graph import Graph
from neuroplast.graph.nodes import (
    IF,
    LI,
    LIF,
    Conv1d,
    Conv2d,
    CubaLIF,
    Delay,
    DelayLinear,
    Linear,
    Node,
    Threshold,
    _Pool2d,
)

__all__ = ["LayerCost", "cost", "total_cost"]

_SPIKING = (LIF, CubaLIF, IF, Threshold)


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


def _weight_bytes(node: Node, n: int) -> int:
    q = getattr(node, "weight_q", None)
    bits = q.bits if q is not None else 32
    return (n * bits + 7) // 8


def cost(graph: Graph, input_rate: float | dict[str, float] = 1.0) -> list[LayerCost]:
    """Per-node costs in topological order.

    ``input_rate``: fraction of active inputs per step for spiking-input layers
    (one value, or per layer name).
    """
    shapes = graph.shapes()
    out: list[LayerCost] = []
    for name in graph.topo_order():
        node = graph.nodes[name]
        preds = graph.predecessors(name)
        osz = int(np.prod(shapes[name]))
        params = macs = state = 0
        pbytes = 0
        if isinstance(node, (Linear, DelayLinear)):
            params = node.weight.size + (node.bias.size if node.bias is not None else 0)
            macs = node.weight.size
            pbytes = _weight_bytes(node, node.weight.size) + 4 * (
                node.bias.size if node.bias is not None else 0
            )
            if isinstance(node, DelayLinear):
                depth = int(node.delay.max(initial=0)) + 1
                state = depth * node.weight.shape[1] * 4
                pbytes += node.delay.size * (1 if depth <= 256 else 2)
        elif isinstance(node, (Conv1d, Conv2d)):
            params = node.weight.size + (node.bias.size if node.bias is not None else 0)
            per_out = int(np.prod(node.weight.shape[1:]))
            macs = osz * per_out
            pbytes = _weight_bytes(node, node.weight.size) + 4 * (
                node.bias.size if node.bias is not None else 0
            )
        elif isinstance(node, _Pool2d):
            macs = osz * node.kernel[0] * node.kernel[1]
        elif isinstance(node, (LIF, IF, LI)):
            state = osz * 4
            params = sum(a.size for a in node.arrays().values())
            pbytes = params * 4
        elif isinstance(node, CubaLIF):
            state = 2 * osz * 4
            params = sum(a.size for a in node.arrays().values())
            pbytes = params * 4
        elif isinstance(node, Delay):
            state = (int(node.delay.max(initial=0)) + 1) * osz * 4
            pbytes = node.delay.size * 2
        hook = getattr(node, "step_cost", None)
        if callable(hook):  # app-defined node kinds describe their own cost
            in_shapes = [shapes[p] for p in preds]
            c = hook(in_shapes, shapes[name])
            params, macs = int(c.get("params", 0)), int(c.get("macs", 0))
            state, pbytes = int(c.get("state_bytes", 0)), int(c.get("param_bytes", 0))
        synops = 0
        if macs and preds and isinstance(graph.nodes[preds[0]], _SPIKING):
            rate = input_rate.get(name, 1.0) if isinstance(input_rate, dict) else float(input_rate)
            synops = int(round(rate * macs))
        out.append(
            LayerCost(
                name=name,
                kind=node.kind,
                out_shape=shapes[name],
                params=int(params),
                macs=int(macs),
                synops=synops,
                param_bytes=int(pbytes),
                state_bytes=int(state),
                act_bytes=int(osz * 4),
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
    )
