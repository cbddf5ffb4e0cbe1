"""Bundle format v1: a directory or a single zip holding

- ``manifest.json``: format name and version, the graph (arrays by reference), the
  input spec, preferred arithmetic mode, preprocessing, target board, free-form
  metadata, and ``files``: sha256 and size of every other file;
- ``weights.npz``: the graph's arrays (read with ``allow_pickle=False``, and every
  ``.npy`` header checked before any allocation);
- ``plasticity.json``: the on-device learning rules (data only, never code);
- ``state.npz`` (optional): learned state saved by the runtime.

Loading a malformed, truncated, oversized or tampered bundle raises
:class:`~neuroplast.errors.BundleError` naming the file and field. Nothing is
unpickled or executed.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from neuroplast.errors import BundleError, GraphError, NeuroplastError
from neuroplast.graph.graph import Graph

__all__ = [
    "Bundle",
    "BUNDLE_FORMAT",
    "BUNDLE_VERSION",
    "LIMITS",
    "save_bundle",
    "load_bundle",
    "load_runtime",
    "read_npz_bytes",
]

BUNDLE_FORMAT = "neuroplast-bundle"
BUNDLE_VERSION = 1
MANIFEST = "manifest.json"
WEIGHTS = "weights.npz"
PLASTICITY = "plasticity.json"
STATE = "state.npz"
KNOWN_FILES = (MANIFEST, WEIGHTS, PLASTICITY, STATE)

LIMITS = {
    "manifest_bytes": 16 << 20,
    "json_bytes": 16 << 20,
    "npz_bytes": 1 << 30,
    "npz_entries": 100_000,
    "array_bytes": 1 << 30,
    "zip_ratio": 200,  # max uncompressed/compressed ratio per member (zip bombs)
}


@dataclass
class Bundle:
    """A loaded bundle: the graph plus everything that travels with it."""

    graph: Graph
    mode: str = "float"
    plasticity: dict[str, Any] = field(default_factory=dict)
    state: dict[str, np.ndarray] | None = None
    preprocessing: dict[str, Any] = field(default_factory=dict)
    target_board: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    manifest: dict[str, Any] = field(default_factory=dict)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    return buf.getvalue()


def save_bundle(
    path: str | Path,
    graph: Graph,
    *,
    mode: str = "float",
    plasticity: Any = None,
    state: dict[str, np.ndarray] | None = None,
    preprocessing: dict[str, Any] | None = None,
    target_board: str | None = None,
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write a bundle; a path ending in ``.zip`` gives a zip, anything else a folder.

    ``plasticity`` is a PlasticityEngine, its ``to_json()`` text, or the parsed dict.
    The write is atomic for zips (temp + rename) and file-by-file for folders, with the
    manifest written last, so a crash never leaves a bundle that loads wrongly.
    """
    from neuroplast import __version__
    from neuroplast.runtime.runtime import atomic_write_bytes

    if mode not in ("float", "int"):
        raise BundleError(f"mode must be 'float' or 'int', not {mode!r}")
    arrays: dict[str, np.ndarray] = {}
    gdict = graph.to_dict(arrays)
    files: dict[str, bytes] = {WEIGHTS: _npz_bytes(arrays)}
    if hasattr(plasticity, "to_dict"):  # a PlasticityEngine
        plasticity = plasticity.to_dict()
    elif isinstance(plasticity, (str, bytes)):  # engine.to_json() text
        plasticity = _json(
            plasticity.encode() if isinstance(plasticity, str) else plasticity, PLASTICITY
        )
    try:
        files[PLASTICITY] = json.dumps(plasticity or {}, sort_keys=True, allow_nan=False).encode()
    except (TypeError, ValueError) as e:
        raise BundleError(f"plasticity must be JSON data: {e}") from e
    if state is not None:
        files[STATE] = _npz_bytes(state)
    shapes = graph.shapes()
    manifest = {
        "format": BUNDLE_FORMAT,
        "format_version": BUNDLE_VERSION,
        "created_by": f"neuroplast {__version__}",
        "mode": mode,
        "graph": gdict,
        "inputs": {
            n: {
                "shape": list(shapes[n]),
                "quant": None if graph.nodes[n].quant is None else graph.nodes[n].quant.to_dict(),
            }
            for n in graph.inputs
        },
        "outputs": list(graph.outputs),
        "preprocessing": preprocessing or {},
        "target_board": target_board,
        "meta": meta or {},
        "files": {n: {"sha256": _sha256(b), "size": len(b)} for n, b in files.items()},
    }
    try:
        files[MANIFEST] = json.dumps(manifest, indent=1, sort_keys=True, allow_nan=False).encode()
    except (TypeError, ValueError) as e:
        raise BundleError(f"preprocessing/meta must be JSON data: {e}") from e
    path = Path(path)
    if path.suffix == ".zip":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name in (WEIGHTS, PLASTICITY, STATE, MANIFEST):
                if name in files:
                    zf.writestr(name, files[name])
        atomic_write_bytes(path, buf.getvalue())
    else:
        if path.exists() and not path.is_dir():
            raise BundleError(f"{path} exists and is not a folder")
        path.mkdir(parents=True, exist_ok=True)
        if not files.get(STATE) and (path / STATE).exists():
            (path / STATE).unlink()
        for name in (WEIGHTS, PLASTICITY, STATE, MANIFEST):
            if name in files:
                atomic_write_bytes(path / name, files[name])
    return path


# ------------------------------------------------------------------- reading


class _Source:
    """Reads named members of a folder or zip bundle with size limits."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.zip: zipfile.ZipFile | None = None
        if path.is_dir():
            return
        if not path.exists():
            raise BundleError(f"bundle {str(path)!r} does not exist")
        try:
            self.zip = zipfile.ZipFile(path)
        except Exception as e:  # noqa: BLE001 - zipfile raises assorted types on garbage
            raise BundleError(
                f"bundle {str(path)!r} is neither a folder nor a valid zip: {e}"
            ) from None
        try:
            infos = self.zip.infolist()
        except Exception as e:  # noqa: BLE001 - zipfile raises assorted errors on garbage
            raise BundleError(f"bundle {str(path)!r}: unreadable zip directory: {e}") from None
        if len(infos) > 16:
            raise BundleError(
                f"bundle zip has {len(infos)} members; expected only {list(KNOWN_FILES)}"
            )
        names = [i.filename for i in infos]
        for n in names:
            if n not in KNOWN_FILES:
                raise BundleError(f"bundle zip contains unexpected member {n!r}")
        if len(set(names)) != len(names):
            raise BundleError("bundle zip contains duplicate members")
        self.infos = {i.filename: i for i in infos}

    def has(self, name: str) -> bool:
        if self.zip is not None:
            return name in self.infos
        p = self.path / name
        return p.exists() or p.is_symlink()

    def read(self, name: str, limit: int) -> bytes:
        if self.zip is not None:
            if name not in self.infos:
                raise BundleError(f"{name}: missing from the bundle")
            info = self.infos[name]
            if info.file_size > limit:
                raise BundleError(f"{name}: {info.file_size} bytes exceeds the limit of {limit}")
            if (
                info.compress_size
                and info.file_size / max(info.compress_size, 1) > LIMITS["zip_ratio"]
            ):
                raise BundleError(f"{name}: compression ratio too high (zip bomb?)")
            try:
                with self.zip.open(info) as f:  # read only the declared size (+1 to catch lies)
                    data = f.read(info.file_size + 1)
            except Exception as e:  # noqa: BLE001 - corrupt deflate streams raise many types
                raise BundleError(f"{name}: corrupt zip member: {e}") from None
        else:
            p = self.path / name
            if p.is_symlink():
                raise BundleError(f"{name}: symbolic links are not allowed in a bundle")
            if not p.is_file():
                raise BundleError(f"{name}: missing from the bundle")
            size = p.stat().st_size
            if size > limit:
                raise BundleError(f"{name}: {size} bytes exceeds the limit of {limit}")
            with open(p, "rb") as f:  # never allocate the whole limit up front
                data = f.read(size + 1)
        if len(data) > limit:
            raise BundleError(f"{name}: exceeds the limit of {limit} bytes")
        if self.zip is not None and len(data) != self.infos[name].file_size:
            raise BundleError(f"{name}: zip member size differs from its directory entry")
        return data

    def close(self) -> None:
        if self.zip is not None:
            self.zip.close()


def read_npz_bytes(data: bytes, what: str) -> dict[str, np.ndarray]:
    """Parse an ``.npz`` safely: no pickles, headers checked before allocation."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except Exception as e:  # noqa: BLE001
        raise BundleError(f"{what}: not a valid npz archive: {e}") from None
    if len(infos) > LIMITS["npz_entries"]:
        raise BundleError(f"{what}: {len(infos)} arrays exceeds the limit")
    out: dict[str, np.ndarray] = {}
    for info in infos:
        name = info.filename
        if not name.endswith(".npy"):
            raise BundleError(f"{what}: unexpected member {name!r}")
        if info.file_size > LIMITS["array_bytes"]:
            raise BundleError(f"{what}: array {name!r} is too large ({info.file_size} bytes)")
        try:
            with zf.open(info) as f:
                raw = f.read(info.file_size + 1)
        except Exception as e:  # noqa: BLE001
            raise BundleError(f"{what}: array {name!r} is corrupt: {e}") from None
        if len(raw) != info.file_size:
            raise BundleError(f"{what}: array {name!r} size differs from its directory entry")
        out[name[:-4]] = _parse_npy(raw, f"{what}: array {name[:-4]!r}")
    return out


def _parse_npy(raw: bytes, what: str) -> np.ndarray:
    f = io.BytesIO(raw)
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f"unsupported npy version {version}")
    except Exception as e:  # noqa: BLE001 - numpy raises ValueError/SyntaxError/etc on junk
        raise BundleError(f"{what}: bad .npy header: {e}") from None
    if dtype.hasobject or dtype.kind not in "biufcUS":
        raise BundleError(f"{what}: dtype {dtype} is not allowed (no objects/pickles)")
    if any((not isinstance(s, int)) or s < 0 for s in shape):
        raise BundleError(f"{what}: bad shape {shape}")
    count = 1
    for s in shape:
        count *= s
    body = raw[f.tell() :]
    if count * dtype.itemsize != len(body):
        raise BundleError(
            f"{what}: header says {count * dtype.itemsize} bytes, file has {len(body)} (truncated?)"
        )
    arr = np.frombuffer(body, dtype=dtype, count=count)
    arr = arr.reshape(shape[::-1]).T if fortran else arr.reshape(shape)
    return np.array(arr)  # own, writable copy


def _json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, ValueError) as e:
        raise BundleError(f"{what}: not valid JSON: {e}") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def load_bundle(path: str | Path) -> Bundle:
    """Read and verify a bundle (folder or zip)."""
    src = _Source(Path(path))
    try:
        return _load(src)
    finally:
        src.close()


def _field(d: dict, key: str, types: tuple, what: str, required: bool = True) -> Any:
    if key not in d:
        if required:
            raise BundleError(f"{what}: field {key!r} is missing")
        return None
    v = d[key]
    if not isinstance(v, types) or isinstance(v, bool) and bool not in types:
        raise BundleError(f"{what}: field {key!r} has type {type(v).__name__}")
    return v


def _load(src: _Source) -> Bundle:
    man = _json(src.read(MANIFEST, LIMITS["manifest_bytes"]), MANIFEST)
    if not isinstance(man, dict):
        raise BundleError(f"{MANIFEST}: top level must be an object")
    fmt = _field(man, "format", (str,), MANIFEST)
    if fmt != BUNDLE_FORMAT:
        raise BundleError(f"{MANIFEST}: field 'format' is {fmt!r}, expected {BUNDLE_FORMAT!r}")
    ver = _field(man, "format_version", (int,), MANIFEST)
    if ver != BUNDLE_VERSION:
        raise BundleError(
            f"{MANIFEST}: field 'format_version' {ver} is not supported (this reads {BUNDLE_VERSION})"
        )
    mode = _field(man, "mode", (str,), MANIFEST, required=False) or "float"
    if mode not in ("float", "int"):
        raise BundleError(f"{MANIFEST}: field 'mode' must be 'float' or 'int', got {mode!r}")
    files = _field(man, "files", (dict,), MANIFEST)
    for name, info in files.items():
        if name not in KNOWN_FILES or name == MANIFEST:
            raise BundleError(f"{MANIFEST}: field 'files' lists unknown file {name!r}")
        if (
            not isinstance(info, dict)
            or not isinstance(info.get("sha256"), str)
            or not isinstance(info.get("size"), int)
        ):
            raise BundleError(f"{MANIFEST}: field 'files.{name}' needs 'sha256' and 'size'")
    for name in (WEIGHTS, PLASTICITY):
        if name not in files:
            raise BundleError(f"{MANIFEST}: field 'files' does not list {name!r}")
    blobs: dict[str, bytes] = {}
    for name, info in files.items():
        limit = LIMITS["npz_bytes"] if name.endswith(".npz") else LIMITS["json_bytes"]
        if info["size"] < 0 or info["size"] > limit:
            raise BundleError(f"{MANIFEST}: field 'files.{name}.size' {info['size']} out of range")
        data = src.read(name, limit)
        if len(data) != info["size"]:
            raise BundleError(
                f"{name}: size {len(data)} differs from the manifest's {info['size']} (truncated?)"
            )
        if _sha256(data) != info["sha256"]:
            raise BundleError(f"{name}: sha256 does not match the manifest (corrupt or tampered)")
        blobs[name] = data
    if src.has(STATE) and STATE not in files:
        raise BundleError(f"{STATE}: present but not listed in the manifest")
    arrays = read_npz_bytes(blobs[WEIGHTS], WEIGHTS)
    gdict = _field(man, "graph", (dict,), MANIFEST)
    try:
        graph = Graph.from_dict(gdict, arrays)
    except GraphError as e:
        raise BundleError(f"{MANIFEST}: field 'graph': {e}") from None
    except RecursionError:
        raise BundleError(f"{MANIFEST}: field 'graph' is nested too deeply") from None
    plast = _json(blobs[PLASTICITY], PLASTICITY)
    if not isinstance(plast, dict):
        raise BundleError(f"{PLASTICITY}: top level must be an object")
    state = read_npz_bytes(blobs[STATE], STATE) if STATE in blobs else None
    pre = _field(man, "preprocessing", (dict,), MANIFEST, required=False) or {}
    meta = _field(man, "meta", (dict,), MANIFEST, required=False) or {}
    board = _field(man, "target_board", (str, type(None)), MANIFEST, required=False)
    return Bundle(
        graph=graph,
        mode=mode,
        plasticity=plast,
        state=state,
        preprocessing=pre,
        target_board=board,
        meta=meta,
        manifest=man,
    )


def load_runtime(path: str | Path, mode: str | None = None) -> Any:
    """Load a bundle into a ready :class:`~neuroplast.runtime.Runtime` (with its
    plasticity rules and saved state)."""
    from neuroplast.runtime.runtime import Runtime

    b = load_bundle(path)
    try:
        rt = Runtime(b.graph, mode=mode or b.mode)
    except GraphError as e:
        raise BundleError(f"{MANIFEST}: field 'graph' cannot run: {e}") from None
    rt.bundle = b
    if b.plasticity:
        from neuroplast.plasticity import PlasticityEngine

        try:
            rt.plasticity = PlasticityEngine.from_json(b.plasticity, rt)
        except NeuroplastError as e:
            raise BundleError(f"{PLASTICITY}: {e}") from None
    if b.state is not None:
        try:
            rt.load_state_dict(b.state)
        except NeuroplastError as e:
            raise BundleError(f"{STATE}: {e}") from None
    return rt
