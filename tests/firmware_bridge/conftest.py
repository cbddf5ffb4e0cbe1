"""Board fixtures: every bridge test that takes ``board`` / ``board_proc`` runs against the
x86 virtual board *and* the Cortex-M4 firmware under QEMU (one process per module each)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from neuroplast.firmware_bridge import Board, VirtualBoard, build_firmware  # noqa: E402
from neuroplast.firmware_bridge.qemu import QemuBoard  # noqa: E402

BOARD_KINDS = ("virtual", "qemu-m4")


def start_board(kind: str, **kw):
    """A board process of ``kind`` (not started): the host build, or Cortex-M4 under QEMU."""
    return VirtualBoard(**kw) if kind == "virtual" else QemuBoard("m4", **kw)


def link_timeout(kind: str) -> float:
    """Reply timeout per attempt: QEMU's UART moves a byte per I/O-loop round (~30 us)."""
    return 0.5 if kind == "virtual" else 1.0


@pytest.fixture(scope="session")
def firmware():
    return build_firmware("virtual")


@pytest.fixture(scope="module", params=BOARD_KINDS)
def board_proc(request):
    """A running board process, shared by the tests of a module."""
    with start_board(request.param) as p:
        p.kind = request.param
        yield p


@pytest.fixture
def board(board_proc):
    """A fresh session (HELLO) on the module's board, with no model loaded."""
    with Board.connect(board_proc.port, timeout=link_timeout(board_proc.kind)) as b:
        b.reset("model")
        yield b


@pytest.fixture
def vboard(firmware):
    """A virtual board of its own (for tests that change its process)."""
    with VirtualBoard() as vb:
        yield vb
