"""STDP throughput of a 700x256 plastic layer: neuroplast vs BindsNET, same run.

Both sides learn from the *same* pre (700) and post (256) spike trains with pair STDP
(nearest-spike traces set to 1, tau 20 steps, nu_pre 1e-4 depression, nu_post 1e-2
potentiation, weights clamped to [0, 1]). Pre spikes fall on even steps and post
spikes on odd steps, so no pre/post pair coincides in one step -- the only case where
BindsNET (traces include the current step) and neuroplast (they do not) differ by
definition. The final weights of both are compared as a correctness cross-check.

neuroplast is timed three ways:
  * ``runtime``: ``rt.step`` of a two-input graph (Input->Linear, Input) with
    ``rt.learn(True)`` and the PlasticityEngine -- the on-device path (forward pass
    included, as in BindsNET's ``Network.run``);
  * ``stdp_run``: the chunked, event-driven rule function over the whole train;
  * ``pure step``: the dense pure function ``pair_stdp_update`` per step (reference).

BindsNET's core (network, nodes, topology, learning) is used as is. Its package
imports torchvision/pandas/gym helpers at import time that cannot be installed next to
the pinned CPU torch here, so those helper modules are stubbed (they are only used by
BindsNET's datasets, plotting and environment code, none of which runs here).
Brian2 (the issue's fallback) does not import with numpy 2.x on Python 3.11.

Run:  OMP_NUM_THREADS=1 .venv/bin/python bench/bench_plasticity.py [--steps 2000]
Writes bench/results/plasticity.json.
"""

from __future__ import annotations

import argparse
import importlib.abc
import importlib.machinery
import json
import os
import platform
import sys
import time
import types
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

N_PRE, N_POST = 700, 256
NU_PRE, NU_POST, TAU = 1e-4, 1e-2, 20.0


def make_trains(steps: int, rate: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Pre spikes on even steps, post spikes on odd steps (mean rate ``rate``/step)."""
    rng = np.random.default_rng(seed)
    pre = (rng.random((steps, N_PRE)) < 2 * rate).astype(np.float32)
    post = (rng.random((steps, N_POST)) < 2 * rate).astype(np.float32)
    pre[1::2] = 0
    post[0::2] = 0
    return pre, post


def initial_weights(seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.2, 0.8, (N_POST, N_PRE)).astype(np.float32)


# ---------------------------------------------------------------------- neuroplast


def _params():
    from neuroplast.plasticity import PairSTDPParams

    return PairSTDPParams(
        eta_plus=NU_POST,
        eta_minus=NU_PRE,
        tau_plus=TAU,
        tau_minus=TAU,
        dt=1.0,
        w_min=0.0,
        w_max=1.0,
        trace="nearest",
    )


def run_neuroplast_runtime(pre: np.ndarray, post: np.ndarray, w0: np.ndarray, learn=True):
    from neuroplast.graph import Graph, Input, Linear
    from neuroplast.runtime import Runtime

    g = Graph(
        {
            "pre": Input(shape=(N_PRE,)),
            "fc": Linear(weight=w0),
            "post": Input(shape=(N_POST,)),
        },
        [("pre", "fc")],
    )
    rt = Runtime(g)
    rt.plasticity.attach("fc", _params(), post="post")
    rt.learn(learn)
    t0 = time.perf_counter()
    for t in range(pre.shape[0]):
        rt.step({"pre": pre[t], "post": post[t]})
    dt = time.perf_counter() - t0
    return dt, rt.params["fc"]["weight"].astype(np.float64)


def run_neuroplast_chunked(
    pre: np.ndarray, post: np.ndarray, w0: np.ndarray, backend: str = "auto"
):
    from neuroplast.plasticity import stdp_init, stdp_run

    t0 = time.perf_counter()
    w, _ = stdp_run(w0, pre, post, stdp_init(N_PRE, N_POST), _params(), backend=backend)
    return time.perf_counter() - t0, w


def run_neuroplast_pure(pre: np.ndarray, post: np.ndarray, w0: np.ndarray):
    from neuroplast.plasticity import pair_stdp_update, stdp_init

    p, st, w = _params(), stdp_init(N_PRE, N_POST), w0.astype(np.float64)
    t0 = time.perf_counter()
    for t in range(pre.shape[0]):
        w, st = pair_stdp_update(w, pre[t], post[t], st, p)
    return time.perf_counter() - t0, w


# ------------------------------------------------------------------------ BindsNET

_STUBBED = ("torchvision", "pandas", "tensorboardX", "gym", "gymnasium", "ale_py", "skimage")
_STUBBED += ("cv2", "imageio", "sklearn")


class _Stub(types.ModuleType):
    """Stand-in for a helper package BindsNET imports but this benchmark never uses."""

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        if name[:1].islower():
            m = _Stub(f"{self.__name__}.{name}")
            m.__path__ = []
            return m
        return type(name, (), {"__init__": lambda self, *a, **k: None})

    def __call__(self, *a, **k):
        return None


class _StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path, target=None):
        top = fullname.split(".")[0]
        if top not in _STUBBED:
            return None
        # use the real package when another finder can import it
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            try:
                if finder.find_spec(top, None) is not None:
                    return None
            except (ImportError, ValueError):
                continue
        return importlib.machinery.ModuleSpec(fullname, self, is_package=True)

    def create_module(self, spec):
        m = _Stub(spec.name)
        m.__path__ = []
        return m

    def exec_module(self, module):
        pass


def import_bindsnet():
    sys.meta_path.insert(0, _StubFinder())
    import bindsnet  # noqa: F401
    from bindsnet.learning import PostPre
    from bindsnet.network import Network
    from bindsnet.network.nodes import Input
    from bindsnet.network.topology import Connection

    return Network, Input, Connection, PostPre


def run_bindsnet(pre: np.ndarray, post: np.ndarray, w0: np.ndarray):
    import torch

    torch.set_num_threads(1)
    Network, Input, Connection, PostPre = import_bindsnet()
    net = Network(dt=1.0)
    src = Input(n=N_PRE, traces=True, tc_trace=TAU)
    tgt = Input(n=N_POST, traces=True, tc_trace=TAU)
    conn = Connection(
        source=src,
        target=tgt,
        w=torch.tensor(w0.T.copy()),
        update_rule=PostPre,
        nu=(NU_PRE, NU_POST),
        wmin=0.0,
        wmax=1.0,
    )
    net.add_layer(src, name="pre")
    net.add_layer(tgt, name="post")
    net.add_connection(conn, source="pre", target="post")
    pre_t = torch.tensor(pre, dtype=torch.bool).unsqueeze(1)
    post_t = torch.tensor(post, dtype=torch.bool).unsqueeze(1)
    # Network.run would add the connection's output to the target Input's "spikes";
    # to impose the recorded post train we step the nodes and the connection
    # ourselves, in Network.run's order: node forward (spikes, traces), connection
    # compute (the forward pass, kept for parity with rt.step), learning update.
    t0 = time.perf_counter()
    with torch.no_grad():
        for t in range(pre.shape[0]):
            src.forward(x=pre_t[t])
            tgt.forward(x=post_t[t])
            conn.compute(src.s)
            conn.update(learning=True)
    dt = time.perf_counter() - t0
    from importlib.metadata import version

    return dt, conn.w.detach().numpy().T.astype(np.float64), version("bindsnet")


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3, help="best of N interleaved rounds")
    ap.add_argument("--rate", type=float, default=0.02, help="spikes per step (20 Hz at 1 ms)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "plasticity.json"))
    args = ap.parse_args(argv)
    pre, post = make_trains(args.steps, args.rate)
    w0 = initial_weights()
    syn = N_PRE * N_POST
    rows: list[dict] = []
    results: dict = {
        "benchmark": "pair STDP, 700x256 plastic layer",
        "steps": args.steps,
        "rate_per_step": args.rate,
        "pre_spikes": int(pre.sum()),
        "post_spikes": int(post.sum()),
        "machine": {"python": platform.python_version(), "cpu": platform.processor()},
        "threads": 1,
        "timing": f"best of {args.repeats} interleaved rounds (wall time)",
    }

    def add(name: str, seconds: float, w: np.ndarray | None, *_):
        rows.append(
            {
                "impl": name,
                "seconds": seconds,
                "steps_per_s": args.steps / seconds,
                "synapse_updates_per_s": args.steps * syn / seconds,
                "weights": w,
            }
        )

    # warm up imports and (when numba is installed) load/compile the kernels
    run_neuroplast_runtime(pre[:50], post[:50], w0)
    run_neuroplast_chunked(pre[:50], post[:50], w0)
    from neuroplast.plasticity import _accel

    results["numba"] = _accel.kernels() is not None
    impls: dict[str, tuple] = {
        "neuroplast runtime (rt.step + engine)": (run_neuroplast_runtime, {}),
        "neuroplast stdp_run (chunked, auto)": (run_neuroplast_chunked, {}),
        "neuroplast stdp_run (chunked, numpy)": (run_neuroplast_chunked, {"backend": "numpy"}),
        "forward only": (run_neuroplast_runtime, {"learn": False}),
    }
    peer = None
    try:
        run_bindsnet(pre[:50], post[:50], w0)  # warm up
        impls["BindsNET"] = (run_bindsnet, {})
    except Exception as e:  # noqa: BLE001 - report any failure of the peer
        results["peer_error"] = f"BindsNET unavailable: {type(e).__name__}: {e}"
    # best of N wall times, the implementations taking turns round by round (the machine
    # is shared: a load change then hits every implementation, not just one)
    best: dict[str, tuple] = {}
    for _ in range(args.repeats):
        for name, (fn, kw) in impls.items():
            r = fn(pre, post, w0, **kw)
            if name not in best or r[0] < best[name][0]:
                best[name] = r
    for name in list(impls)[:3]:
        add(name, *best[name])
    results["runtime_forward_only_steps_per_s"] = args.steps / best["forward only"][0]
    n_pure = min(args.steps, 400)
    t_pure, _ = run_neuroplast_pure(pre[:n_pure], post[:n_pure], w0)
    add("neuroplast pure step (dense)", t_pure * args.steps / n_pure, None)
    if "BindsNET" in best:
        t_b, w_b, ver = best["BindsNET"]
        peer = f"BindsNET {ver}"
        add(peer, t_b, w_b)

    ref = next((r for r in rows if r["impl"].startswith("BindsNET")), None)
    for r in rows:
        if ref is not None:
            r["speedup_vs_peer"] = r["steps_per_s"] / ref["steps_per_s"]
            if r["weights"] is not None:
                r["max_abs_weight_diff_vs_peer"] = float(
                    np.abs(r["weights"] - ref["weights"]).max()
                )
        r.pop("weights")
    results["rows"] = rows
    results["peer"] = peer
    if ref is not None:
        rt_row = rows[0]
        results["speedup_runtime_vs_peer"] = rt_row["speedup_vs_peer"]
        results["speedup_best_vs_peer"] = max(r["speedup_vs_peer"] for r in rows)
        results["target_10x_met_by_runtime_path"] = rt_row["speedup_vs_peer"] >= 10
    _print(results)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    return results


def _print(results: dict) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # pragma: no cover
        print(json.dumps(results, indent=2))
        return
    t = Table(title=f"{results['benchmark']} -- {results['steps']} steps, 1 thread")
    for c in ("implementation", "steps/s", "synapse updates/s", "x peer", "max |dw| vs peer"):
        t.add_column(c, justify="right" if c != "implementation" else "left")
    for r in results["rows"]:
        t.add_row(
            r["impl"],
            f"{r['steps_per_s']:,.0f}",
            f"{r['synapse_updates_per_s']:.3g}",
            f"{r.get('speedup_vs_peer', float('nan')):.1f}",
            f"{r['max_abs_weight_diff_vs_peer']:.2e}"
            if "max_abs_weight_diff_vs_peer" in r
            else "-",
        )
    Console().print(t)
    if "peer_error" in results:
        Console().print(f"[yellow]{results['peer_error']}")


if __name__ == "__main__":
    main()
