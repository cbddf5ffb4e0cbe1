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
"""

from __future__ import annotations

import dataclasses
import json
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neuroplast.errors import DataError, PlasticityError, RuntimeStateError
from neuroplast.plasticity import _accel
from neuroplast.plasticity._common import check_finite
from neuroplast.plasticity.feast import FeastState, feast_step
from neuroplast.plasticity.hebbian import oja_delta
from neuroplast.plasticity.hlop import (
    HLOPState,
    hlop_add_rows,
    hlop_freeze,
    hlop_project,
    hlop_update,
)
from neuroplast.plasticity.homeostasis import (
    rate_threshold_update,
    spike_threshold_update,
    synaptic_scaling,
)
from neuroplast.plasticity.int_stdp import int_stdp_runtime_step
from neuroplast.plasticity.need_lr import NeedLRParams
from neuroplast.plasticity.quantized import quantized_apply
from neuroplast.plasticity.registry import rule_from_dict, rule_kind, rule_to_dict
from neuroplast.plasticity.stdp import (
    DiehlCookSTDPParams,
    RewardSTDPState,
    STDPState,
    _event_apply,
    _rule_consts,
    reward_stdp_delta,
)

__all__ = ["PlasticityEngine", "PLASTICITY_FORMAT"]

PLASTICITY_FORMAT = "neuroplast-plasticity"
_VERSION = 1
_SPIKE_KINDS = ("pair_stdp", "symmetric_stdp", "diehl_cook_stdp", "reward_stdp")
_WEIGHT_KINDS = _SPIKE_KINDS + (
    "hebbian",
    "oja",
    "delta_rule",
    "synaptic_scaling",
    "feast",
    "int_stdp",
)
_NEURON_KINDS = ("spike_threshold", "rate_threshold")


@dataclass
class _Binding:
    layer: str
    rule: Any
    kind: str
    post: str | None
    every: int
    state: dict[str, np.ndarray] = field(default_factory=dict)
    updates: int = 0
    seen: int = 0
    post_sum: np.ndarray | None = None


def _dense(x: Any, n: int) -> np.ndarray:
    """Runtime activity -> float64 (B, n); SparseInput becomes a dense row."""
    if hasattr(x, "indices") and not isinstance(x, np.ndarray):
        out = np.zeros((1, n))
        vals = 1.0 if x.values is None else np.asarray(x.values, dtype=np.float64)
        np.add.at(out[0], np.asarray(x.indices), vals)
        return out
    a = np.asarray(x)
    return a.reshape(a.shape[0], -1).astype(np.float64)


class PlasticityEngine:
    """Rules attached to named layers; see the module docstring.

    ``seed`` seeds the generator used for stochastic rounding in integer mode and for
    new HLOP rows.
    """

    def __init__(self, seed: int = 0) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise PlasticityError(f"PlasticityEngine seed must be an int >= 0, got {seed!r}")
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.bindings: list[_Binding] = []
        self._targets: dict[str, np.ndarray] = {}
        self._checked: set[int] = set()
        self._rt_ref: Any = None  # weak reference to the runtime last applied to

    # ----------------------------------------------------------------- setup
    def attach(self, layer: str, rule: Any, post: str | None = None, every: int = 1) -> None:
        """Attach ``rule`` (a registered params dataclass) to node ``layer``.

        ``post``: node whose output is the postsynaptic activity (weight rules only).
        ``every``: apply every ``every`` runtime steps (e.g. synaptic scaling per sample).
        """
        kind = rule_kind(rule)
        if not isinstance(layer, str) or not layer:
            raise PlasticityError(f"attach: layer must be a node name, got {layer!r}")
        if isinstance(rule, NeedLRParams):
            raise PlasticityError(
                "need_lr is a meta-rule over an optimiser's learning rate, not a layer rule; "
                "use neuroplast.plasticity.need_lr_step with your model's look-ahead"
            )
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise PlasticityError(f"attach: every must be an int >= 1, got {every!r}")
        if post is not None and kind not in _WEIGHT_KINDS:
            raise PlasticityError(f"attach: rule {kind!r} takes no post node")
        for b in self.bindings:
            if b.layer == layer and b.kind == kind:
                raise PlasticityError(f"rule {kind!r} is already attached to {layer!r}")
        self.bindings.append(_Binding(layer, rule, kind, post, every))

    def detach(self, layer: str, kind: str | None = None) -> None:
        """Remove the rules on ``layer`` (only ``kind`` if given)."""
        keep = [b for b in self.bindings if not (b.layer == layer and kind in (None, b.kind))]
        if len(keep) == len(self.bindings):
            raise PlasticityError(f"no rule {kind or ''} attached to {layer!r}")
        self.bindings = keep
        self._checked.clear()

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
        st = self._hlop_state(b, n_in)
        st = hlop_add_rows(st, k, self.rng)
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
            b.state.update(
                H=np.zeros((0, n_in)), frozen=np.zeros(0, np.int8), M=np.zeros((0, n_in))
            )
        return HLOPState(b.state["H"], b.state["frozen"].astype(bool), b.state["M"])

    # ----------------------------------------------------------------- apply
    def apply(self, rt: Any, reward: float | None = None) -> None:
        """Apply every attached rule once, after ``rt.step`` (called by the Runtime)."""
        if self._rt_ref is None or self._rt_ref() is not rt:
            self._rt_ref = weakref.ref(rt)
        if reward is not None:
            r = np.asarray(reward, dtype=np.float64)
            check_finite(r, "reward")
        for i, b in enumerate(self.bindings):
            if i not in self._checked:
                self._check_binding(rt, b)
                self._checked.add(i)
            if rt.steps % b.every:
                continue
            if b.kind in _NEURON_KINDS:
                self._apply_threshold(rt, b)
            elif b.kind == "hlop":
                self._apply_hlop(rt, b)
            else:
                self._apply_weight_rule(rt, b, reward)

    def _check_binding(self, rt: Any, b: _Binding) -> None:
        nodes = rt.graph.nodes
        if b.layer not in nodes:
            raise PlasticityError(f"rule {b.kind!r}: no node named {b.layer!r} in the graph")
        if b.kind in _NEURON_KINDS:
            if not hasattr(getattr(rt.kernels[b.layer], "p", None), "__dataclass_fields__"):
                raise PlasticityError(
                    f"rule {b.kind!r} needs a spiking neuron node; {b.layer!r} is "
                    f"{type(nodes[b.layer]).__name__}"
                )
            return
        w = rt.params.get(b.layer, {}).get("weight")
        if type(nodes[b.layer]).__name__ != "Linear" or w is None or w.ndim != 2:
            raise PlasticityError(
                f"rule {b.kind!r} acts on a Linear layer; {b.layer!r} is "
                f"{type(nodes[b.layer]).__name__}"
            )
        if b.post is not None and b.post not in nodes:
            raise PlasticityError(f"rule {b.kind!r}: no post node {b.post!r} in the graph")

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
        check_finite(x, f"input of {b.layer!r}")
        return x

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

    # -- weights ------------------------------------------------------------
    def _weight_scale(self, rt: Any, layer: str) -> np.ndarray | float:
        q = rt.graph.nodes[layer].weight_q
        return q.scale if isinstance(q.scale, float) else np.asarray(q.scale, dtype=np.float64)

    def _q_range(self, rt: Any, layer: str) -> tuple[int, int]:
        return rt.graph.nodes[layer].weight_q.range

    def _commit(self, rt: Any, b: _Binding, w_param: np.ndarray, dw: np.ndarray) -> None:
        """Add ``dw`` (real units) to the layer's weights, enforcing bounds."""
        check_finite(dw, f"update of {b.layer!r}")
        lo = getattr(b.rule, "w_min", -np.inf)
        hi = getattr(b.rule, "w_max", np.inf)
        if rt.mode == "int":
            qmin, qmax = self._q_range(rt, b.layer)
            s = self._weight_scale(rt, b.layer)
            w_param[...] = quantized_apply(w_param, dw, s, self.rng, lo, hi, qmin, qmax)
        else:
            w_param[...] = np.clip(w_param + dw, lo, hi)

    def _real_weight(self, rt: Any, layer: str, w_param: np.ndarray) -> np.ndarray:
        if rt.mode != "int":
            return w_param.astype(np.float64)
        s = self._weight_scale(rt, layer)
        s = s[:, None] if isinstance(s, np.ndarray) and s.ndim else s
        return w_param.astype(np.float64) * s

    def _apply_weight_rule(self, rt: Any, b: _Binding, reward: Any) -> None:
        if b.kind == "int_stdp":  # the board's integer rule, bit for bit (int_stdp.py)
            b.state, _ = int_stdp_runtime_step(rt, b.layer, self._post_node(rt, b), b.state, b.rule)
            b.updates += 1
            return
        w_param = rt.params[b.layer]["weight"]
        n_out, n_in = w_param.shape
        x = self._pre(rt, b, n_in)
        p = b.rule
        if b.kind in _SPIKE_KINDS:
            if x.shape[0] != 1:
                raise PlasticityError(
                    f"rule {b.kind!r} on {b.layer!r} needs batch size 1 (got {x.shape[0]})"
                )
            y = self._post(rt, b, n_out)
            self._stats_post(b, y)
            self._apply_stdp(rt, b, w_param, x[0], y[0], reward)
        elif b.kind == "synaptic_scaling":
            w = self._real_weight(rt, b.layer, w_param)
            self._commit(rt, b, w_param, synaptic_scaling(w, p) - w)
        elif b.kind == "feast":
            self._apply_feast(rt, b, w_param, x)
        else:
            y = self._post(rt, b, n_out) if b.kind != "oja" else None
            if y is not None:
                self._stats_post(b, y)
            xu = self._projected(b.layer, x)
            w = self._real_weight(rt, b.layer, w_param)
            if b.kind == "oja":
                dw = oja_delta(w, x, p)
            elif b.kind == "hebbian":
                dw = p.lr * (y.T @ xu / x.shape[0] - p.decay * w)
            else:  # delta rule: error against the layer's actual output
                t = self._targets.pop(b.layer, None)
                if t is None:
                    return
                t = np.broadcast_to(t, y.shape) if t.ndim == 1 else t
                if t.shape != y.shape:
                    raise DataError(f"target for {b.layer!r} has shape {t.shape}, need {y.shape}")
                dw = p.lr * (t - y).T @ xu / x.shape[0]
            self._commit(rt, b, w_param, dw)
        b.updates += 1

    def _projected(self, layer: str, x: np.ndarray) -> np.ndarray:
        for hb in self.bindings:
            if hb.layer == layer and hb.kind == "hlop" and "H" in hb.state:
                frozen = hb.state["frozen"].astype(bool)
                if frozen.any():
                    return hlop_project(hb.state["H"][frozen], x)
        return x

    def _apply_hlop(self, rt: Any, b: _Binding) -> None:
        n_in = rt.params[b.layer]["weight"].shape[1]
        st = self._hlop_state(b, n_in)
        if st.H.shape[1] != n_in:
            raise PlasticityError(f"HLOP on {b.layer!r} has width {st.H.shape[1]}, input {n_in}")
        if st.frozen.all():
            return
        st = hlop_update(st, self._pre(rt, b, n_in), b.rule)
        b.state.update(H=st.H, M=st.M)
        b.updates += 1

    def _apply_feast(self, rt: Any, b: _Binding, w_param: np.ndarray, x: np.ndarray) -> None:
        w = self._real_weight(rt, b.layer, w_param)
        if "theta" not in b.state:
            b.state["theta"] = np.full(w.shape[0], float(b.rule.theta0))
            b.state["misses"] = np.zeros((), np.int64)
        st = FeastState(w, b.state["theta"], 0, 0)
        for xb in x:
            st, win = feast_step(st, xb, b.rule)
            b.state["misses"] = b.state["misses"] + (win < 0)
        b.state["theta"] = st.theta
        self._commit(rt, b, w_param, st.W - w)

    def _apply_stdp(
        self, rt: Any, b: _Binding, w_param: np.ndarray, pre: np.ndarray, post: np.ndarray, reward
    ) -> None:
        n_out, n_in = w_param.shape
        if "pre" not in b.state:
            b.state.update(pre=np.zeros(n_in), post=np.zeros(n_out), post2=np.zeros(n_out))
            if b.kind == "reward_stdp":
                b.state["elig"] = np.zeros((n_out, n_in))
        st = STDPState(b.state["pre"], b.state["post"], b.state["post2"])
        p = b.rule
        if b.kind == "reward_stdp":
            w = self._real_weight(rt, b.layer, w_param)
            rst = RewardSTDPState(st, b.state["elig"])
            dw, rst = reward_stdp_delta(w, pre, post, rst, p, reward)
            b.state.update(
                pre=rst.traces.pre, post=rst.traces.post, post2=rst.traces.post2, elig=rst.elig
            )
            self._commit(rt, b, w_param, dw)
            return
        a_pre, a_post, amp_pre, amp_post, g_post, g_pre, mode, mult = _rule_consts(p)
        dc = isinstance(p, DiehlCookSTDPParams)
        acc = _accel.kernels() if rt.mode != "int" else None
        if acc is not None and w_param.flags.c_contiguous and w_param.flags.writeable:
            # whole step (decay, update, bounds, trace increments) in one compiled call,
            # in place on the weights and on the engine's own trace arrays
            a_post2 = float(np.exp(-p.dt / p.tau_post2)) if dc else 1.0
            consts = np.array(
                [a_pre, a_post, a_post2, amp_pre, amp_post, g_post, g_pre, p.w_min, p.w_max]
            )
            tr = [
                np.ascontiguousarray(st.pre, np.float64),
                np.ascontiguousarray(st.post, np.float64),
                np.ascontiguousarray(st.post2, np.float64),
            ]
            acc[1](
                w_param,
                pre[None],
                post[None],
                tr[0],
                tr[1],
                tr[2],
                consts,
                mode == "nearest",
                mult,
                dc,
            )
            b.state.update(pre=tr[0], post=tr[1], post2=tr[2])
            return
        x = st.pre * a_pre
        y = st.post * a_post
        y2 = st.post2 * (np.exp(-p.dt / p.tau_post2) if dc else 1.0)
        rows, cols = np.flatnonzero(post), np.flatnonzero(pre)
        gain = (g_post * y2[rows] if dc else g_post) * post[rows]
        if rt.mode == "int":
            # dense float update on the dequantized weights, then stochastic rounding
            w = self._real_weight(rt, b.layer, w_param)
            w_new = w.copy()
            _event_apply(w_new, rows, cols, gain, x, g_pre * pre[cols], y, mult, -np.inf, np.inf)
            self._commit(rt, b, w_param, w_new - w)
        elif rows.size or cols.size:
            # float: event-driven, in place on the float32 weights (bounds inside)
            acc = _accel.kernels()
            if acc is not None and w_param.flags.c_contiguous:
                acc[0](
                    w_param,
                    rows,
                    cols,
                    np.asarray(gain, np.float64) * np.ones(rows.size),
                    x,
                    g_pre * pre,
                    y,
                    mult,
                    p.w_min,
                    p.w_max,
                    g_pre != 0.0,
                )
            else:
                _event_apply(
                    w_param, rows, cols, gain, x, g_pre * pre[cols], y, mult, p.w_min, p.w_max
                )
        near = mode == "nearest"
        x = np.where(pre > 0, amp_pre, x) if near else x + amp_pre * pre
        y_new = np.where(post > 0, amp_post, y) if near else y + amp_post * post
        if dc:
            y2 = np.where(post > 0, 1.0, y2) if near else y2 + post
        b.state.update(pre=x, post=y_new, post2=y2)

    # -- thresholds ---------------------------------------------------------
    def _apply_threshold(self, rt: Any, b: _Binding) -> None:
        k = rt.kernels[b.layer]
        s = _dense(rt.last_outputs[b.layer], 0)
        s = self._dequant(rt, b.layer, s)
        check_finite(s, f"output of {b.layer!r}")
        s = s.mean(axis=0)
        self._stats_post(b, s[None])
        if "theta" not in b.state:
            b.state["theta"] = np.zeros(s.shape[0])
            b.state["v_th0"] = np.array(self._get_vth(k), dtype=np.float64).ravel() * np.ones(
                s.shape[0]
            )
        if b.kind == "spike_threshold":
            theta = spike_threshold_update(b.state["theta"], s, b.rule)
        else:
            theta = rate_threshold_update(b.state["theta"], s, b.rule)
        b.state["theta"] = theta
        self._set_vth(rt, b, k, theta)
        b.updates += 1

    @staticmethod
    def _get_vth(k: Any) -> np.ndarray:
        p = k.p
        return p.lif.v_th if hasattr(p, "lif") else p.v_th

    def _set_vth(self, rt: Any, b: _Binding, k: Any, theta: np.ndarray) -> None:
        base = b.state["v_th0"]
        if rt.mode == "int":
            q = k.ctx.in_quants[0]
            scale = q.scale if isinstance(q.scale, float) else float(np.asarray(q.scale).ravel()[0])
            v = base + np.round(theta / scale)
            old = self._get_vth(k)
            new = v.reshape(np.shape(old)).astype(np.asarray(old).dtype)
        else:
            old = self._get_vth(k)
            new = (base + theta).reshape(np.shape(old)).astype(np.asarray(old).dtype)
        p = k.p
        if hasattr(p, "lif"):
            k.p = dataclasses.replace(p, lif=dataclasses.replace(p.lif, v_th=new))
        else:
            k.p = dataclasses.replace(p, v_th=new)

    def _stats_post(self, b: _Binding, y: np.ndarray) -> None:
        s = y.sum(axis=0)
        b.post_sum = s if b.post_sum is None else b.post_sum + s
        b.seen += y.shape[0]

    # ----------------------------------------------------------------- stats
    def stats(self, rt: Any | None = None) -> dict[str, dict[str, Any]]:
        """Per rule ``"layer:kind"``: update count, mean firing rate of the post
        neurons (spikes or activity per step), and the weight norm/min/max (of ``rt``,
        or of the runtime the engine last ran in)."""
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
            if rt is not None and b.kind in _WEIGHT_KINDS:
                w = self._real_weight(rt, b.layer, rt.params[b.layer]["weight"])
                d["weight_norm"] = float(np.linalg.norm(w))
                d["weight_min"], d["weight_max"] = float(w.min()), float(w.max())
            out[f"{b.layer}:{b.kind}"] = d
        return out

    # ----------------------------------------------------------------- state
    def state_dict(self) -> dict[str, np.ndarray]:
        """Rule states (traces, thresholds, subspaces), counters and the generator."""
        out: dict[str, np.ndarray] = {
            "rng": np.array(json.dumps(self.rng.bit_generator.state)),
            "layout": np.array(json.dumps([[b.layer, b.kind] for b in self.bindings])),
        }
        for i, b in enumerate(self.bindings):
            pre = f"{i}/{b.layer}/{b.kind}"
            out[f"{pre}/_updates"] = np.array(b.updates, np.int64)
            out[f"{pre}/_seen"] = np.array(b.seen, np.int64)
            if b.post_sum is not None:
                out[f"{pre}/_post_sum"] = np.asarray(b.post_sum, np.float64)
            for k, v in b.state.items():
                out[f"{pre}/{k}"] = np.array(v)
        return out

    def load_state_dict(self, d: dict[str, np.ndarray], rt: Any | None = None) -> None:
        """Restore :meth:`state_dict`; validates everything before changing anything.
        With ``rt``, also pushes restored thresholds into its neurons (:meth:`sync`).
        An engine without rules ignores saved rule state (inference-only runtimes can
        load learned weights)."""
        if not self.bindings:
            return
        try:
            layout = json.loads(str(d["layout"]))
            rng_state = json.loads(str(d["rng"]))
        except (KeyError, ValueError, TypeError) as e:
            raise RuntimeStateError(f"plasticity state is missing or corrupt ({e})") from None
        want = [[b.layer, b.kind] for b in self.bindings]
        if layout != want:
            raise RuntimeStateError(f"plasticity state is for rules {layout}, engine has {want}")
        new: list[tuple[dict[str, np.ndarray], int, int, np.ndarray | None]] = []
        for i, b in enumerate(self.bindings):
            pre = f"{i}/{b.layer}/{b.kind}/"
            st: dict[str, np.ndarray] = {}
            for key, v in d.items():
                if key.startswith(pre) and not key[len(pre) :].startswith("_"):
                    a = np.array(v)
                    if a.dtype.kind not in "biuf":
                        raise RuntimeStateError(f"plasticity state {key!r} is not numeric")
                    if a.dtype.kind == "f" and not np.isfinite(a).all():
                        raise RuntimeStateError(f"plasticity state {key!r} contains NaN/Inf")
                    st[key[len(pre) :]] = a
            for k, old in b.state.items():
                if k in st and st[k].shape != np.shape(old):
                    raise RuntimeStateError(
                        f"plasticity state {pre}{k}: saved shape {st[k].shape}, "
                        f"expected {np.shape(old)}"
                    )
            ps = d.get(pre + "_post_sum")
            new.append((st, int(d.get(pre + "_updates", 0)), int(d.get(pre + "_seen", 0)), ps))
        rng = np.random.default_rng()
        try:
            rng.bit_generator.state = rng_state
        except (TypeError, ValueError, KeyError) as e:
            raise RuntimeStateError(f"plasticity generator state is corrupt ({e})") from None
        for b, (st, upd, seen, ps) in zip(self.bindings, new, strict=True):
            b.state, b.updates, b.seen = st, upd, seen
            b.post_sum = None if ps is None else np.array(ps, np.float64)
        self.rng = rng
        if rt is not None:
            self.sync(rt)

    def sync(self, rt: Any) -> None:
        """Push the engine's learned thresholds into ``rt``'s neuron kernels (needed
        after a state load: thresholds live in the kernels, not in ``rt.params``)."""
        for b in self.bindings:
            if b.kind in _NEURON_KINDS and "theta" in b.state and "v_th0" in b.state:
                self._set_vth(rt, b, rt.kernels[b.layer], b.state["theta"])

    # ----------------------------------------------------------------- JSON
    def to_dict(self) -> dict[str, Any]:
        """``plasticity.json`` content: format, version, seed and the rule list."""
        rules = []
        for b in self.bindings:
            r = rule_to_dict(b.rule)
            r.update(layer=b.layer, post=b.post, every=b.every)
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
            raise PlasticityError(f"plasticity.json: unsupported version {d.get('version')!r}")
        seed = d.get("seed", 0)
        eng = cls(seed=seed)
        rules = d.get("rules", [])
        if not isinstance(rules, list):
            raise PlasticityError("plasticity.json: 'rules' must be a list")
        for i, r in enumerate(rules):
            if not isinstance(r, dict):
                raise PlasticityError(f"plasticity.json: rules[{i}] must be an object")
            extra = set(r) - {"kind", "params", "layer", "post", "every"}
            if extra:
                raise PlasticityError(
                    f"plasticity.json: rules[{i}] has unknown keys {sorted(extra)}"
                )
            post = r.get("post")
            if post is not None and not isinstance(post, str):
                raise PlasticityError(f"plasticity.json: rules[{i}].post must be a string or null")
            try:
                rule = rule_from_dict({"kind": r.get("kind"), "params": r.get("params", {})})
                eng.attach(r.get("layer"), rule, post=post, every=r.get("every", 1))
            except PlasticityError as e:
                raise PlasticityError(f"plasticity.json: rules[{i}]: {e}") from None
        return eng

    @classmethod
    def from_json(cls, data: str | bytes | dict, rt: Any | None = None) -> PlasticityEngine:
        """Parse ``plasticity.json`` (text, or the already-parsed dict). With ``rt``,
        also check every rule against that runtime's graph now (node names, layer
        kinds) instead of at the first learning step."""
        if isinstance(data, dict):
            d = data
        else:
            try:
                d = json.loads(data)
            except (ValueError, TypeError) as e:
                raise PlasticityError(f"plasticity.json is not valid JSON: {e}") from None
        eng = cls.from_dict(d)
        if rt is not None:
            eng.validate(rt)
        return eng

    def validate(self, rt: Any) -> None:
        """Check every attached rule against ``rt``'s graph; raises PlasticityError."""
        for i, b in enumerate(self.bindings):
            self._check_binding(rt, b)
            self._checked.add(i)

    def __repr__(self) -> str:
        rules = ", ".join(f"{b.layer}:{b.kind}" for b in self.bindings)
        return f"PlasticityEngine([{rules}])"
