"""Run NIR graphs three ways: a plain interpreter of the NIR spec, snnTorch and Norse.

:func:`run_nir` executes a feedforward ``nir.NIRGraph`` exactly as the NIR spec defines
it, ignoring every neuroplast metadata field -- what any third-party reader sees. Forward
Euler at ``dt`` seconds, immediate reset, zero initial state; a node with several
incoming edges sums them. One step function per NIR node type (:data:`STEPS`)::

    Affine  y = W x + b        Linear  y = W x           Scale  y = s x
    Conv1d/Conv2d, SumPool2d, AvgPool2d, Flatten (batch-free dims)
    Delay   y[t] = x[t - round(delay / dt)]              (per element)
    LIF     v' = v + dt/tau (v_leak - v + r I);  s = v' > v_th;  v = v_reset where s
    LI      the same without spikes (output v')
    CubaLIF I' = I + dt/tau_syn (w_in S - I), then LIF driven by I' (tau_mem)
    IF      v' = v + dt r I;  s = v' > v_th;  v = v_reset where s
    Threshold  s = x > threshold

:func:`run_peer` runs a graph in snnTorch 1.0 (``import_from_nir``) or Norse 1.1
(``from_nir``) after NIR-equivalent rewrites into the peer's conventions
(:func:`for_peer`; docs/nir.md lists them), and :func:`peer_refusals` says in one line
per finding what a peer cannot run. :func:`compare_with_peers` checks the interpreter
against both peers on any graph they can run (optionally its delay-free version,
:func:`strip_delays`, since neither peer runs ``Delay``).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import warnings
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from neuroplast.errors import ExportError, UnsupportedError

__all__ = [
    "STEPS",
    "PEERS",
    "run_nir",
    "strip_delays",
    "peer_refusals",
    "for_peer",
    "run_peer",
    "compare_with_peers",
]

#: snnTorch's ``import_from_nir`` hard-codes this step (s); :func:`for_peer` rescales.
SNNTORCH_DT = 1e-4


def _a(x: Any) -> np.ndarray:
    return np.asarray(x, np.float64)


def _full(a: Any, shape: tuple[int, ...]) -> np.ndarray:
    return np.broadcast_to(_a(a), shape).astype(np.float32)


def _topo(nodes: dict, edges: list[tuple[str, str]]) -> list[str]:
    indeg = {n: 0 for n in nodes}
    for _, b in edges:
        indeg[b] += 1
    order, ready = [], [n for n, k in indeg.items() if k == 0]
    while ready:
        n = ready.pop()
        order.append(n)
        for a, b in edges:
            if a == n:
                indeg[b] -= 1
                if indeg[b] == 0:
                    ready.append(b)
    if len(order) != len(nodes):
        raise ExportError("NIR graph has a cycle; the reference interpreter is feedforward only")
    return order


# ================================================================ the interpreter
#: NIR node type name -> ``fn(node, i (T, B, ...), dt) -> (T, B, ...)``.
STEPS: dict[str, Callable[[Any, np.ndarray, float], np.ndarray]] = {}


def step(*types: str) -> Callable[[Callable[..., np.ndarray]], Callable[..., np.ndarray]]:
    def deco(fn: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
        for t in types:
            STEPS[t] = fn
        return fn

    return deco


step("Output")(lambda n, i, dt: i)
step("Linear")(lambda n, i, dt: i @ _a(n.weight).T)
step("Affine")(lambda n, i, dt: i @ _a(n.weight).T + _a(n.bias))
step("Scale")(lambda n, i, dt: i * _a(n.scale))
step("Threshold")(lambda n, i, dt: (i > _a(n.threshold)).astype(np.float64))


def _torch_op(fn: Callable[..., Any], i: np.ndarray, *args: Any, **kw: Any) -> np.ndarray:
    """``fn`` of torch.nn.functional on ``i (T, B, C, ...)`` with T and B folded."""
    import torch

    y = fn(torch.from_numpy(np.ascontiguousarray(i.reshape((-1,) + i.shape[2:]))), *args, **kw)
    return y.numpy().reshape(i.shape[:2] + tuple(y.shape[1:]))


@step("Conv1d", "Conv2d")
def _conv(n: Any, i: np.ndarray, dt: float) -> np.ndarray:
    import torch
    import torch.nn.functional as F

    nd = np.asarray(n.weight).ndim - 2
    fn = F.conv1d if nd == 1 else F.conv2d
    pad = n.padding if isinstance(n.padding, str) else tuple(np.broadcast_to(n.padding, (nd,)))
    t = torch.from_numpy
    return _torch_op(fn, i, t(_a(n.weight)), t(_a(n.bias)), stride=tuple(np.broadcast_to(n.stride, (nd,))),
                     padding=pad, dilation=tuple(np.broadcast_to(n.dilation, (nd,))),
                     groups=int(n.groups))  # fmt: skip


@step("SumPool2d", "AvgPool2d")
def _pool(n: Any, i: np.ndarray, dt: float) -> np.ndarray:
    import torch.nn.functional as F

    k = tuple(int(v) for v in np.broadcast_to(n.kernel_size, (2,)))
    y = _torch_op(F.avg_pool2d, i, k, tuple(int(v) for v in np.broadcast_to(n.stride, (2,))),
                  tuple(int(v) for v in np.broadcast_to(n.padding, (2,))))  # fmt: skip
    return y * (k[0] * k[1]) if type(n).__name__ == "SumPool2d" else y


@step("Flatten")
def _flatten(n: Any, i: np.ndarray, dt: float) -> np.ndarray:
    dims = i.ndim - 2  # NIR dims exclude the (T, B) axes
    a, b = int(n.start_dim) % dims + 2, int(n.end_dim) % dims + 2
    return i.reshape(i.shape[:a] + (-1,) + i.shape[b + 1 :])


@step("Delay")
def _delay(n: Any, i: np.ndarray, dt: float) -> np.ndarray:
    d = np.broadcast_to(np.rint(_a(n.delay) / dt).astype(int), i.shape[2:])
    y = np.zeros_like(i)
    for k in np.unique(d):
        if k < len(i):
            y[k:, :, d == k] = i[: len(i) - k, :, d == k]
    return y


def _euler(i: np.ndarray, update: Callable[..., Any], n: Any, spiking: bool) -> np.ndarray:
    """Run ``state, v = update(state, i_t)`` over T; spike/reset when ``spiking``."""
    out = np.zeros_like(i)
    state: Any = None
    for t in range(len(i)):
        state, v = update(state, i[t])
        if spiking:
            s = v > _a(n.v_threshold)
            v = np.where(s, _a(n.v_reset), v)
            out[t] = s
            state = state[:-1] + (v,) if isinstance(state, tuple) else v
        else:
            out[t] = v
    return out


@step("LIF", "LI")
def _lif(n: Any, i: np.ndarray, dt: float) -> np.ndarray:
    a = dt / _a(n.tau)

    def upd(v: Any, x: np.ndarray) -> tuple:
        v = np.zeros_like(x) if v is None else v
        v = v + a * (_a(n.v_leak) - v + _a(n.r) * x)
        return v, v

    return _euler(i, upd, n, type(n).__name__ == "LIF")


@step("CubaLIF")
def _cubalif(n: Any, i: np.ndarray, dt: float) -> np.ndarray:
    a_s, a_m = dt / _a(n.tau_syn), dt / _a(n.tau_mem)

    def upd(st: Any, x: np.ndarray) -> tuple:
        cur, v = (np.zeros_like(x), np.zeros_like(x)) if st is None else st
        cur = cur + a_s * (_a(n.w_in) * x - cur)
        v = v + a_m * (_a(n.v_leak) - v + _a(n.r) * cur)
        return (cur, v), v

    return _euler(i, upd, n, True)


@step("IF")
def _if(n: Any, i: np.ndarray, dt: float) -> np.ndarray:
    def upd(v: Any, x: np.ndarray) -> tuple:
        v = (0.0 if v is None else v) + dt * _a(n.r) * x
        return v, v

    return _euler(i, upd, n, True)


def run_nir(ng: Any, x: np.ndarray | dict[str, np.ndarray], dt: float) -> dict[str, np.ndarray]:
    """Run a feedforward ``nir.NIRGraph`` on ``x (T, B, *input shape)`` (or ``{input
    name: array}``) at step ``dt`` (s); returns every node's output ``(T, B, ...)``."""
    vals: dict[str, np.ndarray] = {}
    for name in _topo(ng.nodes, list(ng.edges)):
        node = ng.nodes[name]
        kind = type(node).__name__
        if kind == "Input":
            vals[name] = _a(x[name] if isinstance(x, dict) else x)
            continue
        ins = [vals[a] for a, b in ng.edges if b == name]
        if not ins:
            raise ExportError(f"NIR node {name!r} has no input")
        if kind not in STEPS:
            raise UnsupportedError(f"NIR node {name!r}: type {kind} is not in the interpreter")
        vals[name] = STEPS[kind](node, np.sum(ins, axis=0), dt)
    return vals


def strip_delays(ng: Any) -> Any:
    """The delay-free version of ``ng``: every ``Delay`` node is removed and each of its
    predecessors wired straight to each of its successors (the same as all delays 0)."""
    import nir

    drop = {k for k, n in ng.nodes.items() if type(n).__name__ == "Delay"}
    edges = list(ng.edges)
    for d in drop:
        preds = [a for a, b in edges if b == d]
        succs = [b for a, b in edges if a == d]
        edges = [(a, b) for a, b in edges if d not in (a, b)] + [
            (p, s) for p in preds for s in succs
        ]
    nodes = {k: n for k, n in ng.nodes.items() if k not in drop}
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


# ================================================================ peers
#: What each peer's importer maps (NIR type names, after :func:`for_peer`'s rewrites).
PEERS: dict[str, dict[str, Any]] = {
    "snntorch": {
        "module": "snntorch.import_nir",
        "types": set(
            "Input Output Affine Linear Conv2d Flatten AvgPool2d LIF CubaLIF LI Scale".split()
        ),
        "why": {"IF": "snnTorch's import_from_nir builds IF as a leaky neuron (beta 0.9)"},
    },
    "norse": {
        "module": "norse.torch",
        "types": set(
            "Input Output Affine Linear Conv2d Flatten SumPool2d LIF CubaLIF IF LI Scale".split()
        ),
        "why": {},
    },
}
_NEURONS = ("LIF", "CubaLIF", "IF", "LI")


class _Rewrite:
    """A mutable copy of a NIR graph and the edits :func:`for_peer` makes on it."""

    def __init__(self, ng: Any) -> None:
        self.nodes = dict(ng.nodes)
        self.edges = list(ng.edges)

    def preds(self, k: str) -> list[str]:
        return [a for a, b in self.edges if b == k]

    def succs(self, k: str) -> list[str]:
        return [b for a, b in self.edges if a == k]

    def bypass(self, k: str) -> None:
        ps, ss = self.preds(k), self.succs(k)
        self.edges = [(a, b) for a, b in self.edges if k not in (a, b)]
        self.edges += [(p, s) for p in ps for s in ss]
        del self.nodes[k]

    def _weights(self, p: str, g: np.ndarray, cols: bool) -> None:
        """Scale weight node ``p``'s output rows (or, ``cols``, its input columns) by ``g``."""
        import nir

        n, f32 = self.nodes[p], np.float32
        w = _a(n.weight)
        if cols:
            w = w * (g if w.ndim == 2 else g.reshape((1, -1) + (1,) * (w.ndim - 2)))
        else:
            w = w * g.reshape((-1,) + (1,) * (w.ndim - 1))
        b = getattr(n, "bias", None)
        b = None if b is None else _a(b) * (1.0 if cols else g)
        if type(n).__name__ == "Conv2d":
            self.nodes[p] = nir.Conv2d(n.input_shape, w.astype(f32), n.stride, n.padding,
                                       n.dilation, n.groups, b.astype(f32))  # fmt: skip
        elif b is not None:
            self.nodes[p] = nir.Affine(weight=w.astype(f32), bias=b.astype(f32))
        else:
            self.nodes[p] = nir.Linear(weight=w.astype(f32))

    def scale_into(self, k: str, gain: np.ndarray) -> None:
        """Make ``k``'s input ``gain`` times larger without changing its NIR dynamics:
        multiply the output rows (channels) of every weight node feeding ``k``."""
        gain = _a(gain)
        if np.allclose(gain, 1.0):
            return
        for p in self.preds(k):
            kind = type(self.nodes[p]).__name__
            if kind not in _WEIGHTED or self.succs(p) != [k]:
                raise UnsupportedError(
                    f"node {k!r}: its input gain cannot be moved into {p!r} ({kind}); give it "
                    "a Linear/Affine/Conv2d producer of its own"
                )
            self._weights(p, _per_channel(k, gain), cols=False)

    def scale_out(self, k: str, s: np.ndarray) -> None:
        """Remove Scale node ``k`` by multiplying its successors' input columns (through
        Flatten) by ``s``; used when its producers cannot absorb it."""
        s = _a(s)
        for q in self.succs(k):
            n = self.nodes[q]
            sq = s.ravel() if type(n).__name__ == "Flatten" else s
            targets = self.succs(q) if type(n).__name__ == "Flatten" else [q]
            for t in targets:
                kind = type(self.nodes[t]).__name__
                if kind not in _WEIGHTED:
                    raise UnsupportedError(
                        f"node {k!r}: Scale between {self.preds(k)} and {t!r} ({kind}) has no "
                        "weight node to fold into"
                    )
                self._weights(t, sq.ravel() if kind != "Conv2d" else _per_channel(k, sq), cols=True)
        self.bypass(k)


_WEIGHTED = ("Linear", "Affine", "Conv2d")


def _per_channel(k: str, g: np.ndarray) -> np.ndarray:
    """``g`` over ``(C, ...)`` -> one value per channel (must be uniform within each)."""
    g = _a(g)
    if g.ndim <= 1:
        return g.ravel()
    g2 = g.reshape(g.shape[0], -1)
    if not np.allclose(g2, g2[:, :1]):
        raise UnsupportedError(f"node {k!r}: gains differ within a channel")
    return g2[:, 0]


def peer_refusals(ng: Any, peer: str) -> list[str]:
    """Why ``peer`` cannot run ``ng`` (empty when :func:`run_peer` can): NIR types its
    importer lacks, parameters it cannot express, one input only."""
    if peer not in PEERS:
        raise ExportError(f"peer must be one of {sorted(PEERS)}, not {peer!r}")
    spec, out = PEERS[peer], []
    if sum(type(n).__name__ == "Input" for n in ng.nodes.values()) != 1:
        out.append(f"{peer} runs graphs with one Input node")
    for k, n in ng.nodes.items():
        kind = type(n).__name__
        if kind not in spec["types"]:
            out.append(
                f"node {k!r}: " + spec["why"].get(kind, f"{peer} does not import NIR {kind}")
            )
        elif kind == "LI" and any(
            type(ng.nodes[b]).__name__ != "Output" for a, b in ng.edges if a == k
        ):
            out.append(
                f"node {k!r}: {peer} has no LI; it runs as a LIF that never fires, whose output "
                "is spikes, so only a readout LI (feeding an Output) can be run"
            )
        elif kind in _NEURONS and kind != "IF" and not np.allclose(n.v_leak, 0):
            out.append(f"node {k!r}: {peer} needs v_leak = 0 ({kind})")
        elif kind in ("LIF", "CubaLIF", "IF") and not np.allclose(n.v_reset, 0):
            out.append(f"node {k!r}: {peer} resets to 0 only ({kind} v_reset != 0)")
    return out


def for_peer(ng: Any, dt: float, peer: str, merge: bool | None = None) -> Any:
    """Rewrite ``ng`` so ``peer`` ("snntorch" or "norse") runs it with the NIR meaning it
    has at step ``dt``. Every rewrite keeps the NIR dynamics (:func:`run_nir` gives the
    same spikes, and the same membrane on LI nodes):

    * ``Scale`` nodes (neither peer maps them) are folded into the rows of the weight
      nodes feeding them (an all-ones Scale, NIR's explicit sum, is just bypassed).
      With ``merge`` (default for Norse) parallel weight branches from one source into
      one Scale (the delay-free DelayLinear expansion) are summed into one node named
      like the Scale: Norse's importer (nirtorch's legacy ``GraphExecutor``) feeds a
      fan-in node the *previous* step's value of inputs not yet computed; any other
      fan-in is refused for Norse (unless ``merge=False``, which shows the stale
      step). snnTorch (``nir_to_torch``) sums fan-in correctly.
    * ``LI`` (neither peer maps it) becomes ``LIF`` with ``v_threshold = inf``; its
      membrane is read from the peer's state, so it must be a readout (feed an Output).
    * ``Flatten`` gets the batch axis the peers' torch modules see.
    * Norse ignores ``r`` on LIF (gain ``dt/tau``) and IF (gain 1 per step): the gain is
      folded into the incoming weights. Run it at ``dt``.
    * snnTorch steps at 1e-4 s and needs a unit per-step gain and one threshold per
      layer: time constants are rescaled by ``1e-4/dt`` (same per-step decay), the gain
      divided by the threshold is folded into the incoming weights, the threshold is 1.

    Raises:
        UnsupportedError: a :func:`peer_refusals` finding, or a gain with nowhere to go.
    """
    import nir

    found = peer_refusals(ng, peer)
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise UnsupportedError(f"{found[0]}{more}", tuple(found))
    g = _Rewrite(ng)
    merge = peer == "norse" if merge is None else merge
    f32 = np.float32
    for k, n in list(g.nodes.items()):
        kind = type(n).__name__
        if kind == "Scale":
            ps = g.preds(k)
            srcs = {a for p in ps for a in g.preds(p)}
            weights = all(type(g.nodes[p]).__name__ in ("Linear", "Affine") for p in ps)
            if merge and len(ps) > 1 and len(srcs) == 1 and weights:
                # parallel weight branches from one source -> one node (their NIR sum)
                w = sum(_a(g.nodes[p].weight) for p in ps) * _a(n.scale).ravel()[:, None]
                bs = [_a(g.nodes[p].bias) for p in ps if type(g.nodes[p]).__name__ == "Affine"]
                g.nodes[k] = (nir.Affine(weight=w.astype(f32), bias=(sum(bs) * _a(n.scale).ravel()).astype(f32))
                              if bs else nir.Linear(weight=w.astype(f32)))  # fmt: skip
                g.edges = [(a, b) for a, b in g.edges if a not in ps and b not in ps]
                g.edges.append((srcs.pop(), k))
                for p in ps:
                    del g.nodes[p]
                continue
            preds_ok = all(type(g.nodes[p]).__name__ in _WEIGHTED and g.succs(p) == [k] for p in ps)
            if preds_ok or np.allclose(n.scale, 1.0):
                g.scale_into(k, _a(n.scale))
                g.bypass(k)
            else:
                g.scale_out(k, _a(n.scale))
        elif kind == "Flatten":
            shape = (1, *np.ravel(n.input_type["input"]).astype(int))
            end = int(n.end_dim) + 1 if int(n.end_dim) >= 0 else int(n.end_dim)
            g.nodes[k] = nir.Flatten(input_type={"input": np.array(shape)},
                                     start_dim=int(n.start_dim) % (len(shape) - 1) + 1, end_dim=end)  # fmt: skip
    if peer == "norse" and merge:  # merge=False runs it anyway (to show the stale step)
        for k in g.nodes:
            if len(g.preds(k)) > 1:
                raise UnsupportedError(
                    f"node {k!r}: Norse's from_nir feeds a node with several inputs a stale "
                    "step of some of them (nirtorch GraphExecutor); only parallel branches "
                    "from one source are merged"
                )
    kt = SNNTORCH_DT / dt if peer == "snntorch" else 1.0
    for k, n in list(g.nodes.items()):
        kind = type(n).__name__
        if kind not in _NEURONS:
            continue
        shape = np.shape(n.v_leak) if kind != "IF" else np.shape(n.r)
        full = partial(_full, shape=shape)
        th = _a(n.v_threshold) if kind != "LI" else np.ones(shape)
        if kind == "IF":  # Norse: v += I per step
            g.scale_into(k, _a(n.r) * dt)
            g.nodes[k] = nir.IF(r=full(1.0 / dt), v_threshold=full(th), v_reset=full(0.0))
            continue
        tau = _a(n.tau_mem if kind == "CubaLIF" else n.tau)
        gain = _a(n.r) * dt / tau  # the NIR per-step input gain of the membrane
        if kind == "CubaLIF":
            gain = gain * _a(n.w_in) * dt / _a(n.tau_syn)
            if peer == "norse":  # Norse honours r and w_in on CubaLIF
                continue
            g.scale_into(k, gain / th)
            ts, tm = _a(n.tau_syn) * kt, tau * kt
            g.nodes[k] = nir.CubaLIF(tau_syn=full(ts), tau_mem=full(tm), r=full(tm / SNNTORCH_DT),
                                     v_leak=full(0.0), v_threshold=full(1.0), v_reset=full(0.0),
                                     w_in=full(ts / SNNTORCH_DT))  # fmt: skip
            continue
        spiking = kind == "LIF"
        if peer == "norse":
            g.scale_into(k, _a(n.r))  # Norse's gain is dt/tau: r moves into the weights
            r_new, th_new = np.ones(shape), th if spiking else np.full(shape, np.inf)
        else:
            g.scale_into(k, gain / th if spiking else gain)
            r_new, th_new = (
                tau * kt / SNNTORCH_DT,
                np.ones(shape) if spiking else np.full(shape, np.inf),
            )
        g.nodes[k] = nir.LIF(tau=full(tau * kt), r=full(r_new), v_leak=full(0.0),
                             v_threshold=full(th_new), v_reset=full(0.0))  # fmt: skip
    return nir.NIRGraph(nodes=g.nodes, edges=g.edges, type_check=False)


def _import(g: Any, dt: float, peer: str) -> Any:
    if peer == "snntorch":
        from snntorch.import_nir import import_from_nir

        with contextlib.redirect_stdout(io.StringIO()):  # it prints progress notes
            return import_from_nir(g)
    import norse.torch as nt

    with warnings.catch_warnings():  # nirtorch.load's deprecation notice
        warnings.simplefilter("ignore", DeprecationWarning)
        return nt.from_nir(g, dt=dt, ignore_warnings=True)


def run_peer(
    ng: Any, x: np.ndarray, dt: float, peer: str, merge: bool | None = None
) -> dict[str, np.ndarray]:
    """Run ``for_peer(ng, dt, peer, merge)`` in snnTorch or Norse on ``x (T, B, ...)``;
    returns each spiking neuron's spikes and each LI node's membrane ``(T, B, ...)`` by
    name, like :func:`run_nir` (read with forward hooks on the peer's neuron modules)."""
    import torch

    g = for_peer(ng, dt, peer, merge)
    spiking = {k: type(n).__name__ != "LI" for k, n in ng.nodes.items()
               if type(n).__name__ in _NEURONS}  # fmt: skip
    mod = _import(g, dt, peer)
    subs = dict(mod.named_modules())
    now: dict[str, np.ndarray] = {}

    def hook(name: str) -> Callable[..., None]:
        def f(m: Any, _inp: Any, out: Any) -> None:
            z = out[0] if isinstance(out, tuple) else out
            if peer == "snntorch":  # init_hidden modules keep the membrane in .mem
                v = m.mem
            else:  # Norse: (spikes, state) with state.v, or CubaLIF's (syn, lif) states
                st = out[1]
                v = (st if hasattr(st, "v") else st[1]).v
            now[name] = (z if spiking[name] else v).detach().numpy().copy()

        return f

    for k in spiking:
        if k not in subs:
            raise ExportError(f"{peer} module has no submodule {k!r} to read")
        subs[k].register_forward_hook(hook(k))
    x = np.asarray(x, np.float32)
    res: dict[str, list[np.ndarray]] = {k: [] for k in spiking}
    state = None
    with torch.no_grad():
        for t in range(x.shape[0]):
            xt = torch.from_numpy(np.ascontiguousarray(x[t]))
            if peer == "snntorch":
                mod(xt)
            else:
                _, state = mod(xt, state)
            for k in spiking:
                res[k].append(np.broadcast_to(now[k], x.shape[1:2] + now[k].shape[1:]))
    return {k: np.asarray(v, np.float64) for k, v in res.items()}


def compare_with_peers(
    ng: Any,
    x: np.ndarray,
    dt: float,
    *,
    strip: bool = False,
    readout: str | None = None,
    score: Callable[[np.ndarray], np.ndarray] | None = None,
) -> dict[str, Any]:
    """Cross-check :func:`run_nir` with snnTorch and Norse on ``ng`` (its delay-free
    version with ``strip``) and input ``x (T, B, ...)``.

    Per peer: ``spike_agree`` (fraction of identical spike entries over every spiking
    node x step x sample, also ``per_layer``) and spike counts; for the LI node
    ``readout``: ``readout_max_abs`` (membrane difference) and, with ``score``
    (``(T, B, n) -> (B, classes)``), ``argmax_agree``. A peer that is not importable or
    cannot run the graph is recorded as ``{"skipped": reason}``, a crash as ``{"error"}``.
    """
    g0 = strip_delays(ng) if strip else ng
    ref = run_nir(g0, x, dt)
    lifs = [k for k, n in g0.nodes.items() if type(n).__name__ in ("LIF", "CubaLIF", "IF")]
    res: dict[str, Any] = {
        "n_delay_nodes_after_strip": sum(type(n).__name__ == "Delay" for n in g0.nodes.values()),
        "n_inputs": int(np.asarray(x).shape[1]),  # input sequences
        "steps": int(np.asarray(x).shape[0]),
        "interpreter_spikes": {k: int(ref[k].sum()) for k in lifs},
    }
    for peer, spec in PEERS.items():
        try:
            importlib.import_module(spec["module"])
        except ImportError as e:
            res[peer] = {"skipped": f"{peer} is not importable: {e}"}
            continue
        try:
            got = run_peer(g0, x, dt, peer)
        except UnsupportedError as e:
            res[peer] = {"skipped": str(e)}
            continue
        except Exception as e:  # a peer's importer or runner failing is a finding, not a crash
            res[peer] = {"error": f"{type(e).__name__}: {e}"}
            continue
        n_all = sum(ref[k].size for k in lifs)
        r: dict[str, Any] = {
            "spike_agree": float(sum(np.sum(got[k] == ref[k]) for k in lifs) / max(n_all, 1)),
            "per_layer": {k: float(np.mean(got[k] == ref[k])) for k in lifs},
            "spikes": {k: int(got[k].sum()) for k in lifs},
        }
        if readout is not None and readout in got:
            r["readout_max_abs"] = float(np.abs(got[readout] - ref[readout]).max())
            r["readout_max_abs_ref"] = float(np.abs(ref[readout]).max())
            if score is not None:
                same = score(got[readout]).argmax(-1) == score(ref[readout]).argmax(-1)
                r["argmax_agree"] = float(np.mean(same))
        res[peer] = r
    return res
