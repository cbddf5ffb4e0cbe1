"""Integer-quantized updates on the wire (numpy only; no Flower, no pickle).

A federated update is a few named arrays plus a small JSON ``meta`` dict. Real-valued
arrays travel as integer codes with one float32 scale per row (symmetric, narrow range)::

    q_r = round(x_r / s_r),   s_r = max|x_r| / (2^(b-1) - 1),   x_r ~ s_r q_r

so the worst-case error per value is ``s_r / 2`` (b = 8 or 16 bits). Integer arrays
(counts, place ids) travel exactly as int32 codes without a scale.

Layout (little endian)::

    b"NPFU" | u8 version | u32 header length | header JSON | codes and scales, in order

The header lists each array's name, bits, shape and whether it has row scales; the payload
must have exactly the size the header implies. :func:`decode` rejects everything else with
a :class:`~neuroplast.errors.FleetError` naming what is wrong: bad magic or version, a
truncated or padded payload, too many or too large arrays, codes outside the narrow range
(``-2^(b-1)`` is never produced by :func:`quantize`), scales that are negative or not finite.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from neuroplast.errors import FleetError

__all__ = [
    "QArray",
    "quantize",
    "exact",
    "encode",
    "decode",
    "MAX_BYTES",
]

MAGIC = b"NPFU"
VERSION = 1
MAX_BYTES = 64 << 20  # one update
MAX_ARRAYS = 256
MAX_NDIM = 4
MAX_HEADER = 1 << 16
_DTYPES = {8: np.dtype("<i1"), 16: np.dtype("<i2"), 32: np.dtype("<i4")}


@dataclass(frozen=True)
class QArray:
    """Integer codes (int8/int16/int32) and, for real values, one float32 scale per row
    (``scale.shape == (rows,)``, rows = ``codes.shape[0]``, 1 for a scalar or vector)."""

    codes: np.ndarray
    scale: np.ndarray | None
    bits: int

    def value(self) -> np.ndarray:
        """The dequantized float32 array (scaled) or the exact int64 integers."""
        if self.scale is None:
            return self.codes.astype(np.int64)
        rows = self.codes.reshape(len(self.scale), -1).astype(np.float32)
        return (rows * self.scale[:, None]).reshape(self.codes.shape)

    @property
    def nbytes(self) -> int:
        return int(self.codes.nbytes + (0 if self.scale is None else self.scale.nbytes))


def _rows(shape: tuple[int, ...]) -> int:
    return int(shape[0]) if len(shape) >= 2 else 1


def quantize(x: Any, bits: int = 8) -> QArray:
    """Symmetric per-row integer codes of a real array (rows: axis 0 of a 2-d+ array; a
    vector or scalar is one row). Non-finite values raise :class:`FleetError`."""
    if bits not in (8, 16):
        raise FleetError(f"quantize: bits must be 8 or 16, not {bits}")
    a = np.asarray(x, np.float64)
    if not np.all(np.isfinite(a)):
        raise FleetError("quantize: the array contains NaN or Inf")
    qmax = (1 << (bits - 1)) - 1
    r = a.reshape(_rows(a.shape), -1) if a.size else a.reshape(_rows(a.shape), 0)
    m = np.abs(r).max(axis=1) if r.shape[1] else np.zeros(r.shape[0])
    s = np.where(m > 0, m / qmax, 0.0)
    q = np.where(s[:, None] > 0, np.rint(r / np.where(s > 0, s, 1.0)[:, None]), 0)
    codes = np.clip(q, -qmax, qmax).astype(_DTYPES[bits]).reshape(a.shape)
    return QArray(codes, s.astype(np.float32), bits)


def exact(x: Any) -> QArray:
    """Integers sent exactly (int32 codes, no scale); non-integers or values beyond int32
    raise :class:`FleetError`."""
    a = np.asarray(x)
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)) or not np.all(a == np.rint(a)):
            raise FleetError("exact: the array holds non-integer values")
    elif a.dtype.kind not in "biu":
        raise FleetError(f"exact: cannot send {a.dtype} as integers")
    if a.size and (a.min() < -(2**31) + 1 or a.max() > 2**31 - 1):
        raise FleetError("exact: values exceed the int32 range")
    return QArray(a.astype(_DTYPES[32]), None, 32)


def encode(arrays: dict[str, QArray], meta: dict[str, Any] | None = None) -> bytes:
    """One update as bytes (see the module docstring)."""
    if len(arrays) > MAX_ARRAYS:
        raise FleetError(f"an update holds at most {MAX_ARRAYS} arrays, got {len(arrays)}")
    head: dict[str, Any] = {"meta": meta or {}, "arrays": []}
    parts: list[bytes] = []
    for name, q in arrays.items():
        head["arrays"].append(
            {"name": str(name), "bits": q.bits, "shape": list(q.codes.shape),
             "scaled": q.scale is not None}
        )  # fmt: skip
        parts.append(np.ascontiguousarray(q.codes, _DTYPES[q.bits]).tobytes())
        if q.scale is not None:
            parts.append(np.ascontiguousarray(q.scale, "<f4").tobytes())
    h = json.dumps(head, separators=(",", ":"), allow_nan=False).encode()
    if len(h) > MAX_HEADER:
        raise FleetError(f"update header is {len(h)} bytes, at most {MAX_HEADER}")
    out = MAGIC + struct.pack("<BI", VERSION, len(h)) + h + b"".join(parts)
    if len(out) > MAX_BYTES:
        raise FleetError(f"update is {len(out)} bytes, at most {MAX_BYTES}")
    return out


def _bad(msg: str) -> FleetError:
    return FleetError(f"malformed update: {msg}")


def decode(data: bytes) -> tuple[dict[str, QArray], dict[str, Any]]:
    """Parse and validate :func:`encode`'s bytes; :class:`FleetError` for anything else."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise _bad(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) > MAX_BYTES:
        raise _bad(f"{len(data)} bytes, at most {MAX_BYTES}")
    if len(data) < 9 or data[:4] != MAGIC:
        raise _bad("no NPFU magic")
    version, hlen = struct.unpack("<BI", data[4:9])
    if version != VERSION:
        raise _bad(f"version {version}, this host reads {VERSION}")
    if hlen > MAX_HEADER or 9 + hlen > len(data):
        raise _bad(f"header length {hlen} exceeds the data")
    try:
        head = json.loads(data[9 : 9 + hlen].decode("utf-8"))
        meta, specs = head["meta"], head["arrays"]
        if not isinstance(meta, dict) or not isinstance(specs, list):
            raise TypeError("meta must be an object and arrays a list")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise _bad(f"header is not valid JSON of the update format ({e})") from None
    if len(specs) > MAX_ARRAYS:
        raise _bad(f"{len(specs)} arrays, at most {MAX_ARRAYS}")
    pos = 9 + hlen
    out: dict[str, QArray] = {}
    for sp in specs:
        try:
            name, bits, shape, scaled = sp["name"], sp["bits"], sp["shape"], sp["scaled"]
            shape = tuple(int(d) for d in shape)
        except (KeyError, TypeError, ValueError):
            raise _bad(f"array entry {sp!r} lacks name/bits/shape/scaled") from None
        if not isinstance(name, str) or name in out:
            raise _bad(f"array name {name!r} is not a string or repeats")
        if bits not in _DTYPES or (bits == 32) == bool(scaled):
            raise _bad(f"array {name!r}: bits {bits!r} with scaled={scaled!r}")
        if len(shape) > MAX_NDIM or any(d < 0 for d in shape):
            raise _bad(f"array {name!r}: shape {shape}")
        n = math.prod(shape)  # exact: a crafted shape cannot wrap around
        dt = _DTYPES[bits]
        end = pos + n * dt.itemsize
        if end > len(data):
            raise _bad(f"array {name!r} ({shape}) runs past the end of the data")
        codes = np.frombuffer(data, dt, n, pos).reshape(shape)
        pos = end
        scale = None
        if scaled:
            rows = _rows(shape)
            end = pos + 4 * rows
            if end > len(data):
                raise _bad(f"array {name!r}: scales run past the end of the data")
            scale = np.frombuffer(data, "<f4", rows, pos).astype(np.float32)
            pos = end
            if not np.all(np.isfinite(scale)) or np.any(scale < 0):
                raise _bad(f"array {name!r}: scales must be finite and >= 0")
            qmax = (1 << (bits - 1)) - 1
            if codes.size and int(codes.min()) < -qmax:
                raise _bad(f"array {name!r}: code {int(codes.min())} outside +-{qmax}")
        out[name] = QArray(codes.copy(), scale, bits)
    if pos != len(data):
        raise _bad(f"{len(data) - pos} bytes after the last array")
    return out, meta
