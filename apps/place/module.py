"""One compact place-recognition SNN module (Diehl & Cook style), simulated in numpy.

Formulation (a current-based, discrete-time simplification of VPRSNN's Brian2 network; all
potentials in mV, time in steps of ``dt_ms``):

* Input: ``D`` Poisson neurons (rate = intensity x ``max_rate_hz``) or, at query time, the
  expected input per step (``mode="rate"``, deterministic).
* ``N`` excitatory LIF neurons, one step per ``dt``::

      v <- v_rest + (v - v_rest) * exp(-dt / tau_m) + g * (W s_in)  - w_inh * (S - s_self)
      spike  if  v > v_th + theta;   then v <- v_reset and ``refractory_ms`` of clamping

  ``S - s_self`` is the number of *other* neurons of the module that spiked in the previous
  step: the E->I->E loop of Diehl & Cook (one inhibitory neuron per excitatory one,
  all-but-self inhibition) collapsed into a direct one-step-delayed inhibition.
* Learning (training only): Diehl & Cook STDP with nearest-spike traces
  (``rules.diehl_cook_presentation_delta``), weights frozen within a presentation and the
  summed update applied at its end, weights clipped to [0, w_max], every neuron's input weights
  normalised to ``weight_sum`` before each presentation, and adaptive threshold
  ``theta += theta_plus`` per spike.
* State is reset between presentations (stands in for Brian2's 150 ms resting period).

Because weights are frozen within a presentation, the input current for all ``T`` steps is one
matrix product, and only the ``T``-step neuron loop is sequential.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from neuroplast.apps.place import rules
from neuroplast.apps.place.preprocess import poisson_encode
from neuroplast.errors import DataError

__all__ = [
    "ModuleParams",
    "PlaceModule",
    "LIFState",
    "lif_wta_step",
    "simulate",
    "input_current",
    "init_weights",
    "present",
    "train_module",
    "train_modules",
    "module_counts",
    "assign_neurons",
    "place_scores",
]


def _default_stdp() -> rules.DiehlCookSTDPParams:
    # VPRSNN signs the pre-spike term "+" (see seed-algorithms section 2); dt in ms.
    # nu_post = 0.05 (VPRSNN: 0.01) because training here sees ~10x less presentation time
    # (10 epochs x 100 ms vs 30 x 350 ms); on the synthetic route it doubled Recall@1.
    return rules.DiehlCookSTDPParams(nu_pre=1e-4, nu_post=5e-2, dt=1.0, pre_sign="+")


@dataclass(frozen=True)
class ModuleParams:
    """Parameters of one module and its training (units: mV, ms, Hz).

    n_neurons: excitatory neurons per module. steps: time steps per presentation.
    input_gain_mv: membrane jump per unit weight per input spike. w_inh_mv: inhibition each
    spike sends to every other neuron of the module. weight_sum: target sum of each neuron's
    input weights (Diehl & Cook: 78 for 784 inputs); None -> 0.1 * n_inputs.
    """

    n_neurons: int = 100
    steps: int = 100
    dt_ms: float = 1.0
    max_rate_hz: float = 63.75
    tau_m_ms: float = 100.0
    v_rest: float = -65.0
    v_reset: float = -65.0
    v_th: float = -52.0
    refractory_ms: float = 5.0
    input_gain_mv: float = 0.65
    w_inh_mv: float = 20.0
    theta_plus_mv: float = 0.3
    tau_theta_ms: float = 1e7
    weight_sum: float | None = None
    w_init_scale: float = 0.3
    epochs: int = 10
    stdp: rules.DiehlCookSTDPParams = field(default_factory=_default_stdp)

    def __post_init__(self) -> None:
        if self.n_neurons < 1 or self.steps < 1 or self.epochs < 0:
            raise DataError(
                f"ModuleParams: n_neurons ({self.n_neurons}) and steps ({self.steps}) must be "
                f">= 1 and epochs ({self.epochs}) >= 0"
            )
        if self.max_rate_hz * self.dt_ms / 1000.0 > 1.0:
            raise DataError("ModuleParams: max_rate_hz * dt_ms / 1000 must be <= 1")
        if self.tau_m_ms <= 0 or self.dt_ms <= 0 or self.tau_theta_ms <= 0:
            raise DataError("ModuleParams: tau_m_ms, dt_ms and tau_theta_ms must be > 0")
        if abs(self.stdp.dt - self.dt_ms) > 1e-12:
            raise DataError(
                f"ModuleParams: stdp.dt ({self.stdp.dt}) must equal dt_ms ({self.dt_ms})"
            )

    @property
    def p_max(self) -> float:
        """Spike probability per step of a fully bright input."""
        return self.max_rate_hz * self.dt_ms / 1000.0

    @property
    def alpha_m(self) -> float:
        return float(np.exp(-self.dt_ms / self.tau_m_ms))

    @property
    def ref_steps(self) -> int:
        return int(round(self.refractory_ms / self.dt_ms))

    def total_weight(self, n_inputs: int) -> float:
        return float(self.weight_sum if self.weight_sum is not None else 0.1 * n_inputs)


@dataclass(frozen=True)
class PlaceModule:
    """A trained module: weights (N, D), thresholds theta (N,), neuron -> place assignment
    (global place ids, -1 = never fired on its region), and the places of its region."""

    weights: np.ndarray
    theta: np.ndarray
    assignments: np.ndarray
    places: np.ndarray
    params: ModuleParams

    @property
    def n_neurons(self) -> int:
        return int(self.weights.shape[0])

    @property
    def n_inputs(self) -> int:
        return int(self.weights.shape[1])


@dataclass(frozen=True)
class LIFState:
    """Membrane potential v (mV), refractory steps left, spikes of the previous step."""

    v: np.ndarray
    refr: np.ndarray
    s: np.ndarray

    @staticmethod
    def init(shape: tuple[int, ...], p: ModuleParams) -> LIFState:
        return LIFState(
            np.full(shape, p.v_rest, dtype=np.float32),
            np.zeros(shape, dtype=np.int32),
            np.zeros(shape, dtype=np.float32),
        )


def lif_wta_step(
    i_t: np.ndarray, state: LIFState, v_thresh: np.ndarray, p: ModuleParams
) -> tuple[np.ndarray, LIFState]:
    """One step of the module's excitatory layer; shapes (..., N), the last axis is the module.

    v' = v_rest + (v - v_rest) a_m + i_t - w_inh (sum_k s_k - s_self); refractory neurons are
    held at v_reset; spike where v' > v_th + theta, then v' = v_reset for ``ref_steps``.
    """
    inh = state.s.sum(axis=-1, keepdims=True) - state.s
    inh *= np.float32(p.w_inh_mv)
    v = state.v - np.float32(p.v_rest)
    v *= np.float32(p.alpha_m)
    v += i_t
    v -= inh
    v += np.float32(p.v_rest)
    held = state.refr > 0
    np.copyto(v, np.float32(p.v_reset), where=held)
    s = v > v_thresh
    np.copyto(v, np.float32(p.v_reset), where=s)
    refr = state.refr - held
    np.copyto(refr, np.int32(p.ref_steps), where=s)
    sf = s.astype(np.float32)
    return sf, LIFState(v, refr, sf)


def simulate(
    current: np.ndarray, theta: np.ndarray, p: ModuleParams, steps: int | None = None
) -> np.ndarray:
    """Run the layer for ``steps`` from rest; returns spikes (T, ..., N) float32.

    current: (T, ..., N) per-step input currents (mV), or (..., N) constant over all steps.
    """
    t_len = current.shape[0] if steps is None else steps
    const = steps is not None
    shape = current.shape if const else current.shape[1:]
    state = LIFState.init(shape, p)
    out = np.empty((t_len, *shape), dtype=np.float32)
    th = (p.v_th + theta).astype(np.float32)
    for t in range(t_len):
        out[t], state = lif_wta_step(current if const else current[t], state, th, p)
    return out


def input_current(x: np.ndarray, weights: np.ndarray, p: ModuleParams) -> np.ndarray:
    """Expected input current per step (rate mode): (x * p_max) @ (g W)^T, mV.

    Evaluated in this order, in float32, exactly as the runtime graph does it (Linear with
    weight g W fed x * p_max), so both give identical spikes.
    """
    xw = np.asarray(x, np.float32) * np.float32(p.p_max)
    return (xw @ (np.float32(p.input_gain_mv) * weights).T).astype(np.float32)


def init_weights(n_inputs: int, p: ModuleParams, rng: np.random.Generator) -> np.ndarray:
    """Diehl & Cook initialisation: (U(0,1) + 0.01) * w_init_scale, shape (N, D)."""
    return ((rng.random((p.n_neurons, n_inputs)) + 0.01) * p.w_init_scale).astype(np.float32)


def present(
    weights: np.ndarray,
    theta: np.ndarray,
    spikes_in: np.ndarray,
    p: ModuleParams,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Present one spike raster with learning; returns (weights', theta', counts).

    Shapes: weights (N, D), theta (N,), spikes_in (T, D) for one module, or with a leading
    module axis M for M independent modules trained in lockstep (vectorised, no interaction).
    Order as Diehl & Cook: normalise weights, run, then apply the STDP update and theta.
    """
    single = weights.ndim == 2
    if single:
        weights, theta, spikes_in = weights[None], theta[None], spikes_in[None]
    w = rules.normalize_weights(weights, p.total_weight(weights.shape[-1]))
    s_in = spikes_in.astype(np.float32)
    cur = np.float32(p.input_gain_mv) * np.matmul(s_in, w.transpose(0, 2, 1))  # (M, T, N)
    post = simulate(cur.transpose(1, 0, 2), theta, p).transpose(1, 0, 2)  # (M, T, N)
    dw = rules.diehl_cook_presentation_delta(s_in, post, p.stdp)
    w = np.clip(w + dw, p.stdp.w_min, p.stdp.w_max).astype(np.float32)
    counts = post.sum(axis=1)
    decay = float(np.exp(-p.steps * p.dt_ms / p.tau_theta_ms))
    theta = rules.theta_update(theta, counts, p.theta_plus_mv, decay)
    if single:
        return w[0], theta[0], counts[0]
    return w, theta, counts


def _check_inputs(x: np.ndarray, what: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float32)
    if a.ndim != 2 or a.shape[0] == 0:
        raise DataError(f"{what} must be a non-empty (n_images, n_inputs) array, got {a.shape}")
    if not np.all(np.isfinite(a)) or a.min() < 0 or a.max() > 1:
        raise DataError(f"{what} must hold preprocessed intensities in [0, 1]")
    return a


def module_counts(
    weights: np.ndarray,
    theta: np.ndarray,
    x: np.ndarray,
    p: ModuleParams,
    mode: str = "rate",
    rng: np.random.Generator | None = None,
    n_modules: int = 1,
    chunk: int = 256,
) -> np.ndarray:
    """Spike counts (B, N_total) of one or several modules (no learning).

    weights: (n_modules * N, D) stacked module weights; inhibition acts within each block of
    N = rows / n_modules neurons. mode "rate" feeds the expected input per step
    (deterministic); "poisson" draws spike rasters from ``rng``.
    """
    x = _check_inputs(x, "x")
    if weights.shape[1] != x.shape[1]:
        raise DataError(f"inputs have {x.shape[1]} values, the module expects {weights.shape[1]}")
    if mode not in ("rate", "poisson"):
        raise DataError(f"mode must be 'rate' or 'poisson', got {mode!r}")
    n_tot = weights.shape[0]
    if n_tot % n_modules:
        raise DataError(f"{n_tot} neurons do not split into {n_modules} equal modules")
    n = n_tot // n_modules
    out = np.empty((x.shape[0], n_tot), dtype=np.float32)
    th = theta.reshape(n_modules, n)
    rng = rng or np.random.default_rng(0)
    for a in range(0, x.shape[0], chunk):
        xb = x[a : a + chunk]
        if mode == "rate":
            cur = input_current(xb, weights, p).reshape(len(xb), n_modules, n)
            spk = simulate(cur, th, p, steps=p.steps)
        else:
            s_in = poisson_encode(xb, p.steps, rng, p.max_rate_hz, p.dt_ms).astype(np.float32)
            cur = np.float32(p.input_gain_mv) * (s_in @ weights.T)
            spk = simulate(cur.reshape(p.steps, len(xb), n_modules, n), th, p)
        out[a : a + chunk] = spk.sum(axis=0).reshape(len(xb), n_tot)
    return out


def assign_neurons(counts: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Standard assignment: each neuron -> the label with its highest mean response.

    counts: (n_images, N); labels: (n_images,). Neurons that never fired get -1.
    """
    labels = np.asarray(labels)
    uniq = np.unique(labels)
    means = np.stack([counts[labels == u].mean(axis=0) for u in uniq])  # (L, N)
    best = uniq[np.argmax(means, axis=0)]
    return np.where(means.max(axis=0) > 0, best, -1).astype(np.int64)


def place_scores(
    counts: np.ndarray, assignments: np.ndarray, places: np.ndarray, mask: np.ndarray | None = None
) -> np.ndarray:
    """Score of each place for each query: mean count over the neurons assigned to it.

    counts: (Q, N); assignments: (N,) place ids; places: (P,) ids to score. Masked (hyperactive)
    neurons count as zero but stay in the denominator, as VPRSNN zeroes their responses.
    Places without neurons score 0. Returns (Q, P) float32.
    """
    c = counts if mask is None else np.where(mask[None, :], 0.0, counts)
    places = np.asarray(places)
    col = {int(pl): i for i, pl in enumerate(places)}
    idx = np.array([col.get(int(a), -1) for a in assignments])
    ok = idx >= 0
    onehot = np.zeros((len(assignments), len(places)), dtype=np.float32)
    onehot[np.flatnonzero(ok), idx[ok]] = 1.0
    n_per = onehot.sum(axis=0)
    return ((c @ onehot) / np.maximum(n_per, 1.0)).astype(np.float32)


def train_modules(
    jobs: list[tuple[np.ndarray, np.ndarray]],
    p: ModuleParams = ModuleParams(),
    seeds: list[int] | None = None,
) -> list[PlaceModule]:
    """Train several independent modules in lockstep (one vectorised simulation).

    jobs: per module (x, labels): x (n_images, D) preprocessed images of its region (all
    reference traverses), labels the place id of each image. ``p.epochs`` passes over each
    module's images in its own shuffled order with Poisson input and learning as in
    :func:`present`; a module with fewer images idles (no update) while the others finish.
    Module m uses ``np.random.default_rng(seeds[m])`` for init, order and spikes, so a module
    is the same whether trained alone or in a batch (up to float32 summation order).
    Neurons are then assigned to places with deterministic rate-mode responses.
    """
    if not jobs:
        raise DataError("no modules to train")
    xs, labs = [], []
    for k, (x, labels) in enumerate(jobs):
        x = _check_inputs(x, f"module {k} inputs")
        labels = np.asarray(labels)
        if labels.shape != (x.shape[0],):
            raise DataError(
                f"module {k}: labels must have shape ({x.shape[0]},), got {labels.shape}"
            )
        xs.append(x)
        labs.append(labels)
    d = {x.shape[1] for x in xs}
    if len(d) != 1:
        raise DataError(f"all modules need the same input size, got {sorted(d)}")
    n_in = d.pop()
    seeds = list(range(len(jobs))) if seeds is None else list(seeds)
    if len(seeds) != len(jobs):
        raise DataError(f"{len(seeds)} seeds given for {len(jobs)} modules")
    rngs = [np.random.default_rng(sd) for sd in seeds]
    w = np.stack([init_weights(n_in, p, r) for r in rngs])
    theta = np.zeros((len(jobs), p.n_neurons), dtype=np.float32)
    n_max = max(len(x) for x in xs)
    for _ in range(p.epochs):
        orders = [r.permutation(len(x)) for r, x in zip(rngs, xs)]
        for k in range(n_max):
            act = np.array([k < len(x) for x in xs])
            s_in = np.stack(
                [
                    poisson_encode(x[o[k]], p.steps, r, p.max_rate_hz, p.dt_ms)
                    if k < len(x)
                    else np.zeros((p.steps, n_in), np.uint8)
                    for x, o, r in zip(xs, orders, rngs)
                ]
            )
            w_new, th_new, _ = present(w, theta, s_in, p)
            w = np.where(act[:, None, None], w_new, w)
            theta = np.where(act[:, None], th_new, theta)
    out = []
    for m in range(len(jobs)):
        wm = rules.normalize_weights(w[m], p.total_weight(n_in))
        counts = module_counts(wm, theta[m], xs[m], p)
        out.append(
            PlaceModule(wm, theta[m].copy(), assign_neurons(counts, labs[m]), np.unique(labs[m]), p)
        )
    return out


def train_module(
    x: np.ndarray,
    labels: np.ndarray,
    p: ModuleParams = ModuleParams(),
    seed: int = 0,
) -> PlaceModule:
    """Train one module on its region (see :func:`train_modules`)."""
    return train_modules([(x, labels)], p, [seed])[0]
