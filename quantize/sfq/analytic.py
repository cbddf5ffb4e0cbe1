"""Analytic (mean-field) pulse rates of the SFQ cells: the reference the simulator is tested on.

All rates are pulses per clock period, inputs independent Bernoulli trains.

* Stochastic synapse: ``r_out = p * r_in``.
* Merger of coincident streams (or an input latch): ``r_out = 1 - prod_k (1 - r_k)``;
  of streams separated by more than the dead time: ``r_out = sum_k r_k``.
* Clocked neuron with threshold theta and floor f, per clock edge a net step
  ``+1`` with probability ``a = E (1 - I)``, ``-1`` with ``d = I (1 - E)``: a Markov
  chain on ``{f, ..., theta - 1}``; firing rate ``= a * pi[theta - 1]`` with ``pi`` its
  stationary distribution (:func:`neuron_rate`). For theta = 1 this is ``E (1 - I)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from neuroplast.errors import DataError

__all__ = ["or_rate", "neuron_rate", "layer_rates", "network_rates"]


def or_rate(rates: Sequence[float] | np.ndarray, axis: int = -1) -> np.ndarray:
    """Rate of the OR of independent Bernoulli streams: ``1 - prod(1 - r)``."""
    r = np.asarray(rates, dtype=np.float64)
    return 1.0 - np.prod(1.0 - r, axis=axis)


def neuron_rate(e: float, i: float, theta: int = 1, floor: int = 0) -> float:
    """Stationary firing rate of the clocked SFQ neuron (see module docstring)."""
    if not (0 <= e <= 1 and 0 <= i <= 1):
        raise DataError(f"rates must be in [0, 1], got exc={e}, inh={i}")
    if theta < 1 or floor > 0:
        raise DataError("need theta >= 1 and floor <= 0")
    a, d = e * (1 - i), i * (1 - e)
    states = list(range(floor, theta))
    n = len(states)
    if n == 1:
        return a
    p = np.zeros((n, n))
    for k, c in enumerate(states):
        up = c + 1
        p[k, states.index(up - theta) if up >= theta else k + 1] += a
        p[k, max(k - 1, 0)] += d
        p[k, k] += 1 - a - d
    # stationary distribution: left eigenvector for eigenvalue 1
    m = np.vstack([p.T - np.eye(n), np.ones(n)])
    rhs = np.zeros(n + 1)
    rhs[-1] = 1.0
    pi = np.linalg.lstsq(m, rhs, rcond=None)[0]
    return float(a * pi[-1])


def layer_rates(
    weight: np.ndarray, bias: np.ndarray | None, r_in: np.ndarray, theta: int = 1, floor: int = 0
) -> np.ndarray:
    """Mean-field output rates of one mapped layer (export.py's mapping)."""
    w = np.asarray(weight, dtype=np.float64)
    b = np.zeros(w.shape[0]) if bias is None else np.asarray(bias, dtype=np.float64)
    r = np.asarray(r_in, dtype=np.float64)
    wp, wn = np.clip(w, 0, 1), np.clip(-w, 0, 1)
    e = 1 - (1 - np.clip(b, 0, 1)) * np.prod(1 - wp * r[None, :], axis=1)
    i = 1 - (1 - np.clip(-b, 0, 1)) * np.prod(1 - wn * r[None, :], axis=1)
    if theta == 1 and floor == 0:
        return e * (1 - i)
    return np.array([neuron_rate(ej, ij, theta, floor) for ej, ij in zip(e, i, strict=False)])


def network_rates(layers: Sequence, r_in: np.ndarray) -> list[np.ndarray]:
    """Mean-field rates of every layer of a chain of :class:`~.export.SFQLayer`."""
    out = []
    r = np.asarray(r_in, dtype=np.float64)
    for layer in layers:
        r = layer_rates(layer.weight, layer.bias, r, layer.theta, layer.floor)
        out.append(r)
    return out
