"""Event files: camera formats through ``faery``, numpy containers of our own.

Every reader returns an :data:`~neuroplast.apps.motion.events.EVENT_DTYPE` array (the
``tonic`` event struct) in file order, and the sensor size ``(width, height)`` when the
file states it.

* Prophesee ``.raw`` (EVT 2.0, EVT 2.1, EVT 3.0), ``.dat``, ``.es`` and iniVation
  ``.aedat4`` are read and written by `faery <https://pypi.org/project/faery/>`_
  (maintained Rust decoders/encoders; the ``events`` extra). It decodes EVT 3.0 as the
  Prophesee reference decoder does, including the out-of-order keep-alive
  ``TIME_LOW`` words of real sensors (timestamps kept monotonic). expelliarmus 1.1
  (last released 2023) counts each of those words as a 4096-us overflow, so its EVT 3.0
  timestamps drift on camera recordings; it is used only as an independent EVT 2.0
  check in the tests.
* ``.npz`` (columns ``t, x, y, p`` plus optional ``sensor_size`` and per-ms ``labels``,
  what the simulator writes) and structured ``.npy`` are ours: no camera library
  carries labels.

A missing, truncated or corrupt file raises :class:`~neuroplast.errors.DataError`
with one line; a raw stream whose payload is not a whole number of words names the
byte offset of the partial word (decoders drop it silently).
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from neuroplast.apps.motion.events import make_events, validate_events
from neuroplast.errors import DataError

__all__ = [
    "read_events",
    "write_events",
    "read_npz",
    "write_npz",
    "read_labels",
    "CAMERA_SUFFIXES",
]

#: Suffixes read and written through faery, with the faery file type of each.
CAMERA_SUFFIXES = {".raw": "evt", ".dat": "dat", ".es": "es", ".aedat4": "aedat"}
_RAW_VERSIONS = ("evt2", "evt2.1", "evt3")
_WORD_BYTES = {"evt2": 4, "evt2.1": 8, "evt3": 2}


def _faery():
    try:
        import faery
    except ImportError:
        raise DataError(
            "camera event files need the 'faery' package: pip install 'neuroplast[events]'"
        ) from None
    return faery


def _raw_header(path: Path) -> tuple[dict[str, str], int]:
    """``%`` header lines of a ``.raw`` file (lower-cased keys) and the payload offset."""
    fields: dict[str, str] = {}
    with open(path, "rb") as f:
        while f.peek(1)[:1] == b"%":
            line = f.readline().decode("ascii", "replace")[1:].strip()
            if line == "end":
                break
            key, _, val = line.partition(" ")
            fields[key.lower()] = val.strip()
        return fields, f.tell()


def _raw_version(fields: dict[str, str]) -> str | None:
    fmt, evt = fields.get("format", "").upper(), fields.get("evt", "")
    for ver, tags in (
        ("evt2.1", ("EVT21", "2.1")),
        ("evt3", ("EVT3", "3")),
        ("evt2", ("EVT2", "2")),
    ):
        if fmt.startswith(tags[0]) or evt.startswith(tags[1]):
            return ver
    return None


def _check_raw(path: Path) -> str:
    """Version of a ``.raw`` file; DataError when it is unknown or the payload ends
    inside a word."""
    fields, off = _raw_header(path)
    ver = _raw_version(fields)
    if ver is None:
        raise DataError(f"{path}: the raw header names no EVT 2.0/2.1/3.0 format")
    size, word = path.stat().st_size, _WORD_BYTES[ver]
    if (size - off) % word:
        raise DataError(
            f"{path}: {ver.upper()} stream truncated: incomplete {8 * word}-bit word at byte "
            f"offset {size - (size - off) % word}"
        )
    return ver


def read_events(
    path: str | os.PathLike, sensor_size: tuple[int, int] | None = None
) -> tuple[np.ndarray, tuple[int, int] | None]:
    """Read an event file by suffix; return ``(events, (width, height) or None)``.

    ``.npz`` / ``.npy`` are numpy containers; ``.raw`` / ``.dat`` / ``.es`` /
    ``.aedat4`` go through faery. ``sensor_size`` is used when a raw or dat header
    does not state the size (without it such a file is refused).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.is_file():
        raise DataError(f"event file {path} does not exist")
    if suffix == ".npz":
        return read_npz(path)
    if suffix == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise DataError(f"{path}: corrupt or truncated .npy ({e})") from None
        return validate_events(arr, sorted_time=False), None
    if suffix not in CAMERA_SUFFIXES:
        raise DataError(
            f"unknown event file type {suffix!r}; use .npz, .npy or {', '.join(CAMERA_SUFFIXES)}"
        )
    faery = _faery()
    kind = CAMERA_SUFFIXES[suffix]
    if kind == "evt":
        _check_raw(path)
    try:
        if kind in ("evt", "dat"):  # the low-level decoder refuses a header without a size
            with (faery.evt if kind == "evt" else faery.dat).Decoder(path, sensor_size, None) as d:
                size = tuple(int(v) for v in d.dimensions)
        stream = faery.events_stream_from_file(
            path, dimensions_fallback=sensor_size or (1, 1), file_type=kind
        )
        if kind not in ("evt", "dat"):
            size = tuple(int(v) for v in stream.dimensions())
        arr = stream.to_array()
    except (RuntimeError, OSError, ValueError, AssertionError) as e:
        hint = "; pass the sensor size" if "size" in str(e) and sensor_size is None else ""
        raise DataError(f"{path}: cannot decode {kind} events ({e}){hint}") from None
    return make_events(arr["t"].astype(np.int64), arr["x"], arr["y"], arr["on"]), size


def _check_evt3_wraps(t: np.ndarray) -> None:
    """faery's EVT 3.0 encoder writes a TIME_HIGH word only with events, and its decoder
    sees the 24-bit time base wrap (every 2^24 us = 16.8 s) only as TIME_HIGH 0xFFF ->
    0x000: refuse streams whose events straddle a wrap with a wider gap."""
    loop = t >> 24
    i = np.flatnonzero(np.diff(loop))
    bad = (
        (np.diff(loop)[i] != 1) | ((t[i] >> 12) & 0xFFF != 0xFFF) | ((t[i + 1] >> 12) & 0xFFF != 0)
    )
    if bad.any():
        k = int(i[np.argmax(bad)])
        raise DataError(
            f"EVT 3.0 cannot carry the gap {int(t[k])}..{int(t[k + 1])} us across a 2^24-us "
            "time-base wrap (no event within 4.1 ms on both sides); write EVT 2.0 "
            "(version 'evt2') or .aedat4"
        )


#: the most padding a .es file may take: Event Stream marks the passing time with one
#: overflow byte per 127 us, counted from t = 0 (measured on faery's writer), so a stream
#: with absolute timestamps (epoch microseconds) would need terabytes
ES_MAX_PADDING_BYTES = 64 << 20


def _check_es_span(t_last: int) -> None:
    pad = t_last // 127
    if pad > ES_MAX_PADDING_BYTES:
        raise DataError(
            f"a .es file marks time with one byte per 127 us from 0: t = {t_last} us would "
            f"take ~{pad / 2**30:.1f} GiB of padding; subtract the first timestamp or write "
            ".raw / .aedat4"
        )


def write_events(
    path: str | os.PathLike,
    ev: np.ndarray,
    sensor_size: tuple[int, int],
    *,
    version: str = "evt3",
    labels: np.ndarray | None = None,
) -> Path:
    """Write events by suffix: ``.npz`` (with ``labels``), ``.npy``, or a camera format
    through faery (``.raw`` as EVT ``version`` ``"evt2"`` or ``"evt3"``, ``.dat``,
    ``.es``, ``.aedat4``). Timestamps are kept as they are (no zero offset)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return write_npz(path, ev, sensor_size, labels)
    ev = validate_events(ev, sensor_size)
    if suffix == ".npy":
        np.save(path, ev)
        return path
    if suffix not in CAMERA_SUFFIXES:
        raise DataError(f"cannot write {suffix!r}; use .npz, .npy or {', '.join(CAMERA_SUFFIXES)}")
    if suffix == ".raw" and version not in ("evt2", "evt3"):
        raise DataError(f"raw version {version!r} cannot be written; use 'evt2' or 'evt3'")
    if ev.size and int(ev["t"][0]) < 0:
        raise DataError("camera formats hold unsigned timestamps: t must be >= 0")
    if suffix == ".raw" and version == "evt3":
        _check_evt3_wraps(ev["t"].astype(np.int64))
    if suffix == ".es" and ev.size:
        _check_es_span(int(ev["t"][-1]))
    faery = _faery()
    arr = np.zeros(ev.size, faery.EVENTS_DTYPE)
    arr["t"], arr["x"], arr["y"], arr["on"] = ev["t"], ev["x"], ev["y"], ev["p"]
    try:
        faery.events_stream_from_array(arr, tuple(int(v) for v in sensor_size)).to_file(
            path, version=version if suffix == ".raw" else None, zero_t0=False
        )
    except (RuntimeError, OSError, ValueError, AssertionError) as e:
        raise DataError(f"cannot write {path}: {e}") from None
    return path


def write_npz(
    path: str | os.PathLike,
    ev: np.ndarray,
    sensor_size: tuple[int, int] | None = None,
    labels: np.ndarray | None = None,
) -> Path:
    """Write events as a compressed ``.npz`` with columns ``t, x, y, p`` and optional
    ``sensor_size`` (width, height) and per-ms ``labels``."""
    ev = validate_events(ev, sensor_size, sorted_time=False)
    extra = {} if sensor_size is None else {"sensor_size": np.asarray(sensor_size, np.int64)}
    if labels is not None:
        extra["labels"] = np.asarray(labels, np.int64)
    path = Path(path)
    with open(path, "wb") as f:
        np.savez_compressed(f, t=ev["t"], x=ev["x"], y=ev["y"], p=ev["p"], **extra)
    return path


def read_npz(path: str | os.PathLike) -> tuple[np.ndarray, tuple[int, int] | None]:
    """Read an ``.npz`` written by :func:`write_npz` (or holding a structured ``events``)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = set(z.files)
            ss = tuple(int(v) for v in z["sensor_size"]) if "sensor_size" in keys else None
            if "events" in keys:
                ev = validate_events(z["events"], sorted_time=False)
            elif {"t", "x", "y", "p"} <= keys:
                ev = make_events(z["t"], z["x"], z["y"], z["p"])
            else:
                raise DataError(f"{path}: npz holds {sorted(keys)}, expected t, x, y, p")
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise DataError(f"{path}: corrupt or truncated npz ({e})") from None
    return ev, ss


def read_labels(path: str | os.PathLike) -> np.ndarray | None:
    """Per-ms labels stored with an event file: the ``labels`` of an ``.npz``, or a
    ``NAME.labels.npy`` beside any other file (what ``motion simulate`` writes)."""
    path = Path(path)
    if path.suffix.lower() == ".npz":
        with np.load(path, allow_pickle=False) as z:
            return np.asarray(z["labels"]) if "labels" in z.files else None
    side = path.with_suffix(".labels.npy")
    return np.load(side, allow_pickle=False) if side.is_file() else None
