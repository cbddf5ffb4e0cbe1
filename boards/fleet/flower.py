"""Federated consolidation on Flower (``flwr``, the ``fleet`` extra).

:class:`FleetStrategy` is a Flower ``Strategy`` that drives one
:class:`~neuroplast.boards.fleet.merge.Merger`: every round it sends the merger's global
state to all connected devices as one integer-quantized blob
(:mod:`~neuroplast.boards.fleet.wire`), decodes and checks each answer and merges the ones
that pass. A device that drops mid-round (Flower reports a failure) is counted as
``dropped``; an answer that does not decode (``malformed``) or that the merger finds out
of range (``out_of_range``) is rejected and counted; neither changes the global state.
:attr:`FleetStrategy.log` keeps per round the bytes on the wire per device (down and up),
the accepted devices, the rejections with their reasons and the merger's metrics.

:class:`FleetClient` wraps a device's :class:`~neuroplast.boards.fleet.merge.Learner`
(the numpy runtime and the plasticity engine; nothing here needs torch). ``fault``
injects failures for fleet drills: ``"drop"`` fails in every fit, ``"garbage"`` answers
random bytes, ``"poison"`` answers a well-formed update whose values are scaled by 1000.

Transport: Flower's gRPC server and clients (:func:`serve`, :func:`connect`; Flower's
``start_server``/``start_client``, which Flower 1.42 marks deprecated in favour of the
SuperLink/SuperNode processes but still ships) and Flower's Ray simulation engine
(:func:`simulate`) for tens of devices in one process tree.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from flwr.client import Client
from flwr.common import (
    Code,
    EvaluateIns,
    EvaluateRes,
    FitIns,
    FitRes,
    GetParametersIns,
    GetParametersRes,
    Parameters,
    Status,
)
from flwr.server.strategy import Strategy

from neuroplast.boards.fleet.merge import Learner, Merger, Update
from neuroplast.boards.fleet.wire import QArray, decode, encode
from neuroplast.errors import FleetError

__all__ = ["RoundLog", "FleetStrategy", "FleetClient", "serve", "connect", "simulate"]

TENSOR_TYPE = "neuroplast.npfu/1"


@dataclass
class RoundLog:
    """What one round did (bytes per device, keyed by the device's name or Flower id)."""

    round: int
    phase: int
    down_bytes: dict[str, int] = field(default_factory=dict)
    up_bytes: dict[str, int] = field(default_factory=dict)
    accepted: list[str] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)
    dropped: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    def counts(self) -> dict[str, int]:
        rej = list(self.rejected.values())
        return {
            "accepted": len(self.accepted),
            "dropped": self.dropped,
            "malformed": sum(r.startswith("malformed") for r in rej),
            "out_of_range": sum(not r.startswith("malformed") for r in rej),
        }


class FleetStrategy(Strategy):
    """A Flower strategy merging what devices learned (see the module docstring).

    ``min_clients``: devices to wait for before the first round (``wait_s`` at most);
    every round, every connected device takes part. ``stop_when_converged``: later rounds send nothing
    once :meth:`Merger.converged` (Flower's round count stays fixed)."""

    def __init__(
        self,
        merger: Merger,
        *,
        min_clients: int = 1,
        wait_s: float = 60.0,
        stop_when_converged: bool = False,
    ) -> None:
        super().__init__()
        self.merger = merger
        self.min_clients = int(min_clients)
        self.wait_s = float(wait_s)
        self.stop_when_converged = stop_when_converged
        self.log: list[RoundLog] = []
        self.converged_round: int | None = None
        self._t0 = 0.0

    def __repr__(self) -> str:
        return f"FleetStrategy({self.merger.kind})"

    def _blob(self, phase: int) -> bytes:
        arrays, meta = self.merger.payload(phase)
        return encode(arrays, {**meta, "phase": phase})

    def initialize_parameters(self, client_manager: Any) -> Parameters:
        return Parameters(tensors=[self._blob(0)], tensor_type=TENSOR_TYPE)

    def configure_fit(self, server_round: int, parameters: Parameters, client_manager: Any):
        if self.stop_when_converged and self.converged_round is not None:
            return []
        if server_round == 1:  # later rounds: whoever is still connected
            client_manager.wait_for(self.min_clients, timeout=int(self.wait_s))
        phase = self.merger.phase(server_round)
        blob = self._blob(phase)
        clients = list(client_manager.all().values())
        log = RoundLog(server_round, phase)
        log.down_bytes = {c.cid: len(blob) for c in clients}
        self.log.append(log)
        self._t0 = time.perf_counter()
        ins = FitIns(Parameters([blob], TENSOR_TYPE), {"phase": phase, "round": server_round})
        return [(c, ins) for c in clients]

    def aggregate_fit(self, server_round: int, results: list, failures: list):
        log = self.log[-1]
        phase = log.phase
        log.dropped = len(failures)
        accepted: list[Update] = []
        for proxy, res in results:
            name = proxy.cid
            if res.status.code != Code.OK:
                log.dropped += 1
                continue
            tensors = res.parameters.tensors
            log.up_bytes[name] = int(sum(len(t) for t in tensors))
            try:
                if len(tensors) != 1:
                    raise FleetError(f"malformed update: {len(tensors)} tensors, expected 1")
                arrays, meta = decode(tensors[0])
                dev = meta.get("device")
                if isinstance(dev, str) and dev in log.up_bytes:
                    raise FleetError(f"out of range: device name {dev!r} answered twice")
                if isinstance(dev, str) and dev:
                    log.up_bytes[dev] = log.up_bytes.pop(name)
                    log.down_bytes[dev] = log.down_bytes.pop(name, 0)
                    name = dev
                if meta.get("phase") != phase:
                    raise FleetError(f"out of range: update for phase {meta.get('phase')!r}")
                upd = Update(name, arrays, meta, int(res.num_examples), len(tensors[0]))
                self.merger.check(phase, upd)
            except FleetError as e:
                log.rejected[name] = str(e)
                continue
            accepted.append(upd)
        accepted.sort(key=lambda u: u.device)  # merge order independent of arrival order
        log.accepted = [u.device for u in accepted]
        log.metrics = self.merger.merge(phase, accepted)
        log.seconds = time.perf_counter() - self._t0
        if self.converged_round is None and self.merger.converged():
            self.converged_round = server_round
        metrics: dict[str, Any] = {**log.metrics, **log.counts()}
        return Parameters([self._blob(self.merger.phase(server_round + 1))], TENSOR_TYPE), metrics

    def configure_evaluate(self, server_round: int, parameters: Parameters, client_manager: Any):
        return []

    def aggregate_evaluate(self, server_round: int, results: list, failures: list):
        return None, {}

    def evaluate(self, server_round: int, parameters: Parameters):
        return None

    def summary(self) -> dict[str, Any]:
        """JSON-able log: per round counts, mean bytes per device down/up, metrics."""
        rows = []
        for r in self.log:
            rows.append(
                {
                    "round": r.round,
                    "phase": r.phase,
                    **r.counts(),
                    "down_bytes_per_device": float(np.mean(list(r.down_bytes.values()) or [0])),
                    "up_bytes_per_device": float(np.mean(list(r.up_bytes.values()) or [0])),
                    "rejected": r.rejected,
                    "metrics": r.metrics,
                    "seconds": r.seconds,
                }
            )
        return {"kind": self.merger.kind, "rounds": rows, "converged_round": self.converged_round}


class FleetClient(Client):
    """A device: answers each fit with its learner's integer-quantized update."""

    def __init__(self, learner: Learner, device: str, fault: str | None = None) -> None:
        if fault not in (None, "drop", "garbage", "poison"):
            raise FleetError(f"fault must be drop, garbage or poison, not {fault!r}")
        self.learner, self.device, self.fault = learner, device, fault

    def get_parameters(self, ins: GetParametersIns) -> GetParametersRes:
        return GetParametersRes(Status(Code.OK, ""), Parameters([], TENSOR_TYPE))

    def fit(self, ins: FitIns) -> FitRes:
        if self.fault == "drop":
            raise ConnectionError(f"{self.device} dropped out mid-round (fault injection)")
        arrays, meta = decode(ins.parameters.tensors[0])
        phase = int(ins.config["phase"])
        out, m, n = self.learner.fit(phase, arrays, meta)
        if self.fault == "garbage":
            rng = np.random.default_rng(int(ins.config["round"]))
            blob = rng.integers(0, 256, 256 + 64 * len(out), np.uint8).tobytes()
        else:
            if self.fault == "poison":
                out = {k: _poison(q) for k, q in out.items()}
            blob = encode(out, {**m, "device": self.device, "phase": phase})
        return FitRes(Status(Code.OK, ""), Parameters([blob], TENSOR_TYPE), int(n), {})

    def evaluate(self, ins: EvaluateIns) -> EvaluateRes:
        return EvaluateRes(Status(Code.OK, ""), 0.0, 0, {})


def _poison(q: QArray) -> QArray:
    if q.scale is None:
        return QArray(
            np.clip(q.codes.astype(np.int64) * 1000 + 7, -(2**31) + 1, 2**31 - 1).astype(np.int32),
            None,
            32,
        )
    return QArray(q.codes, (q.scale * 1000).astype(np.float32), q.bits)


def _quiet() -> None:
    for name in ("flwr", "ray"):
        logging.getLogger(name).setLevel(logging.WARNING)


def serve(
    strategy: FleetStrategy,
    address: str = "127.0.0.1:8080",
    rounds: int | None = None,
    round_timeout: float | None = 60.0,
) -> FleetStrategy:
    """Run a Flower gRPC server for ``rounds`` rounds (default: the merger's phases);
    blocks until done and returns ``strategy`` (its :attr:`~FleetStrategy.log` filled)."""
    from flwr.server import ServerConfig, start_server

    _quiet()
    n = int(rounds or strategy.merger.phases)
    start_server(
        server_address=address,
        config=ServerConfig(num_rounds=n, round_timeout=round_timeout),
        strategy=strategy,
    )
    return strategy


def connect(client: FleetClient, address: str = "127.0.0.1:8080", wait_s: float = 60.0) -> None:
    """Run ``client`` against the server at ``address`` until the server ends (blocks)."""
    from flwr.client import start_client

    _quiet()
    start_client(server_address=address, client=client, insecure=True, max_wait_time=wait_s)


def simulate(
    strategy: FleetStrategy,
    clients: list[FleetClient],
    rounds: int | None = None,
    cpus: int = 1,
) -> FleetStrategy:
    """Run ``clients`` on Flower's Ray simulation engine (``ray``; ``cpus`` worker CPUs).
    Learners must be deterministic given the round's payload: simulated clients are
    re-created in worker processes every round."""
    from flwr.server import ServerConfig
    from flwr.simulation import start_simulation

    _quiet()
    by_id = {str(i): c for i, c in enumerate(clients)}

    def client_fn(context: Any) -> Any:
        return by_id[str(context.node_config["partition-id"])].to_client()

    strategy.min_clients = len(clients)
    start_simulation(
        client_fn=client_fn,
        num_clients=len(clients),
        config=ServerConfig(num_rounds=int(rounds or strategy.merger.phases)),
        strategy=strategy,
        client_resources={"num_cpus": 1},
        ray_init_args={"num_cpus": cpus, "include_dashboard": False, "log_to_driver": False},
    )
    return strategy
