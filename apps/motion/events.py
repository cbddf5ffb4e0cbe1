"""The event array: one structured numpy dtype shared by every reader, writer and layer.

An event camera emits address events ``(t, x, y, p)``: a timestamp ``t`` in
microseconds (int64), a pixel column ``x`` and row ``y`` (int16) and a polarity
``p`` (bool; True = ON = log-intensity increase). The dtype is exactly
``tonic.io.events_struct`` so arrays pass to and from tonic unchanged.
"""

from __future__ import annotations

import numpy as np

from neuroplast.errors import DataError

__all__ = [
    "EVENT_DTYPE",
    "make_events",
    "validate_events",
    "events_to_voxels",
    "voxel_indices",
]

#: Field order and widths of ``tonic.io.events_struct``.
EVENT_DTYPE = np.dtype([("x", "<i2"), ("y", "<i2"), ("t", "<i8"), ("p", "?")])


def make_events(t, x, y, p) -> np.ndarray:
    """Pack four equal-length columns into an :data:`EVENT_DTYPE` array (no sorting)."""
    t = np.asarray(t)
    cols = [np.asarray(c) for c in (x, y, p)]
    if any(c.shape != t.shape for c in cols) or t.ndim != 1:
        raise DataError(
            f"event columns must be 1-D and of equal length, got shapes "
            f"t={t.shape}, x={cols[0].shape}, y={cols[1].shape}, p={cols[2].shape}"
        )
    ev = np.empty(t.shape[0], dtype=EVENT_DTYPE)
    ev["t"], ev["x"], ev["y"], ev["p"] = t, cols[0], cols[1], cols[2].astype(bool)
    return ev


def validate_events(
    ev: np.ndarray, sensor_size: tuple[int, int] | None = None, *, sorted_time: bool = True
) -> np.ndarray:
    """Check an event array and return it converted to :data:`EVENT_DTYPE`.

    Accepts any structured array with fields ``t, x, y`` and ``p`` (or ``on``).
    ``sensor_size`` is ``(width, height)``; when given, coordinates must lie inside.
    Raises :class:`DataError` naming the first offending event.
    """
    if not isinstance(ev, np.ndarray) or ev.dtype.names is None:
        raise DataError("events must be a structured numpy array with fields t, x, y, p")
    names = set(ev.dtype.names)
    pol = "p" if "p" in names else ("on" if "on" in names else None)
    missing = {"t", "x", "y"} - names
    if missing or pol is None:
        raise DataError(
            f"event array lacks fields {sorted(missing | ({'p'} if not pol else set()))}"
        )
    if ev.ndim != 1:
        raise DataError(f"event array must be 1-D, got shape {ev.shape}")
    out = ev if ev.dtype == EVENT_DTYPE else make_events(ev["t"], ev["x"], ev["y"], ev[pol])
    if out.size:
        if sorted_time and np.any(np.diff(out["t"]) < 0):
            i = int(np.argmax(np.diff(out["t"]) < 0)) + 1
            raise DataError(f"event timestamps decrease at index {i} (t={int(out['t'][i])} us)")
        if out["x"].min() < 0 or out["y"].min() < 0:
            i = int(np.argmax((out["x"] < 0) | (out["y"] < 0)))
            raise DataError(f"negative pixel address at event {i}")
        if sensor_size is not None:
            w, h = sensor_size
            bad = (out["x"] >= w) | (out["y"] >= h)
            if bad.any():
                i = int(np.argmax(bad))
                raise DataError(
                    f"event {i} at (x={int(out['x'][i])}, y={int(out['y'][i])}) lies outside "
                    f"the {w}x{h} sensor"
                )
    return out


def voxel_indices(ev: np.ndarray, dt_us: int = 1000, t0: int | None = None):
    """Return ``(p, tbin, y, x)`` int64 index columns of the 1 ms (``dt_us``) time bins.

    ``tbin = (t - t0) // dt_us`` with ``t0`` the first timestamp unless given.
    """
    t0 = int(ev["t"][0]) if (t0 is None and ev.size) else int(t0 or 0)
    tb = (ev["t"].astype(np.int64) - t0) // int(dt_us)
    return (
        ev["p"].astype(np.int64),
        tb,
        ev["y"].astype(np.int64),
        ev["x"].astype(np.int64),
    )


def events_to_voxels(
    ev: np.ndarray,
    sensor_size: tuple[int, int],
    n_bins: int,
    dt_us: int = 1000,
    t0: int = 0,
) -> np.ndarray:
    """Rasterise events into the Boolean tensor ``A[p, t, y, x]`` of the HD-SNN paper.

    ``A(p, t, y, x) = 1`` iff at least one event of polarity ``p`` (0 = OFF, 1 = ON)
    fell at pixel ``(x, y)`` during ``[t0 + t*dt_us, t0 + (t+1)*dt_us)``. Events
    outside ``[t0, t0 + n_bins*dt_us)`` are dropped. Shape ``(2, n_bins, H, W)``.
    """
    w, h = sensor_size
    ev = validate_events(ev, sensor_size, sorted_time=False)
    a = np.zeros((2, n_bins, h, w), dtype=bool)
    p, tb, y, x = voxel_indices(ev, dt_us, t0)
    keep = (tb >= 0) & (tb < n_bins)
    a[p[keep], tb[keep], y[keep], x[keep]] = True
    return a
