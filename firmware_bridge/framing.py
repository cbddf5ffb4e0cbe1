"""Frame layer of the board link: COBS byte stuffing, the fixed header and CRC-32.

A frame on the wire is ``COBS(header || payload || crc32) || 0x00``. COBS removes every
zero byte from the body, so ``0x00`` always ends a frame and a receiver that starts in
the middle of a stream (or after line noise) resynchronizes at the next zero.
CRC-32 is CRC-32/ISO-HDLC (``zlib.crc32``: poly 0x04C11DB7 reflected, init and xorout
0xFFFFFFFF), stored little endian, over the 7 header bytes and the payload.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from neuroplast.firmware_bridge import spec
from neuroplast.firmware_bridge.errors import CRCError, FramingError, ProtocolVersionError

__all__ = [
    "Frame",
    "cobs_encode",
    "cobs_decode",
    "crc32",
    "encode_frame",
    "decode_frame",
    "Deframer",
]

_HEADER = struct.Struct(spec.HEADER_FORMAT)


def crc32(data: bytes) -> int:
    """CRC-32/ISO-HDLC of ``data`` (same as zlib/PNG/Ethernet)."""
    return zlib.crc32(data) & 0xFFFFFFFF


def cobs_encode(data: bytes) -> bytes:
    """Consistent Overhead Byte Stuffing (canonical form): no 0x00 in the output,
    ``len <= n + n // 254 + 1``. A full 254-byte block is closed only when more input
    follows, so ``bytes(range(1, 255))`` encodes to ``ff 01 .. fe`` (no trailing block)."""
    out = bytearray(b"\x00")
    code_idx = 0
    code = 1
    for b in data:
        if code == 0xFF:  # previous block is full and more input follows: open a new one
            out[code_idx] = code
            code_idx = len(out)
            out.append(0)
            code = 1
        if b == 0:
            out[code_idx] = code
            code_idx = len(out)
            out.append(0)
            code = 1
        else:
            out.append(b)
            code += 1
    out[code_idx] = code
    return bytes(out)


def cobs_decode(data: bytes) -> bytes:
    """Inverse of :func:`cobs_encode`; raises :class:`FramingError` on a malformed block."""
    out = bytearray()
    i = 0
    n = len(data)
    while i < n:
        code = data[i]
        if code == 0:
            raise FramingError(f"COBS: zero byte inside a frame at offset {i}")
        end = i + code
        if end > n:
            raise FramingError(f"COBS: block of {code - 1} bytes at offset {i} runs past the end")
        block = data[i + 1 : end]
        if 0 in block:
            raise FramingError("COBS: zero byte inside a frame")
        out += block
        i = end
        if code != 0xFF and i < n:
            out.append(0)
    return bytes(out)


@dataclass(frozen=True)
class Frame:
    """One decoded frame: header fields and payload bytes."""

    type: int
    seq: int
    payload: bytes = b""
    flags: int = 0
    version: int = spec.PROTOCOL_VERSION


def encode_frame(frame: Frame) -> bytes:
    """Frame -> wire bytes including the trailing 0x00 delimiter."""
    if len(frame.payload) > spec.MAX_PAYLOAD:
        raise FramingError(
            f"payload of {len(frame.payload)} bytes exceeds MAX_PAYLOAD={spec.MAX_PAYLOAD}"
        )
    if not 0 <= frame.seq <= 0xFFFF:
        raise FramingError(f"seq {frame.seq} outside 0..65535")
    body = (
        _HEADER.pack(frame.version, frame.type, frame.flags, frame.seq, len(frame.payload))
        + frame.payload
    )
    return cobs_encode(body + struct.pack("<I", crc32(body))) + b"\x00"


def decode_frame(encoded: bytes, *, check_version: bool = True) -> Frame:
    """COBS body (no delimiter) -> :class:`Frame`.

    Raises :class:`FramingError` (bad COBS, wrong length), :class:`CRCError` or
    :class:`ProtocolVersionError`.
    """
    if len(encoded) > spec.MAX_ENCODED_FRAME:
        raise FramingError(f"frame of {len(encoded)} bytes exceeds {spec.MAX_ENCODED_FRAME}")
    raw = cobs_decode(encoded)
    if len(raw) < spec.HEADER_SIZE + spec.CRC_SIZE:
        raise FramingError(f"frame of {len(raw)} bytes is shorter than header+crc")
    version, mtype, flags, seq, length = _HEADER.unpack_from(raw, 0)
    if length != len(raw) - spec.HEADER_SIZE - spec.CRC_SIZE:
        raise FramingError(
            f"header length {length} != {len(raw) - spec.HEADER_SIZE - spec.CRC_SIZE} bytes"
        )
    (crc,) = struct.unpack_from("<I", raw, len(raw) - spec.CRC_SIZE)
    if crc != crc32(raw[: -spec.CRC_SIZE]):
        raise CRCError(f"CRC mismatch on a {spec.message_name(mtype)} frame (seq {seq})")
    if check_version and version != spec.PROTOCOL_VERSION:
        raise ProtocolVersionError(
            f"board speaks protocol version {version}, host speaks {spec.PROTOCOL_VERSION}"
        )
    return Frame(
        type=mtype,
        seq=seq,
        payload=bytes(raw[spec.HEADER_SIZE : -spec.CRC_SIZE]),
        flags=flags,
        version=version,
    )


class Deframer:
    """Incremental splitter: feed raw bytes, get complete COBS bodies (no delimiters).

    Bytes beyond ``MAX_ENCODED_FRAME`` without a delimiter are discarded until the
    next 0x00 (counted in ``overflows``): the receiver never grows without bound and
    resynchronizes after garbage.
    """

    def __init__(self, max_len: int = spec.MAX_ENCODED_FRAME) -> None:
        self.max_len = max_len
        self._buf = bytearray()
        self._discarding = False
        self.overflows = 0

    def feed(self, data: bytes) -> list[bytes]:
        """Add bytes; return the list of complete, non-empty frame bodies."""
        out: list[bytes] = []
        start = 0
        while True:
            z = data.find(b"\x00", start)
            chunk = data[start:] if z < 0 else data[start:z]
            if not self._discarding:
                self._buf += chunk
                if len(self._buf) > self.max_len:
                    self._buf.clear()
                    self._discarding = True
                    self.overflows += 1
            if z < 0:
                return out
            if not self._discarding and self._buf:
                out.append(bytes(self._buf))
            self._buf.clear()
            self._discarding = False
            start = z + 1

    def reset(self) -> None:
        """Drop any partial frame."""
        self._buf.clear()
        self._discarding = False
