"""Federated consolidation of on-device learning: the server's mergers and the device's
learners (numpy only; :mod:`neuroplast.boards.fleet.flower` carries them over Flower).

A round has a ``phase`` (0, 1, ...). The server broadcasts the merger's global state
(:meth:`Merger.payload`), each device's :class:`Learner` answers with an update
(:func:`~neuroplast.boards.fleet.wire.encode`\\ d integer codes), the server checks every
update (:meth:`Merger.check`: names, shapes and value ranges against the global model) and
merges the ones that pass (:meth:`Merger.merge`). A rejected update changes nothing.

Generic mergers here (the apps have theirs: :mod:`neuroplast.apps.place.fleet`,
:mod:`neuroplast.apps.kws.fleet`):

* :class:`RuntimeMerger` -- a bundle's plastic layers and homeostatic thresholds:

  - learned weight deltas, FedAvg with clipping: ``d_i = w_i - w``,
    ``d_i <- d_i min(1, C / ||d_i||_2)``, ``w <- w + sum_i n_i d_i / sum_i n_i``
    (n_i: examples the device learned from; C: ``clip``);
  - thresholds, robust averaging: the coordinate-wise trimmed mean dropping the
    ``trim`` largest and smallest values of each neuron (the median when few remain).

  A delta with a value beyond ``bound`` (default: the layer's own max |w| of the base
  model times ``bound_factor``) or a threshold outside ``[theta_min, theta_max]`` is
  rejected as out of range.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from neuroplast.boards.fleet.wire import QArray, quantize
from neuroplast.errors import FleetError

__all__ = [
    "Update",
    "Merger",
    "Learner",
    "check_arrays",
    "trimmed_mean",
    "clip_norm",
    "RuntimeMerger",
    "RuntimeLearner",
    "consolidate_local",
]


@dataclass(frozen=True)
class Update:
    """A decoded device update: its arrays (integer codes), meta, examples learned from."""

    device: str
    arrays: dict[str, QArray]
    meta: dict[str, Any]
    n_examples: int
    nbytes: int = 0


class Merger(ABC):
    """Server side of one kind of consolidation (see the module docstring)."""

    kind: str = ""
    phases: int = 1  # distinct phases per consolidation; rounds cycle through them

    def phase(self, server_round: int) -> int:
        """The phase of 1-based ``server_round``."""
        return (server_round - 1) % self.phases

    @abstractmethod
    def payload(self, phase: int) -> tuple[dict[str, QArray], dict[str, Any]]:
        """The global state the devices need for ``phase``."""

    @abstractmethod
    def check(self, phase: int, upd: Update) -> None:
        """Raise :class:`FleetError` (``out of range: ...``) unless ``upd`` is plausible."""

    @abstractmethod
    def merge(self, phase: int, updates: list[Update]) -> dict[str, float]:
        """Fold the checked updates into the global state; returns round metrics."""

    def converged(self) -> bool:
        return False


class Learner(ABC):
    """Device side: learns locally and answers the server's payload with an update."""

    kind: str = ""

    @abstractmethod
    def fit(
        self, phase: int, arrays: dict[str, QArray], meta: dict[str, Any]
    ) -> tuple[dict[str, QArray], dict[str, Any], int]:
        """Returns ``(arrays, meta, n_examples)`` for ``phase`` given the global state."""


def check_arrays(upd: Update, want: dict[str, tuple[tuple[int, ...], bool]]) -> None:
    """``upd`` holds exactly the arrays ``want`` names, with these shapes and scaledness."""
    if set(upd.arrays) != set(want):
        extra = sorted(set(upd.arrays) - set(want))[:3]
        missing = sorted(set(want) - set(upd.arrays))[:3]
        raise FleetError(f"out of range: arrays differ (extra {extra}, missing {missing})")
    for k, (shape, scaled) in want.items():
        q = upd.arrays[k]
        if tuple(q.codes.shape) != tuple(shape) or (q.scale is not None) != scaled:
            raise FleetError(
                f"out of range: {k} has shape {tuple(q.codes.shape)}, expected {tuple(shape)}"
            )


def trimmed_mean(x: np.ndarray, trim: int) -> np.ndarray:
    """Coordinate-wise mean over axis 0 after dropping the ``trim`` smallest and largest
    values of each coordinate (the median when ``2 trim >= n``)."""
    a = np.sort(np.asarray(x, np.float64), axis=0)
    n = a.shape[0]
    if n == 0:
        raise FleetError("trimmed mean of no values")
    if 2 * trim >= n:
        return np.median(a, axis=0)
    return a[trim : n - trim].mean(axis=0)


def clip_norm(d: np.ndarray, c: float) -> np.ndarray:
    """``d * min(1, c / ||d||_2)``."""
    n = float(np.linalg.norm(d))
    return d * (c / n) if n > c else d


# ------------------------------------------------------------------ generic runtime
def _plastic_params(rt: Any) -> dict[str, np.ndarray]:
    """Real-valued weights of every layer with a weight rule attached."""
    eng = rt.plasticity
    out = {}
    for b in eng.bindings:
        if "weight" in rt.params.get(b.layer, {}):
            out[f"delta/{b.layer}"] = _real(rt, b.layer)
    return out


def _real(rt: Any, layer: str) -> np.ndarray:
    w = np.asarray(rt.params[layer]["weight"], np.float64)
    if rt.mode == "int":
        return w * np.asarray(rt.plasticity._weight_scale(rt, layer), np.float64)
    return w


def _theta_keys(rt: Any) -> dict[str, str]:
    """``theta/<layer>`` -> the runtime state key of that layer's learned threshold, for
    every adaptive-threshold rule; primes a rule that has not run yet with the engine's own
    start (``theta = 0`` above the layer's ``v_th``)."""
    rt.plasticity.validate(rt)  # engines that initialise rule state on binding do it here
    out, sd, prime = {}, rt.state_dict(), False
    for i, b in enumerate(rt.plasticity.bindings):
        if b.kind not in ("spike_threshold", "rate_threshold"):
            continue
        key = f"plasticity/{i}/{b.layer}/{b.kind}/theta"
        out[f"theta/{b.layer}"] = key
        if key not in sd:
            n = int(np.prod(rt.shapes[b.layer]))
            p = rt.kernels[b.layer].p
            v_th = p.lif.v_th if hasattr(p, "lif") else p.v_th
            sd[key] = np.zeros(n)
            sd[key[: -len("theta")] + "v_th0"] = np.asarray(v_th, np.float64).ravel() * np.ones(n)
            prime = True
    if prime:
        rt.load_state_dict(sd)
    return out


class RuntimeMerger(Merger):
    """FedAvg of clipped weight deltas + trimmed-mean thresholds of one bundle's runtime
    (see the module docstring). ``weights``/``thetas``: the global model's arrays, named
    ``delta/<layer>`` and ``theta/<layer>`` (take them from :meth:`RuntimeLearner.snapshot`)."""

    kind = "runtime"
    phases = 1

    def __init__(
        self,
        weights: dict[str, np.ndarray],
        thetas: dict[str, np.ndarray] | None = None,
        *,
        clip: float = 1.0,
        trim: int = 1,
        bound_factor: float = 4.0,
        theta_range: tuple[float, float] = (-1e3, 1e3),
        tol: float = 1e-3,
    ) -> None:
        self.weights = {k: np.asarray(v, np.float64).copy() for k, v in weights.items()}
        self.thetas = {k: np.asarray(v, np.float64).copy() for k, v in (thetas or {}).items()}
        self.bound = {
            k: bound_factor * max(float(np.abs(v).max()), 1e-6) for k, v in weights.items()
        }
        self.clip, self.trim, self.theta_range, self.tol = clip, trim, theta_range, tol
        self.last_change = np.inf

    def payload(self, phase: int) -> tuple[dict[str, QArray], dict[str, Any]]:
        arrays = {k: quantize(v, 16) for k, v in self.weights.items()}
        arrays.update({k: quantize(v, 16) for k, v in self.thetas.items()})
        return arrays, {"kind": self.kind}

    def check(self, phase: int, upd: Update) -> None:
        want = {k: (v.shape, True) for k, v in (*self.weights.items(), *self.thetas.items())}
        check_arrays(upd, want)
        for k in self.weights:
            m = float(np.abs(upd.arrays[k].value()).max(initial=0.0))
            if m > self.bound[k]:
                raise FleetError(f"out of range: |{k}| = {m:.3g} > bound {self.bound[k]:.3g}")
        lo, hi = self.theta_range
        for k in self.thetas:
            v = upd.arrays[k].value()
            if v.size and (v.min() < lo or v.max() > hi):
                raise FleetError(f"out of range: {k} outside [{lo}, {hi}]")
        if upd.n_examples < 1:
            raise FleetError("out of range: an update learned from no examples")

    def merge(self, phase: int, updates: list[Update]) -> dict[str, float]:
        if not updates:
            return {"change": 0.0}
        n = np.array([u.n_examples for u in updates], np.float64)
        change = 0.0
        for k, w in self.weights.items():
            d = np.stack(
                [clip_norm(u.arrays[k].value().astype(np.float64), self.clip) for u in updates]
            )
            step = np.tensordot(n / n.sum(), d, axes=1)
            w += step
            change = max(change, float(np.linalg.norm(step) / max(np.linalg.norm(w), 1e-12)))
        for k in self.thetas:
            self.thetas[k] = trimmed_mean(
                np.stack([u.arrays[k].value() for u in updates]), self.trim
            )
        self.last_change = change
        return {"change": change}

    def converged(self) -> bool:
        return self.last_change < self.tol


class RuntimeLearner(Learner):
    """A device: a :class:`~neuroplast.runtime.Runtime` with plasticity rules, learning on
    its local stream ``data`` (a sequence of inputs, one per step) each round."""

    kind = "runtime"

    def __init__(self, rt: Any, data: Iterable[Any], steps: int | None = None) -> None:
        self.rt = rt
        self.data = list(data)
        self.steps = steps or len(self.data)
        self._theta = _theta_keys(rt)

    def __setstate__(self, state: dict[str, Any]) -> None:
        import copy

        self.__dict__.update(state)
        self.rt = copy.deepcopy(self.rt)  # arrays unpickled in place (Ray) are read-only

    def snapshot(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """The runtime's plastic weights and learned thresholds, named as the merger wants."""
        sd = self.rt.state_dict()
        return _plastic_params(self.rt), {
            k: np.asarray(sd[v], np.float64) for k, v in self._theta.items()
        }

    def _load(self, arrays: dict[str, QArray]) -> None:
        sd = self.rt.state_dict()
        for k, key in self._theta.items():
            if k in arrays:
                sd[key] = arrays[k].value().astype(np.asarray(sd[key]).dtype)
        for k, q in arrays.items():
            if k.startswith("delta/"):
                layer = k[len("delta/") :]
                w = q.value().astype(np.float64)
                cur = sd[f"param/{layer}/weight"]
                if self.rt.mode == "int":
                    s = np.asarray(self.rt.plasticity._weight_scale(self.rt, layer), np.float64)
                    w = np.clip(np.rint(w / s), np.iinfo(cur.dtype).min, np.iinfo(cur.dtype).max)
                sd[f"param/{layer}/weight"] = w.astype(cur.dtype).reshape(cur.shape)
        self.rt.load_state_dict(sd)

    def fit(self, phase, arrays, meta):  # noqa: ANN001
        """One round: the global weights and thresholds, fresh neuron state, ``steps``
        learning steps on the local stream from its start; an answer depends only on the
        payload (simulated clients are re-created every round)."""
        self._load(arrays)
        self.rt.reset()
        base_w, _ = self.snapshot()
        self.rt.learn(True)
        for i in range(self.steps):
            self.rt.step(self.data[i % len(self.data)])
        self.rt.learn(False)
        w, th = self.snapshot()
        out = {k: quantize(w[k] - base_w[k], 8) for k in w}
        out.update({k: quantize(v, 16) for k, v in th.items()})
        return out, {"kind": self.kind}, self.steps


def consolidate_local(
    merger: Merger, learners: dict[str, Learner], rounds: int | None = None
) -> list[dict[str, Any]]:
    """Run consolidation in this process through the same wire format (no Flower): per
    round, encode the payload, let every learner answer, decode, check, merge. Returns
    per round ``{"accepted", "rejected", "metrics"}``."""
    from neuroplast.boards.fleet.wire import decode, encode

    log = []
    for r in range(1, int(rounds or merger.phases) + 1):
        phase = merger.phase(r)
        arrays, meta = merger.payload(phase)
        blob = encode(arrays, {**meta, "phase": phase})
        ok, rejected = [], {}
        for name in sorted(learners):
            a, m = decode(blob)
            out, om, n = learners[name].fit(phase, a, m)
            try:
                data = encode(out, {**om, "device": name, "phase": phase})
                ua, um = decode(data)
                upd = Update(name, ua, um, int(n), len(data))
                merger.check(phase, upd)
            except FleetError as e:
                rejected[name] = str(e)
                continue
            ok.append(upd)
        log.append({"round": r, "accepted": [u.device for u in ok], "rejected": rejected,
                    "metrics": merger.merge(phase, ok)})  # fmt: skip
    return log
