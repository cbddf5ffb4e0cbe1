"""Ensembles of region-specific place modules with hyperactive-neuron regularisation.

Places are split into regions of ``region_size`` consecutive places; each region gets its own
module trained only on its reference images (:func:`~neuroplast.apps.place.module.train_modules`).
Modules are independent, so they train in parallel: groups of ``batch`` modules run in
lockstep in one process and groups are spread over ``workers`` processes (or any task
engine, e.g. Ray: see docs/place.md).

Regulariser (VPRSNN ``ignore_hyperactive_neurons``): after training, every module is run on
**all** reference images of all regions; ``n_spk(j)`` = number of those images neuron ``j``
fired for. Neurons with ``n_spk >= T`` are silenced at query time. ``T`` is picked on a
calibration split of queries disjoint from the test queries (:func:`calibrate_threshold`).
A query's global score vector is the concatenation of every module's place scores.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import sys
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from neuroplast.apps.place import metrics, rules
from neuroplast.apps.place.module import (
    ModuleParams,
    PlaceModule,
    module_counts,
    place_scores,
    train_modules,
)
from neuroplast.apps.place.preprocess import PreprocessParams
from neuroplast.errors import DataError

__all__ = [
    "EnsembleParams",
    "Ensemble",
    "split_regions",
    "region_jobs",
    "train_ensemble",
    "train_single",
    "calibrate_threshold",
    "DEFAULT_THRESHOLDS",
]

#: Candidate hyperactivity thresholds (0 = regulariser off), as in VPRSNN's calibration grid.
DEFAULT_THRESHOLDS = (0, 2, 3, 5, 8, 10, 15, 20, 30, 40, 60, 80, 100, 150, 200)


@dataclass(frozen=True)
class EnsembleParams:
    """region_size: places per module (VPRSNN: 25). batch: modules simulated in lockstep in
    one process. module/preprocess: per-module network and image settings."""

    region_size: int = 25
    batch: int = 8
    module: ModuleParams = field(default_factory=ModuleParams)
    preprocess: PreprocessParams = field(default_factory=PreprocessParams)

    def __post_init__(self) -> None:
        if self.region_size < 1 or self.batch < 1:
            raise DataError(
                f"region_size ({self.region_size}) and batch ({self.batch}) must be >= 1"
            )


def split_regions(place_ids: np.ndarray, region_size: int) -> list[np.ndarray]:
    """Consecutive blocks of ``region_size`` place ids (the last block may be smaller)."""
    ids = np.asarray(place_ids)
    if ids.ndim != 1 or ids.size == 0:
        raise DataError("place_ids must be a non-empty 1-D array")
    if region_size < 1:
        raise DataError(f"region_size must be >= 1, got {region_size}")
    return [ids[i : i + region_size] for i in range(0, ids.size, region_size)]


def region_jobs(
    refs: list[np.ndarray], place_ids: np.ndarray, regions: list[np.ndarray]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Training set of each region: its images from every reference traverse.

    refs: per traverse (P, D) preprocessed images, row k = place ``place_ids[k]``.
    """
    col = {int(p): k for k, p in enumerate(place_ids)}
    jobs = []
    for reg in regions:
        try:
            rows = np.array([col[int(p)] for p in reg])
        except KeyError as exc:
            raise DataError(f"region place {exc} is not in the reference traverses") from None
        x = np.concatenate([r[rows] for r in refs])
        jobs.append((x, np.tile(np.asarray(reg), len(refs))))
    return jobs


@dataclass(frozen=True)
class Ensemble:
    """Trained modules plus hyperactivity statistics and the chosen threshold."""

    modules: tuple[PlaceModule, ...]
    params: EnsembleParams
    n_spk: np.ndarray | None = None
    threshold: int = 0

    @property
    def places(self) -> np.ndarray:
        return np.concatenate([m.places for m in self.modules])

    @property
    def weights(self) -> np.ndarray:
        return np.concatenate([m.weights for m in self.modules])

    @property
    def theta(self) -> np.ndarray:
        return np.concatenate([m.theta for m in self.modules])

    @property
    def assignments(self) -> np.ndarray:
        return np.concatenate([m.assignments for m in self.modules])

    @property
    def n_neurons(self) -> int:
        return int(sum(m.n_neurons for m in self.modules))

    def counts(self, x: np.ndarray, mode: str = "rate", seed: int = 0) -> np.ndarray:
        """Spike counts (B, N_total) of all modules for preprocessed images x (B, D)."""
        p = self.params.module
        sizes = {m.n_neurons for m in self.modules}
        if len(sizes) == 1:  # all modules at once (one vectorised simulation)
            return module_counts(
                self.weights,
                self.theta,
                x,
                p,
                mode,
                np.random.default_rng(seed),
                n_modules=len(self.modules),
            )
        rng = np.random.default_rng(seed)
        return np.concatenate(
            [module_counts(m.weights, m.theta, x, p, mode, rng) for m in self.modules], axis=1
        )

    def with_reference_stats(self, ref_x: np.ndarray) -> Ensemble:
        """Attach n_spk: for each neuron, the number of reference images (all regions) it
        fires at least once for."""
        n_spk = rules.reference_counts(self.counts(ref_x))
        return replace(self, n_spk=n_spk)

    def mask(self, threshold: int | None = None) -> np.ndarray:
        """Hyperactive neurons for ``threshold`` (default: the ensemble's own)."""
        t = self.threshold if threshold is None else threshold
        if t and self.n_spk is None:
            raise DataError("hyperactivity statistics missing: call with_reference_stats first")
        n = self.n_spk if self.n_spk is not None else np.zeros(self.n_neurons, np.int64)
        return rules.hyperactive_mask(n, t)

    def scores_from_counts(self, counts: np.ndarray, threshold: int | None = None) -> np.ndarray:
        """(Q, P) place scores, columns ordered as :attr:`places`."""
        return place_scores(counts, self.assignments, self.places, self.mask(threshold))

    def scores(self, x: np.ndarray, threshold: int | None = None) -> np.ndarray:
        return self.scores_from_counts(self.counts(x), threshold)

    def query(self, x: np.ndarray, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
        """Top-k place ids and their scores for each preprocessed query image."""
        s = self.scores(np.atleast_2d(x))
        top = np.argsort(-s, axis=1, kind="stable")[:, :k]
        return self.places[top], np.take_along_axis(s, top, axis=1)

    def add_modules(self, new: list[PlaceModule], ref_x_all: np.ndarray) -> Ensemble:
        """A new ensemble with ``new`` modules appended (old modules untouched);
        hyperactivity statistics recomputed over ``ref_x_all`` (all reference images, old and
        new regions)."""
        clash = set(self.places.tolist()) & set(np.concatenate([m.places for m in new]).tolist())
        if clash:
            raise DataError(f"new modules repeat existing places, e.g. {sorted(clash)[:5]}")
        ens = replace(self, modules=(*self.modules, *new), n_spk=None)
        return ens.with_reference_stats(ref_x_all)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Write an ``.npz`` (no pickles): stacked arrays plus parameters as JSON; atomic."""
        p = Path(path)
        sizes = np.array([m.n_neurons for m in self.modules])
        nplaces = np.array([len(m.places) for m in self.modules])
        meta = {
            "format": "neuroplast.place.ensemble/1",
            "threshold": int(self.threshold),
            "params": _params_to_dict(self.params),
        }
        arrays = dict(
            weights=self.weights,
            theta=self.theta,
            assignments=self.assignments,
            places=self.places,
            module_sizes=sizes,
            module_places=nplaces,
            meta=np.array(json.dumps(meta)),
        )
        if self.n_spk is not None:
            arrays["n_spk"] = self.n_spk
        tmp = p.with_name(p.name + ".tmp")
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
        return p

    @staticmethod
    def load(path: str | Path) -> Ensemble:
        """Read an ensemble written by :meth:`save`; malformed files raise DataError."""
        p = Path(path)
        try:
            with np.load(p, allow_pickle=False) as z:
                a = {k: z[k] for k in z.files}
            meta = json.loads(str(a["meta"]))
            if meta.get("format") != "neuroplast.place.ensemble/1":
                raise DataError(f"{str(p)!r}: not a place ensemble file")
            params = _params_from_dict(meta["params"])
            sizes, nplaces = a["module_sizes"], a["module_places"]
            w, th, asg, pl = a["weights"], a["theta"], a["assignments"], a["places"]
            if sizes.sum() != len(w) or nplaces.sum() != len(pl) or len(th) != len(w):
                raise DataError(f"{str(p)!r}: array sizes disagree")
        except DataError:
            raise
        except (OSError, KeyError, ValueError, TypeError, zipfile.BadZipFile, EOFError) as exc:
            raise DataError(f"cannot read ensemble {str(p)!r}: {exc}") from None
        mods, o, q = [], 0, 0
        for n, k in zip(sizes, nplaces):
            mods.append(
                PlaceModule(
                    w[o : o + n], th[o : o + n], asg[o : o + n], pl[q : q + k], params.module
                )
            )
            o, q = o + n, q + k
        return Ensemble(tuple(mods), params, a.get("n_spk"), int(meta["threshold"]))


def _params_to_dict(p: EnsembleParams) -> dict:
    return asdict(p)


def _params_from_dict(d: dict) -> EnsembleParams:
    m = dict(d["module"])
    m["stdp"] = rules.DiehlCookSTDPParams(**m["stdp"])
    pp = dict(d["preprocess"])
    pp["size"] = tuple(pp["size"])
    return EnsembleParams(
        region_size=d["region_size"],
        batch=d["batch"],
        module=ModuleParams(**m),
        preprocess=PreprocessParams(**pp),
    )


def _train_group(args: tuple) -> list[PlaceModule]:
    jobs, p, seeds = args
    return train_modules(jobs, p, seeds)


def _pool_context() -> mp.context.BaseContext:
    return mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")


def train_ensemble(
    refs: list[np.ndarray],
    place_ids: np.ndarray,
    params: EnsembleParams = EnsembleParams(),
    *,
    workers: int = 1,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> Ensemble:
    """Train one module per region, in parallel, and attach hyperactivity statistics.

    refs: per reference traverse, (P, D) preprocessed images; place_ids: (P,) ids. Module r
    is seeded with ``seed * 100003 + r``; results do not depend on ``workers``.
    """
    if not refs:
        raise DataError("at least one reference traverse is needed")
    shapes = {r.shape for r in refs}
    if len(shapes) != 1 or len(place_ids) != next(iter(shapes))[0]:
        raise DataError(f"reference traverses must share shape (P, D); got {sorted(shapes)}")
    regions = split_regions(np.asarray(place_ids), params.region_size)
    jobs = region_jobs(refs, np.asarray(place_ids), regions)
    seeds = [seed * 100003 + r for r in range(len(jobs))]
    groups = [
        (jobs[i : i + params.batch], params.module, seeds[i : i + params.batch])
        for i in range(0, len(jobs), params.batch)
    ]
    modules: list[PlaceModule] = []
    if workers <= 1 or len(groups) == 1:
        for g in groups:
            modules.extend(_train_group(g))
            if progress:
                progress(len(modules), len(jobs))
    else:
        with _pool_context().Pool(min(workers, len(groups))) as pool:
            for res in pool.imap(_train_group, groups):
                modules.extend(res)
                if progress:
                    progress(len(modules), len(jobs))
    ens = Ensemble(tuple(modules), params)
    return ens.with_reference_stats(np.concatenate(refs))


def train_single(
    refs: list[np.ndarray],
    place_ids: np.ndarray,
    params: EnsembleParams = EnsembleParams(),
    *,
    neurons_per_place: int | None = None,
    seed: int = 0,
) -> Ensemble:
    """Non-modular baseline: one network for all places, with the same number of neurons
    per place as the ensemble's modules (default n_neurons / region_size)."""
    npp = neurons_per_place or max(1, params.module.n_neurons // params.region_size)
    n = npp * len(place_ids)
    single = replace(params, region_size=len(place_ids), module=replace(params.module, n_neurons=n))
    return train_ensemble(refs, place_ids, single, workers=1, seed=seed)


def calibrate_threshold(
    ens: Ensemble,
    cal_counts: np.ndarray,
    cal_gt: np.ndarray,
    candidates: tuple[int, ...] = DEFAULT_THRESHOLDS,
) -> tuple[int, dict[int, float]]:
    """Pick the hyperactivity threshold T with the best Recall@1 on calibration queries.

    cal_counts: (Q, N) ensemble spike counts of the calibration queries; cal_gt: their true
    place ids. Ties go to the smallest T. Returns (T, {T: R@1}).
    """
    col = {int(p): k for k, p in enumerate(ens.places)}
    try:
        gt_col = np.array([col[int(g)] for g in cal_gt])
    except KeyError as exc:
        raise DataError(f"calibration place {exc} is not in the ensemble") from None
    table = {}
    for t in candidates:
        s = ens.scores_from_counts(cal_counts, t)
        table[int(t)] = metrics.recall_at_n(s, gt_col, (1,))[1]
    best = max(table, key=lambda t: (table[t], -t))
    return best, table
