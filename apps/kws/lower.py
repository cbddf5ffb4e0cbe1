"""Lower a trained KWS network to the neuroplast Graph IR (numpy only).

The trained network is first reduced to :class:`KwsDeployment` -- plain arrays
(integer weights, the Brevitas per-tensor weight scale, integer delays; one
:class:`~neuroplast.quantize.lower.DelayLayer` per layer) plus the neuron constants --
which is all the device needs. :func:`to_graph` then builds, with
:func:`neuroplast.quantize.lower.delay_chain`::

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

from neuroplast.quantize.lower import DelayLayer as DeployLayer
from neuroplast.quantize.lower import delay_chain, delay_layer

__all__ = ["DeployLayer", "KwsDeployment", "to_graph", "from_model"]


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


def to_graph(dep: KwsDeployment, quantized: bool = True):  # noqa: ANN201 - neuroplast.graph.Graph
    """Build the Graph IR of a :class:`KwsDeployment`.

    ``quantized=False`` leaves out the quantization metadata (a float-only graph, for
    float-weight models); otherwise every layer carries ``weight_q``/``out_q`` and the
    neurons a membrane ``v_q`` so the graph runs in integer mode.
    """
    return delay_chain(dep.layers, beta=dep.beta, beta_out=dep.beta_out, v_th=dep.v_th,
                       dt=dep.dt, quantized=quantized)  # fmt: skip


def from_model(model) -> KwsDeployment:  # noqa: ANN001 - KwsNet (torch side)
    """Reduce a trained :class:`~neuroplast.apps.kws.model.KwsNet` to plain arrays."""
    c = model.cfg
    return KwsDeployment(tuple(delay_layer(m) for m in model.layers), float(c.beta),
                         float(c.beta_out), float(c.v_th), float(c.dt))  # fmt: skip
