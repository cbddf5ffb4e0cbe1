"""Lower a trained KWS network to the neuroplast Graph IR (numpy only).

The trained network is first reduced to :class:`KwsDeployment` -- plain arrays
(integer weights, the Brevitas per-tensor weight scale, integer delays) plus the
neuron constants -- which is all the device needs. :func:`to_graph` then builds::

    Input(n_in, spikes: int8 scale 1)
      -> DelayLinear fc1 (int weights, delays; out_q = 32-bit current in scale s_w1)
      -> LIF lif1 (tau = dt / (1 - beta), v_th, hard reset to 0, membrane scale s_w1)
      -> DelayLinear fc2 -> LIF lif2
      -> DelayLinear fc3 -> LI out (non-spiking readout)

With a spike (scale 1) input and ``out_q.scale == s_w`` the requantization multiplier
is exactly 1, so the integer runtime accumulates ``sum_j w_q,ij s_j[t - D_ij]`` into
the membrane unchanged -- the recurrence the QAT model trains with.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neuroplast.errors import GraphError

__all__ = ["DeployLayer", "KwsDeployment", "to_graph", "from_model"]


@dataclass(frozen=True, eq=False)
class DeployLayer:
    """One delayed fully connected layer: ``weight_q (out, in)`` int, ``delay`` int steps."""

    weight_q: np.ndarray
    scale: float
    delay: np.ndarray
    bits: int

    @property
    def weight(self) -> np.ndarray:
        """Dequantized weight ``scale * weight_q`` (float32)."""
        return (self.weight_q.astype(np.float64) * self.scale).astype(np.float32)


@dataclass(frozen=True, eq=False)
class KwsDeployment:
    """Everything the device needs to run the network (no torch)."""

    layers: tuple[DeployLayer, ...]
    beta: float
    beta_out: float
    v_th: float
    dt: float

    @property
    def n_in(self) -> int:
        return int(self.layers[0].weight_q.shape[1])

    @property
    def n_classes(self) -> int:
        return int(self.layers[-1].weight_q.shape[0])


def _spike_q():  # noqa: ANN202
    from neuroplast.quant import QuantSpec

    return QuantSpec(bits=8, scale=1.0, zero_point=0)


def _tau(beta: float, dt: float) -> float:
    if not 0.0 <= beta < 1.0:
        raise GraphError(f"membrane decay beta must be in [0, 1), got {beta}")
    return dt / (1.0 - beta)


def to_graph(dep: KwsDeployment, quantized: bool = True):  # noqa: ANN201 - neuroplast.graph.Graph
    """Build the Graph IR of a :class:`KwsDeployment`.

    ``quantized=False`` leaves out the quantization metadata (a float-only graph, for
    float-weight models); otherwise every layer carries ``weight_q``/``out_q`` and the
    neurons a membrane ``v_q`` so the graph runs in integer mode.
    """
    from neuroplast.graph import LI, LIF, DelayLinear, Graph, Input
    from neuroplast.quant import QuantSpec

    if not dep.layers:
        raise GraphError("KwsDeployment has no layers")
    nodes: list[tuple[str, object]] = [
        ("input", Input(shape=(dep.n_in,), quant=_spike_q() if quantized else None))
    ]
    n_layers = len(dep.layers)
    for i, layer in enumerate(dep.layers, start=1):
        if layer.weight_q.shape != layer.delay.shape:
            raise GraphError(f"layer {i}: weight {layer.weight_q.shape} and delay shapes differ")
        wq = oq = None
        if quantized:
            if layer.bits not in (4, 8):
                raise GraphError(f"layer {i}: integer graphs need 4- or 8-bit weights")
            wq = QuantSpec(bits=layer.bits, scale=float(layer.scale), narrow=True)
            oq = QuantSpec(bits=32, scale=float(layer.scale))
        nodes.append(
            (
                f"fc{i}",
                DelayLinear(weight=layer.weight, delay=layer.delay, weight_q=wq, out_q=oq),
            )
        )
        n_out = layer.weight_q.shape[0]
        vq = QuantSpec(bits=32, scale=float(layer.scale)) if quantized else None
        if i < n_layers:
            tau = np.full(n_out, _tau(dep.beta, dep.dt), np.float32)
            nodes.append(
                (
                    f"lif{i}",
                    LIF(
                        tau_mem=tau,
                        v_th=np.full(n_out, dep.v_th, np.float32),
                        v_reset=np.zeros(n_out, np.float32),
                        reset="zero",
                        v_q=vq,
                    ),
                )
            )
        else:
            tau = np.full(n_out, _tau(dep.beta_out, dep.dt), np.float32)
            nodes.append(("out", LI(tau_mem=tau, v_q=vq)))
    return Graph.sequential(nodes, dt=dep.dt)


def from_model(model) -> KwsDeployment:  # noqa: ANN001 - KwsNet (torch side)
    """Reduce a trained :class:`~neuroplast.apps.kws.model.KwsNet` to plain arrays."""
    layers = []
    for a in model.deploy_arrays():
        if a["bits"]:
            wq = np.asarray(a["weight_q"], np.int64)
            scale = float(np.float32(a["scale"]))
        else:  # float model: keep float weights with a unit "scale"
            wq = np.asarray(a["weight"], np.float64)
            scale = 1.0
        layers.append(DeployLayer(wq, scale, np.asarray(a["delay"], np.int32), int(a["bits"])))
    c = model.cfg
    return KwsDeployment(
        tuple(layers), float(c.beta), float(c.beta_out), float(c.v_th), float(c.dt)
    )
