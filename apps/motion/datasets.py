"""Labelled movie sets of the motion app: the default world, sensor sizes and seed ranges.

Training, validation and the two held-out test protocols draw their movies from
disjoint seed ranges, so no test movie is ever trained or selected on:

* training: seeds from 0 (each run states its first seed);
* validation (epoch / setting selection): from :data:`VAL_SEED0`;
* held-out switching motion: from :data:`TEST_SEED0`;
* held-out constant motion (the paper's test world, one motion per movie): from
  :data:`CONSTANT_SEED0`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

import numpy as np

from neuroplast.apps.motion.events import events_to_voxels
from neuroplast.apps.motion.simulate import DVSParams, Movie, SceneParams, simulate_movie

__all__ = [
    "DEFAULT_SCENE",
    "DEFAULT_DVS",
    "TEST_SEED0",
    "VAL_SEED0",
    "CONSTANT_SEED0",
    "sensor_setup",
    "make_dataset",
    "held_out_movies",
]

DEFAULT_SCENE = SceneParams(size=32, texture_size=64, n_steps=128, f_cut=0.15)
DEFAULT_DVS = DVSParams(threshold=1.2)
TEST_SEED0 = 1_000_000  #: held-out switching-motion movies
VAL_SEED0 = 2_000_000  #: validation movies (selection)
CONSTANT_SEED0 = 3_000_000  #: held-out constant-motion movies (the paper's test world)


def sensor_setup(size: int, threshold: float) -> tuple[SceneParams, DVSParams]:
    """The default world and pixel with another sensor side (px; the texture is twice
    as wide) and DVS contrast threshold (log units)."""
    return (
        replace(DEFAULT_SCENE, size=size, texture_size=2 * size),
        replace(DEFAULT_DVS, threshold=threshold),
    )


def make_dataset(
    seeds: Iterable[int], scene: SceneParams = DEFAULT_SCENE, dvs: DVSParams = DEFAULT_DVS
) -> tuple[np.ndarray, np.ndarray, list[Movie]]:
    """Simulate movies; return (voxels (N, 2, T, H, W) bool, labels (N, T), movies)."""
    vox, lab, movies = [], [], []
    for s in seeds:
        m = simulate_movie(int(s), scene, dvs)
        vox.append(events_to_voxels(m.events, m.sensor_size, m.n_steps))
        lab.append(m.labels)
        movies.append(m)
    return np.stack(vox), np.stack(lab), movies


def held_out_movies(n: int, scene: SceneParams, dvs: DVSParams, constant: bool = False):
    """The first ``n`` held-out test movies (:func:`make_dataset` output): switching
    motion from :data:`TEST_SEED0`, or with ``constant`` one motion per movie
    (``p_switch = 0``) from :data:`CONSTANT_SEED0`."""
    seed0 = CONSTANT_SEED0 if constant else TEST_SEED0
    if constant:
        scene = replace(scene, p_switch=0.0)
    return make_dataset(range(seed0, seed0 + n), scene, dvs)
