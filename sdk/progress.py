"""Progress of long commands, on stderr: a live bar on a terminal, plain lines elsewhere.

A bar that redraws with carriage returns turns a log file (CI, ``nohup``, a pipe) into
hundreds of frames; off a terminal :class:`Progress` prints one line per update instead,
at most one every ``every_s`` seconds (0: every update, e.g. once per epoch) plus the last.
The live bar needs rich; without it (a device install) the plain lines are used.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

__all__ = ["Progress", "interactive"]


def interactive(stream: TextIO | None = None) -> bool:
    """True when ``stream`` (default stderr) is a terminal a bar can redraw."""
    s = stream or sys.stderr
    return bool(getattr(s, "isatty", lambda: False)())


class Progress:
    """``with Progress("training", total=12, every_s=0) as p: p.update(epoch + 1, "val 0.91")``.

    ``total=None`` for work of unknown size. ``stream`` defaults to stderr, so that a
    command's results on stdout (``--json``) stay machine-readable.
    """

    def __init__(
        self,
        description: str,
        total: float | None = None,
        *,
        every_s: float = 10.0,
        stream: TextIO | None = None,
        live: bool | None = None,
    ) -> None:
        self.description, self.total, self.every_s = description, total, every_s
        self.stream = stream or sys.stderr
        self.live = interactive(self.stream) if live is None else live
        self._bar: Any = None
        self._last = float("-inf")
        self._done: float = 0

    def __enter__(self) -> Progress:
        if self.live:
            try:
                from rich.console import Console
                from rich.progress import Progress as RichProgress
            except ImportError:
                self.live = False
            else:
                self._bar = RichProgress(console=Console(file=self.stream), transient=True)
                self._bar.start()
                self._task = self._bar.add_task(self.description, total=self.total)
        return self

    def update(self, completed: float, note: str = "", total: float | None = None) -> None:
        """``completed`` units done (absolute), with an optional note (``"loss 0.31"``)."""
        if total is not None:
            self.total = total
        self._done = completed
        if self._bar is not None:
            desc = f"{self.description} {note}".strip()
            self._bar.update(self._task, completed=completed, total=self.total, description=desc)
            return
        now = time.monotonic()
        last = self.total is not None and completed >= self.total
        if last or now - self._last >= self.every_s:
            self._last = now
            of = f"/{self.total:g}" if self.total is not None else ""
            self.stream.write(
                f"{self.description}: {completed:g}{of}{'  ' + note if note else ''}\n"
            )
            self.stream.flush()

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.stop()
