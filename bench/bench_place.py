"""Place recognition: spiking place-cell ensemble vs SAD vs a single network, same queries.

Writes bench/results/place.json and the plots place_pr_<P>.png, place_recall_<P>.png,
place_scaling.png; prints rich tables:

1. For each route size (``--places``, default 1,000 and 3,000): Recall@1/5/10 and PR-AUC on
   the test queries (the first 18% of queries calibrate the regulariser threshold T) of
   the ensemble, SAD on patch-normalised images, the single network, and, as a separately
   labelled add-on, sequence matching over consecutive queries. At the first size also two
   ablations (uncalibrated synapses; SAD over the same jittered views the network learns
   from), the regulariser's calibration table, and the training time on one core.
2. Queries through the neuroplast runtime at batch 1 (float and int mode, one core) and
   ``neuroplast fit`` estimates for two boards.
3. A new region learned on the device through the engine: old-route Recall@1 before/after.
4. Scaling to ``--scale-places`` (10,000) places with Ray, 1 and 2 workers: time, memory.

Run:  OMP_NUM_THREADS=1 nice -n 10 python bench/bench_place.py
      python bench/bench_place.py --quick      (smoke run, small sizes, writes /tmp)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
import tracemalloc
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
REGION = 25  # places of the region learned on the device


def _row(scores, gt):
    from neuroplast.apps.place.metrics import pr_auc, recall_at_n

    r = recall_at_n(scores, gt, (1, 5, 10))
    return {"r1": r[1], "r5": r[5], "r10": r[10], "pr_auc": pr_auc(scores, gt)}


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def accuracy(n: int, args, first: bool) -> dict:
    """Main table at ``n`` places (+ REGION extra places for the new-region test)."""
    from neuroplast.apps.place import (
        EnsembleParams,
        PlaceParams,
        calibrate_threshold,
        jitter_views,
        make_route,
        preprocess_batch,
        sad_scores,
        sequence_scores,
        train_ensemble,
        train_single,
    )

    t0 = time.perf_counter()
    _, refs, q = make_route(n + REGION, seed=1)
    route_s = time.perf_counter() - t0
    imgs = np.stack([r.images for r in refs])  # (2, P + REGION, H, W, 3)
    xr_all = [preprocess_batch(r.images) for r in refs]
    xq_all = preprocess_batch(q.images)
    xr, xq, ids = [x[:n] for x in xr_all], xq_all[:n], np.arange(n)
    params = EnsembleParams(place=PlaceParams(epochs=args.epochs))
    t0, c0 = time.perf_counter(), time.process_time()
    ens = train_ensemble(imgs[:, :n], ids, params, workers=1, seed=0)
    train_s, train_cpu_s = time.perf_counter() - t0, time.process_time() - c0
    n_cal = int(round(0.18 * n))
    cal, test = ids[:n_cal], ids[n_cal:]
    t0 = time.perf_counter()
    ens = ens.with_reference_stats(np.concatenate(xr))
    stats_s = time.perf_counter() - t0
    v = ens.potentials(xq)
    thr, cal_table = calibrate_threshold(ens, v[cal], cal)
    ens = replace(ens, threshold=thr)
    s_ens_all = ens.scores_from_potentials(v)
    s_sad_all = sad_scores(xq, xr)
    rows = {
        "spiking ensemble": s_ens_all[test],
        "SAD (patch-normalised)": s_sad_all[test],
    }
    extra = {}
    if thr:
        rows["spiking ensemble, regulariser off"] = ens.scores_from_potentials(v[test], 0)
    if first:
        t0 = time.perf_counter()
        raw = train_ensemble(
            imgs[:, :n], ids, replace(params, place=replace(params.place, centre=False))
        )
        extra["uncalibrated_train_s"] = time.perf_counter() - t0
        rows["spiking ensemble, uncalibrated synapses"] = raw.scores(xq[test])
        t0 = time.perf_counter()
        int_p = replace(params, place=replace(params.place, learn_mode="int"))
        ens_int = train_ensemble(imgs[:, :n], ids, int_p)
        extra["int8_learning_train_s"] = time.perf_counter() - t0
        rows["spiking ensemble, learned in int8"] = ens_int.scores(xq[test])
        views = jitter_views(imgs[:, :n].reshape(-1, *imgs.shape[2:]), params.place.views)
        views = views.reshape(len(views), 2, n, -1)
        rows["SAD over the same jittered views"] = sad_scores(
            xq[test], [views[i, t] for i in range(len(views)) for t in range(2)]
        )
        extra["jittered_views_per_place"] = 2 * len(views)
    t0 = time.perf_counter()
    single = train_single(
        np.concatenate(xr), np.tile(ids, 2), ens.n_neurons, params.place.steps, seed=1
    )
    single_s = time.perf_counter() - t0
    rows["single network (FEAST, unsupervised)"] = single.scores(xq[test])
    seq = {
        f"spiking ensemble + sequence matching (L={args.seq})": sequence_scores(
            s_ens_all, args.seq
        )[test],
        f"SAD + sequence matching (L={args.seq})": sequence_scores(s_sad_all, args.seq)[test],
    }
    table = {k: _row(s, test) for k, s in {**rows, **seq}.items()}
    return {
        "places": n,
        "test_queries": int(len(test)),
        "calibration_queries": int(n_cal),
        "table": table,
        "sequence_add_on": list(seq),
        "threshold": int(thr),
        "calibration_r1": cal_table,
        "hyperactive_masked": int(ens.mask().sum()),
        "n_spk_mean": float(ens.n_spk[ens.owner >= 0].mean()),
        "n_spk_max": int(ens.n_spk.max()),
        "train_s_one_core": train_s,
        "train_cpu_s": train_cpu_s,
        "load_avg_after": os.getloadavg()[0],
        "reference_stats_s": stats_s,
        "single_train_s": single_s,
        "route_s": route_s,
        "modules": len(ens.modules),
        "neurons": ens.n_neurons,
        "neurons_per_place": params.place.neurons_per_place,
        "steps": params.place.steps,
        "views_per_image": len(params.place.views.offsets(*imgs.shape[2:4])),
        **extra,
        "_keep": (ens, rows, seq, test, imgs, xr_all, xq_all),
    }


def throughput(ens, xq, tmp: Path, n_q: int) -> dict:
    """Queries per second through the runtime at batch 1 (float and int) and the model."""
    import neuroplast
    from neuroplast.apps.place import runtime_scores, save_ensemble_bundle

    bpath = save_ensemble_bundle(ens, tmp / "place_bundle")
    steps = ens.params.place.steps
    out = {"bundle_bytes": sum(f.stat().st_size for f in Path(bpath).iterdir())}
    ref = ens.scores(xq[:n_q])
    for mode in ("float", "int"):
        rt = neuroplast.load(bpath, mode=mode)
        s = runtime_scores(rt, xq[:n_q], steps)
        out[f"{mode}_top1_agreement"] = float(np.mean(s.argmax(1) == ref.argmax(1)))
        out[f"{mode}_max_abs_diff"] = float(np.abs(s - ref).max())
        runtime_scores(rt, xq[:1], steps)  # warm up
        t0 = time.perf_counter()
        for i in range(n_q):
            runtime_scores(rt, xq[i : i + 1], steps)
        out[f"runtime_{mode}_batch1_qps"] = n_q / (time.perf_counter() - t0)
        c0 = time.process_time()
        for i in range(n_q):
            runtime_scores(rt, xq[i : i + 1], steps)
        out[f"runtime_{mode}_batch1_qps_cpu"] = n_q / (time.process_time() - c0)
    t0 = time.perf_counter()
    for i in range(n_q):
        ens.scores(xq[i : i + 1])
    out["numpy_model_batch1_qps"] = n_q / (time.perf_counter() - t0)
    return out, bpath


def image_to_place_qps(bpath, images, n_q: int) -> float:
    """Raw image -> top-5 places through the int runtime, preprocessing included."""
    import neuroplast
    from neuroplast.apps.place import runtime_query

    rt = neuroplast.load(bpath, mode="int")
    runtime_query(rt, images[:1])
    t0 = time.perf_counter()
    for i in range(n_q):
        runtime_query(rt, images[i : i + 1])
    return n_q / (time.perf_counter() - t0)


def board_fit(bpath) -> dict:
    from neuroplast.boards.estimate import fit

    out = {}
    for board in ("jetson-orin-nano", "rpi5"):
        r = fit(bpath, board, learning=False, mode="int", plugins=["neuroplast.apps.place.export"])
        d = r.to_dict()
        out[board] = {
            "verdict": d["verdict"],
            "warnings": d.get("warnings"),
            "queries_per_s": 1.0 / r.latency_s if r.latency_s > 0 else None,
            "latency_s": r.latency_s,
        }
    return out


def new_region(ens, imgs, xr_all, xq_all, n, test) -> dict:
    """Learn REGION new places with one new module through the engine (as on the device)."""
    from neuroplast.apps.place import train_module

    new_ids = np.arange(n, n + REGION)
    t0 = time.perf_counter()
    tracemalloc.start()
    mod = train_module(imgs[:, n : n + REGION], new_ids, ens.params.place, seed=424242)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    learn_s = time.perf_counter() - t0
    ref_all = np.concatenate([x[: n + REGION] for x in xr_all])
    bigger = ens.add_modules([mod], ref_all if ens.threshold else None)
    before = _row(ens.scores(xq_all[test]), test)
    after = _row(bigger.scores(xq_all[test]), test)
    return {
        "new_places": REGION,
        "learn_s": learn_s,
        "learn_peak_mib": peak / 2**20,
        "old_test_before": before,
        "old_test_after": after,
        "delta_r1_points": 100 * (after["r1"] - before["r1"]),
        "new_region_queries": _row(bigger.scores(xq_all[new_ids]), new_ids),
        "threshold": int(ens.threshold),
    }


def scaling(args) -> dict:
    """Ray training at ``--scale-places``: 1 and 2 workers, wall time and memory."""
    import ray

    from neuroplast.apps.place import EnsembleParams, PlaceParams, train_ensemble
    from neuroplast.apps.place.synth import RouteParams, SyntheticRoute

    n = args.scale_places
    t0 = time.perf_counter()
    route = SyntheticRoute(RouteParams(n_places=n, seed=2))
    imgs = np.stack([route.traverse(c).images for c in ("ref_a", "ref_b")])
    route_s = time.perf_counter() - t0
    params = EnsembleParams(place=PlaceParams(epochs=args.epochs))
    # one region's working set (what each worker holds while training one module)
    tracemalloc.start()
    from neuroplast.apps.place import train_module

    t0 = time.perf_counter()
    train_module(imgs[:, : params.region_size], np.arange(params.region_size), params.place)
    module_s = time.perf_counter() - t0
    module_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    out = {
        "places": n,
        "route_s": route_s,
        "reference_images_mib": imgs.nbytes / 2**20,
        "one_module_s": module_s,
        "one_module_working_mib": module_peak / 2**20,
        "runs": [],
    }
    for w in args.ray_workers:
        t0 = time.perf_counter()
        ray.init(num_cpus=w, include_dashboard=False, log_to_driver=False)
        init_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        ens = train_ensemble(imgs, np.arange(n), params, workers=w, ray_address="local")
        train_s = time.perf_counter() - t0
        worker_rss = _ray_worker_rss_mib()
        ray.shutdown()
        model_b = ens.weights.nbytes + ens.owner.nbytes + ens.fire_threshold.nbytes
        out["runs"].append(
            {
                "workers": w,
                "ray_init_s": init_s,
                "train_s": train_s,
                "modules": len(ens.modules),
                "neurons": ens.n_neurons,
                "model_mib_float32": model_b / 2**20,
                "model_mib_int8": (ens.weights.size + 8 * ens.n_neurons) / 2**20,
                "driver_peak_rss_mib": _rss_mib(),
                "ray_worker_rss_mib": worker_rss,
            }
        )
        print(f"  ray {w} worker(s): {train_s:.0f}s for {n} places")
    return out


def _ray_worker_rss_mib() -> list[float] | None:
    """RSS of this session's Ray worker processes (psutil), if available."""
    try:
        import psutil
    except ImportError:
        return None
    me = psutil.Process()
    rss = [
        c.memory_info().rss / 2**20
        for c in me.children(recursive=True)
        if "ray::" in " ".join(c.cmdline() or [])
    ]
    return sorted(rss, reverse=True)


def plots(keep: dict, out_dir: Path) -> list[str]:
    """PR and Recall@N plots of each route size of this run."""
    from neuroplast.apps.place.plots import plot_pr, plot_recall

    names = []
    for n, (_ens, rows, seq, test, *_r) in keep.items():
        allrows = {**rows, **seq}
        names.append(plot_pr(allrows, test, out_dir / f"place_pr_{n}.png", n).name)
        names.append(plot_recall(allrows, test, out_dir / f"place_recall_{n}.png", n).name)
    return names


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--places", default="1000,3000")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--seq", type=int, default=5, help="sequence-matching length")
    ap.add_argument("--scale-places", type=int, default=10000)
    ap.add_argument("--ray-workers", default="1,2")
    ap.add_argument(
        "--parts",
        default="main,scaling",
        help="main (accuracy, runtime, new region) and/or scaling; a subset updates the JSON",
    )
    ap.add_argument("--out", type=Path, default=RESULTS / "place.json")
    ap.add_argument("--quick", action="store_true", help="small smoke run, writes /tmp")
    args = ap.parse_args()
    if args.quick:
        args.places, args.epochs, args.scale_places = "100,150", 2, 200
        args.out = Path("/tmp/place_quick/place.json")
    args.ray_workers = [int(w) for w in str(args.ray_workers).split(",")]
    from rich.console import Console

    con = Console()
    t_all = time.perf_counter()
    parts = set(args.parts.split(","))
    res: dict = {
        "host": {
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "load_avg_start": os.getloadavg()[0],
            "omp_threads": os.environ.get("OMP_NUM_THREADS"),
        },
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
    }
    if "main" in parts:
        main_part(args, res, con)
    if "scaling" in parts:
        con.print(f"scaling to {args.scale_places} places with Ray ...")
        res["scaling"] = scaling(args)
    # a partial run (e.g. --parts scaling beside a --parts main run) updates the file as it
    # is when this run ends
    merged = {}
    if parts != {"main", "scaling"} and args.out.exists():
        merged = json.loads(args.out.read_text())
    key = "/".join(sorted(parts))  # host and arguments of each part
    host = {**merged.get("host", {}), key: res.pop("host")}
    run_args = {**merged.get("args", {}), key: res.pop("args")}
    merged.update(res, bench="place", host=host, args=run_args)
    merged["total_s"] = time.perf_counter() - t_all
    if "accuracy" in merged:
        from neuroplast.apps.place.plots import plot_scaling

        pts = [(a["places"], 1, a["train_s_one_core"], "in-process") for a in merged["accuracy"]]
        for r in merged.get("scaling", {}).get("runs", []):
            pts.append((merged["scaling"]["places"], r["workers"], r["train_s"], "Ray"))
        plot_scaling(pts, args.out.parent / "place_scaling.png")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(merged, indent=1, default=float))
    con.print(f"wrote {args.out} in {merged['total_s']:.0f}s")


def main_part(args, res: dict, con) -> None:
    """Accuracy tables, runtime throughput and fit, new region on the device."""
    from rich.table import Table

    res["accuracy"] = []
    keep = {}
    sizes = [int(s) for s in args.places.split(",")]
    for i, n in enumerate(sizes):
        con.print(f"route of {n} places ...")
        r = accuracy(n, args, first=i == 0)
        keep[n] = r.pop("_keep")
        res["accuracy"].append(r)
        tab = Table(title=f"{n} places: {r['test_queries']} test queries (same for every row)")
        for c in ("method", "R@1", "R@5", "R@10", "PR-AUC"):
            tab.add_column(c)
        for k, v in r["table"].items():
            tab.add_row(k, *(f"{v[m]:.3f}" for m in ("r1", "r5", "r10", "pr_auc")))
        con.print(tab)
        con.print(
            f"T={r['threshold']} ({r['hyperactive_masked']} masked); trained in "
            f"{r['train_s_one_core']:.1f}s on one core; single network {r['single_train_s']:.1f}s"
        )
    ens, _, _, test, imgs, xr_all, xq_all = keep[sizes[0]]
    n0 = sizes[0]
    out_dir = args.out.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    con.print("runtime throughput ...")
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        thr, bpath = throughput(ens, xq_all[:n0], Path(tmp), min(300, n0))
        thr["runtime_int_image_to_place_qps"] = image_to_place_qps(
            bpath, imgs[0, :n0], min(200, n0)
        )
        try:
            res["fit"] = board_fit(bpath)
        except Exception as exc:  # the boards package is optional here: report why
            res["fit"] = {"error": f"{type(exc).__name__}: {exc}"}
    res["runtime"] = thr
    con.print(thr)
    con.print(res["fit"])
    con.print("new region on the device ...")
    res["new_region"] = nr = new_region(ens, imgs, xr_all, xq_all, n0, test)
    con.print(
        f"new module learned in {nr['learn_s']:.1f}s; old test R@1 "
        f"{nr['old_test_before']['r1']:.3f} -> {nr['old_test_after']['r1']:.3f} "
        f"({nr['delta_r1_points']:+.2f} points); new-region R@1 {nr['new_region_queries']['r1']:.3f}"
    )
    res["plots"] = plots(keep, out_dir) + ["place_scaling.png"]


if __name__ == "__main__":
    main()
