"""Fit and cost estimate of a model on a board: memory, ops, latency, energy, verdict.

Inputs are the graph's static costs from :func:`neuroplast.graph.cost` (params, MACs,
synaptic ops, state and activation bytes per node) plus the plastic layers, and the
board's documented coefficients (:class:`~neuroplast.boards.profile.CostModel`).

Memory (bytes)::

    weights     = sum(param_bytes)                  (int mode: weight bits; float: 4 B)
    state       = sum(state_bytes)                  (membranes, currents, delay rings)
    activations = sum(act_bytes)  on the numpy runtime (every node output is kept),
                  2 * max(act_bytes) in the firmware (ping-pong arena)
    workspace   = largest per-step temporary on the numpy runtime: 8 B per weight of an int
                  Linear/Conv (float64 matmul copy), 32 B (int) / 16 B (float) per DelayLinear
                  synapse (ring-buffer gather)
    tables      = DelayLinear int64 delay matrices (+ int64 ring buffers in int mode)
    firmware    = RAM: the firmware's own buffers (measured data + bss) + the model's arena
                  (what the board reports as ARENA_USED, predicted exactly from the image) +
                  the staging buffer holding the image sent with LOAD_BUNDLE + 4 B per pre-
                  and post-synaptic neuron of each plastic layer (on-board STDP traces);
                  flash: the measured firmware code + the vendor SDK (profile assumption)
    graph_copy  = 4 * sum(params) on the numpy runtime (the Graph's float32 arrays stay loaded
                  beside the kernels' mutable parameters)
    plasticity  = sum over plastic weight layers of 4*(n_pre + n_post) per rule (traces)
                  + 8 * n_post * n_pre                       (float64 update buffer)
                  + 8 * n per rule on a neuron node          (threshold offsets, rates)

Ops per step: ``macs`` (dense, at 100% activity), ``synops`` (spike-driven, at ``input_rate``;
for an event-driven kernel its ``input_rate * event_macs``), ``updates``
(one per plastic synapse and rule, or per neuron for threshold rules, when learning is on).

Latency per step (s), by runtime::

    numpy runtime : (coefficients of the backend the Python runtime uses on the board,
                    :func:`runtime_backend`: ``[cost.native]`` over ``[cost]`` for the
                    compiled plan, ``[cost]`` for the numpy kernels)
                    step_overhead + n_nodes*op_overhead + sum over dense layers of
                    max(macs/macs_per_s, weight traffic/mem_bandwidth_Bps)  (the bandwidth
                    term only when the weights exceed the board's last-level cache)
                    + delay_macs/delay_macs_per_s + updates/updates_per_s  (int mode: int_op_overhead_s, int_macs_per_s,
                    int_step_overhead_s where the board gives them; delay_macs = DelayLinear
                    synapses; step_overhead_s defaults to 0)
                    + sum over event-driven layers (cost handler gives event_macs) of
                    max((macs - event_macs)/macs_per_s, step_bytes/mem_bandwidth_Bps)
                    + synops/event_taps_per_s   (synops = input_rate * event_macs: tap
                    updates of the events' scatter; event_taps_per_s defaults to synops_per_s,
                    int mode: int_event_taps_per_s where given)
                    On the native backend a node's cost handler may give other figures
                    (``cost(graph, backend="native")``: the motion HDDelayConv's integer
                    pull path): its synops are then row chunks (event_unit "chunks"),
                    charged at int_event_chunks_per_s; a table without that rate keeps the
                    scatter's figures for the node and the report's ``notes`` say so.
    firmware      : (per_step + sum over layers of mac*MACs + out*outputs + layer) * cpi / clock
                    with the per-kind instruction costs measured under QEMU for the profile's
                    ``[firmware] core`` (the kernels are dense: spikes cost as much as values);
                    without a measured core, the profile's [cost] coefficients:
                    n_nodes*op_overhead + dense_macs/macs_per_s + synops/synops_per_s
                    + updates/updates_per_s
    neuromorphic  : synops/synops_per_s + updates/updates_per_s

Energy per step (J): ``latency * active_power_w`` for CPU boards;
``synops * energy_per_synop_j + latency * idle_power_w`` where a per-synop energy is given.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neuroplast.boards.chips import check_graph as check_chip
from neuroplast.boards.chips import chip_target
from neuroplast.boards.profile import (
    BoardProfile,
    firmware_measurements,
    fmt_bytes,
    load_profile,
)
from neuroplast.errors import BoardError, BundleError, NeuroplastError
from neuroplast.graph.cost import COST
from neuroplast.targets import PLUGIN_ERRORS, TARGETS, get_target, load_plugins

__all__ = [
    "PYTHON_RUNTIME_BYTES",
    "MemoryUse",
    "OpCount",
    "FitReport",
    "fit",
    "fit_graph",
    "runtime_backend",
    "plastic_layers",
    "board_targets",
    "runtime_targets",
]

#: Resident memory of a Python 3.11 process that imported numpy and neuroplast (no model):
#: 35.5 MiB measured on the x86-64 host from /proc/self/statm (bench/fit_table.py re-measures it);
#: budgeted at 48 MB for aarch64 boards, whose numpy wheel links a larger OpenBLAS.
PYTHON_RUNTIME_BYTES = 48 * 1024 * 1024


@dataclass(frozen=True)
class MemoryUse:
    """Bytes needed, by category, and where they must live."""

    weights: int
    state: int
    activations: int
    plasticity: int
    runtime: int
    firmware: int
    ram_needed: int
    flash_needed: int
    workspace: int = 0
    graph_copy: int = 0
    tables: int = 0
    arena: int = 0
    staging: int = 0


@dataclass(frozen=True)
class OpCount:
    """Operations per time step."""

    n_nodes: int
    macs: int
    synops: int
    updates: int
    neurons: int


@dataclass(frozen=True)
class FitReport:
    """Result of :func:`fit`. ``verdict`` is ``"fits"``, ``"fits-with-warnings"`` or ``"does-not-fit"``."""

    board: str
    runtime: str
    mode: str
    memory: MemoryUse
    ops: OpCount
    ram_available: int
    flash_available: int
    latency_s: float
    energy_j: float
    dt: float
    verdict: str
    reasons: tuple[str, ...]
    warnings: tuple[str, ...]
    layers: tuple[dict[str, Any], ...] = field(default=(), repr=False)
    #: the Python runtime's kernels whose coefficients were used ("numpy" or "native";
    #: "" for firmware and neuromorphic boards)
    backend: str = ""
    #: the profile table those coefficients came from ("cost" or "cost.native")
    cost_table: str = "cost"
    #: how the estimate was made where it departs from the runtime (no verdict change)
    notes: tuple[str, ...] = ()

    @property
    def fits(self) -> bool:
        return self.verdict != "does-not-fit"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary."""
        return {
            "board": self.board,
            "runtime": self.runtime,
            "mode": self.mode,
            "backend": self.backend,
            "cost_table": self.cost_table,
            "memory": self.memory.__dict__.copy(),
            "ops": self.ops.__dict__.copy(),
            "ram_available": self.ram_available,
            "flash_available": self.flash_available,
            "latency_s": self.latency_s,
            "energy_j": self.energy_j,
            "dt": self.dt,
            "verdict": self.verdict,
            "reasons": list(self.reasons),
            "warnings": list(self.warnings),
            "notes": list(self.notes),
            "layers": [dict(r) for r in self.layers],
        }


# ------------------------------------------------------------------ plasticity input
_META_KEYS = ("format", "version", "format_version", "seed", "engine", "guard")


def _rule_kind(rule: Any) -> str:
    if isinstance(rule, dict):
        return str(rule.get("kind", rule.get("rule", "rule")))
    try:
        from neuroplast.plasticity import rule_kind

        return rule_kind(rule)
    except Exception:  # an app's own rule class: fall back to its class name
        return type(rule).__name__


def plastic_layers(plasticity: Any) -> dict[str, list[str]]:
    """Normalise a plasticity description to ``{layer: [rule kinds]}``.

    Accepts ``None``; a mapping ``layer -> rule`` (or list of rules); a list of entries with
    ``layer`` and ``rule``/``kind`` keys (the bundle's ``plasticity.json``); or an engine
    object with a ``rules`` attribute holding either form.
    """
    if plasticity is None:
        return {}
    if hasattr(plasticity, "to_dict") and not isinstance(plasticity, dict):
        plasticity = plasticity.to_dict()
    if hasattr(plasticity, "rules") and not isinstance(plasticity, (dict, list, tuple)):
        plasticity = plasticity.rules
    if isinstance(plasticity, dict) and "rules" in plasticity:
        plasticity = plasticity["rules"]
    out: dict[str, list[str]] = {}
    if isinstance(plasticity, dict):
        for layer, rules in plasticity.items():
            if layer in _META_KEYS:
                continue
            rules = rules if isinstance(rules, (list, tuple)) else [rules]
            out.setdefault(str(layer), []).extend(_rule_kind(r) for r in rules)
        return out
    if isinstance(plasticity, (list, tuple)):
        for entry in plasticity:
            if isinstance(entry, dict):
                layer = entry.get("layer")
                rule = entry.get("rule", entry)
            else:
                layer = getattr(entry, "layer", None)
                rule = getattr(entry, "rule", getattr(entry, "params", entry))
            if layer is None:
                raise BoardError(f"plasticity entry {entry!r} names no layer")
            out.setdefault(str(layer), []).append(_rule_kind(rule))
        return out
    raise BoardError(f"cannot read the plasticity description of type {type(plasticity).__name__}")


# ------------------------------------------------------------------ core estimate
def _runtime_of(board: BoardProfile) -> str:
    if board.kind in ("neuromorphic", "sfq"):
        return "neuromorphic"
    if board.python_runtime:
        return "numpy"
    return "firmware"


#: Which targets of the capability matrix each board backend means.
_BACKEND_TARGETS = {
    "numpy": ("runtime", "runtime-int"),
    "onnxruntime": ("onnx",),
    "tflite": ("tflite",),
    "firmware": ("firmware",),
    "nir": ("nir",),
    "sfq": ("sfq",),
}


def board_targets(prof: BoardProfile) -> list[str]:
    """The registered targets a board can run models through (its ``backends``)."""
    load_plugins()
    out = []
    for b in prof.backends:
        out += [t for t in _BACKEND_TARGETS.get(b, ()) if t in TARGETS and t not in out]
    return out


def runtime_targets(prof: BoardProfile, mode: str) -> list[str]:
    """The targets :func:`fit_graph` estimates for: the board's own runtime. The firmware
    runs the integer runtime's arithmetic, so it needs both."""
    runtime = _runtime_of(prof)
    if runtime == "numpy":
        names = ["runtime-int" if mode == "int" else "runtime"]
    elif runtime == "firmware":
        names = ["runtime-int", "firmware"]
    else:
        names = [chip_target(prof)]
    load_plugins()
    missing = [t for t in names if t not in TARGETS]
    if missing:
        raise BoardError(
            f"{prof.name}: target {missing[0]!r} is not installed here ({PLUGIN_ERRORS or 'no plugin'})"
        )
    return names


def runtime_backend(graph: Any, prof: BoardProfile, mode: str, *, build: bool = True) -> str:
    """Which kernels the Python runtime would step ``graph`` with on ``prof``: ``"native"``
    (the compiled whole-graph plan of ``neuroplast._native``) or ``"numpy"``.

    Rule: on the ``host`` board, what a ``Runtime(graph, mode)`` of this process reports as
    :attr:`~neuroplast.runtime.Runtime.backend` (the extension loads, is not disabled by
    ``NEUROPLAST_BACKEND=numpy``, and has an op for every node). On other boards that run
    the Python runtime: ``"numpy"`` unless the profile says ``native_extension = true``;
    then ``"native"`` when this process's plan covers the graph too (or when the extension
    is not loaded here, so that cannot be checked). ``build=False`` skips building the
    Runtime (a model too large for this machine) and answers from the extension alone.
    """
    from neuroplast.runtime.native import native_module

    if prof.kind != "host" and not prof.native_extension:
        return "numpy"
    if native_module() is None:
        return "numpy" if prof.kind == "host" else "native"
    if not build:
        return "native"
    from neuroplast.runtime import Runtime

    try:
        return Runtime(graph, mode=mode).backend
    except NeuroplastError:
        return "numpy"


def _refused_report(
    graph: Any, prof: BoardProfile, runtime: str, mode: str, reasons: list[str]
) -> FitReport:
    """A does-not-fit report for a model the board's target cannot run at all."""
    zero = MemoryUse(0, 0, 0, 0, 0, 0, 0, 0)
    return FitReport(
        board=prof.name, runtime=runtime, mode=mode, memory=zero,
        ops=OpCount(len(graph.nodes), 0, 0, 0, 0),
        ram_available=int(prof.memory.usable_ram_bytes), flash_available=int(prof.memory.flash_bytes),
        latency_s=float("nan"), energy_j=float("nan"), dt=float(graph.dt),
        verdict="does-not-fit", reasons=tuple(reasons), warnings=(),
    )  # fmt: skip


def _graph_mode(graph: Any) -> str:
    for node in graph.nodes.values():
        if getattr(node, "weight_q", None) is not None:
            return "int"
    return "float"


def fit_graph(
    graph: Any,
    board: str | BoardProfile,
    *,
    plasticity: Any = None,
    learning: bool | None = None,
    mode: str | None = None,
    input_rate: float | dict[str, float] = 1.0,
    bundle_bytes: int | None = None,
    backend: str | None = None,
) -> FitReport:
    """Estimate whether ``graph`` runs on ``board``; see the module docstring for the equations.

    ``backend`` (``"numpy"`` or ``"native"``) picks the Python runtime's cost table on
    boards that run it; ``None`` uses the one the runtime would use (:func:`runtime_backend`).

    ``learning`` defaults to "on when the model has plastic layers". ``mode`` (``"int"`` or
    ``"float"``) defaults to int when any layer carries a weight quantizer. ``input_rate`` is
    the fraction of active (spiking) inputs per step used for synaptic-op counts (1.0 is the
    upper bound). ``bundle_bytes`` is the on-disk size, counted against flash/storage.
    """
    from neuroplast.graph import cost as graph_cost

    prof = board if isinstance(board, BoardProfile) else load_profile(board)
    if isinstance(input_rate, (int, float)) and not 0.0 <= float(input_rate) <= 1.0:
        raise BoardError(f"input_rate must be in [0, 1], got {input_rate}")
    mode = mode or _graph_mode(graph)
    if mode not in ("int", "float"):
        raise BoardError(f"mode must be 'int' or 'float', got {mode!r}")
    plastic = plastic_layers(plasticity)
    unknown = [name for name in plastic if name not in graph.nodes]
    if unknown:
        raise BoardError(f"plasticity names layers not in the graph: {', '.join(unknown)}")
    learning = bool(plastic) if learning is None else bool(learning)
    runtime = _runtime_of(prof)
    if backend is not None and backend not in ("numpy", "native"):
        raise BoardError(f"backend must be 'numpy' or 'native', got {backend!r}")
    reasons: list[str] = []
    warnings: list[str] = []
    # The capability matrix first: never estimate (or say "fits") for what cannot run.
    refused = [str(r) for r in COST.refusals(graph)]
    # spiking chips: their exporter target and the chip table, the check `neuroplast check` runs
    chip = check_chip(graph, prof) if runtime == "neuromorphic" else None
    for t in runtime_targets(prof, mode) if chip is None else ():
        found = get_target(t).refusals(graph)
        if found:
            refused += [str(r) for r in found]
            alt = [a for a in board_targets(prof) if a not in runtime_targets(prof, mode)
                   and not get_target(a).refusals(graph)]  # fmt: skip
            if alt:
                refused.append(
                    f"{prof.name} can run this model as {', '.join(alt)} instead "
                    f"(neuroplast export --to {alt[0]})"
                )
            break
    if chip is not None:
        refused += [str(v) for v in chip.errors if v.rule == "target"]
    if refused:
        return _refused_report(graph, prof, runtime, mode, refused)
    rows = graph_cost(graph, input_rate)
    notes: list[str] = []
    c = prof.cost
    cost_table = "cost"
    if runtime == "numpy":
        if backend is None:  # build a Runtime here only for a model this machine can hold
            backend = runtime_backend(graph, prof, mode, build=_holdable(rows, prof))
        c = prof.cost_for(backend)
        if c is not prof.cost:
            cost_table = "cost.native"
        if backend != "numpy":  # the ops that run another algorithm on this backend
            rows = _backend_rows(
                rows, graph_cost(graph, input_rate, backend=backend), c, cost_table, notes
            )

    # --- ops
    macs = sum(r.macs for r in rows)
    synops = sum(r.synops for r in rows)
    # event-driven layers: only their per-step part is dense
    dense_macs = sum(
        r.macs - r.event_macs if r.event_macs else r.macs * (r.synops == 0) for r in rows
    )
    neurons = sum(int(np.prod(r.out_shape)) for r in rows if graph.nodes[r.name].neuron)
    updates = 0
    plast_bytes = 0
    shapes = graph.shapes()
    for name, kinds in plastic.items():
        w = getattr(graph.nodes[name], "weight", None)
        if w is None:
            # threshold / homeostasis rules on a neuron node: one value per neuron
            n = int(np.prod(shapes[name]))
            plast_bytes += 8 * n * len(kinds)
            if learning:
                updates += n * len(kinds)
            continue
        n_post = int(w.shape[0])
        n_pre = int(np.prod(w.shape[1:]))
        plast_bytes += 4 * (n_pre + n_post) * len(kinds) + 8 * n_post * n_pre
        if learning:
            updates += n_post * n_pre * len(kinds)
    if not learning:
        plast_bytes = 0
    # --- memory
    weights = sum(r.param_bytes for r in rows)
    state = sum(r.state_bytes for r in rows)
    workspace = graph_copy = tables = 0
    if runtime == "numpy":
        activations = sum(r.act_bytes for r in rows)
        runtime_bytes = PYTHON_RUNTIME_BYTES
        # the Runtime keeps its Graph (float32 arrays) beside the kernels' mutable parameters
        graph_copy = 4 * sum(r.params for r in rows)
        # per-step temporaries, one layer at a time: int Linear/Conv multiply through a float64
        # copy of the weights (exact for int8 sums); DelayLinear gathers its ring buffer per
        # synapse (int64 row index + history + weight copy: 32 B int, 16 B float per synapse)
        per_layer = []
        for r in rows:
            if r.kind == "DelayLinear":
                per_layer.append((32 if mode == "int" else 16) * r.macs)
            elif r.macs and mode == "int":
                per_layer.append(8 * r.params)
        workspace = max(per_layer, default=0)
        # DelayLinear keeps an int64 delay matrix; its ring buffer is int64 in int mode
        delay_rows = [r for r in rows if r.kind == "DelayLinear"]
        tables = sum(8 * r.macs for r in delay_rows)
        if mode == "int":
            tables += sum(r.state_bytes for r in delay_rows)  # int64 ring vs 4 B counted
    elif runtime == "firmware":
        fw = _firmware_footprint(graph, prof)
        activations = 0
        runtime_bytes = fw["static_ram"]
        # on-board STDP keeps one int32 trace per pre- and post-synaptic neuron
        plast_bytes = 0
        for name in plastic if learning else ():
            w = getattr(graph.nodes[name], "weight", None)
            if w is not None:
                plast_bytes += 4 * (int(np.prod(w.shape[1:])) + int(w.shape[0]))
    else:
        activations = 0
        runtime_bytes = 0
    firmware = fw["flash"] if runtime == "firmware" else prof.firmware_bytes
    if runtime == "numpy":
        ram_needed = (
            weights
            + state
            + activations
            + plast_bytes
            + runtime_bytes
            + workspace
            + graph_copy
            + tables
        )
        flash_needed = bundle_bytes if bundle_bytes is not None else weights
    elif runtime == "firmware":
        # the image arrives over the link into the staging buffer; the parser copies
        # weights, parameters and state into the arena (all RAM, all writable)
        ram_needed = runtime_bytes + fw["arena"] + fw["staging"] + plast_bytes
        flash_needed = firmware
    else:
        ram_needed = weights  # synaptic memory of the chip
        flash_needed = 0
    mem = MemoryUse(
        weights=int(weights),
        state=int(state),
        activations=int(activations),
        plasticity=int(plast_bytes),
        runtime=int(runtime_bytes),
        firmware=int(firmware if runtime == "firmware" else 0),
        ram_needed=int(ram_needed),
        flash_needed=int(flash_needed),
        workspace=int(workspace),
        graph_copy=int(graph_copy),
        tables=int(tables),
        arena=int(fw["arena"]) if runtime == "firmware" else 0,
        staging=int(fw["staging"]) if runtime == "firmware" else 0,
    )
    ram_avail = prof.memory.usable_ram_bytes
    flash_avail = prof.memory.flash_bytes
    label = "synaptic memory" if runtime == "neuromorphic" else "RAM"
    if ram_needed > ram_avail:
        reasons.append(
            f"{label}: needs {fmt_bytes(ram_needed)} but {prof.name} has "
            f"{fmt_bytes(ram_avail)} usable ({fmt_bytes(prof.memory.ram_bytes)} total)"
        )
    if runtime == "firmware" and flash_avail and flash_needed > flash_avail:
        reasons.append(
            f"flash: needs {fmt_bytes(flash_needed)} (firmware and SDK) but {prof.name} has "
            f"{fmt_bytes(flash_avail)}"
        )
    if runtime == "numpy" and flash_avail and flash_needed > flash_avail:
        reasons.append(
            f"storage: bundle needs {fmt_bytes(flash_needed)}, {prof.name} has "
            f"{fmt_bytes(flash_avail)}"
        )
    if runtime == "firmware" and mode == "float":
        warnings.append("the C firmware runs the integer path; quantize the model (mode 'int')")

    # --- backend and neuromorphic limits
    if runtime == "numpy" and "numpy" not in prof.backends:
        reasons.append(f"{prof.name} lists no numpy backend")
    if chip is not None:
        reasons += [str(v) for v in chip.errors]
        warnings += [str(v) for v in chip.warnings]
        if learning and plastic and not prof.neuromorphic.on_chip_learning:
            warnings.append(f"{prof.name} has no on-chip learning: rules on "
                            f"{', '.join(plastic)} must run off-chip")  # fmt: skip

    # --- latency and energy
    n_nodes = len(rows)
    if runtime == "numpy":
        # weights resident per step: float32, or int8 codes + the float64 copy
        resident = sum(r.params for r in rows if r.macs and r.kind != "DelayLinear")
        resident *= 4 if mode == "float" else 9
        cache = prof.memory.cache_bytes
        from_dram = cache is not None and resident > cache
        latency = (
            c.step_overhead(mode)
            + n_nodes * c.overhead(mode)
            + sum(_numpy_layer_time(r, mode, c, from_dram) for r in rows)
        )
    elif runtime == "firmware" and fw["measured"]:
        latency = (
            _firmware_instructions(rows, fw["coeffs"], warnings) * fw["cpi"] / prof.cpu.clock_hz
        )
    elif runtime == "firmware":
        warnings.append(
            f"{prof.name}: no measured firmware build for this core; latency from the "
            "profile's [cost] coefficients"
        )
        latency = n_nodes * c.op_overhead_s + dense_macs / c.macs_per_s + synops / c.synops_per_s
    else:
        # Every weighted layer is event-driven on a neuromorphic chip.
        latency = macs_as_synops(rows, input_rate) / c.synops_per_s
    if learning and updates:
        if runtime == "neuromorphic" and not prof.neuromorphic.on_chip_learning:
            pass  # reported as a warning; no on-chip cost
        elif runtime == "firmware" and fw["measured"] and "stdp_per_synapse" in fw["coeffs"]:
            latency += updates * fw["coeffs"]["stdp_per_synapse"] * fw["cpi"] / prof.cpu.clock_hz
        else:
            latency += updates / c.updates_per_s
    ev_synops = macs_as_synops(rows, input_rate) if runtime == "neuromorphic" else synops
    if c.energy_per_synop_j > 0:
        energy = ev_synops * c.energy_per_synop_j + latency * c.idle_power_w
    else:
        energy = latency * c.active_power_w
    dt = float(getattr(graph, "dt", 0.0) or 0.0)
    if dt > 0 and latency > dt:
        warnings.append(
            f"real time: estimated {latency * 1e3:.3g} ms per step exceeds the graph's "
            f"dt = {dt * 1e3:.3g} ms"
        )

    verdict = "does-not-fit" if reasons else ("fits-with-warnings" if warnings else "fits")
    layer_rows = tuple(
        {
            "name": r.name,
            "kind": r.kind,
            "out_shape": list(r.out_shape),
            "params": r.params,
            "macs": r.macs,
            "synops": r.synops,
            "param_bytes": r.param_bytes,
            "state_bytes": r.state_bytes,
            "act_bytes": r.act_bytes,
            "plastic": r.name in plastic,
        }
        for r in rows
    )
    return FitReport(
        board=prof.name,
        runtime=runtime,
        mode=mode,
        memory=mem,
        ops=OpCount(
            n_nodes=n_nodes,
            macs=int(macs),
            synops=int(ev_synops),
            updates=int(updates),
            neurons=int(neurons),
        ),
        ram_available=int(ram_avail),
        flash_available=int(flash_avail),
        latency_s=float(latency),
        energy_j=float(energy),
        dt=dt,
        verdict=verdict,
        reasons=tuple(reasons),
        warnings=tuple(warnings),
        layers=layer_rows,
        backend=backend if runtime == "numpy" else "",
        cost_table=cost_table,
        notes=tuple(notes),
    )


def _holdable(rows: list[Any], prof: BoardProfile) -> bool:
    """Whether this process may build a Runtime of the model to ask it for its backend
    (:func:`runtime_backend`): the interpreter, the model's weights (quantized and the
    float32 copy), state and activations fit the board's usable RAM."""
    need = PYTHON_RUNTIME_BYTES + sum(
        r.param_bytes + 4 * r.params + r.state_bytes + r.act_bytes for r in rows
    )
    return need <= prof.memory.usable_ram_bytes


def _backend_rows(
    base: list[Any], variant: list[Any], c: Any, table: str, notes: list[str]
) -> list[Any]:
    """Per node, the cost on the runtime's backend (``variant``: the handlers' ``"native"``
    figures); a node whose work there is counted in pull-path row chunks needs the table's
    ``int_event_chunks_per_s``: without it the node keeps its scatter cost (``base``) and
    ``notes`` says so."""
    out = []
    for b, v in zip(base, variant):
        if v.event_unit == "chunks" and c.int_event_chunks_per_s is None:
            notes.append(
                f"layer {b.name!r} ({b.kind}): [{table}] has no int_event_chunks_per_s, so it "
                "is costed as its scatter, not the integer pull path this backend runs "
                "(re-measure with bench/fit_table.py)"
            )
            v = b
        out.append(v)
    return out


def _firmware_footprint(graph: Any, prof: BoardProfile) -> dict[str, Any]:
    """Flash, RAM and the instruction-cost table of the C firmware for ``graph`` on ``prof``:
    the model's image and arena from the firmware target itself (exact), the firmware's own
    code and RAM measured for the profile's core (``[firmware] core``; without one, the
    profile's ``firmware_bytes`` budget and the Cortex-M4 build's RAM)."""
    meas = firmware_measurements()
    spec = prof.firmware
    core = meas[spec.core] if spec else None
    fp = get_target("firmware").footprint(graph)
    return {
        "flash": core["flash_bytes"] + spec.sdk_flash_bytes if core else prof.firmware_bytes,
        "static_ram": (core or meas["m4"])["static_ram_bytes"],
        "arena": fp["arena_bytes"],
        "staging": fp["image_bytes"],
        "measured": core is not None,
        "coeffs": core or {},
        "cpi": spec.cpi if spec else 1.0,
    }


def _firmware_instructions(rows: list[Any], coeffs: dict[str, Any], warnings: list[str]) -> float:
    """Instructions per step from the measured per-kind costs (MACs, outputs, per layer)."""
    total = float(coeffs["per_step"])
    for r in rows:
        if r.kind in ("Input", "Flatten"):
            continue
        k = coeffs["per_kind"].get(r.kind)
        if k is None:
            warnings.append(
                f"layer {r.name!r}: no measured firmware cost for {r.kind}; counted as 0"
            )
            continue
        total += k["mac"] * r.macs + k["out"] * int(np.prod(r.out_shape)) + k["layer"]
    return total


def _numpy_layer_time(r: Any, mode: str, c: Any, from_dram: bool) -> float:
    """Compute time of one layer on the numpy runtime; when the model's weights exceed the
    last-level cache (``from_dram``), dense layers are bounded by DRAM bandwidth (roofline).
    An event-driven layer (``event_macs > 0``): its dense part ``(macs - event_macs) /
    macs_rate``, bounded by ``step_bytes / mem_bandwidth_Bps`` (roofline), plus its scatter
    ``synops / event_taps_per_s`` (pull-path row chunks, ``event_unit == "chunks"``:
    ``synops / int_event_chunks_per_s``)."""
    if not r.macs:
        return 0.0
    if r.event_macs:
        dense = (r.macs - r.event_macs) / c.macs_rate(mode)
        if c.mem_bandwidth_Bps and r.step_bytes:
            dense = max(dense, r.step_bytes / c.mem_bandwidth_Bps)
        rate = c.int_event_chunks_per_s if r.event_unit == "chunks" else c.event_rate(mode)
        return dense + r.synops / rate
    if r.kind == "DelayLinear":
        return r.macs / c.delay_rate(mode)
    t = r.macs / c.macs_rate(mode)
    if from_dram and c.mem_bandwidth_Bps and r.params:
        # bytes moved per step: float32 weights, or int8 codes + their float64 copy (w, r)
        traffic = r.params * (4 if mode == "float" else 17)
        t = max(t, traffic / c.mem_bandwidth_Bps)
    return t


def macs_as_synops(rows: list[Any], input_rate: float | dict[str, float]) -> int:
    """Synaptic events when every weighted layer is event-driven: ``rate * macs`` per layer."""
    total = 0.0
    for r in rows:
        if not r.macs:
            continue
        rate = input_rate.get(r.name, 1.0) if isinstance(input_rate, dict) else float(input_rate)
        total += rate * r.macs
    return int(round(total))


# ------------------------------------------------------------------ bundles
def _load_bundle(path: str | os.PathLike) -> Any:
    p = os.fspath(path)
    if not os.path.exists(p):
        raise BoardError(f"bundle not found: {p}")
    try:
        from neuroplast.bundle import load_bundle
        from neuroplast.formats import read_graph
    except ImportError as e:  # pragma: no cover - core not installed
        raise BoardError(f"cannot read bundles: {e}") from e
    try:
        # a bundle (folder / .zip), or a model file with a registered reader (.nir)
        return load_bundle(p) if os.path.isdir(p) or p.lower().endswith(".zip") else read_graph(p)
    except NeuroplastError:
        raise
    except Exception as e:  # a bundle reader bug must still name the file
        raise BundleError(f"{p}: cannot be read ({type(e).__name__}: {e})") from e


def _bundle_size(path: str | os.PathLike) -> int:
    p = os.fspath(path)
    if os.path.isdir(p):
        total = 0
        for root, _, files in os.walk(p):
            for f in files:
                total += os.path.getsize(os.path.join(root, f))
        return total
    return os.path.getsize(p)


def fit(
    bundle: Any,
    board: str | BoardProfile,
    *,
    learning: bool | None = None,
    mode: str | None = None,
    input_rate: float | dict[str, float] = 1.0,
    plugins: list[str] | None = None,
    backend: str | None = None,
) -> FitReport:
    """Fit report of a bundle (path or loaded :class:`~neuroplast.bundle.Bundle`) or a Graph.

    ``plugins``: modules to import first (they register an app's own node kinds).
    ``backend``: the Python runtime's kernels to cost (see :func:`fit_graph`).
    """
    from neuroplast.boards.plugins import import_plugins

    import_plugins(plugins)
    size = None
    if isinstance(bundle, (str, os.PathLike)):
        size = _bundle_size(bundle) if os.path.exists(os.fspath(bundle)) else None
        bundle = _load_bundle(bundle)
    graph = getattr(bundle, "graph", bundle)
    if not hasattr(graph, "nodes") or not hasattr(graph, "topo_order"):
        raise BoardError(f"expected a bundle or a Graph, got {type(bundle).__name__}")
    plasticity = getattr(bundle, "plasticity", None) if graph is not bundle else None
    if mode is None and graph is not bundle:
        m = getattr(bundle, "mode", None)
        mode = m if m in ("int", "float") else None
    return fit_graph(
        graph,
        board,
        plasticity=plasticity,
        learning=learning,
        mode=mode,
        input_rate=input_rate,
        bundle_bytes=size,
        backend=backend,
    )
