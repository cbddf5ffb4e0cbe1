"""``neuroplast serve``: run a bundle on a stream with on-device learning and periodic,
atomic state saves. Also runnable without typer as ``python -m neuroplast.boards.stream``
(what the systemd unit written by deploy calls).

Sources (one input step per record; the record must hold ``prod(input shape)`` numbers):

- ``-`` / ``stdin``: text lines of whitespace- or comma-separated numbers;
- a ``.npy`` file, or a directory of them (sorted by name): ``(T, *shape)`` or ``(*shape)``;
- ``udp://HOST:PORT``: one datagram per step, either raw little-endian float32 or a text line;
  HOST must be a loopback address unless ``allow_remote=True``;
- ``serial://DEVICE?baud=N``: text lines as for stdin (pyserial).

For every step, one JSON line ``{"step": n, "output": [...]}`` (or ``"argmax"``) goes to
``out``. With ``state_dir``, the runtime state is saved atomically (temp file, fsync, rename,
by :meth:`Runtime.save_state`) to ``state_dir/state.npz`` every ``save_every_steps`` steps
or ``save_every_s`` seconds, and once more at the end (EOF, ``max_steps``, SIGTERM, SIGINT);
at start an existing state file is loaded, so a restarted service resumes learning.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qs, urlparse

import numpy as np

from neuroplast.errors import BoardError, DataError, NeuroplastError

__all__ = ["ServeStats", "serve", "iter_source", "main", "STATE_FILE"]

STATE_FILE = "state.npz"


@dataclass(frozen=True)
class ServeStats:
    """Summary of a :func:`serve` run."""

    steps: int
    saves: int
    resumed: bool
    state_path: str | None
    stopped_by: str


def _parse_text(line: str, size: int, where: str) -> np.ndarray:
    parts = line.replace(",", " ").split()
    try:
        a = np.array([float(p) for p in parts], dtype=np.float32)
    except ValueError as e:
        raise DataError(f"{where}: not a list of numbers ({e})") from None
    if a.size != size:
        raise DataError(f"{where}: got {a.size} numbers, the model input needs {size}")
    return a


def _iter_lines(f: IO[str], size: int, name: str, stop: threading.Event) -> Iterator[np.ndarray]:
    for i, line in enumerate(f, 1):
        if stop.is_set():
            return
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        yield _parse_text(line, size, f"{name} line {i}")


def _iter_npy(path: Path, shape: tuple[int, ...], stop: threading.Event) -> Iterator[np.ndarray]:
    files = sorted(path.glob("*.npy")) if path.is_dir() else [path]
    if not files:
        raise DataError(f"no .npy files in {path}")
    for f in files:
        try:
            a = np.load(f, allow_pickle=False)
        except (OSError, ValueError, EOFError) as e:
            raise DataError(f"{f}: not a readable .npy file ({e})") from None
        if tuple(a.shape) == shape:
            a = a[None]
        elif tuple(a.shape[1:]) != shape:
            raise DataError(f"{f}: shape {a.shape}, expected {shape} or (T, *{shape})")
        if a.dtype.kind not in "biuf":
            raise DataError(f"{f}: dtype {a.dtype} is not numeric")
        for row in a:
            if stop.is_set():
                return
            yield np.asarray(row, dtype=np.float32)


def _iter_udp(
    url: str, size: int, stop: threading.Event, allow_remote: bool, ready: threading.Event | None
) -> Iterator[np.ndarray]:
    u = urlparse(url)
    host, port = u.hostname or "127.0.0.1", u.port
    if port is None:
        raise BoardError(f"{url}: UDP source needs a port, e.g. udp://127.0.0.1:9750")
    try:
        is_loop = ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
    except (OSError, ValueError) as e:
        raise BoardError(f"{url}: cannot resolve {host} ({e})") from None
    if not is_loop and not allow_remote:
        raise BoardError(f"{url}: refusing to listen on non-loopback {host} without allow_remote")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise BoardError(f"{url}: cannot bind UDP port ({e.strerror})") from None
    sock.settimeout(0.2)  # wake up regularly to notice stop requests
    if ready is not None:
        ready.set()
    n = 0
    try:
        while not stop.is_set():
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            n += 1
            if len(data) == 4 * size:
                yield np.frombuffer(data, dtype="<f4").astype(np.float32)
            else:
                yield _parse_text(data.decode("utf-8", "replace"), size, f"{url} datagram {n}")
    finally:
        sock.close()


def _iter_serial(
    url: str, size: int, stop: threading.Event, ready: threading.Event | None
) -> Iterator[np.ndarray]:
    try:
        import serial
    except ImportError as e:
        raise BoardError("serial sources need pyserial: pip install 'neuroplast[serial]'") from e
    u = urlparse(url)
    dev = u.path or u.netloc
    baud = int(parse_qs(u.query).get("baud", ["115200"])[0])
    try:
        port = serial.Serial(dev, baudrate=baud, timeout=0.2)
    except serial.SerialException as e:
        raise BoardError(f"{url}: cannot open serial port {dev} ({e})") from None
    if ready is not None:  # opening flushes the input buffer: send only after this
        ready.set()
    buf = b""
    n = 0
    try:
        while not stop.is_set():
            chunk = port.readline()
            if not chunk:
                continue
            buf += chunk
            if not buf.endswith(b"\n"):
                continue
            line, buf = buf.decode("utf-8", "replace").strip(), b""
            n += 1
            if line:
                yield _parse_text(line, size, f"{dev} line {n}")
    finally:
        port.close()


def iter_source(
    source: str,
    shape: tuple[int, ...],
    *,
    stop: threading.Event | None = None,
    stdin: IO[str] | None = None,
    allow_remote: bool = False,
    ready: threading.Event | None = None,
) -> Iterator[np.ndarray]:
    """Input steps from ``source`` (see the module docstring), each reshaped to ``shape``."""
    stop = stop or threading.Event()
    size = int(np.prod(shape))
    if source in ("-", "stdin"):
        it: Iterator[np.ndarray] = _iter_lines(stdin or sys.stdin, size, "stdin", stop)
    elif source.startswith("udp://"):
        it = _iter_udp(source, size, stop, allow_remote, ready)
    elif source.startswith("serial://"):
        it = _iter_serial(source, size, stop, ready)
    else:
        p = Path(source)
        if not p.exists():
            raise BoardError(f"stream source not found: {source}")
        if p.is_file() and p.suffix != ".npy":
            with open(p, encoding="utf-8") as f:
                yield from (a.reshape(shape) for a in _iter_lines(f, size, str(p), stop))
            return
        it = _iter_npy(p, tuple(shape), stop)
    if ready is not None and not source.startswith(("udp://", "serial://")):
        ready.set()
    for a in it:
        yield a.reshape(shape)


def _emit(out: IO[str], step: int, y: Any, emit: str) -> None:
    if emit == "none":
        return
    if isinstance(y, dict):
        flat = np.concatenate([np.asarray(y[k]).ravel() for k in sorted(y)])
    else:
        flat = np.asarray(y).ravel()
    rec: dict[str, Any] = {"step": step}
    if emit == "argmax":
        rec["argmax"] = int(np.argmax(flat)) if flat.size else -1
    else:
        rec["output"] = [float(v) for v in flat]
    out.write(json.dumps(rec) + "\n")
    out.flush()


def serve(
    bundle: str | os.PathLike,
    source: str = "-",
    *,
    learn: bool = True,
    state_dir: str | os.PathLike | None = None,
    save_every_steps: int | None = None,
    save_every_s: float | None = 60.0,
    max_steps: int | None = None,
    emit: str = "output",
    out: IO[str] | None = None,
    stdin: IO[str] | None = None,
    mode: str | None = None,
    stop: threading.Event | None = None,
    ready: threading.Event | None = None,
    allow_remote: bool = False,
    handle_signals: bool = False,
    plugins: list[str] | None = None,
) -> ServeStats:
    """Run ``bundle`` on ``source`` until EOF, ``max_steps`` or ``stop``; see the module doc.

    ``plugins``: modules to import before loading (they register an app's node kinds).
    """
    import neuroplast
    from neuroplast.boards.plugins import import_plugins

    import_plugins(plugins)

    if emit not in ("output", "argmax", "none"):
        raise BoardError(f"emit must be 'output', 'argmax' or 'none', got {emit!r}")
    if save_every_steps is not None and save_every_steps <= 0:
        raise BoardError(f"save_every_steps must be > 0, got {save_every_steps}")
    if save_every_s is not None and save_every_s <= 0:
        raise BoardError(f"save_every_s must be > 0, got {save_every_s}")
    out = out or sys.stdout
    stop = stop or threading.Event()
    rt = neuroplast.load(os.fspath(bundle), mode=mode)
    if len(rt.inputs) != 1:
        raise BoardError(f"serve streams one input; this bundle has {len(rt.inputs)}")
    shape = tuple(rt.shapes[rt.inputs[0]])
    rt.learn(learn)
    state_path: Path | None = None
    resumed = False
    if state_dir is not None:
        sd = Path(state_dir)
        sd.mkdir(parents=True, exist_ok=True)
        state_path = sd / STATE_FILE
        if state_path.exists():
            rt.load_state(state_path)  # RuntimeStateError names a corrupt/mismatched file
            resumed = True
    prev_handlers: dict[int, Any] = {}
    stopped_by = ["eof"]
    if handle_signals:

        def _on_signal(signum: int, _frame: Any) -> None:
            stopped_by[0] = signal.Signals(signum).name
            stop.set()

        for s in (signal.SIGTERM, signal.SIGINT):
            prev_handlers[s] = signal.signal(s, _on_signal)
    steps = saves = 0
    last_save = time.monotonic()

    def save() -> None:
        nonlocal saves, last_save
        if state_path is not None:
            rt.save_state(state_path)
            saves += 1
            last_save = time.monotonic()

    src = iter_source(source, shape, stop=stop, stdin=stdin, allow_remote=allow_remote, ready=ready)
    try:
        for x in src:
            y = rt.step(x)
            steps += 1
            _emit(out, rt.steps, y, emit)
            if state_path is not None:
                due_steps = save_every_steps is not None and steps % save_every_steps == 0
                due_time = save_every_s is not None and time.monotonic() - last_save >= save_every_s
                if due_steps or due_time:
                    save()
            if max_steps is not None and steps >= max_steps:
                stopped_by[0] = "max_steps"
                break
            if stop.is_set():
                if stopped_by[0] == "eof":
                    stopped_by[0] = "stop"
                break
        else:
            if stop.is_set() and stopped_by[0] == "eof":
                stopped_by[0] = "stop"
    finally:
        src.close()  # releases the UDP socket / serial port now, not at garbage collection
        # The final save also runs on errors in the stream, so learned state is never lost.
        if state_path is not None and steps:
            save()
        for s, h in prev_handlers.items():
            signal.signal(s, h)
    return ServeStats(
        steps=steps,
        saves=saves,
        resumed=resumed,
        state_path=str(state_path) if state_path else None,
        stopped_by=stopped_by[0],
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m neuroplast.boards.stream", description=__doc__)
    ap.add_argument("bundle")
    ap.add_argument("--source", default="-")
    ap.add_argument("--state-dir", default=None)
    ap.add_argument("--save-every-steps", type=int, default=None)
    ap.add_argument("--save-every-s", type=float, default=60.0)
    ap.add_argument("--max-steps", type=int, default=None)
    ap.add_argument("--emit", choices=("output", "argmax", "none"), default="output")
    ap.add_argument("--mode", choices=("float", "int"), default=None)
    ap.add_argument("--no-learn", action="store_true")
    ap.add_argument("--allow-remote", action="store_true")
    ap.add_argument("--plugin", action="append", default=[], help="module to import first")
    args = ap.parse_args(argv)
    ready = threading.Event()

    def announce() -> None:
        # one stderr line once the source is open (UDP bound), for logs and supervisors
        if ready.wait():
            print(f"serving {args.bundle} from {args.source}", file=sys.stderr, flush=True)

    threading.Thread(target=announce, daemon=True).start()
    try:
        stats = serve(
            args.bundle,
            args.source,
            learn=not args.no_learn,
            state_dir=args.state_dir,
            save_every_steps=args.save_every_steps,
            save_every_s=args.save_every_s,
            max_steps=args.max_steps,
            emit=args.emit,
            mode=args.mode,
            allow_remote=args.allow_remote,
            handle_signals=True,
            ready=ready,
            plugins=args.plugin,
        )
    except NeuroplastError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(
        f"served {stats.steps} steps, {stats.saves} state saves, stopped by {stats.stopped_by}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
