"""PlasticityEngine: attaches rules to named layers of a Runtime and applies them.

The Runtime calls ``engine.apply(rt, reward)`` after every step when learning is on
(``rt.learn(True)``). The engine reads ``rt.last_inputs[layer]`` (presynaptic activity)
and ``rt.last_outputs[post]`` (postsynaptic activity), and updates
``rt.params[layer]["weight"]`` in place: float32 weights directly, int8 weights by
unbiased stochastic rounding (:func:`~neuroplast.plasticity.quantized_apply`) with a
seeded generator whose state is part of :meth:`PlasticityEngine.state_dict`.

Which activity a rule sees:

* weight rules (STDP family, Hebbian, Oja, delta rule, synaptic scaling, FEAST) act
  on a ``Linear`` layer ``layer``; ``pre`` is its input; ``post`` defaults to the
  layer's single spiking successor (e.g. the LIF after it) or else the layer's own
  output. Integer activity is dequantized with the producer's quantization.
* threshold rules (spike-triggered / rate-target) act on a neuron node (LIF, IF,
  CubaLIF) and move its firing threshold ``v_th = v_th0 + theta``.
* ``hlop`` on a layer learns the subspace of its input; the rate rules on the same
  layer (Hebbian, delta rule) then learn from ``x - H^T H x`` with the frozen rows.
  Use :meth:`PlasticityEngine.hlop_add_rows` / :meth:`hlop_merge` between tasks.

Spike rules need batch size 1 (their traces are per synapse); rate rules average over
the batch. Rules are ``(kind, params)`` pairs serialised by :meth:`to_json`.

The engine only dispatches: each rule's :class:`~neuroplast.plasticity.spec.RuleSpec`
(from the registry) says which node kinds it applies to, the state it keeps and its pure
update function; the engine gathers activity into a
:class:`~neuroplast.plasticity.spec.StepIO`, calls the update, and commits ``dw``
(float: add and clip; int: :func:`~neuroplast.plasticity.quantized_apply`).

Safe defaults, resolved when a rule is first bound to a runtime (:meth:`validate` or
the first learning step): bounds left ``None`` become the layer's own range and sign
(``[0, A]``, ``[-A, A]`` or ``[-A, 0]`` with ``A = max|w|``); explicit bounds that would
clip more than ``CLIP_SHARE`` of the layer's existing weights are refused with an
explanation unless the rule was attached with ``force=True``; a threshold rule's
``theta_max=None`` becomes the base threshold ``max|v_th0|``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neuroplast.errors import PlasticityError, RuntimeStateError
from neuroplast.plasticity._common import check_finite
from neuroplast.plasticity.hlop import HLOPState, hlop_add_rows, hlop_freeze, hlop_project
from neuroplast.plasticity.registry import rule_from_dict, rule_spec, rule_to_dict
from neuroplast.plasticity.spec import QStepIO, RuleSpec, StepIO

__all__ = ["PlasticityEngine", "PLASTICITY_FORMAT", "CLIP_SHARE"]

PLASTICITY_FORMAT = "neuroplast-plasticity"
_VERSION = 1
#: explicit bounds may clip at most this share of a layer's existing weights
CLIP_SHARE = 0.01
_MAX_COUNT = 1 << 62
#: saved float state beyond this magnitude is refused (traces and thresholds live far
#: below it; float32 kernels overflow far above it)
_MAX_STATE = 1e15


@dataclass
class _Binding:
    layer: str
    rule: Any  # as attached (serialised)
    kind: str
    spec: RuleSpec
    post: str | None
    every: int
    force: bool = False
    eff: Any = None  # rule with defaults resolved from the layer (None: not bound yet)
    shape: tuple[int, int] = (0, 0)  # (n_post, n_pre) the state declaration uses
    v_th0: np.ndarray | None = None
    state: dict[str, np.ndarray] = field(default_factory=dict)
    updates: int = 0
    seen: int = 0
    post_sum: np.ndarray | None = None
    #: the rule's bound streaming step: (pre, post, weight, state, eff, post_sum, run)
    plan: tuple | None = field(default=None, repr=False, compare=False)
    #: (pre, post, weight) arrays of the last step that had no bound step
    last_io: tuple = field(default=(), repr=False, compare=False)


def _dense(x: Any, n: int) -> np.ndarray:
    """Runtime activity -> float64 (B, n); SparseInput becomes a dense row."""
    if hasattr(x, "indices") and not isinstance(x, np.ndarray):
        out = np.zeros((1, n))
        vals = 1.0 if x.values is None else np.asarray(x.values, dtype=np.float64)
        np.add.at(out[0], np.asarray(x.indices), vals)
        return out
    a = np.asarray(x)
    return a.reshape(a.shape[0], -1).astype(np.float64)


def _layer_bounds(w: np.ndarray, fallback: tuple[float, float]) -> tuple[float, float]:
    """The layer's range and sign: ``[0, A]``, ``[-A, A]`` or ``[-A, 0]``, ``A = max|w|``
    (a hair wider, so the largest weight is inside after rounding)."""
    lo, hi = (float(w.min()), float(w.max())) if w.size else (0.0, 0.0)  # exact, any dtype
    a = max(-lo, hi)
    if a == 0.0:
        return fallback
    a *= 1.0 + 1e-6
    return (-a if lo < 0 else 0.0, a if hi > 0 else 0.0)


class PlasticityEngine:
    """Rules attached to named layers; see the module docstring.

    ``seed`` seeds the generator used for stochastic rounding in integer mode and for
    new HLOP rows. ``log`` holds the LearningGuard's decisions (saved with the state).
    """

    def __init__(self, seed: int = 0) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
            raise PlasticityError(f"PlasticityEngine seed must be an int >= 0, got {seed!r}")
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.bindings: list[_Binding] = []
        self.log: list[dict[str, Any]] = []
        self._targets: dict[str, np.ndarray] = {}
        self._rt_ref: Any = None  # weak reference to the runtime last applied to

    def __getstate__(self) -> dict[str, Any]:
        """Copies and pickles drop the bound native steps (they view this engine's and a
        runtime's arrays); the copy binds its own at its next learning step."""
        d = self.__dict__.copy()
        d["bindings"] = [dataclasses.replace(b, plan=None, last_io=()) for b in self.bindings]
        return d

    # ----------------------------------------------------------------- setup
    def attach(
        self, layer: str, rule: Any, post: str | None = None, every: int = 1, force: bool = False
    ) -> None:
        """Attach ``rule`` (a registered params dataclass) to node ``layer``.

        ``post``: node whose output is the postsynaptic activity (weight rules only).
        ``every``: apply every ``every`` runtime steps (e.g. synaptic scaling per sample).
        ``force``: accept explicit bounds that clip existing weights (see module doc).
        """
        spec = rule_spec(rule)
        if not isinstance(layer, str) or not layer:
            raise PlasticityError(f"attach: layer must be a node name, got {layer!r}")
        if isinstance(every, bool) or not isinstance(every, int) or not 1 <= every < _MAX_COUNT:
            raise PlasticityError(f"attach: every must be an int >= 1, got {every!r}")
        if not isinstance(force, bool):
            raise PlasticityError(f"attach: force must be true or false, got {force!r}")
        if post is not None and (spec.target != "synapses" or not spec.post):
            raise PlasticityError(f"attach: rule {spec.kind!r} takes no post node")
        for b in self.bindings:
            if b.layer == layer and b.kind == spec.kind:
                raise PlasticityError(f"rule {spec.kind!r} is already attached to {layer!r}")
        self.bindings.append(_Binding(layer, rule, spec.kind, spec, post, every, force))

    def detach(self, layer: str, kind: str | None = None) -> None:
        """Remove the rules on ``layer`` (only ``kind`` if given)."""
        keep = [b for b in self.bindings if not (b.layer == layer and kind in (None, b.kind))]
        if len(keep) == len(self.bindings):
            raise PlasticityError(f"no rule {kind or ''} attached to {layer!r}")
        self.bindings = keep

    def has_rules(self) -> bool:
        """True when at least one rule is attached."""
        return bool(self.bindings)

    def set_target(self, layer: str, target: Any) -> None:
        """Target for the delta rule on ``layer`` at the next step (consumed by it)."""
        t = np.asarray(target, dtype=np.float64)
        check_finite(t, f"target for {layer!r}")
        self._targets[layer] = t

    def _binding(self, layer: str, kind: str) -> _Binding:
        for b in self.bindings:
            if b.layer == layer and b.kind == kind:
                return b
        raise PlasticityError(f"no {kind!r} rule attached to {layer!r}")

    def hlop_add_rows(self, layer: str, k: int, n_in: int | None = None) -> None:
        """Add ``k`` trainable HLOP rows on ``layer`` (start of a task)."""
        b = self._binding(layer, "hlop")
        st = hlop_add_rows(self._hlop_state(b, n_in), k, self.rng)
        b.state.update(H=st.H, frozen=st.frozen.astype(np.int8), M=st.M)

    def hlop_merge(self, layer: str) -> None:
        """Freeze all HLOP rows on ``layer`` (end of a task)."""
        b = self._binding(layer, "hlop")
        st = hlop_freeze(self._hlop_state(b))
        b.state.update(H=st.H, frozen=st.frozen.astype(np.int8), M=st.M)

    def _hlop_state(self, b: _Binding, n_in: int | None = None) -> HLOPState:
        if "H" not in b.state:
            if n_in is None:
                raise PlasticityError(
                    f"HLOP on {b.layer!r} has no rows yet: pass n_in to hlop_add_rows"
                )
            b.shape = (0, n_in)
            b.state.update(self._init_state(b))
        return HLOPState(b.state["H"], b.state["frozen"].astype(bool), b.state["M"])

    # ----------------------------------------------------------------- binding
    def _bind(self, rt: Any, b: _Binding) -> None:
        """Check ``b`` against ``rt``'s graph; resolve defaults; initialise state."""
        nodes = rt.graph.nodes
        spec = b.spec
        if b.layer not in nodes:
            raise PlasticityError(f"rule {b.kind!r}: no node named {b.layer!r} in the graph")
        node_kind = type(nodes[b.layer]).__name__
        if node_kind not in spec.layers:
            raise PlasticityError(
                f"rule {b.kind!r} acts on {'/'.join(spec.layers)} nodes; {b.layer!r} is {node_kind}"
            )
        if spec.target == "neurons":
            k = rt.kernels[b.layer]
            if not hasattr(getattr(k, "p", None), "__dataclass_fields__"):
                raise PlasticityError(f"rule {b.kind!r}: {b.layer!r} has no threshold to adapt")
            n = int(np.prod(rt.shapes[b.layer]))
            vth = np.asarray(self._get_vth(k))
            b.v_th0 = np.broadcast_to(vth.ravel(), (n,)).copy()  # kernel units, per neuron
            b.shape = (n, 0)
            eff = b.rule
            if getattr(eff, "theta_max", 0.0) is None:  # the base threshold, real units
                v0 = b.v_th0.astype(np.float64) * (self._vscale(k) if rt.mode == "int" else 1.0)
                top = float(np.abs(v0[np.isfinite(v0)]).max(initial=0.0))
                top = top if top > 0 else 1.0
                eff = dataclasses.replace(
                    eff, theta_max=top if top > eff.theta_min else eff.theta_min + top
                )
            b.eff = eff
        else:
            w = rt.params.get(b.layer, {}).get("weight")
            if w is None:
                raise PlasticityError(f"rule {b.kind!r}: {b.layer!r} has no weights")
            b.shape = (int(w.shape[0]), int(np.prod(w.shape[1:])))
            if b.post is not None and b.post not in nodes:
                raise PlasticityError(f"rule {b.kind!r}: no post node {b.post!r} in the graph")
            if b.spec.update_q is not None and rt.mode != "int":
                raise PlasticityError(
                    f"rule {b.kind!r} on {b.layer!r} is integer-only: load the runtime in "
                    "integer mode (mode='int')"
                )
            if b.spec.update_q is not None:  # integer-native: bounds are weight codes
                wv = w.reshape(b.shape).astype(np.float64)
            elif rt.mode != "int" and b.spec.resolve is None:
                wv = w.reshape(b.shape)  # the bounds read only its min and max: no copy
            else:
                wv = self._real_weight(rt, b.layer, w)
            b.eff = self._resolve(rt, b, wv)
        if not b.state:
            b.state = self._init_state(b)

    def _resolve(self, rt: Any, b: _Binding, w: np.ndarray) -> Any:
        p, spec = b.rule, b.spec
        if spec.resolve is not None:
            p = spec.resolve(p, w)
        names = {f.name for f in dataclasses.fields(p)}
        if not {"w_min", "w_max"} <= names:
            return p
        lo0, hi0 = _layer_bounds(w, spec.fallback_bounds)
        lo = lo0 if p.w_min is None else float(p.w_min)
        hi = hi0 if p.w_max is None else float(p.w_max)
        if not lo < hi:
            raise PlasticityError(
                f"rule {b.kind!r} on {b.layer!r}: bounds [{lo:g}, {hi:g}] are empty "
                f"(the layer's range is [{lo0:g}, {hi0:g}])"
            )
        out = 0
        if w.size and (float(w.min()) < lo or float(w.max()) > hi):  # else none is outside
            # compared in float64 (a float32 layer's weights widen exactly)
            out = int(np.count_nonzero((w < np.float64(lo)) | (w > np.float64(hi))))
        unit = " codes" if spec.update_q is not None else ""
        if out > CLIP_SHARE * w.size and not b.force:
            raise PlasticityError(
                f"rule {b.kind!r} on {b.layer!r}: bounds [{lo:g}, {hi:g}]{unit} would clip {out} of "
                f"{w.size} existing weights ({100 * out / w.size:.0f}%; the layer spans "
                f"[{float(w.min()):.3g}, {float(w.max()):.3g}]); leave w_min/w_max unset to "
                f"use the layer's range [{lo0:.3g}, {hi0:.3g}], or attach with force=True"
            )
        if spec.update_q is not None:
            return p  # integer bounds, kept as given
        return dataclasses.replace(p, w_min=lo, w_max=hi)

    def _decl(self, b: _Binding) -> dict[str, tuple[tuple[int | str, ...], str]]:
        n_post, n_pre = b.shape
        return b.spec.state(b.eff if b.eff is not None else b.rule, n_post, n_pre)

    def _init_state(self, b: _Binding) -> dict[str, np.ndarray]:
        if b.spec.init is not None:
            return b.spec.init(b.eff, *b.shape)
        return {
            k: np.zeros(tuple(0 if isinstance(d, str) else d for d in shape), dtype)
            for k, (shape, dtype) in self._decl(b).items()
        }

    def validate(self, rt: Any) -> None:
        """Bind every attached rule to ``rt`` (node kinds, shapes, default bounds);
        raises PlasticityError naming the rule and what is wrong."""
        for b in self.bindings:
            if b.eff is None:
                self._bind(rt, b)

    # ----------------------------------------------------------------- apply
    def apply(self, rt: Any, reward: float | None = None) -> None:
        """Apply every attached rule once, after ``rt.step`` (called by the Runtime)."""
        if self._rt_ref is None or self._rt_ref() is not rt:
            self._rt_ref = weakref.ref(rt)
        if reward is not None:
            check_finite(np.asarray(reward, dtype=np.float64), "reward")
        self.validate(rt)
        for b in self.bindings:
            if rt.steps % b.every == 0:
                self._apply(rt, b, reward)

    def _apply(self, rt: Any, b: _Binding, reward: Any) -> None:
        spec = b.spec
        if spec.target == "neurons":
            s = self._dequant(rt, b.layer, _dense(rt.last_outputs[b.layer], 0))
            check_finite(s, f"output of {b.layer!r}")
            self._stats_post(b, s)
            _, new = spec.update(b.eff, StepIO(None, None, s), b.state)
            b.state = new
            self._set_vth(rt, b, rt.kernels[b.layer], new["theta"])
            b.updates += 1
            return
        w_param = rt.params[b.layer]["weight"]
        n_out, n_in = b.shape
        if spec.update_q is not None:  # integer-native rule: exact codes in, codes out
            qio = self._int_io(rt, b, w_param)
            self._stats_post(b, qio.post.astype(np.float64))
            q, new = spec.update_q(b.eff, qio, b.state)
            w_param[...] = self._checked_codes(rt, b, q).reshape(w_param.shape)
            b.state = new
            b.updates += 1
            return
        fast = spec.fast is not None and rt.mode != "int" and w_param.dtype == np.float32
        if fast and spec.fast_plan is not None and self._planned(rt, b, w_param):
            return
        if fast:
            xy = self._fast_rows(rt, b, n_in, n_out)
            if xy is not None:  # one float32 sample each way (streaming): no copies
                self._stats_post(b, xy[1][None])
                b.state = spec.fast(b.eff, w_param.reshape(n_out, n_in), *xy, b.state)
                b.updates += 1
                return
        x = self._pre(rt, b, n_in) if spec.pre else None
        if spec.batch1 and x is not None and x.shape[0] != 1:
            raise PlasticityError(
                f"rule {b.kind!r} on {b.layer!r} needs batch size 1 (got {x.shape[0]})"
            )
        y = self._post(rt, b, n_out) if spec.post else None
        if y is not None:
            self._stats_post(b, y)
        if spec.target == "inputs":
            _, b.state = spec.update(b.eff, StepIO(None, x, None), b.state)
            b.updates += 1
            return
        if fast:  # other dtypes or a sparse input, as _pre / _post gave them
            b.state = spec.fast(b.eff, w_param.reshape(n_out, n_in), x[0], y[0], b.state)
            b.updates += 1
            return
        target = self._targets.pop(b.layer, None)
        w = self._real_weight(rt, b.layer, w_param)
        pre_u = self._projected(b.layer, x) if x is not None else None
        io = StepIO(w, x, y, reward, target, pre_u)
        dw, new = spec.update(b.eff, io, b.state)
        if not isinstance(new, dict) or (dw is not None and np.shape(dw) != b.shape):
            raise PlasticityError(
                f"rule {b.kind!r}: update must return (dw of shape {b.shape} or None, "
                f"state dict), got dw {np.shape(dw) if dw is not None else None}, "
                f"state {type(new).__name__}"
            )
        b.state = new
        if dw is None:
            return
        self._commit(rt, b, w_param, np.asarray(dw, np.float64))
        b.updates += 1

    def _planned(self, rt: Any, b: _Binding, w_param: np.ndarray) -> bool:
        """One streaming step as one native call (``spec.fast_plan``, bound once to the
        arrays), taken while the runtime hands the rule the same activity arrays every step
        (its native plan's buffers) and nothing the step reads was replaced (weights,
        state, params, the post sum); False: take the general path (which also names a
        NaN/Inf input the bound step refused, having changed nothing)."""
        x = rt.last_inputs[b.layer][0]
        y = rt.last_outputs[b.post if b.post is not None else self._post_node(rt, b)]
        p = b.plan
        if (
            p is None or p[0] is not x or p[1] is not y or p[2] is not w_param
            or p[3] is not b.state or p[4] is not b.eff or p[5] is not b.post_sum
        ):  # fmt: skip
            p = b.plan = self._bind_plan(b, w_param, x, y)
            if p is None:
                return False
        try:
            p[6]()
        except FloatingPointError:
            return False
        b.seen += 1
        b.updates += 1
        return True

    def _bind_plan(self, b: _Binding, w_param: np.ndarray, x: Any, y: Any) -> tuple | None:
        """A bound step for ``b`` once the same (pre, post, weight) arrays came twice in a
        row (a numpy runtime makes new ones each step: binding would not pay)."""
        last, b.last_io = b.last_io, (x, y, w_param)
        if b.post_sum is None or len(last) != 3 or any(u is not v for u, v in zip(last, b.last_io)):
            return None
        if not (w_param.flags.c_contiguous and w_param.flags.writeable):
            return None  # its reshape would be a copy: the update must land in the layer
        state = {k: np.array(v) for k, v in b.state.items()}  # its own: updated in place
        run = b.spec.fast_plan(b.eff, w_param.reshape(b.shape), x, y, state, b.post_sum)
        if run is None:
            return None
        b.state = state
        return (x, y, w_param, state, b.eff, b.post_sum, run)

    # -- activity -----------------------------------------------------------
    def _dequant(self, rt: Any, node: str, a: np.ndarray) -> np.ndarray:
        if rt.mode != "int":
            return a
        q = getattr(rt.kernels[node], "out_quant", None)
        if q is None:
            return a
        scale = q.scale if isinstance(q.scale, float) else np.asarray(q.scale)
        zp = q.zero_point if isinstance(q.zero_point, int) else np.asarray(q.zero_point)
        return (a - zp) * scale

    def _pre(self, rt: Any, b: _Binding, n_in: int) -> np.ndarray:
        x = _dense(rt.last_inputs[b.layer][0], n_in)
        if rt.mode == "int" and rt.preds[b.layer]:
            x = self._dequant(rt, rt.preds[b.layer][0], x)
        if x.shape[1] != n_in:
            raise PlasticityError(
                f"rule {b.kind!r} on {b.layer!r}: input has {x.shape[1]} values per sample, "
                f"the rule needs {n_in} (a conv layer's weights see patches, not its input)"
            )
        check_finite(x, f"input of {b.layer!r}")
        return x

    @staticmethod
    def _checked_codes(rt: Any, b: _Binding, q: Any) -> np.ndarray:
        """An integer-native rule's new weight codes, refused (nothing committed) unless
        they have the layer's shape, are integral and lie in its code range: a user rule
        must not wrap an int8 weight around silently."""
        qa = np.asarray(q)
        qmin, qmax = rt.graph.nodes[b.layer].weight_q.range
        bad = None
        if qa.shape != b.shape:
            bad = f"shape {qa.shape}, want {b.shape}"
        elif qa.dtype.kind not in "iub" and not (
            qa.dtype.kind == "f" and np.isfinite(qa).all() and (qa == np.round(qa)).all()
        ):
            bad = f"non-integral values ({qa.dtype})"
        elif qa.size and (qa.min() < qmin or qa.max() > qmax):
            bad = f"codes in [{qa.min()}, {qa.max()}] outside [{qmin}, {qmax}]"
        if bad is not None:
            raise PlasticityError(f"rule {b.kind!r} on {b.layer!r}: update_q returned {bad}")
        return qa

    def _int_io(self, rt: Any, b: _Binding, w_param: np.ndarray) -> QStepIO:
        """Integer activity for an integer-native rule: the layer's input codes minus its
        input zero point, the post node's output codes minus theirs (an event input
        lists codes of +1, the others are 0, as on the board)."""
        n_out, n_in = b.shape
        x = rt.last_inputs[b.layer][0]
        if hasattr(x, "indices") and not isinstance(x, np.ndarray):
            a = np.zeros((1, n_in), np.int64)
            np.add.at(a[0], np.asarray(x.indices), 1)
        else:
            a = np.asarray(x).reshape(-1, n_in).astype(np.int64)
        node = self._post_node(rt, b)
        y = np.asarray(rt.last_outputs[node]).reshape(a.shape[0], -1).astype(np.int64)
        if y.shape[1] != n_out:
            raise PlasticityError(
                f"rule {b.kind!r} on {b.layer!r}: post node {node!r} has {y.shape[1]} "
                f"neurons, the layer has {n_out} outputs"
            )
        if b.spec.batch1 and a.shape[0] != 1:
            raise PlasticityError(
                f"rule {b.kind!r} on {b.layer!r} needs batch size 1 (got {a.shape[0]})"
            )
        zq = getattr(rt.kernels[node], "out_quant", None)
        zp_out = np.asarray(0 if zq is None else zq.zero_point, np.int64)
        zp_in = np.asarray(getattr(rt.kernels[b.layer], "zp_in", 0), np.int64)
        return QStepIO(w_param.reshape(b.shape), a - zp_in, y - zp_out)

    def _fast_rows(
        self, rt: Any, b: _Binding, n_in: int, n_out: int
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Pre and post activity of a float batch-1 step as they are (float32 rows), checked
        finite, or None when they need :meth:`_pre` / :meth:`_post` (other dtypes, sparse
        input, batches). A float32 sum is finite when they all are, short of overflow
        (then the exact check decides)."""
        x = rt.last_inputs[b.layer][0]
        y = rt.last_outputs[self._post_node(rt, b)]
        if not (
            type(x) is np.ndarray and type(y) is np.ndarray
            and x.dtype == np.float32 and y.dtype == np.float32
            and x.size == n_in and y.size == n_out and x.shape[0] == 1 and y.shape[0] == 1
        ):  # fmt: skip
            return None
        x, y = x.reshape(n_in), y.reshape(n_out)
        if not math.isfinite(x.sum()):
            check_finite(x, f"input of {b.layer!r}")
        if not math.isfinite(y.sum()):
            check_finite(y, f"output of {self._post_node(rt, b)!r}")
        return x, y

    def _post_node(self, rt: Any, b: _Binding) -> str:
        if b.post is not None:
            return b.post
        succ = rt.graph.successors(b.layer)
        if len(succ) == 1 and getattr(rt.kernels[succ[0]], "spiking", False):
            return succ[0]
        return b.layer

    def _post(self, rt: Any, b: _Binding, n_out: int) -> np.ndarray:
        node = self._post_node(rt, b)
        y = _dense(rt.last_outputs[node], n_out)
        if y.shape[1] != n_out:
            raise PlasticityError(
                f"rule {b.kind!r} on {b.layer!r}: post node {node!r} has {y.shape[1]} "
                f"neurons, the layer has {n_out} outputs"
            )
        y = self._dequant(rt, node, y)
        check_finite(y, f"output of {node!r}")
        return y

    def _projected(self, layer: str, x: np.ndarray) -> np.ndarray:
        for hb in self.bindings:
            if hb.layer == layer and hb.kind == "hlop" and "H" in hb.state:
                frozen = hb.state["frozen"].astype(bool)
                if frozen.any():
                    return hlop_project(hb.state["H"][frozen], x)
        return x

    # -- weights ------------------------------------------------------------
    def _weight_scale(self, rt: Any, layer: str) -> np.ndarray | float:
        q = rt.graph.nodes[layer].weight_q
        return q.scale if isinstance(q.scale, float) else np.asarray(q.scale, dtype=np.float64)

    def _commit(self, rt: Any, b: _Binding, w_param: np.ndarray, dw: np.ndarray) -> None:
        """Add ``dw`` (real units, (n_post, n_pre)) to the layer's weights within bounds."""
        check_finite(dw, f"update of {b.layer!r}")
        lo, hi = getattr(b.eff, "w_min", -np.inf), getattr(b.eff, "w_max", np.inf)
        shape = w_param.shape
        w2 = w_param.reshape(b.shape)
        if rt.mode == "int":
            qmin, qmax = rt.graph.nodes[b.layer].weight_q.range
            s = self._weight_scale(rt, b.layer)
            new = b.spec.update_int(w2, dw, s, self.rng, lo, hi, qmin, qmax)
        else:
            new = np.clip(w2 + dw, lo, hi)
        w_param[...] = np.asarray(new).reshape(shape)

    def _real_weight(self, rt: Any, layer: str, w_param: np.ndarray) -> np.ndarray:
        w = w_param.reshape(w_param.shape[0], -1).astype(np.float64)
        if rt.mode != "int":
            return w
        s = self._weight_scale(rt, layer)
        return w * (s[:, None] if isinstance(s, np.ndarray) and s.ndim else s)

    # -- thresholds ---------------------------------------------------------
    @staticmethod
    def _get_vth(k: Any) -> np.ndarray:
        p = k.p
        return p.lif.v_th if hasattr(p, "lif") else p.v_th

    @staticmethod
    def _vscale(k: Any) -> float:
        q = k.ctx.in_quants[0]
        return q.scale if isinstance(q.scale, float) else float(np.asarray(q.scale).ravel()[0])

    def _set_vth(self, rt: Any, b: _Binding, k: Any, theta: np.ndarray) -> None:
        """``v_th = v_th0 + theta`` per neuron (a shared ``v_th=[0.5]`` becomes per
        neuron), shaped like one sample of the layer's output."""
        base = b.v_th0
        if rt.mode == "int":
            v = base + np.round(theta / self._vscale(k)).astype(base.dtype)
        else:
            v = base + theta
        new = v.reshape(rt.shapes[b.layer]).astype(base.dtype)
        p = k.p
        if hasattr(p, "lif"):
            k.p = dataclasses.replace(p, lif=dataclasses.replace(p.lif, v_th=new))
        else:
            k.p = dataclasses.replace(p, v_th=new)

    def _stats_post(self, b: _Binding, y: np.ndarray) -> None:
        if b.post_sum is None:
            b.post_sum = y.sum(axis=0, dtype=np.float64)
        else:  # in place: the sum is the binding's own array (load makes a copy)
            b.post_sum += y[0] if y.shape[0] == 1 else y.sum(axis=0)
        b.seen += y.shape[0]

    # ----------------------------------------------------------------- stats
    def stats(self, rt: Any | None = None) -> dict[str, dict[str, Any]]:
        """Per rule ``"layer:kind"``: update count, mean firing rate of the post
        neurons (spikes or activity per step), the weight norm/min/max (of ``rt``, or
        of the runtime the engine last ran in) and the bounds in use."""
        if rt is None and self._rt_ref is not None:
            rt = self._rt_ref()
        out: dict[str, dict[str, Any]] = {}
        for b in self.bindings:
            d: dict[str, Any] = {"updates": b.updates, "every": b.every}
            if b.post_sum is not None and b.seen:
                rates = b.post_sum / b.seen
                d["firing_rate_mean"] = float(rates.mean())
                d["firing_rate_max"] = float(rates.max())
            if "theta" in b.state:
                d["theta_mean"] = float(np.mean(b.state["theta"]))
            if "H" in b.state:
                d["hlop_rows"] = int(b.state["H"].shape[0])
                d["hlop_frozen"] = int(b.state["frozen"].sum())
            if rt is not None and b.spec.target == "synapses":
                w = self._real_weight(rt, b.layer, rt.params[b.layer]["weight"])
                d["weight_norm"] = float(np.linalg.norm(w))
                d["weight_min"], d["weight_max"] = float(w.min()), float(w.max())
            if b.eff is not None and hasattr(b.eff, "w_min"):
                d["bounds"] = f"[{b.eff.w_min:.3g}, {b.eff.w_max:.3g}]"
            out[f"{b.layer}:{b.kind}"] = d
        return out

    # ----------------------------------------------------------------- state
    def state_dict(self) -> dict[str, np.ndarray]:
        """Rule states (traces, thresholds, subspaces), counters, the generator and
        the guard's decisions."""
        out: dict[str, np.ndarray] = {
            "rng": np.array(json.dumps(self.rng.bit_generator.state)),
            "layout": np.array(json.dumps([[b.layer, b.kind] for b in self.bindings])),
            "guard": np.array(json.dumps(self.log)),
        }
        for i, b in enumerate(self.bindings):
            pre = f"{i}/{b.layer}/{b.kind}"
            out[f"{pre}/_updates"] = np.array(b.updates, np.int64)
            out[f"{pre}/_seen"] = np.array(b.seen, np.int64)
            if b.post_sum is not None:  # a copy: the binding's sum is updated in place
                out[f"{pre}/_post_sum"] = np.array(b.post_sum, np.float64)
            for k, v in b.state.items():
                out[f"{pre}/{k}"] = np.array(v)
        return out

    def load_state_dict(self, d: dict[str, np.ndarray], rt: Any | None = None) -> None:
        """Restore :meth:`state_dict`, all or nothing: every array is checked against
        what the attached rules declare (names, shapes, dtypes, finiteness) before
        anything changes; raises RuntimeStateError. With ``rt`` the rules are bound to
        it first (so shapes are known) and restored thresholds are pushed into its
        neurons. An engine without rules ignores saved rule state."""
        self.commit_state(self.prepare_state(d, rt), rt)

    def prepare_state(self, d: dict[str, np.ndarray], rt: Any | None = None) -> Any:
        """The validation half of :meth:`load_state_dict`; changes nothing."""
        if not self.bindings:
            return None
        if rt is not None:
            self.validate(rt)
        try:
            layout = json.loads(str(d["layout"]))
            rng_state = json.loads(str(d["rng"]))
            log = json.loads(str(d["guard"])) if "guard" in d else []
        except (KeyError, ValueError, TypeError, RecursionError) as e:
            raise RuntimeStateError(f"plasticity state is missing or corrupt ({e})") from None
        want = [[b.layer, b.kind] for b in self.bindings]
        if layout != want:
            raise RuntimeStateError(
                f"plasticity state is for rules {layout!r:.200}, engine has {want}"
            )
        if not isinstance(log, list) or not all(isinstance(e, dict) for e in log):
            raise RuntimeStateError("plasticity state 'guard' must be a list of decisions")
        known = {"rng", "layout", "guard"}
        new = []
        for i, b in enumerate(self.bindings):
            pre = f"{i}/{b.layer}/{b.kind}/"
            st = {k[len(pre) :]: v for k, v in d.items() if k.startswith(pre)}
            known.update(pre + k for k in st)
            upd, seen = (
                self._count(st.pop(c, np.array(0)), pre + c) for c in ("_updates", "_seen")
            )
            ps = st.pop("_post_sum", None)
            if ps is not None:
                ps = self._array(ps, pre + "_post_sum", "f")
                if b.eff is not None and b.spec.post and ps.shape != (b.shape[0],):
                    raise RuntimeStateError(
                        f"plasticity state {pre}_post_sum: shape {ps.shape}, expected ({b.shape[0]},)"
                    )
            new.append((self._check_rule_state(b, st, pre), upd, seen, ps))
        extra = sorted(set(d) - known)
        if extra:
            raise RuntimeStateError(f"plasticity state has unknown entries {extra[:3]!r:.200}")
        rng = np.random.default_rng()
        try:
            if not isinstance(rng_state, dict) or rng_state.get("bit_generator") != "PCG64":
                raise ValueError("not a PCG64 state")
            rng.bit_generator.state = rng_state
        except Exception as e:  # noqa: BLE001 - numpy raises many types for bad states
            raise RuntimeStateError(f"plasticity generator state is corrupt ({e})") from None
        return new, rng, log

    def commit_state(self, prepared: Any, rt: Any | None = None) -> None:
        """The apply half of :meth:`load_state_dict` (after :meth:`prepare_state`)."""
        if prepared is None:
            return
        new, rng, log = prepared
        for b, (st, upd, seen, ps) in zip(self.bindings, new, strict=True):
            if st is not None:
                b.state = st
            b.updates, b.seen, b.post_sum = upd, seen, ps
        self.rng, self.log = rng, log
        if rt is not None:
            self.sync(rt)

    @staticmethod
    def _array(v: Any, key: str, kinds: str) -> np.ndarray:
        a = np.asarray(v)
        if a.dtype.kind not in kinds:
            raise RuntimeStateError(f"plasticity state {key!r} has dtype {a.dtype}")
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise RuntimeStateError(f"plasticity state {key!r} contains NaN/Inf")
        return np.array(a)

    def _count(self, v: Any, key: str) -> int:
        a = self._array(v, key, "iu")
        if a.shape != () or not 0 <= int(a) < _MAX_COUNT:
            raise RuntimeStateError(f"plasticity state {key!r} must be a count >= 0")
        return int(a)

    def _check_rule_state(
        self, b: _Binding, st: dict[str, np.ndarray], pre: str
    ) -> dict[str, np.ndarray] | None:
        """Saved arrays of one rule against its declaration; None: nothing saved."""
        if not st:
            return None
        if b.eff is None and b.spec.target != "inputs":
            raise RuntimeStateError(
                f"plasticity state {pre}: rule not bound to a runtime yet; load the state "
                "through Runtime.load_state (or pass rt=)"
            )
        decl = self._decl(b)
        if set(st) != set(decl):
            raise RuntimeStateError(
                f"plasticity state {pre}: has {sorted(st)!r:.200}, the rule declares {sorted(decl)}"
            )
        sym: dict[str, int] = {}
        out = {}
        for k, (shape, dtype) in decl.items():
            a = self._array(st[k], pre + k, "biuf")
            ok = a.dtype == np.dtype(dtype) and a.ndim == len(shape)
            for n, want in zip(a.shape, shape) if ok else ():
                if isinstance(want, str):
                    ok = ok and sym.setdefault(want, n) == n
                else:
                    ok = ok and n == want
            if not ok:
                raise RuntimeStateError(
                    f"plasticity state {pre}{k}: saved {a.dtype}{a.shape}, declared {dtype}{shape}"
                )
            if a.dtype.kind == "f" and a.size and float(np.abs(a).max()) > _MAX_STATE:
                raise RuntimeStateError(
                    f"plasticity state {pre}{k}: magnitude {float(np.abs(a).max()):.3g} is "
                    f"implausible (limit {_MAX_STATE:g})"
                )
            out[k] = a
        if b.spec.check_state is not None:
            b.spec.check_state(b.eff, out)
        th = out.get("theta") if b.spec.target == "neurons" else None
        if th is not None and th.size:
            lo, hi = b.eff.theta_min, b.eff.theta_max
            if th.min() < lo or (hi is not None and th.max() > hi):
                raise RuntimeStateError(
                    f"plasticity state {pre}theta: values outside the rule's "
                    f"[theta_min, theta_max] = [{lo:g}, {hi:g}]"
                )
        if b.kind == "hlop" and b.eff is None and "k" in sym:
            b.shape = (0, int(out["H"].shape[1]))
        return out

    def sync(self, rt: Any) -> None:
        """Push the engine's learned thresholds into ``rt``'s neuron kernels (needed
        after a state load: thresholds live in the kernels, not in ``rt.params``)."""
        for b in self.bindings:
            if b.spec.target == "neurons" and b.v_th0 is not None and "theta" in b.state:
                self._set_vth(rt, b, rt.kernels[b.layer], b.state["theta"])

    # ----------------------------------------------------------------- JSON
    def to_dict(self) -> dict[str, Any]:
        """``plasticity.json`` content: format, version, seed and the rule list."""
        rules = []
        for b in self.bindings:
            r = rule_to_dict(b.rule)
            r.update(layer=b.layer, post=b.post, every=b.every)
            if b.force:
                r["force"] = True
            rules.append(r)
        return {"format": PLASTICITY_FORMAT, "version": _VERSION, "seed": self.seed, "rules": rules}

    def to_json(self) -> str:
        """JSON text for ``plasticity.json``."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: Any) -> PlasticityEngine:
        """Build an engine from :meth:`to_dict` output; rules are looked up in the
        registry (never code). Raises :class:`PlasticityError` naming the bad field."""
        if not isinstance(d, dict) or d.get("format") != PLASTICITY_FORMAT:
            raise PlasticityError(f"plasticity.json: 'format' must be {PLASTICITY_FORMAT!r}")
        if d.get("version") != _VERSION:
            raise PlasticityError(f"plasticity.json: unsupported version {d.get('version')!r:.50}")
        eng = cls(seed=d.get("seed", 0))
        rules = d.get("rules", [])
        if not isinstance(rules, list):
            raise PlasticityError("plasticity.json: 'rules' must be a list")
        for i, r in enumerate(rules):
            if not isinstance(r, dict):
                raise PlasticityError(f"plasticity.json: rules[{i}] must be an object")
            extra = set(r) - {"kind", "params", "layer", "post", "every", "force"}
            if extra:
                raise PlasticityError(
                    f"plasticity.json: rules[{i}] has unknown keys {sorted(extra)!r:.200}"
                )
            post = r.get("post")
            if post is not None and not isinstance(post, str):
                raise PlasticityError(f"plasticity.json: rules[{i}].post must be a string or null")
            try:
                rule = rule_from_dict({"kind": r.get("kind"), "params": r.get("params", {})})
                eng.attach(
                    r.get("layer"), rule, post=post, every=r.get("every", 1),
                    force=r.get("force", False),
                )  # fmt: skip
            except PlasticityError as e:
                raise PlasticityError(f"plasticity.json: rules[{i}]: {e}") from None
        return eng

    @classmethod
    def from_json(cls, data: str | bytes | dict, rt: Any | None = None) -> PlasticityEngine:
        """Parse ``plasticity.json`` (text, or the already-parsed dict). With ``rt``,
        also bind every rule to that runtime now (node names, layer kinds, bounds)
        instead of at the first learning step."""
        if isinstance(data, dict):
            d = data
        else:
            try:
                d = json.loads(data)
            except (ValueError, TypeError, RecursionError) as e:
                raise PlasticityError(f"plasticity.json is not valid JSON: {e}") from None
        eng = cls.from_dict(d)
        if rt is not None:
            eng.validate(rt)
        return eng

    def __repr__(self) -> str:
        rules = ", ".join(f"{b.layer}:{b.kind}" for b in self.bindings)
        return f"PlasticityEngine([{rules}])"
