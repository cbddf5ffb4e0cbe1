"""Reading arrays from untrusted files: ``.npy``, ``.npz`` (one named array, or all) and
raw little-endian binary, with every size checked *before* anything is allocated.

This is the one reader behind ``--input`` files of every command, ``serve``'s ``.npy``
sources, bundle ``weights.npz``/``state.npz`` and :meth:`Runtime.load_state`.

Bounds (:class:`ReadLimits`, all in bytes of *decompressed* data):

- ``file_bytes``: one file, or one archive member at any nesting level;
- ``total_bytes``: everything decompressed from one source, all nesting levels together
  (a :class:`Budget` carries the running total across an archive inside an archive);
- ``ratio``: decompressed / compressed size of a deflated member larger than
  ``ratio_floor`` (a zip bomb compresses ~1000:1 per level; real weights rarely 20:1);
- ``entries``: members of one archive.

Nothing is unpickled: object dtypes are refused, ``allow_pickle`` is never set. Every
failure is a :class:`~neuroplast.errors.DataError` whose message starts with what was
being read (the file name, or ``archive: member``).
"""

from __future__ import annotations

import io
import os
import threading
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neuroplast.errors import DataError

__all__ = [
    "ReadLimits",
    "Budget",
    "parse_npy",
    "read_npz",
    "npz_bytes",
    "save_npz",
    "load_array",
    "RAW_DTYPE",
]

RAW_DTYPE = "<f4"  # raw files: little-endian float32, as serve's binary frames
_MAX_HEADER = 1 << 16
# numpy parses .npy headers with ast.literal_eval, and CPython 3.11's ast keeps its
# recursion depth in per-interpreter state: two threads parsing at once can fail with
# "AST constructor recursion depth mismatch" (python/cpython#106905; seen in a fleet
# rollout loading bundles from worker threads), so a valid file read as corrupt
_HEADER_LOCK = threading.Lock()


@dataclass(frozen=True)
class ReadLimits:
    """Size bounds of one read (bytes of decompressed data; see the module docstring)."""

    file_bytes: int = 1 << 30
    total_bytes: int = 2 << 30
    ratio: float = 200.0
    ratio_floor: int = 1 << 20
    entries: int = 100_000


class Budget:
    """Running total of bytes decompressed from one source, over all nesting levels."""

    def __init__(self, limit: int, what: str) -> None:
        self.limit, self.what, self.used = int(limit), what, 0

    def take(self, n: int, what: str) -> None:
        """Account ``n`` more bytes for ``what``; DataError once the total would pass the limit."""
        if self.used + n > self.limit:
            raise DataError(
                f"{what}: {n} more bytes would take {self.what} past its decompressed budget of "
                f"{self.limit} bytes ({self.used} used)"
            )
        self.used += n


def parse_npy(raw: bytes | bytearray, what: str) -> np.ndarray:
    """An array from ``.npy`` bytes: header checked (dtype, shape, byte count) before anything
    is allocated. A ``bytearray`` becomes the array's own buffer (no copy); ``bytes`` are
    copied once, so the result is always writable."""
    f = io.BytesIO(memoryview(raw)[:_MAX_HEADER])  # headers of real files are < 64 kB
    try:
        version = np.lib.format.read_magic(f)
        with _HEADER_LOCK:
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version in ((2, 0), (3, 0)):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise ValueError(f"unsupported npy version {version}")
    except Exception as e:  # noqa: BLE001 - numpy raises ValueError/SyntaxError/etc on junk
        raise DataError(f"{what}: not a .npy array (bad header: {e})") from None
    if dtype.hasobject or dtype.kind not in "biufcUS":
        raise DataError(f"{what}: dtype {dtype} is not allowed (no objects/pickles)")
    if any((not isinstance(s, int)) or s < 0 for s in shape):
        raise DataError(f"{what}: bad shape {shape}")
    count = 1
    for s in shape:
        count *= s
    body = len(raw) - f.tell()
    if count * dtype.itemsize != body:
        raise DataError(
            f"{what}: header says {count * dtype.itemsize} bytes, file has {body} "
            "(truncated or lying header)"
        )
    arr = np.frombuffer(raw, dtype=dtype, count=count, offset=f.tell())
    arr = arr.reshape(shape[::-1]).T if fortran else arr.reshape(shape)
    return arr if arr.flags.writeable else arr.copy()


def _read_exact(f: Any, size: int) -> bytearray | None:
    """Exactly ``size`` bytes of ``f`` into one buffer, in 1 MiB pieces (no transient copy of
    the whole); None if ``f`` holds more (its size was a lie)."""
    buf = bytearray(size)
    view, off = memoryview(buf), 0
    while off < size:
        chunk = f.read(min(1 << 20, size - off))
        if not chunk:
            return buf[:off]
        view[off : off + len(chunk)] = chunk
        off += len(chunk)
    return None if f.read(1) else buf


def _open_zip(src: bytes | Path, what: str) -> zipfile.ZipFile:
    if isinstance(src, Path) and not src.is_file():
        raise DataError(f"{what}: {'a folder, not a file' if src.is_dir() else 'no such file'}")
    try:
        return zipfile.ZipFile(io.BytesIO(src) if isinstance(src, (bytes, bytearray)) else src)
    except Exception as e:  # noqa: BLE001 - zipfile raises assorted types on garbage
        raise DataError(f"{what}: not a valid npz archive ({e})") from None


def read_npz(
    src: bytes | str | os.PathLike,
    what: str,
    limits: ReadLimits = ReadLimits(),
    *,
    budget: Budget | None = None,
    names: Iterable[str] | None = None,
    unlisted: str = "error",
) -> dict[str, np.ndarray]:
    """Arrays of an ``.npz`` (bytes or a path), each member checked from its directory entry
    (size, compression ratio, the shared ``budget``) before it is decompressed.

    ``names``: the arrays wanted (all when None); a wanted one that is missing is an error.
    ``unlisted``: what an array outside ``names`` gets: ``"error"`` (a bundle's arrays the
    graph never uses) or ``"skip"`` (left compressed, never read).
    """
    budget = budget or Budget(limits.total_bytes, what)
    zf = _open_zip(src if isinstance(src, (bytes, bytearray)) else Path(src), what)
    with zf:
        try:
            infos = zf.infolist()
        except Exception as e:  # noqa: BLE001
            raise DataError(f"{what}: unreadable npz directory ({e})") from None
        if len(infos) > limits.entries:
            raise DataError(f"{what}: {len(infos)} arrays, over the limit of {limits.entries}")
        wanted = None if names is None else set(names)
        seen: set[str] = set()
        out: dict[str, np.ndarray] = {}
        for info in infos:
            member = info.filename
            if not member.endswith(".npy"):
                raise DataError(f"{what}: unexpected member {member!r} (an npz holds only .npy)")
            key = member[:-4]
            if key in seen:
                raise DataError(f"{what}: array {key!r} appears twice")
            seen.add(key)
            if wanted is not None and key not in wanted:
                if unlisted == "skip":
                    continue
                raise DataError(
                    f"{what}: array {key!r} is not used (unexpected arrays are refused)"
                )
            out[key] = _read_member(zf, info, f"{what}: array {key!r}", limits, budget)
        if wanted is not None and (missing := sorted(wanted - seen)):
            raise DataError(f"{what}: no array named {missing[0]!r} (has {sorted(seen)})")
    return out


def _read_member(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, what: str, limits: ReadLimits, budget: Budget
) -> np.ndarray:
    size = info.file_size
    if size > limits.file_bytes:
        raise DataError(f"{what}: {size} bytes, over the limit of {limits.file_bytes}")
    if (
        info.compress_type != zipfile.ZIP_STORED
        and size > limits.ratio_floor
        and size > limits.ratio * max(info.compress_size, 1)
    ):
        raise DataError(
            f"{what}: compression ratio {size / max(info.compress_size, 1):.0f}:1 is over the "
            f"limit of {limits.ratio:.0f}:1 (zip bomb?)"
        )
    budget.take(size, what)
    try:
        with zf.open(info) as f:  # read at most the declared size (+1 to catch lies)
            raw = _read_exact(f, size)
    except Exception as e:  # noqa: BLE001 - corrupt deflate streams raise many types
        raise DataError(f"{what}: corrupt archive member ({e})") from None
    if raw is None or len(raw) != size:
        raise DataError(f"{what}: size differs from its directory entry")
    return parse_npy(raw, what)


def _split_member(path: str | os.PathLike) -> tuple[Path, str | None]:
    """``FILE.npz:NAME`` -> (FILE.npz, NAME) when no file has the whole name."""
    p = Path(path)
    s = os.fspath(path)
    if not p.exists() and ":" in s:
        head, _, name = s.rpartition(":")
        if head.endswith(".npz") and name:
            return Path(head), name
    return p, None


def load_array(
    path: str | os.PathLike,
    *,
    name: str | None = None,
    shape: tuple[int, ...] | None = None,
    raw_dtype: str = RAW_DTYPE,
    limits: ReadLimits = ReadLimits(),
) -> np.ndarray:
    """The one loader for input files: ``.npy``; ``.npz`` (array ``name``, or ``FILE.npz:NAME``,
    or its only array); anything else is raw ``raw_dtype`` values, which need ``shape`` (one
    step) and are returned as ``shape`` or ``(T, *shape)``. Sizes are checked before reading;
    the result has a numeric dtype (range and finiteness are the runtime's checks, after its
    cast). Raises DataError naming the file.
    """
    p, member = _split_member(path)
    name = name or member
    what = str(p)
    try:
        st = p.stat()
    except OSError as e:
        raise DataError(f"{what}: cannot read input file ({e.strerror or e})") from None
    if not p.is_file():
        raise DataError(f"{what}: not a regular file")
    if st.st_size == 0:
        raise DataError(f"{what}: empty file")
    if st.st_size > limits.file_bytes:
        raise DataError(f"{what}: {st.st_size} bytes, over the input limit of {limits.file_bytes}")
    suffix = p.suffix.lower()
    if suffix == ".npz":
        arrays = read_npz(p, what, limits, names=None if name is None else [name], unlisted="skip")
        if name is None and len(arrays) != 1:
            raise DataError(
                f"{what}: holds arrays {sorted(arrays)}; name one as {what}:NAME"
                if arrays
                else f"{what}: holds no arrays"
            )
        arr = arrays[name] if name is not None else next(iter(arrays.values()))
        what = f"{what}:{name}" if name else what
    elif name is not None:
        raise DataError(f"{what}: only .npz files hold named arrays (asked for {name!r})")
    else:
        try:
            with open(p, "rb") as f:
                raw = _read_exact(f, st.st_size)
        except OSError as e:
            raise DataError(f"{what}: cannot read input file ({e.strerror or e})") from None
        if raw is None or len(raw) != st.st_size:
            raise DataError(f"{what}: the file changed while being read")
        if suffix == ".npy" or raw[:6] == b"\x93NUMPY":
            arr = parse_npy(raw, what)
        else:
            arr = _parse_raw(raw, what, shape, raw_dtype)
    if arr.dtype.kind not in "biuf":
        raise DataError(f"{what}: dtype {arr.dtype} is not numeric")
    return arr


def _parse_raw(raw: bytearray, what: str, shape: tuple[int, ...] | None, dtype: str) -> np.ndarray:
    dt = np.dtype(dtype)
    if shape is None:
        raise DataError(f"{what}: a raw input file needs the model's input shape")
    step = int(np.prod(shape)) * dt.itemsize
    if step <= 0 or len(raw) % step:
        raise DataError(
            f"{what}: {len(raw)} bytes is not a whole number of {step}-byte steps "
            f"({dt.name} values of shape {tuple(shape)}); use .npy for anything else"
        )
    arr = np.frombuffer(raw, dtype=dt).reshape((-1, *shape))  # writable: raw is a bytearray
    return arr[0] if arr.shape[0] == 1 else arr


def npz_bytes(arrays: dict[str, Any], compressed: bool = False) -> bytes:
    """``arrays`` as the bytes of an ``.npz`` archive, built in memory (what an atomic
    write or a bundle member stores)."""
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return buf.getvalue()


def save_npz(path: str | os.PathLike, arrays: dict[str, Any], compressed: bool = False) -> Path:
    """Write ``arrays`` as an ``.npz`` atomically (:func:`npz_bytes`, then
    :func:`~neuroplast.runtime.runtime.atomic_write_bytes`): a crash or Ctrl-C while a
    model is saved leaves the previous file, never a truncated one. Like ``np.savez``,
    ``.npz`` is appended to a path without it; returns the path written."""
    from neuroplast.runtime.runtime import atomic_write_bytes

    p = Path(path)
    if p.suffix != ".npz":
        p = p.with_name(p.name + ".npz")
    atomic_write_bytes(p, npz_bytes(arrays, compressed))
    return p
