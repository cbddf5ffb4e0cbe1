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

Pooled evidence (``pooled=True``, ``backend="numba"``) goes through the exact split
``max(B0, B1) = (B0 + B1)/2 + |B0 - B1|/2`` with ``B0 + B1 = W_s * A_s`` and
``B0 - B1 = W_d * A_d`` (``W_s = W_off + W_on``, ``W_d = W_off - W_on``, same for
``A``; polarity index 0 = OFF): the linear half is pooled before convolving (box
counts of ``A_s``, O(1) per event, ``O(K_Y K_X + nnz(W_s))`` per ms), the rectified
half scatters only the ``nnz(W_d)`` taps per event and keeps ``sum |D|`` per
(delay slot, class) incrementally, so the per-ms readout is O(C) instead of a pass
over ``2 C Ho Wo`` accumulators (:func:`_ring_split_py`). ``backend="numba-maxbranch"``
keeps the previous two-branch ring for comparison.

``backend="native"`` (pooled) pulls the rectified half instead (:func:`_pull_rows_py`,
compiled in ``neuroplast._native``; ``"numba-rows"`` is its numba twin): ``W_d`` is cut
into row chunks of :data:`ROW_LANES` consecutive ``dx`` (:class:`RowTaps`), and each step's
output is accumulated in class planes (``(H_o + 1) x row_stride`` float32, ~14 kB each)
from the pixels of the last ``K_T`` ms, so an event costs ``RowTaps.n_chunks`` vector
updates (3,608 for the 20x pruned 21 x 17 x 17 kernel; 2,678 per event on the bench movie,
border rows reach fewer) instead of ``nnz(W_d)`` scalar ones (14,399), with ``D``
bit-identical to the ring's. The C pass takes :data:`PULL_GROUP` classes at a time (one
plane each, the chunk table re-laid ``(group, d, dy, class, dx0)``), so a pixel's chunks of
one delay are one contiguous loop (~20 chunks per 6 classes) instead of one short loop per
class (~3.5 chunks), whose overhead dominated: 1.5-1.6x the one-class pass at 6 classes on
the bench movie, ~1.07x more at 12, bit-identical (no two chunks of one pixel and delay
touch the same float, so their order is free). Tried and slower, all
bit-identical: 16-lane AVX-512 chunks (``compile_taps(row_lanes=16)``, in the bench: 3,188
chunks, but Zen 4 stores 512 bits in two cycles: 0.6x the 8-lane pass at g = 6), 4-lane
chunks (0.84x); against the one-class pass in a standalone copy of it: chunk-major order
within ``(c, d)`` (0.45x: adjacent pixels then meet store-to-load forwarding stalls),
32-byte-aligned chunks from 8 per-phase tables (~0.55x: 35 % more chunks), no multiply for
``A_d = +-1``, software prefetch, class-interleaved plane rows (no gain; docs/motion.md
lists them all). Speed and limit: ``OMP_NUM_THREADS=1 .venv/bin/python
bench/bench_speed.py --only events --rounds 7`` (the limit is the C-measured chunk
read-modify-write, ``neuroplast._native.rmw_peak``, over the lanes per event; numbers in
docs/motion.md). ``"native-taps"`` is :func:`_ring_split_py`'s C port.

Integer mode (the runtime's integer ``HDDelayConv``): :func:`hd_event_chunk_int` scatters
int8 codes (or the int16 sum/difference codes, :class:`IntTaps`) into int16 / int32
accumulators chosen from the kernel's bound (:func:`int_acc_dtype`), exact integers in
any event order; ``"native"`` is ``sdk/_native.c event_scatter_i16/_i32``. Its pooled
evidence ``sum_{y,x} clamp(requantize(max(B_0, B_1) + b_q) + zp)`` also runs
output-stationary (:func:`hd_event_evidence_int`, ``sdk/_native.c pull_int``): int16 / int32
planes of both halves per class (:class:`IntRowTaps`: ``S`` and ``D``, or ``B_0`` and
``B_1``; by default ``S`` and ``D`` interleaved, one 256-bit chunk updating both halves of
8 positions) receive integer row chunks of the last ``K_T`` ms' pixels, then a
requantizing read-out; the same integers as the per-position path, 7.0x its speed on the
bench movie (numbers in docs/motion.md). The runtime op's integer mode runs it per step
(:func:`hd_event_chunk_int_pull`, state = the last ``K_T - 1`` ms of pixels).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from neuroplast.apps.motion.events import validate_events, voxel_indices
from neuroplast.errors import DataError
from neuroplast.quant import requantize

__all__ = [
    "TapTable",
    "SplitTaps",
    "RowTaps",
    "ROW_LANES",
    "PULL_GROUP",
    "EventLayerState",
    "SlotWindow",
    "IntTaps",
    "compile_taps",
    "compile_int_taps",
    "int_acc_dtype",
    "int_form",
    "hd_step_cost",
    "init_int_state",
    "hd_event_chunk_int",
    "hd_event_run_int",
    "IntRowTaps",
    "INT_ROW_LANES",
    "compile_int_rows",
    "hd_event_evidence_int",
    "pull_int_ops",
    "hd_pull_step_cost",
    "IntPullState",
    "init_int_pull_state",
    "hd_event_chunk_int_pull",
    "warm_int_pull",
    "init_event_state",
    "hd_event_chunk",
    "hd_event_run",
    "pull_rows_ops",
    "numba_available",
    "fast_backend",
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
    split: SplitTaps | None = None  #: sum/difference tables of the pooled path
    rows: RowTaps | None = None  #: ``W_d`` as lane chunks for the output-stationary path

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
class SplitTaps:
    """Kernel split into ``W_s = W_off + W_on`` and ``W_d = W_off - W_on`` (delay-major).

    ``W_d`` taps are grouped in blocks of equal ``(d, dy, dx)`` (one block = the
    classes one event adds to at one output position and delay): ``blk_*`` hold the
    block keys, ``blk_start`` the block boundaries in ``d_c`` / ``d_w``. ``W_s`` is a
    flat list of its non-zero taps ``(s_d, s_dy, s_dx, s_c, s_w)``.
    """

    blk_d: np.ndarray  #: int64 (nb,) delay of the block
    blk_dy: np.ndarray  #: int64 (nb,)
    blk_dx: np.ndarray  #: int64 (nb,)
    blk_start: np.ndarray  #: int64 (nb + 1,)
    d_c: np.ndarray  #: int64 (nnz_d,) class of each W_d tap
    d_w: np.ndarray  #: float32 (nnz_d,)
    s_d: np.ndarray  #: int64 (nnz_s,)
    s_dy: np.ndarray
    s_dx: np.ndarray
    s_c: np.ndarray
    s_w: np.ndarray  #: float32 (nnz_s,)

    @property
    def nnz_d(self) -> int:
        return int(self.d_w.size)

    @property
    def nnz_s(self) -> int:
        return int(self.s_w.size)


def _split_taps(weight: np.ndarray) -> SplitTaps:
    """Non-zero taps of ``W_s`` and ``W_d`` (float32 sums, as the torch references)."""
    kt = weight.shape[2]
    w_s = weight[:, 0] + weight[:, 1]  # (C, K_T, K_Y, K_X), index 0 = OFF, 1 = ON
    w_d = weight[:, 0] - weight[:, 1]
    c, k, dy, dx = np.nonzero(w_d)
    d = kt - 1 - k
    order = np.lexsort((c, dx, dy, d))  # blocks (d, dy, dx), classes ascending inside
    c, k, dy, dx, d = c[order], k[order], dy[order], dx[order], d[order]
    if d.size:
        new = np.ones(d.size, dtype=bool)
        new[1:] = (d[1:] != d[:-1]) | (dy[1:] != dy[:-1]) | (dx[1:] != dx[:-1])
        first = np.flatnonzero(new)
    else:
        first = np.zeros(0, dtype=np.int64)
    sc, sk, sdy, sdx = np.nonzero(w_s)
    i64 = np.int64
    return SplitTaps(
        d[first].astype(i64),
        dy[first].astype(i64),
        dx[first].astype(i64),
        np.append(first, d.size).astype(i64),
        c.astype(i64),
        w_d[c, k, dy, dx].astype(np.float32),
        (kt - 1 - sk).astype(i64),
        sdy.astype(i64),
        sdx.astype(i64),
        sc.astype(i64),
        w_s[sc, sk, sdy, sdx].astype(np.float32),
    )


ROW_LANES = 8  #: float32 lanes of one row chunk (one AVX2 register); 16: one AVX-512 register
#: classes the native pull pass accumulates at a time (one plane each; on the bench movie
#: 1.5x of 1 at 6; 9-18 another ~1.05-1.15x over 6 with the block-8 kernel, whose calls
#: are half as long, and flat with the per-weight one; 36: slower)
PULL_GROUP = 12


@dataclass(frozen=True)
class RowTaps:
    """``W_d`` cut into row chunks of :data:`ROW_LANES` consecutive ``dx`` (pooled pull path).

    Accumulator: one plane per class ``acc[yo, col]`` float32 (``Ho + 1`` rows of
    ``row_stride`` columns, ~14 kB for the 21 x 17 x 17 kernel on 64 x 64), column ``col = pad_left + xo`` for output column ``xo``. Lanes that land off the
    valid grid write the pad columns (``col < pad_left`` or ``>= pad_left + Wo``), which
    are never read; a row's right overhang (up to column ``pad_left + W - 1``) runs into
    the next row's left pad, which ``row_stride >= max(W, pad_left + Wo)`` keeps clear of
    its valid columns. Chunk ``k`` of
    class ``c``, delay ``d``, row ``dy``, starting at ``dx0`` holds ``vals[k, j] =
    W_d(c, d, dy, dx0 + L - 1 - j)`` (``L`` = lanes; zero past the kernel or where the
    row's next chunk starts), so an event at ``(y, x)`` with ``A_d = a`` adds ``a vals[k]``
    to the ``L`` consecutive floats at ``y row_stride + x + off[k]``, ``off[k] = pad_left
    - dy row_stride - dx0 - (L - 1)``: one vector load/mul/add/store per chunk instead of
    one scalar read-modify-write per tap. A kernel row's non-zero ``dx`` are covered
    greedily (a chunk starts at the first uncovered non-zero), so every non-zero tap is in
    exactly one chunk.

    Chunks are ordered by ``(c, d, dy, dx0)``; ``ystart[(c K_T + d)(K_Y + 1) + q]`` is the
    first chunk of ``(c, d)`` with ``dy >= q`` (``q = K_Y``: the end), so an event row
    ``y`` takes one contiguous range per ``(c, d)``: the rows ``0 <= y - dy < Ho``.
    """

    lanes: int
    row_stride: int  #: floats per plane row, ``>= max(W, pad_left + Wo)``
    pad_left: int  #: ``K_X - 1 + L - 1``
    ystart: np.ndarray  #: int64 (C K_T (K_Y + 1),)
    off: np.ndarray  #: int64 (n_chunks,)
    vals: np.ndarray  #: float32 (n_chunks, lanes)

    @property
    def n_chunks(self) -> int:
        """Chunks per event (an event whose rows all land on the grid executes all)."""
        return int(self.off.size)


def _row_taps(w_d: np.ndarray, sensor_size: tuple[int, int], lanes: int = ROW_LANES) -> RowTaps:
    """Chunk ``W_d (C, K_T, K_Y, K_X)`` (torch time layout) into :class:`RowTaps`."""
    c_n, kt, ky, kx = w_d.shape
    w_s = sensor_size[0]
    pad = kx - 1 + lanes - 1
    rs = -(-max(w_s, pad + w_s - kx + 1) // lanes) * lanes
    ystart, offs, vals = [], [], []
    for c in range(c_n):
        for d in range(kt):
            k = kt - 1 - d
            for dy in range(ky):
                ystart.append(len(offs))
                row = w_d[c, k, dy]
                nz = np.flatnonzero(row)
                i = 0
                while i < nz.size:
                    dx0 = int(nz[i])
                    v = np.zeros(lanes, np.float32)
                    for j in range(lanes):
                        dx = dx0 + lanes - 1 - j
                        if dx < kx:
                            v[j] = row[dx]
                    offs.append(pad - dy * rs - dx0 - (lanes - 1))
                    vals.append(v)
                    while i < nz.size and nz[i] < dx0 + lanes:
                        i += 1
            ystart.append(len(offs))
    return RowTaps(
        lanes,
        int(rs),
        int(pad),
        np.asarray(ystart, np.int64),
        np.asarray(offs, np.int64),
        np.asarray(vals, np.float32).reshape(len(offs), lanes),
    )


@dataclass(frozen=True)
class EventLayerState:
    """Carried accumulators for the next ``n_delays - 1`` bins, and the next bin index."""

    carry: np.ndarray  #: (n_delays - 1, Hp, Wp, 2, C) float32
    t_next: int


def compile_taps(
    weight: np.ndarray,
    bias: np.ndarray,
    sensor_size: tuple[int, int],
    row_lanes: int = ROW_LANES,
) -> TapTable:
    """Turn a (pruned) kernel ``W[c, p, k, dy, dx]`` into per-polarity flat tap lists
    (and :class:`RowTaps` of ``row_lanes`` = 8 or 16 float32 lanes for the pull path)."""
    if row_lanes not in (8, 16):
        raise DataError(f"row_lanes must be 8 or 16, got {row_lanes}")
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
        _split_taps(weight),
        _row_taps(weight[:, 0] - weight[:, 1], (int(w_s), int(h_s)), row_lanes),
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


def fast_backend() -> str:
    """The fastest available backend of :func:`hd_event_chunk` / :func:`hd_event_run`:
    ``"native"`` when ``neuroplast._native`` loads (compiled at install, no numba needed),
    else ``"numba"`` when it imports, else ``"numpy"``."""
    from neuroplast.runtime.native import native_module

    if native_module() is not None:
        return "native"
    return "numba" if numba_available() else "numpy"


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


class SlotWindow:
    """Reusable accumulator slots for a stream of chunks (the runtime op's steps).

    Without it :func:`hd_event_chunk` / :func:`hd_event_chunk_int` allocate a fresh
    ``(n_bins + K_T - 1)``-slot buffer per call, load the ``K_T - 1`` carried slots and
    zero the rest: for the bench kernel (36 classes, 80 x 80 padded) 37 MB copied and
    1.8 MB zeroed per 1 ms step, the float op's whole cost with no events. A window holds
    ``K_T - 1 + spare`` slots (``spare=None``: ``K_T - 1``, the peak memory of the fresh
    buffer and the carry it copies, ``2 (K_T - 1)`` slots); the carried state is a view of
    them, so a call whose state is the view the previous call returned only zeroes its
    ``n_bins`` new slots and slides forward; when the end is reached the ``K_T - 1``
    carried slots move to the front (once every ``spare`` bins: one slot a bin on
    average at the default). Any other state (a fresh, restored or older one) is
    copied in first. The same integers / floats as without it (the same additions in the
    same order into the same zeroed slots); but the state passed in is consumed: its
    carry is written by the call (keep a copy to step from it twice)."""

    def __init__(self, spare: int | None = None) -> None:
        if spare is not None and int(spare) < 1:
            raise DataError(f"spare must be >= 1 slot, got {spare}")
        self.spare = None if spare is None else int(spare)
        self.buf: np.ndarray | None = None
        self.start = 0

    def slots(self, carry: np.ndarray, n_bins: int, dtype) -> np.ndarray:  # noqa: ANN001
        """The ``(K_T - 1 + n_bins)``-slot buffer of a call: the carry loaded, the rest 0."""
        nc = carry.shape[0]
        dt = np.dtype(dtype)
        buf = self.buf
        total = nc + max(self.spare or max(nc, 1), n_bins)
        live = (buf is not None and buf.dtype == dt and buf.shape[1:] == carry.shape[1:]
                and buf.shape[0] >= total and self.start + nc <= buf.shape[0]
                and carry.__array_interface__["data"][0]
                == buf[self.start :].__array_interface__["data"][0])  # fmt: skip
        if not live:  # a state this window did not hand out: copy it in
            if buf is None or buf.dtype != dt or buf.shape[1:] != carry.shape[1:] \
                    or buf.shape[0] < total:  # fmt: skip
                buf = self.buf = np.empty((total,) + carry.shape[1:], dt)
            buf[:nc] = carry
            self.start = 0
        elif self.start + nc + n_bins > buf.shape[0]:  # slide the carry to the front
            buf[:nc] = buf[self.start : self.start + nc].copy()
            self.start = 0
        s = self.start
        out = buf[s : s + nc + n_bins]
        out[nc:] = 0
        self.start = s + n_bins
        return out


def _chunk_slots(carry: np.ndarray, n_bins: int, dtype, window: SlotWindow | None) -> np.ndarray:  # noqa: ANN001
    """The time-slot buffer ``(n_bins + K_T - 1, Hp, Wp, 2, C)`` of one chunk: the carried
    slots, then zeroed slots; fresh, or from ``window``."""
    if window is not None:
        return window.slots(carry, n_bins, dtype)
    buf = np.zeros((n_bins + carry.shape[0],) + carry.shape[1:], dtype=dtype)
    buf[: carry.shape[0]] = carry
    return buf


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
    window: SlotWindow | None = None,
) -> tuple[np.ndarray, EventLayerState]:
    """Process the events of bins ``[state.t_next, state.t_next + n_bins)``.

    ``p, tbin, y, x``: int64 columns (absolute time bins). Returns the logits
    ``z`` of shape ``(n_bins, C, Ho, Wo)`` (``pooled``: their position means,
    ``(n_bins, C)``) for those bins and the new state. Pure: ``state`` is not modified
    (unless ``window`` is given: :class:`SlotWindow`, the same outputs without the
    per-call buffer; then ``state`` is consumed).
    """
    c_n = taps.n_classes
    hp, wp = taps.padded_hw
    ho, wo = taps.out_hw
    t0 = state.t_next
    if tbin.size and (tbin.min() < t0 or tbin.max() >= t0 + n_bins):
        raise DataError(
            f"events span bins {int(tbin.min())}..{int(tbin.max())}, outside the chunk "
            f"[{t0}, {t0 + n_bins})"
        )
    buf = _chunk_slots(state.carry, n_bins, np.float32, window)
    flat = buf.reshape(-1)
    base = (tbin - t0) * taps.slot_size + ((y + taps.ky - 1) * wp + (x + taps.kx - 1)) * (2 * c_n)
    pol = p.astype(np.uint8)
    if backend == "numba":
        _numba_scatter()(
            flat, base, pol, taps.offsets[0], taps.weights[0], taps.offsets[1], taps.weights[1]
        )
    elif backend == "native":  # _scatter_py's C port (sdk/_native.c event_scatter)
        from neuroplast.runtime.native import OPS

        o0, o1 = (np.ascontiguousarray(o, np.int64) for o in taps.offsets)
        w0, w1 = (np.ascontiguousarray(w_, np.float32) for w_ in taps.weights)
        ints = (1, flat.size, base.size, o0.size, o1.size)
        bufs = (
            flat,
            np.ascontiguousarray(base, np.int64),
            np.ascontiguousarray(pol),
            o0,
            w0,
            o1,
            w1,
        )
        _native_lib().op(OPS["event_scatter"], ints, bufs)
    elif backend == "numpy":
        _scatter_numpy(flat, base, pol, taps.offsets, taps.weights)
    else:
        raise DataError(f"unknown backend {backend!r}; use 'numpy', 'numba' or 'native'")
    z = _finish(taps, buf[:n_bins], pooled=pooled, backend=backend)
    # the new carry is a view of this call's buffer, as in hd_event_chunk_int (``z`` is a
    # new array; without a window nothing else holds or writes ``buf`` and the next call
    # copies the carry into its own): one copy of K_T - 1 slots less per call
    return z, EventLayerState(buf[n_bins:], t0 + n_bins)


INT16_MAX = (1 << 15) - 1
INT32_MAX = (1 << 31) - 1


@dataclass(frozen=True)
class IntTaps:
    """The integer layer's tap table: flat offsets (:func:`compile_taps` layout) and codes.

    ``form = "direct"``: the two flip branches ``B_0``, ``B_1`` (accumulator branch 0 / 1),
    int8 codes ``K_q``; an event of polarity ``p`` adds ``K_q[:, p]`` to ``B_0`` and
    ``K_q[:, 1 - p]`` to ``B_1``. ``form = "split"``: the sum and difference ``S = B_0 +
    B_1 = W_s A_s``, ``D = B_0 - B_1 = W_d A_d`` (``W_s = K_off + K_on``, ``W_d = K_off -
    K_on``, int16 codes; an OFF event adds ``W_s`` to ``S`` and ``W_d`` to ``D``, an ON
    event ``W_s`` and ``-W_d``) and ``max(B_0, B_1) = (S + |D|) / 2`` exactly (``S + |D|``
    is even); ``nnz(W_s) + nnz(W_d)`` taps per event instead of ``nnz(K_q)``.

    ``bound`` bounds every partial sum of a stored accumulator when each voxel ``A(p, t,
    y, x)`` holds at most one event: direct ``max_c sum |K_q[c]|`` (both polarity halves:
    a pixel can fire ON and OFF in one ms), split ``max(2 max_c sum |W_s[c]|, max_c sum
    |W_d[c]|)`` (``A_s <= 2``, ``|A_d| <= 1``); ``m`` events per voxel scale it by ``m``.
    """

    taps: TapTable  #: geometry and offsets (its weights: the codes as float32)
    codes: tuple[np.ndarray, np.ndarray]  #: per event polarity: int8 (direct) / int16 (split)
    bound: int
    form: str = "direct"
    kernel: np.ndarray | None = None  #: the int8 codes ``K_q (C, 2, K_T, K_Y, K_X)``
    #: :class:`IntRowTaps` built from ``kernel`` per ``(lanes, acc_bytes)`` (a cache)
    rows: dict = field(default_factory=dict, compare=False, repr=False)


def _split_int_tables(q: np.ndarray, taps: TapTable):
    """Offsets and int16 codes of the ``(S, D)`` form per event polarity (order as
    :func:`compile_taps`: ascending offset)."""
    c_n, _, kt, _, _ = q.shape
    _, wp = taps.padded_hw
    pix, slot = 2 * c_n, taps.slot_size
    w_s, w_d = q[:, 0] + q[:, 1], q[:, 0] - q[:, 1]
    offs, vals = [], []
    for sign in (1, -1):  # OFF (A_d = +1), ON (A_d = -1)
        o_list, w_list = [], []
        for branch, wt, sg in ((0, w_s, 1), (1, w_d, sign)):
            c, k, dy, dx = np.nonzero(wt)
            o_list.append((kt - 1 - k) * slot - (dy * wp + dx) * pix + branch * c_n + c)
            w_list.append(sg * wt[c, k, dy, dx])
        o = np.concatenate(o_list).astype(np.int64)
        order = np.argsort(o, kind="stable")
        offs.append(o[order])
        vals.append(np.ascontiguousarray(np.concatenate(w_list)[order].astype(np.int16)))
    return offs, vals


def int_form(codes: np.ndarray, form: str = "auto") -> tuple[str, int, int]:
    """The integer tap form :func:`compile_int_taps` picks for kernel codes ``K_q``, with
    its accumulator bound and taps per event: ``(form, bound, taps)``.

    direct: ``bound = max_c sum |K_q[c]|``, ``taps = nnz(K_q)``; split: ``bound =
    max(2 max_c sum |W_s[c]|, max_c sum |W_d[c]|)``, ``taps = nnz(W_s) + nnz(W_d)``.
    ``"auto"``: split when it has fewer taps per event and its accumulators are no wider
    (:func:`int_acc_dtype` of the bounds), else direct.
    """
    q = np.asarray(codes).astype(np.int64)
    c_n = q.shape[0]
    direct = ("direct", int(np.abs(q).reshape(c_n, -1).sum(axis=1).max()), int(np.count_nonzero(q)))
    if form == "direct":
        return direct
    w_s, w_d = q[:, 0] + q[:, 1], q[:, 0] - q[:, 1]
    b_s = int(np.abs(w_s).reshape(c_n, -1).sum(axis=1).max())
    b_d = int(np.abs(w_d).reshape(c_n, -1).sum(axis=1).max())
    split = ("split", max(2 * b_s, b_d), int(np.count_nonzero(w_s) + np.count_nonzero(w_d)))
    if form == "auto":
        wide = int_acc_dtype(split[1], check=False).itemsize > int_acc_dtype(direct[1]).itemsize
        if split[2] >= direct[2] or wide:
            return direct
    return split


def compile_int_taps(
    codes: np.ndarray, sensor_size: tuple[int, int], form: str = "auto"
) -> IntTaps:
    """Tap table of int8 kernel codes ``K_q (C, 2, K_T, K_Y, K_X)`` (bias handled by the
    caller, on the accumulator grid). ``form``: ``"direct"``, ``"split"`` (see
    :class:`IntTaps`) or ``"auto"``: split when it has fewer taps per event and its
    accumulators are no wider (:func:`int_acc_dtype` of the bounds), else direct."""
    codes = np.asarray(codes)
    if codes.dtype != np.int8:
        raise DataError(f"integer HD kernel codes must be int8, got {codes.dtype}")
    if form not in ("auto", "direct", "split"):
        raise DataError(f"form must be 'auto', 'direct' or 'split', got {form!r}")
    taps = compile_taps(codes.astype(np.float32), np.zeros(codes.shape[0]), sensor_size)
    form, bound, _ = int_form(codes, form)
    if form == "direct":
        return IntTaps(taps, tuple(np.ascontiguousarray(w.astype(np.int8)) for w in taps.weights),
                       bound, "direct", codes.copy())  # fmt: skip
    offs, vals = _split_int_tables(codes.astype(np.int64), taps)
    t2 = replace(taps, offsets=(offs[0], offs[1]),
                 weights=tuple(v.astype(np.float32) for v in vals))  # fmt: skip
    return IntTaps(t2, (vals[0], vals[1]), bound, "split", codes.copy())


def int_acc_dtype(bound: int, per_voxel: int = 1, check: bool = True) -> np.dtype:
    """Narrowest exact accumulator: int16 when ``bound x per_voxel <= 2^15 - 1``, else
    int32 when ``<= 2^31 - 1``; beyond that :class:`DataError` (``check=False``: int64,
    which no scatter takes)."""
    reach = int(bound) * int(per_voxel)
    if reach <= INT16_MAX:
        return np.dtype(np.int16)
    if reach <= INT32_MAX:
        return np.dtype(np.int32)
    if not check:
        return np.dtype(np.int64)
    raise DataError(f"integer HD accumulators may reach {reach} > 2^31 - 1")


def init_int_state(itaps: IntTaps, dtype=None, t_start: int = 0) -> EventLayerState:
    """Zero carried integer accumulators (``dtype``: default :func:`int_acc_dtype` of the
    kernel's bound, one event per voxel)."""
    dt = np.dtype(dtype) if dtype is not None else int_acc_dtype(itaps.bound)
    if dt not in (np.dtype(np.int16), np.dtype(np.int32)):
        raise DataError(f"integer accumulators are int16 or int32, got {dt}")
    if itaps.bound > (INT16_MAX if dt == np.int16 else INT32_MAX):
        raise DataError(f"kernel bound {itaps.bound} overflows {dt} accumulators")
    t = itaps.taps
    hp, wp = t.padded_hw
    return EventLayerState(np.zeros((t.n_delays - 1, hp, wp, 2, t.n_classes), dt), int(t_start))


def hd_step_cost(
    weight: np.ndarray, sensor_size: tuple[int, int], codes: np.ndarray | None = None
) -> dict[str, int]:
    """Work of one runtime step (``n_bins = 1``) of :func:`hd_event_chunk` (float kernel
    ``weight``) or :func:`hd_event_chunk_int` (``codes``: its int8 codes), split into the
    part that scales with the events and the part every step pays.

    - ``taps``: tap updates per event (the scatter runs every tap of the event's polarity
      table; the padded buffer needs no bounds check, so border events cost as much).
      Float: ``nnz(W[:, p]) + nnz(W[:, 1 - p]) = nnz(W)`` (both flip branches); integer:
      the taps of the form :func:`int_form` picks (``nnz(K_q)`` or ``nnz(W_s) + nnz(W_d)``).
    - ``step_bytes``: bytes moved per step on the time-slot buffer ``(K_T, Hp, Wp, 2, C)``
      (``S = 2 C Hp Wp`` elements a slot, ``a`` bytes an element): zeroing ``K_T`` slots
      (``a K_T S``), loading the ``K_T - 1`` carried slots (read + write, ``2 a (K_T - 1)
      S``) and, in float mode, copying them out as the next carry (``2 a (K_T - 1) S``):
      float ``4 S (5 K_T - 4)``, integer ``a S (3 K_T - 2)`` with ``a`` = 2 or 4 (int16 /
      int32 accumulators, :func:`int_acc_dtype` of the form's bound).
    - ``state_bytes``: the carried ``K_T - 1`` slots kept between steps, ``a (K_T - 1) S``.
    """
    c_n, _, kt, ky, kx = np.shape(weight)
    w_s, h_s = sensor_size
    slot = 2 * c_n * (h_s + ky - 1) * (w_s + kx - 1)
    if codes is None:
        taps, a, moved = int(np.count_nonzero(weight)), 4, 5 * kt - 4
    else:
        _, bound, taps = int_form(codes)
        a, moved = int_acc_dtype(bound).itemsize, 3 * kt - 2
    return {"taps": taps, "step_bytes": a * slot * moved, "state_bytes": a * slot * (kt - 1)}


def hd_event_chunk_int(
    itaps: IntTaps,
    state: EventLayerState,
    p: np.ndarray,
    tbin: np.ndarray,
    y: np.ndarray,
    x: np.ndarray,
    n_bins: int,
    backend: str = "numpy",
    group: int = 4,
    window: SlotWindow | None = None,
) -> tuple[np.ndarray, EventLayerState]:
    """Integer twin of :func:`hd_event_chunk`: ``max(B_0, B_1)`` (int32, ``(n_bins, C,
    Ho, Wo)``, no bias) for bins ``[state.t_next, state.t_next + n_bins)`` and the new
    state (``state`` is not modified; with ``window``, :class:`SlotWindow`, it is consumed).

    ``B_b = sum K_q A`` (or ``S``, ``D``: :class:`IntTaps`) in integer accumulators of
    the carry's dtype (int16 or int32, :func:`init_int_state`); exact: the events' largest voxel multiplicity ``m`` is
    counted and an int16 carry whose ``bound x m`` could overflow is widened to int32
    first (beyond int32: :class:`DataError`). Integer addition is associative, so the
    events are applied in one sweep sorted by (bin, polarity, pixel), the C loop taking
    ``group`` (1, 2 or 4; native only, the same integers for any) consecutive events of
    one polarity per pass over the taps (one offset and code load for ``group``
    read-modify-writes). ``backend``:
    ``"native"`` (``sdk/_native.c event_scatter_i16/_i32``), ``"numba"`` or ``"numpy"``
    (``np.add.at``, the reference); all give the same integers.
    """
    if group not in (1, 2, 4):
        raise DataError(f"group must be 1, 2 or 4, got {group}")
    taps = itaps.taps
    c_n = taps.n_classes
    hp, wp = taps.padded_hw
    ho, wo = taps.out_hw
    t0 = state.t_next
    if tbin.size and (tbin.min() < t0 or tbin.max() >= t0 + n_bins):
        raise DataError(
            f"events span bins {int(tbin.min())}..{int(tbin.max())}, outside the chunk "
            f"[{t0}, {t0 + n_bins})"
        )
    slot = taps.slot_size
    pos = ((y + taps.ky - 1) * wp + (x + taps.kx - 1)) * (2 * c_n)
    # one sweep ordered by (bin, polarity, pixel): the C loop pairs consecutive events of
    # one polarity; equal keys = repeated events of one voxel
    key = np.sort((((tbin - t0) * 2 + (p != 0)) * slot + pos).astype(np.int64))
    per_voxel = 1
    if key.size > 1:
        starts = np.flatnonzero(np.diff(key)) + 1
        runs = np.diff(np.concatenate(([0], starts, [key.size])))
        per_voxel = int(runs.max())
    dt = state.carry.dtype
    need = int_acc_dtype(itaps.bound, per_voxel)
    if need.itemsize > dt.itemsize:
        dt = need
    buf = _chunk_slots(state.carry, n_bins, dt, window)
    flat = buf.reshape(-1)
    base, pol = key // (2 * slot) * slot + key % slot, (key // slot % 2).astype(np.uint8)
    w0, w1 = itaps.codes
    o0, o1 = (np.ascontiguousarray(o, np.int64) for o in taps.offsets)
    if backend == "native":
        from neuroplast.runtime.native import OPS

        ints = (1, flat.size, base.size, o0.size, o1.size, dt.itemsize, int(group), w0.itemsize)
        _native_lib().op(OPS["event_scatter_i"], ints, (flat, base, pol, o0, w0, o1, w1))
    elif backend == "numba":
        _numba_scatter()(flat, base, pol, o0, w0, o1, w1)
    elif backend == "numpy":
        _scatter_numpy(flat, base, pol, (o0, o1), (w0, w1))
    else:
        raise DataError(f"unknown backend {backend!r}; use 'numpy', 'numba' or 'native'")
    out = buf[:n_bins, taps.ky - 1 : taps.ky - 1 + ho, taps.kx - 1 : taps.kx - 1 + wo]
    if itaps.form == "split":  # max(B_0, B_1) = (S + |D|) / 2, S + |D| even
        z = (out[..., 0, :].astype(np.int32) + np.abs(out[..., 1, :].astype(np.int32))) >> 1
    else:
        z = np.maximum(out[..., 0, :], out[..., 1, :]).astype(np.int32)  # (n, Ho, Wo, C)
    # the new carry is a view of this call's buffer (without a window nothing else holds
    # or writes it; the next call copies it into its own): one copy of K_T - 1 slots less
    return z.transpose(0, 3, 1, 2), EventLayerState(buf[n_bins:], t0 + n_bins)


def _binned(events: np.ndarray, sensor_size, n_bins: int, dt_us: int, t0_us: int):  # noqa: ANN001, ANN202
    """Validated events -> ``(p, tbin, y, x)`` of the bins ``[0, n_bins)``."""
    ev = validate_events(events, sensor_size, sorted_time=False)
    p, tb, y, x = voxel_indices(ev, dt_us, t0_us)
    keep = (tb >= 0) & (tb < n_bins)
    return p[keep], tb[keep], y[keep], x[keep]


def _time_ordered(p, tb, y, x, sensor_size, binary: bool):  # noqa: ANN001, ANN202
    """Events in bin order (stable); ``binary``: one per (p, bin, y, x) voxel, ordered by
    (bin, p, y, x). The float paths' summation order: keep it for bit-identity."""
    if binary and p.size:
        w, h = sensor_size
        key = np.unique(((tb * 2 + p) * h + y) * w + x)
        x, y, p, tb = key % w, (key // w) % h, (key // (w * h)) % 2, key // (2 * w * h)
    order = np.argsort(tb, kind="stable")
    return p[order], tb[order], y[order], x[order]


def _chunks(tb: np.ndarray, n_bins: int, chunk: int):  # noqa: ANN202
    """``(first bin, bins, event slice)`` of consecutive chunks of ``chunk`` bins over
    bin-ordered events."""
    bounds = np.searchsorted(tb, np.arange(0, n_bins + chunk, chunk))
    for i, s in enumerate(range(0, n_bins, chunk)):
        yield s, min(chunk, n_bins - s), slice(bounds[i], bounds[i + 1])


def hd_event_run_int(
    itaps: IntTaps,
    events: np.ndarray,
    n_bins: int,
    *,
    dt_us: int = 1000,
    t0_us: int = 0,
    chunk: int = 32,
    backend: str = "numpy",
    binary: bool = True,
    group: int = 4,
) -> np.ndarray:
    """A whole event stream through :func:`hd_event_chunk_int` in chunks of ``chunk``
    bins: ``max(B_0, B_1)`` as int32 ``(n_bins, C, Ho, Wo)`` (``binary``: one event per
    voxel, as :func:`hd_event_run`; ``group``: as :func:`hd_event_chunk_int`)."""
    sensor = itaps.taps.sensor_size
    p, tb, y, x = _time_ordered(*_binned(events, sensor, n_bins, dt_us, t0_us), sensor, binary)
    state = init_int_state(itaps)
    outs = []
    for _, n, e in _chunks(tb, n_bins, chunk):
        z, state = hd_event_chunk_int(itaps, state, p[e], tb[e], y[e], x[e], n, backend, group)
        outs.append(z)
    return np.concatenate(outs)


#: int16 lanes of an integer pull chunk: 8 (128-bit) ran 1.1-1.3x the 16-lane (256-bit)
#: chunks on the bench movie (fewer chunks with 16 - 3,779 instead of 4,177 per event,
#: per-weight kernel - but each costs more); int32 planes take 8 (256-bit)
INT_ROW_LANES = 8


@dataclass(frozen=True)
class IntRowTaps:
    """The integer kernel as row chunks for the integer pull path (:func:`hd_event_evidence_int`).

    Two planes per class (``(H_o + 1) x row_stride`` elements each, ``plane`` apart, int16
    or int32): split form ``S`` and ``D``, direct form ``B_0`` and ``B_1``. Two sources,
    each a :class:`RowTaps`-style table (``lanes`` consecutive ``dx`` per chunk, offsets
    ``pad_left - dy row_stride - dx0 - (lanes - 1)``, plus ``plane`` for chunks into the
    second plane; ``ystart`` over ``(c, d, dy)``, chunks of a cell ordered (plane, dx0))
    whose chunks a pixel adds times its coefficient: split: source 0 = ``W_s`` into ``S``
    times ``A_s = n_on + n_off``, source 1 = ``W_d`` into ``D`` times ``A_d = n_off -
    n_on``; direct: source 0 = ``K_off`` into ``B_0`` and ``K_on`` into ``B_1`` times
    ``A_off``, source 1 = ``K_on`` into ``B_0`` and ``K_off`` into ``B_1`` times
    ``A_on``.
    """

    form: str
    lanes: int
    acc_bytes: int  #: 2 (int16 planes) or 4 (int32)
    row_stride: int
    pad_left: int
    #: elements from one plane of a class to the next (>= (Ho + 1) row_stride + lanes); the
    #: pair layout: half a class's one interleaved plane
    plane: int
    ystart: tuple[np.ndarray, np.ndarray]  #: int64 (C K_T (K_Y + 1),) per source
    off: tuple[np.ndarray, np.ndarray]  #: int64 (n_chunks,) per source
    vals: tuple[np.ndarray, np.ndarray]  #: int16 / int32 (n_chunks, lanes) per source
    #: the pair layout (split form, int16 x 16): one plane per class with ``S`` and ``D``
    #: of a position interleaved, one table (source 1 empty) whose chunks cover 8
    #: positions where ``W_s`` or ``W_d`` is non-zero, lanes ``(W_s, W_d)`` per position,
    #: times the pixel's ``(A_s, A_d)`` lane by lane; offsets in int16 elements
    pairs: bool = False

    @property
    def n_chunks(self) -> tuple[int, int]:
        """Chunks per source that an interior pixel executes (with a non-zero coefficient)."""
        return int(self.off[0].size), int(self.off[1].size)


def compile_int_rows(
    itaps: IntTaps, lanes: int = 8, acc_bytes: int = 2, pairs: bool = False
) -> IntRowTaps:
    """:class:`IntRowTaps` of the integer kernel ``itaps.kernel`` (its form): ``lanes`` = 8
    (int16 planes: one 128-bit vector; int32 planes: 256-bit) or 16 (int16, 256-bit);
    ``pairs``: the pair layout (split form, int16, 16 lanes = 8 positions). Cached in
    ``itaps.rows``."""
    if (acc_bytes, lanes) not in ((2, 8), (2, 16), (4, 8)):
        raise DataError(f"integer row chunks are int16 x 8 / 16 or int32 x 8, got "
                        f"{8 * acc_bytes}-bit x {lanes}")  # fmt: skip
    if itaps.kernel is None:
        raise DataError("integer tap table has no kernel codes; rebuild it with compile_int_taps")
    if pairs and (itaps.form != "split" or (acc_bytes, lanes) != (2, 16)):
        raise DataError("the pair layout takes the split form and int16 x 16 lanes")
    key = (int(lanes), int(acc_bytes)) + (("pairs",) if pairs else ())
    if key in itaps.rows:
        return itaps.rows[key]
    q = itaps.kernel.astype(np.int64)
    c_n, _, kt, ky, kx = q.shape
    sensor = itaps.taps.sensor_size
    ho = itaps.taps.out_hw[0]
    if pairs:
        itaps.rows[key] = _int_pair_rows(q, sensor, ho)
        return itaps.rows[key]
    if itaps.form == "split":
        sources = ([(q[:, 0] + q[:, 1], 0)], [(q[:, 0] - q[:, 1], 1)])
    else:
        sources = ([(q[:, 0], 0), (q[:, 1], 1)], [(q[:, 1], 0), (q[:, 0], 1)])
    dt = np.int16 if acc_bytes == 2 else np.int32
    ys_all, off_all, val_all = [], [], []
    rs = pad = plane = 0
    for parts in sources:
        cell, part, offs, vals = [], [], [], []
        for w, b in parts:
            rt = _row_taps(w.astype(np.float32), sensor, lanes)
            rs, pad = rt.row_stride, rt.pad_left
            plane = -(-((ho + 1) * rs + lanes) // 32) * 32
            counts = np.diff(rt.ystart.reshape(c_n * kt, ky + 1), axis=1).reshape(-1)
            cell.append(np.repeat(np.arange(counts.size), counts))
            part.append(np.full(rt.n_chunks, b))
            offs.append(rt.off + b * plane)
            vals.append(rt.vals)
        cell, part = np.concatenate(cell), np.concatenate(part)
        order = np.lexsort((np.arange(cell.size), part, cell))  # (cell, plane, dx0)
        counts = np.bincount(cell, minlength=c_n * kt * ky).reshape(c_n * kt, ky)
        starts = np.concatenate(([0], np.cumsum(counts.reshape(-1))))
        ys = np.empty((c_n * kt, ky + 1), np.int64)
        ys[:, :ky] = starts[:-1].reshape(c_n * kt, ky)
        ys[:, ky] = starts[ky::ky]
        ys_all.append(ys.reshape(-1))
        off_all.append(np.ascontiguousarray(np.concatenate(offs)[order], np.int64))
        val_all.append(np.ascontiguousarray(np.concatenate(vals)[order].astype(dt)))
    out = IntRowTaps(itaps.form, int(lanes), int(acc_bytes), int(rs), int(pad), int(plane),
                     (ys_all[0], ys_all[1]), (off_all[0], off_all[1]),
                     (val_all[0], val_all[1]))  # fmt: skip
    itaps.rows[key] = out
    return out


def _int_pair_rows(q: np.ndarray, sensor: tuple[int, int], ho: int) -> IntRowTaps:
    """The pair layout of :class:`IntRowTaps` for int8 codes ``q (C, 2, K_T, K_Y, K_X)``:
    the chunks of the union of ``W_s`` and ``W_d`` non-zeros (:func:`_row_taps` of the
    mask, 8 positions each), values interleaved ``(W_s, W_d)``."""
    c_n, _, kt, ky, kx = q.shape
    w_s, w_d = q[:, 0] + q[:, 1], q[:, 0] - q[:, 1]
    rt = _row_taps(((w_s != 0) | (w_d != 0)).astype(np.float32), sensor, 8)
    rs, pad = rt.row_stride, rt.pad_left
    counts = np.diff(rt.ystart.reshape(c_n * kt, ky + 1), axis=1).reshape(-1)
    cell = np.repeat(np.arange(counts.size), counts)  # (c K_T + d) K_Y + dy per chunk
    dy, r = cell % ky, cell // ky
    c, k = r // kt, kt - 1 - r % kt  # class, kernel time index of delay d
    dx0 = pad - dy * rs - 7 - rt.off
    dx = dx0[:, None] + 7 - np.arange(8)[None, :]  # (chunks, 8): position j's dx
    ok = dx < kx
    dxc = np.minimum(dx, kx - 1)
    vals = np.zeros((rt.n_chunks, 16), np.int16)
    vals[:, 0::2] = np.where(ok, w_s[c[:, None], k[:, None], dy[:, None], dxc], 0)
    vals[:, 1::2] = np.where(ok, w_d[c[:, None], k[:, None], dy[:, None], dxc], 0)
    plane = -(-((ho + 1) * rs + 8) // 32) * 32  # half a class's region (int16 elements)
    empty = np.zeros_like(rt.ystart)
    return IntRowTaps("split", 16, 2, int(rs), int(pad), int(plane), (rt.ystart, empty),
                      (np.ascontiguousarray(2 * rt.off), np.zeros(0, np.int64)),
                      (vals, np.zeros((0, 16), np.int16)), True)  # fmt: skip


def _int_pixels(itaps: IntTaps, events: np.ndarray, n_bins: int, dt_us: int, t0_us: int,
                binary: bool):  # fmt: skip  # noqa: ANN202
    """:func:`_pixels_of` the binned stream."""
    p, tb, y, x = _binned(events, itaps.taps.sensor_size, n_bins, dt_us, t0_us)
    return _pixels_of(itaps, p, tb, y, x, n_bins, binary)


def _pixels_of(itaps: IntTaps, p, tb, y, x, n_bins: int, binary: bool):  # noqa: ANN001, ANN202
    """Events ``(p, tbin, y, x)`` (bins ``0 .. n_bins - 1``) as pixels per ms for the integer
    pull path: ``(fst, pix, a0, a1, m)``: ms ``t`` holds pixels ``fst[t] .. fst[t + 1] - 1``
    (``pix = y W + x``, ascending) with the coefficients of :class:`IntRowTaps`' two
    sources and ``m``, the pixel's largest number of events in one voxel (1 when
    ``binary``)."""
    w, h = itaps.taps.sensor_size
    key = ((tb * h + y) * w + x) * 2 + p
    key = np.unique(key) if binary else np.sort(np.asarray(key, np.int64))
    pix = key // 2
    first = np.flatnonzero(np.concatenate(([True], pix[1:] != pix[:-1]))) if key.size else key
    n_all = np.diff(np.concatenate((first, [key.size])))
    n_on = np.add.reduceat(key % 2, first) if key.size else key
    n_off = n_all - n_on
    if itaps.form == "split":
        a0, a1 = n_on + n_off, n_off - n_on
    else:
        a0, a1 = n_off, n_on
    upix = pix[first]
    fst = np.searchsorted(upix // (w * h), np.arange(n_bins + 1))
    i64 = np.int64
    return (fst.astype(i64, copy=False), (upix % (w * h)).astype(i64, copy=False),
            np.ascontiguousarray(a0, i64), np.ascontiguousarray(a1, i64),
            np.maximum(n_on, n_off).astype(i64, copy=False))  # fmt: skip


def _pull_int_call(itaps: IntTaps, fst, pix, a0, a1, m, n_bins: int, b_q, qm_, sh_, zp: int,
                   lo: int, hi: int, group: int, lanes, sweep: int, t0: int = 0,
                   want_z: bool = False, pairs=None):  # fmt: skip  # noqa: ANN001, ANN202
    """``sdk/_native.c pull_int`` on a pixel list: the evidence of steps ``t0 .. n_bins - 1``
    (int64 ``(n_bins - t0, C)``) and, with ``want_z``, their per-position codes (int32
    ``(n_bins - t0, C, Ho, Wo)``, else None)."""
    taps = itaps.taps
    c_n = taps.n_classes
    ho, wo = taps.out_hw
    per_voxel = int(m.max(initial=1))
    if itaps.bound * per_voxel + int(np.abs(b_q).max(initial=0)) > INT32_MAX:
        raise DataError(
            "max(B_0, B_1) + b_q may leave int32: the integer pull path needs it inside"
        )
    rw = compile_int_rows(itaps, *_pull_layout(itaps, per_voxel, lanes, pairs))
    w, h = taps.sensor_size
    out = np.zeros((n_bins - t0, c_n), np.int64)
    z = np.empty((n_bins - t0, c_n, ho, wo), np.int32) if want_z else None
    ints = (1, w, h, n_bins, taps.n_delays, ho, wo, taps.ky, taps.kx, rw.row_stride,
            rw.pad_left, rw.lanes, rw.acc_bytes, c_n, min(int(group), c_n), rw.plane, pix.size,
            rw.off[0].size, rw.off[1].size, int(itaps.form == "split"), int(zp), lo, hi,
            int(sweep), int(t0), int(rw.pairs))  # fmt: skip
    bufs = (fst, pix, a0, a1, rw.ystart[0], rw.off[0], rw.vals[0], rw.ystart[1], rw.off[1],
            rw.vals[1], np.ascontiguousarray(b_q, np.int64), qm_, sh_, out)  # fmt: skip
    from neuroplast.runtime.native import OPS

    _native_lib().op(OPS["pull_int"], tuple(int(v) for v in ints), bufs + ((z,) if want_z else ()))
    return out, z


def _pull_layout(itaps: IntTaps, per_voxel: int, lanes, pairs) -> tuple[int, int, bool]:  # noqa: ANN001
    """``(lanes, acc_bytes, pairs)`` of the integer pull path's tables: int16 / int32 planes
    from :func:`int_acc_dtype` of the bound times ``per_voxel``; ``pairs=None``: the pair
    layout wherever it applies (split form, int16 planes; 16 lanes), else two planes of
    ``lanes`` (default :data:`INT_ROW_LANES`; int32: 8)."""
    ab = int_acc_dtype(itaps.bound, per_voxel).itemsize
    if pairs is None:
        pairs = itaps.form == "split" and ab == 2
    if pairs and (itaps.form != "split" or ab != 2):
        raise DataError("the pair layout takes the split form and int16 planes")
    return (16 if pairs else 8 if ab == 4 else int(lanes or INT_ROW_LANES)), ab, bool(pairs)


def warm_int_pull(itaps: IntTaps) -> IntRowTaps:
    """Compile (and cache) the tables the integer pull path takes by default for one
    event per voxel (:func:`compile_int_rows`), so that a first step does not pay it."""
    return compile_int_rows(itaps, *_pull_layout(itaps, 1, None, None))


def _per_class(v, c_n: int) -> np.ndarray:  # noqa: ANN001
    """``v`` (scalar or ``(C,)``) as a writable C-contiguous int64 ``(C,)`` array: ``v``
    itself when it already is one (the runtime op passes its own each step), else a copy."""
    if (type(v) is np.ndarray and v.dtype == np.int64 and v.shape == (c_n,)
            and v.flags.c_contiguous and v.flags.writeable):  # fmt: skip
        return v
    return np.broadcast_to(np.asarray(v, np.int64).reshape(-1), (c_n,)).copy()


def _requant_args(c_n: int, bias_q, qm, shift, out_range):  # noqa: ANN001, ANN202
    """``(b_q, qm, shift)`` as int64 ``(C,)`` arrays and ``(lo, hi)``, checked."""
    b_q = np.asarray(bias_q, np.int64).reshape(-1)
    qm_, sh_ = (_per_class(v, c_n) for v in (qm, shift))
    lo, hi = (int(v) for v in out_range)
    if b_q.size != c_n or lo > hi:
        raise DataError(f"bias_q must hold {c_n} codes and out_range lo <= hi")
    return b_q, qm_, sh_, lo, hi


_EVIDENCE_BACKENDS = ("native", "native-scatter", "numba", "numpy")


def hd_event_evidence_int(
    itaps: IntTaps,
    events: np.ndarray,
    n_bins: int,
    bias_q: np.ndarray,
    qm: np.ndarray,
    shift: np.ndarray,
    zp: int = 0,
    out_range: tuple[int, int] = (-128, 127),
    *,
    dt_us: int = 1000,
    t0_us: int = 0,
    backend: str = "native",
    binary: bool = True,
    group: int = PULL_GROUP,
    lanes: int | None = None,
    sweep: int = 0,
    pairs: bool | None = None,
) -> np.ndarray:
    """The integer layer's pooled evidence, int64 ``(n_bins, C)``::

        E(t, c) = sum_{y, x valid} clamp(requantize(max(B_0, B_1)(c, t, y, x) + b_q[c],
                                          qm[c], shift[c]) + zp, lo, hi)

    (:func:`neuroplast.quant.requantize`, LiteRT single rounding; ``B_p`` the integer
    accumulators of :func:`hd_event_chunk_int`). ``backend="native"``: the integer pull
    path (``sdk/_native.c pull_int``): per step and group of ``group`` classes, int16 (or
    int32, :func:`int_acc_dtype` of the bound times the events per voxel) planes of the
    two halves (:class:`IntRowTaps`) receive the row chunks of every pixel of the last
    ``K_T`` ms, times the pixel's coefficient (exact integers: the order is free), then a
    requantizing read-out over the rows those pixels reach, each zeroed after. ``lanes``
    (two-plane layout only): int16 lanes per chunk, :data:`INT_ROW_LANES` (8: 128-bit) or
    16 (256-bit); int32 planes always take 8 (256-bit). ``pairs``: the pair layout of :class:`IntRowTaps`
    (``None``: wherever it applies, the split form with int16 planes; 1.1-1.2x the two
    planes on the bench movie: 8 positions of ``S`` and ``D`` per 256-bit chunk, chunks
    where either half is non-zero, so 3,653 instead of 2,352 + 3,608 per interior event on
    the per-weight kernel). ``sweep``: the order of a step's additions (the same
    integers for any): 0 delay by delay (``d = K_T - 1 .. 0``, each ms's pixels in
    ``(y, x)`` order), 1 one sweep over the window's pixels of all ``K_T`` ms by row, 2 by
    pixel (the same pixel's ms back to back); 1 and 2 ran 0.93x and 0.84x of 0 at 12
    classes per pass on the bench movie (0.83x, 0.70x at 4), so 0 is the default.
    ``"native-scatter"`` / ``"numba"`` / ``"numpy"``: the per-position path,
    :func:`hd_event_run_int` with that scatter (``"native"``), requantized and summed in
    numpy (the reference). All give the same integers; the pull path needs ``|max(B_0,
    B_1) + b_q| < 2^31`` (checked from the bound).
    """
    if backend not in _EVIDENCE_BACKENDS:
        raise DataError(f"unknown backend {backend!r}; use one of {', '.join(_EVIDENCE_BACKENDS)}")
    b_q, qm_, sh_, lo, hi = _requant_args(itaps.taps.n_classes, bias_q, qm, shift, out_range)
    if backend != "native":
        z = hd_event_run_int(itaps, events, n_bins, dt_us=dt_us, t0_us=t0_us, binary=binary,
                             backend="native" if backend == "native-scatter" else backend)  # fmt: skip
        zq = requantize(z + b_q[None, :, None, None], qm_[None, :, None, None],
                        sh_[None, :, None, None])  # fmt: skip
        return np.clip(zq + int(zp), lo, hi).sum(axis=(2, 3))
    if not 1 <= int(group) <= 64:
        raise DataError(f"group must be in 1..64, got {group}")
    if sweep not in (0, 1, 2):
        raise DataError(f"sweep must be 0, 1 or 2, got {sweep}")
    px = _int_pixels(itaps, events, n_bins, dt_us, t0_us, binary)
    return _pull_int_call(
        itaps, *px, n_bins, b_q, qm_, sh_, zp, lo, hi, group, lanes, sweep, 0, False, pairs
    )[0]


@dataclass(frozen=True)
class IntPullState:
    """Carried state of :func:`hd_event_chunk_int_pull`: the pixels of the last ``K_T - 1``
    ms (absolute ms ``t``, ``pix = y W + x``, the two coefficients, events per voxel
    ``m``; ordered by ``(t, pix)``) and the next bin."""

    t: np.ndarray
    pix: np.ndarray
    a0: np.ndarray
    a1: np.ndarray
    m: np.ndarray
    t_next: int


def init_int_pull_state(t_start: int = 0) -> IntPullState:
    """No pixels yet: the integer pull path's state at bin ``t_start``."""
    e = np.zeros(0, np.int64)
    return IntPullState(e, e, e, e, e, int(t_start))


def hd_event_chunk_int_pull(
    itaps: IntTaps,
    state: IntPullState,
    p: np.ndarray,
    tbin: np.ndarray,
    y: np.ndarray,
    x: np.ndarray,
    n_bins: int,
    bias_q: np.ndarray,
    qm: np.ndarray,
    shift: np.ndarray,
    zp: int = 0,
    out_range: tuple[int, int] = (-128, 127),
    group: int = PULL_GROUP,
) -> tuple[np.ndarray, np.ndarray, IntPullState]:
    """The integer layer's output codes ``z_q = clamp(requantize(max(B_0, B_1) + b_q) +
    zp)`` (int32 ``(n_bins, C, Ho, Wo)``) and their sums over the grid (int64 ``(n_bins,
    C)``) for bins ``[state.t_next, state.t_next + n_bins)``, by the integer pull path
    (``sdk/_native.c pull_int``: every step's planes are rebuilt from the pixels of its
    last ``K_T`` ms, so the state is those pixels, not accumulators), and the new state
    (``state`` is not modified). Events are counted (no binary reduction: ``A`` = events
    per voxel, as :func:`hd_event_chunk_int`). The same integers as
    :func:`hd_event_chunk_int` + requantization."""
    taps = itaps.taps
    kt = taps.n_delays
    t0 = state.t_next
    if tbin.size and (tbin.min() < t0 or tbin.max() >= t0 + n_bins):
        raise DataError(
            f"events span bins {int(tbin.min())}..{int(tbin.max())}, outside the chunk "
            f"[{t0}, {t0 + n_bins})"
        )
    w, h = taps.sensor_size
    if p.size and (np.any((p != 0) & (p != 1)) or y.min() < 0 or y.max() >= h or x.min() < 0
                   or x.max() >= w):  # fmt: skip
        raise DataError(f"events must have polarity 0/1 and lie on the {w}x{h} sensor")
    b_q, qm_, sh_, lo, hi = _requant_args(taps.n_classes, bias_q, qm, shift, out_range)
    w0 = t0 - (kt - 1)  # the window's first ms
    n_win = kt - 1 + n_bins
    tb = np.asarray(tbin, np.int64) - w0
    fst, pix, a0, a1, m = _pixels_of(itaps, np.asarray(p, np.int64), tb, np.asarray(y, np.int64),
                                     np.asarray(x, np.int64), n_win, False)  # fmt: skip
    # carried pixels still inside the window (state.t ascending: a suffix), first
    k0 = int(np.searchsorted(state.t, w0))
    fst = fst + np.searchsorted(state.t[k0:] - w0, np.arange(n_win + 1))
    pix, a0, a1, m = (np.concatenate((o[k0:], v)) for o, v in
                      ((state.pix, pix), (state.a0, a0), (state.a1, a1), (state.m, m)))  # fmt: skip
    ev, z = _pull_int_call(itaps, fst, pix, a0, a1, m, n_win, b_q, qm_, sh_, zp, lo, hi,
                           group, None, 0, kt - 1, True)  # fmt: skip
    c0 = n_win - (kt - 1)  # the next call's window: ms c0 .. n_win - 1 of this one (a suffix)
    e0 = int(fst[c0])
    t_new = np.repeat(np.arange(c0 + w0, n_win + w0), np.diff(fst[c0:]))
    new = IntPullState(t_new, pix[e0:], a0[e0:], a1[e0:], m[e0:], t0 + n_bins)
    return z, ev, new


def pull_int_ops(
    itaps: IntTaps,
    events: np.ndarray,
    n_bins: int,
    *,
    lanes: int | None = None,
    pairs: bool | None = None,
    dt_us: int = 1000,
    t0_us: int = 0,
    binary: bool = True,
) -> int:
    """Row-chunk updates :func:`hd_event_evidence_int` (``backend="native"``, the same
    ``lanes`` and ``pairs``) executes on this stream: for every pixel of ms ``t`` and
    source with a non-zero coefficient (the pair layout: its one table, for every pixel),
    the chunks of all ``(c, d)`` with ``t + d < n_bins`` whose row lands on the grid
    (``0 <= y - dy < Ho``)."""
    taps = itaps.taps
    c_n, kt, ky = taps.n_classes, taps.n_delays, taps.ky
    ho = taps.out_hw[0]
    fst, pix, a0, a1, m = _int_pixels(itaps, events, n_bins, dt_us, t0_us, binary)
    rw = compile_int_rows(itaps, *_pull_layout(itaps, int(m.max(initial=1)), lanes, pairs))
    if not pix.size:
        return 0
    y = pix // taps.sensor_size[0]
    lo = np.maximum(0, y - ho + 1)
    hi = np.minimum(ky - 1, y) + 1
    t = np.repeat(np.arange(n_bins), np.diff(fst))
    total = 0
    for s, run in enumerate(_sources_run(rw, a0, a1)):
        cum = rw.ystart[s].reshape(c_n, kt, ky + 1).sum(axis=0)  # (kt, ky + 1): sum over c
        per_d = cum[:, hi] - cum[:, lo]  # (kt, pixels)
        live = np.arange(kt)[:, None] < (n_bins - t)[None, :]
        total += int((per_d * live)[:, run].sum())
    return total


def _sources_run(rw: IntRowTaps, a0: np.ndarray, a1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which pixels run each source's chunks in ``sdk/_native.c pull_int``: those with a
    non-zero coefficient (the pair layout: its one table, for every pixel)."""
    return (a0 != 0) | rw.pairs, (a1 != 0) & (not rw.pairs)


def hd_pull_step_cost(itaps: IntTaps) -> dict[str, int]:
    """Work and state of one runtime step (``n_bins = 1``) of :func:`hd_event_chunk_int_pull`
    (the integer pull path, ``sdk/_native.c pull_int``, with the tables
    :func:`warm_int_pull` compiles: one event per voxel), split as :func:`hd_step_cost`:

    - ``chunks``: row-chunk updates (vector read-modify-writes of ``lanes`` int16 / int32
      plane elements) of one OFF and one ON event, each alone in its ``(ms, pixel)`` and
      interior (``K_Y - 1 <= y <= H_o - 1``: every kernel row lands on the output grid),
      over the whole time it stays in the window: at step ``t + d`` the pass runs the
      chunks of delay ``d`` of the pixels of ms ``t`` (``d = 0 .. K_T - 1``), so a pixel
      runs each delay's chunks once, the whole table of every source its coefficients
      reach (:func:`_sources_run`; direct form: one source per polarity, split form: both,
      pair layout: its one table)::

          chunks = sum_{p in (OFF, ON)} sum_{s run by p} IntRowTaps.n_chunks[s]

      Border events (rows outside ``K_Y - 1 .. H_o - 1``) reach fewer rows and run fewer
      chunks, and events sharing a pixel and ms merge into one pixel (which runs at most
      the chunks of its events alone), so ``chunks / 2`` per event is an upper bound.
    - ``readout``: output positions the requantizing read-out visits per step, upper bound
      ``C H_o W_o`` (it visits only the rows that the window's pixels reach).
    - ``step_bytes``: bytes moved per step whatever the events: the chunk tables re-laid
      per group of classes (read + write of ``n_chunks[s] (8 + lanes a)`` bytes per
      source, ``a`` = 2 or 4 the plane element) and the planes zeroed after the read-out
      (upper bound, all rows: ``2 C (H_o + 1) row_stride a``).
    - ``pixel_bytes``: bytes of carried state per ``(ms, pixel)`` with events
      (:class:`IntPullState`'s int64 arrays); the state holds the pixels of the last
      ``K_T - 1`` ms.
    """
    rw = warm_int_pull(itaps)
    taps = itaps.taps
    z = np.zeros(1, np.int64)
    chunks = 0
    for pol in (0, 1):  # one event of each polarity, alone in its pixel and ms
        _, _, a0, a1, _ = _pixels_of(itaps, z + pol, z, z, z, 1, True)
        for s, run in enumerate(_sources_run(rw, a0, a1)):
            chunks += rw.n_chunks[s] * int(run[0])
    table = sum(n * (8 + rw.lanes * rw.acc_bytes) for n in rw.n_chunks)
    ho, wo = taps.out_hw
    planes = 2 * taps.n_classes * (ho + 1) * rw.row_stride * rw.acc_bytes
    st = init_int_pull_state()
    pixel_bytes = sum(a.itemsize for a in (st.t, st.pix, st.a0, st.a1, st.m))
    return {"chunks": int(chunks), "readout": taps.n_classes * ho * wo,
            "step_bytes": int(2 * table + planes), "pixel_bytes": int(pixel_bytes)}  # fmt: skip


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


def _split_pixel(
    key, n_ev, e, pix, binary, y, x, ho, wo, ky, kx, diff, n_full
):  # pragma: no cover - jitted
    """One pixel's events of the sum/difference split (shared by :func:`_ring_split_py` and
    :func:`_pull_rows_py`; ``sdk/_native.c split_pixel`` is its C twin).

    Counts the keys from ``e`` with ``key // 2 == pix`` per polarity (``binary``: at most
    one each) and adds ``A_s = n_on + n_off`` to the linear half: a pixel inside every
    window ``(dy, dx)`` to ``n_full``, others as the 4 corners of their rectangle of
    offsets in the difference array ``diff`` (``(K_Y + 1) x (K_X + 1)``, flat). Returns
    ``(e past the pixel, n_full, A_d = n_off - n_on)``.
    """
    gx = kx + 1
    n_on = 0
    n_off = 0
    while e < n_ev and key[e] // 2 == pix:
        if key[e] % 2:
            n_on += 1
        else:
            n_off += 1
        e += 1
    if binary:
        n_on = min(n_on, 1)
        n_off = min(n_off, 1)
    a_s = n_on + n_off
    ylo = max(0, y - ho + 1)
    yhi = min(ky - 1, y)
    xlo = max(0, x - wo + 1)
    xhi = min(kx - 1, x)
    if ylo == 0 and yhi == ky - 1 and xlo == 0 and xhi == kx - 1:
        n_full += a_s
    else:
        diff[ylo * gx + xlo] += a_s
        diff[ylo * gx + xhi + 1] -= a_s
        diff[(yhi + 1) * gx + xlo] -= a_s
        diff[(yhi + 1) * gx + xhi + 1] += a_s
    return e, n_full, n_off - n_on


def _split_linear_ms(
    ky, kx, n_full, diff, box, s_d, s_dy, s_dx, s_c, s_w, sl, n_c, l_acc
):  # pragma: no cover - jitted
    """End of a ms with pixels (the linear half, C twin ``split_linear_ms``): ``Box =
    n_full +`` the 2-D prefix sum of ``diff`` (then zeroed), and ``L[(t + d) % K_T, c] +=
    W_s(c, d, dy, dx) Box(dy, dx)`` over the non-zero ``W_s`` taps."""
    gx = kx + 1
    for yy in range(ky):
        run = 0
        for xx in range(kx):
            run += diff[yy * gx + xx]
            up = box[(yy - 1) * kx + xx] - n_full if yy else 0.0
            box[yy * kx + xx] = up + run + n_full
    diff[:] = 0
    for k in range(s_w.shape[0]):
        l_acc[sl[s_d[k]] * n_c + s_c[k]] += s_w[k] * box[s_dy[k] * kx + s_dx[k]]


def _ring_split_py(
    key, sw, sh, binary, n_bins, kt, ho, wo, ky, kx,
    blk_d, blk_dy, blk_dx, blk_start, d_c, d_w,
    s_d, s_dy, s_dx, s_c, s_w, vals, out,
):  # fmt: skip  # pragma: no cover - jitted
    """Pooled flip-max through the sum/difference split: ``out[t, c] = L + S``.

    Events as sorted keys ``((t H + y) W + x) 2 + p`` (``binary``: duplicates count
    once); with ``A_s = A_off + A_on``, ``A_d = A_off - A_on`` of one pixel and ms, ``sum_{valid y,x} 2 (z - b) = L + S`` where

    * ``L(c, t) = sum_{W_s != 0} W_s(c, d, dy, dx) Box(t - d, dy, dx)``, ``Box`` = sum
      of ``A_s`` over rows ``dy .. dy + Ho - 1``, cols ``dx .. dx + Wo - 1``. A pixel
      lies in the windows of a rectangle of offsets ``(dy, dx)``: 4 updates of a
      ``(K_Y + 1, K_X + 1)`` difference array (interior pixels: one counter), whose
      2-D prefix sum at the end of the ms is ``Box``; then ``nnz(W_s)`` updates of
      the ring ``L[(t + d) % K_T, c]``.
    * ``S(c, t) = sum_{valid y,x} |D(c, t, y, x)|``, ``D = W_d * A_d``: a pixel with
      ``A_d != 0`` adds ``A_d W_d`` at the ``nnz(W_d)`` taps that land on the valid
      grid (interior pixels: all, no checks; border pixels: checked per
      ``(d, dy, dx)`` block) of the ring ``D[(t + d) % K_T, y - dy, x - dx, c]``;
      ``|D_new| - |D_old|`` is summed per tap over the ms (float64) and added to
      ``S[(t + d) % K_T, c]`` at its end (``nnz(W_d)`` per ms with events).

    Readout of step ``t``: slot ``t % K_T`` of ``L`` and ``S`` (O(C)), then zeroed;
    the rows of the retired slot that were written are memset (at most ``C Ho Wo``
    floats per ms, nothing in idle ms). Time-stamping every accumulator instead (no
    clearing, twice the memory) measured 1.3-1.6x slower and was dropped.
    """
    n_c = out.shape[1]
    hw = ho * wo
    s_acc = np.zeros(kt * n_c, dtype=np.float64)
    l_acc = np.zeros(kt * n_c, dtype=np.float64)
    gx = kx + 1
    diff = np.zeros((ky + 1) * gx, dtype=np.int64)
    box = np.zeros(ky * kx, dtype=np.float64)
    sl = np.zeros(kt, dtype=np.int64)
    nb = blk_d.shape[0]
    nd = d_c.shape[0]
    # flat per-tap tables for interior pixels: element = slot base + pixel - t_off
    t_d = np.zeros(nd, dtype=np.int64)
    t_off = np.zeros(nd, dtype=np.int64)
    for b in range(nb):
        for k in range(blk_start[b], blk_start[b + 1]):
            t_d[k] = blk_d[b]
            t_off[k] = (blk_dy[b] * wo + blk_dx[b]) * n_c - d_c[k]
    t_base = np.zeros(nd, dtype=np.int64)
    d_abs = np.zeros(nd, dtype=np.float64)  # per-tap |D| change within the ms
    row_lo = np.full(kt, ho, dtype=np.int64)  # output rows of each slot that hold data
    row_hi = np.full(kt, -1, dtype=np.int64)
    n_ev = key.shape[0]
    e = 0
    for t in range(n_bins):
        for d in range(kt):
            sl[d] = (t + d) % kt
        n_full = 0
        n_pix = 0
        ready = False
        y_min = sh
        y_max = -1
        while e < n_ev and key[e] // (2 * sw * sh) == t:
            pix = key[e] // 2  # (t H + y) W + x
            y = (pix // sw) % sh
            x = pix % sw
            # counts, and the linear half: offsets (dy, dx) whose window holds (y, x)
            e, n_full, a_d = _split_pixel(
                key, n_ev, e, pix, binary, y, x, ho, wo, ky, kx, diff, n_full
            )
            n_pix += 1
            # rectified half
            if a_d == 0:
                continue
            fa = np.float32(a_d)
            epos = (y * wo + x) * n_c
            y_min = min(y_min, y)
            y_max = max(y_max, y)
            if not ready:  # this ms's flat tap tables (slots rotate every ms)
                for k in range(nd):
                    dd = t_d[k]
                    t_base[k] = sl[dd] * hw * n_c - t_off[k]
                ready = True
            if y >= ky - 1 and y < ho and x >= kx - 1 and x < wo:  # every tap is valid
                for k in range(nd):
                    i = epos + t_base[k]
                    old = vals[i]
                    new = old + fa * d_w[k]
                    vals[i] = new
                    d_abs[k] += abs(np.float64(new)) - abs(np.float64(old))
                continue
            for b in range(nb):
                yo = y - blk_dy[b]
                xo = x - blk_dx[b]
                if yo < 0 or yo >= ho or xo < 0 or xo >= wo:
                    continue
                dd = blk_d[b]
                base = (sl[dd] * hw + yo * wo + xo) * n_c
                for k in range(blk_start[b], blk_start[b + 1]):
                    i = base + d_c[k]
                    old = vals[i]
                    new = old + fa * d_w[k]
                    vals[i] = new
                    d_abs[k] += abs(np.float64(new)) - abs(np.float64(old))
        if ready:  # S += the ms's |D| changes (per tap, so no store->load chains above)
            for k in range(nd):
                s_acc[sl[t_d[k]] * n_c + d_c[k]] += d_abs[k]
                d_abs[k] = 0.0
            if y_max >= 0:  # rows y - dy these pixels may have written, in every slot
                for d in range(kt):
                    row_lo[sl[d]] = min(row_lo[sl[d]], max(0, y_min - ky + 1))
                    row_hi[sl[d]] = max(row_hi[sl[d]], min(ho - 1, y_max))
        if n_pix:
            _split_linear_ms(ky, kx, n_full, diff, box, s_d, s_dy, s_dx, s_c, s_w, sl, n_c, l_acc)
        s0 = sl[0] * n_c
        for c in range(n_c):
            out[t, c] = l_acc[s0 + c] + s_acc[s0 + c]
            l_acc[s0 + c] = 0.0
            s_acc[s0 + c] = 0.0
        if row_hi[sl[0]] >= 0:  # clear the written rows of the retired slot
            a = (sl[0] * hw + row_lo[sl[0]] * wo) * n_c
            vals[a : (sl[0] * hw + (row_hi[sl[0]] + 1) * wo) * n_c] = 0.0
            row_lo[sl[0]] = ho
            row_hi[sl[0]] = -1


def _pull_rows_py(
    key, sw, sh, binary, n_bins, kt, ho, wo, ky, kx, rs, padl, ystart, off, rv,
    s_d, s_dy, s_dx, s_c, s_w, acc, out,
):  # fmt: skip  # pragma: no cover - jitted
    """Pooled flip-max, output-stationary: ``out[t, c] = L + S`` as :func:`_ring_split_py`.

    ``L`` (the linear half) is computed as there. ``S(c, t) = sum_{valid y,x} |D(c, t,
    y, x)|`` is pulled instead of pushed: the events of every ms are first reduced to a
    list of pixels with ``A_d != 0``; at step ``t``, class by class, one plane ``acc``
    (``Ho x row_stride`` float32, L1-sized) receives, for ``d = K_T - 1 .. 0``, the row
    chunks (:class:`RowTaps`) of ``(c, d)`` of every pixel of ms ``t - d`` - per
    accumulator the same additions in the same order (ms ascending, then pixel key
    order) as the ring of ``K_T`` slots, so ``D`` is bit-identical to it - then
    ``sum |D|`` is read in float64 over the rows the step's pixels can reach and they are
    zeroed. The sum runs in 16 partial sums, lane ``j`` taking columns ``xo = j (mod
    16)`` row after row, added ``j = 0..15`` at the end (a fixed order the C port
    vectorises exactly). Work per event: the chunks whose row lands on the grid
    (``<= n_chunks``); per ms a pass over the reachable rows (``<= C Ho Wo`` floats).
    """
    n_c = out.shape[1]
    lanes = rv.shape[1]
    n_ev = key.shape[0]
    l_acc = np.zeros(kt * n_c, dtype=np.float64)
    gx = kx + 1
    diff = np.zeros((ky + 1) * gx, dtype=np.int64)
    box = np.zeros(ky * kx, dtype=np.float64)
    sl = np.zeros(kt, dtype=np.int64)
    ppos = np.zeros(n_ev + 1, dtype=np.int64)
    py = np.zeros(n_ev + 1, dtype=np.int64)
    pa = np.zeros(n_ev + 1, dtype=np.float32)
    fst = np.zeros(n_bins + 1, dtype=np.int64)
    fy0 = np.full(n_bins, sh, dtype=np.int64)  # row span of each ms's pixels
    fy1 = np.full(n_bins, -1, dtype=np.int64)
    lane = np.zeros(16, dtype=np.float64)
    npx = 0
    e = 0
    for t in range(n_bins):  # pass 1: pixels with A_d != 0 per ms; the linear half
        fst[t] = npx
        for d in range(kt):
            sl[d] = (t + d) % kt
        n_full = 0
        n_pix = 0
        while e < n_ev and key[e] // (2 * sw * sh) == t:
            pix = key[e] // 2
            y = (pix // sw) % sh
            x = pix % sw
            e, n_full, a_d = _split_pixel(
                key, n_ev, e, pix, binary, y, x, ho, wo, ky, kx, diff, n_full
            )
            n_pix += 1
            if a_d != 0:
                ppos[npx] = y * rs + x
                py[npx] = y
                pa[npx] = np.float32(a_d)
                npx += 1
                fy0[t] = min(fy0[t], y)
                fy1[t] = max(fy1[t], y)
        if n_pix:
            _split_linear_ms(ky, kx, n_full, diff, box, s_d, s_dy, s_dx, s_c, s_w, sl, n_c, l_acc)
        s0 = sl[0] * n_c
        for c in range(n_c):
            out[t, c] = l_acc[s0 + c]
            l_acc[s0 + c] = 0.0
    fst[n_bins] = npx
    for t in range(n_bins):  # pass 2: pull the rectified half, one class plane at a time
        rlo = ho
        rhi = -1
        for d in range(kt):
            if t - d >= 0 and fy1[t - d] >= 0:
                rlo = min(rlo, max(0, fy0[t - d] - ky + 1))
                rhi = max(rhi, min(ho - 1, fy1[t - d]))
        if rhi < 0:
            continue
        for c in range(n_c):
            for d in range(kt - 1, -1, -1):
                cd = (c * kt + d) * (ky + 1)
                if t - d < 0 or ystart[cd] == ystart[cd + ky]:
                    continue
                for i in range(fst[t - d], fst[t - d + 1]):
                    y = py[i]
                    k0 = ystart[cd + max(0, y - ho + 1)]
                    k1 = ystart[cd + min(ky - 1, y) + 1]
                    b = ppos[i]
                    fa = pa[i]
                    for k in range(k0, k1):
                        a = b + off[k]
                        for j in range(lanes):
                            acc[a + j] = acc[a + j] + fa * rv[k, j]
            lane[:] = 0.0
            for yo in range(rlo, rhi + 1):
                r0 = yo * rs + padl
                x0 = 0
                while x0 + 16 <= wo:
                    for j in range(16):
                        lane[j] += abs(np.float64(acc[r0 + x0 + j]))
                    x0 += 16
                for j in range(wo - x0):
                    lane[j] += abs(np.float64(acc[r0 + x0 + j]))
            s = 0.0
            for j in range(16):
                s += lane[j]
            out[t, c] += s
            acc[rlo * rs : (rhi + 2) * rs] = 0.0  # + the overhang into row rhi + 1


_BACKENDS = ("numpy", "numba", "numba-maxbranch", "numba-rows", "native", "native-taps")


def _jit(name: str, fn):
    if name not in _SCATTER:
        import numba

        if "helpers" not in _SCATTER:  # called from the jitted kernels: compiled with them
            from numba.extending import register_jitable

            for helper in (_split_pixel, _split_linear_ms):
                register_jitable(boundscheck=False)(helper)
            _SCATTER["helpers"] = True
        _SCATTER[name] = numba.njit(cache=False, nogil=True, boundscheck=False)(fn)
    return _SCATTER[name]


def _native_lib():
    from neuroplast.runtime.native import native_module

    lib = native_module()
    if lib is None:
        raise DataError("backends 'native*' need the compiled kernels (neuroplast._native)")
    return lib


def _run_split(
    taps: TapTable,
    p,
    tb,
    y,
    x,
    n_bins: int,
    binary: bool,
    backend: str = "numba",
    pull_group: int = PULL_GROUP,
) -> np.ndarray:
    """Pooled evidence ``(n_bins, C)`` (events in any order) through the sum/difference
    split: ``"numba"`` / ``"native-taps"``: the ring of :func:`_ring_split_py` (numba /
    its C port); ``"numba-rows"`` / ``"native"``: the output-stationary row-chunk path
    :func:`_pull_rows_py` (numba / its C port, ``neuroplast._native``)."""
    sp, rw = taps.split, taps.rows
    if sp is None or rw is None:
        raise DataError("tap table has no sum/difference split; rebuild it with compile_taps")
    w, h = taps.sensor_size
    ho, wo = taps.out_hw
    key = ((tb * h + y) * w + x) * 2 + p  # sorted by (t, y, x, p): neighbours share taps
    key = np.sort(key.astype(np.int64), kind="stable")  # timsort: fast on time-sorted input
    acc = np.zeros((n_bins, taps.n_classes), dtype=np.float64)
    i64 = [np.ascontiguousarray(a, np.int64) for a in (sp.s_d, sp.s_dy, sp.s_dx, sp.s_c)]
    s_w = np.ascontiguousarray(sp.s_w, np.float32)
    if backend in ("native", "numba-rows"):
        if backend == "native":  # neuroplast._native's pull_rows (sdk/_native.c)
            from neuroplast.runtime.native import OPS

            ints = (1, w, h, int(bool(binary)), n_bins, taps.n_delays, ho, wo, taps.ky, taps.kx,
                    rw.row_stride, rw.pad_left, rw.lanes, key.size, rw.n_chunks, sp.s_w.size,
                    taps.n_classes, min(pull_group, taps.n_classes))  # fmt: skip
            bufs = (key, rw.ystart, rw.off, rw.vals, *i64, s_w, acc)
            _native_lib().op(OPS["pull_rows"], tuple(int(v) for v in ints), bufs)
        else:
            slot = np.zeros((ho + 1) * rw.row_stride + rw.lanes, np.float32)
            _jit("rows", _pull_rows_py)(
                key, w, h, bool(binary), n_bins, taps.n_delays, ho, wo, taps.ky, taps.kx,
                rw.row_stride, rw.pad_left, rw.ystart, rw.off, rw.vals, *i64, s_w, slot, acc,
            )  # fmt: skip
        return (acc / (2 * ho * wo)).astype(np.float32) + taps.bias[None, :]
    vals = np.zeros(taps.n_delays * ho * wo * taps.n_classes, dtype=np.float32)
    if backend == "native-taps":  # _ring_split_py's C port (sdk/_native.c ring_split)
        from neuroplast.runtime.native import OPS

        blk = [np.ascontiguousarray(a, np.int64) for a in (sp.blk_d, sp.blk_dy, sp.blk_dx,
               sp.blk_start, sp.d_c)]  # fmt: skip
        ints = (1, w, h, int(bool(binary)), n_bins, taps.n_delays, ho, wo, taps.ky, taps.kx,
                key.size, sp.blk_d.size, sp.d_c.size, sp.s_w.size, taps.n_classes)  # fmt: skip
        bufs = (key, *blk, np.ascontiguousarray(sp.d_w, np.float32), *i64, s_w, vals, acc)
        _native_lib().op(OPS["ring_split"], tuple(int(v) for v in ints), bufs)
        return (acc / (2 * ho * wo)).astype(np.float32) + taps.bias[None, :]
    _jit("split", _ring_split_py)(
        key, w, h, bool(binary), n_bins, taps.n_delays, ho, wo, taps.ky, taps.kx,
        sp.blk_d, sp.blk_dy, sp.blk_dx, sp.blk_start, sp.d_c, sp.d_w,
        sp.s_d, sp.s_dy, sp.s_dx, sp.s_c, sp.s_w, vals, acc,
    )  # fmt: skip
    return (acc / (2 * ho * wo)).astype(np.float32) + taps.bias[None, :]


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
    pull_group: int = PULL_GROUP,
) -> np.ndarray:
    """Run a whole event stream through the layer.

    Returns the logits ``(n_bins, C, Ho, Wo)``, or with ``pooled=True`` the per-step
    class evidence ``mean_{y,x} z`` of shape ``(n_bins, C)``. ``binary=True`` keeps
    one event per (p, bin, y, x) voxel, matching the Boolean raster of the paper.

    Backends: ``"numpy"``; ``"numba"`` (pooled: the sum/difference path
    :func:`_ring_split_py`, per event ``nnz(W_d)`` taps + O(1), per ms
    ``O(K_Y K_X + nnz(W_s) + C)``; not pooled: the chunked scatter);
    ``"numba-maxbranch"`` (pooled: the ring that scatters ``nnz`` taps into both
    flip branches and reads all ``2 C Ho Wo`` accumulators every ms); ``"native"``
    (compiled in ``neuroplast._native``, so the device install has it without numba;
    pooled: the output-stationary row-chunk path :func:`_pull_rows_py`, per event
    ``RowTaps.n_chunks`` 8-lane vector updates of class planes; not pooled: the chunked
    scatter, :func:`_scatter_py`'s C port, bit-identical to ``"numba"``);
    ``"numba-rows"`` (the same algorithm jitted: the native path's exact reference);
    ``"native-taps"`` (pooled only: the C port of :func:`_ring_split_py`).
    ``pull_group``: classes per pass of ``"native"`` (1..64, capped at ``C``; the result is
    bit-identical for any value, only speed changes).
    """
    if backend not in _BACKENDS:
        raise DataError(f"unknown backend {backend!r}; use one of {', '.join(_BACKENDS)}")
    if not 1 <= int(pull_group) <= 64:
        raise DataError(f"pull_group must be in 1..64, got {pull_group}")
    p, tb, y, x = _binned(events, taps.sensor_size, n_bins, dt_us, t0_us)
    if pooled and backend in ("numba", "numba-rows", "native", "native-taps"):
        return _run_split(taps, p, tb, y, x, n_bins, binary, backend, int(pull_group))
    if backend == "native-taps":
        raise DataError(f"backend {backend!r} runs the pooled path only (pooled=True)")
    p, tb, y, x = _time_ordered(p, tb, y, x, taps.sensor_size, binary)
    if pooled and backend == "numba-maxbranch":
        # one ring of n_delays slots, both branches per position, dense per-ms readout
        hp, wp = taps.padded_hw
        ho, wo = taps.out_hw
        pos = ((y + taps.ky - 1) * wp + (x + taps.kx - 1)) * taps.pixel_stride
        acc = np.zeros((n_bins, taps.n_classes), dtype=np.float64)
        _jit("ring", _ring_pooled_py)(
            tb, pos, p.astype(np.uint8), n_bins, taps.n_delays, taps.slot_size,
            taps.ring_offsets[0], taps.ring_delays[0], taps.weights[0],
            taps.ring_offsets[1], taps.ring_delays[1], taps.weights[1],
            taps.ky - 1, taps.kx - 1, ho, wo, wp, taps.n_classes, acc,
        )  # fmt: skip
        return (acc / (ho * wo)).astype(np.float32) + taps.bias[None, :]
    if backend in ("numba-maxbranch", "numba-rows"):
        backend = "numba"
    state = init_event_state(taps)
    outs = []
    for _, n, e in _chunks(tb, n_bins, chunk):
        z, state = hd_event_chunk(taps, state, p[e], tb[e], y[e], x[e], n, backend, pooled=pooled)
        outs.append(z)
    return np.concatenate(outs)


def pull_rows_ops(
    taps: TapTable,
    events: np.ndarray,
    n_bins: int,
    *,
    dt_us: int = 1000,
    t0_us: int = 0,
    binary: bool = True,
) -> int:
    """Row-chunk vector updates (:data:`ROW_LANES` float32 lanes each) that the pooled
    pull path (``backend="native"`` / ``"numba-rows"``) executes on this stream: for every
    pixel and ms with ``A_d != 0``, the chunks of all ``(c, d)`` whose row lands on the
    grid (``0 <= y - dy < Ho``; an interior pixel takes all ``RowTaps.n_chunks``). The
    work measure of that path (the ring's is ``nnz(W_d)`` scalar taps per event)."""
    rw = taps.rows
    if rw is None:
        raise DataError("tap table has no row chunks; rebuild it with compile_taps")
    p, tb, y, x = _binned(events, taps.sensor_size, n_bins, dt_us, t0_us)
    if not p.size:
        return 0
    w, h = taps.sensor_size
    pix = (tb * h + y) * w + x
    pol = p
    if binary:
        key = np.unique(pix * 2 + pol)
        pix, pol = key // 2, key % 2
    u, inv = np.unique(pix, return_inverse=True)
    n_on = np.bincount(inv, weights=pol, minlength=u.size)
    a_d = np.bincount(inv, minlength=u.size) - 2 * n_on  # n_off - n_on
    yy = (u[a_d != 0] // w) % h
    ho = taps.out_hw[0]
    ys = rw.ystart.reshape(-1, taps.ky + 1)
    lo = np.maximum(0, yy - ho + 1)
    hi = np.minimum(taps.ky - 1, yy) + 1
    per_row = ys[:, hi] - ys[:, lo]  # (C K_T, pixels)
    return int(per_row.sum())
