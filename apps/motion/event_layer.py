"""Event-driven heterogeneous-delay layer (numpy, optional numba): cost = events x nnz taps.

Instead of convolving a dense raster, every event scatters into the delayed taps of
the non-zero (pruned) weights. An event ``(p, t, y, x)`` adds, for each non-zero
``W[c, p', k, dy, dx]`` with delay ``d = n_delays - 1 - k``::

    branch 0 (direct input,  p' = p):      B0(c, t + d, y - dy, x - dx) += W
    branch 1 (flipped input, p' = 1 - p):  B1(c, t + d, y - dy, x - dx) += W

and the output at step ``t`` (complete once all events of bins <= t are in) is
``z(c, t) = max(B0, B1) + b_c`` on the valid grid ``(H - ky + 1, W - kx + 1)`` -
exactly :func:`~neuroplast.apps.motion.model.hd_logits_torch` (test: against
``torch.nn.functional.conv3d``). Accumulators live in a buffer spanning a chunk of
time bins plus ``n_delays - 1`` slots of carried future, padded by the kernel size
so every tap is a constant flat offset (no bounds checks in the inner loop). The
layout is ``(slot, y, x, branch, class)``: one event's taps for all classes at one
delay and displacement are contiguous, so an event touches ``n_delays x ky x kx``
small blocks that stay in cache (a class-major layout is DRAM-latency bound).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neuroplast.apps.motion.events import validate_events, voxel_indices
from neuroplast.errors import DataError

__all__ = [
    "TapTable",
    "EventLayerState",
    "compile_taps",
    "init_event_state",
    "hd_event_chunk",
    "hd_event_run",
    "numba_available",
]


@dataclass(frozen=True)
class TapTable:
    """Non-zero taps per event polarity as flat buffer offsets and weights."""

    n_classes: int
    n_delays: int
    ky: int
    kx: int
    sensor_size: tuple[int, int]  #: (width, height)
    offsets: tuple[np.ndarray, np.ndarray]  #: int64, per event polarity 0 / 1
    weights: tuple[np.ndarray, np.ndarray]  #: float32, per event polarity
    bias: np.ndarray  #: (C,) float32
    nnz: int  #: non-zero weights of the kernel (each event touches ~nnz taps)
    ring_offsets: tuple[np.ndarray, np.ndarray] = ()  #: offsets within one time slot
    ring_delays: tuple[np.ndarray, np.ndarray] = ()  #: delay (slots ahead) of each tap

    @property
    def out_hw(self) -> tuple[int, int]:
        w, h = self.sensor_size
        return h - self.ky + 1, w - self.kx + 1

    @property
    def padded_hw(self) -> tuple[int, int]:
        w, h = self.sensor_size
        return h + self.ky - 1, w + self.kx - 1

    @property
    def slot_size(self) -> int:
        hp, wp = self.padded_hw
        return 2 * self.n_classes * hp * wp

    @property
    def pixel_stride(self) -> int:
        return 2 * self.n_classes


@dataclass(frozen=True)
class EventLayerState:
    """Carried accumulators for the next ``n_delays - 1`` bins, and the next bin index."""

    carry: np.ndarray  #: (n_delays - 1, Hp, Wp, 2, C) float32
    t_next: int


def compile_taps(weight: np.ndarray, bias: np.ndarray, sensor_size: tuple[int, int]) -> TapTable:
    """Turn a (pruned) kernel ``W[c, p, k, dy, dx]`` into per-polarity flat tap lists."""
    weight = np.asarray(weight, dtype=np.float32)
    if weight.ndim != 5 or weight.shape[1] != 2:
        raise DataError(f"HD weight must be (C, 2, K_T, K_Y, K_X), got {weight.shape}")
    c_n, _, kt, ky, kx = weight.shape
    w_s, h_s = sensor_size
    if h_s < ky or w_s < kx:
        raise DataError(f"sensor {w_s}x{h_s} is smaller than the {kx}x{ky} kernel")
    hp, wp = h_s + ky - 1, w_s + kx - 1
    pix = 2 * c_n
    slot = pix * hp * wp
    offs, ws, roffs, rdel = [], [], [], []
    for p in (0, 1):
        o_list, w_list, r_list, d_list = [], [], [], []
        for branch, src in ((0, p), (1, 1 - p)):
            c, k, dy, dx = np.nonzero(weight[:, src])
            d = kt - 1 - k
            r = -(dy * wp + dx) * pix + branch * c_n + c
            o_list.append(d * slot + r)
            r_list.append(r)
            d_list.append(d)
            w_list.append(weight[c, src, k, dy, dx])
        o = np.concatenate(o_list).astype(np.int64)
        w = np.concatenate(w_list).astype(np.float32)
        order = np.argsort(o, kind="stable")  # sequential-ish memory access
        offs.append(o[order])
        ws.append(w[order])
        roffs.append(np.concatenate(r_list).astype(np.int64)[order])
        rdel.append(np.concatenate(d_list).astype(np.int64)[order])
    return TapTable(
        c_n,
        kt,
        ky,
        kx,
        (int(w_s), int(h_s)),
        (offs[0], offs[1]),
        (ws[0], ws[1]),
        np.asarray(bias, dtype=np.float32).reshape(c_n),
        int(np.count_nonzero(weight)),
        (roffs[0], roffs[1]),
        (rdel[0], rdel[1]),
    )


def init_event_state(taps: TapTable, t_start: int = 0) -> EventLayerState:
    hp, wp = taps.padded_hw
    carry = np.zeros((taps.n_delays - 1, hp, wp, 2, taps.n_classes), dtype=np.float32)
    return EventLayerState(carry, int(t_start))


def _scatter_py(buf, base, pol, off0, w0, off1, w1):  # pragma: no cover - jitted
    for e in range(base.shape[0]):
        b = base[e]
        if pol[e]:
            for k in range(off1.shape[0]):
                buf[b + off1[k]] += w1[k]
        else:
            for k in range(off0.shape[0]):
                buf[b + off0[k]] += w0[k]


_SCATTER = {}


def numba_available() -> bool:
    """True when numba imports (then ``backend='numba'`` is the fast path)."""
    try:
        import numba  # noqa: F401
    except Exception:
        return False
    return True


def _numba_scatter():
    if "numba" not in _SCATTER:
        import numba

        _SCATTER["numba"] = numba.njit(cache=False, nogil=True, boundscheck=False)(_scatter_py)
    return _SCATTER["numba"]


def _scatter_numpy(buf, base, pol, offs, ws, max_elems: int = 1 << 22) -> None:
    """Vectorised scatter: ``buf[base_e + off_k] += w_k`` with ``np.add.at`` (duplicates add)."""
    for p in (0, 1):
        b = base[pol == p]
        off, w = offs[p], ws[p]
        if b.size == 0 or off.size == 0:
            continue
        step = max(1, max_elems // off.size)
        for i in range(0, b.size, step):
            idx = b[i : i + step, None] + off[None, :]
            np.add.at(buf, idx.ravel(), np.broadcast_to(w, idx.shape).ravel())


def hd_event_chunk(
    taps: TapTable,
    state: EventLayerState,
    p: np.ndarray,
    tbin: np.ndarray,
    y: np.ndarray,
    x: np.ndarray,
    n_bins: int,
    backend: str = "numpy",
    pooled: bool = False,
) -> tuple[np.ndarray, EventLayerState]:
    """Process the events of bins ``[state.t_next, state.t_next + n_bins)``.

    ``p, tbin, y, x``: int64 columns (absolute time bins). Returns the logits
    ``z`` of shape ``(n_bins, C, Ho, Wo)`` (``pooled``: their position means,
    ``(n_bins, C)``) for those bins and the new state. Pure: ``state`` is not modified.
    """
    kt, c_n = taps.n_delays, taps.n_classes
    hp, wp = taps.padded_hw
    ho, wo = taps.out_hw
    t0 = state.t_next
    if tbin.size and (tbin.min() < t0 or tbin.max() >= t0 + n_bins):
        raise DataError(
            f"events span bins {int(tbin.min())}..{int(tbin.max())}, outside the chunk "
            f"[{t0}, {t0 + n_bins})"
        )
    buf = np.zeros((n_bins + kt - 1, hp, wp, 2, c_n), dtype=np.float32)
    buf[: kt - 1] = state.carry
    flat = buf.reshape(-1)
    base = (tbin - t0) * taps.slot_size + ((y + taps.ky - 1) * wp + (x + taps.kx - 1)) * (2 * c_n)
    pol = p.astype(np.uint8)
    if backend == "numba":
        _numba_scatter()(
            flat, base, pol, taps.offsets[0], taps.weights[0], taps.offsets[1], taps.weights[1]
        )
    elif backend == "numpy":
        _scatter_numpy(flat, base, pol, taps.offsets, taps.weights)
    else:
        raise DataError(f"unknown backend {backend!r}; use 'numpy' or 'numba'")
    z = _finish(taps, buf[:n_bins], pooled=pooled, backend=backend)
    carry = buf[n_bins:].copy()
    return z, EventLayerState(carry, t0 + n_bins)


def _pooled_py(slots, y0, x0, ho, wo, out):  # pragma: no cover - jitted
    """out[t, c] = sum over the valid grid of max(slots[t, y, x, 0, c], slots[t, y, x, 1, c])."""
    n_c = out.shape[1]
    for t in range(slots.shape[0]):
        for yy in range(y0, y0 + ho):
            for xx in range(x0, x0 + wo):
                for c in range(n_c):
                    a = slots[t, yy, xx, 0, c]
                    b = slots[t, yy, xx, 1, c]
                    out[t, c] += a if a > b else b


def _finish(taps: TapTable, slots: np.ndarray, pooled: bool, backend: str = "numpy") -> np.ndarray:
    """``max(B0, B1) + b`` on the valid grid: (n, C, Ho, Wo), or (n, C) means if pooled."""
    ho, wo = taps.out_hw
    if pooled and backend == "numba":
        if "pooled" not in _SCATTER:
            import numba

            _SCATTER["pooled"] = numba.njit(cache=False, nogil=True, boundscheck=False)(_pooled_py)
        acc = np.zeros((slots.shape[0], taps.n_classes), dtype=np.float64)
        _SCATTER["pooled"](slots, taps.ky - 1, taps.kx - 1, ho, wo, acc)
        return (acc / (ho * wo)).astype(np.float32) + taps.bias[None, :]
    out = slots[:, taps.ky - 1 : taps.ky - 1 + ho, taps.kx - 1 : taps.kx - 1 + wo]
    z = np.maximum(out[..., 0, :], out[..., 1, :])  # (n, Ho, Wo, C)
    if pooled:
        return z.mean(axis=(1, 2)) + taps.bias[None, :]
    return z.transpose(0, 3, 1, 2) + taps.bias[None, :, None, None]


def _ring_pooled_py(
    tb, pos, pol, n_bins, kt, slot, r0, d0, w0, r1, d1, w1, y0, x0, ho, wo, wp, n_c, out
):  # pragma: no cover - jitted
    """Whole stream through a ring of ``kt`` slots; out[t, c] = sum_{y,x} max(B0, B1).

    Each 1 ms step: scatter its events into the slots ``(t + d) % kt``, read out slot
    ``t % kt`` (complete: no later event reaches it) and clear it for ``t + kt``.
    """
    buf = np.zeros(kt * slot, dtype=np.float32)
    sb = np.zeros(kt, dtype=np.int64)
    pix = 2 * n_c
    e = 0
    n_ev = tb.shape[0]
    for t in range(n_bins):
        for d in range(kt):
            sb[d] = ((t + d) % kt) * slot
        while e < n_ev and tb[e] == t:
            b = pos[e]
            if pol[e]:
                for k in range(r1.shape[0]):
                    buf[sb[d1[k]] + b + r1[k]] += w1[k]
            else:
                for k in range(r0.shape[0]):
                    buf[sb[d0[k]] + b + r0[k]] += w0[k]
            e += 1
        s0 = sb[0]
        for yy in range(y0, y0 + ho):
            for xx in range(x0, x0 + wo):
                i = s0 + (yy * wp + xx) * pix
                for c in range(n_c):
                    a = buf[i + c]
                    bb = buf[i + n_c + c]
                    out[t, c] += a if a > bb else bb
        buf[s0 : s0 + slot] = 0.0


def hd_event_run(
    taps: TapTable,
    events: np.ndarray,
    n_bins: int,
    *,
    dt_us: int = 1000,
    t0_us: int = 0,
    chunk: int = 32,
    backend: str = "numpy",
    binary: bool = True,
    pooled: bool = False,
) -> np.ndarray:
    """Run a whole event stream through the layer.

    Returns the logits ``(n_bins, C, Ho, Wo)``, or with ``pooled=True`` the per-step
    class evidence ``mean_{y,x} z`` of shape ``(n_bins, C)``. ``binary=True`` keeps
    one event per (p, bin, y, x) voxel, matching the Boolean raster of the paper.
    """
    ev = validate_events(events, taps.sensor_size, sorted_time=False)
    p, tb, y, x = voxel_indices(ev, dt_us, t0_us)
    keep = (tb >= 0) & (tb < n_bins)
    p, tb, y, x = p[keep], tb[keep], y[keep], x[keep]
    if binary and p.size:
        w, h = taps.sensor_size
        key = ((tb * 2 + p) * h + y) * w + x
        key = np.unique(key)
        x = key % w
        y = (key // w) % h
        p = (key // (w * h)) % 2
        tb = key // (2 * w * h)
    order = np.argsort(tb, kind="stable")
    p, tb, y, x = p[order], tb[order], y[order], x[order]
    if pooled and backend == "numba":
        # fast path: one ring of n_delays slots, fused readout (same arithmetic)
        if "ring" not in _SCATTER:
            import numba

            _SCATTER["ring"] = numba.njit(cache=False, nogil=True, boundscheck=False)(
                _ring_pooled_py
            )
        hp, wp = taps.padded_hw
        ho, wo = taps.out_hw
        pos = ((y + taps.ky - 1) * wp + (x + taps.kx - 1)) * taps.pixel_stride
        acc = np.zeros((n_bins, taps.n_classes), dtype=np.float64)
        _SCATTER["ring"](
            tb, pos, p.astype(np.uint8), n_bins, taps.n_delays, taps.slot_size,
            taps.ring_offsets[0], taps.ring_delays[0], taps.weights[0],
            taps.ring_offsets[1], taps.ring_delays[1], taps.weights[1],
            taps.ky - 1, taps.kx - 1, ho, wo, wp, taps.n_classes, acc,
        )  # fmt: skip
        return (acc / (ho * wo)).astype(np.float32) + taps.bias[None, :]
    state = init_event_state(taps)
    outs = []
    bounds = np.searchsorted(tb, np.arange(0, n_bins + chunk, chunk))
    for i, s in enumerate(range(0, n_bins, chunk)):
        n = min(chunk, n_bins - s)
        a, b = bounds[i], bounds[i + 1]
        z, state = hd_event_chunk(
            taps, state, p[a:b], tb[a:b], y[a:b], x[a:b], n, backend, pooled=pooled
        )
        outs.append(z)
    return np.concatenate(outs)
