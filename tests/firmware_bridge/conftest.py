from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from neuroplast.firmware_bridge import Board, VirtualBoard, build_firmware  # noqa: E402


@pytest.fixture(scope="session")
def firmware():
    return build_firmware("virtual")


@pytest.fixture
def vboard(firmware):
    with VirtualBoard() as vb:
        yield vb


@pytest.fixture
def board(vboard):
    with Board.connect(vboard.port, timeout=0.5) as b:
        yield b
