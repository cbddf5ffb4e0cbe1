"""The C firmware cross-built for Cortex-M and run under QEMU: a board with a real ISA.

:func:`build_cortex_m` compiles the same sources as the virtual board with Debian's
``arm-none-eabi-gcc`` (newlib-nano, no OS) for an Arm MPS2 FPGA image, with the bare-metal
port in ``firmware/ports/mps2`` (vector table, linker script, CMSDK UART). The ELF is
cached by content under ``~/.cache/neuroplast/firmware``. :class:`QemuBoard` runs it in
``qemu-system-arm`` with UART0 on a pseudo-terminal, like :class:`VirtualBoard`.

Cores (``core=``): ``m4`` (Cortex-M4F on ``mps2-an386``, the default), ``m7`` (Cortex-M7 on
``mps2-an500``), ``m3`` (``mps2-an385``) and ``m0plus`` (an ARMv6-M build, run on the M3 of
``mps2-an385``, which executes the same Thumb instructions: the instruction counts are
those of a Cortex-M0+ such as the RP2040's).

With ``icount=True`` QEMU runs with ``-icount shift=0`` (one instruction per virtual
nanosecond) and the board's ``STEP_CYCLES`` counter is the number of instructions its model
steps executed. QEMU is not cycle accurate; instructions are what it measures.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tty
from dataclasses import dataclass
from pathlib import Path

from neuroplast.firmware_bridge.errors import FirmwareBuildError
from neuroplast.firmware_bridge.virtual import (
    CORE_SOURCES,
    WARN,
    PtyBoardProcess,
    compile_cached,
    firmware_dir,
)

__all__ = [
    "CORES",
    "Core",
    "QemuBoard",
    "build_cortex_m",
    "elf_size",
    "ARENA_BYTES",
    "STAGING_BYTES",
]

#: Model arena and image staging buffer of the QEMU board (bytes): an MCU-sized budget
#: (a 512 KiB-RAM part), enough for the KWS model; builds for sizing pass their own.
ARENA_BYTES = 256 * 1024
STAGING_BYTES = 128 * 1024


@dataclass(frozen=True)
class Core:
    """A Cortex-M core: compiler flags and the QEMU machine that runs its code."""

    name: str
    cpu: str
    machine: str
    flags: tuple[str, ...]

    @property
    def board_name(self) -> str:
        return f"qemu-{self.machine}"


CORES: dict[str, Core] = {
    c.name: c
    for c in (
        Core("m4", "cortex-m4", "mps2-an386", ("-mfloat-abi=hard", "-mfpu=fpv4-sp-d16")),
        Core("m7", "cortex-m7", "mps2-an500", ("-mfloat-abi=hard", "-mfpu=fpv5-d16")),
        Core("m3", "cortex-m3", "mps2-an385", ()),
        Core("m0plus", "cortex-m0plus", "mps2-an385", ()),
    )
}


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if not path:
        raise FirmwareBuildError(
            f"{name} not found: install Debian's {package} (make apt installs it)"
        )
    return path


def _core(core: str) -> Core:
    if core not in CORES:
        raise FirmwareBuildError(f"unknown core {core!r}; choose from {sorted(CORES)}")
    return CORES[core]


def build_cortex_m(
    core: str = "m4",
    opt: str = "-O2",
    arena: int = ARENA_BYTES,
    staging: int = STAGING_BYTES,
    image_source: Path | None = None,
    defines: tuple[str, ...] = (),
    force: bool = False,
) -> Path:
    """Cross-compile the firmware for ``core`` (see :data:`CORES`) and return the ELF.

    ``image_source``: a ``np_model_image.c`` holding a model to load at boot (as written
    by ``neuroplast board project``); default: the empty one (models come over the link).
    """
    c = _core(core)
    gcc = _tool("arm-none-eabi-gcc", "gcc-arm-none-eabi and libnewlib-arm-none-eabi")
    src = firmware_dir()
    port = src / "ports" / "mps2"
    cmd = [
        gcc, f"-mcpu={c.cpu}", "-mthumb", *c.flags, *WARN, opt, "-ffunction-sections",
        "-fdata-sections", f"-I{src}", f"-DNP_ARENA_BYTES={int(arena)}u",
        f"-DNP_STAGING_BYTES={int(staging)}u", f'-DNP_BOARD_NAME="{c.board_name}"',
        *(f"-D{d}" for d in defines), "-nostartfiles", "--specs=nano.specs",
        "--specs=nosys.specs", "-Wl,--gc-sections", f"-T{port / 'mps2.ld'}",
    ]  # fmt: skip
    sources = [src / f for f in CORE_SOURCES] + [port / "hal_mps2.c", port / "startup.c"]
    sources.append(Path(image_source) if image_source else src / "np_model_image.c")
    headers = sorted(src.glob("*.h")) + [port / "mps2.ld"]
    return compile_cached(f"np_mps2_{core}.elf", cmd, sources, headers, force=force)


def elf_size(elf: str | Path) -> dict[str, int]:
    """``arm-none-eabi-size`` (Berkeley format) of an ELF: text, data, bss (bytes)."""
    size = _tool("arm-none-eabi-size", "binutils-arm-none-eabi")
    out = subprocess.run([size, "-B", str(elf)], capture_output=True, text=True, check=True)
    text, data, bss = (int(v) for v in out.stdout.splitlines()[1].split()[:3])
    return {"text": text, "data": data, "bss": bss}


class QemuBoard(PtyBoardProcess):
    """The firmware for a Cortex-M ``core`` running in ``qemu-system-arm``, UART0 on a pty.

    ``icount``: deterministic instruction counting (``-icount shift=0``); the board's
    STEP_CYCLES counter then counts instructions. ``arena``/``staging``: its memory.
    """

    what = "QEMU board"
    _PTY = re.compile(r"char device redirected to (\S+)")

    def __init__(
        self,
        core: str = "m4",
        icount: bool = False,
        arena: int = ARENA_BYTES,
        staging: int = STAGING_BYTES,
        start_timeout: float = 30.0,
    ) -> None:
        super().__init__()
        self.core = _core(core)
        self.icount = icount
        self.arena = arena
        self.staging = staging
        self.start_timeout = start_timeout
        self._slave: int | None = None

    def command(self) -> list[str]:
        elf = build_cortex_m(self.core.name, arena=self.arena, staging=self.staging)
        qemu = _tool("qemu-system-arm", "qemu-system-arm")
        cmd = [qemu, "-M", self.core.machine, "-nographic", "-monitor", "none",
               "-serial", "pty", "-kernel", str(elf)]  # fmt: skip
        return cmd + (["-icount", "shift=0"] if self.icount else [])

    def _popen(self, cmd: list[str]) -> subprocess.Popen[bytes]:
        # QEMU reports the pty on stderr; nothing else is read from it
        from neuroplast.firmware_bridge.virtual import _die_with_parent

        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)  # fmt: skip

    def parse_port(self, line: str) -> str | None:
        m = self._PTY.search(line)
        if not m:
            return None
        # Hold the slave open (raw) for the board's lifetime: QEMU then sees the line as
        # connected at once, and nothing the firmware writes is dropped while no host
        # has the port open (the bytes wait in the tty's queue).
        self._slave = os.open(m.group(1), os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self._slave)
        return m.group(1)

    def _grace(self) -> float:
        return 0.0  # QEMU does not watch its stdin: terminate at once

    def stop(self) -> int | None:
        rc = super().stop()
        if self._slave is not None:
            os.close(self._slave)
            self._slave = None
        return rc
