"""Build the C reference firmware and run it as a virtual board on a pseudo-terminal.

``build_firmware()`` compiles ``firmware/`` with the system C compiler (``cc``, C99,
``-Wall -Wextra -Werror``) into the user cache (``~/.cache/neuroplast/firmware/<hash>``,
the hash covering the sources, flags and compiler), never into the source tree;
``VirtualBoard`` starts it, reads the pty path it prints, and stops it.
"""

from __future__ import annotations

import hashlib
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from neuroplast.firmware_bridge.errors import FirmwareBuildError

__all__ = [
    "PtyBoardProcess",
    "firmware_dir",
    "cache_dir",
    "compile_cached",
    "build_firmware",
    "VirtualBoard",
    "CORE_SOURCES",
]

CORE_SOURCES = ("np_link.c", "np_kernels.c", "np_model.c", "np_board.c")
WARN = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]
SAN = [
    "-O1",
    "-g",
    "-fsanitize=address,undefined",
    "-fno-sanitize-recover=all",
    "-fno-omit-frame-pointer",
]


def firmware_dir() -> Path:
    """Folder holding the C sources."""
    return Path(__file__).resolve().parent / "firmware"


def _compiler() -> str:
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cc:
        raise FirmwareBuildError("no C compiler found: install gcc or clang, or set CC")
    return cc


def cache_dir() -> Path:
    """Where firmware builds go: ``$NEUROPLAST_CACHE`` or ``~/.cache/neuroplast`` (XDG)."""
    if os.environ.get("NEUROPLAST_CACHE"):
        return Path(os.environ["NEUROPLAST_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "neuroplast"


def _digest(files: list[Path], *words: str) -> str:
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    h.update("\0".join(words).encode())
    return h.hexdigest()[:16]


def compile_cached(
    exe_name: str, cmd_prefix: list[str], sources: list[Path], headers: list[Path],
    out_dir: str | Path | None = None, force: bool = False,
) -> Path:  # fmt: skip
    """Run ``cmd_prefix -o OUT sources`` into ``<cache>/firmware/<hash>/exe_name`` unless
    a build with the same sources, headers and command exists; return OUT."""
    key = _digest([*sources, *headers], *cmd_prefix)
    build = Path(out_dir) if out_dir else cache_dir() / "firmware" / key
    exe = build / exe_name
    if exe.exists() and not force:
        return exe
    build.mkdir(parents=True, exist_ok=True)
    # compile to a temp name and rename: concurrent test workers never see half a binary
    fd, tmp = tempfile.mkstemp(prefix=f".{exe_name}.", dir=build)
    os.close(fd)
    cmd = [*cmd_prefix, "-o", tmp, *map(str, sources)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as e:
        _unlink(tmp)
        raise FirmwareBuildError(f"could not run the compiler: {e}") from None
    if proc.returncode != 0:
        _unlink(tmp)  # (the compiler may have removed it already)
        raise FirmwareBuildError(f"firmware build failed ({' '.join(cmd)}):\n{proc.stderr[-4000:]}")
    os.chmod(tmp, 0o755)
    os.replace(tmp, exe)
    return exe


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def build_firmware(
    target: str = "virtual", force: bool = False, out_dir: str | Path | None = None
) -> Path:
    """Compile a host firmware target and return the executable's path.

    ``target``: ``"virtual"`` (POSIX pty board, -O2), ``"virtual_asan"`` (same with
    AddressSanitizer+UBSan) or ``"fuzz_asan"`` (the frame/image fuzzer). The build is
    cached by content (see :func:`compile_cached`); ``force`` rebuilds.
    """
    src = firmware_dir()
    names = {
        "virtual": ("np_virtual_board", ["hal_posix.c"], ["-O2"]),
        "virtual_asan": (
            "np_virtual_board_asan",
            ["hal_posix.c"],
            SAN + ["-DNP_ARENA_MAX=262144u", "-DNP_STAGING_MAX=65536u"],
        ),
        "fuzz_asan": ("np_fuzz_asan", ["fuzz_frames.c"], SAN),
    }
    if target not in names:
        raise FirmwareBuildError(f"unknown firmware target {target!r}; choose from {sorted(names)}")
    exe_name, extra, flags = names[target]
    sources = [src / f for f in (*CORE_SOURCES, *extra)]
    return compile_cached(exe_name, [_compiler(), *WARN, *flags], sources,
                          sorted(src.glob("*.h")), out_dir, force)  # fmt: skip


class PtyBoardProcess:
    """A board process that serves its link on a pseudo-terminal and prints the pty path.

    Subclasses give :meth:`command` (the argv) and :meth:`parse_port` (the pty path from
    one line of its output, or None). Use as a context manager; ``port`` is the pty path
    to open with pyserial. The process ends when :meth:`stop` is called or, as a safety
    net, when the Python process that started it dies.
    """

    start_timeout = 10.0
    what = "board process"

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.port: str | None = None
        self.returncode: int | None = None
        self.stderr_output = ""  # what the process printed on stderr (e.g. sanitizer reports)

    def command(self) -> list[str]:
        raise NotImplementedError

    def parse_port(self, line: str) -> str | None:
        raise NotImplementedError

    def _popen(self, cmd: list[str]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            preexec_fn=_die_with_parent,
        )  # fmt: skip

    def start(self) -> PtyBoardProcess:
        self.proc = self._popen(self.command())
        deadline = time.monotonic() + self.start_timeout
        assert self.proc.stdout is not None
        line = b""
        while True:
            left = deadline - time.monotonic()
            r, _, _ = select.select([self.proc.stdout], [], [], max(left, 0))
            if not r:
                self.stop()
                raise FirmwareBuildError(f"{self.what} did not print its pty path in time")
            ch = os.read(self.proc.stdout.fileno(), 1)
            if not ch:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                self.stop()
                raise FirmwareBuildError(f"{self.what} exited at start: {err.strip()}")
            line += ch
            if ch == b"\n":
                try:
                    port = self.parse_port(line.decode(errors="replace"))
                except FirmwareBuildError:
                    self.stop()
                    raise
                if port:
                    self.port = port
                    return self
                line = b""

    def stop(self) -> int | None:
        """Stop the process (closing its stdin, then SIGTERM, then SIGKILL); return its exit code."""
        p, self.proc = self.proc, None
        if p is None:
            return None
        try:
            if p.stdin:
                p.stdin.close()
            try:
                self.returncode = p.wait(timeout=self._grace())
            except subprocess.TimeoutExpired:
                p.terminate()
                try:
                    self.returncode = p.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    p.kill()
                    self.returncode = p.wait()
            if p.stderr:
                self.stderr_output = p.stderr.read().decode(errors="replace")
            return self.returncode
        finally:
            for s in (p.stdout, p.stderr):
                if s:
                    s.close()

    def _grace(self) -> float:
        """Seconds the process gets to exit by itself once its stdin is closed."""
        return 5.0

    def __enter__(self) -> PtyBoardProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the child gets SIGTERM when the parent dies (no orphaned board processes)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - best effort; stop() is the real way out
        pass


class VirtualBoard(PtyBoardProcess):
    """The C firmware built for this host, running as a process that serves a pty.

    ``baud`` > 0 makes the firmware emulate that UART line rate (10 bits per byte);
    ``arena``/``staging`` set its memory (bytes) to mimic a smaller board.
    """

    what = "virtual board"

    def __init__(
        self,
        baud: int = 0,
        arena: int | None = None,
        staging: int | None = None,
        asan: bool = False,
        start_timeout: float = 10.0,
    ) -> None:
        super().__init__()
        self.baud = int(baud)
        self.arena = arena
        self.staging = staging
        self.asan = asan
        self.start_timeout = start_timeout

    def command(self) -> list[str]:
        exe = build_firmware("virtual_asan" if self.asan else "virtual")
        cmd = [str(exe), "--watch-stdin", "--baud", str(self.baud)]
        if self.arena is not None:
            cmd += ["--arena", str(int(self.arena))]
        if self.staging is not None:
            cmd += ["--staging", str(int(self.staging))]
        return cmd

    def parse_port(self, line: str) -> str | None:
        parts = line.split()
        if len(parts) != 2 or parts[0] != "NP_VIRTUAL_BOARD":
            raise FirmwareBuildError(f"unexpected start line from the virtual board: {line!r}")
        return parts[1]
