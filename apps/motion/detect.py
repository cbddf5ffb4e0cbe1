"""Streaming motion detection: events -> per-step class, direction map over time.

Runs the event-driven layer window by window (``window_ms`` 1 ms steps). Per step the
global decision is ``argmax_c mean_{y,x} z``; per window and position the local estimate
is the velocity of ``argmax_c z`` averaged over the window's steps (px/ms). Memory: the
per-step evidence (``C`` float32 per ms, 0.5 GB for an hour) and the direction maps of
``maps`` windows only (a map is ``Ho x Wo x 2`` floats: 1.3 MB on a DAVIS346, so one per
10 ms window of a ten-minute recording would be 80 GB). A recording spanning more than
:data:`MAX_SPAN_MS` is refused up front (run a part of it); a long gap between events
costs time, not memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neuroplast.apps.motion.event_layer import compile_taps, hd_event_chunk, init_event_state
from neuroplast.apps.motion.events import validate_events, voxel_indices
from neuroplast.apps.motion.model import HDKernel
from neuroplast.apps.motion.simulate import class_velocities
from neuroplast.errors import DataError

__all__ = ["MAX_SPAN_MS", "Detection", "detect_memory", "detect_stream"]

MAX_SPAN_MS = 3_600_000  #: the longest recording detect_stream takes at once (one hour)


@dataclass(frozen=True)
class Detection:
    """Output of :func:`detect_stream`."""

    evidence: np.ndarray  #: (T, C) mean_{y,x} z per 1 ms step
    classes: np.ndarray  #: (T,) argmax class per step
    window_ms: int
    window_class: np.ndarray  #: (n_win,) class with the largest summed evidence
    window_velocity: np.ndarray  #: (n_win, 2) px/ms of that class
    direction_map: np.ndarray  #: (n_maps, Ho, Wo, 2) mean local velocity, px/ms ...
    map_windows: np.ndarray  #: (n_maps,) ... of these windows (evenly spaced)
    events_per_window: np.ndarray  #: (n_win,)


def detect_memory(kernel: HDKernel, sensor_size: tuple[int, int], window_ms: int = 10) -> int:
    """Bytes :func:`detect_stream` holds for its position maps: the carried accumulators of
    the last ``K_T - 1`` ms, ``(K_T - 1) Hp Wp 2 C`` float32, plus one window's output
    ``window_ms C Ho Wo`` float32 (both grow with the sensor's area: ~0.5 GB on a
    DAVIS346, ~11 GB at 1280 x 720 with the 36-class 21 x 17 x 17 kernel)."""
    c, _, kt, ky, kx = kernel.weight.shape
    w, h = sensor_size
    hp, wp, ho, wo = h + ky - 1, w + kx - 1, h - ky + 1, w - kx + 1
    return 4 * c * ((kt - 1) * hp * wp * 2 + window_ms * max(ho, 0) * max(wo, 0))


def _refuse_if_too_large(
    kernel: HDKernel, sensor_size: tuple[int, int], window_ms: int, max_bytes: int | None
) -> None:
    """:class:`DataError` when :func:`detect_memory` passes ``max_bytes`` (default: half of
    this machine's memory, 4 GiB where the OS does not say), naming the smallest S x S
    binning that fits."""
    from neuroplast.boards.profile import fmt_bytes, host_ram_bytes

    ram = host_ram_bytes()
    budget = max_bytes or (ram // 2 if ram else 4 << 30)
    need = detect_memory(kernel, sensor_size, window_ms)
    if need <= budget:
        return
    w, h = sensor_size
    s = next(
        (
            s
            for s in range(2, max(w, h) + 1)
            if detect_memory(kernel, (-(-w // s), -(-h // s)), window_ms) <= budget
        ),
        None,
    )
    fix = (
        f"bin the events to {s}x{s}-pixel blocks (motion run --downsample {s})"
        if s
        else "no binning fits it"
    )
    raise DataError(
        f"a {w}x{h} sensor needs {fmt_bytes(need)} of maps, over the {fmt_bytes(budget)} "
        f"budget; {fix}"
    )


def detect_stream(
    kernel: HDKernel,
    events: np.ndarray,
    sensor_size: tuple[int, int],
    *,
    window_ms: int = 10,
    dt_us: int = 1000,
    backend: str = "numpy",
    maps: int = 6,
    max_bytes: int | None = None,
) -> Detection:
    """Run the HD layer over a whole recording (times relative to the first event),
    keeping the direction maps of ``maps`` evenly spaced windows (first and last
    included). Raises :class:`DataError` for a recording longer than
    :data:`MAX_SPAN_MS` or a sensor whose maps (:func:`detect_memory`) pass ``max_bytes``
    (default: half of this machine's memory), before any work."""
    if kernel.weight.shape[0] != 36:
        raise DataError("detect_stream maps classes to velocities: the kernel needs 36 classes")
    if window_ms < 1 or maps < 1:
        raise DataError(f"window_ms and maps must be >= 1, got {window_ms} and {maps}")
    ev = validate_events(events, sensor_size, sorted_time=False)
    if ev.size == 0:
        raise DataError("no events to run")
    _refuse_if_too_large(kernel, sensor_size, window_ms, max_bytes)
    p, tb, y, x = voxel_indices(ev, dt_us)
    n_bins = int(tb.max()) + 1
    if n_bins * dt_us > MAX_SPAN_MS * 1000:
        raise DataError(
            f"the events span {n_bins * dt_us / 1e6:.0f} s, over the {MAX_SPAN_MS // 60_000} "
            "min detect_stream takes at once; run a part of the recording (motion run "
            "--start / --duration)"
        )
    taps = compile_taps(kernel.weight, kernel.bias, sensor_size)
    w, h = sensor_size
    key = np.unique(((tb * 2 + p) * h + y) * w + x)  # Boolean raster semantics
    x, y, p, tb = key % w, (key // w) % h, (key // (w * h)) % 2, key // (2 * w * h)
    n_win = (n_bins + window_ms - 1) // window_ms
    keep = np.unique(np.linspace(0, n_win - 1, min(maps, n_win)).astype(np.int64))
    vel = class_velocities()
    state = init_event_state(taps)
    bounds = np.searchsorted(tb, np.arange(0, (n_win + 1) * window_ms, window_ms))
    evid, dmap, counts, keep_set = [], [], [], set(keep.tolist())
    for i in range(n_win):
        a, b = bounds[i], bounds[i + 1]
        n = min(window_ms, n_bins - i * window_ms)
        z, state = hd_event_chunk(taps, state, p[a:b], tb[a:b], y[a:b], x[a:b], n, backend)
        evid.append(z.mean(axis=(2, 3), dtype=np.float64).astype(np.float32))
        if i in keep_set:
            dmap.append(vel[np.argmax(z, axis=1)].mean(axis=0))  # (Ho, Wo, 2)
        counts.append(b - a)
    evidence = np.concatenate(evid)
    win_cls = np.array(
        [int(np.argmax(evidence[i * window_ms : (i + 1) * window_ms].sum(0))) for i in range(n_win)]
    )
    return Detection(
        evidence,
        np.argmax(evidence, axis=1),
        window_ms,
        win_cls,
        vel[win_cls],
        np.stack(dmap),
        keep,
        np.asarray(counts),
    )
