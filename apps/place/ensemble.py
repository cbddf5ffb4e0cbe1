"""Ensembles of region-specific place-cell modules, trained in parallel (processes or Ray).

Places are split into regions of ``region_size`` consecutive places; each region gets its
own module (:func:`~neuroplast.apps.place.module.train_module`), learned only from that
region's reference images, so a device can learn a new region by itself and modules train
independently (``workers`` processes, or Ray tasks on one machine or a cluster).

At query time every module's neurons integrate the same latency-coded image; a place's
score is the potential of its most depolarised neuron, and all places of all modules
compete on one scale (the synapses are calibrated, see module.py).

Regulariser (after VPRSNN ``ignore_hyperactive_neurons``): every neuron is run on **all**
reference images of all regions; ``n_spk(j)`` counts the images for which it fires
(potential >= its threshold). Neurons with ``n_spk >= T`` are silenced at query time; ``T``
is chosen on calibration queries disjoint from the test queries (0 = off).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

import numpy as np

from neuroplast.apps.place import metrics
from neuroplast.apps.place.module import (
    PlaceModule,
    PlaceParams,
    group_max,
    potentials,
    train_module,
)
from neuroplast.apps.place.preprocess import graded_spikes
from neuroplast.checks import require_seed
from neuroplast.errors import DataError

__all__ = [
    "EnsembleParams",
    "Ensemble",
    "region_jobs",
    "train_regions",
    "train_ensemble",
    "calibrate_threshold",
    "DEFAULT_THRESHOLDS",
]

#: Candidate hyperactivity thresholds (0 = regulariser off), VPRSNN's calibration grid.
DEFAULT_THRESHOLDS = (0, 2, 3, 5, 8, 10, 15, 20, 30, 40, 60, 80, 100, 150, 200)
_FORMAT = "neuroplast.place.ensemble/2"


@dataclass(frozen=True)
class EnsembleParams:
    """region_size: places per module (VPRSNN: 25). batch: regions per training task.
    place: the modules' network and learning."""

    region_size: int = 25
    batch: int = 4
    place: PlaceParams = field(default_factory=PlaceParams)

    def __post_init__(self) -> None:
        if self.region_size < 1 or self.batch < 1:
            raise DataError(
                f"region_size ({self.region_size}) and batch ({self.batch}) must be >= 1"
            )


def region_jobs(
    images: np.ndarray, place_ids: np.ndarray, region_size: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per region of ``region_size`` consecutive places: (its images from every reference
    traverse (n_traverses, r, H, W[, C]), its place ids). images: (n_traverses, P, ...)."""
    a = np.asarray(images)
    ids = np.asarray(place_ids, np.int64)
    if a.ndim not in (4, 5) or ids.ndim != 1 or a.shape[1] != ids.size or ids.size == 0:
        raise DataError(
            f"reference images must be (n_traverses, P, H, W[, C]) with P = {ids.size} place "
            f"ids, got {a.shape}"
        )
    if region_size < 1:
        raise DataError(f"region_size must be >= 1, got {region_size}")
    return [
        (a[:, i : i + region_size], ids[i : i + region_size])
        for i in range(0, ids.size, region_size)
    ]


def train_regions(
    jobs: list[tuple[np.ndarray, np.ndarray]], p: PlaceParams, seeds: list[int]
) -> list[PlaceModule]:
    """Train the modules of several regions one after the other (one worker's task)."""
    return [train_module(imgs, ids, p, sd) for (imgs, ids), sd in zip(jobs, seeds, strict=True)]


@dataclass(frozen=True)
class Ensemble:
    """Trained modules plus hyperactivity statistics and the chosen threshold T."""

    modules: tuple[PlaceModule, ...]
    params: EnsembleParams
    n_spk: np.ndarray | None = None
    threshold: int = 0

    @cached_property
    def places(self) -> np.ndarray:
        return np.concatenate([m.places for m in self.modules])

    @cached_property
    def weights(self) -> np.ndarray:
        return np.concatenate([m.weights for m in self.modules])

    @cached_property
    def owner(self) -> np.ndarray:
        return np.concatenate([m.owner for m in self.modules])

    @cached_property
    def fire_threshold(self) -> np.ndarray:
        return np.concatenate([m.threshold for m in self.modules])

    @property
    def n_neurons(self) -> int:
        return int(sum(m.n_neurons for m in self.modules))

    @cached_property
    def column(self) -> np.ndarray:
        """Place column (index into :attr:`places`) of each neuron, -1 if untaught."""
        col = {int(pl): k for k, pl in enumerate(self.places)}
        return np.array([col.get(int(o), -1) for o in self.owner], np.int64)

    def graded(self, x: np.ndarray) -> np.ndarray:
        """Graded latency spikes (B, D) of preprocessed images x (B, D) in [0, 1]."""
        a = np.atleast_2d(np.asarray(x, np.float32))
        if a.shape[1] != self.weights.shape[1]:
            raise DataError(
                f"inputs have {a.shape[1]} values, the ensemble expects {self.weights.shape[1]}"
            )
        return graded_spikes(a, self.params.place.steps)

    def potentials(self, x: np.ndarray, chunk: int = 512) -> np.ndarray:
        """Potentials (B, N) of every neuron after the latency window."""
        g = self.graded(x)
        w = self.weights
        return np.concatenate([potentials(w, g[a : a + chunk]) for a in range(0, len(g), chunk)])

    def mask(self, threshold: int | None = None) -> np.ndarray:
        """Hyperactive neurons for ``threshold`` (default: the ensemble's own; 0 = none)."""
        t = self.threshold if threshold is None else threshold
        if not t:
            return np.zeros(self.n_neurons, bool)
        if self.n_spk is None:
            raise DataError("hyperactivity statistics missing: call with_reference_stats first")
        from neuroplast.plasticity import hyperactive_mask

        return hyperactive_mask(self.n_spk, int(t))

    def scores_from_potentials(self, v: np.ndarray, threshold: int | None = None) -> np.ndarray:
        """(Q, P) place scores: the best unmasked neuron of each place (columns as
        :attr:`places`); a place without unmasked neurons scores below every other."""
        col = np.where(self.mask(threshold), -1, self.column)
        low = float(np.min(v)) - 1.0 if v.size else -1.0
        return group_max(np.asarray(v, np.float32), col, len(self.places), low)

    def scores(self, x: np.ndarray, threshold: int | None = None) -> np.ndarray:
        return self.scores_from_potentials(self.potentials(x), threshold)

    def query(self, x: np.ndarray, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
        """Top-k place ids and their scores for each preprocessed query image."""
        s = self.scores(np.atleast_2d(x))
        top = np.argsort(-s, axis=1, kind="stable")[:, :k]
        return self.places[top], np.take_along_axis(s, top, axis=1)

    def with_reference_stats(self, ref_x: np.ndarray, chunk: int = 256) -> Ensemble:
        """Attach n_spk: per neuron, the number of reference images (all regions) for
        which its potential reaches its firing threshold."""
        th = self.fire_threshold
        taught = self.owner >= 0
        n_spk = np.zeros(self.n_neurons, np.int64)
        x = np.asarray(ref_x, np.float32)
        for a in range(0, len(x), chunk):
            n_spk += ((self.potentials(x[a : a + chunk]) >= th) & taught).sum(axis=0)
        return replace(self, n_spk=n_spk)

    def add_modules(self, new: list[PlaceModule], ref_x_all: np.ndarray | None = None) -> Ensemble:
        """A new ensemble with ``new`` modules appended (old modules untouched); with
        ``ref_x_all`` (all reference images, old and new regions) the hyperactivity
        statistics are recomputed, else dropped."""
        clash = set(self.places.tolist()) & set(np.concatenate([m.places for m in new]).tolist())
        if clash:
            raise DataError(f"new modules repeat existing places, e.g. {sorted(clash)[:5]}")
        ens = replace(self, modules=(*self.modules, *new), n_spk=None)
        if ref_x_all is None:
            return replace(ens, threshold=0) if self.threshold else ens
        return ens.with_reference_stats(ref_x_all)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Write an ``.npz`` (no pickles): stacked arrays plus parameters as JSON; atomic."""
        from neuroplast.arrayfile import npz_bytes
        from neuroplast.runtime.runtime import atomic_write_bytes

        meta = {
            "format": _FORMAT,
            "threshold": int(self.threshold),
            "region_size": self.params.region_size,
            "batch": self.params.batch,
            "place": self.params.place.to_dict(),
        }
        arrays = dict(
            weights=self.weights,
            owner=self.owner,
            places=self.places,
            fire_threshold=self.fire_threshold,
            module_sizes=np.array([m.n_neurons for m in self.modules]),
            module_places=np.array([len(m.places) for m in self.modules]),
            meta=np.array(json.dumps(meta)),
        )
        if self.n_spk is not None:
            arrays["n_spk"] = self.n_spk
        atomic_write_bytes(path, npz_bytes(arrays))
        return Path(path)

    @staticmethod
    def load(path: str | Path) -> Ensemble:
        """Read an ensemble written by :meth:`save`; malformed files raise DataError."""
        p = Path(path)
        try:
            with np.load(p, allow_pickle=False) as z:
                a = {k: z[k] for k in z.files}
            meta = json.loads(str(a["meta"]))
            if meta.get("format") != _FORMAT:
                raise DataError(f"{str(p)!r}: not a place ensemble file ({_FORMAT})")
            params = EnsembleParams(
                region_size=int(meta["region_size"]),
                batch=int(meta["batch"]),
                place=PlaceParams.from_dict(meta["place"]),
            )
            sizes, nplaces = a["module_sizes"], a["module_places"]
            w, own, th, pl = a["weights"], a["owner"], a["fire_threshold"], a["places"]
            if (
                w.ndim != 2
                or sizes.sum() != len(w)
                or nplaces.sum() != len(pl)
                or len(own) != len(w)
                or len(th) != len(w)
                or not np.all(np.isfinite(w))
            ):
                raise DataError(f"{str(p)!r}: array sizes disagree or weights are not finite")
            n_spk = a.get("n_spk")
            if n_spk is not None and n_spk.shape != (len(w),):
                raise DataError(f"{str(p)!r}: n_spk has shape {n_spk.shape}")
        except DataError:
            raise
        except (OSError, KeyError, ValueError, TypeError, zipfile.BadZipFile, EOFError) as exc:
            raise DataError(f"cannot read ensemble {str(p)!r}: {exc}") from None
        mods, o, q = [], 0, 0
        for n, k in zip(sizes, nplaces):
            mods.append(
                PlaceModule(
                    w[o : o + n].astype(np.float32),
                    own[o : o + n].astype(np.int64),
                    pl[q : q + k].astype(np.int64),
                    th[o : o + n].astype(np.float32),
                )
            )
            o, q = o + n, q + k
        return Ensemble(tuple(mods), params, n_spk, int(meta["threshold"]))


def _train_group(args: tuple) -> list[PlaceModule]:
    jobs, p, seeds = args
    return train_regions(jobs, p, seeds)


def _pool_context() -> mp.context.BaseContext:
    return mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")


def train_ensemble(
    images: np.ndarray,
    place_ids: np.ndarray,
    params: EnsembleParams = EnsembleParams(),
    *,
    workers: int = 1,
    ray_address: str | None = None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> Ensemble:
    """Train one module per region, in parallel; results do not depend on ``workers``.

    images: reference images (n_traverses, P, H, W[, C]); place_ids: (P,). Module r is
    seeded with ``seed * 100003 + r``. Groups of ``params.batch`` regions run as tasks on
    ``workers`` local processes, or, with ``ray_address`` ("local" for a Ray instance
    started here, "auto" or "host:port" for a running cluster), as Ray tasks.
    """
    jobs = region_jobs(images, place_ids, params.region_size)
    require_seed(DataError, "train_ensemble", seed)
    seeds = [seed * 100003 + r for r in range(len(jobs))]
    groups = [
        (jobs[i : i + params.batch], params.place, seeds[i : i + params.batch])
        for i in range(0, len(jobs), params.batch)
    ]
    modules: list[PlaceModule] = []
    if ray_address is not None:
        for res in _ray_map(groups, workers, ray_address):
            modules.extend(res)
            if progress:
                progress(len(modules), len(jobs))
    elif workers <= 1 or len(groups) == 1:
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
    return Ensemble(tuple(modules), params)


def _ray_map(groups: list[tuple], workers: int, address: str):
    """Run the groups as Ray tasks (one CPU each), yielding results in order."""
    try:
        import ray
    except ImportError:
        raise DataError("Ray is not installed: pip install ray (or train with workers=k)") from None
    if not ray.is_initialized():
        if address == "local":
            ray.init(num_cpus=max(1, workers), include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    task = ray.remote(num_cpus=1)(_train_group)
    futures = [task.remote(g) for g in groups]
    for f in futures:
        yield ray.get(f)


def calibrate_threshold(
    ens: Ensemble,
    cal_potentials: np.ndarray,
    cal_gt: np.ndarray,
    candidates: tuple[int, ...] = DEFAULT_THRESHOLDS,
) -> tuple[int, dict[int, float]]:
    """Pick the hyperactivity threshold T with the best Recall@1 on calibration queries.

    cal_potentials: (Q, N) potentials of the calibration queries; cal_gt: their true place
    ids. Ties go to the smallest T (0 = off). Returns (T, {T: R@1}).
    """
    col = {int(p): k for k, p in enumerate(ens.places)}
    try:
        gt_col = np.array([col[int(g)] for g in cal_gt])
    except KeyError as exc:
        raise DataError(f"calibration place {exc} is not in the ensemble") from None
    table = {}
    for t in candidates:
        s = ens.scores_from_potentials(cal_potentials, t)
        table[int(t)] = metrics.recall_at_n(s, gt_col, (1,))[1]
    best = max(table, key=lambda t: (table[t], -t))
    return best, table
