"""Pure neuron step functions with explicit state, in float32 and integer arithmetic.

Each model has a frozen parameter dataclass (per-step factors derived from the IR
node and the graph's ``dt``), a NamedTuple state, and ``*_step(x, state, p) ->
(out, state)`` functions that never mutate their arguments. Arrays broadcast over
a leading batch axis.

Float LIF (forward Euler, immediate reset)::

    v' = v_leak + beta (v - v_leak) + gain I,  beta = 1 - dt/tau_mem, gain = r dt/tau_mem
    s  = [v' > v_th];  v = v_reset (reset="zero") or v' - v_th s (reset="subtract")

Integer LIF (the firmware's arithmetic; ``I`` already in the membrane scale)::

    v' = v_leak + ((v - v_leak) * beta_q + 2^14) >> 15 + I,   beta_q = round(beta 2^15)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from neuroplast.errors import GraphError
from neuroplast.graph.nodes import IF, LI, LIF, CubaLIF, Node
from neuroplast.quant import QuantSpec

__all__ = [
    "LIFParams",
    "LIFState",
    "lif_step",
    "CubaLIFParams",
    "CubaLIFState",
    "cubalif_step",
    "LIFIntParams",
    "lif_step_int",
    "CubaLIFIntParams",
    "cubalif_step_int",
    "li_step",
    "li_step_int",
    "DECAY_BITS",
]

DECAY_BITS = 15  # beta_q = round(beta * 2^15): 1/32768 resolution on the decay factor


def _f32(a: np.ndarray | None, default: float) -> np.ndarray:
    return np.asarray(default if a is None else a, dtype=np.float32).ravel()


class LIFState(NamedTuple):
    """Membrane potential ``v`` (batch, n)."""

    v: np.ndarray


class CubaLIFState(NamedTuple):
    """Synaptic current ``i`` and membrane ``v`` (batch, n)."""

    i: np.ndarray
    v: np.ndarray


@dataclass(frozen=True, eq=False)
class LIFParams:
    """Per-step LIF factors (float32 arrays, one per neuron or a scalar).

    ``beta`` (1), ``gain`` (1), ``v_th``, ``v_reset``, ``v_leak`` (input units);
    ``subtract``: reset by subtraction instead of to ``v_reset``; ``spiking``: False
    for a leaky integrator (LI/readout).
    """

    beta: np.ndarray
    gain: np.ndarray
    v_th: np.ndarray
    v_reset: np.ndarray
    v_leak: np.ndarray
    subtract: bool = False
    spiking: bool = True

    @classmethod
    def from_node(cls, node: Node, dt: float) -> LIFParams:
        if isinstance(node, IF):
            return cls(
                beta=np.float32(1.0) * np.ones(1, np.float32),
                gain=_f32(node.r, 1.0),
                v_th=_f32(node.v_th, 1.0),
                v_reset=_f32(node.v_reset, 0.0),
                v_leak=np.zeros(1, np.float32),
                subtract=node.reset == "subtract",
            )
        if not isinstance(node, (LIF, CubaLIF, LI)):
            raise GraphError(f"{node.kind} is not a LIF-family neuron")
        tau = np.asarray(node.tau_mem, dtype=np.float64).ravel()
        r = tau / dt if node.r is None else np.asarray(node.r, dtype=np.float64).ravel()
        beta = 1.0 - dt / tau
        if np.any(beta < 0):
            raise GraphError(f"{node.kind}: tau_mem {tau.min():g} s is shorter than dt {dt:g} s")
        spiking = node.spiking
        return cls(
            beta=beta.astype(np.float32),
            gain=(r * dt / tau).astype(np.float32),
            v_th=_f32(getattr(node, "v_th", None), np.inf),
            v_reset=_f32(getattr(node, "v_reset", None), 0.0),
            v_leak=_f32(node.v_leak, 0.0),
            subtract=getattr(node, "reset", "zero") == "subtract",
            spiking=spiking,
        )


def lif_step(x: np.ndarray, state: LIFState, p: LIFParams) -> tuple[np.ndarray, LIFState]:
    """One LIF step; returns float32 spikes (0/1) and the new state.

    ``v' = v_leak + beta (v - v_leak) + gain x``; ``s = [v' > v_th]``; reset.
    """
    v = p.v_leak + p.beta * (state.v - p.v_leak) + p.gain * x
    s = v > p.v_th
    if p.subtract:
        v = v - p.v_th * s
    else:
        v = np.where(s, p.v_reset, v)
    return s.astype(np.float32), LIFState(v.astype(np.float32, copy=False))


def li_step(x: np.ndarray, state: LIFState, p: LIFParams) -> tuple[np.ndarray, LIFState]:
    """Leaky integrator: ``v' = v_leak + beta (v - v_leak) + gain x``; output ``v'``."""
    v = (p.v_leak + p.beta * (state.v - p.v_leak) + p.gain * x).astype(np.float32, copy=False)
    return v, LIFState(v)


@dataclass(frozen=True, eq=False)
class CubaLIFParams:
    """Per-step CubaLIF factors: ``alpha = 1 - dt/tau_syn``, ``w_in``, and the LIF part."""

    alpha: np.ndarray
    w_in: np.ndarray
    lif: LIFParams

    @classmethod
    def from_node(cls, node: CubaLIF, dt: float) -> CubaLIFParams:
        tau_syn = np.asarray(node.tau_syn, dtype=np.float64).ravel()
        alpha = 1.0 - dt / tau_syn
        if np.any(alpha < 0):
            raise GraphError(f"CubaLIF: tau_syn {tau_syn.min():g} s is shorter than dt {dt:g} s")
        return cls(alpha.astype(np.float32), _f32(node.w_in, 1.0), LIFParams.from_node(node, dt))


def cubalif_step(
    x: np.ndarray, state: CubaLIFState, p: CubaLIFParams
) -> tuple[np.ndarray, CubaLIFState]:
    """``i' = alpha i + w_in x``; then a LIF step driven by ``i'``."""
    i = (p.alpha * state.i + p.w_in * x).astype(np.float32, copy=False)
    s, st = lif_step(i, LIFState(state.v), p.lif)
    return s, CubaLIFState(i, st.v)


# ----------------------------------------------------------------------- integer


def _q_of(node: Node, v: np.ndarray | None, default: float, spec: QuantSpec) -> np.ndarray:
    """A voltage parameter in membrane integer units: round(v / scale)."""
    arr = np.asarray(default if v is None else v, dtype=np.float64).ravel()
    if np.isinf(arr).any():
        return np.where(np.isinf(arr), np.iinfo(np.int64).max // 4, 0).astype(np.int64)
    return np.round(arr / float(np.asarray(spec.scale))).astype(np.int64)


@dataclass(frozen=True, eq=False)
class LIFIntParams:
    """Integer LIF: ``beta_q`` (Q15), thresholds/resets in membrane units (int64)."""

    beta_q: np.ndarray
    v_th: np.ndarray
    v_reset: np.ndarray
    v_leak: np.ndarray
    subtract: bool = False
    spiking: bool = True

    @classmethod
    def from_node(cls, node: Node, dt: float, v_spec: QuantSpec) -> LIFIntParams:
        fp = LIFParams.from_node(node, dt)
        if not np.allclose(fp.gain, 1.0, rtol=1e-6, atol=1e-6):
            raise GraphError(
                f"{node.kind}: integer mode needs unit input gain (r = tau/dt); fold "
                f"r*dt/tau = {fp.gain.ravel()[:3]} into the preceding layer's weights"
            )
        if isinstance(v_spec.scale, tuple):
            raise GraphError(f"{node.kind}: the membrane scale must be per tensor")
        if np.any(np.asarray(v_spec.zero_point) != 0):
            raise GraphError(f"{node.kind}: the membrane quantization must have zero point 0")
        return cls(
            beta_q=np.round(fp.beta.astype(np.float64) * (1 << DECAY_BITS)).astype(np.int64),
            v_th=_q_of(node, getattr(node, "v_th", None), np.inf, v_spec),
            v_reset=_q_of(node, getattr(node, "v_reset", None), 0.0, v_spec),
            v_leak=_q_of(node, getattr(node, "v_leak", None), 0.0, v_spec),
            subtract=fp.subtract,
            spiking=fp.spiking,
        )


def _decay_int(v: np.ndarray, leak: np.ndarray, beta_q: np.ndarray) -> np.ndarray:
    return leak + (((v - leak) * beta_q + (1 << (DECAY_BITS - 1))) >> DECAY_BITS)


def lif_step_int(x: np.ndarray, state: LIFState, p: LIFIntParams) -> tuple[np.ndarray, LIFState]:
    """Integer LIF step on int64 membranes; returns int8 spikes and the new state."""
    v = _decay_int(state.v, p.v_leak, p.beta_q) + np.asarray(x, dtype=np.int64)
    s = v > p.v_th
    if p.subtract:
        v = v - p.v_th * s
    else:
        v = np.where(s, p.v_reset, v)
    return s.astype(np.int8), LIFState(v)


def li_step_int(x: np.ndarray, state: LIFState, p: LIFIntParams) -> tuple[np.ndarray, LIFState]:
    """Integer leaky integrator; output is the int64 membrane."""
    v = _decay_int(state.v, p.v_leak, p.beta_q) + np.asarray(x, dtype=np.int64)
    return v, LIFState(v)


@dataclass(frozen=True, eq=False)
class CubaLIFIntParams:
    """Integer CubaLIF: ``alpha_q`` (Q15) plus the integer LIF part (``w_in`` must be 1)."""

    alpha_q: np.ndarray
    lif: LIFIntParams

    @classmethod
    def from_node(cls, node: CubaLIF, dt: float, v_spec: QuantSpec) -> CubaLIFIntParams:
        fp = CubaLIFParams.from_node(node, dt)
        if not np.allclose(fp.w_in, 1.0):
            raise GraphError("CubaLIF: integer mode needs w_in = 1 (fold it into the weights)")
        return cls(
            np.round(fp.alpha.astype(np.float64) * (1 << DECAY_BITS)).astype(np.int64),
            LIFIntParams.from_node(node, dt, v_spec),
        )


def cubalif_step_int(
    x: np.ndarray, state: CubaLIFState, p: CubaLIFIntParams
) -> tuple[np.ndarray, CubaLIFState]:
    """``i' = (i alpha_q + 2^14) >> 15 + x``; then an integer LIF step driven by ``i'``."""
    i = _decay_int(state.i, np.int64(0), p.alpha_q) + np.asarray(x, dtype=np.int64)
    s, st = lif_step_int(i, LIFState(state.v), p.lif)
    return s, CubaLIFState(i, st.v)
