"""Quantization metadata and the fixed-point arithmetic of the integer runtime.

The integer path is the living definition that the C firmware and the TFLite export
must match bit for bit (the SFQ netlist is rate-coded, not integer arithmetic).
Requantization follows LiteRT's single-rounding scheme (``TFLITE_SINGLE_ROUNDING``)::

    M            = f32(s_in) * f32(s_w) / f32(s_out)        (computed in double)
    qm, shift    = quantize_multiplier(M)                    (M = qm * 2^(shift - 31))
    y            = (acc * qm + 2^(total - 1)) >> total,      total = 31 - shift

i.e. round half toward +infinity of ``acc * M``. LiteRT's default (XNNPACK) kernels
and its reference FULLY_CONNECTED use exactly this; the older double-rounding scheme
(round half away from zero in two steps: LiteRT's reference CONV kernels,
tflite-runtime 2.14) differs by at most 1 LSB on exact ties.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from neuroplast.errors import GraphError

__all__ = [
    "QuantSpec",
    "quantize_multiplier",
    "requantize",
    "quantize",
    "dequantize",
    "qrange",
    "bias_to_int32",
]


@dataclass(frozen=True)
class QuantSpec:
    """Affine quantization of a tensor: ``real = scale * (q - zero_point)``.

    Attributes:
        bits: integer bit width (2..32).
        scale: one scale (per tensor) or a tuple of scales (per channel along ``axis``).
        zero_point: integer zero point, or a tuple per channel.
        axis: channel axis for per-channel scales, ``None`` for per tensor.
        signed: signed (``[-2^(b-1), 2^(b-1)-1]``) or unsigned (``[0, 2^b-1]``) range.
        narrow: drop the most negative code (symmetric weights, ``[-127, 127]``).
    """

    bits: int = 8
    scale: float | tuple[float, ...] = 1.0
    zero_point: int | tuple[int, ...] = 0
    axis: int | None = None
    signed: bool = True
    narrow: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.bits, int) or not 2 <= self.bits <= 32:
            raise GraphError(f"QuantSpec.bits must be an int in 2..32, got {self.bits!r}")
        scales = np.atleast_1d(np.asarray(self.scale, dtype=np.float64))
        if scales.size == 0 or not np.all(np.isfinite(scales)) or np.any(scales <= 0):
            raise GraphError(f"QuantSpec.scale must be finite and > 0, got {self.scale!r}")
        if scales.size > 1 and self.axis is None:
            raise GraphError("QuantSpec with several scales needs a per-channel axis")
        # normalise containers to tuples so the spec stays hashable and JSON-able
        if isinstance(self.scale, (list, tuple, np.ndarray)):
            object.__setattr__(self, "scale", tuple(float(s) for s in np.ravel(self.scale)))
        else:
            object.__setattr__(self, "scale", float(self.scale))
        if isinstance(self.zero_point, (list, tuple, np.ndarray)):
            object.__setattr__(self, "zero_point", tuple(int(z) for z in np.ravel(self.zero_point)))
        else:
            object.__setattr__(self, "zero_point", int(self.zero_point))
        lo, hi = self.range
        zps = np.atleast_1d(np.asarray(self.zero_point))
        if np.any(zps < lo) or np.any(zps > hi):
            raise GraphError(f"QuantSpec.zero_point {self.zero_point!r} outside [{lo}, {hi}]")

    @property
    def range(self) -> tuple[int, int]:
        """Integer range ``(qmin, qmax)``."""
        return qrange(self.bits, self.signed, self.narrow)

    @property
    def per_channel(self) -> bool:
        return isinstance(self.scale, tuple) and len(self.scale) > 1

    def scale_array(self, ndim: int | None = None) -> np.ndarray:
        """Scales as float32 array, broadcastable along ``axis`` for an ``ndim`` tensor."""
        s = np.asarray(self.scale, dtype=np.float32)
        if ndim is None or s.ndim == 0 or self.axis is None:
            return s
        shape = [1] * ndim
        shape[self.axis] = s.size
        return s.reshape(shape)

    def zero_point_array(self, ndim: int | None = None) -> np.ndarray:
        z = np.asarray(self.zero_point, dtype=np.int64)
        if ndim is None or z.ndim == 0 or self.axis is None:
            return z
        shape = [1] * ndim
        shape[self.axis] = z.size
        return z.reshape(shape)

    @property
    def dtype(self) -> np.dtype:
        """Smallest numpy integer dtype holding the range."""
        lo, hi = self.range
        for dt in (np.int8, np.uint8, np.int16, np.int32):
            info = np.iinfo(dt)
            if info.min <= lo and hi <= info.max:
                return np.dtype(dt)
        return np.dtype(np.int64)

    def to_dict(self) -> dict[str, Any]:
        return {
            "bits": self.bits,
            "scale": list(self.scale) if isinstance(self.scale, tuple) else self.scale,
            "zero_point": (
                list(self.zero_point) if isinstance(self.zero_point, tuple) else self.zero_point
            ),
            "axis": self.axis,
            "signed": self.signed,
            "narrow": self.narrow,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> QuantSpec:
        if not isinstance(d, dict):
            raise GraphError(f"QuantSpec must be a mapping, got {type(d).__name__}")
        unknown = set(d) - {"bits", "scale", "zero_point", "axis", "signed", "narrow"}
        if unknown:
            raise GraphError(f"QuantSpec has unknown fields {sorted(unknown)}")
        try:
            scale = d.get("scale", 1.0)
            zp = d.get("zero_point", 0)
            return cls(
                bits=int(d.get("bits", 8)),
                scale=tuple(scale) if isinstance(scale, list) else float(scale),
                zero_point=tuple(zp) if isinstance(zp, list) else int(zp),
                axis=None if d.get("axis") is None else int(d["axis"]),
                signed=bool(d.get("signed", True)),
                narrow=bool(d.get("narrow", False)),
            )
        except (TypeError, ValueError) as e:
            raise GraphError(f"QuantSpec field has the wrong type: {e}") from e


def qrange(bits: int, signed: bool = True, narrow: bool = False) -> tuple[int, int]:
    """Integer range of a ``bits``-wide code."""
    if signed:
        return -(1 << (bits - 1)) + (1 if narrow else 0), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def quantize_multiplier(m: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split a real multiplier into ``(qm, shift)`` with ``m = qm * 2^(shift-31)``.

    Mirrors TFLite's ``QuantizeMultiplier``: ``qm`` is an int32 in ``[2^30, 2^31)``
    (or 0), rounded half away from zero. Multipliers too small to represent
    (``shift < -31``) become 0.
    """
    m = np.atleast_1d(np.asarray(m, dtype=np.float64))
    if np.any(~np.isfinite(m)) or np.any(m < 0):
        raise GraphError(f"requantization multiplier must be finite and >= 0, got {m}")
    frac, exp = np.frexp(m)
    q = np.round(frac * (1 << 31)).astype(np.int64)  # np.round: half to even; fix below
    # TFRound rounds half away from zero; frac*2^31 is exact in double for ties.
    tie = (frac * (1 << 31)) - np.floor(frac * (1 << 31)) == 0.5
    q = np.where(tie, np.floor(frac * (1 << 31)).astype(np.int64) + 1, q)
    overflow = q == (1 << 31)
    q = np.where(overflow, q // 2, q)
    exp = np.where(overflow, exp + 1, exp)
    small = exp < -31
    q = np.where(small | (m == 0), 0, q)
    exp = np.where(small | (m == 0), 0, exp)
    if np.any(exp > 30):
        raise GraphError(f"requantization multiplier {m.max():g} too large (>= 2^30)")
    return q.astype(np.int64), exp.astype(np.int64)


def requantize(acc: np.ndarray, qm: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """``round(acc * qm * 2^(shift-31))`` with LiteRT single rounding (half toward +inf).

    ``acc`` is an integer array (int32 range); ``qm``/``shift`` broadcast against it.
    Returns int64 (caller clamps).
    """
    acc = np.asarray(acc, dtype=np.int64)
    total = 31 - np.asarray(shift, dtype=np.int64)
    # acc (< 2^31) * qm (< 2^31) fits in int64; total >= 1 since shift <= 30
    return (acc * np.asarray(qm, dtype=np.int64) + (np.int64(1) << (total - 1))) >> total


def bias_to_int32(bias: np.ndarray, s_in: float, s_w: Any) -> np.ndarray:
    """The integer bias every consumer uses (runtime, TFLite, ONNX, firmware, lowering)::

        b_q = clamp(round(b / (f32(s_in) * f32(s_w))), -2^31, 2^31 - 1)

    in double precision: Brevitas' ``Int32Bias`` grid and TFLite's int32 bias with scale
    ``s_in * s_w``. ``s_w`` is one scale or one per output channel. Returns int64 codes.
    """
    s = np.float64(np.float32(s_in)) * np.asarray(s_w, dtype=np.float32).astype(np.float64)
    q = np.round(np.asarray(bias, dtype=np.float64) / s)
    return np.clip(q, -(2**31), 2**31 - 1).astype(np.int64)


def quantize(x: np.ndarray, spec: QuantSpec) -> np.ndarray:
    """Real -> integer code: ``clamp(round(x / scale) + zero_point)`` (round half to even,
    as numpy/onnxruntime/LiteRT QUANTIZE do)."""
    x = np.asarray(x, dtype=np.float32)
    s = spec.scale_array(x.ndim)
    z = spec.zero_point_array(x.ndim)
    lo, hi = spec.range
    # clip before the integer cast: a float beyond int64 (1e30) must saturate, not wrap
    with np.errstate(over="ignore", invalid="ignore"):
        r = np.clip(np.round(x / s).astype(np.float64), lo - z, hi - z)
    return (r.astype(np.int64) + z).astype(spec.dtype)


def dequantize(q: np.ndarray, spec: QuantSpec) -> np.ndarray:
    """Integer code -> real: ``scale * (q - zero_point)`` as float32."""
    q = np.asarray(q)
    return (spec.scale_array(q.ndim) * (q.astype(np.int64) - spec.zero_point_array(q.ndim))).astype(
        np.float32
    )
