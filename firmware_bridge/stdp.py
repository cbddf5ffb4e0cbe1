"""Integer pair-STDP with traces: the on-device learning rule, Python reference.

The firmware (``firmware/np_model.c: stdp_step``) and this module implement the same
rule bit for bit (PROTOCOL.md §8). The plastic layer is a LINEAR whose output feeds a
LIF directly; ``pre_j = [x_j - zp_in > 0]`` is the LINEAR's input, ``post_i`` the
LIF's spike. After every forward step, in this order::

    x_j <- (x_j * decay_pre  + 2^14) >> 15          pre trace  (Q15 decay, 0..32767)
    y_i <- (y_i * decay_post + 2^14) >> 15          post trace
    d_ij = eta_plus * x_j * post_i - eta_minus * y_i * pre_j     (units of 2^-16 LSB)
    for d_ij != 0 in row-major order (i, then j):
        q = floor(d / 2^16);  q += [xorshift32() >> 16  <  d - q * 2^16]
        w_ij <- clamp(w_ij + q, w_min, w_max)
    x_j <- min(x_j + a_pre, 32767) where pre_j;   y_i <- min(y_i + a_post, 32767) where post_i

Stochastic rounding keeps one int8 per synapse and is unbiased (E[q] = d / 2^16);
xorshift32 (13, 17, 5) starts from ``seed_mix(seed)`` (murmur3's fmix32, so seeds
1, 2, 3... give unrelated streams; a zero state becomes 0x9E3779B9) and draws only for
nonzero ``d``. Potentiation uses the pre trace *before* this step's pre
spike is added, so simultaneous pre/post spikes neither potentiate nor depress
through each other's new increments (causal pairs only).

Why not the host plasticity engine's float rule: it rounds float updates with
numpy's PCG64 generator, which a microcontroller cannot reproduce cheaply; this
integer rule costs a few adds per synapse and is exactly reproducible.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from neuroplast.errors import PlasticityError

__all__ = [
    "IntSTDPParams",
    "IntSTDPState",
    "xorshift32",
    "seed_mix",
    "int_stdp_init",
    "int_stdp_step",
    "IntSTDPEngine",
]

_SEED0 = 0x9E3779B9


@dataclass(frozen=True)
class IntSTDPParams:
    """Parameters of the integer STDP rule (all integers, see module docstring).

    ``a_pre``/``a_post``: trace increments per spike (trace units, <= 32767);
    ``decay_pre``/``decay_post``: per-step trace decay in Q15 (``round(exp(-dt/tau) 2^15)``);
    ``eta_plus``/``eta_minus``: learning rates in 2^-16 weight LSB per trace unit;
    ``w_min``/``w_max``: int8 weight bounds; ``seed``: xorshift32 seed.
    """

    a_pre: int = 8192
    a_post: int = 8192
    decay_pre: int = 29205  # exp(-1/8) in Q15: tau = 8 steps
    decay_post: int = 29205
    eta_plus: int = 24
    eta_minus: int = 20
    w_min: int = -127
    w_max: int = 127
    seed: int = 1

    def __post_init__(self) -> None:
        for f in ("a_pre", "a_post", "eta_plus", "eta_minus"):
            v = getattr(self, f)
            if not isinstance(v, (int, np.integer)) or not 0 <= v <= 0xFFFF:
                raise PlasticityError(
                    f"IntSTDPParams.{f} must be an integer in 0..65535, got {v!r}"
                )
        for f in ("decay_pre", "decay_post"):
            v = getattr(self, f)
            if not isinstance(v, (int, np.integer)) or not 0 <= v <= 32768:
                raise PlasticityError(f"IntSTDPParams.{f} must be Q15 in 0..32768, got {v!r}")
        if not -128 <= self.w_min <= self.w_max <= 127:
            raise PlasticityError(
                f"need -128 <= w_min <= w_max <= 127, got {self.w_min}, {self.w_max}"
            )
        if not 0 <= int(self.seed) <= 0xFFFFFFFF:
            raise PlasticityError(f"seed must fit in uint32, got {self.seed}")

    def pack(self, enable: bool, layer: int) -> bytes:
        """LEARN_ENABLE payload (20 bytes, PROTOCOL.md §4.5)."""
        return struct.pack(
            "<BBIHHHHHHbb",
            1 if enable else 0,
            layer,
            int(self.seed),
            self.a_pre,
            self.a_post,
            self.decay_pre,
            self.decay_post,
            self.eta_plus,
            self.eta_minus,
            self.w_min,
            self.w_max,
        )


class IntSTDPState(NamedTuple):
    """Pre traces ``x`` (n_pre,), post traces ``y`` (n_post,) as int64; PRNG word ``rng``."""

    x: np.ndarray
    y: np.ndarray
    rng: int


def xorshift32(state: int) -> int:
    """One xorshift32 step (Marsaglia 13/17/5) on a uint32; returns the new state."""
    x = state & 0xFFFFFFFF
    x ^= (x << 13) & 0xFFFFFFFF
    x ^= x >> 17
    x ^= (x << 5) & 0xFFFFFFFF
    return x


def seed_mix(seed: int) -> int:
    """murmur3 fmix32 of a uint32 seed (never 0): the generator's first state."""
    h = int(seed) & 0xFFFFFFFF
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & 0xFFFFFFFF
    h ^= h >> 16
    return h or _SEED0


def int_stdp_init(n_pre: int, n_post: int, seed: int) -> IntSTDPState:
    """Zero traces and a generator seeded like the firmware's LEARN_ENABLE."""
    return IntSTDPState(np.zeros(n_pre, np.int64), np.zeros(n_post, np.int64), seed_mix(seed))


def int_stdp_step(
    w: np.ndarray, pre: np.ndarray, post: np.ndarray, state: IntSTDPState, p: IntSTDPParams
) -> tuple[np.ndarray, IntSTDPState, int]:
    """One update. ``w`` (n_post, n_pre) int8 codes, ``pre``/``post`` boolean spikes.

    Returns ``(new_w, new_state, n_changed)``; inputs are not modified.
    """
    pre = np.asarray(pre, bool).ravel()
    post = np.asarray(post, bool).ravel()
    if w.shape != (post.size, pre.size):
        raise PlasticityError(f"weights {w.shape} do not match post {post.size} x pre {pre.size}")
    x = (state.x * p.decay_pre + (1 << 14)) >> 15
    y = (state.y * p.decay_post + (1 << 14)) >> 15
    d = np.zeros(w.shape, np.int64)
    d += np.outer(post, p.eta_plus * x)
    d -= np.outer(p.eta_minus * y, pre)
    flat = np.flatnonzero(d)
    new_w = w.astype(np.int64).copy()
    rng = state.rng
    if flat.size:
        dv = d.ravel()[flat]
        q = dv >> 16
        frac = dv - (q << 16)
        draws = np.empty(flat.size, np.int64)
        for k in range(flat.size):  # sequential by definition of the generator
            rng = xorshift32(rng)
            draws[k] = rng >> 16
        q = q + (draws < frac)
        wv = new_w.ravel()
        old = wv[flat].copy()
        wv[flat] = np.clip(old + q, p.w_min, p.w_max)
        changed = int(np.count_nonzero(wv[flat] != old))
    else:
        changed = 0
    x = np.where(pre, np.minimum(x + p.a_pre, 32767), x)
    y = np.where(post, np.minimum(y + p.a_post, 32767), y)
    return new_w.astype(w.dtype), IntSTDPState(x, y, rng), changed


class IntSTDPEngine:
    """Host-side engine applying :func:`int_stdp_step` to a Runtime, like the board does.

    Attach with ``rt.plasticity = IntSTDPEngine(rt, "fc1", params); rt.learn(True)``;
    after every ``rt.step`` it updates ``rt.params["fc1"]["weight"]`` in place using the
    layer's input (pre) and the spikes of the LIF node that follows it (post).
    """

    def __init__(self, rt: Any, layer: str, params: IntSTDPParams) -> None:
        from neuroplast.graph.nodes import LIF, Linear

        g = rt.graph
        if layer not in g.nodes or not isinstance(g.nodes[layer], Linear):
            raise PlasticityError(f"layer {layer!r} is not a Linear node")
        succ = g.successors(layer)
        if len(succ) != 1 or not isinstance(g.nodes[succ[0]], LIF):
            raise PlasticityError(f"layer {layer!r} must feed exactly one LIF node")
        if rt.mode != "int":
            raise PlasticityError("the integer STDP rule needs an integer-mode runtime")
        self.layer = layer
        self.post_node = succ[0]
        self.params = params
        w = rt.params[layer]["weight"]
        self.zp_in = rt.kernels[layer].zp_in
        self.state = int_stdp_init(w.shape[1], w.shape[0], params.seed)
        self.updates = 0

    def has_rules(self) -> bool:
        return True

    def apply(self, rt: Any, reward: float | None = None) -> None:
        from neuroplast.runtime.kernels import SparseInput

        x = rt.last_inputs[self.layer][0]
        w = rt.params[self.layer]["weight"]
        if isinstance(x, SparseInput):
            pre = np.zeros(w.shape[1], bool)
            pre[np.asarray(x.indices)] = True
        else:
            pre = (np.asarray(x, np.int64).reshape(-1, w.shape[1])[0] - self.zp_in) > 0
        post = np.asarray(rt.last_outputs[self.post_node]).reshape(-1)[: w.shape[0]] != 0
        new_w, self.state, n = int_stdp_step(w, pre, post, self.state, self.params)
        w[...] = new_w  # in place: rt.params is what the kernel reads
        self.updates += n

    def state_dict(self) -> dict[str, np.ndarray]:
        return {
            "int_stdp/x": self.state.x,
            "int_stdp/y": self.state.y,
            "int_stdp/rng": np.array(self.state.rng, np.uint32),
        }

    def load_state_dict(self, d: dict[str, np.ndarray]) -> None:
        self.state = IntSTDPState(
            np.asarray(d["int_stdp/x"], np.int64).copy(),
            np.asarray(d["int_stdp/y"], np.int64).copy(),
            int(d["int_stdp/rng"]),
        )
