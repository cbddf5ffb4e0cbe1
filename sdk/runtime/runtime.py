"""The Runtime: executes a Graph step by step (streaming) or over whole windows.

Usage::

    rt = Runtime(graph, mode="float")     # or mode="int" (int8/int32 fixed point)
    rt.backend                            # "native" (compiled plan) or "numpy"
    y = rt.step(x)                        # one time step; x: input shape or (B, *shape)
    ys = rt.run(seq)                      # (T, *shape) or (T, B, *shape)
    rt.reset()

Inputs are validated at this boundary (shape, dtype, NaN/Inf -> DataError); kernels
then run without checks. With the compiled kernels installed (``neuroplast._native``)
``step`` runs the whole graph in one native call wherever every node has a native op
(:mod:`neuroplast.runtime.native`); numpy is the fallback and the reference. When learning is enabled (``rt.learn(True)``) the attached
plasticity rules update ``rt.params`` after every step, so ``run`` falls back to a
step loop.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from neuroplast.errors import DataError, GraphError, PlasticityError, RuntimeStateError
from neuroplast.graph.graph import Graph
from neuroplast.runtime.kernels import BuildContext, Kernel, SparseInput, make_kernel
from neuroplast.runtime.native import NativePlan, Unsupported, finite_f32, native_module

__all__ = ["Runtime", "atomic_write_bytes"]

_STATE_FORMAT = "neuroplast-state-v1"


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: temp file in the same folder, fsync, rename,
    fsync the folder. A crash at any point leaves either the old or the new file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _has_rules(engine: Any) -> bool:
    has = getattr(engine, "has_rules", None)
    return bool(has()) if callable(has) else True


class Runtime:
    """Interpreter of a :class:`~neuroplast.graph.Graph` in ``"float"`` or ``"int"`` mode."""

    def __init__(self, graph: Graph, mode: str = "float", backend: str = "auto") -> None:
        if mode not in ("float", "int"):
            raise GraphError(f"mode must be 'float' or 'int', not {mode!r}")
        if backend not in ("auto", "native", "numpy"):
            raise GraphError(f"backend must be 'auto', 'native' or 'numpy', not {backend!r}")
        if backend == "native" and native_module() is None:
            raise GraphError(
                "backend='native' but the compiled kernels (neuroplast._native) are not "
                "available; reinstall with a C compiler or use backend='auto'"
            )
        if not isinstance(graph, Graph):
            raise GraphError(f"Runtime needs a Graph, got {type(graph).__name__}")
        self.graph = graph
        self.mode = mode
        self.order = graph.topo_order()
        self.preds = {n: graph.predecessors(n) for n in self.order}
        self.shapes = graph.shapes()
        self.kernels: dict[str, Kernel] = {}
        for name in self.order:
            preds = self.preds[name]
            ctx = BuildContext(
                name=name,
                mode=mode,
                dt=graph.dt,
                in_shapes=[self.shapes[p] for p in preds],
                out_shape=self.shapes[name],
                in_quants=[self.kernels[p].out_quant for p in preds],
                backend=backend,
            )
            try:
                self.kernels[name] = make_kernel(graph.nodes[name], ctx)
            except GraphError as e:
                msg = str(e)
                err = GraphError(msg if repr(name) in msg else f"node {name!r}: {msg}")
                err.node = name  # which node failed: the capability checks report it
                raise err from None
        self.params: dict[str, dict[str, np.ndarray]] = {
            n: k.params for n, k in self.kernels.items() if k.params
        }
        self.inputs = graph.inputs
        self._input_set = frozenset(graph.inputs)
        self.outputs = graph.outputs
        self.state: dict[str, tuple] = {}
        self.batch: int | None = None
        self.learning = False
        self.steps = 0
        self._pending: Any = None  # the native plan's fill ops for the last step, if due
        self.last_inputs: dict[str, list[Any]] = {}
        self.last_outputs: dict[str, Any] = {}
        self._plasticity = None
        self._native = backend != "numpy" and native_module() is not None
        #: the compiled NaN/Inf test of a float32 input (None: numpy's)
        self._finite = finite_f32() if self._native else None
        self._plan: NativePlan | None = None
        self._plan_failed: str | None = None

    # --------------------------------------------------------------- plumbing
    def __getstate__(self) -> dict[str, Any]:
        """Copies and pickles drop the native plan (it views this runtime's arrays; the
        copy builds its own at its next step)."""
        self._fill_pending()
        d = self.__dict__.copy()
        d["_plan"] = None
        return d

    # Every node's value of the last step (``run``: of its last time step), and the inputs
    # each node saw. The native plan folds a ReLU into the convolution before it and leaves
    # the convolution's own (pre-ReLU) values to be computed here, on first access after a
    # step, from that step's inputs (and the weights as they are then).
    @property
    def last_outputs(self) -> dict[str, Any]:
        """Every node's output of the last step (``run``: of its last time step)."""
        self._fill_pending()
        return self._last_outputs

    @last_outputs.setter
    def last_outputs(self, v: dict[str, Any]) -> None:
        self._fill_pending()
        self._last_outputs = v

    @property
    def last_inputs(self) -> dict[str, list[Any]]:
        """The inputs each node saw in the last step."""
        self._fill_pending()
        return self._last_inputs

    @last_inputs.setter
    def last_inputs(self, v: dict[str, list[Any]]) -> None:
        self._fill_pending()
        self._last_inputs = v

    def _fill_pending(self) -> None:
        """Compute the values the last native step left to be computed on access."""
        p = self.__dict__.get("_pending")
        if p is not None:
            self._pending = None
            p.run()

    @property
    def backend(self) -> str:
        """``"native"`` when ``step`` runs the compiled whole-graph plan, else ``"numpy"``
        (no compiled kernels, ``backend="numpy"``, or a node without a native op:
        :attr:`backend_reason` says which)."""
        if not self._native:
            return "numpy"
        if self._plan is None and self._plan_failed is None:
            try:  # decide now (batch 1), without waiting for the first step
                NativePlan(self, 1) if self.batch is None else None
            except Unsupported as e:
                self._plan_failed = str(e) or type(e).__name__
        return "numpy" if self._plan_failed else "native"

    @property
    def backend_reason(self) -> str:
        """Why :attr:`backend` is ``"numpy"`` ("" when native), and which nodes still run
        a compiled loop of their own (:attr:`op_backends`)."""
        if self.backend == "native":
            return ""
        why = "compiled kernels unavailable or disabled" if not self._native else self._plan_failed
        own = [f"{n!r} {b}" for n, b in self.op_backends.items() if b != "numpy"]
        if why and own:
            why += f"; own loops: {', '.join(own)}"
        return why

    @property
    def op_backends(self) -> dict[str, str]:
        """The backend of each node that picks its own loop outside the whole-graph plan
        (e.g. ``HDDelayConv``'s event scatter: "native", "numba" or "numpy"); it follows
        the runtime's ``backend`` request ("numpy" there means numpy everywhere)."""
        return {n: k.backend for n, k in self.kernels.items() if k.backend is not None}

    def _native_plan(self, batch: int) -> NativePlan | None:
        if not self._native or self._plan_failed is not None:
            return None
        plan = self._plan
        if plan is None or plan.batch != batch or not plan.valid():
            try:
                plan = self._plan = NativePlan(self, batch)
            except Unsupported as e:
                self._plan_failed, self._plan = str(e), None
                return None
        return plan

    @property
    def plasticity(self) -> Any:
        """The plasticity engine (rules attached to named layers)."""
        if self._plasticity is None:
            try:
                from neuroplast.plasticity import PlasticityEngine
            except ImportError as e:  # pragma: no cover - packaging error
                raise PlasticityError(f"plasticity engine unavailable: {e}") from e
            self._plasticity = PlasticityEngine()
        return self._plasticity

    @plasticity.setter
    def plasticity(self, engine: Any) -> None:
        self._plasticity = engine

    def learn(self, enabled: bool = True) -> Runtime:
        """Enable or disable on-device learning (the attached plasticity rules)."""
        self.learning = bool(enabled)
        return self

    def reset(self, batch: int | None = None) -> None:
        """Reset all neuron states and delay buffers (parameters are kept)."""
        self.batch = batch
        self.state = (
            {} if batch is None else {n: k.init_state(batch) for n, k in self.kernels.items()}
        )
        self.steps = 0
        self._plan = None

    def _ensure_state(self, batch: int) -> None:
        if self.batch is None:  # first step: allocate the state, keep a loaded step count
            steps = self.steps
            self.reset(batch)
            self.steps = steps
        elif self.batch != batch:
            raise DataError(
                f"batch size changed from {self.batch} to {batch} mid-stream; call rt.reset() first"
            )

    def _check_input(self, name: str, x: Any, time_axis: bool) -> tuple[Any, int]:
        """Validate one input; return it as (B, *shape) or (T, B, *shape) and the batch size."""
        shape = self.shapes[name]
        if isinstance(x, SparseInput):
            if time_axis:
                raise DataError("sparse input is per step: use rt.step(SparseInput(...))")
            idx = np.asarray(x.indices)
            n = int(np.prod(shape))
            if idx.ndim != 1 or idx.dtype.kind not in "iu":
                raise DataError(f"input {name!r}: sparse indices must be a 1-D integer array")
            if idx.size and (idx.min() < 0 or idx.max() >= n):
                raise DataError(f"input {name!r}: sparse index out of range [0, {n})")
            vals = None
            if x.values is not None:
                vals = np.asarray(x.values)
                if vals.shape != idx.shape:
                    raise DataError(f"input {name!r}: {vals.shape} values for {idx.shape} indices")
                vals = self._cast_input(f"input {name!r}: sparse values", name, vals)
            return SparseInput(idx, vals), 1
        if (
            not time_axis
            and type(x) is np.ndarray
            and x.dtype == np.float32
            and x.shape == shape
            and (self.mode == "float" or self.kernels[name].out_quant is not None)
        ):  # the streaming fast path: one float32 sample, only the finiteness check
            # (compiled; else: a float32 sum is finite when the values are, unless it
            # overflows: then the exact check decides)
            fin = self._finite
            if not (
                fin(x)
                if fin is not None and x.flags.c_contiguous
                else math.isfinite(x.sum()) or np.isfinite(x).all()
            ):
                raise DataError(
                    f"input {name!r} contains NaN or Inf after the cast to float32 (|x| < 3.4e38)"
                )
            return x[None], 1
        try:
            x = np.asarray(x)
        except (TypeError, ValueError, OverflowError) as e:
            raise DataError(f"input {name!r} is not array-like: {e}") from None
        x = self._cast_input(f"input {name!r}", name, x)
        lead = 1 if time_axis else 0
        if x.shape[lead:] == shape:
            x = x[None] if lead == 0 else x[:, None]
        elif x.shape[lead + 1 :] != shape:
            want = ("T, " if time_axis else "") + f"[B,] {', '.join(map(str, shape))}"
            raise DataError(f"input {name!r} has shape {x.shape}; expected ({want})")
        if time_axis and x.shape[0] == 0:
            raise DataError(f"input {name!r} has an empty time axis")
        return x, int(x.shape[lead])

    def _cast_input(self, what: str, name: str, x: np.ndarray) -> np.ndarray:
        """Cast to the runtime dtype, then check what the cast produced: float32 values must be
        finite (a float64 1e39 becomes inf), and integer codes in int mode must lie in the
        input's quantized range (they are used as codes, never clipped)."""
        if x.dtype.kind not in "biuf":
            raise DataError(f"{what} has dtype {x.dtype}; expected a numeric array")
        if self.mode == "float" or x.dtype.kind == "f":  # int mode quantizes from float32
            if x.dtype != np.float32:
                with np.errstate(over="ignore", invalid="ignore"):
                    x = x.astype(np.float32)
            if not np.isfinite(x).all():
                raise DataError(
                    f"{what} contains NaN or Inf after the cast to float32 (|x| < 3.4e38)"
                )
            return x
        q = self.kernels[name].out_quant
        lo, hi = q.range if q is not None else (np.iinfo(np.int32).min, np.iinfo(np.int32).max)
        if x.dtype.kind != "b":  # codes of a dtype whose whole range is valid need no scan
            info = np.iinfo(x.dtype)
            if lo <= info.min and info.max <= hi:
                return x
        if x.size and (x.min() < lo or x.max() > hi):
            raise DataError(
                f"{what}: integer codes must lie in [{lo}, {hi}] (the input's quantization), got "
                f"[{x.min()}, {x.max()}]; pass float values to have them quantized"
            )
        return x

    def _split_inputs(self, x: Any) -> dict[str, Any]:
        if isinstance(x, dict):
            if x.keys() == self._input_set:
                return x
            missing = set(self.inputs) - set(x)
            extra = set(x) - set(self.inputs)
            if missing or extra:
                raise DataError(
                    f"inputs must be exactly {list(self.inputs)}; missing {sorted(missing)}, extra {sorted(extra)}"
                )
            return x
        if len(self.inputs) != 1:
            raise DataError(f"graph has inputs {list(self.inputs)}: pass a dict")
        return {self.inputs[0]: x}

    def _check_feeds(self, x: Any, time_axis: bool) -> tuple[dict[str, Any], int, bool]:
        """Validate every input; return them batched, the common batch size, and whether
        the caller passed them without a batch axis (outputs are then un-batched)."""
        lead = 1 if time_axis else 0
        checked: dict[str, Any] = {}
        batch: int | None = None
        squeeze = False
        for name, v in self._split_inputs(x).items():
            arr, b = self._check_input(name, v, time_axis=time_axis)
            if isinstance(v, SparseInput):
                squeeze = True
            elif (v.ndim if type(v) is np.ndarray else np.ndim(v)) == len(self.shapes[name]) + lead:
                squeeze = True
            if batch is not None and b != batch:
                raise DataError("all inputs must have the same batch size")
            checked[name], batch = arr, b
        return checked, batch, squeeze

    def _result(self, values: dict[str, Any]) -> Any:
        if len(self.outputs) == 1:
            return values[self.outputs[0]]
        return {o: values[o] for o in self.outputs}

    # ------------------------------------------------------------- execution
    def step(self, x: Any, reward: float | None = None) -> Any:
        """Advance one time step. ``x``: input of shape ``shape`` or ``(B, *shape)``, a
        :class:`SparseInput`, or a dict for multi-input graphs. Returns the output
        (batched as given: a leading batch axis is kept only if the input had one)."""
        if reward is not None and not np.all(np.isfinite(reward)):
            raise DataError(f"reward must be finite, got {reward!r}")
        checked, batch, squeeze = self._check_feeds(x, time_axis=False)
        self._ensure_state(batch)
        for v in checked.values():
            if type(v) is SparseInput:  # events go column by column through numpy
                plan = None
                break
        else:
            plan = self._native_plan(batch)
        if plan is not None:
            # one native call; the value buffers are reused, so outputs are copied below
            values = plan.step(checked)
            self._last_inputs, self._last_outputs = plan.last_inputs, values
            self._pending = plan.fill
        else:
            values = {}
            last_in: dict[str, list[Any]] = {}
            for name in self.order:
                k = self.kernels[name]
                ins = [checked[name]] if name in checked else [values[p] for p in self.preds[name]]
                values[name], self.state[name] = k.step(ins, self.state[name])
                last_in[name] = ins
            self._pending = None  # this step's values replace the last one's, filled or not
            self._last_inputs, self._last_outputs = last_in, values
        self.steps += 1
        if self.learning and self._plasticity is not None:
            self._fill_pending()  # before any rule changes a weight
            self._plasticity.apply(self, reward)
        if plan is not None:
            out = plan.outputs(squeeze)
            return out[self.outputs[0]] if len(self.outputs) == 1 else out
        out = self._result(values)
        if squeeze:
            out = {k: v[0] for k, v in out.items()} if isinstance(out, dict) else out[0]
        return out

    def run(self, seq: Any, reward: float | None = None) -> Any:
        """Run a window. ``seq``: ``(T, *shape)`` or ``(T, B, *shape)`` (dict for several
        inputs). Returns outputs stacked over time. Vectorized over time unless
        learning is on (then it steps, so rules see every step)."""
        checked, batch, squeeze = self._check_feeds(seq, time_axis=True)
        t_len = next(iter(checked.values())).shape[0]
        if self.learning and self._plasticity is not None and _has_rules(self._plasticity):
            outs = [self.step({n: a[t] for n, a in checked.items()}, reward) for t in range(t_len)]
            if isinstance(outs[0], dict):
                res = {k: np.stack([o[k] for o in outs]) for k in outs[0]}
                return {k: v[:, 0] for k, v in res.items()} if squeeze else res
            res = np.stack(outs)
            return res[:, 0] if squeeze else res
        self._ensure_state(batch)
        values: dict[str, np.ndarray] = {}
        for name in self.order:
            k = self.kernels[name]
            ins = [checked[name]] if name in checked else [values[p] for p in self.preds[name]]
            values[name], self.state[name] = k.run(ins, self.state[name])
        self.steps += t_len
        self.last_outputs = {n: v[-1] for n, v in values.items()}
        out = self._result(values)
        if squeeze:
            out = {k: v[:, 0] for k, v in out.items()} if isinstance(out, dict) else out[:, 0]
        return out

    # ------------------------------------------------------------ state I/O
    def state_dict(self) -> dict[str, np.ndarray]:
        """Learned parameters, neuron states and plasticity state as flat arrays."""
        out: dict[str, np.ndarray] = {
            "meta/format": np.array(_STATE_FORMAT),
            "meta/mode": np.array(self.mode),
            "meta/graph": np.array(self.graph.fingerprint()),
            "meta/steps": np.array(self.steps, dtype=np.int64),
        }
        for n, p in self.params.items():
            for k, v in p.items():
                out[f"param/{n}/{k}"] = np.array(v)
        if self.batch is not None:
            out["meta/batch"] = np.array(self.batch, dtype=np.int64)
            for n, st in self.state.items():
                for i, v in enumerate(st):
                    out[f"state/{n}/{i}"] = np.array(v)
        if self._plasticity is not None:
            for k, v in self._plasticity.state_dict().items():
                out[f"plasticity/{k}"] = np.asarray(v)
        return out

    def load_state_dict(self, d: dict[str, np.ndarray]) -> None:
        """Restore from :meth:`state_dict`, all or nothing: graph identity, every key,
        shape, dtype and finiteness (and the plasticity state against what the attached
        rules declare) are checked before anything changes; raises RuntimeStateError."""
        if not isinstance(d, dict):
            raise RuntimeStateError("state must be a mapping of arrays")

        def get(key: str) -> np.ndarray:
            if key not in d:
                raise RuntimeStateError(f"state is missing {key!r}")
            return np.asarray(d[key])

        def text(key: str) -> str:
            a = get(key)
            if a.shape != () or a.dtype.kind not in "US":
                raise RuntimeStateError(f"state {key!r} must be a string")
            return str(a)

        def count(key: str, lo: int, hi: int) -> int:
            a = get(key)
            if a.shape != () or a.dtype.kind not in "iu" or not lo <= int(a) <= hi:
                raise RuntimeStateError(f"state {key!r} must be an integer in [{lo}, {hi}]")
            return int(a)

        if text("meta/format") != _STATE_FORMAT:
            raise RuntimeStateError(
                f"not a neuroplast state file (format {text('meta/format')[:80]!r})"
            )
        if text("meta/mode") != self.mode:
            raise RuntimeStateError(
                f"state was saved in {text('meta/mode')[:20]!r} mode; runtime is {self.mode!r}"
            )
        if text("meta/graph") != self.graph.fingerprint():
            raise RuntimeStateError("state was saved for a different graph (fingerprint mismatch)")
        steps = count("meta/steps", 0, 1 << 62)
        new_params: dict[str, dict[str, np.ndarray]] = {}
        for n, p in self.params.items():
            new_params[n] = {}
            for k, v in p.items():
                a = get(f"param/{n}/{k}")
                if a.shape != v.shape or a.dtype != v.dtype:
                    raise RuntimeStateError(
                        f"param/{n}/{k}: saved {a.dtype}{a.shape}, expected {v.dtype}{v.shape}"
                    )
                if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
                    raise RuntimeStateError(f"param/{n}/{k} contains NaN or Inf")
                new_params[n][k] = a
        new_state: dict[str, tuple] = {}
        batch = None
        if "meta/batch" in d:
            batch = count("meta/batch", 1, 1 << 20)
            for n, k in self.kernels.items():
                ref = k.init_state(batch)
                vals = []
                for i, r in enumerate(ref):
                    a = get(f"state/{n}/{i}")
                    if a.shape != np.shape(r) or a.dtype != np.asarray(r).dtype:
                        raise RuntimeStateError(
                            f"state/{n}/{i}: saved {a.dtype}{a.shape}, expected {np.asarray(r).dtype}{np.shape(r)}"
                        )
                    if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
                        raise RuntimeStateError(f"state/{n}/{i} contains NaN or Inf")
                    vals.append(a.copy())
                new_state[n] = type(ref)(*vals) if hasattr(ref, "_fields") else tuple(vals)
        plast = {k[len("plasticity/") :]: v for k, v in d.items() if k.startswith("plasticity/")}
        prepared = None
        if plast and self._plasticity is not None:
            # the engine checks its arrays against what its rules declare; changes nothing
            prepared = self._plasticity.prepare_state(plast, self)
        # commit only after everything validated: a bad file never leaves a half-loaded runtime
        for n, p in new_params.items():
            for k, a in p.items():
                self.params[n][k][...] = a
        self.batch = batch
        self.state = new_state
        self._plan = None
        self.steps = steps
        if prepared is not None:
            self._plasticity.commit_state(prepared, self)  # pushes learned thresholds too

    def save_state(self, path: str | Path) -> None:
        """Atomically write :meth:`state_dict` as ``.npz`` (temp file, fsync, rename)."""
        from neuroplast.arrayfile import npz_bytes

        atomic_write_bytes(path, npz_bytes(self.state_dict()))

    def load_state(self, path: str | Path) -> None:
        """Load a file written by :meth:`save_state`: read by :mod:`neuroplast.arrayfile`
        under the bundle limits (no pickles, sizes checked before allocation)."""
        from neuroplast.arrayfile import ReadLimits, read_npz

        p = Path(path)
        if not p.is_file():
            raise RuntimeStateError(f"state file {str(path)!r} does not exist")
        lim = ReadLimits()
        try:
            if p.stat().st_size > lim.file_bytes:
                raise DataError(f"{p.stat().st_size} bytes, over the limit of {lim.file_bytes}")
            d = read_npz(p, str(path), lim)
        except (DataError, OSError) as e:
            raise RuntimeStateError(f"state file {str(path)!r} is corrupt: {e}") from None
        self.load_state_dict(d)

    def __repr__(self) -> str:
        return f"Runtime(mode={self.mode!r}, nodes={len(self.order)}, inputs={list(self.inputs)}, outputs={list(self.outputs)})"
