"""Homeostatic output threshold: keep motion-neuron spike rates at a target, learned
through the plasticity engine.

Output neuron ``(c, y, x)`` spikes at step ``t`` when its evidence crosses the class
threshold, ``s = [z(c, t, y, x) > theta_c]``: a memoryless LIF node (``tau_mem = dt``,
so ``v = z`` every step) with per-neuron base threshold ``theta0_c``. The engine's
rate-target rule (:class:`neuroplast.plasticity.RateThresholdParams` with
``groups = C``: one threshold per class) moves it by the per-class activity
``r_c(t) = mean_{y,x} s`` (spikes per neuron per step)::

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
from neuroplast.plasticity import RateThresholdParams

__all__ = ["HomeostasisParams", "homeostasis_runtime", "run_homeostasis"]


@dataclass(frozen=True)
class HomeostasisParams:
    """``r_target`` in spikes per neuron per step (1 ms); ``eta`` in threshold units;
    ``theta_min``/``theta_max`` bound the threshold's change from its start."""

    r_target: float = 0.02
    eta: float = 0.5
    theta_min: float = -1e6
    theta_max: float = 1e6

    def rule(self, n_classes: int = 0) -> RateThresholdParams:
        """The engine rule; ``n_classes`` > 0: one shared threshold per class."""
        return RateThresholdParams(
            eta_ip=self.eta,
            r_target=self.r_target,
            theta_min=self.theta_min,
            theta_max=self.theta_max,
            groups=n_classes,
        )


def homeostasis_runtime(theta0: np.ndarray, shape: tuple[int, int], params: HomeostasisParams):  # noqa: ANN201
    """Runtime ``evidence`` ``(C, Ho, Wo)`` -> memoryless LIF ``out`` with base threshold
    ``theta0`` (C,) per class and the per-class rate-target rule attached (learning on)."""
    from neuroplast.graph import LIF, Graph, Input
    from neuroplast.runtime import Runtime

    th0 = np.asarray(theta0, np.float64)
    if th0.ndim != 1 or not th0.size or not np.isfinite(th0).all():
        raise DataError(f"theta0 must be a finite (C,) vector, got shape {th0.shape}")
    n = (th0.size, *shape)
    dt = 1e-3
    g = Graph.sequential(
        [
            ("evidence", Input(shape=n)),
            (
                "out",
                LIF(
                    tau_mem=np.full(n, dt),
                    v_th=np.broadcast_to(th0[:, None, None], n).astype(np.float32),
                ),
            ),
        ],
        dt=dt,
    )
    rt = Runtime(g)
    rt.plasticity.attach("out", params.rule(th0.size))
    rt.learn(True)
    return rt


def run_homeostasis(
    z_seq: np.ndarray,
    theta0: np.ndarray,
    params: HomeostasisParams,
    adapt: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Stream the evidence ``z_seq`` (T, C, Ho, Wo) through :func:`homeostasis_runtime`.

    Returns ``(rate (T, C), theta (T, C))``: the per-step class rates and the thresholds
    after each step; ``adapt=False`` freezes them (the non-homeostatic baseline).
    """
    z = np.asarray(z_seq)
    th0 = np.asarray(theta0, np.float64)
    if z.ndim != 4 or th0.ndim != 1 or z.shape[1] != th0.size:
        raise DataError(f"evidence must be (T, C, Ho, Wo) with C = {th0.size}, got shape {z.shape}")
    rt = homeostasis_runtime(th0, z.shape[2:], params)
    rt.learn(adapt)
    b = rt.plasticity.bindings[0]
    rates, thetas = [], []
    for zt in z.astype(np.float32):
        s = rt.step(zt)
        rates.append(s.reshape(th0.size, -1).astype(np.float64).mean(axis=1))
        theta = b.state["theta"] if "theta" in b.state else np.zeros(s.size)
        thetas.append(th0 + theta.reshape(th0.size, -1)[:, 0])
    return np.asarray(rates, np.float64), np.asarray(thetas)
