"""Fleet consolidation of place modules: robots that each learned part of a route.

Each robot trained modules for the regions it drove (:func:`train_ensemble` on its own
reference images). Consolidation takes three Flower rounds (phases):

0. **modules** -- every robot sends its modules (synapses as int8 codes with a scale per
   neuron, owners, places, firing thresholds as int16 codes); the server keeps the union,
   in device-name order, skipping a module whose places another module already holds.
1. **stats** -- the server sends the union; every robot counts, per neuron, the images of
   its own reference traverses that make it fire (``n_spk``, exact int32). The sum over
   robots is the hyperactivity statistic over every reference image of the fleet, i.e.
   exactly :meth:`Ensemble.with_reference_stats` on the union of the reference images.
2. **calibrate** -- the server sends the union and ``n_spk``; every robot counts, per
   candidate threshold ``T``, its calibration queries the masked ensemble recalls at
   rank 1; the server picks ``T`` with the most (ties: smallest), as
   :func:`calibrate_threshold` does on the pooled queries.

Checks (anything else is rejected as out of range): synapse rows of the calibrated
modules have unit L2 norm (1 + 2%), place ids lie in ``[0, n_places)``, owners are the
module's places or -1, thresholds in ``[0, steps * sqrt(D)]`` (the largest potential of a
unit-norm row), counts in ``[0, n_images]``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from neuroplast.apps.place.ensemble import DEFAULT_THRESHOLDS, Ensemble, EnsembleParams
from neuroplast.apps.place.module import PlaceModule
from neuroplast.boards.fleet.merge import Learner, Merger, Update, check_arrays
from neuroplast.boards.fleet.wire import QArray, exact, quantize
from neuroplast.errors import FleetError

__all__ = ["PlaceMerger", "PlaceLearner", "ensemble_arrays", "ensemble_from_arrays"]

_MAX_COUNT = 1 << 24


def ensemble_arrays(modules: tuple[PlaceModule, ...]) -> dict[str, QArray]:
    """Modules as wire arrays (int8 synapses, int16 thresholds, exact ids and sizes)."""
    d = modules[0].weights.shape[1] if modules else 0

    def cat(k: str, dt: type) -> np.ndarray:
        return np.concatenate([getattr(m, k) for m in modules]) if modules else np.zeros(0, dt)

    w = np.concatenate([m.weights for m in modules]) if modules else np.zeros((0, d), np.float32)
    return {
        "weights": quantize(w, 8),
        "owner": exact(cat("owner", np.int64)),
        "places": exact(cat("places", np.int64)),
        "threshold": quantize(cat("threshold", np.float32), 16),
        "module_sizes": exact([m.n_neurons for m in modules]),
        "module_places": exact([len(m.places) for m in modules]),
    }


def ensemble_from_arrays(a: dict[str, QArray]) -> tuple[PlaceModule, ...]:
    """Inverse of :func:`ensemble_arrays` (dequantized)."""
    w, own, pl = a["weights"].value(), a["owner"].value(), a["places"].value()
    th, sizes, nps = a["threshold"].value(), a["module_sizes"].value(), a["module_places"].value()
    mods, o, q = [], 0, 0
    for n, k in zip(sizes.tolist(), nps.tolist()):
        mods.append(PlaceModule(w[o : o + n].astype(np.float32), own[o : o + n],
                                pl[q : q + k], th[o : o + n].astype(np.float32)))  # fmt: skip
        o, q = o + n, q + k
    return tuple(mods)


class PlaceMerger(Merger):
    """Server side (see the module docstring). ``n_places``: the route's place count
    (ids must lie below it); ``params``: the fleet's ensemble parameters."""

    kind = "place"
    phases = 3

    def __init__(
        self,
        n_places: int,
        params: EnsembleParams = EnsembleParams(),
        candidates: tuple[int, ...] = DEFAULT_THRESHOLDS,
    ) -> None:
        self.n_places, self.params, self.candidates = int(n_places), params, tuple(candidates)
        self.modules: tuple[PlaceModule, ...] = ()
        self.n_spk: np.ndarray | None = None
        self.threshold = 0
        self.cal_correct: np.ndarray | None = None
        self.duplicates = 0
        self._done = False

    @property
    def n_inputs(self) -> int:
        return self.params.place.preprocess.n_inputs

    def ensemble(self) -> Ensemble:
        """The consolidated ensemble (statistics and threshold once those phases ran)."""
        n_spk = (
            self.n_spk
            if self.n_spk is not None and len(self.n_spk) == sum(m.n_neurons for m in self.modules)
            else None
        )
        return Ensemble(
            self.modules, self.params, n_spk, self.threshold if n_spk is not None else 0
        )

    def payload(self, phase: int) -> tuple[dict[str, QArray], dict[str, Any]]:
        arrays = ensemble_arrays(self.modules)
        if phase == 2 and self.n_spk is not None:
            arrays["n_spk"] = exact(self.n_spk)
        return arrays, {"kind": self.kind, "candidates": list(self.candidates)}

    def _count(self, upd: Update, key: str, shape: tuple[int, ...], what: str) -> None:
        check_arrays(upd, {key: (shape, False)})
        top = upd.meta.get(what)
        if not isinstance(top, int) or not 0 < top <= _MAX_COUNT:
            raise FleetError(f"out of range: meta {what} = {top!r}")
        v = upd.arrays[key].value()
        if v.size and (v.min() < 0 or v.max() > top):
            raise FleetError(f"out of range: {key} outside [0, {top}]")

    def check(self, phase: int, upd: Update) -> None:
        if phase == 1:
            return self._count(upd, "n_spk", (sum(m.n_neurons for m in self.modules),), "n_images")
        if phase == 2:
            return self._count(upd, "correct", (len(self.candidates),), "n_queries")
        a = upd.arrays
        if "module_sizes" not in a or "module_places" not in a:
            raise FleetError("out of range: module sizes missing")
        sizes, nps = a["module_sizes"].value(), a["module_places"].value()
        if (
            sizes.ndim != 1
            or nps.shape != sizes.shape
            or (sizes.size and min(sizes.min(), nps.min()) < 1)
        ):
            raise FleetError("out of range: module sizes")
        n, k = int(sizes.sum()), int(nps.sum())
        check_arrays(upd, {"weights": ((n, self.n_inputs), True), "owner": ((n,), False),
                           "places": ((k,), False), "threshold": ((n,), True),
                           "module_sizes": (sizes.shape, False), "module_places": (nps.shape, False)})  # fmt: skip
        pl = a["places"].value()
        if pl.size and (pl.min() < 0 or pl.max() >= self.n_places or len(np.unique(pl)) != pl.size):
            raise FleetError(f"out of range: place ids outside [0, {self.n_places}) or repeated")
        if not np.all(np.isin(a["owner"].value(), np.r_[pl, -1])):
            raise FleetError("out of range: a neuron's owner is not one of its module's places")
        norms = np.linalg.norm(a["weights"].value(), axis=1)
        if np.any(norms > 1.02):
            raise FleetError(f"out of range: synapse row norm {norms.max():.3g} > 1")
        th = a["threshold"].value()
        top = self.params.place.steps * np.sqrt(self.n_inputs)
        if th.size and (th.min() < 0 or th.max() > top):
            raise FleetError(f"out of range: firing thresholds outside [0, {top:.3g}]")

    def merge(self, phase: int, updates: list[Update]) -> dict[str, float]:
        if phase == 0:
            have = (
                set(np.concatenate([m.places for m in self.modules]).tolist())
                if self.modules
                else set()
            )
            new = list(self.modules)
            for u in updates:
                for m in ensemble_from_arrays(u.arrays):
                    if have & set(m.places.tolist()):
                        self.duplicates += 1
                        continue
                    have |= set(m.places.tolist())
                    new.append(m)
            if len(new) != len(self.modules):
                self.n_spk, self.threshold, self._done = None, 0, False
            self.modules = tuple(new)
            return {"modules": float(len(new)), "places": float(len(have))}
        if phase == 1:
            self.n_spk = sum((u.arrays["n_spk"].value() for u in updates),
                             np.zeros(sum(m.n_neurons for m in self.modules), np.int64))  # fmt: skip
            return {"images": float(sum(u.meta["n_images"] for u in updates))}
        self.cal_correct = sum((u.arrays["correct"].value() for u in updates),
                               np.zeros(len(self.candidates), np.int64))  # fmt: skip
        best = max(
            range(len(self.candidates)), key=lambda i: (self.cal_correct[i], -self.candidates[i])
        )
        self.threshold = int(self.candidates[best])
        self._done = bool(updates)
        n_q = sum(u.meta["n_queries"] for u in updates)
        return {
            "threshold": float(self.threshold),
            "cal_recall": float(self.cal_correct[best]) / max(n_q, 1),
        }

    def converged(self) -> bool:
        return self._done


class PlaceLearner(Learner):
    """A robot: its own modules, its reference images (preprocessed, (n, D)) and its
    calibration queries (preprocessed, with their true place ids)."""

    kind = "place"

    def __init__(
        self, ensemble: Ensemble, ref_x: np.ndarray, cal_x: np.ndarray, cal_gt: np.ndarray
    ) -> None:
        self.ensemble, self.ref_x = ensemble, np.asarray(ref_x, np.float32)
        self.cal_x, self.cal_gt = np.asarray(cal_x, np.float32), np.asarray(cal_gt, np.int64)

    def fit(self, phase, arrays, meta):  # noqa: ANN001
        if phase == 0:
            return ensemble_arrays(self.ensemble.modules), {"kind": self.kind}, len(self.ref_x)
        ens = Ensemble(ensemble_from_arrays(arrays), self.ensemble.params)
        if phase == 1:
            st = ens.with_reference_stats(self.ref_x)
            return (
                {"n_spk": exact(st.n_spk)},
                {"kind": self.kind, "n_images": len(self.ref_x)},
                len(self.ref_x),
            )
        ens = replace(ens, n_spk=arrays["n_spk"].value())
        col = {int(p): k for k, p in enumerate(ens.places)}
        keep = np.array([int(g) in col for g in self.cal_gt], bool)
        gt = np.array([col[int(g)] for g in self.cal_gt[keep]], np.int64)
        v = ens.potentials(self.cal_x[keep]) if keep.any() else np.zeros((0, ens.n_neurons))
        correct = [int((ens.scores_from_potentials(v, int(t)).argmax(1) == gt).sum()) if len(gt) else 0
                   for t in meta["candidates"]]  # fmt: skip
        return (
            {"correct": exact(correct)},
            {"kind": self.kind, "n_queries": max(len(self.cal_gt), 1)},
            len(gt),
        )
