"""Board profiles: frozen dataclasses read from one TOML data file per board.

A profile states what a target *is* (CPU, memory, accelerators, serial defaults,
neuromorphic limits) and the documented coefficients that :mod:`neuroplast.boards.fit`
turns into latency and energy estimates. Every number in the shipped TOML files cites its
datasheet figure in a comment next to it.

Profiles are validated against :data:`SCHEMA` when loaded: unknown keys, missing keys,
wrong types and out-of-range values raise :class:`~neuroplast.errors.BoardError` naming
the file and the dotted key at fault.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from neuroplast.errors import BoardError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 fallback
    try:
        import tomli as tomllib
    except ImportError:  # pragma: no cover
        tomllib = None

__all__ = [
    "fmt_bytes",
    "host_ram_bytes",
    "PROFILE_DIR",
    "KINDS",
    "BACKENDS",
    "NEURON_TYPES",
    "RUNTIME_BACKENDS",
    "CpuSpec",
    "MemorySpec",
    "SerialSpec",
    "NeuromorphicLimits",
    "CostModel",
    "FirmwareSpec",
    "BoardProfile",
    "MEASURED_FIRMWARE",
    "firmware_measurements",
    "load_profile",
    "list_profiles",
    "parse_profile",
    "profile_from_dict",
]

PROFILE_DIR = Path(__file__).resolve().parent / "profiles"
#: Footprint and instruction costs of the C firmware per Cortex-M core, measured by
#: ``bench/bench_firmware.py`` (arm-none-eabi-size, qemu-system-arm -icount shift=0).
MEASURED_FIRMWARE = PROFILE_DIR / "firmware_measured.json"

#: What a board is. ``linux``: runs Python + the numpy runtime (Pi, Jetson);
#: ``mcu``: runs the C99 firmware over a serial link; ``neuromorphic``/``sfq``: spiking
#: hardware reached through an exporter (NIR / SFQ netlist); ``host``: this machine;
#: ``virtual``: the firmware built for the host on a pseudo-terminal.
KINDS = ("linux", "mcu", "neuromorphic", "sfq", "host", "virtual")
BACKENDS = ("numpy", "onnxruntime", "tflite", "firmware", "nir", "sfq")
#: The Python runtime's two kernel backends (``Runtime.backend``): the numpy reference
#: kernels, or the compiled whole-graph plan of ``neuroplast._native``.
RUNTIME_BACKENDS = ("numpy", "native")
#: Neuron kinds of the graph IR that a neuromorphic target may list as supported.
NEURON_TYPES = ("LIF", "CubaLIF", "IF", "LI", "Threshold", "ReLU")


@dataclass(frozen=True)
class CpuSpec:
    """The processor that runs the runtime or firmware.

    ``clock_hz`` is the maximum sustained core clock (Hz); ``macs_per_cycle`` the peak
    multiply-accumulates one core issues per cycle for the runtime's data type (SIMD
    lanes x pipes).
    """

    arch: str
    core: str
    cores: int
    clock_hz: float
    macs_per_cycle: float


@dataclass(frozen=True)
class MemorySpec:
    """Memory in bytes. ``reserved_ram_bytes`` is what the OS / firmware keeps for itself.

    Usable RAM = ``ram_bytes - reserved_ram_bytes``. ``flash_bytes`` is non-volatile
    storage (QSPI flash on an MCU, eMMC/SD/NVMe on a Linux board; 0 when none).
    ``cache_bytes`` is the last-level cache one core sees (weights beyond it stream from DRAM).
    """

    ram_bytes: int
    flash_bytes: int
    reserved_ram_bytes: int
    cache_bytes: int | None = None

    @property
    def usable_ram_bytes(self) -> int:
        return self.ram_bytes - self.reserved_ram_bytes


@dataclass(frozen=True)
class SerialSpec:
    """Serial-port defaults: baud rate and the USB (VID, PID) pairs used for auto-detection."""

    baud: int
    usb_ids: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class NeuromorphicLimits:
    """Mapping limits of a spiking chip.

    A layer of ``n`` neurons needs ``ceil(n / neurons_per_core)`` cores; every neuron may
    receive at most ``fan_in`` synapses; weights are signed ``weight_bits``-bit integers;
    membrane state is ``state_bits`` wide. ``None`` means "no documented limit".
    """

    cores: int
    neurons_per_core: int
    fan_in: int
    fan_out: int | None
    weight_bits: int
    state_bits: int
    neuron_types: tuple[str, ...]
    max_inputs: int | None
    max_outputs: int | None
    on_chip_learning: bool
    total_neurons: int | None = None
    synaptic_delays: bool = False

    @property
    def max_neurons(self) -> int:
        """Neurons the chip holds: ``total_neurons`` if stated, else cores x neurons/core."""
        if self.total_neurons is not None:
            return self.total_neurons
        return self.cores * self.neurons_per_core


@dataclass(frozen=True)
class CostModel:
    """Documented per-board coefficients of the latency/energy estimate.

    Latency of one step (s)::

        t = step_overhead_s + n_nodes * op_overhead_s + macs / macs_per_s
            + synops / synops_per_s + updates / updates_per_s

    Energy of one step (J)::

        E = t * active_power_w + synops * energy_per_synop_j

    ``energy_per_synop_j`` is 0 for boards whose energy is measured as board power. The
    numpy runtime's integer path has its own (slower) ``int_macs_per_s`` and
    ``int_op_overhead_s``, and DelayLinear layers their own ``delay_macs_per_s``; they
    default to the float / dense figures. ``mem_bandwidth_Bps`` (sustained DRAM bandwidth)
    bounds dense layers whose weights stream from memory every step (roofline).
    ``step_overhead_s`` / ``int_step_overhead_s`` (default 0; int falls back to float) is a
    fixed time per step on top of the per-node one: the Python runtime's compiled plan runs
    the whole graph in one call, so its dispatch cost is per step, not per node.
    ``event_taps_per_s`` (default ``synops_per_s``) is the numpy runtime's scatter rate of
    event-driven kernels (tap updates per second: an input event adds its weights to the
    accumulators it reaches, ``synops`` of a layer whose cost handler gives ``event_macs``);
    ``int_event_taps_per_s`` that of the integer path (falls back to the float figure).
    ``int_event_chunks_per_s`` (no default) is the rate of the integer pull path's row-chunk
    updates (the motion HDDelayConv's integer mode on the compiled extension: ``synops`` of
    a layer whose cost gives ``event_unit = "chunks"``); a table without it has the estimate
    cost that layer as its scatter instead, and say so.
    """

    macs_per_s: float
    synops_per_s: float
    updates_per_s: float
    op_overhead_s: float
    active_power_w: float
    idle_power_w: float
    energy_per_synop_j: float
    int_macs_per_s: float | None = None
    int_op_overhead_s: float | None = None
    delay_macs_per_s: float | None = None
    mem_bandwidth_Bps: float | None = None
    step_overhead_s: float = 0.0
    int_step_overhead_s: float | None = None
    event_taps_per_s: float | None = None
    int_event_taps_per_s: float | None = None
    int_event_chunks_per_s: float | None = None

    def event_rate(self, mode: str) -> float:
        """Tap updates/s of an event-driven kernel's scatter on the runtime's ``mode`` path
        (int falls back to the float figure, which falls back to ``synops_per_s``)."""
        if mode == "int" and self.int_event_taps_per_s is not None:
            return self.int_event_taps_per_s
        if self.event_taps_per_s is not None:
            return self.event_taps_per_s
        return self.synops_per_s

    def step_overhead(self, mode: str) -> float:
        """Fixed time per step (s) of the runtime's ``mode`` path, besides the per-node one."""
        if mode == "int" and self.int_step_overhead_s is not None:
            return self.int_step_overhead_s
        return self.step_overhead_s

    def delay_rate(self, mode: str) -> float:
        """Synapses/s of a DelayLinear layer on the numpy runtime (a gather from the ring
        buffer per synapse, not a BLAS product); defaults to :meth:`macs_rate`."""
        if self.delay_macs_per_s is not None:
            return self.delay_macs_per_s
        return self.macs_rate(mode)

    def macs_rate(self, mode: str) -> float:
        """MAC/s of the runtime's ``mode`` path (int falls back to the float figure)."""
        if mode == "int" and self.int_macs_per_s is not None:
            return self.int_macs_per_s
        return self.macs_per_s

    def overhead(self, mode: str) -> float:
        """Per-node dispatch time (s) of the runtime's ``mode`` path."""
        if mode == "int" and self.int_op_overhead_s is not None:
            return self.int_op_overhead_s
        return self.op_overhead_s


@dataclass(frozen=True)
class FirmwareSpec:
    """Which measured build of the C firmware a board runs (``[firmware]`` table).

    ``core``: a core of :data:`MEASURED_FIRMWARE` (``m4``, ``m7``, ``m0plus``) whose flash,
    RAM and instruction costs ``fit`` uses; ``sdk_flash_bytes``: the vendor HAL / SDK code
    linked beside the firmware (an assumption: it is not measured here); ``cpi``: cycles
    per instruction turning measured instructions into time (QEMU counts instructions,
    not cycles; 1.0 unless the profile states better).
    """

    core: str
    sdk_flash_bytes: int
    cpi: float = 1.0


@lru_cache(maxsize=1)
def firmware_measurements() -> dict[str, Any]:
    """The measured firmware table (:data:`MEASURED_FIRMWARE`), keyed by core."""
    import json

    try:
        return json.loads(MEASURED_FIRMWARE.read_text())["cores"]
    except (OSError, ValueError, KeyError) as e:
        raise BoardError(
            f"{MEASURED_FIRMWARE}: unreadable ({e}); rerun bench/bench_firmware.py"
        ) from e


@dataclass(frozen=True)
class BoardProfile:
    """One target board. Build with :func:`load_profile`; never mutate."""

    name: str
    title: str
    kind: str
    cpu: CpuSpec | None
    memory: MemorySpec
    accelerators: tuple[str, ...]
    backends: tuple[str, ...]
    serial: SerialSpec | None
    neuromorphic: NeuromorphicLimits | None
    cost: CostModel
    python_runtime: bool
    firmware_bytes: int
    notes: str = ""
    source: str = ""
    firmware: FirmwareSpec | None = None
    #: ``[cost.native]`` merged over ``[cost]``: the coefficients of the compiled backend
    #: (``None`` when the profile has no such table: ``[cost]`` then serves both backends)
    cost_native: CostModel | None = None
    #: the compiled extension is installed on the board (``native_extension = true``); the
    #: ``host`` profile ignores it and asks the runtime of this process instead
    native_extension: bool = False

    @property
    def runs_python(self) -> bool:
        """True when the board runs the numpy runtime itself (deploy/serve targets)."""
        return self.python_runtime

    def cost_for(self, backend: str) -> CostModel:
        """The cost coefficients of the Python runtime's ``backend`` (``"numpy"`` or
        ``"native"``): ``[cost.native]`` (each key it omits taken from ``[cost]``) for
        ``"native"`` when the profile has that table, else ``[cost]``."""
        if backend not in RUNTIME_BACKENDS:
            raise BoardError(
                f"backend must be one of {', '.join(RUNTIME_BACKENDS)}, got {backend!r}"
            )
        if backend == "native" and self.cost_native is not None:
            return self.cost_native
        return self.cost


# --------------------------------------------------------------------------- schema
# Each entry: key -> (python types, required, check or None). A check returns an error
# string or None. Tables map to nested dicts of the same form.


def _pos(v: Any) -> str | None:
    return None if v > 0 else "must be > 0"


def _nonneg(v: Any) -> str | None:
    return None if v >= 0 else "must be >= 0"


def _one_of(options: tuple[str, ...]):
    def check(v: Any) -> str | None:
        return None if v in options else f"must be one of {', '.join(options)}"

    return check


def _all_of(options: tuple[str, ...]):
    def check(v: Any) -> str | None:
        bad = [x for x in v if not isinstance(x, str) or x not in options]
        if bad:
            return f"unknown entries {bad}; allowed: {', '.join(options)}"
        if len(set(v)) != len(v):
            return "has duplicate entries"
        return None

    return check


def _str_list(v: Any) -> str | None:
    return None if all(isinstance(x, str) for x in v) else "must be a list of strings"


def _usb_ids(v: Any) -> str | None:
    for pair in v:
        if (
            not isinstance(pair, list)
            or len(pair) != 2
            or not all(isinstance(x, int) and not isinstance(x, bool) for x in pair)
            or not all(0 <= x <= 0xFFFF for x in pair)
        ):
            return "must be a list of [VID, PID] integer pairs in 0..0xFFFF"
    return None


def _bits(v: Any) -> str | None:
    return None if 1 <= v <= 32 else "must be in 1..32"


_NUM = (int, float)
SCHEMA: dict[str, Any] = {
    "name": (str, True, lambda v: None if v and v.replace("-", "").isalnum() else "bad name"),
    "title": (str, True, None),
    "kind": (str, True, _one_of(KINDS)),
    "python_runtime": (bool, True, None),
    "firmware_bytes": (int, True, _nonneg),
    "accelerators": (list, True, _str_list),
    "backends": (list, True, _all_of(BACKENDS)),
    "notes": (str, False, None),
    "native_extension": (bool, False, None),
    "cpu": {
        "_required": False,
        "arch": (str, True, None),
        "core": (str, True, None),
        "cores": (int, True, _pos),
        "clock_hz": (_NUM, True, _pos),
        "macs_per_cycle": (_NUM, True, _pos),
    },
    "memory": {
        "_required": True,
        "ram_bytes": (int, True, _pos),
        "flash_bytes": (int, True, _nonneg),
        "reserved_ram_bytes": (int, True, _nonneg),
        "cache_bytes": (int, False, _pos),
    },
    "serial": {
        "_required": False,
        "baud": (int, True, _pos),
        "usb_ids": (list, True, _usb_ids),
    },
    "neuromorphic": {
        "_required": False,
        "cores": (int, True, _pos),
        "neurons_per_core": (int, True, _pos),
        "fan_in": (int, True, _pos),
        "fan_out": (int, False, _pos),
        "weight_bits": (int, True, _bits),
        "state_bits": (int, True, _bits),
        "neuron_types": (list, True, _all_of(NEURON_TYPES)),
        "max_inputs": (int, False, _pos),
        "max_outputs": (int, False, _pos),
        "on_chip_learning": (bool, True, None),
        "total_neurons": (int, False, _pos),
        "synaptic_delays": (bool, False, None),
    },
    "firmware": {
        "_required": False,
        "core": (str, True, None),
        "sdk_flash_bytes": (int, True, _nonneg),
        "cpi": (_NUM, False, _pos),
    },
    "cost": {
        "_required": True,
        "macs_per_s": (_NUM, True, _pos),
        "synops_per_s": (_NUM, True, _pos),
        "updates_per_s": (_NUM, True, _pos),
        "op_overhead_s": (_NUM, True, _nonneg),
        "active_power_w": (_NUM, True, _pos),
        "idle_power_w": (_NUM, True, _nonneg),
        "energy_per_synop_j": (_NUM, True, _nonneg),
        "int_macs_per_s": (_NUM, False, _pos),
        "int_op_overhead_s": (_NUM, False, _nonneg),
        "delay_macs_per_s": (_NUM, False, _pos),
        "mem_bandwidth_Bps": (_NUM, False, _pos),
        "step_overhead_s": (_NUM, False, _nonneg),
        "int_step_overhead_s": (_NUM, False, _nonneg),
        "event_taps_per_s": (_NUM, False, _pos),
        "int_event_taps_per_s": (_NUM, False, _pos),
        "int_event_chunks_per_s": (_NUM, False, _pos),
    },
}
# ``[cost.native]``: any subset of the ``[cost]`` keys, same types and ranges; the ones it
# omits fall back to ``[cost]`` (see :meth:`BoardProfile.cost_for`).
_COST_KEYS = {k: v for k, v in SCHEMA["cost"].items() if k != "_required"}
SCHEMA["cost"]["native"] = {
    "_required": False,
    **{key: (types, False, check) for key, (types, _, check) in _COST_KEYS.items()},
}


def _type_ok(value: Any, types: Any) -> bool:
    if isinstance(value, bool) and types is not bool:
        return False  # TOML booleans are not numbers here
    return isinstance(value, types)


def _type_name(types: Any) -> str:
    if isinstance(types, tuple):
        return "number"
    return {str: "string", int: "integer", bool: "boolean", list: "array"}.get(
        types, types.__name__
    )


def _validate(data: dict[str, Any], schema: dict[str, Any], where: str, prefix: str) -> None:
    for key in data:
        if key not in schema or key == "_required":
            allowed = ", ".join(k for k in schema if k != "_required")
            raise BoardError(f"{where}: unknown key '{prefix}{key}' (allowed: {allowed})")
    for key, spec in schema.items():
        if key == "_required":
            continue
        dotted = prefix + key
        if isinstance(spec, dict):
            if key not in data:
                if spec["_required"]:
                    raise BoardError(f"{where}: missing table [{dotted}]")
                continue
            if not isinstance(data[key], dict):
                raise BoardError(f"{where}: '{dotted}' must be a table")
            _validate(data[key], spec, where, dotted + ".")
            continue
        types, required, check = spec
        if key not in data:
            if required:
                raise BoardError(f"{where}: missing key '{dotted}'")
            continue
        value = data[key]
        if not _type_ok(value, types):
            raise BoardError(
                f"{where}: '{dotted}' must be a {_type_name(types)}, got {type(value).__name__}"
            )
        if check is not None:
            problem = check(value)
            if problem:
                raise BoardError(f"{where}: '{dotted}' = {value!r} {problem}")


def profile_from_dict(data: dict[str, Any], where: str = "<profile>") -> BoardProfile:
    """Validate a parsed profile table against :data:`SCHEMA` and build the dataclass."""
    if not isinstance(data, dict):
        raise BoardError(f"{where}: a profile must be a TOML table")
    _validate(data, SCHEMA, where, "")
    kind = data["kind"]
    mem = MemorySpec(**data["memory"])
    if mem.reserved_ram_bytes >= mem.ram_bytes:
        raise BoardError(f"{where}: 'memory.reserved_ram_bytes' must be < 'memory.ram_bytes'")
    if kind in ("linux", "mcu", "host", "virtual") and "cpu" not in data:
        raise BoardError(f"{where}: kind '{kind}' needs a [cpu] table")
    if kind in ("neuromorphic", "sfq") and "neuromorphic" not in data:
        raise BoardError(f"{where}: kind '{kind}' needs a [neuromorphic] table")
    if kind == "mcu" and "serial" not in data:
        raise BoardError(f"{where}: kind 'mcu' needs a [serial] table")
    if data.get("native_extension") and not data["python_runtime"]:
        raise BoardError(f"{where}: 'native_extension' needs python_runtime = true")
    cpu = CpuSpec(**data["cpu"]) if "cpu" in data else None
    ser = None
    if "serial" in data:
        s = data["serial"]
        ser = SerialSpec(baud=s["baud"], usb_ids=tuple((int(a), int(b)) for a, b in s["usb_ids"]))
    neuro = None
    if "neuromorphic" in data:
        n = dict(data["neuromorphic"])
        n.setdefault("fan_out", None)
        n.setdefault("max_inputs", None)
        n.setdefault("max_outputs", None)
        n.setdefault("total_neurons", None)
        n.setdefault("synaptic_delays", False)
        n["neuron_types"] = tuple(n["neuron_types"])
        neuro = NeuromorphicLimits(**n)
    base = {k: float(v) for k, v in data["cost"].items() if k != "native"}
    cost = CostModel(**base)
    cost_native = None
    if "native" in data["cost"]:
        if not data["python_runtime"]:
            raise BoardError(
                f"{where}: '[cost.native]' is for boards that run the Python runtime "
                "(python_runtime = true)"
            )
        cost_native = CostModel(
            **{**base, **{k: float(v) for k, v in data["cost"]["native"].items()}}
        )
    fw = None
    if "firmware" in data:
        f = data["firmware"]
        known = firmware_measurements()
        if f["core"] not in known:
            raise BoardError(
                f"{where}: 'firmware.core' = {f['core']!r} has no measurement; measured: {sorted(known)}"
            )
        fw = FirmwareSpec(f["core"], f["sdk_flash_bytes"], float(f.get("cpi", 1.0)))
    return BoardProfile(
        name=data["name"],
        title=data["title"],
        kind=kind,
        cpu=cpu,
        memory=mem,
        accelerators=tuple(data["accelerators"]),
        backends=tuple(data["backends"]),
        serial=ser,
        neuromorphic=neuro,
        cost=cost,
        python_runtime=data["python_runtime"],
        firmware_bytes=data["firmware_bytes"],
        notes=data.get("notes", ""),
        source=where,
        firmware=fw,
        cost_native=cost_native,
        native_extension=bool(data.get("native_extension", False)),
    )


def parse_profile(text: str, where: str = "<profile>") -> BoardProfile:
    """Parse TOML text into a validated :class:`BoardProfile`."""
    if tomllib is None:  # pragma: no cover
        raise BoardError("reading board profiles on Python 3.10 needs the 'tomli' package")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise BoardError(f"{where}: not valid TOML: {e}") from e
    return profile_from_dict(data, where)


def list_profiles(directory: str | os.PathLike | None = None) -> list[str]:
    """Names of the profiles shipped in ``directory`` (default: the package's profiles)."""
    d = Path(directory) if directory is not None else PROFILE_DIR
    return sorted(p.stem for p in d.glob("*.toml"))


@lru_cache(maxsize=64)
def _load_cached(path: str) -> BoardProfile:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise BoardError(f"cannot read board profile {p}: {e.strerror}") from e
    except UnicodeDecodeError:
        raise BoardError(f"{p}: not a board profile (not UTF-8 TOML text)") from None
    prof = parse_profile(text, str(p))
    if prof.name != p.stem:
        raise BoardError(f"{p}: 'name' = {prof.name!r} must match the file name {p.stem!r}")
    return prof


def load_profile(name: str | os.PathLike) -> BoardProfile:
    """Return the validated, frozen profile of board ``name``.

    ``name`` is a shipped board (``"rpi5"``, ``"xylo"``; see :func:`list_profiles`) or a
    path to a ``.toml`` file. The ``host`` profile has its RAM and core count replaced by
    this machine's, read from the OS (and its cache size, where glibc reports it).
    """
    s = os.fspath(name)
    if s.endswith(".toml") or os.sep in s:
        prof = _load_cached(str(Path(s).resolve()))
    else:
        key = s.strip().lower().replace("_", "-")
        path = PROFILE_DIR / f"{key}.toml"
        if not path.is_file():
            known = ", ".join(list_profiles())
            raise BoardError(f"unknown board '{s}'; known boards: {known}")
        prof = _load_cached(str(path))
    if prof.kind == "host":
        prof = _with_host_facts(prof)
    return prof


def _with_host_facts(prof: BoardProfile) -> BoardProfile:
    """Fill the host profile's RAM and cores from this machine (numbers the OS reports)."""
    from dataclasses import replace

    ram = host_ram_bytes() or prof.memory.ram_bytes
    cores = os.cpu_count() or (prof.cpu.cores if prof.cpu else 1)
    mem = replace(prof.memory, ram_bytes=ram)
    llc = _host_llc_bytes()
    if llc:
        mem = replace(mem, cache_bytes=llc)
    if mem.reserved_ram_bytes >= ram:
        mem = replace(mem, reserved_ram_bytes=ram // 4)
    cpu = replace(prof.cpu, cores=cores) if prof.cpu else None
    return replace(prof, memory=mem, cpu=cpu)


def _host_llc_bytes() -> int | None:
    """Largest CPU cache of this machine in bytes (glibc sysconf), or None."""
    for key in ("SC_LEVEL4_CACHE_SIZE", "SC_LEVEL3_CACHE_SIZE", "SC_LEVEL2_CACHE_SIZE"):
        try:
            v = os.sysconf(key)
        except (ValueError, OSError, AttributeError):
            continue
        if v and v > 0:
            return int(v)
    return None


def fmt_bytes(n: float) -> str:
    """``n`` bytes in the largest binary unit it reaches (``"2.9 MiB"``, ``"512 B"``)."""
    for unit, div in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= div:
            return f"{n / div:.1f} {unit}"
    return f"{int(n)} B"


def host_ram_bytes() -> int | None:
    """This machine's physical memory (``/proc/meminfo``, else ``sysconf``); None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None
