"""A plain NIR interpreter (numpy) used to verify the KWS NIR export, and the
third-party cross-check of that interpreter in snnTorch and Norse.

No surveyed simulator runs NIR ``Delay`` nodes except Spyx (JAX), so the export is
checked by executing the NIR graph exactly as the NIR spec defines it, ignoring every
neuroplast metadata field -- what any third-party reader would see. Forward Euler at
``dt`` seconds with immediate reset (the NIR/snnTorch/Norse import convention)::

    Linear  y = W x            Affine  y = W x + b        Scale  y = s * x
    Delay   y[t] = x[t - round(delay / dt)]
    LIF     v' = v_leak + (1 - dt/tau)(v - v_leak) + (r dt / tau) I;  s = v' > v_th;
            v = v_reset where s
    LI      v' = v_leak + (1 - dt/tau)(v - v_leak) + (r dt / tau) I  (output v')

A node with several incoming edges sums them (NIR semantics).

The interpreter itself is checked against snnTorch and Norse on the delay-free graph
(:func:`strip_delays`: every ``Delay`` node removed, its predecessor wired to its
successors), which both peers can run once it is put in their conventions
(:func:`for_peer`, NIR-equivalent rewrites only -- see tests/quantize/test_nir_peers.py
and docs/nir.md for the conventions): :func:`compare_with_peers`. Chain: ``run_nir``
on the exported graph equals the neuroplast runtime, and ``run_nir`` on its delay-free
version equals snnTorch and Norse.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

import numpy as np

from neuroplast.errors import ExportError

__all__ = ["run_nir", "strip_delays", "for_peer", "run_peer", "compare_with_peers"]


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


def run_nir(ng, x: np.ndarray, dt: float) -> dict[str, np.ndarray]:  # noqa: ANN001 - nir.NIRGraph
    """Run a feedforward ``nir.NIRGraph`` on ``x (T, B, n_in)``; returns every node's
    output sequence ``(T, B, ...)`` by name."""
    import nir

    x = np.asarray(x, np.float64)
    T = x.shape[0]
    vals: dict[str, np.ndarray] = {}
    for name in _topo(ng.nodes, list(ng.edges)):
        node = ng.nodes[name]
        ins = [vals[a] for a, b in ng.edges if b == name]
        if isinstance(node, nir.Input):
            vals[name] = x
            continue
        if not ins:
            raise ExportError(f"NIR node {name!r} has no input")
        i = np.sum(ins, axis=0)
        if isinstance(node, nir.Output):
            vals[name] = i
        elif isinstance(node, nir.Affine):
            vals[name] = i @ np.asarray(node.weight, np.float64).T + np.asarray(node.bias)
        elif isinstance(node, nir.Linear):
            vals[name] = i @ np.asarray(node.weight, np.float64).T
        elif isinstance(node, nir.Scale):
            vals[name] = i * np.asarray(node.scale, np.float64)
        elif isinstance(node, nir.Delay):
            d = np.rint(np.asarray(node.delay, np.float64) / dt).astype(int)
            if np.any(d != d.flat[0]):
                raise ExportError("per-neuron different delays are not supported here")
            k = int(d.flat[0])
            y = np.zeros_like(i)
            if k < T:
                y[k:] = i[: T - k]
            vals[name] = y
        elif isinstance(node, (nir.LIF, nir.LI)):
            tau = np.asarray(node.tau, np.float64)
            beta = 1.0 - dt / tau
            gain = np.asarray(node.r, np.float64) * dt / tau
            leak = np.asarray(node.v_leak, np.float64)
            spiking = isinstance(node, nir.LIF)
            v = np.zeros(i.shape[1:])
            out = np.zeros_like(i)
            for t in range(T):
                v = leak + beta * (v - leak) + gain * i[t]
                if spiking:
                    s = v > np.asarray(node.v_threshold, np.float64)
                    v = np.where(s, np.asarray(node.v_reset, np.float64), v)
                    out[t] = s
                else:
                    out[t] = v
            vals[name] = out
        else:
            raise ExportError(f"NIR node kind {type(node).__name__} not supported by run_nir")
    return vals


# ============================================================ third-party cross-check
PEER_DT = 1e-4  # snnTorch's import_from_nir hard-codes dt = 1e-4


def strip_delays(ng):  # noqa: ANN001, ANN201 - nir.NIRGraph -> nir.NIRGraph
    """The delay-free version of ``ng``: every ``Delay`` node is removed and each of its
    predecessors wired straight to each of its successors (the same as all delays 0)."""
    import nir

    drop = {k for k, n in ng.nodes.items() if isinstance(n, nir.Delay)}
    edges = list(ng.edges)
    while True:  # chains of Delay nodes are bypassed one link at a time
        d = next((b for a, b in edges if b in drop), None)
        if d is None:
            break
        preds = [a for a, b in edges if b == d]
        succs = [b for a, b in edges if a == d]
        edges = [(a, b) for a, b in edges if d not in (a, b)]
        edges += [(p, s) for p in preds for s in succs]
    edges = [(a, b) for a, b in edges if a not in drop]  # Delay nodes without inputs
    nodes = {k: n for k, n in ng.nodes.items() if k not in drop}
    return nir.NIRGraph(nodes=nodes, edges=edges)


def _arr(a: Any, shape: tuple[int, ...]) -> np.ndarray:
    return np.broadcast_to(np.asarray(a, np.float64), shape).astype(np.float32)


def for_peer(ng, dt: float, peer: str, merge: bool | None = None):  # noqa: ANN001, ANN201
    """Rewrite a delay-free graph so ``peer`` ("snntorch" or "norse") runs it with the
    NIR meaning it has at step ``dt``. Every rewrite keeps the NIR dynamics (same
    spikes and membranes in :func:`run_nir`, which reports an LI node's membrane and a
    LIF node's spikes):

    * ``Scale`` nodes (neither peer maps them) are folded into the rows of the
      ``Linear``/``Affine`` nodes feeding them. With ``merge`` (default for Norse),
      parallel weight branches from one source into a ``Scale`` (the delay-free
      DelayLinear expansion) are summed into one node named like the ``Scale``:
      Norse's importer (nirtorch's legacy ``GraphExecutor``) runs nodes in depth-first
      order and feeds a fan-in node the *previous* step's value of inputs not yet
      computed, a spurious one-step delay. snnTorch (nirtorch's ``nir_to_torch``)
      sums fan-in correctly and runs the branches as they are.
    * ``LI`` (neither peer maps it) becomes ``LIF`` with ``v_threshold = inf``
      (never spikes, so never resets); its membrane is read from the peer's state.
    * Norse ignores ``r`` (gain ``dt/tau``): ``r`` is folded into the incoming weights
      and set to 1 (``r_mode="fold"`` of ``neuroplast.quantize.nir``); run it at ``dt``.
    * snnTorch hard-codes ``dt = 1e-4`` and needs a unit per-step gain ``r dt/tau``:
      time constants are rescaled by ``1e-4/dt`` (same per-step decay), the gain is
      folded into the incoming weights and ``r = tau/1e-4``.
    """
    import nir

    if peer not in ("snntorch", "norse"):
        raise ExportError(f"peer must be 'snntorch' or 'norse', not {peer!r}")
    if any(isinstance(n, nir.Delay) for n in ng.nodes.values()):
        raise ExportError("for_peer needs a delay-free graph (strip_delays first)")
    nodes = dict(ng.nodes)
    edges = list(ng.edges)

    def preds(k: str) -> list[str]:
        return [a for a, b in edges if b == k]

    def scale_rows(k: str, s: np.ndarray) -> None:
        """Multiply the output rows of every weight node feeding ``k`` by ``s``."""
        for p in preds(k):
            n = nodes[p]
            if (
                not isinstance(n, (nir.Linear, nir.Affine))
                or len([b for a, b in edges if a == p]) != 1
            ):
                raise ExportError(f"cannot fold a gain into {p!r} ({type(n).__name__})")
            w = np.asarray(n.weight, np.float64) * s.reshape(-1, 1)
            if isinstance(n, nir.Affine):
                b = np.asarray(n.bias, np.float64) * s
                nodes[p] = nir.Affine(weight=w.astype(np.float32), bias=b.astype(np.float32))
            else:
                nodes[p] = nir.Linear(weight=w.astype(np.float32))

    if merge is None:
        merge = peer == "norse"
    for k, n in list(nodes.items()):
        if not isinstance(n, nir.Scale):
            continue
        scale_rows(k, np.asarray(n.scale, np.float64).ravel())
        pr = preds(k)
        srcs = {a for p in pr for a in preds(p)}
        if merge and len(pr) > 1 and len(srcs) == 1 and all(len(preds(p)) == 1 for p in pr):
            # parallel weight branches from one source -> one node (their NIR sum)
            w = sum(np.asarray(nodes[p].weight, np.float64) for p in pr)
            bs = [
                np.asarray(nodes[p].bias, np.float64)
                for p in pr
                if isinstance(nodes[p], nir.Affine)
            ]
            nodes[k] = (
                nir.Affine(weight=w.astype(np.float32), bias=sum(bs).astype(np.float32))
                if bs
                else nir.Linear(weight=w.astype(np.float32))
            )
            edges = [(a, b) for a, b in edges if a not in pr and b not in pr] + [(srcs.pop(), k)]
            for p in pr:
                del nodes[p]
            continue
        succ = [b for a, b in edges if a == k]
        edges = [(a, b) for a, b in edges if k not in (a, b)] + [(p, s) for p in pr for s in succ]
        del nodes[k]
    k_time = PEER_DT / dt if peer == "snntorch" else 1.0
    for k, n in list(nodes.items()):
        if not isinstance(n, (nir.LIF, nir.LI)):
            if isinstance(n, (nir.CubaLIF, nir.IF)):
                raise ExportError(f"for_peer does not handle {type(n).__name__} ({k!r})")
            continue
        shape = tuple(np.asarray(n.r).shape) or (1,)
        tau = np.asarray(n.tau, np.float64)
        r = np.asarray(n.r, np.float64)
        if peer == "norse":
            gain, r_new = r, np.ones(shape)
        else:
            gain, r_new = r * dt / tau, tau * k_time / PEER_DT
        scale_rows(k, np.broadcast_to(gain, shape).ravel())
        spiking = isinstance(n, nir.LIF)
        nodes[k] = nir.LIF(
            tau=_arr(tau * k_time, shape),
            r=_arr(r_new, shape),
            v_leak=_arr(n.v_leak, shape),
            v_threshold=_arr(n.v_threshold if spiking else np.inf, shape),
            v_reset=_arr(n.v_reset if spiking else 0.0, shape),
        )
    return nir.NIRGraph(nodes=nodes, edges=edges)


def run_peer(  # noqa: ANN001
    ng, x: np.ndarray, dt: float, peer: str, merge: bool | None = None
) -> dict[str, np.ndarray]:
    """Run ``for_peer(ng, dt, peer, merge)`` in snnTorch (``import_from_nir``) or Norse
    (``from_nir(dt=dt)``) on ``x (T, B, n_in)``; returns each LIF node's spikes and each
    LI node's membrane, ``(T, B, n)`` by name, like :func:`run_nir`. They are read with
    forward hooks on the peer's neuron modules (its graph has a single output)."""
    import nir
    import torch

    g = for_peer(ng, dt, peer, merge)
    spiking = {
        k: isinstance(n, nir.LIF) for k, n in ng.nodes.items() if isinstance(n, (nir.LIF, nir.LI))
    }
    if peer == "snntorch":
        import contextlib
        import io

        from snntorch.import_nir import import_from_nir

        with contextlib.redirect_stdout(io.StringIO()):  # it prints progress notes
            mod = import_from_nir(g)
    else:
        import norse.torch as nt

        with warnings.catch_warnings():  # nirtorch.load's deprecation notice
            warnings.simplefilter("ignore", DeprecationWarning)
            mod = nt.from_nir(g, dt=dt, ignore_warnings=True)
    subs = dict(mod.named_modules())
    step: dict[str, np.ndarray] = {}

    def hook(name: str):  # noqa: ANN202
        def f(m, _inp, out) -> None:  # noqa: ANN001
            if peer == "snntorch":  # Leaky(init_hidden=True): spikes, membrane in .mem
                z = out[0] if isinstance(out, tuple) else out
                v = m.mem
            else:  # Norse LIFBoxCell: (spikes, LIFBoxFeedForwardState(v))
                z, v = out[0], out[1].v
            step[name] = (z if spiking[name] else v).detach().numpy().copy()

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
                res[k].append(np.broadcast_to(step[k], x.shape[1:2] + step[k].shape[-1:]))
    return {k: np.asarray(v, np.float64) for k, v in res.items()}


def compare_with_peers(ng, x: np.ndarray, dt: float, out: str = "out") -> dict[str, Any]:  # noqa: ANN001
    """Cross-check :func:`run_nir` with snnTorch and Norse on the delay-free version of
    ``ng`` (:func:`strip_delays`) and spike input ``x (T, B, n_in)``.

    Per peer: ``spike_agree`` (fraction of identical spike entries, all LIF layers x
    steps x samples, also ``per_layer``), spike counts, ``readout_max_abs`` (membrane
    of the LI readout ``out``) and ``argmax_agree`` of the summed readout. A peer
    that is not importable is recorded as ``{"skipped": reason}``."""
    import nir

    g0 = strip_delays(ng)
    ref = run_nir(g0, x, dt)
    lifs = [k for k, n in g0.nodes.items() if isinstance(n, nir.LIF)]
    res: dict[str, Any] = {
        "n_delay_nodes_after_strip": sum(isinstance(n, nir.Delay) for n in g0.nodes.values()),
        "n_inputs": int(np.asarray(x).shape[1]),
        "steps": int(np.asarray(x).shape[0]),
        "interpreter_spikes": {k: int(ref[k].sum()) for k in lifs},
    }
    for peer, mod in (("snntorch", "snntorch.import_nir"), ("norse", "norse.torch")):
        try:
            importlib.import_module(mod)
        except ImportError as e:
            res[peer] = {"skipped": f"{peer} is not importable: {e}"}
            continue
        try:
            got = run_peer(g0, x, dt, peer)
        except Exception as e:  # a peer's importer or runner failing is a finding, not a crash
            res[peer] = {"error": f"{type(e).__name__}: {e}"}
            continue
        per = {k: float(np.mean(got[k] == ref[k])) for k in lifs}
        n_all = sum(ref[k].size for k in lifs)
        r: dict[str, Any] = {
            "spike_agree": float(sum(np.sum(got[k] == ref[k]) for k in lifs) / max(n_all, 1)),
            "per_layer": per,
            "spikes": {k: int(got[k].sum()) for k in lifs},
        }
        if out in got:
            r["readout_max_abs"] = float(np.abs(got[out] - ref[out]).max())
            r["readout_max_abs_ref"] = float(np.abs(ref[out]).max())
            from neuroplast.apps.kws.infer import summed_softmax_np

            r["argmax_agree"] = float(
                np.mean(
                    summed_softmax_np(got[out]).argmax(-1) == summed_softmax_np(ref[out]).argmax(-1)
                )
            )
        res[peer] = r
    return res
