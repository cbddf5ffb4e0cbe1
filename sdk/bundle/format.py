"""Bundle format v1: a directory or a single zip holding

- ``manifest.json``: format name and version, the graph (arrays by reference), the
  input spec, preferred arithmetic mode, preprocessing, target board, free-form
  metadata, and ``files``: sha256 and size of every other file;
- ``weights.npz``: the graph's arrays, exactly those the graph references (read by
  :mod:`neuroplast.arrayfile`: no pickles, every header and size checked before allocation);
- ``plasticity.json``: the on-device learning rules (data only, never code);
- ``state.npz`` (optional): learned state saved by the runtime.

Loading a malformed, truncated, oversized or tampered bundle raises
:class:`~neuroplast.errors.BundleError` naming the file and field. Nothing is
unpickled or executed. Limits (:data:`LIMITS`, bytes): each member and each array
inside an ``.npz`` is size- and compression-ratio-checked from its directory entry
before it is decompressed; everything decompressed, at every nesting level, counts
against one ``total_bytes`` budget; and the graph's activations plus neuron/delay
state (one batch item, from the geometry every node validated) must fit
``runtime_bytes``. Peak memory of a load is thus about ``total_bytes`` plus one array.
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

from neuroplast.arrayfile import Budget, ReadLimits, npz_bytes, read_npz
from neuroplast.errors import BundleError, DataError, GraphError, NeuroplastError
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

_READ = ReadLimits()  # the array-file bounds shared with --input files and state files
LIMITS = {
    "manifest_bytes": 16 << 20,
    "json_bytes": 16 << 20,
    "npz_bytes": 1 << 30,  # one .npz member of the bundle
    "npz_entries": _READ.entries,
    "array_bytes": _READ.file_bytes,  # one array inside an .npz
    "zip_ratio": _READ.ratio,  # decompressed/compressed of a deflated member, any level
    "ratio_floor": _READ.ratio_floor,  # members smaller than this are not ratio-checked
    "total_bytes": _READ.total_bytes,  # everything decompressed: all members, all levels
    "runtime_bytes": 1 << 30,  # activations + neuron/delay state, one batch item
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
    files: dict[str, bytes] = {WEIGHTS: npz_bytes(arrays)}
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
        files[STATE] = npz_bytes(state)
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
        atomic_write_bytes(path, _zip_bytes(files))
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


def _zip_bytes(files: dict[str, bytes]) -> bytes:
    """The zip of a bundle: members deflated, except those that would compress past the
    loader's ratio limit (a large all-zero state), which are stored, so every bundle
    written here loads."""
    stored: set[str] = set()
    while True:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name in (WEIGHTS, PLASTICITY, STATE, MANIFEST):
                if name in files:
                    ct = zipfile.ZIP_STORED if name in stored else zipfile.ZIP_DEFLATED
                    zf.writestr(name, files[name], compress_type=ct)
            too_high = {
                i.filename
                for i in zf.infolist()
                if i.file_size > LIMITS["ratio_floor"]
                and i.file_size > LIMITS["zip_ratio"] * max(i.compress_size, 1)
            } - stored
        if not too_high:
            return buf.getvalue()
        stored |= too_high


# ------------------------------------------------------------------- reading


def _limits(overrides: dict[str, int] | None) -> dict[str, int]:
    lim = dict(LIMITS)
    for k, v in (overrides or {}).items():
        if k not in LIMITS:
            raise BundleError(f"unknown bundle limit {k!r} (known: {sorted(LIMITS)})")
        lim[k] = v
    return lim


def _read_limits(lim: dict[str, int]) -> ReadLimits:
    return ReadLimits(
        file_bytes=lim["array_bytes"],
        total_bytes=lim["total_bytes"],
        ratio=lim["zip_ratio"],
        ratio_floor=lim["ratio_floor"],
        entries=lim["npz_entries"],
    )


class _Source:
    """Reads named members of a folder or zip bundle with size limits and one budget."""

    def __init__(self, path: Path, lim: dict[str, int]) -> None:
        self.path = path
        self.lim = lim
        self.budget = Budget(lim["total_bytes"], f"bundle {str(path)!r}")
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
            size = info.file_size
            if size > limit:
                raise BundleError(f"{name}: {size} bytes exceeds the limit of {limit}")
            ratio = size / max(info.compress_size, 1)
            if size > self.lim["ratio_floor"] and ratio > self.lim["zip_ratio"]:
                raise BundleError(
                    f"{name}: compression ratio {ratio:.0f}:1 is over the limit of "
                    f"{self.lim['zip_ratio']}:1 (zip bomb?)"
                )
            self._take(size, name)
            try:
                with self.zip.open(info) as f:  # read only the declared size (+1 to catch lies)
                    data = f.read(size + 1)
            except Exception as e:  # noqa: BLE001 - corrupt deflate streams raise many types
                raise BundleError(f"{name}: corrupt zip member: {e}") from None
            if len(data) != size:
                raise BundleError(f"{name}: zip member size differs from its directory entry")
            return data
        p = self.path / name
        if p.is_symlink():
            raise BundleError(f"{name}: symbolic links are not allowed in a bundle")
        if not p.is_file():
            raise BundleError(f"{name}: missing from the bundle")
        size = p.stat().st_size
        if size > limit:
            raise BundleError(f"{name}: {size} bytes exceeds the limit of {limit}")
        self._take(size, name)
        with open(p, "rb") as f:  # never allocate the whole limit up front
            data = f.read(size + 1)
        if len(data) > limit:
            raise BundleError(f"{name}: exceeds the limit of {limit} bytes")
        return data

    def npz(self, data: bytes, what: str, names: set[str] | None = None) -> dict[str, np.ndarray]:
        """Arrays of a member ``.npz``, under this bundle's budget (the nested level)."""
        try:
            return read_npz(data, what, _read_limits(self.lim), budget=self.budget, names=names)
        except DataError as e:
            raise BundleError(str(e)) from None

    def _take(self, n: int, name: str) -> None:
        try:
            self.budget.take(n, name)
        except DataError as e:
            raise BundleError(str(e)) from None

    def close(self) -> None:
        if self.zip is not None:
            self.zip.close()


def read_npz_bytes(data: bytes, what: str) -> dict[str, np.ndarray]:
    """Parse an ``.npz`` under the bundle :data:`LIMITS` (no pickles, headers and sizes
    checked before allocation); BundleError naming ``what``."""
    try:
        return read_npz(data, what, _read_limits(LIMITS))
    except DataError as e:
        raise BundleError(str(e)) from None


def _json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, ValueError) as e:
        raise BundleError(f"{what}: not valid JSON: {e}") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def load_bundle(path: str | Path, limits: dict[str, int] | None = None) -> Bundle:
    """Read and verify a bundle (folder or zip). ``limits`` overrides entries of
    :data:`LIMITS` (e.g. a smaller ``total_bytes`` on a small board)."""
    try:
        src = _Source(Path(path), _limits(limits))
        try:
            return _load(src)
        finally:
            src.close()
    except BundleError as e:  # every message names the bundle, then the file and field
        if str(path) in str(e):
            raise
        raise BundleError(f"{path}: {e}") from None


def _field(d: dict, key: str, types: tuple, what: str, required: bool = True) -> Any:
    if key not in d:
        if required:
            raise BundleError(f"{what}: field {key!r} is missing")
        return None
    v = d[key]
    if not isinstance(v, types) or isinstance(v, bool) and bool not in types:
        raise BundleError(f"{what}: field {key!r} has type {type(v).__name__}")
    return v


def _array_refs(gdict: dict) -> set[str]:
    """Keys of ``weights.npz`` the graph references (``{"$array": key}`` node fields)."""
    nodes = gdict.get("nodes")
    refs: set[str] = set()
    for nd in nodes.values() if isinstance(nodes, dict) else ():
        for v in nd.values() if isinstance(nd, dict) else ():
            if isinstance(v, dict) and isinstance(v.get("$array"), str):
                refs.add(v["$array"])
    return refs


def _check_runtime_memory(graph: Graph, limit: int) -> None:
    """Activations plus neuron/delay state of one batch item must fit ``limit`` bytes."""
    from neuroplast.graph.cost import cost

    need = sum(r.act_bytes + r.state_bytes for r in cost(graph))
    if need > limit:
        raise BundleError(
            f"{MANIFEST}: field 'graph' needs {need} bytes of activations and state per batch "
            f"item, over the runtime limit of {limit} (shapes, delays or padding too large)"
        )


def _load(src: _Source) -> Bundle:
    lim = src.lim
    man = _json(src.read(MANIFEST, lim["manifest_bytes"]), MANIFEST)
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
    gdict = _field(man, "graph", (dict,), MANIFEST)
    blobs: dict[str, bytes] = {}
    for name, info in files.items():
        limit = lim["npz_bytes"] if name.endswith(".npz") else lim["json_bytes"]
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
    del data  # the blobs dict holds the one reference, released once parsed
    if src.has(STATE) and STATE not in files:
        raise BundleError(f"{STATE}: present but not listed in the manifest")
    # only the arrays the graph references are decompressed; any other is refused
    arrays = src.npz(blobs.pop(WEIGHTS), WEIGHTS, names=_array_refs(gdict))
    try:
        graph = Graph.from_dict(gdict, arrays)
    except GraphError as e:
        raise BundleError(f"{MANIFEST}: field 'graph': {e}") from None
    except RecursionError:
        raise BundleError(f"{MANIFEST}: field 'graph' is nested too deeply") from None
    _check_runtime_memory(graph, lim["runtime_bytes"])
    plast = _json(blobs[PLASTICITY], PLASTICITY)
    if not isinstance(plast, dict):
        raise BundleError(f"{PLASTICITY}: top level must be an object")
    state = src.npz(blobs.pop(STATE), STATE) if STATE in blobs else None
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


def load_runtime(
    path: str | Path, mode: str | None = None, limits: dict[str, int] | None = None
) -> Any:
    """Load a bundle into a ready :class:`~neuroplast.runtime.Runtime` (with its
    plasticity rules and saved state); ``limits`` as for :func:`load_bundle`."""
    from neuroplast.runtime.runtime import Runtime

    b = load_bundle(path, limits)
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
