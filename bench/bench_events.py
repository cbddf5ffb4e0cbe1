"""Event throughput of the event-driven HD layer vs a dense torch Conv3d, one core.

Same stream, same kernel, same outputs (flip-max logits on every valid position and
1 ms step, pooled to the per-step class evidence). "scatter-only" times the
accumulation alone (events x nnz), without the per-ms readout over all positions. The event-driven layer does ``events x nnz`` scatter-adds; the dense
reference does ``voxels x kernel size`` MACs whatever the sparsity. Prints a rich
table and writes bench/results/bench_events.json.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_events.py [--size 64] [--steps 200]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def _best(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def _scatter_setup(taps, movie):
    """Buffer and event columns for timing the accumulation alone (allocated once)."""
    from neuroplast.apps.motion.events import voxel_indices

    p, tb, y, x = voxel_indices(movie.events, 1000, 0)
    o = np.lexsort((x, y, p, tb))  # the order hd_event_run uses (voxel-key sorted)
    p, tb, y, x = p[o], tb[o], y[o], x[o]
    hp, wp = taps.padded_hw
    buf = np.zeros((movie.n_steps + taps.n_delays) * taps.slot_size, np.float32)
    base = tb * taps.slot_size + ((y + taps.ky - 1) * wp + (x + taps.kx - 1)) * taps.pixel_stride
    return buf, base, p.astype(np.uint8)


def _scatter_only(taps, setup, backend: str) -> None:
    """Accumulation alone: events x nnz scatter-adds into the delay buffer, no readout."""
    from neuroplast.apps.motion.event_layer import _numba_scatter, _scatter_numpy

    buf, base, pol = setup
    if backend == "numba":
        _numba_scatter()(
            buf, base, pol, taps.offsets[0], taps.weights[0], taps.offsets[1], taps.weights[1]
        )
    else:
        _scatter_numpy(buf, base, pol, taps.offsets, taps.weights)


def main(argv: list[str] | None = None) -> dict:
    import torch
    from rich.console import Console
    from rich.table import Table

    from neuroplast.apps.motion.event_layer import compile_taps, hd_event_run, numba_available
    from neuroplast.apps.motion.events import events_to_voxels
    from neuroplast.apps.motion.model import (
        HDKernel,
        HDParams,
        hd_logits_torch,
        init_kernel,
        prune_kernel,
    )
    from neuroplast.apps.motion.simulate import (
        DVSParams,
        SceneParams,
        class_velocities,
        simulate_movie,
    )

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--kernel", default=str(RESULTS / "motion_kernel.npz"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default=str(RESULTS / "bench_events.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)

    scene = SceneParams(size=args.size, texture_size=2 * args.size, n_steps=args.steps, f_cut=0.15)
    movie = simulate_movie(12345, scene, DVSParams(threshold=1.2))
    a = events_to_voxels(movie.events, movie.sensor_size, movie.n_steps)
    # one event per voxel, as the layer consumes them (binary raster semantics)
    n_ev = int(a.sum())
    density = n_ev / a.size
    if Path(args.kernel).exists():
        kern = HDKernel.load(args.kernel)
        ksrc = args.kernel
    else:
        kern = init_kernel(HDParams(), 0, class_velocities())
        ksrc = "motion-prior init (no trained kernel found)"
    dense_nnz = kern.weight.size

    # dense torch reference (independent of sparsity)
    w = torch.from_numpy(kern.weight)
    b = torch.from_numpy(kern.bias)
    x = torch.from_numpy(a[None].astype(np.float32))

    def dense():
        with torch.no_grad():
            hd_logits_torch(x, w, b).mean(dim=(3, 4))

    dense()
    t_dense = _best(dense, args.repeat)

    backend = "numba" if numba_available() else "numpy"
    rows = []
    for factor in (1, 10, 20, 50, 100, 300, 1000):
        k = prune_kernel(kern, max(1, dense_nnz // factor))
        taps = compile_taps(k.weight, k.bias, movie.sensor_size)
        run = lambda taps=taps: hd_event_run(  # noqa: E731
            taps, movie.events, movie.n_steps, chunk=50, backend=backend, pooled=True
        )
        run()  # compile / warm up
        t_ev = _best(run, args.repeat if factor > 1 else 1)
        setup = _scatter_setup(taps, movie)
        t_sc = _best(lambda taps=taps, st=setup: _scatter_only(taps, st, backend), args.repeat)
        del setup
        rows.append(
            {
                "prune_factor": factor,
                "nnz": k.nnz,
                "event_s": t_ev,
                "events_per_s": n_ev / t_ev,
                "tap_updates_per_s": n_ev * k.nnz / t_ev,
                "scatter_only_s": t_sc,
                "scatter_only_events_per_s": n_ev / t_sc,
                "dense_torch_s": t_dense,
                "dense_events_per_s": n_ev / t_dense,
                "speedup_vs_dense": t_dense / t_ev,
            }
        )
    res = {
        "sensor": list(movie.sensor_size),
        "steps_ms": movie.n_steps,
        "events": n_ev,
        "event_density_per_polarity_voxel": density,
        "kernel_shape": list(kern.weight.shape),
        "kernel_source": ksrc,
        "backend": backend,
        "threads": 1,
        "machine": platform.machine(),
        "rows": rows,
    }
    tab = Table(title=f"HD layer, {n_ev} events, density {density:.3%}, {backend} vs torch Conv3d")
    cols = (
        "prune",
        "nnz",
        "events/s",
        "taps/s",
        "scatter-only ev/s",
        "dense torch ev/s",
        "speedup",
    )
    for col in cols:
        tab.add_column(col, justify="right")
    for r in rows:
        tab.add_row(
            f"{r['prune_factor']}x",
            str(r["nnz"]),
            f"{r['events_per_s'] / 1e6:.2f} M",
            f"{r['tap_updates_per_s'] / 1e6:.0f} M",
            f"{r['scatter_only_events_per_s'] / 1e6:.2f} M",
            f"{r['dense_events_per_s'] / 1e6:.3f} M",
            f"{r['speedup_vs_dense']:.1f}x",
        )
    Console().print(tab)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    main()
