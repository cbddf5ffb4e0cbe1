"""Fault-injection proxy between a host and a board: a man in the middle on two ptys.

The host opens ``proxy.port`` (a fresh pty); the proxy forwards whole frames (split at
0x00) to and from the board's port, and with the given probabilities per frame and
direction **drops** it, **flips** one byte (xor with a random nonzero value, the
delimiter included) or **duplicates** it. ``inject_garbage`` writes arbitrary bytes
into either direction. Used by the tests to show that every message is delivered
exactly once or reported as an error, and that the link resynchronizes.
"""

from __future__ import annotations

import os
import select
import threading
import tty
from dataclasses import dataclass

import numpy as np

from neuroplast.firmware_bridge.errors import BridgeError

__all__ = ["FaultProxy", "FaultCounts"]


@dataclass
class FaultCounts:
    """Frames seen and faults injected, per proxy (both directions together)."""

    frames: int = 0
    dropped: int = 0
    flipped: int = 0
    duplicated: int = 0
    garbage_bytes: int = 0


class FaultProxy:
    """Forward frames between a new pty (for the host) and ``board_port``, injecting faults."""

    def __init__(
        self,
        board_port: str,
        p_flip: float = 0.01,
        p_drop: float = 0.01,
        p_dup: float = 0.01,
        seed: int = 0,
        direction: str = "both",
    ) -> None:
        if direction not in ("both", "to_board", "to_host"):
            raise BridgeError(f"direction must be both, to_board or to_host, not {direction!r}")
        self.direction = direction
        for n, p in (("p_flip", p_flip), ("p_drop", p_drop), ("p_dup", p_dup)):
            if not 0.0 <= p <= 1.0:
                raise BridgeError(f"{n} must be a probability, got {p}")
        self.board_port = board_port
        self.p = (p_drop, p_flip, p_dup)
        self.rng = np.random.default_rng(seed)
        self.counts = FaultCounts()
        self.port: str | None = None
        self._fds: list[int] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.enabled = True

    def start(self) -> FaultProxy:
        master, slave = os.openpty()
        tty.setraw(slave)
        board = os.open(self.board_port, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(board)
        self._host, self._slave, self._board = master, slave, board
        self._fds = [master, slave, board]
        self.port = os.ttyname(slave)
        self._thread = threading.Thread(target=self._loop, name="fault-proxy", daemon=True)
        self._thread.start()
        return self

    def _fault(self, frame: bytes, to_board: bool) -> list[bytes]:
        """Apply at most one fault to one frame (delimiter included)."""
        with self._lock:
            self.counts.frames += 1
            wanted = self.direction == "both" or (self.direction == "to_board") == to_board
            if not self.enabled or not wanted:
                return [frame]
            r = self.rng.random()
            p_drop, p_flip, p_dup = self.p
            if r < p_drop:
                self.counts.dropped += 1
                return []
            if r < p_drop + p_flip:
                self.counts.flipped += 1
                b = bytearray(frame)
                i = int(self.rng.integers(len(b)))
                b[i] ^= int(self.rng.integers(1, 256))
                return [bytes(b)]
            if r < p_drop + p_flip + p_dup:
                self.counts.duplicated += 1
                return [frame, frame]
            return [frame]

    @staticmethod
    def _write_all(fd: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]

    def _loop(self) -> None:
        bufs = {self._host: bytearray(), self._board: bytearray()}
        dest = {self._host: self._board, self._board: self._host}
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._host, self._board], [], [], 0.05)
            except (OSError, ValueError):
                return
            for fd in ready:
                try:
                    data = os.read(fd, 65536)
                except OSError:
                    continue
                buf = bufs[fd]
                buf += data
                out = []
                while True:
                    z = buf.find(0)
                    if z < 0:
                        break
                    frame = bytes(buf[: z + 1])
                    del buf[: z + 1]
                    out.extend(self._fault(frame, to_board=fd == self._host))
                if len(buf) > 8192:  # garbage with no delimiter: pass it on as it is
                    out.append(bytes(buf))
                    buf.clear()
                try:
                    for f in out:
                        self._write_all(dest[fd], f)
                except OSError:
                    return

    def inject_garbage(self, data: bytes, to_board: bool = True) -> None:
        """Write raw bytes toward the board (or toward the host)."""
        with self._lock:
            self.counts.garbage_bytes += len(data)
        self._write_all(self._board if to_board else self._host, data)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        for fd in self._fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds = []

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
