"""``neuroplast serve``: run a bundle as a device service on a stream, with on-device
learning and periodic, atomic state saves. Also runnable without typer as
``python -m neuroplast.boards.stream`` (what the systemd unit written by deploy calls).

Sources (one input step per message; a step holds ``prod(input shape)`` numbers):

- ``-`` / ``stdin``: lines (format ``text``) or ``4 n``-byte records (``f32``);
- a ``.npy`` file, or a folder of them (sorted by name): ``(T, *shape)`` or ``(*shape)``;
  any other file: text lines;
- ``udp://HOST:PORT``: one datagram per step (``f32`` by default); HOST must be a loopback
  address unless ``allow_remote``;
- ``serial://DEVICE?baud=N``: text lines (pyserial);
- ``mqtt://HOST:PORT/PREFIX`` or ``mqtts://`` (TLS): messages on ``PREFIX/in`` (``f32`` by
  default); outputs on ``PREFIX/out``, counters on ``PREFIX/status`` (see
  :mod:`neuroplast.boards.mqtt`).

Message formats are explicit (:mod:`neuroplast.boards.frames`): ``fmt="text"`` or ``"f32"``,
each source with its default, so text is never read as floats or the reverse.

**Never dies on input.** A reader thread takes messages from the source into a bounded
queue (``queue_size``); the step loop decodes and runs them. A message that cannot be used
(malformed, wrong size, NaN/Inf after the float32 cast, a line longer than ``max_line``,
a bad or replayed authenticated frame) is counted under ``rejected`` with its reason,
logged (at most 5 lines per 10 s, then a count of the rest) and skipped. Line sources
(stdin, serial, files) wait when the queue is full; UDP and MQTT messages are then
dropped and counted. Counters (:class:`Counters`), with ``received = dropped + rejected
+ processed + errors + pending``:

- ``received``: messages taken from the source; ``dropped``: discarded because the queue
  was full; ``dropped_kernel``: UDP datagrams the kernel dropped because the socket buffer
  was full (Linux ``/proc/net/udp``; the buffer is sized by ``rcvbuf``);
- ``rejected`` (+ ``reasons``), ``processed`` (steps run), ``learned`` (steps that ran the
  plasticity rules), ``inference_only`` (steps from an unauthenticated source while
  learning is on), ``errors`` (steps that failed inside the runtime), ``pending``
  (received but still queued when serve stopped, e.g. at ``max_steps``).

A message whose step leaves non-finite outputs or neuron state (a finite float32 input can
still overflow inside the network) is rejected as ``nonfinite``: the neuron state is reset,
and weights a learning step made non-finite are restored from the last good copy.

They are logged as one JSON line every ``status_every_s`` seconds, published on the MQTT
status topic, and returned in :class:`ServeStats`. serve stops on EOF, ``max_steps``,
``stop``/SIGTERM/SIGINT, a failed transport (serial port gone), or 100 runtime errors in
a row.

**Learning only from authenticated input.** stdin, files and serial ports are the local
operator's: trusted. UDP datagrams are trusted only as HMAC frames (``hmac_key``, with a
replay counter persisted in ``state_dir``); MQTT messages as HMAC frames when a key is
set, else when the connection is authenticated (username or client certificate; the
broker's ACL decides who may publish). Untrusted messages run inference with learning
off (``unauthenticated="infer"``) or are rejected (``"reject"``). See docs/security.md.

**State.** With ``state_dir``, the runtime state is saved atomically (temp file, fsync,
rename) to ``state_dir/state.npz`` every ``save_every_steps`` steps or ``save_every_s``
seconds, and once more at the end. At start, temp files left by an interrupted save are
removed, and an existing state file is loaded so a restarted service resumes learning; a
state file that cannot be loaded is moved aside (``state.npz.bad-TIME``, the 3 newest
kept), a warning is logged, and serve starts from the bundle's weights (no crash loop).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import queue
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qs, urlparse

import numpy as np

from neuroplast.boards.frames import (
    FORMATS,
    HEADER_BYTES,
    Authenticator,
    RejectedMessage,
    decode_payload,
    load_key,
)
from neuroplast.errors import BoardError, DataError, NeuroplastError, RuntimeStateError

__all__ = ["Counters", "ServeStats", "serve", "main", "STATE_FILE", "COUNTER_FILE"]

STATE_FILE = "state.npz"
COUNTER_FILE = "auth_counter"  # last accepted HMAC frame counter (replay protection)
_KEEP_BAD = 3
_MAX_ERRORS_IN_A_ROW = 100
_POLL_S = 0.2  # how often blocked loops look at the stop flag


@dataclass
class Counters:
    """What happened to the messages of one serve run (see the module docstring)."""

    received: int = 0
    dropped: int = 0
    dropped_kernel: int = 0
    rejected: int = 0
    processed: int = 0
    learned: int = 0
    inference_only: int = 0
    errors: int = 0
    pending: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def reject(self, reason: str) -> None:
        self.rejected += 1
        self.reasons[reason] = self.reasons.get(reason, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["reasons"] = dict(sorted(self.reasons.items()))
        return d


@dataclass(frozen=True)
class ServeStats:
    """Summary of a :func:`serve` run."""

    steps: int
    saves: int
    resumed: bool
    state_path: str | None
    stopped_by: str
    counters: dict[str, Any] = field(default_factory=dict)
    state_fallback: str | None = None


class _RateLimitedLog:
    """At most ``burst`` lines per ``window`` seconds; the rest are counted and summarized."""

    def __init__(self, log: Callable[[str], None], burst: int = 5, window: float = 10.0) -> None:
        self.log, self.burst, self.window = log, burst, window
        self.t0, self.n, self.suppressed = time.monotonic(), 0, 0

    def __call__(self, msg: str) -> None:
        now = time.monotonic()
        if now - self.t0 >= self.window:
            self.flush()
            self.t0, self.n = now, 0
        if self.n < self.burst:
            self.n += 1
            self.log(msg)
        else:
            self.suppressed += 1

    def flush(self) -> None:
        if self.suppressed:
            self.log(f"... {self.suppressed} more bad messages not logged")
            self.suppressed = 0


# ------------------------------------------------------------------ sources
class _Inbox:
    """The bounded queue between a reader thread and the step loop."""

    def __init__(self, size: int, counters: Counters, block: bool, halt: threading.Event) -> None:
        self.q: queue.Queue = queue.Queue(maxsize=size)
        self.counters, self.block, self.halt = counters, block, halt
        # received and its outcome are counted together: the final tally (close) never sees
        # a message counted as received but not yet as queued, dropped or pending
        self._lock = threading.Lock()
        self._closed = False

    def put(self, item: Any, where: str) -> None:
        """One received message (bytes, an array, or a RejectedMessage) from ``where``."""
        with self._lock:
            if self._closed:  # after the final tally: never taken from the source
                return
            self.counters.received += 1
            item = (item, where)
            if not self.block:
                try:
                    self.q.put_nowait(item)
                except queue.Full:
                    self.counters.dropped += 1
                return
            if not self.put_control(item):  # serve is stopping: still accounted for
                self.counters.pending += 1

    def close(self) -> int:
        """Stop taking messages; the number still queued (counted as pending)."""
        self.halt.set()
        with self._lock:  # a put blocked on a full queue returns within _POLL_S of halt
            self._closed = True
            return _drain(self.q)

    def put_control(self, item: Any) -> bool:
        """Wait for room (back-pressure) until serve stops; whether ``item`` was queued."""
        while not self.halt.is_set():
            try:
                self.q.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False


class _End:
    """End of the source (EOF), or its failure (``error``)."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


def _read_lines(f: IO, inbox: _Inbox, halt: threading.Event, max_line: int, name: str) -> None:
    """Lines of ``f`` (text or binary) into ``inbox``; a line over ``max_line`` characters is
    read in bounded pieces, skipped and counted, so memory stays bounded."""
    n = 0
    while not halt.is_set():
        line = f.readline(max_line + 1)
        if not line:
            return
        n += 1
        nl = "\n" if isinstance(line, str) else b"\n"
        if len(line) > max_line and not line.endswith(nl):
            while (more := f.readline(max_line + 1)) and not more.endswith(nl):
                pass
            inbox.put(
                RejectedMessage("oversize", f"longer than {max_line} bytes"), f"{name} line {n}"
            )
            continue
        text = line.strip()
        if not text or text[:1] in ("#", b"#"):
            continue
        inbox.put(text.encode() if isinstance(text, str) else text, f"{name} line {n}")


def _read_records(f: IO[bytes], inbox: _Inbox, halt: threading.Event, size: int, name: str) -> None:
    n = 0
    while not halt.is_set():
        rec = f.read(4 * size)
        if not rec:
            return
        n += 1
        if len(rec) < 4 * size:
            inbox.put(
                RejectedMessage("format", f"truncated: {len(rec)} bytes"), f"{name} record {n}"
            )
            return
        inbox.put(rec, f"{name} record {n}")


def _read_npy(path: Path, shape: tuple[int, ...], inbox: _Inbox, halt: threading.Event) -> None:
    from neuroplast.arrayfile import load_array

    files = sorted(path.glob("*.npy")) if path.is_dir() else [path]
    if not files:
        raise BoardError(f"no .npy files in {path}")
    for f in files:
        try:
            a = load_array(f)
            if tuple(a.shape) == shape:
                a = a[None]
            elif tuple(a.shape[1:]) != shape:
                raise DataError(f"{f}: shape {a.shape}, expected {shape} or (T, *{shape})")
        except DataError as e:
            inbox.put(RejectedMessage("file", str(e)), str(f))
            continue
        for i, row in enumerate(a):
            if halt.is_set():
                return
            inbox.put(np.asarray(row), f"{f} row {i}")


def _udp_kernel_drops(sock: socket.socket) -> int | None:
    """Datagrams the kernel dropped for ``sock`` (receive buffer full), from /proc/net/udp."""
    try:
        inode = str(os.fstat(sock.fileno()).st_ino)
        for table in ("/proc/net/udp", "/proc/net/udp6"):
            with open(table) as f:
                for line in f.readlines()[1:]:
                    cols = line.split()
                    if len(cols) >= 13 and cols[9] == inode:
                        return int(cols[12])
    except (OSError, ValueError):
        pass
    return None


def _open_udp(url: str, allow_remote: bool, rcvbuf: int) -> socket.socket:
    u = urlparse(url)
    host = u.hostname or "127.0.0.1"
    try:
        port = u.port
    except ValueError:
        port = None
    if port is None:
        raise BoardError(f"{url}: UDP source needs a port, e.g. udp://127.0.0.1:9750")
    try:
        is_loop = ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
    except (OSError, ValueError) as e:
        raise BoardError(f"{url}: cannot resolve {host} ({e})") from None
    if not is_loop and not allow_remote:
        raise BoardError(f"{url}: refusing to listen on non-loopback {host} without allow_remote")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for opt in (getattr(socket, "SO_RCVBUFFORCE", 33), socket.SO_RCVBUF):
        try:  # FORCE passes net.core.rmem_max when privileged; else the kernel caps it
            sock.setsockopt(socket.SOL_SOCKET, opt, int(rcvbuf))
            break
        except OSError:
            continue
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise BoardError(f"{url}: cannot bind UDP port ({e.strerror})") from None
    sock.settimeout(_POLL_S)
    return sock


def _udp_reader(sock: socket.socket, inbox: _Inbox, halt: threading.Event, max_msg: int) -> None:
    n = 0
    while not halt.is_set():
        try:
            data, addr = sock.recvfrom(65536)
        except TimeoutError:
            continue
        n += 1
        where = f"datagram {n} from {addr[0]}:{addr[1]}"
        if len(data) > max_msg:
            inbox.put(RejectedMessage("oversize", f"{len(data)} bytes (max {max_msg})"), where)
        else:
            inbox.put(data, where)


def _serial_reader(
    port: Any, inbox: _Inbox, halt: threading.Event, max_line: int, name: str
) -> None:
    buf, n, skipping = b"", 0, False
    while not halt.is_set():
        chunk = port.read_until(b"\n", max_line + 1 - len(buf))
        if not chunk:
            continue
        buf += chunk
        if not buf.endswith(b"\n"):
            if len(buf) > max_line:  # too long: drop what we have, skip to the newline
                buf, skipping = b"", True
            continue
        line, buf = buf.strip(), b""
        if skipping:
            skipping = False
            n += 1
            inbox.put(
                RejectedMessage("oversize", f"longer than {max_line} bytes"), f"{name} line {n}"
            )
        elif line:
            n += 1
            inbox.put(line, f"{name} line {n}")


@dataclass
class _Opened:
    """An open source: ``read`` runs in the reader thread; ``trusted``: may teach."""

    read: Callable[[], None]
    close: Callable[[], None]
    trusted: bool
    fmt: str
    kernel_drops: Callable[[], int | None] = lambda: None
    mqtt: Any = None


def _open_source(
    source: str,
    shape: tuple[int, ...],
    inbox: _Inbox,
    halt: threading.Event,
    *,
    fmt: str | None,
    stdin: IO | None,
    allow_remote: bool,
    max_line: int,
    rcvbuf: int,
    key: bytes | None,
    mqtt: Any,
    log: Callable[[str], None],
) -> _Opened:
    size = int(np.prod(shape))
    nothing: Callable[[], None] = lambda: None  # noqa: E731
    if source in ("-", "stdin"):
        # bytes, where there are any: invalid UTF-8 is then one rejected line, not an error
        f = getattr(stdin or sys.stdin, "buffer", stdin or sys.stdin)
        fmt = fmt or "text"
        if fmt == "f32":
            return _Opened(lambda: _read_records(f, inbox, halt, size, "stdin"), nothing, True, fmt)
        return _Opened(lambda: _read_lines(f, inbox, halt, max_line, "stdin"), nothing, True, fmt)
    if source.startswith("udp://"):
        inbox.block = False
        sock = _open_udp(source, allow_remote, rcvbuf)
        max_msg = HEADER_BYTES + max(4 * size, max_line)
        return _Opened(
            lambda: _udp_reader(sock, inbox, halt, max_msg),
            sock.close,
            False,
            fmt or "f32",
            kernel_drops=lambda: _udp_kernel_drops(sock),
        )
    if source.startswith("serial://"):
        return _open_serial(source, inbox, halt, max_line, fmt or "text")
    if source.startswith(("mqtt://", "mqtts://")):
        from neuroplast.boards.mqtt import MqttLink, MqttOptions

        inbox.block = False
        count = iter(range(1, 1 << 62))
        link = MqttLink(
            source,
            mqtt or MqttOptions(),
            lambda b: inbox.put(b, f"MQTT message {next(count)}"),
            allow_remote=allow_remote,
            log=log,
        )
        return _Opened(
            halt.wait, link.close, link.authenticated and key is None, fmt or "f32", mqtt=link
        )
    p = Path(source)
    if not p.exists():
        raise BoardError(f"stream source not found: {source}")
    if p.is_file() and p.suffix != ".npy":
        fh = open(p, "rb")  # noqa: SIM115 - closed by the returned closer
        return _Opened(
            lambda: _read_lines(fh, inbox, halt, max_line, str(p)), fh.close, True, fmt or "text"
        )
    return _Opened(lambda: _read_npy(p, tuple(shape), inbox, halt), nothing, True, "array")


def _open_serial(
    url: str, inbox: _Inbox, halt: threading.Event, max_line: int, fmt: str
) -> _Opened:
    try:
        import serial
    except ImportError as e:
        raise BoardError("serial sources need pyserial: pip install 'neuroplast[serial]'") from e
    u = urlparse(url)
    dev = u.path or u.netloc
    try:
        baud = int(parse_qs(u.query).get("baud", ["115200"])[0])
    except ValueError:
        raise BoardError(f"{url}: baud must be an integer") from None
    try:
        port = serial.Serial(dev, baudrate=baud, timeout=_POLL_S)
    except (serial.SerialException, ValueError) as e:
        raise BoardError(f"{url}: cannot open serial port {dev} ({e})") from None
    return _Opened(lambda: _serial_reader(port, inbox, halt, max_line, dev), port.close, True, fmt)


def _finite(tree: Any) -> bool:
    """Every float array in a nested dict/tuple of arrays is finite."""
    if isinstance(tree, dict):
        return all(_finite(v) for v in tree.values())
    if isinstance(tree, (tuple, list)):
        return all(_finite(v) for v in tree)
    a = np.asarray(tree)
    return a.dtype.kind != "f" or bool(np.isfinite(a).all())


def _drain(q: queue.Queue) -> int:
    """Empty ``q``; the number of messages (not control items) it held."""
    n = 0
    while True:
        try:
            n += isinstance(q.get_nowait(), tuple)
        except queue.Empty:
            return n


# ------------------------------------------------------------------ state files
def _clean_temp(sd: Path, log: Callable[[str], None]) -> None:
    """Remove temp files an interrupted atomic save left (``.state.npz.*.tmp``)."""
    left = [
        p
        for name in (STATE_FILE, COUNTER_FILE)
        for p in sd.glob(f".{name}.*.tmp")
        if p.is_file() and not p.is_symlink()
    ]
    for p in left:
        p.unlink(missing_ok=True)
    if left:
        log(f"removed {len(left)} temp file(s) left by an interrupted save in {sd}")


def _move_aside(path: Path) -> Path:
    bad = path.with_name(f"{path.name}.bad-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}")
    os.replace(path, bad)
    olds = sorted(path.parent.glob(f"{path.name}.bad-*"), key=lambda p: p.stat().st_mtime)
    for old in olds[:-_KEEP_BAD]:
        old.unlink(missing_ok=True)
    return bad


def _resume(
    rt: Any, state_path: Path | None, load: Callable[[], Any], auth: Any, log: Callable
) -> tuple[Any, bool, str | None]:
    """Prepare the state folder (temp files of an interrupted save removed), resume the saved
    state and replay counter; a state that does not load is moved aside and the bundle's
    weights are used. Returns (runtime, resumed, why the state was not usable)."""
    if state_path is None:
        return rt, False, None
    state_path.parent.mkdir(parents=True, exist_ok=True)
    _clean_temp(state_path.parent, log)
    if auth is not None:
        auth.last = _read_counter(state_path.parent / COUNTER_FILE)
    if not state_path.exists():
        return rt, False, None
    try:
        rt.load_state(state_path)
        return rt, True, None
    except RuntimeStateError as e:
        bad = _move_aside(state_path)
        log(f"warning: {e}; starting from the bundle's weights, bad file kept as {bad}")
        return load(), False, str(e)


def _read_counter(path: Path) -> int:
    try:
        return int(path.read_text().strip() or 0) if path.is_file() else 0
    except (OSError, ValueError):
        return 0


def _emit(out: IO[str], step: int, y: Any, emit: str) -> dict[str, Any] | None:
    if emit == "none":
        return None
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
    return rec


# ------------------------------------------------------------------ the service
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
    stdin: IO | None = None,
    mode: str | None = None,
    stop: threading.Event | None = None,
    ready: threading.Event | None = None,
    allow_remote: bool = False,
    handle_signals: bool = False,
    plugins: list[str] | None = None,
    fmt: str | None = None,
    hmac_key: bytes | str | os.PathLike | None = None,
    unauthenticated: str = "infer",
    mqtt: Any = None,
    queue_size: int = 1024,
    max_line: int | None = None,
    rcvbuf: int = 4 << 20,
    status_every_s: float | None = 10.0,
    log: Callable[[str], None] | None = None,
    guard: bool = True,
    guard_every: int = 500,
    guard_holdout: int = 64,
    guard_max_drop: float = 0.05,
) -> ServeStats:
    """Run ``bundle`` on ``source`` until EOF, ``max_steps`` or ``stop``; see the module doc.

    ``plugins``: modules to import before loading (they register an app's node kinds).
    ``fmt``: ``"text"`` or ``"f32"`` (default: the source's). ``hmac_key``: key bytes or a
    key file (see :func:`neuroplast.boards.frames.load_key`). ``mqtt``: a
    :class:`~neuroplast.boards.mqtt.MqttOptions`. ``log``: where warnings, bad-message
    lines and status lines go (default: stderr).

    ``guard`` (on by default when the bundle learns): the first ``guard_holdout``
    trusted messages run inference only and become the check set of a
    :class:`~neuroplast.plasticity.LearningGuard`
    (:func:`~neuroplast.plasticity.cli.agreement_check`); then every ``guard_every``
    learning steps, learning that drops the check more than ``guard_max_drop`` below
    its baseline is rolled back. Decisions go to ``log`` and into the saved state.
    """
    import neuroplast
    from neuroplast.boards.plugins import import_plugins

    import_plugins(plugins)
    if emit not in ("output", "argmax", "none"):
        raise BoardError(f"emit must be 'output', 'argmax' or 'none', got {emit!r}")
    if fmt is not None and fmt not in FORMATS:
        raise BoardError(f"format must be one of {FORMATS}, got {fmt!r}")
    if unauthenticated not in ("infer", "reject"):
        raise BoardError(f"unauthenticated must be 'infer' or 'reject', got {unauthenticated!r}")
    for name, v in (("save_every_steps", save_every_steps), ("save_every_s", save_every_s),
                    ("status_every_s", status_every_s), ("max_line", max_line)):  # fmt: skip
        if v is not None and v <= 0:
            raise BoardError(f"{name} must be > 0, got {v}")
    if queue_size < 1:
        raise BoardError(f"queue_size must be >= 1, got {queue_size}")
    if guard and (guard_every < 1 or guard_holdout < 1 or not 0 <= guard_max_drop < 1e9):
        raise BoardError("guard_every and guard_holdout must be >= 1, guard_max_drop >= 0")
    log = log or (lambda m: print(m, file=sys.stderr, flush=True))
    key = hmac_key if isinstance(hmac_key, (bytes, type(None))) else load_key(hmac_key)
    auth = Authenticator(key) if key is not None else None
    out = out or sys.stdout
    stop = stop or threading.Event()

    def load() -> Any:
        return neuroplast.load(os.fspath(bundle), mode=mode)

    rt = load()
    if len(rt.inputs) != 1:
        raise BoardError(f"serve streams one input; this bundle has {len(rt.inputs)}")
    shape = tuple(rt.shapes[rt.inputs[0]])
    state_path = None if state_dir is None else Path(state_dir) / STATE_FILE
    rt, resumed, fallback = _resume(rt, state_path, load, auth, log)
    counters = Counters()
    halt = threading.Event()
    inbox = _Inbox(queue_size, counters, block=True, halt=halt)
    size = int(np.prod(shape))
    opened = _open_source(
        source, shape, inbox, halt, fmt=fmt, stdin=stdin, allow_remote=allow_remote,
        max_line=max_line or max(4096, 24 * size + 256), rcvbuf=rcvbuf, key=key, mqtt=mqtt,
        log=log,
    )  # fmt: skip
    has_rules = getattr(rt.plasticity, "has_rules", lambda: True)
    if learn and not opened.trusted and auth is None and has_rules():
        log(
            f"warning: {source} is not an authenticated source: its messages run inference "
            "only; learning needs an HMAC key (UDP, MQTT) or an authenticated MQTT login"
        )
    server = _Server(
        rt, shape, counters, opened, auth, learn=learn, unauthenticated=unauthenticated,
        emit=emit, out=out, log=log,
    )  # fmt: skip
    if guard and learn and has_rules():
        server.guard_plan = (guard_every, guard_holdout, guard_max_drop)
    prev_handlers: dict[int, Any] = {}
    stopped_by = "eof"
    if handle_signals:

        def _on_signal(signum: int, _frame: Any) -> None:
            server.signal = signal.Signals(signum).name
            stop.set()

        for s in (signal.SIGTERM, signal.SIGINT):
            prev_handlers[s] = signal.signal(s, _on_signal)
    saves = 0
    last_save = last_status = time.monotonic()

    def save() -> None:
        nonlocal saves, last_save
        last_save = time.monotonic()
        if state_path is None:
            return
        from neuroplast.runtime.runtime import atomic_write_bytes

        server.snapshot_params()
        try:
            server.rt.save_state(state_path)
            if auth is not None:
                atomic_write_bytes(state_path.parent / COUNTER_FILE, f"{auth.last}\n".encode())
            saves += 1
        except OSError as e:  # disk full, read-only: keep serving, say so
            log(f"warning: saving the state to {state_path} failed ({e.strerror or e})")

    def reader() -> None:
        try:
            opened.read()
            inbox.put_control(_End())
        except BaseException as e:  # noqa: BLE001 - handed to the step loop, which raises it
            inbox.put_control(_End(e))

    threading.Thread(target=reader, name="neuroplast-serve-reader", daemon=True).start()
    if ready is not None:
        ready.set()
    steps_at_save = 0
    try:
        while True:
            if stop.is_set():
                stopped_by = server.signal or "stop"
                break
            try:
                item = inbox.q.get(timeout=_POLL_S)
            except queue.Empty:
                item = None
            if isinstance(item, _End):
                if item.error is not None:
                    e = item.error
                    raise (
                        e
                        if isinstance(e, NeuroplastError)
                        else BoardError(f"source {source} failed: {type(e).__name__}: {e}")
                    )
                break
            if item is not None:
                server.handle(*item)
            now = time.monotonic()
            done = counters.processed
            if state_path is not None and done > steps_at_save:
                due_steps = save_every_steps is not None and done % save_every_steps == 0
                due_time = save_every_s is not None and now - last_save >= save_every_s
                if due_steps or due_time:
                    save()
                    steps_at_save = done
            if status_every_s is not None and now - last_status >= status_every_s:
                server.status()
                last_status = now
            if max_steps is not None and done >= max_steps:
                stopped_by = "max_steps"
                break
    finally:
        counters.pending += inbox.close()
        server.update_kernel_drops()
        # the final save also runs when the stream fails, so learned state is never lost
        if state_path is not None and counters.processed > steps_at_save:
            save()
        server.status(final=True)
        opened.close()
        for s, h in prev_handlers.items():
            signal.signal(s, h)
    return ServeStats(
        steps=counters.processed,
        saves=saves,
        resumed=resumed,
        state_path=str(state_path) if state_path else None,
        stopped_by=stopped_by,
        counters=counters.as_dict(),
        state_fallback=fallback,
    )


class _Server:
    """The step loop's per-message work: authenticate, decode, gate learning, step, emit."""

    def __init__(
        self,
        rt: Any,
        shape: tuple[int, ...],
        counters: Counters,
        opened: _Opened,
        auth: Authenticator | None,
        *,
        learn: bool,
        unauthenticated: str,
        emit: str,
        out: IO[str],
        log: Callable[[str], None],
    ) -> None:
        self.rt, self.shape, self.counters, self.opened, self.auth = (
            rt,
            shape,
            counters,
            opened,
            auth,
        )
        self.size = int(np.prod(shape))
        self.learn, self.unauthenticated, self.emit, self.out = learn, unauthenticated, emit, out
        self.log, self.bad = log, _RateLimitedLog(log)
        self.signal: str | None = None
        self.errors_in_a_row = 0
        self.good: dict[str, dict[str, np.ndarray]] = {}
        self.snapshot_params()
        self.guard_plan: tuple[int, int, float] | None = None  # (every, holdout, max_drop)
        self.guard: Any = None
        self.held: list[np.ndarray] = []

    def _guarded(self, x: np.ndarray, teach: bool) -> bool:
        """Hold the first trusted messages out of learning as the guard's check set;
        once there are enough, start the guard. Returns whether this step teaches."""
        if not teach or self.guard_plan is None or self.guard is not None:
            return teach
        every, holdout, max_drop = self.guard_plan
        self.held.append(np.array(x, copy=True))
        if len(self.held) < holdout:
            return False
        from neuroplast.plasticity import LearningGuard
        from neuroplast.plasticity.cli import agreement_check

        check = agreement_check(np.stack(self.held))
        self.guard = LearningGuard(self.rt, check, every=every, max_drop=max_drop, report=self.log)
        self.log(f"guard: {holdout} messages held out; checking every {every} learning steps")
        return False

    def _decode(self, item: Any) -> tuple[np.ndarray, bool]:
        if isinstance(item, RejectedMessage):
            raise item
        trusted = self.opened.trusted
        if isinstance(item, np.ndarray):  # a row of an .npy file
            if item.size != self.size:
                raise RejectedMessage("format", f"array of {item.size} values, need {self.size}")
            return item.reshape(self.shape), trusted
        payload = item
        if self.auth is not None:
            payload, ok = self.auth.open(payload)
            trusted = trusted or ok
        return decode_payload(payload, self.opened.fmt, self.size).reshape(self.shape), trusted

    def handle(self, item: Any, where: str) -> None:
        c = self.counters
        try:
            x, trusted = self._decode(item)
            if not trusted and self.unauthenticated == "reject":
                raise RejectedMessage("unauthenticated", "unauthenticated message refused")
            teach = self._guarded(x, self.learn and trusted)
            self.rt.learn(teach)
            step = self.guard.step if teach and self.guard is not None else self.rt.step
            with np.errstate(over="ignore", invalid="ignore"):  # checked below, not printed
                y = step(x)
        except RejectedMessage as e:
            c.reject(e.reason)
            self.bad(f"rejected {where} ({e.reason}): {e}")
            return
        except NeuroplastError as e:  # the runtime's own input checks: NaN/Inf, range
            c.reject("value")
            self.bad(f"rejected {where} (value): {e}")
            return
        except Exception as e:  # noqa: BLE001 - a runtime bug must not kill the service
            c.errors += 1
            self.errors_in_a_row += 1
            self.bad(f"error: step on {where} failed: {type(e).__name__}: {e}")
            if self.errors_in_a_row >= _MAX_ERRORS_IN_A_ROW:
                raise BoardError(
                    f"the runtime failed on {self.errors_in_a_row} messages in a row "
                    f"(last: {type(e).__name__}: {e})"
                ) from e
            return
        self.errors_in_a_row = 0
        bad_weights = teach and not _finite(self.rt.params)
        if bad_weights or not (_finite(y) and _finite(self.rt.state)):
            # a float32-finite input can still overflow inside the network (3e38 * w): never
            # let one message leave NaN membranes (or, when learning, NaN weights) behind
            self.rt.reset(self.rt.batch)
            if bad_weights:
                self._restore_params()
            c.reject("nonfinite")
            self.bad(f"rejected {where} (nonfinite): the network overflowed; state reset")
            return
        c.processed += 1
        c.learned += int(teach)
        c.inference_only += int(self.learn and not trusted)
        try:
            rec = _emit(self.out, self.rt.steps, y, self.emit)
        except (BrokenPipeError, ValueError):  # the output's reader went away: keep serving
            self.emit = "none"
            self.log("warning: output stream closed; outputs are no longer written")
            rec = None
        if rec is not None and self.opened.mqtt is not None:
            self.opened.mqtt.publish_output(rec)

    def snapshot_params(self) -> None:
        """Keep a copy of finite weights to fall back on (at start and at every save)."""
        if _finite(self.rt.params):
            self.good = {n: {k: v.copy() for k, v in p.items()} for n, p in self.rt.params.items()}

    def _restore_params(self) -> None:
        for n, p in self.good.items():
            for k, v in p.items():
                self.rt.params[n][k][...] = v
        self.log("warning: learning produced non-finite weights; restored the last good ones")

    def update_kernel_drops(self) -> None:
        n = self.opened.kernel_drops()
        if n is not None:
            self.counters.dropped_kernel = n

    def status(self, final: bool = False) -> None:
        self.update_kernel_drops()
        self.bad.flush()
        d = self.counters.as_dict()
        self.log(json.dumps({"final" if final else "status": d}))
        if self.opened.mqtt is not None:
            try:
                self.opened.mqtt.publish_status(d, online=not final, wait=2.0 if final else 0.0)
            except Exception as e:  # noqa: BLE001 - status is best effort; never stop serving
                self.log(f"warning: MQTT status publish failed ({e})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m neuroplast.boards.stream", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("bundle")
    ap.add_argument("--source", "-s", default="-")
    ap.add_argument("--format", dest="fmt", choices=FORMATS, default=None)
    ap.add_argument("--state-dir", default=None)
    ap.add_argument("--save-every-steps", type=int, default=None)
    ap.add_argument("--save-every-s", type=float, default=60.0)
    ap.add_argument("--max-steps", type=int, default=None)
    ap.add_argument("--emit", choices=("output", "argmax", "none"), default="output")
    ap.add_argument("--mode", choices=("float", "int"), default=None)
    ap.add_argument("--no-learn", action="store_true")
    ap.add_argument("--no-guard", action="store_true", help="no held-out guard on learning")
    ap.add_argument("--guard-every", type=int, default=500)
    ap.add_argument("--guard-holdout", type=int, default=64)
    ap.add_argument("--allow-remote", action="store_true")
    ap.add_argument("--hmac-key-file", default=None, help="key for authenticated frames")
    ap.add_argument("--unauthenticated", choices=("infer", "reject"), default="infer")
    ap.add_argument("--status-every-s", type=float, default=10.0)
    ap.add_argument("--queue-size", type=int, default=1024)
    ap.add_argument("--rcvbuf", type=int, default=4 << 20, help="UDP socket buffer (bytes)")
    ap.add_argument("--mqtt-username", default=None)
    ap.add_argument("--mqtt-password-file", default=None)
    ap.add_argument("--mqtt-ca", default=None)
    ap.add_argument("--mqtt-cert", default=None)
    ap.add_argument("--mqtt-key", default=None)
    ap.add_argument("--plugin", action="append", default=[], help="module to import first")
    args = ap.parse_args(argv)
    ready = threading.Event()

    def announce() -> None:
        # one stderr line once the source is open (UDP bound, MQTT subscribed), for logs
        if ready.wait():
            print(f"serving {args.bundle} from {args.source}", file=sys.stderr, flush=True)

    threading.Thread(target=announce, daemon=True).start()
    try:
        stats = serve(
            args.bundle,
            args.source,
            learn=not args.no_learn,
            guard=not args.no_guard,
            guard_every=args.guard_every,
            guard_holdout=args.guard_holdout,
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
            fmt=args.fmt,
            hmac_key=args.hmac_key_file,
            unauthenticated=args.unauthenticated,
            mqtt=mqtt_options(
                username=args.mqtt_username,
                password_file=args.mqtt_password_file,
                ca_file=args.mqtt_ca,
                cert_file=args.mqtt_cert,
                key_file=args.mqtt_key,
            ),
            queue_size=args.queue_size,
            rcvbuf=args.rcvbuf,
            status_every_s=args.status_every_s,
        )
    except NeuroplastError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(
        f"served {stats.steps} steps, {stats.saves} state saves, stopped by {stats.stopped_by}",
        file=sys.stderr,
    )
    return 0


def mqtt_options(**given: str | os.PathLike | None) -> Any:
    """:class:`~neuroplast.boards.mqtt.MqttOptions` from the given fields (``username``,
    ``password_file``, ``ca_file``, ``cert_file``, ``key_file``), None when all are None."""
    vals = {k: (None if v is None else str(v) if k != "username" else v) for k, v in given.items()}
    if not any(vals.values()):
        return None
    from neuroplast.boards.mqtt import MqttOptions

    return MqttOptions(**vals)


if __name__ == "__main__":
    sys.exit(main())
