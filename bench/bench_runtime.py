"""Streaming inference speed: neuroplast vs snnTorch and Norse, same network, same run.

Network: 700-256-256-20 (Linear -> LIF -> Linear -> LIF -> Linear -> LIF), T=100 steps,
batch 1, float32, CPU, one thread for every framework. Reports steps/s for
step-by-step streaming (one call per time step, the device use case) and for a
whole window (``Runtime.run``, vectorized over time), the ratio to each peer, the
peak RSS of a process that only imports neuroplast and runs the bundle, and the
import time. Prints a table and writes bench/results/runtime.json.

    python bench/bench_runtime.py [--steps 100] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

SIZES = (700, 256, 256, 20)
RESULTS = Path(__file__).resolve().parent / "results"


def build_graph(seed: int = 0):
    from neuroplast.graph import LIF, Graph, Input, Linear

    rng = np.random.default_rng(seed)
    layers = [("in", Input(shape=(SIZES[0],)))]
    for i, (a, b) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        w = rng.normal(0, 1.5 / np.sqrt(a), (b, a)).astype(np.float32)
        layers.append((f"fc{i}", Linear(weight=w, bias=np.zeros(b, np.float32))))
        layers.append((f"lif{i}", LIF(tau_mem=np.full(b, 2e-2), v_th=np.ones(b))))
    return Graph.sequential(layers, dt=1e-3)


def best_of(fn, repeats: int) -> float:
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def bench_neuroplast(graph, x, repeats):
    from neuroplast.runtime import Runtime

    rt = Runtime(graph)

    def stream():
        rt.reset()
        for t in range(x.shape[0]):
            rt.step(x[t])

    def window():
        rt.reset()
        rt.run(x)

    stream()
    return best_of(stream, repeats), best_of(window, repeats)


def bench_snntorch(graph, x, repeats):
    import snntorch as snn
    import torch

    torch.set_num_threads(1)
    beta = 1 - graph.dt / 2e-2
    lins, neurons = [], []
    for i in range(3):
        n = graph.nodes[f"fc{i}"]
        lin = torch.nn.Linear(n.weight.shape[1], n.weight.shape[0])
        lin.weight.data = torch.from_numpy(np.array(n.weight))
        lin.bias.data.zero_()
        lins.append(lin)
        neurons.append(snn.Leaky(beta=beta, threshold=1.0, reset_mechanism="zero"))
    xt = torch.from_numpy(x)[:, None, :]

    @torch.no_grad()
    def stream():
        mems = [nrn.init_leaky() for nrn in neurons]
        for t in range(xt.shape[0]):
            h = xt[t]
            for k in range(3):
                h, mems[k] = neurons[k](lins[k](h), mems[k])

    stream()
    return best_of(stream, repeats)


def bench_norse(graph, x, repeats):
    import torch
    from norse.torch import LIFBoxCell, LIFBoxParameters

    torch.set_num_threads(1)
    lins, cells = [], []
    for i in range(3):
        n = graph.nodes[f"fc{i}"]
        lin = torch.nn.Linear(n.weight.shape[1], n.weight.shape[0])
        lin.weight.data = torch.from_numpy(np.array(n.weight))
        lin.bias.data.zero_()
        lins.append(lin)
        p = LIFBoxParameters(
            tau_mem_inv=torch.tensor(1 / 2e-2),
            v_th=torch.tensor(1.0),
            v_leak=torch.tensor(0.0),
            v_reset=torch.tensor(0.0),
        )
        cells.append(LIFBoxCell(p, dt=graph.dt))
    xt = torch.from_numpy(x)[:, None, :]

    @torch.no_grad()
    def stream():
        states = [None, None, None]
        for t in range(xt.shape[0]):
            h = xt[t]
            for k in range(3):
                h, states[k] = cells[k](lins[k](h), states[k])

    stream()
    return best_of(stream, repeats)


def process_footprint(bundle: Path, steps: int) -> dict:
    """Peak RSS and import time of a fresh process that imports neuroplast and runs."""
    code = (
        "import time, sys\n"
        "t0 = time.perf_counter()\n"
        "import neuroplast\n"
        "t_import = time.perf_counter() - t0\n"
        "import numpy as np\n"
        f"rt = neuroplast.load({str(bundle)!r})\n"
        f"x = (np.random.default_rng(0).random(({steps}, {SIZES[0]})) < 0.05).astype(np.float32)\n"
        "for t in range(x.shape[0]): rt.step(x[t])\n"
        # VmHWM, not ru_maxrss: Linux carries the parent's high-water mark across exec
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
        "print(t_import, int(hwm) / 1024, int('torch' in sys.modules))\n"
    )
    imports, rss = [], []
    for _ in range(5):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        t_imp, peak, torch_loaded = out.stdout.split()
        imports.append(float(t_imp))
        rss.append(float(peak))
    return {
        "import_s": min(imports),
        "peak_rss_mb": max(rss),
        "torch_imported": bool(int(torch_loaded)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    graph = build_graph()
    x = (np.random.default_rng(1).random((args.steps, SIZES[0])) < 0.05).astype(np.float32)

    np_stream, np_window = bench_neuroplast(graph, x, args.repeats)
    rows = {"neuroplast step()": np_stream, "neuroplast run()": np_window}
    peers = {}
    for name, fn in (("snnTorch", bench_snntorch), ("Norse", bench_norse)):
        try:
            peers[name] = fn(graph, x, args.repeats)
        except Exception as e:  # a peer that fails to run is reported, not fatal
            print(f"{name} failed: {type(e).__name__}: {e}")
    rows.update(peers)

    from neuroplast.bundle import save_bundle

    with tempfile.TemporaryDirectory() as d:
        fp = process_footprint(save_bundle(Path(d) / "b.zip", graph), args.steps)

    sps = {k: args.steps / v for k, v in rows.items()}
    result = {
        "network": "-".join(map(str, SIZES)) + " LIF",
        "steps": args.steps,
        "batch": 1,
        "threads": 1,
        "machine": platform.processor() or platform.machine(),
        "steps_per_s": sps,
        "ratio_vs": {
            peer: {
                "step": sps["neuroplast step()"] / sps[peer],
                "run": sps["neuroplast run()"] / sps[peer],
            }
            for peer in peers
        },
        **fp,
        "targets": {"ratio_vs_snntorch": 3.0, "peak_rss_mb": 80, "import_s": 0.3},
    }
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"streaming {result['network']}, T={args.steps}, batch 1, float32, 1 thread")
    t.add_column("engine")
    t.add_column("steps/s", justify="right")
    for peer in peers:
        t.add_column(f"x vs {peer}", justify="right")
    for k, v in sps.items():
        t.add_row(k, f"{v:,.0f}", *[f"{v / sps[p]:.1f}" for p in peers])
    console = Console()
    console.print(t)
    console.print(
        f"import neuroplast: {fp['import_s'] * 1000:.0f} ms; peak RSS (import + load + run): {fp['peak_rss_mb']:.1f} MB; torch imported: {fp['torch_imported']}"
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "runtime.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
