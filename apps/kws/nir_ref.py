"""A plain NIR interpreter (numpy) used to verify the KWS NIR export.

No surveyed simulator runs NIR ``Delay`` nodes except Spyx (JAX), so the export is
checked by executing the NIR graph exactly as the NIR spec defines it, ignoring every
neuroplast metadata field -- what any third-party reader would see. Forward Euler at
``dt`` seconds with immediate reset (the NIR/snnTorch/Norse import convention)::

    Linear  y = W x            Affine  y = W x + b        Scale  y = s * x
    Delay   y[t] = x[t - round(delay / dt)]
    LIF     v' = v_leak + (1 - dt/tau)(v - v_leak) + (r dt / tau) I;  s = v' > v_th;
            v = v_reset where s
    LI      v' = v_leak + (1 - dt/tau)(v - v_leak) + (r dt / tau) I  (output v')

A node with several incoming edges sums them (NIR semantics).
"""

from __future__ import annotations

import numpy as np

from neuroplast.errors import ExportError

__all__ = ["run_nir"]


def _topo(nodes: dict, edges: list[tuple[str, str]]) -> list[str]:
    indeg = {n: 0 for n in nodes}
    for _, b in edges:
        indeg[b] += 1
    order, ready = [], [n for n, k in indeg.items() if k == 0]
    while ready:
        n = ready.pop()
        order.append(n)
        for a, b in edges:
            if a == n:
                indeg[b] -= 1
                if indeg[b] == 0:
                    ready.append(b)
    if len(order) != len(nodes):
        raise ExportError("NIR graph has a cycle; the reference interpreter is feedforward only")
    return order


def run_nir(ng, x: np.ndarray, dt: float) -> dict[str, np.ndarray]:  # noqa: ANN001 - nir.NIRGraph
    """Run a feedforward ``nir.NIRGraph`` on ``x (T, B, n_in)``; returns every node's
    output sequence ``(T, B, ...)`` by name."""
    import nir

    x = np.asarray(x, np.float64)
    T = x.shape[0]
    vals: dict[str, np.ndarray] = {}
    for name in _topo(ng.nodes, list(ng.edges)):
        node = ng.nodes[name]
        ins = [vals[a] for a, b in ng.edges if b == name]
        if isinstance(node, nir.Input):
            vals[name] = x
            continue
        if not ins:
            raise ExportError(f"NIR node {name!r} has no input")
        i = np.sum(ins, axis=0)
        if isinstance(node, nir.Output):
            vals[name] = i
        elif isinstance(node, nir.Affine):
            vals[name] = i @ np.asarray(node.weight, np.float64).T + np.asarray(node.bias)
        elif isinstance(node, nir.Linear):
            vals[name] = i @ np.asarray(node.weight, np.float64).T
        elif isinstance(node, nir.Scale):
            vals[name] = i * np.asarray(node.scale, np.float64)
        elif isinstance(node, nir.Delay):
            d = np.rint(np.asarray(node.delay, np.float64) / dt).astype(int)
            if np.any(d != d.flat[0]):
                raise ExportError("per-neuron different delays are not supported here")
            k = int(d.flat[0])
            y = np.zeros_like(i)
            if k < T:
                y[k:] = i[: T - k]
            vals[name] = y
        elif isinstance(node, (nir.LIF, nir.LI)):
            tau = np.asarray(node.tau, np.float64)
            beta = 1.0 - dt / tau
            gain = np.asarray(node.r, np.float64) * dt / tau
            leak = np.asarray(node.v_leak, np.float64)
            spiking = isinstance(node, nir.LIF)
            v = np.zeros(i.shape[1:])
            out = np.zeros_like(i)
            for t in range(T):
                v = leak + beta * (v - leak) + gain * i[t]
                if spiking:
                    s = v > np.asarray(node.v_threshold, np.float64)
                    v = np.where(s, np.asarray(node.v_reset, np.float64), v)
                    out[t] = s
                else:
                    out[t] = v
            vals[name] = out
        else:
            raise ExportError(f"NIR node kind {type(node).__name__} not supported by run_nir")
    return vals
