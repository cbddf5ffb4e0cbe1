"""Every registered rule on every layer shape it claims, float and int mode (shared by
tests/plasticity/test_rule_matrix.py and bench/plasticity_matrix.py).

A case is (rule kind, layer shape, mode, batch). :func:`run_case` builds the graph on
random weights, attaches the rule through the engine, drives it with an adversarial
stream (random spikes, silence, saturation/all-ones, bursts, extreme values) and steps
an independent reference next to it: the rule's public pure functions
(``pair_stdp_update``, ``hebbian_delta``, ``rate_threshold_update``, ...), with the
layer-range bounds recomputed here and, in int mode, unbiased stochastic rounding with a
twin generator. It checks, every step: state names/shapes/dtypes as declared, weights
finite and inside the bounds, weights and state equal to the reference.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from neuroplast.graph import IF, LIF, Conv2d, CubaLIF, Delay, Flatten, Graph, Input, Linear
from neuroplast.graph import QuantSpec as Q
from neuroplast.plasticity import (
    RULE_KINDS,
    DiehlCookSTDPParams,
    PairSTDPParams,
    STDPState,
    SymmetricSTDPParams,
    diehl_cook_delta,
    feast_step,
    hebbian_delta,
    hlop_update,
    int_stdp_init,
    int_stdp_step,
    oja_delta,
    pair_stdp_delta,
    quantized_apply,
    rate_threshold_update,
    reward_stdp_delta,
    spike_threshold_update,
    symmetric_stdp_delta,
    synaptic_scaling,
)
from neuroplast.plasticity.feast import FeastState
from neuroplast.plasticity.hlop import HLOPState
from neuroplast.plasticity.registry import RULE_SPECS
from neuroplast.plasticity.stdp import RewardSTDPState
from neuroplast.runtime import Runtime

N_IN, N_OUT = 12, 5
SHAPES = ("lif", "lif_shared", "delay", "cuba", "if", "conv")
STREAMS = ("random", "silence", "ones", "burst", "extreme")


@dataclass(frozen=True)
class Case:
    kind: str
    shape: str
    mode: str
    batch: int

    @property
    def id(self) -> str:
        return f"{self.kind}-{self.shape}-{self.mode}-b{self.batch}"


def _layer(case: Case) -> str:
    return "lif" if RULE_SPECS[case.kind].target == "neurons" else "fc"


def cases() -> list[Case]:
    """Every (rule, shape, mode, batch) a rule claims: synapse/input rules on the Linear
    shapes (and a conv layer where the rule lists Conv2d), neuron rules on every
    neuron kind; batch 3 unless the rule needs batch 1."""
    out = []
    for kind, spec in sorted(RULE_SPECS.items()):
        for shape in SHAPES:
            node = {"cuba": "CubaLIF", "if": "IF", "conv": "Conv2d"}.get(shape, "Linear")
            if spec.target == "neurons":
                ok = shape != "conv" or True  # a LIF after a conv: per-neuron (C, H, W)
                ok = ok and (shape in ("lif", "lif_shared", "delay", "conv") or node in spec.layers)
            else:
                ok = node in spec.layers or (node in ("CubaLIF", "IF") and "Linear" in spec.layers)
                ok = ok and (shape != "conv" or "Conv2d" in spec.layers)
                ok = ok and shape not in ("cuba", "if")
            if not ok:
                continue
            modes = ("int",) if spec.update_q is not None else ("float", "int")  # int-native
            for mode in modes:
                for batch in (1,) if spec.batch1 else (1, 3):
                    out.append(Case(kind, shape, mode, batch))
    return out


def graph(case: Case, seed: int = 0) -> Graph:
    rng = np.random.default_rng(seed)
    q = case.mode == "int"
    inq = Q(scale=1.0) if q else None
    wq = Q(scale=0.5 / 127, narrow=True) if q else None
    cur = Q(bits=16, scale=1 / 512) if q else None
    neg = case.kind in ("delta_rule", "least_squares", "oja", "hebbian", "hlop")  # signed readouts
    lo = -0.5 if neg else 0.0
    tau, vth = np.full(N_OUT, 5e-3), np.linspace(0.4, 0.8, N_OUT)
    if case.shape == "lif_shared":
        tau, vth = np.array([5e-3]), np.array([0.6])
    if case.shape == "conv":
        w = rng.uniform(0.0, 0.5, (2, 1, 3, 3)).astype(np.float32)
        return Graph.sequential(
            [
                ("in", Input(shape=(1, 5, 5), quant=inq)),
                ("fc", Conv2d(weight=w, weight_q=wq, out_q=cur, padding=(1, 1))),
                ("lif", LIF(tau_mem=[5e-3], v_th=[0.6])),
                ("flat", Flatten()),
            ]
        )
    w = rng.uniform(lo, 0.5, (N_OUT, N_IN)).astype(np.float32)
    layers = [("in", Input(shape=(N_IN,), quant=inq))]
    if case.shape == "delay":
        layers.append(("d", Delay(delay=rng.integers(0, 4, N_IN).astype(np.int32))))
    layers.append(("fc", Linear(weight=w, weight_q=wq, out_q=cur)))
    if case.shape == "cuba":
        layers.append(("lif", CubaLIF(tau_syn=np.full(N_OUT, 5e-3), tau_mem=tau, v_th=vth)))
    elif case.shape == "if":
        layers.append(("lif", IF(v_th=vth)))
    else:
        layers.append(("lif", LIF(tau_mem=tau, v_th=vth)))
    return Graph.sequential(layers)


def stream(name: str, case: Case, steps: int, seed: int = 1) -> np.ndarray:
    """(steps, batch, *input) of one adversarial kind."""
    rng = np.random.default_rng(seed)
    shape = (1, 5, 5) if case.shape == "conv" else (N_IN,)
    size = (steps, case.batch, *shape)
    if name == "random":
        return (rng.random(size) < 0.2).astype(np.float32)
    if name == "silence":
        return np.zeros(size, np.float32)
    if name == "ones":
        return np.ones(size, np.float32)
    if name == "burst":  # 10 saturated steps every 50, sparse spikes between
        x = (rng.random(size) < 0.1).astype(np.float32)
        x[(np.arange(steps) % 50) < 10] = 1.0
        return x
    top = 127.0 if case.mode == "int" else 1e3  # the input range's extremes
    return rng.choice([-top, 0.0, top], size=size).astype(np.float32)


def rule(case: Case):
    """The params under test: defaults (bounds None: the layer's range), fast rates so
    that the stream moves weights; soft bounds on one STDP variant."""
    cls = RULE_KINDS[case.kind]
    kw = {
        "pair_stdp": {"eta_plus": 0.02, "eta_minus": 0.025, "weight_dependence": "multiplicative"},
        "symmetric_stdp": {"nu_pre": 0.01, "nu_post": 0.01},
        "diehl_cook_stdp": {"nu_pre": 0.01, "nu_post": 0.05},
        "reward_stdp": {"lr": 0.05},
        "hebbian": {"lr": 0.01, "decay": 0.1},
        "oja": {"lr": 0.001},
        "delta_rule": {"lr": 0.01},
        "least_squares": {"ridge": 0.1},
        "rate_threshold": {"eta_ip": 0.05},
        "spike_threshold": {"theta_plus": 0.05, "tau_theta": 50.0},
        "feast": {"eta": 0.05},
        "hlop": {"lr": 0.001},
        "synaptic_scaling": {},
        "int_stdp": {"eta_plus": 400, "eta_minus": 300, "seed": 3},
    }[case.kind]
    return cls(**kw)


def _layer_bounds(w: np.ndarray) -> tuple[float, float]:
    a = float(np.abs(w).max()) * (1 + 1e-6)
    return (-a if (w < 0).any() else 0.0, a if (w > 0).any() else 0.0)


class Reference:
    """The rule's pure functions, stepped beside the engine."""

    def __init__(self, case: Case, rt: Runtime, p) -> None:
        self.case, self.p = case, p
        self.int = case.mode == "int"
        self.rng = np.random.default_rng(7)  # twin of the engine's generator
        node = rt.graph.nodes["fc"]
        self.scale = node.weight_q.scale if self.int else 1.0
        w = rt.params["fc"]["weight"]
        self.w = w.reshape(w.shape[0], -1).astype(np.float64) * self.scale
        fields = {f.name for f in dataclasses.fields(p)}
        if "w_min" in fields and case.kind != "int_stdp":  # int_stdp's bounds are codes
            self.p = dataclasses.replace(p, **dict(zip(("w_min", "w_max"), _layer_bounds(self.w))))
        if case.kind == "synaptic_scaling":
            self.p = dataclasses.replace(self.p, target=float(self.w.sum(axis=1).mean()))
        n_out, n_in = self.w.shape
        self.st = STDPState(np.zeros(n_in), np.zeros(n_out), np.zeros(n_out))
        self.elig = np.zeros((n_out, n_in))
        n_neu = int(np.prod(rt.shapes["lif"]))
        self.theta = np.zeros(n_neu)
        if "theta_max" in fields and p.theta_max is None:
            k = rt.kernels["lif"]
            v = np.asarray(k.p.lif.v_th if hasattr(k.p, "lif") else k.p.v_th, np.float64)
            v = v * (k.ctx.in_quants[0].scale if self.int else 1.0)
            self.p = dataclasses.replace(p, theta_max=float(np.abs(v).max()))
        self.feast_theta = np.full(n_out, float(getattr(p, "theta0", 0.0)))
        self.hlop: HLOPState | None = None
        self.ls: list = []  # least_squares: (sqrt(a) x, sqrt(a) t) of every step
        self.lo, self.hi = getattr(self.p, "w_min", -np.inf), getattr(self.p, "w_max", np.inf)
        if case.kind == "int_stdp":  # the board's integer rule on the codes themselves
            self.lo, self.hi = p.w_min * self.scale, p.w_max * self.scale
            self.zp_in = int(rt.kernels["fc"].zp_in)
            self.ist = int_stdp_init(n_in, n_out, p.seed)

    def commit(self, dw: np.ndarray) -> None:
        if self.int and self.case.kind in ("pair_stdp", "symmetric_stdp", "diehl_cook_stdp"):
            # the integer STDP rounds the update as applied to the dequantized weights,
            # (w + dw) - w: an update below w's last bit is no update (and draws nothing)
            dw = (self.w + dw) - self.w
        if self.int:
            q = np.round(self.w / self.scale).astype(np.int8)
            q = quantized_apply(q, dw, self.scale, self.rng, self.lo, self.hi, -127, 127)
            self.w = q.astype(np.float64) * self.scale
        else:  # the layer stores float32 weights
            self.w = np.clip(self.w + dw, self.lo, self.hi).astype(np.float32).astype(np.float64)

    def step(self, pre: np.ndarray, post: np.ndarray, reward, target) -> None:
        k, p = self.case.kind, self.p
        if k in ("pair_stdp", "symmetric_stdp", "diehl_cook_stdp"):
            f = {
                PairSTDPParams: pair_stdp_delta,
                SymmetricSTDPParams: symmetric_stdp_delta,
                DiehlCookSTDPParams: diehl_cook_delta,
            }[type(p)]
            dw, self.st = f(self.w, pre[0], post[0], self.st, p)
            self.commit(dw)
        elif k == "int_stdp":
            q = np.round(self.w / self.scale).astype(np.int8)
            q, self.ist, _ = int_stdp_step(q, pre[0] - self.zp_in > 0, post[0] != 0, self.ist, p)
            self.w = q.astype(np.float64) * self.scale
        elif k == "reward_stdp":
            dw, rs = reward_stdp_delta(
                self.w, pre[0], post[0], RewardSTDPState(self.st, self.elig), p, reward
            )
            self.st, self.elig = rs.traces, rs.elig
            self.commit(dw)
        elif k == "hebbian":
            if np.any(pre):
                self.commit(hebbian_delta(self.w, self._proj(pre), p, post))
        elif k == "oja":
            self.commit(oja_delta(self.w, pre, p))
        elif k == "delta_rule":
            t = np.broadcast_to(target, post.shape)
            self.commit(p.lr * (t - post).T @ self._proj(pre) / pre.shape[0])
        elif k == "least_squares":
            # independent: lstsq on every weighted sample so far plus the ridge rows
            a = max(float(reward), 0.0)
            t = np.broadcast_to(target, (pre.shape[0], self.w.shape[0]))
            self.ls.append((np.sqrt(a) * pre, np.sqrt(a) * t))
            if a > 0:
                X = np.concatenate(
                    [x for x, _ in self.ls] + [np.sqrt(p.ridge) * np.eye(pre.shape[1])]
                )
                T = np.concatenate([t for _, t in self.ls] + [np.zeros((pre.shape[1], t.shape[1]))])
                dw = np.linalg.lstsq(X, T, rcond=None)[0].T - self.w
                dw[np.abs(dw) < 1e-12] = 0.0  # inputs never seen: no update (draws nothing)
                self.commit(dw)
        elif k == "synaptic_scaling":
            self.commit(synaptic_scaling(self.w, p) - self.w)
        elif k == "feast":
            st = FeastState(self.w, self.feast_theta, 0, 0)
            for xb in pre:
                st, _ = feast_step(st, xb, p)
            self.feast_theta = st.theta
            self.commit(st.W - self.w)
        elif k == "hlop":
            if self.hlop is not None:
                self.hlop = hlop_update(self.hlop, pre, p)
        elif k == "rate_threshold":
            self.theta = rate_threshold_update(self.theta, post.mean(0), p)
        elif k == "spike_threshold":
            self.theta = spike_threshold_update(self.theta, post.mean(0), p)

    def _proj(self, pre: np.ndarray) -> np.ndarray:
        return pre


def declared_ok(rt: Runtime, b) -> str | None:
    """None if the binding's state matches its declaration, else what differs."""
    decl = b.spec.state(b.eff, *b.shape)
    if set(decl) != set(b.state):
        return f"state keys {sorted(b.state)} != declared {sorted(decl)}"
    sym: dict = {}
    for k, (shape, dtype) in decl.items():
        a = b.state[k]
        if a.dtype != np.dtype(dtype) or a.ndim != len(shape):
            return f"{k}: {a.dtype}{a.shape} vs {dtype}{shape}"
        for n, want in zip(a.shape, shape):
            if (sym.setdefault(want, n) if isinstance(want, str) else want) != n:
                return f"{k}: shape {a.shape} vs {shape}"
    return None


def run_case(case: Case, steps_per_stream: int, check_every: int = 1) -> dict:
    """Run one case over every adversarial stream; returns a result row (raises
    AssertionError with the case id on the first mismatch)."""
    g = graph(case)
    rt = Runtime(g, mode=case.mode)
    rt.plasticity.rng = np.random.default_rng(7)
    layer = _layer(case)
    p = rule(case)
    rt.plasticity.attach(layer, p)
    rt.learn(True)
    ref = Reference(case, rt, p)
    b = rt.plasticity.bindings[0]
    if case.kind == "hlop":
        rt.plasticity.hlop_add_rows("fc", 2, ref.w.shape[1])
        ref.hlop = HLOPState(b.state["H"].copy(), b.state["frozen"].astype(bool), b.state["M"])
    h0 = ref.hlop.H.copy() if ref.hlop is not None else None
    tgt_rng = np.random.default_rng(3)
    w0 = ref.w.copy()
    row = {"case": case.id, "steps": 0, "max_err": 0.0, "alive_rows": 0}
    for si, name in enumerate(STREAMS):
        xs = stream(name, case, steps_per_stream, seed=si)
        for t, x in enumerate(xs):
            target = (tgt_rng.random(N_OUT) < 0.5).astype(np.float64)
            reward = float(tgt_rng.choice([-1.0, 1.0]))
            if case.kind in ("delta_rule", "least_squares"):
                rt.plasticity.set_target("fc", target)
            rt.step(x if case.batch > 1 else x[0], reward=reward)
            row["steps"] += 1
            pre = np.asarray(rt.last_inputs["fc"][0], np.float64).reshape(case.batch, -1)
            post = np.asarray(rt.last_outputs["lif"], np.float64).reshape(case.batch, -1)
            ref.step(pre, post, reward, target)
            if (t + 1) % check_every:
                continue
            _check(case, rt, b, ref, row, f"{name}[{t}]")
    w = ref.w
    if RULE_SPECS[case.kind].target == "neurons":
        row["moved"] = float(np.abs(ref.theta).max())
    elif case.kind == "hlop":
        row["moved"] = float(np.abs(ref.hlop.H - h0).max())
    else:
        row["moved"] = float(np.abs(w - w0).max())
    row["alive_rows"] = int((np.abs(w).sum(axis=1) > 1e-9 * max(1.0, np.abs(w0).max())).sum())
    row["rows"] = w.shape[0]
    return row


def _check(case: Case, rt: Runtime, b, ref: Reference, row: dict, where: str) -> None:
    bad = declared_ok(rt, b)
    assert bad is None, f"{case.id} {where}: {bad}"
    if RULE_SPECS[case.kind].target == "neurons":
        th = b.state["theta"]
        assert np.isfinite(th).all(), f"{case.id} {where}: theta not finite"
        err = float(np.abs(th - ref.theta).max())
        lo, hi = ref.p.theta_min, ref.p.theta_max
        assert th.min() >= lo - 1e-12 and th.max() <= hi + 1e-12, f"{case.id} {where}: theta out"
    elif case.kind == "hlop":
        err = float(np.abs(b.state["H"] - ref.hlop.H).max())
        assert np.isfinite(b.state["H"]).all(), f"{case.id} {where}: H not finite"
    else:
        wp = rt.params["fc"]["weight"]
        w = wp.reshape(wp.shape[0], -1).astype(np.float64) * ref.scale
        assert np.isfinite(w).all(), f"{case.id} {where}: weights not finite"
        assert w.min() >= ref.lo - 1e-6 and w.max() <= ref.hi + 1e-6, (
            f"{case.id} {where}: weights [{w.min()}, {w.max()}] outside [{ref.lo}, {ref.hi}]"
        )
        err = float(np.abs(w - ref.w).max())
    row["max_err"] = max(row["max_err"], err)
    tol = 0.5 * ref.scale if case.mode == "int" else 1e-5
    assert err <= tol, f"{case.id} {where}: engine differs from the pure reference by {err:.3g}"
