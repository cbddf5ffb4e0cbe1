"""Graph-only writers: the Graph IR as standard files, with no torch and no toolchain.

* :mod:`neuroplast.export.tflite` - int8 ``.tflite`` flatbuffer (the ``tflite`` target;
  needs ``ai-edge-litert`` and ``flatbuffers``: ``pip install 'neuroplast[tflite]'``);
* :mod:`neuroplast.export.onnx` - ONNX QDQ model (the ``onnx`` target; needs ``onnx``:
  ``pip install 'neuroplast[onnx]'``).

Each writer is a :class:`~neuroplast.targets.Target`: one handler per node kind plus
parameter checks that refuse exactly what the format cannot express, so a model is
refused in one line before anything is written. Importing these modules never imports
their format library (only writing does), so the capability matrix knows them anywhere.

This module holds what both writers share: the activation-width check, the whole-graph
conditions and the atomic file write.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from neuroplast.targets import CheckContext, CheckFn, Refusal, Target

__all__ = [
    "SNN_HINT",
    "refuse_stateful",
    "all_checks",
    "activation_problem",
    "int_weights",
    "input_count",
    "write_atomic",
]

SNN_HINT = "export NIR for neuromorphic runtimes, or run it in the neuroplast runtime"


def refuse_stateful(target: Target, fmt: str) -> None:
    """Refuse the spiking and stateful kinds: a ``fmt`` model is a stateless function."""
    from neuroplast.graph.nodes import IF, LI, LIF, CubaLIF, Delay, DelayLinear, Threshold

    for cls in (LIF, IF, CubaLIF):
        target.refuse(cls, f"{fmt} has no stateful spiking neuron op", SNN_HINT)
    target.refuse(LI, f"{fmt} has no stateful (leaky integrator) op", SNN_HINT)
    target.refuse(Threshold, f"the {fmt} writer has no spike (threshold) op", SNN_HINT)
    for cls in (Delay, DelayLinear):
        target.refuse(cls, f"{fmt} graphs keep no state between calls (no delay lines)", SNN_HINT)


def all_checks(*checks: CheckFn) -> CheckFn:
    """One check made of several: the first reason found, or ``None``."""

    def check(name: str, node: Any, ctx: CheckContext) -> str | None:
        for c in checks:
            why = c(name, node, ctx)
            if why:
                return why
        return None

    return check


def activation_problem(
    name: str, ctx: CheckContext, fits: Callable[[Any], bool], need: str
) -> str | None:
    """Why the activation node ``name`` produces in the integer runtime cannot be carried.

    ``fits(spec)`` says whether the format carries that QuantSpec; ``need`` says what it
    carries and what to do. A wider value that feeds a kind this target refuses anyway
    (a Linear's 16-bit current into a LIF) is not reported: the consumer's refusal is
    the real cause. ``None`` also when the graph has no integer form (the writers build
    on ``runtime-int``, whose refusal then comes first).
    """
    q = ctx.quant(name)
    if q is None:
        return None
    if q.per_channel:
        return "its output is quantized per channel; activations must be quantized per tensor"
    if fits(q):
        return None
    if any(ctx.target.lookup(type(ctx.graph.nodes[s])) is None for s in ctx.succs(name)):
        return None
    lo, hi = q.range
    return f"its output is {q.bits}-bit ({lo}..{hi}); {need}"


def int_weights(writer: str) -> CheckFn:
    """Check: the node's weights are quantized to at most 8 bits (``writer`` names who needs it)."""

    def check(name: str, node: Any, ctx: CheckContext) -> str | None:
        q = node.weight_q
        if q is None:
            return "its weights are not quantized (no weight_q); quantize the model first"
        if q.bits > 8:
            return f"its weights are {q.bits}-bit; {writer} takes weights of at most 8 bits"
        return None

    return check


def input_count(ctx: CheckContext) -> list[Refusal]:
    """Graph check: exactly one Input node."""
    ins = ctx.graph.inputs
    if len(ins) == 1:
        return []
    why = f"it has {len(ins)} inputs {list(ins)}; the {ctx.target.name} writer takes exactly one"
    return [Refusal("*", "", ctx.target.name, why, "")]


def write_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file (no half-written model)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path
