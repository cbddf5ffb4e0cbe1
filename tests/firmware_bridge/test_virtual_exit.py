"""The virtual board ends on SIGTERM and on EOF of its stdin even while a reply is stuck:
a host that stops reading fills the pty, and the firmware must not block in write()."""

from __future__ import annotations

import os
import signal
import time
import tty

import pytest

from neuroplast.firmware_bridge import VirtualBoard, spec
from neuroplast.firmware_bridge.framing import Frame, encode_frame

pytestmark = pytest.mark.timeout(60)


def _stall(vb: VirtualBoard) -> int:
    """Send PINGs (2 kB echoes) without reading a reply until the board stops taking input,
    i.e. it is stuck writing a reply nobody reads. Returns the open pty fd."""
    fd = os.open(vb.port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    tty.setraw(fd)
    seq, idle, deadline = 0, 0, time.monotonic() + 20
    while idle < 10 and time.monotonic() < deadline:
        seq = (seq + 1) & 0xFFFF
        try:
            os.write(fd, encode_frame(Frame(int(spec.MsgType.PING), seq, b"x" * 2000)))
            idle = 0
        except BlockingIOError:
            idle += 1
            time.sleep(0.05)
    assert idle >= 10, "the board kept reading: it never blocked on its replies"
    return fd


@pytest.mark.parametrize("how", ["SIGTERM", "EOF"])
def test_virtual_board_exits_while_blocked_writing(firmware, how):
    vb = VirtualBoard().start()
    proc = vb.proc
    fd = _stall(vb)
    try:
        if how == "SIGTERM":
            proc.send_signal(signal.SIGTERM)
        else:
            proc.stdin.close()  # the parent went away (--watch-stdin)
        assert proc.wait(timeout=5) == 0
    finally:
        os.close(fd)
        vb.stop()
