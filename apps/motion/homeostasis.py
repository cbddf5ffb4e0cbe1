"""Homeostatic output threshold: keep motion-neuron spike rates at a target.

Output neuron ``(c, y, x)`` spikes at step ``t`` when its evidence crosses the
class threshold, ``s = [z(c, t, y, x) > theta_c]``. The per-class activity
``r_c(t) = mean_{y,x} s`` (spikes per neuron per step) drives the rate-target
integral controller of :func:`neuroplast.plasticity.rate_threshold_update`::

    theta_c <- clip(theta_c + eta * (r_c(t) - r_target), theta_min, theta_max)

so that at the fixed point every class fires ``r_target`` spikes per neuron per
step whatever the input event rate (a lighting or contrast change multiplies it).
The paper sets the threshold for about 1 spike/s per neuron; the controller finds
that threshold on the device instead of offline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neuroplast.errors import DataError
from neuroplast.plasticity import RateThresholdParams, rate_threshold_update

__all__ = ["HomeostasisParams", "homeostasis_step", "run_homeostasis"]


@dataclass(frozen=True)
class HomeostasisParams:
    """``r_target`` in spikes per neuron per step (1 ms); ``eta`` in threshold units."""

    r_target: float = 0.02
    eta: float = 0.5
    theta_min: float = -1e6
    theta_max: float = 1e6

    def rule(self) -> RateThresholdParams:
        return RateThresholdParams(
            eta_ip=self.eta,
            r_target=self.r_target,
            theta_min=self.theta_min,
            theta_max=self.theta_max,
        )


def homeostasis_step(
    z: np.ndarray, theta: np.ndarray, params: HomeostasisParams, adapt: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One step: ``z`` (C, Ho, Wo) evidence, ``theta`` (C,).

    Returns ``(spikes (C, Ho, Wo) bool, rate (C,), new theta)``; ``adapt=False``
    freezes ``theta`` (the non-homeostatic baseline).
    """
    z = np.asarray(z)
    if z.ndim != 3 or z.shape[0] != np.shape(theta)[0]:
        raise DataError(
            f"evidence must be (C, Ho, Wo) with C = {np.shape(theta)[0]}, got {z.shape}"
        )
    spikes = z > theta[:, None, None]
    rate = spikes.mean(axis=(1, 2))
    if adapt:
        theta = rate_threshold_update(theta, rate, params.rule())
    return spikes, rate, theta


def run_homeostasis(
    z_seq: np.ndarray,
    theta0: np.ndarray,
    params: HomeostasisParams,
    adapt: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Apply :func:`homeostasis_step` over ``z_seq`` (T, C, Ho, Wo).

    Returns ``(rate (T, C), theta (T, C))`` - the per-step class rates and thresholds.
    """
    theta = np.asarray(theta0, dtype=np.float64).copy()
    rates, thetas = [], []
    for z in z_seq:
        _, r, theta = homeostasis_step(z, theta, params, adapt)
        rates.append(r)
        thetas.append(theta.copy())
    return np.asarray(rates), np.asarray(thetas)
