"""How one input step travels to ``serve``: explicit payload formats and authenticated frames.

Formats (chosen by the operator, never guessed from the bytes):

- ``"text"``: UTF-8 numbers separated by whitespace or commas (one line, datagram or
  MQTT message); the default for stdin, serial and text files;
- ``"f32"``: exactly ``n`` little-endian float32 values, ``4 n`` bytes, nothing else; the
  default for UDP and MQTT.

So a text datagram of ``4 n`` bytes is text in ``"text"`` mode and an error in ``"f32"``
mode, never silently read as floats.

Authenticated frames (UDP and MQTT), for any format::

    b"NPA1" | counter: uint64 big-endian | tag: 32 bytes | payload
    tag = HMAC-SHA256(key, b"NPA1" | counter | payload)

The receiver (:class:`Authenticator`) accepts a frame only if the tag verifies and the
counter is greater than the last accepted one (replay protection: a sender uses e.g. the
time in microseconds, or a persisted count). A message without the ``NPA1`` prefix is
unauthenticated: it may drive inference, never learning. A frame with the prefix and a
bad tag or an old counter is rejected.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
import struct
from pathlib import Path

import numpy as np

from neuroplast.errors import BoardError, DataError

__all__ = [
    "FORMATS",
    "MAGIC",
    "HEADER_BYTES",
    "RejectedMessage",
    "Authenticator",
    "seal",
    "load_key",
    "decode_payload",
    "encode_payload",
]

FORMATS = ("text", "f32")
MAGIC = b"NPA1"
HEADER_BYTES = len(MAGIC) + 8 + 32
_MIN_KEY = 16


class RejectedMessage(DataError):
    """One message ``serve`` refused; ``reason`` is the counter it is tallied under."""

    def __init__(self, reason: str, msg: str) -> None:
        super().__init__(msg)
        self.reason = reason


def _tag(key: bytes, counter: bytes, payload: bytes) -> bytes:
    return hmac.new(key, MAGIC + counter + payload, hashlib.sha256).digest()


def seal(key: bytes, counter: int, payload: bytes) -> bytes:
    """An authenticated frame of ``payload`` (the sender's side)."""
    if not 0 < counter < 1 << 64:
        raise DataError(f"frame counter must be in [1, 2**64), got {counter}")
    c = struct.pack(">Q", counter)
    return MAGIC + c + _tag(key, c, payload) + payload


class Authenticator:
    """Verifies frames with ``key``; keeps the last accepted counter (``last``)."""

    def __init__(self, key: bytes, last: int = 0) -> None:
        if len(key) < _MIN_KEY:
            raise BoardError(f"HMAC key must be at least {_MIN_KEY} bytes, got {len(key)}")
        self.key, self.last = bytes(key), int(last)

    def open(self, data: bytes) -> tuple[bytes, bool]:
        """``(payload, authenticated)``; RejectedMessage for a bad or replayed frame."""
        if not data.startswith(MAGIC):
            return data, False
        if len(data) < HEADER_BYTES:
            raise RejectedMessage("auth", f"truncated authenticated frame ({len(data)} bytes)")
        c, tag, payload = data[4:12], data[12:44], data[44:]
        if not hmac.compare_digest(tag, _tag(self.key, c, payload)):
            raise RejectedMessage("auth", "authenticated frame with a wrong HMAC tag")
        counter = struct.unpack(">Q", c)[0]
        if counter <= self.last:
            raise RejectedMessage(
                "replay", f"frame counter {counter} is not above the last accepted {self.last}"
            )
        self.last = counter
        return payload, True


def load_key(path: str | os.PathLike) -> bytes:
    """An HMAC key from a file readable only by its owner (``chmod 600``); at least 16 bytes,
    raw or as hex text."""
    p = Path(path)
    try:
        st = p.stat()
        data = p.read_bytes()
    except OSError as e:
        raise BoardError(f"{p}: cannot read the HMAC key file ({e.strerror or e})") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise BoardError(f"{p}: HMAC key file is readable by others; run chmod 600 {p}")
    text = data.strip()
    try:
        key = bytes.fromhex(text.decode("ascii")) if text else b""
    except (UnicodeDecodeError, ValueError):
        key = data
    if len(key) < _MIN_KEY:
        raise BoardError(f"{p}: HMAC key must be at least {_MIN_KEY} bytes")
    return key


def decode_payload(payload: bytes, fmt: str, size: int) -> np.ndarray:
    """``size`` float32 values from one message in format ``fmt`` (RejectedMessage if not)."""
    if fmt == "f32":
        if len(payload) != 4 * size:
            raise RejectedMessage(
                "format",
                f"f32 message of {len(payload)} bytes, expected {4 * size} ({size} values)",
            )
        return np.frombuffer(payload, dtype="<f4").astype(np.float32)
    if fmt != "text":
        raise BoardError(f"message format must be one of {FORMATS}, got {fmt!r}")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise RejectedMessage("format", "text message is not UTF-8") from None
    parts = text.replace(",", " ").split()
    if len(parts) != size:
        raise RejectedMessage("format", f"got {len(parts)} numbers, the model input needs {size}")
    try:
        vals = [float(p) for p in parts]
    except ValueError as e:
        raise RejectedMessage("format", f"not a list of numbers ({e})") from None
    with np.errstate(over="ignore"):  # 1e39 becomes inf here; the runtime refuses it
        return np.array(vals, dtype=np.float32)


def encode_payload(x: np.ndarray, fmt: str) -> bytes:
    """One step ``x`` as a message in format ``fmt`` (the sender's side)."""
    x = np.asarray(x, dtype=np.float32).ravel()
    if fmt == "f32":
        return x.astype("<f4").tobytes()
    if fmt == "text":
        return " ".join(f"{v:.9g}" for v in x).encode()
    raise BoardError(f"message format must be one of {FORMATS}, got {fmt!r}")
