"""Auto-detection of connected serial boards by USB VID/PID (pyserial ``list_ports``).

Each profile with a ``[serial]`` table lists the ``(VID, PID)`` pairs its USB interface
enumerates with; a port whose ids match is reported with that board's name and default baud.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from neuroplast.boards.profile import list_profiles, load_profile
from neuroplast.errors import BoardError

__all__ = ["DetectedBoard", "usb_id_table", "detect_boards", "find_port"]


@dataclass(frozen=True)
class DetectedBoard:
    """A serial port whose USB ids match a board profile."""

    port: str
    board: str
    vid: int
    pid: int
    baud: int
    description: str
    serial_number: str | None


def usb_id_table() -> dict[tuple[int, int], list[str]]:
    """``{(vid, pid): [board names]}`` over all shipped profiles (a bridge chip may be shared)."""
    table: dict[tuple[int, int], list[str]] = {}
    for name in list_profiles():
        prof = load_profile(name)
        if prof.serial is None:
            continue
        for ids in prof.serial.usb_ids:
            table.setdefault(ids, []).append(name)
    return table


def _list_ports() -> list[Any]:
    try:
        from serial.tools import list_ports
    except ImportError as e:
        raise BoardError(
            "serial auto-detection needs pyserial: pip install 'neuroplast[serial]'"
        ) from e
    return list(list_ports.comports())


def detect_boards(board: str | None = None) -> list[DetectedBoard]:
    """Connected ports whose USB ids match a profile (only ``board``'s when given).

    A generic USB-UART bridge (e.g. CP2102) shared by several profiles yields one entry per
    candidate board, in profile-name order.
    """
    if board is not None:
        load_profile(board)  # raises BoardError for an unknown name
    table = usb_id_table()
    found: list[DetectedBoard] = []
    for p in _list_ports():
        vid, pid = getattr(p, "vid", None), getattr(p, "pid", None)
        if vid is None or pid is None:
            continue
        for name in table.get((int(vid), int(pid)), []):
            if board is not None and name != board:
                continue
            prof = load_profile(name)
            found.append(
                DetectedBoard(
                    port=p.device,
                    board=name,
                    vid=int(vid),
                    pid=int(pid),
                    baud=prof.serial.baud if prof.serial else 115200,
                    description=str(getattr(p, "description", "") or ""),
                    serial_number=getattr(p, "serial_number", None),
                )
            )
    return sorted(found, key=lambda d: (d.port, d.board))


def find_port(board: str) -> DetectedBoard:
    """The one connected port of ``board``; BoardError if none or several match."""
    hits = detect_boards(board)
    if not hits:
        prof = load_profile(board)
        ids = ", ".join(f"{v:04X}:{p:04X}" for v, p in (prof.serial.usb_ids if prof.serial else ()))
        raise BoardError(
            f"no connected {board} found (looked for USB ids {ids or 'none'}); "
            "check the cable and permissions (dialout group), or pass --port"
        )
    ports = sorted({h.port for h in hits})
    if len(ports) > 1:
        raise BoardError(f"several {board} boards connected ({', '.join(ports)}); pass --port")
    return hits[0]
