"""Integer pair-STDP with traces: the one integer learning rule of host and board.

This module is the single definition. The plasticity engine runs it in an integer-mode
:class:`~neuroplast.runtime.Runtime` (rule kind ``"int_stdp"``, an integer-native
:class:`~neuroplast.plasticity.spec.RuleSpec`: :func:`int_stdp_update`), and the board firmware
(``firmware_bridge/firmware/np_model.c: stdp_step``, PROTOCOL.md §8) implements the same
rule bit for bit; the test ``tests/firmware_bridge/test_bridge_learn.py`` runs both over
10^4 learning steps on random layers and compares weights, traces and generator state.

The plastic layer is a ``Linear`` whose output feeds a ``LIF`` directly;
``pre_j = [x_j - zp_in > 0]`` is the Linear's integer input, ``post_i`` the LIF's spike.
After every forward step, in this order::

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
nonzero ``d``. Potentiation uses the pre trace *before* this step's pre spike is added,
so simultaneous pre/post spikes neither potentiate nor depress through each other's new
increments (causal pairs only). A trace of ``a`` decays as ``a (decay/2^15)^k``
(to rounding), i.e. ``decay = round(2^15 exp(-dt/tau))``.

Why not the float rules with :func:`~neuroplast.plasticity.quantized_apply`: those
round with numpy's PCG64 generator and float traces, which a microcontroller cannot
reproduce cheaply; this rule costs a few integer adds per synapse and is exactly
reproducible. :func:`int_stdp_from_pair` converts a float :class:`PairSTDPParams`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from neuroplast.errors import PlasticityError, RuntimeStateError
from neuroplast.plasticity.spec import QStepIO, RuleSpec

__all__ = [
    "IntSTDPParams",
    "IntSTDPState",
    "xorshift32",
    "xorshift32_stream",
    "seed_mix",
    "int_stdp_init",
    "int_stdp_step",
    "int_stdp_check_state",
    "int_stdp_from_pair",
    "int_stdp_update",
    "TRACE_MAX",
]

_SEED0 = 0x9E3779B9
#: Traces saturate here (they fit a u16 on the wire).
TRACE_MAX = 32767


def _is_int(v: object) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


@dataclass(frozen=True)
class IntSTDPParams:
    """Parameters of the integer STDP rule (all integers, see the module docstring).

    ``a_pre``/``a_post``: trace increments per spike (trace units; traces saturate at 32767);
    ``decay_pre``/``decay_post``: per-step trace decay in Q15 (``round(exp(-dt/tau) 2^15)``);
    ``eta_plus``/``eta_minus``: learning rates in 2^-16 weight LSB per trace unit;
    ``w_min``/``w_max``: int8 weight bounds (codes); ``seed``: xorshift32 seed (uint32).
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
            if not _is_int(v) or not 0 <= v <= 0xFFFF:
                raise PlasticityError(
                    f"IntSTDPParams.{f} must be an integer in 0..65535, got {v!r}"
                )
        for f in ("decay_pre", "decay_post"):
            v = getattr(self, f)
            if not _is_int(v) or not 0 <= v <= 32768:
                raise PlasticityError(f"IntSTDPParams.{f} must be Q15 in 0..32768, got {v!r}")
        if not (_is_int(self.w_min) and _is_int(self.w_max)) or not (
            -128 <= self.w_min <= self.w_max <= 127
        ):
            raise PlasticityError(
                f"IntSTDPParams needs integers -128 <= w_min <= w_max <= 127, got "
                f"{self.w_min!r}, {self.w_max!r}"
            )
        if not _is_int(self.seed) or not 0 <= int(self.seed) <= 0xFFFFFFFF:
            raise PlasticityError(f"IntSTDPParams.seed must fit in uint32, got {self.seed!r}")


class IntSTDPState(NamedTuple):
    """Pre traces ``x`` (n_pre,), post traces ``y`` (n_post,) as int64 in 0..32767;
    the xorshift32 word ``rng`` (a uint32, never 0)."""

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


_JUMP_LEN = 4096
_jump: np.ndarray | None = None


def _jump_table() -> np.ndarray:
    """``J[b, j - 1] = xorshift32^j(1 << b)`` for ``j = 1..4096``: xorshift32 is linear
    over GF(2), so ``xorshift32^j(s)`` is the XOR of ``J[b, j - 1]`` over the set bits
    ``b`` of ``s``. Built once by doubling (rows ``m+1..2m`` = ``T^m`` of rows ``1..m``)."""
    global _jump
    if _jump is None:
        t = np.array([[xorshift32(1 << b) for b in range(32)]], np.uint32)
        while t.shape[0] < _JUMP_LEN:
            last = t[-1]  # T^m on the basis
            out = np.zeros_like(t)
            for b in range(32):
                out ^= np.where((t >> np.uint32(b)) & np.uint32(1), last[b], np.uint32(0))
            t = np.concatenate([t, out])
        _jump = np.ascontiguousarray(t[:_JUMP_LEN].T)  # (32, L): contiguous per bit
    return _jump


def xorshift32_stream(state: int, n: int) -> tuple[np.ndarray, int]:
    """The next ``n`` states of xorshift32 from ``state`` (uint32 array) and the last
    one; equal to ``n`` calls of :func:`xorshift32`, computed in blocks of 4096 with the
    jump table (a few vector XORs per block instead of ``n`` Python steps)."""
    out = np.empty(n, np.uint32)
    s = int(state) & 0xFFFFFFFF
    if n < 48:  # a short stream: the plain loop is cheaper than the vector XORs
        for k in range(n):
            s ^= (s << 13) & 0xFFFFFFFF
            s ^= s >> 17
            s ^= (s << 5) & 0xFFFFFFFF
            out[k] = s
        return out, s
    jt = _jump_table()
    for c in range(0, n, _JUMP_LEN):
        m = min(_JUMP_LEN, n - c)
        acc = np.zeros(m, np.uint32)
        for b in range(32):
            if s >> b & 1:
                acc ^= jt[b, :m]
        out[c : c + m] = acc
        s = int(acc[-1])
    return out, s


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


def int_stdp_check_state(state: IntSTDPState, n_pre: int, n_post: int) -> IntSTDPState:
    """Validate a (loaded) state for a ``(n_post, n_pre)`` layer; returns it as int64
    arrays. Raises :class:`RuntimeStateError` naming the bad part."""
    x = np.asarray(state.x)
    y = np.asarray(state.y)
    for name, a, n in (("x (pre trace)", x, n_pre), ("y (post trace)", y, n_post)):
        if a.shape != (n,) or a.dtype.kind not in "iu":
            raise RuntimeStateError(
                f"int_stdp state {name}: got {a.dtype}{a.shape}, need {n} integers"
            )
        if a.size and (a.min() < 0 or a.max() > TRACE_MAX):
            raise RuntimeStateError(f"int_stdp state {name}: values outside 0..{TRACE_MAX}")
    rng = np.asarray(state.rng)
    if rng.shape != () or rng.dtype.kind not in "iu" or not 0 < int(rng) <= 0xFFFFFFFF:
        raise RuntimeStateError(f"int_stdp state rng must be one nonzero uint32, got {rng!r}")
    return IntSTDPState(x.astype(np.int64), y.astype(np.int64), int(rng))


def int_stdp_step(
    w: np.ndarray, pre: np.ndarray, post: np.ndarray, state: IntSTDPState, p: IntSTDPParams
) -> tuple[np.ndarray, IntSTDPState, int]:
    """One update. ``w`` (n_post, n_pre) int8 codes, ``pre``/``post`` boolean spikes.

    Returns ``(new_w, new_state, n_changed)`` where ``n_changed`` counts synapses whose
    weight moved (the board's LEARN_UPDATES); inputs are not modified.
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
    new_w = w.astype(np.int64)
    rng = state.rng
    changed = 0
    if flat.size:
        dv = d.ravel()[flat]
        q = dv >> 16
        frac = dv - (q << 16)
        states, rng = xorshift32_stream(rng, flat.size)  # one draw per nonzero d, in order
        q = q + ((states >> np.uint32(16)).astype(np.int64) < frac)
        wv = new_w.ravel()
        old = wv[flat].copy()
        wv[flat] = np.clip(old + q, p.w_min, p.w_max)
        changed = int(np.count_nonzero(wv[flat] != old))
    x = np.where(pre, np.minimum(x + p.a_pre, TRACE_MAX), x)
    y = np.where(post, np.minimum(y + p.a_post, TRACE_MAX), y)
    return new_w.astype(w.dtype), IntSTDPState(x, y, rng), changed


def int_stdp_from_pair(
    p: object,
    weight_scale: float,
    seed: int = 1,
    trace_unit: float | None = None,
    q_range: tuple[int, int] = (-127, 127),
) -> IntSTDPParams:
    """The integer rule closest to a float additive all-to-all :class:`PairSTDPParams`
    on a layer with weight scale ``weight_scale`` (real units per int8 code).

    A float trace value ``v`` is ``v * U`` trace units (``U = trace_unit``, default
    ``8192 / max(a_plus, a_minus)``); then ``a_pre = round(a_plus U)``,
    ``decay = round(2^15 exp(-dt/tau))``, ``eta = round(eta_f 2^16 / (U s))`` (so one
    pairing moves the weight by ``eta_f a exp(-delta dt/tau)`` in expectation, to
    rounding), and the bounds are ``[ceil(w_min/s), floor(w_max/s)]`` within ``q_range``.
    Raises :class:`PlasticityError` when the float rule has no integer form.
    """
    from neuroplast.plasticity.stdp import PairSTDPParams

    if not isinstance(p, PairSTDPParams):
        raise PlasticityError(f"int_stdp_from_pair needs PairSTDPParams, got {type(p).__name__}")
    if p.weight_dependence != "additive" or p.trace != "all-to-all":
        raise PlasticityError(
            "int_stdp_from_pair: only additive, all-to-all pair STDP has an integer form "
            f"(got {p.weight_dependence}, {p.trace})"
        )
    s = float(weight_scale)
    if not (math.isfinite(s) and s > 0):
        raise PlasticityError(f"int_stdp_from_pair: weight_scale must be > 0, got {weight_scale!r}")
    amp = max(p.a_plus, p.a_minus)
    u = float(trace_unit) if trace_unit is not None else (8192.0 / amp if amp > 0 else 1.0)
    lo = max(q_range[0], math.ceil(p.w_min / s)) if math.isfinite(p.w_min) else q_range[0]
    hi = min(q_range[1], math.floor(p.w_max / s)) if math.isfinite(p.w_max) else q_range[1]
    fields = {
        "a_pre": round(p.a_plus * u),
        "a_post": round(p.a_minus * u),
        "decay_pre": round(32768 * math.exp(-p.dt / p.tau_plus)),
        "decay_post": round(32768 * math.exp(-p.dt / p.tau_minus)),
        "eta_plus": round(p.eta_plus * 65536 / (u * s)),
        "eta_minus": round(p.eta_minus * 65536 / (u * s)),
    }
    for k, v in fields.items():
        top = 0xFFFF if k.startswith("eta") else TRACE_MAX if k.startswith("a_") else 32768
        if v > top:
            raise PlasticityError(
                f"int_stdp_from_pair: {k} = {v} exceeds {top}; use a smaller trace_unit "
                "or learning rate"
            )
    return IntSTDPParams(**fields, w_min=int(lo), w_max=int(hi), seed=seed)


# --------------------------------------------------------------------------- engine rule


def _state_decl(p: IntSTDPParams, n_post: int, n_pre: int) -> dict:
    return {
        "x": ((n_pre,), "int64"),
        "y": ((n_post,), "int64"),
        "rng": ((), "uint32"),
        "changed": ((), "int64"),
    }


def _init(p: IntSTDPParams, n_post: int, n_pre: int) -> dict[str, np.ndarray]:
    st = int_stdp_init(n_pre, n_post, p.seed)
    return {
        "x": st.x,
        "y": st.y,
        "rng": np.array(st.rng, np.uint32),
        "changed": np.array(0, np.int64),
    }


def _check(p: IntSTDPParams, state: dict[str, np.ndarray]) -> None:
    int_stdp_check_state(
        IntSTDPState(state["x"], state["y"], state["rng"]), state["x"].size, state["y"].size
    )


def int_stdp_update(
    p: IntSTDPParams, io: QStepIO, state: dict[str, np.ndarray]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The engine's integer-native update (:class:`~neuroplast.plasticity.spec.RuleSpec`
    ``update_q``): ``pre = input code - zp_in > 0``, ``post = spike code != 0``, then one
    :func:`int_stdp_step`, exactly as the firmware does after each step. ``changed``
    counts weights that moved (the board's LEARN_UPDATES)."""
    n_post, n_pre = io.q.shape
    st = int_stdp_check_state(IntSTDPState(state["x"], state["y"], state["rng"]), n_pre, n_post)
    q, st, n = int_stdp_step(io.q, io.pre[0] > 0, io.post[0] != 0, st, p)
    return q, {
        "x": st.x,
        "y": st.y,
        "rng": np.array(st.rng, np.uint32),
        "changed": np.array(int(state["changed"]) + n, np.int64),
    }


def _float_update(p: IntSTDPParams, io: object, state: dict) -> tuple[None, dict]:
    raise PlasticityError(
        "rule 'int_stdp' is integer-only: load the runtime in integer mode (mode='int')"
    )


SPECS = (
    RuleSpec(
        "int_stdp",
        IntSTDPParams,
        update=_float_update,
        update_q=int_stdp_update,
        state=_state_decl,
        init=_init,
        check_state=_check,
        batch1=True,
    ),
)
