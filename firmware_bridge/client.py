"""Host client of the board link: ``Board`` (pyserial), stop-and-wait with retransmit.

Usage::

    with Board.connect("/dev/ttyACM0", baud=921600) as board:   # or "loop://", "rfc2217://..."
        board.load("model_bundle/")          # bundle path, int-mode Runtime, or ModelImage
        y = board.infer(x)                   # (T, *in_shape) -> (T, *out_shape)
        for y_t in board.stream(steps): ...  # continuous, state kept between frames
        board.learn(True, layer="fc1", params=IntSTDPParams(seed=7))  # on-board int_stdp
        w = board.pull_state("fc1")          # learned int8 weights
        st = board.pull_learn_state()        # traces and generator (IntSTDPState)

Reliability: every request carries a 16-bit sequence number; the host waits for the
matching ACK/NACK, retransmits the identical frame (flag RETRANSMIT) after a timeout
or when the board NACKs a corrupted frame, at most ``retries`` times, then raises
:class:`BridgeTimeout`. The board answers a repeated (seq, type, payload) from its
reply cache without executing it again, so each request takes effect at most once,
and the host either receives its one reply or gets an error.
"""

from __future__ import annotations

import struct
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from neuroplast.errors import DataError, NeuroplastError
from neuroplast.firmware_bridge import spec
from neuroplast.firmware_bridge.errors import (
    BridgeError,
    BridgeTimeout,
    DeviceError,
    FramingError,
    ModelImageError,
    ProtocolError,
    ProtocolVersionError,
)
from neuroplast.firmware_bridge.framing import Deframer, Frame, crc32, decode_frame, encode_frame
from neuroplast.firmware_bridge.image import (
    ModelImage,
    build_image,
    image_from_bundle,
    learnable_at,
)
from neuroplast.plasticity.int_stdp import IntSTDPParams, IntSTDPState, int_stdp_check_state

__all__ = ["Board", "Caps", "LinkCounters"]

M = spec.MsgType
_CAPS = struct.Struct("<BBBBIIHHIBBHHBB16s")
_LOAD_HDR = struct.Struct("<IIII")
_POLL = 0.005  # seconds per read call while a reply is awaited
_LEARN_FW = (0, 3, 0)  # firmware with LEARN_ENABLE modes and the learning state (§4.5-4.6)


@dataclass(frozen=True)
class Caps:
    """What a board reports in reply to HELLO/CAPS."""

    protocol_version: int
    firmware_version: tuple[int, int, int]
    ram_bytes: int
    max_model_bytes: int
    max_payload: int
    n_layers: int
    ops: tuple[str, ...]
    model_loaded: bool
    learning: bool
    in_size: int
    out_size: int
    out_bytes: int
    name: str

    @classmethod
    def parse(cls, data: bytes) -> Caps:
        if len(data) != _CAPS.size:
            raise ProtocolError(f"CAPS reply is {len(data)} bytes, expected {_CAPS.size}")
        f = _CAPS.unpack(data)
        ops = tuple(e.name for e in spec.LAYER_KINDS if f[8] & (1 << e.code))
        return cls(
            protocol_version=f[0],
            firmware_version=(f[1], f[2], f[3]),
            ram_bytes=f[4],
            max_model_bytes=f[5],
            max_payload=f[6],
            n_layers=f[7],
            ops=ops,
            model_loaded=bool(f[9]),
            learning=bool(f[10]),
            in_size=f[11],
            out_size=f[12],
            out_bytes=f[13],
            name=f[15].rstrip(b"\0").decode("ascii", "replace"),
        )


@dataclass
class LinkCounters:
    """Host-side link statistics (not reset by the board)."""

    requests: int = 0
    retransmits: int = 0
    timeouts: int = 0
    rx_bad_frames: int = 0
    stale_replies: int = 0
    nack_resends: int = 0
    bytes_out: int = 0
    bytes_in: int = 0


class Board:
    """A board on a serial-like port (anything with read/write/timeout/in_waiting)."""

    def __init__(
        self,
        port: Any,
        *,
        timeout: float = 1.0,
        retries: int = 5,
        trace: bool | IO[str] = False,
        baud: int | None = None,
        seq_start: int | None = None,
    ) -> None:
        if timeout <= 0:
            raise BridgeError(f"timeout must be > 0 seconds, got {timeout}")
        if retries < 0:
            raise BridgeError(f"retries must be >= 0, got {retries}")
        self.port = port
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.baud = baud
        self._trace: IO[str] | None = sys.stderr if trace is True else (trace or None)
        self._t_last = time.perf_counter()
        self._deframer = Deframer()
        self._pending: list[bytes] = []  # frames read after the last reply, not yet seen
        self._seq = (
            seq_start if seq_start is not None else int.from_bytes(_urandom(2), "little")
        ) & 0xFFFF
        self.counters = LinkCounters()
        self.logs: list[tuple[int, str]] = []
        self.caps: Caps | None = None
        self.image: ModelImage | None = None
        self._learn_layer: int | None = None  # board layer the learning rule is set up on
        self._closed = False

    # ------------------------------------------------------------- lifecycle
    @classmethod
    def connect(
        cls,
        url: str,
        baud: int = 115200,
        *,
        timeout: float = 1.0,
        retries: int = 5,
        trace: bool | IO[str] = False,
        hello: bool = True,
    ) -> Board:
        """Open ``url`` (a device path or any pyserial ``serial_for_url`` URL) and say HELLO."""
        try:
            import serial
        except ImportError as e:  # pragma: no cover - depends on install extras
            raise BridgeError("pyserial is not installed: pip install 'neuroplast[serial]'") from e
        try:
            port = serial.serial_for_url(
                url, baudrate=baud, timeout=timeout, write_timeout=max(5.0, timeout)
            )
        except (serial.SerialException, ValueError, OSError) as e:
            raise BridgeError(f"cannot open serial port {url!r}: {e}") from None
        board = cls(port, timeout=timeout, retries=retries, trace=trace, baud=baud)
        if hello:
            try:
                board.hello()
            except BaseException:
                board.close()
                raise
        return board

    def close(self) -> None:
        """Close the port (idempotent)."""
        if not self._closed:
            self._closed = True
            try:
                self.port.close()
            except Exception:  # noqa: BLE001 - closing a dead port must not mask the real error
                pass

    def __enter__(self) -> Board:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- tracing
    def _tr(self, direction: str, data: bytes, note: str) -> None:
        if self._trace is None:
            return
        now = time.perf_counter()
        dt, self._t_last = now - self._t_last, now
        hexs = data[:64].hex(" ") + (" ..." if len(data) > 64 else "")
        print(f"[+{dt:8.4f}s] {direction} {note} ({len(data)} B) | {hexs}", file=self._trace)

    # ---------------------------------------------------------------- transport
    def _write(self, data: bytes) -> None:
        try:
            self.port.write(data)
            self.port.flush()
        except Exception as e:  # noqa: BLE001 - serial raises many types; report one
            raise BridgeError(f"write to the board failed: {e}") from None
        self.counters.bytes_out += len(data)

    def _read_frames(self, deadline: float) -> list[bytes]:
        """Read until at least one frame body arrives or the deadline passes."""
        if self._pending:
            frames, self._pending = self._pending, []
            return frames
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return []
            try:
                n = self.port.in_waiting
                chunk = self.port.read(n if n > 0 else 1)
            except Exception as e:  # noqa: BLE001
                raise BridgeError(f"read from the board failed: {e}") from None
            if chunk:
                self.counters.bytes_in += len(chunk)
                frames = self._deframer.feed(chunk)
                if frames:
                    return frames

    @staticmethod
    def _backoff(attempt: int) -> float:
        """Retransmit timer multiplier: doubles per attempt (1, 2, 4, ... capped at 32),
        so a slow or busy board gets time while a lost frame is retried fast."""
        return float(min(1 << attempt, 32))

    def _frame_timeout(self, n_out: int, n_in: int) -> float:
        """Timeout of one attempt: base + the time the bytes need on the wire both ways."""
        wire = 0.0 if not self.baud else 10.0 * (n_out + n_in) / self.baud
        return self.timeout + 2.0 * wire

    def request(
        self, mtype: int, payload: bytes = b"", flags: int = 0, reply_hint: int = 64
    ) -> bytes:
        """Send one request and return the ACK payload after its request-type byte.

        Raises :class:`DeviceError` on NACK, :class:`BridgeTimeout` after all retries.
        The port's timeout is restored in ``finally``.
        """
        if self._closed:
            raise BridgeError("the board connection is closed")
        self._seq = (self._seq + 1) & 0xFFFF
        seq = self._seq
        frame = Frame(type=int(mtype), seq=seq, payload=bytes(payload), flags=flags)
        wire = encode_frame(frame)
        rewire = encode_frame(Frame(int(mtype), seq, bytes(payload), flags | spec.Flag.RETRANSMIT))
        name = spec.message_name(mtype)
        saved = self.port.timeout
        self.counters.requests += 1
        try:
            # short read timeout while waiting (set once: on POSIX every change is a tcsetattr)
            if saved != _POLL:
                self.port.timeout = _POLL
            attempt = 0
            self._tr(">", wire, f"{name} seq={seq}")
            self._write(wire)
            deadline = time.monotonic() + self._frame_timeout(len(wire), reply_hint)
            while True:
                frames = self._read_frames(deadline)
                if not frames:
                    attempt += 1
                    self.counters.timeouts += 1
                    if attempt > self.retries:
                        raise BridgeTimeout(
                            f"no reply to {name} (seq {seq}) after {self.retries + 1} attempts "
                            f"(first timeout {self._frame_timeout(len(wire), reply_hint):.3g} s, "
                            "doubling); is the board running this firmware at this baud rate?"
                        )
                    self.counters.retransmits += 1
                    self._tr(">", rewire, f"{name} seq={seq} RETRANSMIT")
                    self._write(rewire)
                    deadline = time.monotonic() + self._backoff(attempt) * self._frame_timeout(
                        len(wire), reply_hint
                    )
                    continue
                for k, body in enumerate(frames):
                    result = self._consider(body, mtype, seq)
                    if result is None:
                        continue
                    if result == "resend":
                        attempt += 1
                        if attempt > self.retries:
                            raise BridgeTimeout(
                                f"{name} (seq {seq}) corrupted on the way to the board "
                                f"{self.retries + 1} times; check the cable/baud rate"
                            )
                        self.counters.retransmits += 1
                        self.counters.nack_resends += 1
                        self._tr(">", rewire, f"{name} seq={seq} RETRANSMIT(nack)")
                        self._write(rewire)
                        deadline = time.monotonic() + self._backoff(attempt) * self._frame_timeout(
                            len(wire), reply_hint
                        )
                        continue
                    self._pending = frames[k + 1 :]  # e.g. a LOG right behind the reply
                    return result
        finally:
            try:
                if self.port.timeout != saved:
                    self.port.timeout = saved
            except Exception:  # noqa: BLE001
                pass

    def _consider(self, body: bytes, mtype: int, seq: int) -> bytes | str | None:
        """Classify one received frame: reply payload, "resend", or None (ignore)."""
        try:
            f = decode_frame(body, check_version=False)
        except FramingError:
            self.counters.rx_bad_frames += 1
            self._tr("<", body, "BAD FRAME")
            return None
        self._tr("<", body, f"{spec.message_name(f.type)} seq={f.seq}")
        if f.type == M.LOG:
            level = f.payload[0] if f.payload else 0
            self.logs.append((level, f.payload[1:].decode("utf-8", "replace")))
            return None
        if f.version != spec.PROTOCOL_VERSION:
            raise ProtocolVersionError(
                f"board replied with protocol version {f.version}; host speaks {spec.PROTOCOL_VERSION}"
            )
        if f.type == M.NACK and len(f.payload) >= 2 and f.payload[1] == spec.ErrorCode.FRAMING:
            return None  # an undecodable frame reached the board; not attributable: wait
        if f.type == M.NACK and len(f.payload) >= 2 and f.payload[1] == spec.ErrorCode.CRC:
            # the board saw our header intact but the body corrupted: resend at once
            return "resend" if (f.seq == seq and f.payload[0] == mtype) else None
        if f.type not in (M.ACK, M.NACK) or f.seq != seq:
            self.counters.stale_replies += 1
            return None
        if not f.payload or f.payload[0] != mtype:
            self.counters.stale_replies += 1
            return None
        if f.type == M.NACK:
            code = f.payload[1] if len(f.payload) > 1 else spec.ErrorCode.INTERNAL
            detail = f.payload[2:].decode("utf-8", "replace")
            if code == spec.ErrorCode.VERSION:
                raise ProtocolVersionError(
                    f"board refused protocol version {spec.PROTOCOL_VERSION}: {detail}"
                )
            raise DeviceError(code, spec.message_name(mtype), detail)
        return f.payload[1:]

    # ---------------------------------------------------------------- commands
    def hello(self) -> Caps:
        """Open a session (resets the board's duplicate filter) and read its capabilities."""
        self._deframer.reset()
        self._pending = []
        try:
            self.port.reset_input_buffer()
        except Exception:  # noqa: BLE001 - not every port type supports it
            pass
        self.caps = Caps.parse(self.request(M.HELLO))
        if self.caps.protocol_version != spec.PROTOCOL_VERSION:
            raise ProtocolVersionError(
                f"board speaks protocol {self.caps.protocol_version}, host {spec.PROTOCOL_VERSION}"
            )
        return self.caps

    def info(self) -> Caps:
        """Capabilities without resetting the session."""
        self.caps = Caps.parse(self.request(M.CAPS))
        return self.caps

    def ping(self, payload: bytes = b"") -> float:
        """Echo ``payload``; returns the round-trip time in seconds. Verifies the echo."""
        t0 = time.perf_counter()
        echo = self.request(M.PING, payload, reply_hint=len(payload) + 16)
        if echo != payload:
            raise ProtocolError(f"PING echo differs ({len(echo)} bytes back for {len(payload)})")
        return time.perf_counter() - t0

    def stats(self) -> dict[str, int]:
        """The board's counters by name (see spec.STATS_FIELDS)."""
        data = self.request(M.STATS)
        n = len(spec.STATS_FIELDS)
        if len(data) != 4 * n:
            raise ProtocolError(f"STATS reply is {len(data)} bytes, expected {4 * n}")
        vals = struct.unpack(f"<{n}I", data)
        return {e.name.lower(): v for e, v in zip(spec.STATS_FIELDS, vals)}

    def reset(self, what: str = "state") -> None:
        """``"state"`` (membranes, delays, traces), ``"model"`` (unload) or ``"stats"``."""
        codes = {"state": 0, "model": 1, "stats": 2}
        if what not in codes:
            raise BridgeError(f"reset what={what!r}; choose one of {sorted(codes)}")
        self.request(M.RESET, bytes([codes[what]]))
        if what == "model":
            self.image = None
            self._learn_layer = None

    def load(self, model: Any, chunk: int | None = None, progress: Any = None) -> ModelImage:
        """Send a model (bundle path or Bundle, int-mode Runtime, :class:`ModelImage`, raw bytes)
        in chunks; the board checks each chunk's CRC and the whole image's CRC, then
        validates and activates it. Returns the image."""
        image = self._to_image(model)
        data = image.data
        max_chunk = spec.MAX_PAYLOAD - _LOAD_HDR.size
        chunk = max_chunk if chunk is None else int(chunk)
        if not 1 <= chunk <= max_chunk:
            raise BridgeError(f"chunk must be in 1..{max_chunk}, got {chunk}")
        if self.caps is not None and len(data) > self.caps.max_model_bytes:
            raise ModelImageError(
                f"model image is {len(data)} bytes; the board accepts at most {self.caps.max_model_bytes}"
            )
        total_crc = crc32(data)
        off = 0
        while True:
            part = data[off : off + chunk]
            payload = _LOAD_HDR.pack(off, len(data), total_crc, crc32(part)) + part
            reply = self.request(M.LOAD_BUNDLE, payload)
            if len(reply) != 5:
                raise ProtocolError(f"LOAD_BUNDLE reply is {len(reply)} bytes, expected 5")
            received, done = struct.unpack("<IB", reply)
            off += len(part)
            if progress is not None:
                progress(off, len(data))
            if done:
                break
            if received != off:
                raise ProtocolError(f"board acknowledged {received} bytes, host sent {off}")
            if off >= len(data):
                raise ProtocolError("board did not activate the model after the last chunk")
        self.image = image
        self._learn_layer = None  # a new model clears the board's learning configuration
        return image

    @staticmethod
    def _to_image(model: Any) -> ModelImage:
        if isinstance(model, ModelImage):
            return model
        if isinstance(model, (bytes, bytearray)):
            return ModelImage(bytes(model), (0,), (0,), 4, ())
        if isinstance(model, (str, Path)):
            return image_from_bundle(model)
        if hasattr(model, "graph") and hasattr(model, "manifest"):  # a loaded Bundle
            from neuroplast.runtime import Runtime

            rt = Runtime(model.graph, mode="int")
            if model.state is not None and str(model.state.get("meta/mode", "")) == "int":
                rt.load_state_dict(model.state)  # learned weights travel to the board
            return build_image(rt)
        if hasattr(model, "kernels") and hasattr(model, "graph"):
            return build_image(model)
        raise ModelImageError(
            f"cannot load a {type(model).__name__}: pass a bundle path, an int-mode Runtime or a ModelImage"
        )

    # ------------------------------------------------------------ inference
    def _need_image(self) -> ModelImage:
        if self.image is None:
            raise BridgeError("no model loaded through this connection: call board.load(...) first")
        return self.image

    def _quantize(self, x: Any, image: ModelImage) -> np.ndarray:
        """(T, *in_shape) array -> (T, in_size) int8 codes."""
        x = np.asarray(x)
        if x.dtype.kind not in "biuf":
            raise DataError(f"board input must be numeric, got dtype {x.dtype}")
        if x.shape[1:] != tuple(image.in_shape) and x.shape != tuple(image.in_shape):
            raise DataError(
                f"board input has shape {x.shape}; expected (T, {', '.join(map(str, image.in_shape))})"
            )
        if x.shape == tuple(image.in_shape) and x.ndim == len(image.in_shape):
            x = x[None]
        if x.dtype.kind == "f":
            if not np.all(np.isfinite(x)):
                raise DataError("board input contains NaN or Inf")
            if image.input_quant is None:
                raise DataError("float input needs the model's input quantization; pass int8 codes")
            from neuroplast.quant import quantize

            x = quantize(x, image.input_quant)
        if x.shape[0] == 0:
            raise DataError("board input has no time steps")
        x = x.astype(np.int64).reshape(x.shape[0], -1)
        if x.size and (x.min() < -128 or x.max() > 127):
            raise DataError(f"board input codes must be int8 (-128..127), got {x.min()}..{x.max()}")
        return x.astype(np.int8)

    def _steps_per_frame(self, image: ModelImage) -> int:
        per_in = image.in_size
        per_out = image.out_size * image.out_bytes
        n = min((spec.MAX_PAYLOAD - 2) // max(per_in, 1), (spec.MAX_PAYLOAD - 4) // max(per_out, 1))
        if n < 1:
            raise ModelImageError("one step does not fit in a frame (input or output too large)")
        return min(n, 0xFFFF)

    def _decode_outputs(self, reply: bytes, n: int, image: ModelImage) -> np.ndarray:
        if len(reply) < 3:
            raise ProtocolError("short INFER/STREAM reply")
        n_steps, eb = struct.unpack_from("<HB", reply)
        body = reply[3:]
        if n_steps != n or eb not in (1, 4) or len(body) != n * image.out_size * eb:
            raise ProtocolError(
                f"reply has {n_steps} steps x {eb} B ({len(body)} bytes); expected {n} steps "
                f"x {image.out_size} outputs"
            )
        y = np.frombuffer(body, dtype="<i1" if eb == 1 else "<i4").astype(np.int64)
        return y.reshape((n,) + tuple(image.out_shape))

    def _run_frame(
        self, codes: np.ndarray, mtype: int, flags: int, image: ModelImage
    ) -> np.ndarray:
        n = codes.shape[0]
        payload = struct.pack("<H", n) + codes.astype(np.int8).tobytes()
        hint = 4 + n * image.out_size * image.out_bytes
        reply = self.request(mtype, payload, flags=flags, reply_hint=hint)
        return self._decode_outputs(reply, n, image)

    def infer(self, x: Any) -> np.ndarray:
        """Run a window from reset state: ``x`` (T, *in_shape) int8 codes or floats
        (quantized with the model's input spec). Returns int64 outputs (T, *out_shape)."""
        image = self._need_image()
        codes = self._quantize(x, image)
        per = self._steps_per_frame(image)
        outs = []
        for start in range(0, codes.shape[0], per):
            part = codes[start : start + per]
            mtype = M.INFER if start == 0 else M.STREAM
            outs.append(self._run_frame(part, mtype, 0, image))
        return np.concatenate(outs)

    def stream(
        self, steps: Iterable[Any], steps_per_frame: int | None = None, reset: bool = False
    ) -> Iterator[np.ndarray]:
        """Continuous inference: consume per-step inputs, yield per-step outputs; neuron
        state continues across frames (and across calls, unless ``reset``)."""
        image = self._need_image()
        per = self._steps_per_frame(image) if steps_per_frame is None else int(steps_per_frame)
        if not 1 <= per <= self._steps_per_frame(image):
            raise BridgeError(f"steps_per_frame must be in 1..{self._steps_per_frame(image)}")
        buf: list[np.ndarray] = []
        first = True

        def flush() -> Iterator[np.ndarray]:
            nonlocal first
            codes = np.concatenate(buf)
            flags = spec.Flag.RESET_STATE if (reset and first) else 0
            first = False
            buf.clear()
            yield from self._run_frame(codes, M.STREAM, flags, image)

        for x in steps:
            buf.append(self._quantize(np.asarray(x)[None], image))
            if len(buf) == per:
                yield from flush()
        if buf:
            yield from flush()

    def stream_events(self, steps: Iterable[Any], reset: bool = False) -> np.ndarray:
        """Event input: each step is a sequence of active input indices (value 1 each,
        repeats add). Sent with the EVENTS flag; returns outputs (T, *out_shape)."""
        image = self._need_image()
        per_out = image.out_size * image.out_bytes
        max_steps = (spec.MAX_PAYLOAD - 4) // max(per_out, 1)
        outs: list[np.ndarray] = []
        frame: list[bytes] = []
        size = 2
        first = True

        def send() -> None:
            nonlocal first, size
            flags = spec.Flag.EVENTS | (spec.Flag.RESET_STATE if (reset and first) else 0)
            first = False
            payload = struct.pack("<H", len(frame)) + b"".join(frame)
            n = len(frame)
            reply = self.request(M.STREAM, payload, flags=flags, reply_hint=4 + n * per_out)
            outs.append(self._decode_outputs(reply, n, image))
            frame.clear()
            size = 2

        for idx in steps:
            idx = np.asarray(idx, dtype=np.int64).ravel()
            if idx.size and (idx.min() < 0 or idx.max() >= image.in_size):
                raise DataError(f"event index out of range 0..{image.in_size - 1}")
            rec = struct.pack("<H", idx.size) + idx.astype("<u2").tobytes()
            if len(rec) + 2 > spec.MAX_PAYLOAD:
                raise DataError(f"{idx.size} events in one step do not fit in a frame")
            if size + len(rec) > spec.MAX_PAYLOAD or len(frame) == max_steps:
                send()
            frame.append(rec)
            size += len(rec)
        if frame:
            send()
        if not outs:
            return np.zeros((0,) + tuple(image.out_shape), np.int64)
        return np.concatenate(outs)

    # -------------------------------------------------------------- learning
    def learn(
        self,
        enabled: bool = True,
        layer: int | str | None = None,
        params: IntSTDPParams | None = None,
        *,
        resume: bool = False,
        start: bool = True,
    ) -> int:
        """Switch on-board learning: the integer STDP rule ``int_stdp``
        (:mod:`neuroplast.plasticity.int_stdp`, the engine's rule bit for bit) on a
        LINEAR layer followed by a LIF. Returns the board layer number.

        * ``learn(True, layer, params)``: configure (zero the traces, seed the generator
          with ``params.seed``) and learn during every following INFER/STREAM step;
          ``start=False`` configures only (learning stays off, as ``board load`` does).
        * ``learn(True, resume=True)``: learn again with the current configuration,
          traces and generator (after :meth:`push_learn_state`, or a pause).
        * ``learn(False)``: stop; weights, traces and generator are kept.

        ``layer`` is a node name or board layer number (default: the first LINEAR
        feeding a LIF); ``params`` defaults to ``IntSTDPParams()``. The board refuses
        with :class:`DeviceError` ``BAD_ARG`` what it cannot run.
        """
        image = self._need_image()
        if resume or not start:
            self._need_fw(_LEARN_FW, "learning modes CONFIGURE/RESUME")
        if not enabled or resume:
            if layer is not None or params is not None:
                raise BridgeError("learn(False) and learn(resume=True) take no layer or params")
            mode = spec.LearnMode.RESUME if enabled else spec.LearnMode.OFF
            self.request(M.LEARN_ENABLE, bytes((mode,)) + bytes(19))
            return -1 if self._learn_layer is None else self._learn_layer
        params = params or IntSTDPParams()
        if not isinstance(params, IntSTDPParams):
            raise BridgeError(f"params must be IntSTDPParams, got {type(params).__name__}")
        if layer is None:
            cands = [i for i in range(len(image.layers)) if learnable_at(image.layers, i)]
            if not cands:
                raise ModelImageError("no LINEAR layer followed by a LIF in this model")
            idx = cands[0]
        else:
            idx = image.layer_index(layer)
        mode = spec.LearnMode.START if start else spec.LearnMode.CONFIGURE
        self.request(M.LEARN_ENABLE, _pack_learn(mode, idx, params))
        self._learn_layer = idx
        return idx

    def pull_learn_state(self) -> IntSTDPState:
        """The learning state of the configured layer: traces ``x`` (n_pre,), ``y``
        (n_post,) and the generator word ``rng``, as :func:`~neuroplast.plasticity.
        int_stdp_step` keeps them (CRC-checked; PROTOCOL.md §4.6)."""
        n_pre, n_post = self._learn_shape()
        data = self._get_object(spec.LEARN_STATE_LAYER, "learning state")
        if len(data) != 4 + 2 * (n_pre + n_post):
            raise ProtocolError(
                f"learning state is {len(data)} bytes, expected {4 + 2 * (n_pre + n_post)}"
            )
        tr = np.frombuffer(data, "<u2", offset=4).astype(np.int64)
        return IntSTDPState(tr[:n_pre].copy(), tr[n_pre:].copy(), struct.unpack_from("<I", data)[0])

    def push_learn_state(self, state: IntSTDPState) -> None:
        """Write traces and generator into the configured layer's learning state
        (validated on the host and on the board; applied only whole)."""
        n_pre, n_post = self._learn_shape()
        try:
            st = int_stdp_check_state(state, n_pre, n_post)
        except NeuroplastError as e:
            raise DataError(str(e)) from None
        data = struct.pack("<I", st.rng) + np.concatenate([st.x, st.y]).astype("<u2").tobytes()
        self._set_object(spec.LEARN_STATE_LAYER, data)

    def _need_fw(self, version: tuple[int, int, int], what: str) -> None:
        """Refuse a feature older firmware would misread (0.2 took any LEARN_ENABLE
        mode byte != 0 as START)."""
        have = self.caps.firmware_version if self.caps is not None else None
        if have is not None and tuple(have) < version:
            raise BridgeError(
                f"board firmware {'.'.join(map(str, have))} predates {what} "
                f"(needs {'.'.join(map(str, version))}); rebuild/reflash the firmware"
            )

    def _learn_shape(self) -> tuple[int, int]:
        self._need_fw(_LEARN_FW, "the learning-state transfer")
        image = self._need_image()
        if self._learn_layer is None:
            raise BridgeError("learning is not configured on this board (call learn() first)")
        shape = image.layers[self._learn_layer].weight_shape
        assert shape is not None
        return int(shape[1]), int(shape[0])

    def _get_object(self, idx: int, what: str) -> bytes:
        """Read a GET_STATE object (chunked; the whole-object CRC is checked)."""
        out = bytearray()
        total = None
        tcrc = 0
        while total is None or len(out) < total:
            reply = self.request(
                M.GET_STATE, struct.pack("<BIH", idx, len(out), spec.MAX_PAYLOAD - 13)
            )
            if len(reply) < 12:
                raise ProtocolError("short GET_STATE reply")
            t, c, off = struct.unpack_from("<III", reply)
            if off != len(out) or (total is not None and (t != total or c != tcrc)):
                raise ProtocolError(
                    "GET_STATE chunks are inconsistent (state changed while reading?)"
                )
            total, tcrc = t, c
            out += reply[12:]
            if len(reply) == 12 and len(out) < total:
                raise ProtocolError("GET_STATE returned an empty chunk")
        if crc32(bytes(out)) != tcrc:
            raise BridgeError(f"{what}: whole-state CRC mismatch after transfer")
        return bytes(out)

    def _set_object(self, idx: int, data: bytes) -> None:
        tcrc = crc32(data)
        step = spec.MAX_PAYLOAD - 13
        for off in range(0, len(data), step):
            part = data[off : off + step]
            self.request(M.SET_STATE, struct.pack("<BIII", idx, off, len(data), tcrc) + part)

    def pull_state(self, layer: int | str | None = None) -> np.ndarray | dict[str, np.ndarray]:
        """Read a layer's (learned) int8 weights; with no layer, all weighted layers by name.
        The whole-object CRC reported by the board is checked."""
        image = self._need_image()
        if layer is None:
            return {
                info.name: self.pull_state(i)  # type: ignore[misc]
                for i, info in enumerate(image.layers)
                if info.weight_shape is not None
            }
        idx = image.layer_index(layer)
        info = image.layers[idx]
        if info.weight_shape is None:
            raise BridgeError(f"layer {info.name!r} has no weights")
        data = self._get_object(idx, f"layer {info.name!r}")
        return np.frombuffer(data, dtype=np.int8).reshape(info.weight_shape).copy()

    def push_state(self, layer: int | str, weights: np.ndarray) -> None:
        """Write int8 weights into a layer (chunked; applied only if the whole CRC matches)."""
        image = self._need_image()
        idx = image.layer_index(layer)
        info = image.layers[idx]
        w = np.asarray(weights)
        if info.weight_shape is None or w.shape != info.weight_shape:
            raise DataError(
                f"layer {info.name!r} needs weights of shape {info.weight_shape}, got {w.shape}"
            )
        if w.dtype.kind not in "iu" or w.min(initial=0) < -128 or w.max(initial=0) > 127:
            raise DataError("weights must be int8 codes")
        self._set_object(idx, w.astype(np.int8).tobytes())


def _pack_learn(mode: int, layer: int, p: IntSTDPParams) -> bytes:
    """LEARN_ENABLE payload (20 bytes, PROTOCOL.md §4.5)."""
    return struct.pack(
        "<BBIHHHHHHbb",
        mode,
        layer,
        int(p.seed),
        p.a_pre,
        p.a_post,
        p.decay_pre,
        p.decay_post,
        p.eta_plus,
        p.eta_minus,
        p.w_min,
        p.w_max,
    )


def _urandom(n: int) -> bytes:
    import os

    return os.urandom(n)
