"""One region's place cells: latency-coded input, a few view neurons per place, learned on
the device through the plasticity engine.

**Code.** A preprocessed image x in [0, 1]^D is a latency code over a window of T steps:
input i spikes once at ``t_i = round((1 - x_i)(T - 1))``. A spike opens a sustained
synaptic current, so after the window a non-leaky place neuron j holds

    V_j = sum_i w_ji (T - t_i) = sum_i w_ji g_i,        g = graded_spikes(x, T) in {1..T}^D

(one step with graded spikes computes the T-step potential exactly; tested against the
runtime's CubaLIF neuron fed real latency spikes). A place is scored by the most
depolarised of its K neurons; across places the first neuron to reach threshold wins.

**Learning (supervised, local, no backprop).** Each place has K neurons ("views": the same
place seen slightly shifted or in another season). A training image of place p is a batch
row of the input; a teacher spike is forced onto one neuron of p's group: the first
still-blank neuron (recruitment), else the group's most depolarised neuron (winner-take-all
inside the group). The engine then applies two stock rules to the synapses:

    Hebbian, post = teacher:       dw_j = eta * s_j * g          (s_j = 1 on the taught neuron)
    synaptic scaling (L1):         w_j <- w_j * S / sum_i w_ji

together ``w_j <- (1 - a) w_j + a S g / sum(g)``: the taught neuron moves towards the view
(a competitive instar / FEAST update; a blank neuron imprints the view in one step). With a
teacher spike forced at the end of the window and a linear STDP window of length T, the
pre-before-post trace of input i at the post spike is ``g_i / T``: the Hebbian term is
that STDP rule. ``a`` is annealed over the epochs.

**Calibration.** After learning, each neuron's synapses are centred and scaled to unit L2
norm (``consolidate``): ``V_j = w_j . g`` is then a correlation-like potential in the same
units for every neuron of every module, so modules compete fairly (the subtracted mean is
a feed-forward inhibition equal for all neurons). ``PlaceParams.centre = False`` keeps the
raw L1-scaled synapses (an ablation in the bench).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from neuroplast.apps.place.preprocess import (
    PreprocessParams,
    ViewParams,
    graded_spikes,
    jitter_views,
)
from neuroplast.checks import require_int
from neuroplast.errors import DataError

__all__ = [
    "PlaceParams",
    "PlaceModule",
    "train_module",
    "region_views",
    "consolidate",
    "potentials",
    "group_max",
]


@dataclass(frozen=True)
class PlaceParams:
    """Place-cell network of one region and its learning.

    neurons_per_place K: view neurons per place. steps T: latency window (time steps).
    epochs: passes over the region's views. rate: fraction ``a`` a taught neuron moves
    towards a view in the first epoch, annealed linearly to ``rate_min``. centre: calibrate
    (centre and L2-normalise) the learned synapses. fire_fraction: a neuron fires for an
    image when its correlation reaches this fraction of its best correlation with its own
    place's reference images (used by the hyperactive-neuron statistics). learn_mode:
    "float", or "int" to learn on an integer Runtime (int8 synapses, stochastic rounding in
    the engine).
    """

    neurons_per_place: int = 4
    steps: int = 8
    epochs: int = 4
    rate: float = 0.3
    rate_min: float = 0.02
    centre: bool = True
    fire_fraction: float = 0.8
    learn_mode: str = "float"
    views: ViewParams = field(default_factory=ViewParams)
    preprocess: PreprocessParams = field(default_factory=PreprocessParams)

    def __post_init__(self) -> None:
        require_int(DataError, "PlaceParams", 1, 4096, neurons_per_place=self.neurons_per_place)
        require_int(DataError, "PlaceParams", 1, epochs=self.epochs)
        if not 1 <= self.steps <= 127:
            raise DataError(f"PlaceParams.steps must be in 1..127, got {self.steps}")
        if self.learn_mode not in ("float", "int"):
            raise DataError(
                f"PlaceParams.learn_mode must be 'float' or 'int', not {self.learn_mode!r}"
            )
        if not 0 < self.rate_min <= self.rate < 1 or not 0 < self.fire_fraction <= 1:
            raise DataError("PlaceParams: need 0 < rate_min <= rate < 1 and 0 < fire_fraction <= 1")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["preprocess"]["size"] = list(self.preprocess.size)
        return d

    @staticmethod
    def from_dict(d: dict) -> PlaceParams:
        try:
            d = dict(d)
            d["views"] = ViewParams(**d["views"])
            pp = dict(d["preprocess"])
            d["preprocess"] = PreprocessParams(size=tuple(pp["size"]), patch=pp["patch"])
            return PlaceParams(**d)
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"place parameters are malformed: {exc}") from None


@dataclass(frozen=True)
class PlaceModule:
    """A trained region: synapses (N, D), the place id of each neuron (-1: never taught),
    the region's places (P,), and each neuron's firing threshold (potential units)."""

    weights: np.ndarray
    owner: np.ndarray
    places: np.ndarray
    threshold: np.ndarray

    @property
    def n_neurons(self) -> int:
        return int(self.weights.shape[0])


def potentials(weights: np.ndarray, g: np.ndarray) -> np.ndarray:
    """V = g W^T: potentials (B, N) after the window for graded spikes g (B, D)."""
    return np.asarray(g, np.float32) @ np.asarray(weights, np.float32).T


def group_max(v: np.ndarray, column: np.ndarray, n_cols: int, fill: float) -> np.ndarray:
    """Per row, the max of ``v`` over the neurons of each column (place): (B, n_cols).
    Neurons with column -1 are ignored; columns without neurons get ``fill``."""
    out = np.full((v.shape[0], n_cols), fill, np.float32)
    keep = np.flatnonzero(column >= 0)
    if keep.size:
        order = keep[np.argsort(column[keep], kind="stable")]
        cols = column[order]
        starts = np.flatnonzero(np.r_[True, cols[1:] != cols[:-1]])
        out[:, cols[starts]] = np.maximum.reduceat(v[:, order], starts, axis=1)
    return out


def consolidate(w: np.ndarray) -> np.ndarray:
    """Centre each neuron's synapses and scale them to unit L2 norm (zero rows stay 0)."""
    c = w - w.mean(axis=1, keepdims=True)
    n = np.linalg.norm(c, axis=1, keepdims=True)
    return np.where(n > 0, c / np.where(n > 0, n, 1.0), 0.0).astype(np.float32)


def region_views(images: np.ndarray, p: PlaceParams) -> np.ndarray:
    """Graded-spike views of a region: images (n_traverses, n_places, H, W[, C]) ->
    (n_views, n_places, D) float32, every traverse's jittered views of each place; the
    first n_traverses views are the unshifted images."""
    a = np.asarray(images)
    if a.ndim not in (4, 5) or a.shape[0] < 1 or a.shape[1] < 1:
        raise DataError(
            f"region images must be (n_traverses, n_places, H, W[, C]), got shape {a.shape}"
        )
    n_t, n_p = a.shape[:2]
    v = jitter_views(a.reshape(n_t * n_p, *a.shape[2:]), p.views, p.preprocess)
    v = v.reshape(-1, n_t, n_p, v.shape[-1]).reshape(-1, n_p, v.shape[-1])
    return graded_spikes(v, p.steps).astype(np.float32)


def _training_runtime(n_neurons: int, n_inputs: int, mode: str, w_scale: float):
    """Input 'image' -> Linear 'synapses'; Input 'teacher' carries the forced spikes. In
    int mode the graded spikes and teacher spikes are int8 codes (scale 1), the synapses
    int8 codes of ``w_scale``, the potentials int32."""
    from neuroplast.graph import Graph, Input, Linear
    from neuroplast.quant import QuantSpec
    from neuroplast.runtime import Runtime

    unit = QuantSpec(bits=8, scale=1.0)
    g = Graph(
        {
            "image": Input(shape=(n_inputs,), quant=unit),
            "teacher": Input(shape=(n_neurons,), quant=unit),
            "synapses": Linear(
                weight=np.zeros((n_neurons, n_inputs), np.float32),
                weight_q=QuantSpec(bits=8, scale=w_scale, narrow=True),
                out_q=QuantSpec(bits=32, scale=w_scale),
            ),
        },
        [("image", "synapses")],
    )
    return Runtime(g, mode=mode)


def _attach(rt, lr: float, total: float) -> None:
    """(Re)attach Hebbian-with-teacher then L1 scaling to the synapses (order matters)."""
    from neuroplast.plasticity import HebbianParams, SynapticScalingParams

    eng = rt.plasticity
    for kind in ("hebbian", "synaptic_scaling"):
        if any(b.layer == "synapses" and b.kind == kind for b in eng.bindings):
            eng.detach("synapses", kind)
    eng.attach("synapses", HebbianParams(lr=lr, decay=0.0, w_min=0.0, w_max=total), "teacher")
    eng.attach("synapses", SynapticScalingParams(target=total, w_min=0.0, w_max=total))


def train_module(
    images: np.ndarray,
    place_ids: np.ndarray,
    p: PlaceParams = PlaceParams(),
    seed: int = 0,
) -> PlaceModule:
    """Learn one region on a neuroplast Runtime through its plasticity engine.

    images: the region's reference images (n_traverses, n_places, H, W[, C]); place_ids:
    (n_places,). Each epoch presents every view once, one view per place per step (batch =
    places, each place in its own shuffled order, generator ``seed``). A place with fewer
    views than neurons leaves the rest untaught (owner -1).
    """
    ids = np.asarray(place_ids, np.int64)
    g_all = region_views(images, p)
    if ids.ndim != 1 or g_all.shape[1] != ids.size:
        raise DataError(f"{g_all.shape[1]} places of images but {ids.size} place ids")
    if len(np.unique(ids)) != ids.size:
        raise DataError("place ids of a region must be distinct")
    n_views, n_places, n_in = g_all.shape
    k = p.neurons_per_place
    n = n_places * k
    rng = np.random.default_rng(seed)
    total = 1.0  # L1 norm of each neuron's synapses (S)
    mean_sum = float(g_all.sum(axis=2).mean())
    # int8 step: a one-view imprint (max weight S T / sum g) lands at about code 63
    w_scale = 2.0 * total * p.steps / mean_sum / 127.0
    rt = _training_runtime(n, n_in, p.learn_mode, w_scale)
    dtype = np.int8 if p.learn_mode == "int" else np.float32
    rows = np.arange(n_places)
    group = rows[:, None] * k + np.arange(k)[None, :]  # (P, K) neuron ids per place
    shown = np.zeros(n_places, np.int64)
    no_teacher = np.zeros((n_places, n), dtype)
    for epoch in range(p.epochs):
        a = p.rate + (p.rate_min - p.rate) * epoch / max(p.epochs - 1, 1)
        # Hebbian lr such that one taught view moves the L1-scaled row by a fraction a;
        # the engine averages its Hebbian term over the batch, hence * n_places.
        _attach(rt, a * total / ((1 - a) * mean_sum) * n_places, total)
        order = np.stack([rng.permutation(n_views) for _ in range(n_places)], axis=1)
        for step in range(n_views):
            g = g_all[order[step], rows].astype(dtype)  # (P, D): one view per place
            rt.learn(False)
            v = rt.step({"image": g, "teacher": no_teacher})["synapses"]  # potentials (P, N)
            blank = shown < k
            within = v[rows[:, None], group]  # (P, K)
            pick = np.where(blank, np.minimum(shown, k - 1), within.argmax(axis=1))
            teach = np.zeros((n_places, n), dtype)
            teach[rows, group[rows, pick]] = 1.0
            rt.learn(True)
            rt.step({"image": g, "teacher": teach})
            shown += 1
    w = np.array(rt.params["synapses"]["weight"], np.float32)
    if p.learn_mode == "int":
        w *= np.float32(w_scale)  # codes -> synaptic weights
    taught = w.sum(axis=1) > 0
    owner = np.where(taught, np.repeat(ids, k), -1).astype(np.int64)
    w = consolidate(w) if p.centre else w
    # firing threshold: a fraction of the neuron's best potential on its own place's
    # unshifted reference images (the first n_traverses views, see region_views)
    own = potentials(w, g_all[: len(images)].reshape(-1, n_in)).reshape(-1, n_places, n)
    best = own.max(axis=0)[np.repeat(rows, k), np.arange(n)]
    threshold = (p.fire_fraction * np.maximum(best, 0)).astype(np.float32)
    return PlaceModule(w, owner, ids, threshold)
