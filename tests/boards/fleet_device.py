"""A fleet device for the Flower tests, run as its own process:
``python fleet_device.py KIND INDEX FAULT ADDRESS``. :func:`learner` builds the same
learner in-process for the reference computation."""

from __future__ import annotations

import sys

import numpy as np


def runtime_bundle_graph():
    from neuroplast.graph import LIF, Graph, Input, Linear

    rng = np.random.default_rng(0)
    w = (rng.standard_normal((24, 12)) * 0.4).astype(np.float32)
    return Graph.sequential(
        [
            ("in", Input(shape=(12,))),
            ("fc", Linear(weight=w, bias=np.zeros(24, np.float32))),
            ("lif", LIF(tau_mem=np.full(24, 0.02, np.float32), v_th=np.ones(24, np.float32))),
        ],
        dt=1e-3,
    )


def learner(kind: str, index: int):
    """Device ``index`` of a fleet: its own local stream (seed = index)."""
    from neuroplast.boards.fleet.merge import RuntimeLearner
    from neuroplast.plasticity import OjaParams, PlasticityEngine, SpikeThresholdParams
    from neuroplast.runtime import Runtime

    if kind != "runtime":
        raise SystemExit(f"unknown kind {kind}")
    rt = Runtime(runtime_bundle_graph())
    eng = PlasticityEngine(seed=0)
    eng.attach("fc", OjaParams(lr=0.02))
    eng.attach("lif", SpikeThresholdParams(theta_plus=0.05))
    rt.plasticity = eng
    rng = np.random.default_rng(100 + index)
    bias = rng.random(12) * (index + 1) / 4  # every device sees a different input statistic
    data = [(rng.random(12) + bias).astype(np.float32) for _ in range(40)]
    return RuntimeLearner(rt, data)


def main(argv: list[str]) -> int:
    from neuroplast.boards.fleet.flower import FleetClient, connect

    kind, index, fault, address = argv[0], int(argv[1]), argv[2], argv[3]
    client = FleetClient(learner(kind, index), f"dev{index}", None if fault == "none" else fault)
    connect(client, address, wait_s=60)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
