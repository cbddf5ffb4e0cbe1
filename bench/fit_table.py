"""`neuroplast fit` on the reference app bundles for every board, checked against host runs.

For each bundle (KWS, motion, place; built by the apps' export commands):

1. run it on this host in the numpy runtime for ``--steps`` steps of seeded uniform [0, 1)
   input (learning on when the bundle has rules): median wall time per step, resident
   memory growth, and the measured activity of every spiking layer;
2. ``fit`` it on every board with those activities as ``input_rate``;
3. compare the ``host`` estimate with the measurement (estimate / measured ratios for
   latency and RAM).

Writes ``bench/results/fit.json`` and the tables between the ``fit-table`` markers of
``docs/boards.md``. A missing bundle is reported and skipped, never fatal.

Usage::

    python bench/fit_table.py                       # default bundle paths (artifacts/...)
    python bench/fit_table.py --bundle kws=path/to/kws.bundle --bundle motion=... --steps 200
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# Where the apps' export commands write their bundles (first existing path wins).
DEFAULT_BUNDLES = {
    "kws": ["artifacts/kws/kws.bundle", "neuroplast-out/kws/kws.bundle", "out/kws/kws.bundle"],
    "motion": ["artifacts/motion/motion.bundle", "out/motion/motion.bundle"],
    "place": ["artifacts/place/place.bundle", "out/place/place.bundle"],
}
BUILD_HINT = {
    "kws": "neuroplast kws export",
    "motion": "the motion app's bundle export",
    "place": "neuroplast place train DATA --bundle out/place/place.bundle",
}
# Modules that register an app's own node kinds (imported when present).
APP_PLUGINS = ["neuroplast.apps.motion.runtime_node", "neuroplast.apps.place.export"]
DOC = ROOT / "docs" / "boards.md"
START, END = "<!-- fit-table:start -->", "<!-- fit-table:end -->"
SPIKING = ("LIF", "CubaLIF", "IF", "Threshold")


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def python_baseline_rss() -> int:
    """RSS of a fresh interpreter after ``import numpy, neuroplast`` (checks PYTHON_RUNTIME_BYTES)."""
    code = (
        "import numpy, neuroplast, neuroplast.runtime, neuroplast.bundle\n"
        "import os\nprint(int(open('/proc/self/statm').read().split()[1]) * os.sysconf('SC_PAGE_SIZE'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


def calibrate_host(
    sizes: tuple[int, ...] = (16, 64, 512, 1024), steps: int = 100, repeats: int = 3
) -> dict[str, Any]:
    """Microbenchmark of the Python runtime on Input -> Linear(n x n) -> LIF(n), per mode and
    per backend (``Runtime(..., backend="numpy")`` and, when the extension loads,
    ``backend="native"``).

    Fits ``t = 3 * overhead + MACs / rate`` (least squares over ``sizes``): the source of the
    host profile's ``op_overhead_s`` / ``macs_per_s`` and their ``int_`` variants, in
    ``[cost]`` (numpy) and ``[cost.native]`` (native); DelayLinear's rate and the event
    layer's scatter rate (``event_taps_per_s``, :func:`_calibrate_event`) likewise. Returns
    ``{"numpy": {...}, "native": {...} (absent without the extension), "bandwidth": {...}}``.
    The backends are measured in turn ``repeats`` times (so load changes hit both) and each
    coefficient is the median of its ``repeats`` fits (every fit kept under ``"runs"``).
    """
    from neuroplast.runtime.native import native_module

    backends = [b for b in ("numpy", "native") if b == "numpy" or native_module() is not None]
    runs: dict[str, list[dict[str, Any]]] = {b: [] for b in backends}
    for _ in range(max(1, repeats)):
        for b in backends:
            runs[b].append(_calibrate_backend(b, sizes, steps))
    out: dict[str, Any] = {}
    for b, rs in runs.items():
        med = {k: dict(rs[0][k]) for k in ("float", "int", "delay")}
        for k, key in (("float", "macs_per_s"), ("float", "op_overhead_s"), ("int", "macs_per_s"),
                       ("int", "op_overhead_s"), ("delay", "delay_macs_per_s")):  # fmt: skip
            vals = [r[k][key] for r in rs if r[k][key] is not None]
            med[k][key] = statistics.median(vals) if vals else None
        for k in ("float", "int"):
            med[k].pop("points")
            med[k]["split"] = {}
            for key in ("step_overhead_s", "op_overhead_s", "macs_per_s"):
                vals = [r[k]["split"][key] for r in rs if r[k]["split"][key] is not None]
                med[k]["split"][key] = statistics.median(vals) if vals else None
        med["delay"].pop("median_step_s")
        # the event layer: median scatter rate and no-event step of the repeats, per mode
        med["event"] = {"shape": rs[0]["event"]["shape"], "sensor": rs[0]["event"]["sensor"]}
        for mode in ("float", "int"):
            ev = [r["event"][mode] for r in rs]
            rates = [e["event_taps_per_s"] for e in ev if e["event_taps_per_s"]]
            med["event"][mode] = {
                "scatter": ev[0]["scatter"],
                "event_taps_per_s": statistics.median(rates) if rates else None,
                "intercept_s": statistics.median(e["intercept_s"] for e in ev),
                "step_bytes": ev[0]["step_bytes"],
                "macs_dense": ev[0]["macs_dense"],
            }
            if any("int_event_chunks_per_s" in e for e in ev):  # the integer pull path
                chunks = [e["int_event_chunks_per_s"] for e in ev if e["int_event_chunks_per_s"]]
                med["event"][mode]["int_event_chunks_per_s"] = (
                    statistics.median(chunks) if chunks else None
                )
        out[b] = {**med, "runs": rs}
    out["bandwidth"] = _calibrate_bandwidth()
    return out


def _calibrate_backend(
    backend: str, sizes: tuple[int, ...], steps: int, depths: tuple[int, ...] = (1, 3)
) -> dict[str, Any]:
    """Float and int Linear + LIF fits and the DelayLinear rate of one runtime backend.

    Graphs: Input -> d x (Linear(n x n) -> LIF(n)) for d in ``depths``, n in ``sizes``.
    Two fits per mode: the per-node model ``t = nodes * overhead + MACs / rate`` on the d = 1
    graphs (least squares in MACs, overhead = intercept / 3, as before), and the split model
    ``t = step + nodes * overhead + MACs / rate`` on every graph (three-term least squares of
    the relative error;
    ``step_overhead_s``: the fixed per-step time of a whole-graph call). Negative terms of the
    split fit are reported as 0.
    """
    from neuroplast.graph import LIF, Graph, Input, Linear
    from neuroplast.quant import QuantSpec
    from neuroplast.runtime import Runtime

    out: dict[str, Any] = {}
    for mode in ("float", "int"):
        q = mode == "int"
        points = []  # (depth, n, nodes, macs, median step)
        for d in depths:
            for n in sizes:
                rng = np.random.default_rng(n)
                layers: list[tuple[str, Any]] = [
                    ("in", Input(shape=(n,), quant=QuantSpec(8, 1 / 255, -128) if q else None))
                ]
                for i in range(d):
                    w = (rng.standard_normal((n, n)) * 0.1).astype(np.float32)
                    fc = Linear(
                        weight=w,
                        weight_q=QuantSpec(8, 0.01) if q else None,
                        out_q=QuantSpec(32, 0.001) if q else None,
                    )
                    lif = LIF(tau_mem=np.full(n, 0.02, np.float32), v_th=np.ones(n, np.float32))
                    layers += [(f"fc{i}", fc), (f"lif{i}", lif)]
                rt = Runtime(Graph.sequential(layers), mode=mode, backend=backend)
                _check_backend(rt, backend)
                xs = rng.random((steps + 10, n), dtype=np.float32)
                points.append((d, n, 1 + 2 * d, d * n * n, _median_step(rt, xs)))
        one = [p for p in points if p[0] == 1]
        slope, intercept = np.polyfit(
            np.array([p[3] for p in one], float), np.array([p[4] for p in one]), 1
        )
        # relative least squares (rows divided by the measured time): the small graphs, where
        # the overhead terms show, weigh as much as the large ones
        tt = np.array([p[4] for p in points])
        a = np.array([[1.0, p[2], p[3]] for p in points]) / tt[:, None]
        step, node, per_mac = np.linalg.lstsq(a, np.ones(len(points)), rcond=None)[0]
        out[mode] = {
            "sizes": list(sizes),
            "depths": list(depths),
            "points": [
                {"depth": p[0], "n": p[1], "nodes": p[2], "macs": p[3], "median_step_s": p[4]}
                for p in points
            ],
            "macs_per_s": float(1.0 / slope) if slope > 0 else None,
            "op_overhead_s": float(max(intercept, 0.0) / 3),
            "split": {
                "step_overhead_s": float(max(step, 0.0)),
                "op_overhead_s": float(max(node, 0.0)),
                "macs_per_s": float(1.0 / per_mac) if per_mac > 0 else None,
            },
        }
    out["delay"] = _calibrate_delay(backend, steps=steps)
    out["event"] = _calibrate_event(backend, steps=min(30, steps))
    return out


def _median_step(rt: Any, xs: Iterable[Any], warmup: int = 10) -> float:
    """Median wall time (s) of ``rt.step`` over the inputs ``xs`` (an array or any
    iterable, drawn outside the timed region) after ``warmup`` untimed steps."""
    ts = []
    for i, x in enumerate(xs):
        t = time.perf_counter()
        rt.step(x)
        if i >= warmup:
            ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def _check_backend(rt: Any, backend: str) -> None:
    """The calibration graph must run on the backend it is timed for."""
    if rt.backend != backend:
        raise RuntimeError(
            f"calibration graph runs on {rt.backend}, not {backend}: {rt.backend_reason}"
        )


def _calibrate_bandwidth(n: int = 4096, reps: int = 20) -> dict[str, Any]:
    """Sustained DRAM bandwidth seen by a float32 GEMV whose matrix (64 MB) exceeds the caches."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((n, n)).astype(np.float32)
    x = rng.random(n, dtype=np.float32)
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        w @ x
        ts.append(time.perf_counter() - t)
    med = statistics.median(ts[2:])
    return {"matrix_bytes": w.nbytes, "median_s": med, "mem_bandwidth_Bps": w.nbytes / med}


def _calibrate_delay(
    backend: str, sizes: tuple[int, ...] = (64, 128, 256), steps: int = 100
) -> dict[str, Any]:
    """DelayLinear(n x n, delays 0..15) in int mode on ``backend``: synapses per second
    (slope of the fit)."""
    from neuroplast.graph import LIF, DelayLinear, Graph, Input
    from neuroplast.quant import QuantSpec
    from neuroplast.runtime import Runtime

    syn, times = [], []
    for n in sizes:
        rng = np.random.default_rng(n)
        g = Graph.sequential(
            [
                ("in", Input(shape=(n,), quant=QuantSpec(8, 1 / 255, -128))),
                (
                    "fc",
                    DelayLinear(
                        weight=(rng.standard_normal((n, n)) * 0.1).astype(np.float32),
                        delay=rng.integers(0, 16, (n, n)).astype(np.float32),
                        weight_q=QuantSpec(8, 0.01),
                        out_q=QuantSpec(32, 0.001),
                    ),
                ),
                ("lif", LIF(tau_mem=np.full(n, 0.02, np.float32), v_th=np.ones(n, np.float32))),
            ]
        )
        rt = Runtime(g, mode="int", backend=backend)
        _check_backend(rt, backend)
        xs = rng.random((steps + 10, n), dtype=np.float32)
        syn.append(n * n)
        times.append(_median_step(rt, xs))
    slope, _ = np.polyfit(np.array(syn, float), np.array(times), 1)
    return {
        "sizes": list(sizes),
        "median_step_s": times,
        "delay_macs_per_s": float(1.0 / slope) if slope > 0 else None,
    }


#: event densities of the pull path's calibration: its fixed per-step part (the chunk tables
#: re-laid per call) dwarfs the chunks at the scatter's densities, so the slope needs more
PULL_DENSITIES = (0.0, 0.02, 0.05, 0.1)


def _calibrate_event(
    backend: str,
    densities: tuple[float, ...] = (0.0, 0.005, 0.01, 0.02),
    steps: int = 30,
    shape: tuple[int, int, int, int] = (16, 16, 11, 11),
    sensor: tuple[int, int] = (32, 32),
) -> dict[str, Any]:
    """The event-driven HD layer (``neuroplast.apps.motion``'s ``HDDelayConv``, a dense
    random kernel ``(C, 2, K_T, K_Y, K_X)`` from ``shape`` = (C, K_T, K_Y, K_X)) on a
    ``sensor`` of binary events at each of ``densities``, float and int mode: the slope of
    the median step time over the tap updates per step (``events x taps``, the cost
    handler's ``synops``) is the scatter rate ``event_taps_per_s``; the intercept (no events)
    is the per-step dense part, reported beside the estimate's
    ``max(macs / macs_per_s, step_bytes / mem_bandwidth_Bps)`` for it.

    ``backend="numpy"`` builds the Runtime with ``NEUROPLAST_BACKEND=numpy`` (the op then
    scatters with numba where it imports, else ``np.add.at``: ``scatter`` says which),
    ``"native"`` with the extension (the op's C scatter; in int mode the op runs the
    integer pull path instead, :func:`~neuroplast.apps.motion.runtime_node.int_pull_path`:
    then the slope is over the row-chunk updates the timed steps execute, counted on the
    same stream by ``pull_int_ops``, and gives ``int_event_chunks_per_s``)."""
    import neuroplast.apps.motion.runtime_node as hd
    from neuroplast.graph.cost import cost
    from neuroplast.quant import QuantSpec
    from neuroplast.runtime import Runtime

    c_n, kt, ky, kx = shape
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((c_n, 2, kt, ky, kx)) * 0.05).astype(np.float32)
    w[w == 0] = 1e-3  # every tap non-zero: taps = the kernel size
    b = np.zeros(c_n, np.float32)
    out: dict[str, Any] = {
        "shape": list(shape),
        "sensor": list(sensor),
        "densities": list(densities),
    }
    for mode in ("float", "int"):
        wq = QuantSpec(8, float(np.abs(w).max()) / 127) if mode == "int" else None
        oq = QuantSpec(8, 0.05) if mode == "int" else None
        g = hd.hd_graph(w, b, sensor, weight_q=wq, out_q=oq)
        old = os.environ.get("NEUROPLAST_BACKEND")
        if backend == "numpy":
            os.environ["NEUROPLAST_BACKEND"] = "numpy"
        try:
            rt = Runtime(g, mode=mode)
        finally:
            if old is None:
                os.environ.pop("NEUROPLAST_BACKEND", None)
            else:
                os.environ["NEUROPLAST_BACKEND"] = old
        scatter = rt.kernels["hd"].backend
        if (backend == "native") != (scatter == "native"):
            raise RuntimeError(f"event calibration for {backend} scatters with {scatter}")
        pull = hd.int_pull_path(mode, scatter)
        warm = kt if pull else 5  # the pull path: a full window before timing
        dens_m = PULL_DENSITIES if pull else densities
        taps, times = [], []
        for dens in dens_m:
            row = next(r for r in cost(g, dens, backend=backend) if r.name == "hd")
            xs = [(rng.random((2, sensor[1], sensor[0])) < dens).astype(np.float32)
                  for _ in range(steps + warm)]  # fmt: skip
            ts = []
            for i, x in enumerate(xs):
                t = time.perf_counter()
                rt.step(x)
                if i >= warm:
                    ts.append(time.perf_counter() - t)
            taps.append(_pull_chunks(rt.kernels["hd"].taps(), xs, warm) if pull else row.synops)
            times.append(statistics.median(ts))
        slope, intercept = np.polyfit(np.array(taps, float), np.array(times), 1)
        rate = float(1.0 / slope) if slope > 0 else None
        out[mode] = {
            "scatter": "native pull" if pull else scatter,
            "taps_per_step": taps,
            "median_step_s": times,
            "event_taps_per_s": None if pull else rate,
            "intercept_s": float(intercept),
            "macs_dense": int(row.macs - row.event_macs),
            "step_bytes": int(row.step_bytes),
        }
        if pull:
            out[mode]["int_event_chunks_per_s"] = rate
            out[mode]["chunks_model_per_step"] = [
                next(r for r in cost(g, d, backend=backend) if r.name == "hd").synops
                for d in dens_m
            ]
            out[mode]["densities"] = list(dens_m)
    return out


def hd_int_check(steps: int = 100, repeats: int = 3) -> dict[str, Any]:
    """``fit`` against a run of the integer HDDelayConv on the native backend (the integer
    pull path) for one stream: the events bench movie of ``bench/bench_speed.py`` (seed
    12345, 64 x 64, ``steps`` ms) through the 20x block-8 pruned motion kernel quantized
    per class (int8 narrow symmetric, ``s_out`` from the largest ``|max(B_0, B_1)| s_w``,
    as the bench). Measured: the median and mean step of ``Runtime(graph, mode="int")``
    fed the movie's per-ms rasters (after a ``K_T`` ms window, ``repeats`` passes, the
    fastest pass's median). Predicted: ``fit_graph(graph, "host", backend="native")`` at
    the movie's input rate (events per step over ``2 H W``). Also the row chunks the model
    charges (interior events) beside those the pull path executes (``pull_int_ops``), and
    the host profile's ``int_event_chunks_per_s`` re-measured (:func:`_calibrate_event`,
    median of ``repeats``)."""
    import neuroplast.apps.motion.runtime_node as hd
    from neuroplast.apps.motion.event_layer import hd_event_run_int, pull_int_ops
    from neuroplast.apps.motion.events import events_to_voxels
    from neuroplast.apps.motion.model import HDKernel, prune_kernel
    from neuroplast.apps.motion.simulate import DVSParams, SceneParams, simulate_movie
    from neuroplast.boards import load_profile
    from neuroplast.boards.estimate import fit_graph
    from neuroplast.graph.cost import cost
    from neuroplast.quant import QuantSpec
    from neuroplast.runtime import Runtime

    kern = HDKernel.load(ROOT / "bench" / "results" / "motion_kernel.npz")
    k = prune_kernel(kern, kern.weight.size // 20, basis="split", block=8)
    scene = SceneParams(size=64, texture_size=128, n_steps=steps, f_cut=0.15)
    movie = simulate_movie(12345, scene, DVSParams(threshold=1.2))
    c_n = k.weight.shape[0]
    s_w = np.abs(k.weight).reshape(c_n, -1).max(axis=1).astype(np.float64) / 127
    wq = QuantSpec(8, tuple(float(v) for v in s_w), axis=0)
    g0 = hd.hd_graph(k.weight, k.bias, movie.sensor_size, weight_q=wq, out_q=QuantSpec(8, 1.0))
    itaps = Runtime(g0, mode="int").kernels["hd"].taps()
    z = hd_event_run_int(itaps, movie.events, movie.n_steps, backend="native")
    s_out = float(np.abs(z).max(axis=(0, 2, 3)).astype(np.float64).dot(s_w) / c_n / 127)
    g = hd.hd_graph(k.weight, k.bias, movie.sensor_size, weight_q=wq, out_q=QuantSpec(8, s_out))
    a = events_to_voxels(movie.events, movie.sensor_size, movie.n_steps)  # (2, T, H, W)
    xs = [np.ascontiguousarray(a[:, t] != 0, np.float32) for t in range(movie.n_steps)]
    kt = k.weight.shape[2]
    passes = []
    for _ in range(max(1, repeats)):
        rt = Runtime(g, mode="int")
        if not hd.int_pull_path("int", rt.kernels["hd"].backend):
            raise RuntimeError("the integer HDDelayConv does not run the pull path here")
        ts = []
        for i, x in enumerate(xs):
            t = time.perf_counter()
            rt.step(x)
            if i >= kt:
                ts.append(time.perf_counter() - t)
        passes.append(ts)
    best = min(passes, key=statistics.median)
    w, h = movie.sensor_size
    n_ev = float(sum(x.sum() for x in xs[kt:])) / (len(xs) - kt)
    rate = n_ev / (2 * h * w)
    prof = load_profile("host")
    est = fit_graph(g, prof, input_rate=rate, backend="native", mode="int")
    row = next(r for r in cost(g, rate, backend="native") if r.name == "hd")
    itaps = rt.kernels["hd"].taps()
    ev_all = _raster_events(xs)
    executed = (pull_int_ops(itaps, ev_all, len(xs))
                - pull_int_ops(itaps, _raster_events(xs[:kt]), kt)) / (len(xs) - kt)  # fmt: skip
    cal = [_calibrate_event("native")["int"]["int_event_chunks_per_s"] for _ in range(repeats)]
    cal = [c for c in cal if c]
    nat = prof.cost_for("native")
    return {
        "stream": f"bench movie seed 12345, {w} x {h}, {steps} ms, DVS threshold 1.2",
        "kernel": f"motion kernel {tuple(k.weight.shape)}, 20x block-8 pruned (split basis)",
        "events_per_step": n_ev,
        "input_rate": rate,
        "measured_median_step_s": statistics.median(best),
        "measured_mean_step_s": statistics.fmean(best),
        "predicted_step_s": est.latency_s,
        "ratio_predicted_over_median": est.latency_s / statistics.median(best),
        "notes": list(est.notes),
        "cost_table": est.cost_table,
        "profile_int_event_chunks_per_s": nat.int_event_chunks_per_s,
        "chunks_model_per_step": row.synops,
        "chunks_executed_per_step": executed,
        "recalibrated_int_event_chunks_per_s": statistics.median(cal) if cal else None,
        "recalibrated_runs": cal,
    }


def _raster_events(xs: list[np.ndarray]) -> np.ndarray:
    """Binary rasters ``(2, H, W)`` of consecutive 1 ms steps as an event array."""
    from neuroplast.apps.motion.events import make_events

    t, p, y, x = [], [], [], []
    for i, a in enumerate(xs):
        pp, yy, xx = np.nonzero(a)
        t.append(np.full(pp.size, 1000 * i + 500)), p.append(pp), y.append(yy), x.append(xx)
    cat = [np.concatenate(v).astype(np.int64) if v else np.zeros(0, np.int64)
           for v in (t, x, y, p)]  # fmt: skip
    return make_events(*cat)


def _pull_chunks(itaps: Any, xs: list[np.ndarray], warm: int) -> float:
    """Mean row-chunk updates per step that the integer pull path executes in steps
    ``warm ..`` of the rasters ``xs`` (``pull_int_ops`` of all steps minus those of the
    first ``warm``: step ``t`` runs delay ``d``'s chunks of the pixels of ms ``t - d``)."""
    from neuroplast.apps.motion.event_layer import pull_int_ops

    n = len(xs)
    total = pull_int_ops(itaps, _raster_events(xs), n)
    head = pull_int_ops(itaps, _raster_events(xs[:warm]), warm)
    return (total - head) / (n - warm)


def _feeder(rt: Any, seed: int, density: float | None) -> Any:
    """Random inputs for ``rt``: uniform [0, 1) values, or binary events with probability
    ``density`` (event sensors); a dict when the model has several inputs."""
    rng = np.random.default_rng(seed)
    shapes = {n: rt.shapes[n] for n in rt.inputs}

    def feed() -> Any:
        if density is None:
            d = {n: rng.random(s, dtype=np.float32) for n, s in shapes.items()}
        else:
            d = {n: (rng.random(s) < density).astype(np.float32) for n, s in shapes.items()}
        return d if len(d) > 1 else next(iter(d.values()))

    return feed


def measure_numpy_step(
    path: Path, steps: int, seed: int = 0, density: float | None = None
) -> dict[str, Any]:
    """Median step time of the bundle with the compiled kernels disabled
    (``NEUROPLAST_BACKEND=numpy`` while the Runtime is built: every kernel is numpy's)."""
    import neuroplast

    old = os.environ.get("NEUROPLAST_BACKEND")
    os.environ["NEUROPLAST_BACKEND"] = "numpy"
    try:
        rt = neuroplast.load(path)
    finally:
        if old is None:
            del os.environ["NEUROPLAST_BACKEND"]
        else:
            os.environ["NEUROPLAST_BACKEND"] = old
    rt.learn(bool(rt.plasticity.has_rules()))
    feed = _feeder(rt, seed, density)
    warm = min(10, steps)
    xs = (feed() for _ in range(warm + steps))
    return {"backend": rt.backend, "median_step_s": _median_step(rt, xs, warm)}


def measure_host(
    path: Path, steps: int, seed: int = 0, density: float | None = None
) -> dict[str, Any]:
    """Host run: median step time, RSS growth, spiking activity per consumer layer."""
    import tracemalloc

    import neuroplast
    import neuroplast.bundle
    import neuroplast.plasticity
    import neuroplast.runtime  # noqa: F401  (imports must not count as model memory)

    rss0 = _rss_bytes()
    rt = neuroplast.load(path)
    learn = bool(rt.plasticity.has_rules())
    rt.learn(learn)
    feed = _feeder(rt, seed, density)

    for _ in range(min(10, steps)):  # warm-up: first-step allocations, lazy imports
        rt.step(feed())
    graph = rt.graph
    # layers whose cost scales with their input's activity: those fed by spiking neurons and
    # event-driven kernels (their cost handler gives event_macs; e.g. fed by an event sensor)
    from neuroplast.graph.cost import cost as graph_cost

    event_driven = {r.name for r in graph_cost(graph) if r.event_macs}
    consumers = {
        n: graph.predecessors(n)[0]
        for n in rt.order
        if graph.predecessors(n)
        and (graph.nodes[graph.predecessors(n)[0]].kind in SPIKING or n in event_driven)
    }
    active = dict.fromkeys(consumers, 0.0)
    times = []
    for _ in range(steps):
        x = feed()
        t = time.perf_counter()
        rt.step(x)
        times.append(time.perf_counter() - t)
        for n, p in consumers.items():
            a = np.asarray(rt.last_outputs[p])
            active[n] += float(np.count_nonzero(a)) / max(1, a.size)
    rss1 = _rss_bytes()
    # Memory phase (separate: tracing slows steps). numpy reports its buffers to tracemalloc.
    # The bundle reader's transient peak is kept apart from what the running model holds.
    tracemalloc.start()
    rt2 = neuroplast.load(path)
    rt2.learn(learn)
    load_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.reset_peak()
    for _ in range(min(steps, 50)):
        rt2.step(feed())
    traced_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    del rt2
    return {
        "steps": steps,
        "input": "uniform [0, 1)" if density is None else f"binary events, p = {density:g}",
        "learning": learn,
        "mode": rt.mode,
        "backend": rt.backend,
        "median_step_s": statistics.median(times),
        "mean_step_s": statistics.fmean(times),
        "rss_growth_bytes": max(0, rss1 - rss0),
        "traced_peak_bytes": traced_peak,
        "load_transient_peak_bytes": load_peak,
        "input_rate": {n: v / steps for n, v in active.items()},
    }


def _rel(p: Path) -> str:
    try:
        return str(Path(p).resolve().relative_to(ROOT))
    except ValueError:
        return str(p)


def _describe(path: Path) -> str:
    """One line about a bundle: mode, nodes, app meta (from its manifest)."""
    from neuroplast.bundle import load_bundle

    b = load_bundle(path)
    kinds = sorted({n.kind for n in b.graph.nodes.values()})
    meta = {k: v for k, v in (b.meta or {}).items() if isinstance(v, (str, int, float))}
    extra = ", ".join(f"{k} {v}" for k, v in list(meta.items())[:4])
    return f"{b.mode} mode, {len(b.graph.nodes)} nodes ({', '.join(kinds)})" + (
        f"; {extra}" if extra else ""
    )


def run(
    bundles: dict[str, Path],
    steps: int,
    calibrate: bool = True,
    density: dict[str, float] | None = None,
) -> dict[str, Any]:
    from neuroplast.boards import list_profiles
    from neuroplast.boards.estimate import PYTHON_RUNTIME_BYTES, fit
    from neuroplast.errors import NeuroplastError
    from neuroplast.runtime.native import native_module

    boards = list_profiles()
    base = python_baseline_rss()
    res: dict[str, Any] = {
        "host": {
            "machine": platform.machine(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "python_baseline_rss_bytes": base,
            "python_runtime_bytes_budget": PYTHON_RUNTIME_BYTES,
        },
        "steps": steps,
        "host_calibration": calibrate_host() if calibrate else None,
        "bundles": {},
        "missing": {},
    }
    for name, path in bundles.items():
        if not path.exists():
            hint = BUILD_HINT.get(name, "the app's export command")
            msg = (
                f"bundle '{name}' not found at {_rel(path)}; build it with `{hint}` "
                f"or pass --bundle {name}=PATH"
            )
            print(f"skip: {msg}", file=sys.stderr)
            res["missing"][name] = msg
            continue
        print(f"measuring {name} on the host ({steps} steps) ...", file=sys.stderr)
        try:
            meas = measure_host(path, steps, density=(density or {}).get(name))
            rate = meas["input_rate"] or 1.0
            fits = {}
            for b in boards:
                d = fit(path, b, input_rate=rate).to_dict()
                d.pop("layers")
                fits[b] = d
        except NeuroplastError as e:  # a broken bundle is reported, the others still run
            msg = f"bundle '{name}' at {_rel(path)} could not be measured: {type(e).__name__}: {e}"
            print(f"skip: {msg}", file=sys.stderr)
            res["missing"][name] = msg
            continue
        host = fits["host"]
        # both cost tables against both backends' runs (the default run is the one above)
        # (an app's own kernel may use the extension without the whole-graph plan: the
        # numpy row is then still a run with the extension disabled)
        by_backend = {}
        for be in ("numpy", "native"):
            if be == meas["backend"] and (be == "native" or native_module() is None):
                step = meas["median_step_s"]
            elif be == "numpy":
                step = measure_numpy_step(path, steps, density=(density or {}).get(name))[
                    "median_step_s"
                ]
            else:
                continue  # the default run did not get the compiled plan: nothing to compare
            est = fit(path, "host", input_rate=rate, backend=be)
            by_backend[be] = {
                "cost_table": est.cost_table,
                "latency_est_s": est.latency_s,
                "latency_measured_s": step,
                "latency_ratio": est.latency_s / step,
            }
        # numpy-runtime RAM without the interpreter baseline, compared with measured RSS growth
        est_model_ram = host["memory"]["ram_needed"] - host["memory"]["runtime"]
        res["bundles"][name] = {
            "path": _rel(path),
            "description": _describe(path),
            "measured": meas,
            "fit": fits,
            "host_check": {
                "backend_est": host["backend"],
                "cost_table": host["cost_table"],
                "latency_est_s": host["latency_s"],
                "latency_measured_s": meas["median_step_s"],
                "latency_ratio": host["latency_s"] / meas["median_step_s"],
                "model_ram_est_bytes": est_model_ram,
                "model_ram_measured_bytes": meas["traced_peak_bytes"],
                "rss_growth_bytes": meas["rss_growth_bytes"],
                "ram_ratio": (est_model_ram / meas["traced_peak_bytes"])
                if meas["traced_peak_bytes"]
                else None,
                "by_backend": by_backend,
            },
        }
    return res


def _b(n: float) -> str:
    for unit, div in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= div:
            return f"{n / div:.1f} {unit}"
    return f"{int(n)} B"


def _si(x: float, unit: str) -> str:
    for p, s in ((1, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"), (1e-12, "p"), (1e-15, "f")):
        if abs(x) >= p:
            return f"{x / p:.3g} {s}{unit}"
    return f"{x:.3g} {unit}"


def markdown(res: dict[str, Any]) -> str:
    lines = [
        (
            f"Measured on {res['host']['machine']}, Python {res['host']['python']}, numpy "
            f"{res['host']['numpy']}, {res['steps']} steps per bundle "
            "(`python bench/fit_table.py`)."
        ),
        "",
    ]
    if res["missing"]:
        for msg in res["missing"].values():
            lines.append(f"- not measured: {msg}")
        lines.append("")
    cal = res.get("host_calibration")
    if cal:
        lines += [
            (
                "Host calibration (Input -> d x (Linear(n x n) -> LIF(n)), least squares over n = "
                f"{', '.join(map(str, cal['numpy']['float']['sizes']))}):"
            ),
            "",
            (
                "| backend | mode | MAC/s | overhead per node | split fit (depth "
                f"{', '.join(map(str, cal['numpy']['float'].get('depths', [1])))}): per step + "
                "per node, MAC/s |"
            ),
            "|---|---|---|---|---|",
        ]
        for backend in ("numpy", "native"):
            if backend not in cal:
                continue
            for mode in ("float", "int"):
                c = cal[backend][mode]
                rate = f"{c['macs_per_s']:.3g}" if c["macs_per_s"] else "n/a"
                sp = c.get("split") or {}
                split = (
                    f"{_si(sp['step_overhead_s'], 's')} + {_si(sp['op_overhead_s'], 's')}, "
                    f"{sp['macs_per_s']:.3g}"
                    if sp.get("macs_per_s")
                    else "-"
                )
                lines.append(
                    f"| {backend} | {mode} | {rate} | {_si(c['op_overhead_s'], 's')} | {split} |"
                )
            d = cal[backend].get("delay") or {}
            if d.get("delay_macs_per_s"):
                lines.append(
                    f"| {backend} | DelayLinear (int) | {d['delay_macs_per_s']:.3g} synapses/s "
                    "| - | - |"
                )
            ev = cal[backend].get("event") or {}
            for mode in ("float", "int"):
                e = ev.get(mode) or {}
                if e.get("int_event_chunks_per_s"):
                    lines.append(
                        f"| {backend} | HDDelayConv pull ({mode}, {e['scatter']}; C, K_T, "
                        f"K_Y, K_X = {', '.join(map(str, ev['shape']))}) | "
                        f"{e['int_event_chunks_per_s']:.3g} chunks/s "
                        f"| no-event step {_si(e['intercept_s'], 's')} | - |"
                    )
                if e.get("event_taps_per_s"):
                    lines.append(
                        f"| {backend} | HDDelayConv scatter ({mode}, {e['scatter']}; C, K_T, "
                        f"K_Y, K_X = {', '.join(map(str, ev['shape']))}) | "
                        f"{e['event_taps_per_s']:.3g} taps/s "
                        f"| no-event step {_si(e['intercept_s'], 's')} "
                        f"({_b(e['step_bytes'])} moved) | - |"
                    )
        bw = cal.get("bandwidth") or {}
        if bw.get("mem_bandwidth_Bps"):
            lines.append(
                f"| numpy | DRAM (GEMV, 64 MB matrix) | {bw['mem_bandwidth_Bps']:.3g} B/s | - | - |"
            )
        lines.append("")
    hdi = res.get("hd_int_pull")
    if hdi:
        lines += [
            (
                f"Integer HDDelayConv on the native backend (the integer pull path), {hdi['stream']}, "
                f"{hdi['kernel']}: `fit` [{hdi['cost_table']}] {_si(hdi['predicted_step_s'], 's')} "
                f"a step, measured median {_si(hdi['measured_median_step_s'], 's')} (ratio "
                f"{hdi['ratio_predicted_over_median']:.2f}); row chunks charged "
                f"{hdi['chunks_model_per_step']:,} a step (interior events), executed "
                f"{hdi['chunks_executed_per_step']:,.0f}."
            ),
            "",
        ]
    if not res["bundles"]:
        lines.append("No reference bundle was available when this table was generated.")
        return "\n".join(lines)
    lines += [
        "### Host check (estimate / measured)",
        "",
        (
            "| bundle | mode | learning | runtime backend | costed with | step est. | "
            "step measured (median) | ratio | model RAM est. | traced peak | ratio | RSS growth |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, b in res["bundles"].items():
        m, h = b["measured"], b["host_check"]
        rr = f"{h['ram_ratio']:.2f}" if h["ram_ratio"] is not None else "n/a"
        lines.append(
            f"| {name} | {m['mode']} | {'on' if m['learning'] else 'off'} | "
            f"{m.get('backend', '?')} | [{h.get('cost_table', 'cost')}] | "
            f"{_si(h['latency_est_s'], 's')} | {_si(h['latency_measured_s'], 's')} | "
            f"{h['latency_ratio']:.2f} | {_b(h['model_ram_est_bytes'])} | "
            f"{_b(h['model_ram_measured_bytes'])} | {rr} | {_b(h['rss_growth_bytes'])} |"
        )
    checks = [(n, b["host_check"].get("by_backend") or {}) for n, b in res["bundles"].items()]
    if any(bb for _, bb in checks):
        lines += [
            "",
            "Each cost table against a run on its own backend (numpy: `NEUROPLAST_BACKEND=numpy`):",
            "",
            "| bundle | backend | costed with | step est. | step measured (median) | ratio |",
            "|---|---|---|---|---|---|",
        ]
        for name, bb in checks:
            for be, c in bb.items():
                lines.append(
                    f"| {name} | {be} | [{c['cost_table']}] | {_si(c['latency_est_s'], 's')} | "
                    f"{_si(c['latency_measured_s'], 's')} | {c['latency_ratio']:.2f} |"
                )
    lines += [
        "",
        (
            "Python + numpy + neuroplast baseline RSS: "
            f"{_b(res['host']['python_baseline_rss_bytes'])} (budgeted "
            f"{_b(res['host']['python_runtime_bytes_budget'])} in `fit`). Traced peak: numpy and "
            "Python allocations while stepping (tracemalloc, after load)."
        ),
        "",
    ]
    for name, b in res["bundles"].items():
        rates = b["measured"]["input_rate"]
        rtxt = ", ".join(f"{k} {v:.3f}" for k, v in rates.items()) or "none (no spiking inputs)"
        lines += [
            f"### {name}",
            "",
            (
                f"`{b['path']}`: {b['description']}. Host input: {b['measured']['input']}. "
                f"Spiking-input activity measured on the host: {rtxt}."
            ),
            "",
            "| board | runtime | verdict | RAM needed / usable | flash needed | MACs | synops | updates | latency/step | energy/step | reasons |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for board, f in b["fit"].items():
            why = "; ".join(f["reasons"] + f["warnings"]).replace("|", "/") or "-"
            lines.append(
                f"| {board} | {f['runtime']} | {f['verdict']} | {_b(f['memory']['ram_needed'])} / "
                f"{_b(f['ram_available'])} | {_b(f['memory']['flash_needed'])} | "
                f"{f['ops']['macs']:,} | {f['ops']['synops']:,} | {f['ops']['updates']:,} | "
                f"{_si(f['latency_s'], 's')} | {_si(f['energy_j'], 'J')} | {why} |"
            )
        lines.append("")
    return "\n".join(lines)


def write_doc(md: str, doc: Path = DOC) -> None:
    text = doc.read_text() if doc.exists() else f"# Boards\n\n{START}\n{END}\n"
    if START not in text or END not in text:
        text = text.rstrip() + f"\n\n## Fit table\n\n{START}\n{END}\n"
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    doc.write_text(f"{head}{START}\n{md}\n{END}{tail}")


def print_rich(res: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title="fit estimate vs measured host run")
    for col in (
        "bundle",
        "step est.",
        "step measured",
        "est/meas",
        "RAM est.",
        "traced peak",
        "est/meas",
    ):
        t.add_column(col, justify="right")
    for name, b in res["bundles"].items():
        h = b["host_check"]
        t.add_row(
            name,
            _si(h["latency_est_s"], "s"),
            _si(h["latency_measured_s"], "s"),
            f"{h['latency_ratio']:.2f}",
            _b(h["model_ram_est_bytes"]),
            _b(h["model_ram_measured_bytes"]),
            f"{h['ram_ratio']:.2f}" if h["ram_ratio"] is not None else "n/a",
        )
    Console().print(t)
    for name, b in res["bundles"].items():
        t = Table(title=f"{name}: fit on every board")
        for col in ("board", "verdict", "RAM needed", "latency/step", "energy/step"):
            t.add_column(col)
        for board, f in b["fit"].items():
            t.add_row(
                board, f["verdict"], _b(f["memory"]["ram_needed"]), _si(f["latency_s"], "s"),
                _si(f["energy_j"], "J"),
            )  # fmt: skip
        Console().print(t)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--bundle", action="append", default=[], metavar="NAME=PATH")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "fit.json"))
    ap.add_argument("--no-doc", action="store_true", help="do not rewrite docs/boards.md")
    ap.add_argument("--plugin", action="append", default=[], help="module registering node kinds")
    ap.add_argument("--no-calibrate", action="store_true", help="skip the host microbenchmark")
    ap.add_argument(
        "--hd-int-only",
        action="store_true",
        help="only the integer HDDelayConv pull-path check (hd_int_check), merged into --out",
    )
    ap.add_argument(
        "--density",
        action="append",
        default=[],
        metavar="NAME=P",
        help="feed bundle NAME binary events with probability P (default: uniform values)",
    )
    args = ap.parse_args(argv)
    from neuroplast.boards.plugins import import_plugins
    from neuroplast.errors import BoardError

    for mod in APP_PLUGINS:
        try:
            import_plugins([mod])
        except BoardError as e:
            print(f"note: {e}", file=sys.stderr)
    import_plugins(args.plugin)
    bundles = {}
    for k, cands in DEFAULT_BUNDLES.items():
        paths = [ROOT / c for c in cands]
        bundles[k] = next((p for p in paths if p.exists()), paths[0])
    for spec in args.bundle:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            ap.error(f"--bundle expects NAME=PATH, got {spec!r}")
        bundles[name] = Path(path)
    density = {}
    for spec in args.density:
        name, sep, val = spec.partition("=")
        try:
            density[name] = float(val)
        except ValueError:
            sep = ""
        if not sep or not 0.0 < density.get(name, -1.0) <= 1.0:
            ap.error(f"--density expects NAME=P with 0 < P <= 1, got {spec!r}")
    out = Path(args.out)
    if args.hd_int_only:
        res = json.loads(out.read_text()) if out.exists() else {}
        res["hd_int_pull"] = hd_int_check()
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(res, indent=1))
        print(json.dumps(res["hd_int_pull"], indent=1))
        return 0
    res = run(bundles, args.steps, calibrate=not args.no_calibrate, density=density)
    from neuroplast.runtime.native import native_module

    if not args.no_calibrate and native_module() is not None:
        res["hd_int_pull"] = hd_int_check()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1))
    print_rich(res)
    if not args.no_doc:
        write_doc(markdown(res))
    print(f"wrote {out}" + ("" if args.no_doc else f" and {DOC}"), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
