"""Place recognition experiments: modular SNN ensembles vs SAD vs a single SNN.

Writes bench/results/place.json (+ PNG plots) and prints rich tables:

1. Main table on a synthetic route of ``--places`` places (>= 1,000): Recall@1/5/10 and PR-AUC
   of the ensemble with the hyperactive-neuron regulariser (T calibrated on the first 18% of
   queries, reported on the rest), without it, SAD on patch-normalised images, and a single
   non-modular SNN.
2. Scaling: training time and peak memory vs number of places (100, 500, 1,000, 2,500) for the
   ensemble and for a single network with the same neurons per place.
3. Query throughput through the neuroplast runtime (one core) and ``neuroplast fit``
   estimates for Jetson Orin Nano and Raspberry Pi 5.
4. A new region learned on the device (one added module) and the change in old recall.

Run:  OMP_NUM_THREADS=1 python bench/bench_place.py [--places 1000 --epochs 20 --workers 2]
      python bench/bench_place.py --quick      (smoke run, small sizes)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import tracemalloc
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def _recall_row(scores, gt):
    from neuroplast.apps.place.metrics import pr_auc, recall_at_n

    r = recall_at_n(scores, gt, (1, 5, 10))
    return {"r1": r[1], "r5": r[5], "r10": r[10], "pr_auc": pr_auc(scores, gt)}


def main_table(args, route_refs, route_q, n_old):
    from neuroplast.apps.place import (
        EnsembleParams,
        ModuleParams,
        calibrate_threshold,
        preprocess_batch,
        sad_scores,
        train_ensemble,
        train_single,
    )

    t0 = time.perf_counter()
    xr_all = [preprocess_batch(r.images) for r in route_refs]
    xq_all = preprocess_batch(route_q.images)
    prep_s = time.perf_counter() - t0
    xr = [x[:n_old] for x in xr_all]
    xq = xq_all[:n_old]
    ids = np.arange(n_old)
    params = EnsembleParams(module=ModuleParams(epochs=args.epochs))
    t0 = time.perf_counter()
    ens = train_ensemble(xr, ids, params, workers=args.workers, seed=0)
    train_s = time.perf_counter() - t0
    n_cal = int(round(0.18 * n_old))
    cal, test = ids[:n_cal], ids[n_cal:]
    counts = ens.counts(xq)
    thr, cal_table = calibrate_threshold(ens, counts[cal], cal)
    ens = replace(ens, threshold=thr)
    rows = {
        "ensemble + regulariser": ens.scores_from_counts(counts[test], thr),
        "ensemble, no regulariser": ens.scores_from_counts(counts[test], 0),
        "SAD (patch-normalised)": sad_scores(xq[test], xr),
    }
    t0 = time.perf_counter()
    if args.single_neurons:
        single = _single_fixed(xr, ids, params, args)
    else:  # same neurons per place as the ensemble
        sp = replace(params, module=replace(params.module, epochs=args.single_epochs))
        single = train_single(xr, ids, sp)
    single_s = time.perf_counter() - t0
    rows[f"single SNN ({single.n_neurons} neurons)"] = single.scores(xq[test])
    table = {k: _recall_row(v, test) for k, v in rows.items()}
    meta = {
        "places": n_old,
        "test_queries": len(test),
        "calibration_queries": n_cal,
        "threshold": int(thr),
        "calibration_r1": cal_table,
        "ensemble_train_s": train_s,
        "single_train_s": single_s,
        "single_epochs": args.single_epochs,
        "modules": len(ens.modules),
        "neurons": ens.n_neurons,
        "preprocess_s": prep_s,
        "hyperactive_masked": int(ens.mask().sum()),
    }
    return ens, rows, test, table, meta, xr_all, xq_all


def _single_fixed(xr, ids, params, args):
    from neuroplast.apps.place import EnsembleParams, train_ensemble

    p = replace(params.module, n_neurons=args.single_neurons, epochs=args.single_epochs)
    single = EnsembleParams(region_size=len(ids), batch=1, module=p)
    return train_ensemble(xr, ids, single, workers=1, seed=1)


def _traced_peak(fn) -> tuple[object, int]:
    """Run ``fn`` under tracemalloc; return its result and the traced peak (bytes). Kept
    apart from timing: tracing numpy allocations slows small-step loops several-fold."""
    tracemalloc.start()
    try:
        res = fn()
        return res, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def scaling(args, sizes):
    """Training cost vs places, one core, projected to ``args.epochs`` epochs.

    Ensemble: one full epoch of all modules (sequential, in lockstep groups of ``batch``),
    timed; memory = traced peak of training one group + the model of all modules (a process
    holds one group's working set at a time). Single network (4 neurons per place, like the
    modules): median time of ``--single-sample`` presentations x images x epochs; memory =
    traced peak over 3 presentations (weights included).
    """
    from neuroplast.apps.place import EnsembleParams, ModuleParams, make_route, preprocess_batch
    from neuroplast.apps.place.ensemble import region_jobs, split_regions
    from neuroplast.apps.place.module import init_weights, present, train_modules
    from neuroplast.apps.place.preprocess import poisson_encode

    out = []
    p1 = ModuleParams(epochs=1)
    params = EnsembleParams(module=p1)
    _, refs, _ = make_route(max(sizes), seed=11)
    xr_full = [preprocess_batch(r.images) for r in refs]
    for n in sizes:
        xr = [x[:n] for x in xr_full]
        ids = np.arange(n)
        jobs = region_jobs(xr, ids, split_regions(ids, params.region_size))
        t0 = time.perf_counter()
        mods = []
        for i in range(0, len(jobs), params.batch):
            chunk = jobs[i : i + params.batch]
            mods += train_modules(chunk, p1, list(range(i, i + len(chunk))))
        epoch_s = time.perf_counter() - t0
        g = jobs[: params.batch]
        _, group_peak = _traced_peak(lambda g=g: train_modules(g, p1, list(range(len(g)))))
        model_b = sum(m.weights.nbytes + m.theta.nbytes for m in mods)
        out.append(
            {
                "model": "ensemble",
                "places": n,
                "neurons": sum(m.n_neurons for m in mods),
                "epoch_s": epoch_s,
                "train_s": epoch_s * args.epochs,
                "peak_mib": (group_peak + model_b) / 2**20,
                "working_mib": group_peak / 2**20,
                "model_mib": model_b / 2**20,
                "measured": "1 full epoch of all modules (incl. assignment), one core",
            }
        )
        n_neur = 4 * n
        ps = replace(p1, n_neurons=n_neur)
        rng = np.random.default_rng(0)
        x = np.concatenate(xr)
        w = init_weights(x.shape[1], ps, rng)
        th = np.zeros(n_neur, np.float32)
        times = []
        for i in rng.integers(0, len(x), args.single_sample):
            s_in = poisson_encode(x[i], ps.steps, rng)
            t0 = time.perf_counter()
            w, th, _ = present(w, th, s_in, ps)
            times.append(time.perf_counter() - t0)
        per = float(np.median(times))  # median: robust to other jobs on a shared CPU

        def three(w=w, th=th, ps=ps, x=x, rng=rng):
            w2 = init_weights(x.shape[1], ps, rng)
            for i in range(3):
                w2, _, _ = present(w2, th, poisson_encode(x[i], ps.steps, rng), ps)
            return w2

        _, single_peak = _traced_peak(three)
        out.append(
            {
                "model": "single SNN",
                "places": n,
                "neurons": n_neur,
                "epoch_s": per * len(x),
                "train_s": per * len(x) * args.epochs,
                "peak_mib": single_peak / 2**20,
                "working_mib": (single_peak - w.nbytes) / 2**20,
                "model_mib": (w.nbytes + th.nbytes) / 2**20,
                "presentation_ms": per * 1e3,
                "measured": (
                    f"median of {args.single_sample} presentations x {len(x)} images "
                    f"x {args.epochs} epochs"
                ),
            }
        )
        print(
            f"  scaling {n}: ensemble epoch {epoch_s:.1f}s, single presentation {per * 1e3:.1f} ms"
        )
    return out


def throughput_and_fit(ens, xq, tmp: Path):
    import neuroplast
    from neuroplast.apps.place import runtime_scores, save_ensemble_bundle

    bpath = save_ensemble_bundle(ens, tmp / "place_bundle")
    rt = neuroplast.load(bpath)
    p = ens.params.module
    n = min(40, len(xq))
    t0 = time.perf_counter()
    for i in range(n):
        runtime_scores(rt, xq[i : i + 1], p.p_max, p.steps)
    single_qps = n / (time.perf_counter() - t0)
    nb = min(256, len(xq))
    t0 = time.perf_counter()
    runtime_scores(rt, xq[:nb], p.p_max, p.steps)
    batch_qps = nb / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    ens.counts(xq[:nb])
    numpy_qps = nb / (time.perf_counter() - t0)
    fits = {}
    try:
        from neuroplast.boards.estimate import fit

        for board in ("jetson-orin-nano", "rpi5"):
            r = fit(bpath, board, learning=False)
            d = r.to_dict()
            d["query_latency_s"] = r.latency_s * p.steps
            d["queries_per_s"] = 1.0 / d["query_latency_s"] if d["query_latency_s"] > 0 else None
            fits[board] = d
    except Exception as exc:  # the boards package is optional here; report why it failed
        fits["error"] = f"{type(exc).__name__}: {exc}"
    return {
        "runtime_queries_per_s_batch1": single_qps,
        "runtime_queries_per_s_batch256": batch_qps,
        "numpy_model_queries_per_s_batch256": numpy_qps,
        "steps_per_query": p.steps,
        "bundle_bytes": sum(f.stat().st_size for f in Path(bpath).iterdir()),
    }, fits


def new_region(ens, xr_all, xq_all, n_old, test, region):
    """Learn one extra region with a new module (numpy, one process: as on the device)."""
    from neuroplast.apps.place.ensemble import region_jobs
    from neuroplast.apps.place.module import train_modules

    new_ids = np.arange(n_old, n_old + region)
    jobs = region_jobs(xr_all, np.arange(n_old + region), [new_ids])
    t0 = time.perf_counter()
    new = train_modules(jobs, ens.params.module, [424242])
    learn_s = time.perf_counter() - t0
    bigger = ens.add_modules(new, np.concatenate([x[: n_old + region] for x in xr_all]))
    before = _recall_row(ens.scores(xq_all[test]), test)
    after_all = _recall_row(bigger.scores(xq_all[test]), test)
    new_q = _recall_row(bigger.scores(xq_all[new_ids]), new_ids)
    return {
        "new_places": region,
        "learn_s": learn_s,
        "old_test_before": before,
        "old_test_after": after_all,
        "delta_r1_points": 100 * (after_all["r1"] - before["r1"]),
        "new_region_queries": new_q,
        "masked_before": int(ens.mask().sum()),
        "masked_after": int(bigger.mask().sum()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--places", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--single-epochs", type=int, default=5)
    ap.add_argument("--single-neurons", type=int, default=400)
    ap.add_argument("--single-sample", type=int, default=30)
    ap.add_argument(
        "--only-scaling", action="store_true", help="rerun the scaling part, update the JSON"
    )
    ap.add_argument("--scaling", default="100,500,1000,2500")
    ap.add_argument("--out", type=Path, default=RESULTS / "place.json")
    ap.add_argument("--quick", action="store_true", help="small smoke run")
    args = ap.parse_args()
    if args.quick:
        args.places, args.epochs, args.single_epochs, args.scaling = 100, 2, 1, "50,100"
        args.out = Path("/tmp/place_quick.json")
    from rich.console import Console
    from rich.table import Table

    from neuroplast.apps.place import make_route
    from neuroplast.apps.place.plots import plot_pr, plot_recall, plot_scaling

    con = Console()
    if args.only_scaling:
        res = json.loads(args.out.read_text())
        res["scaling"] = sc = scaling(args, [int(s) for s in args.scaling.split(",")])
        plot_scaling(sc, args.out.parent / "place_scaling.png")
        args.out.write_text(json.dumps(res, indent=1, default=float))
        _scaling_table(con, sc, args.epochs)
        return
    region = 25
    t_all = time.perf_counter()
    _, refs, q = make_route(args.places + region, seed=1)
    con.print(f"route: {args.places} + {region} places, training (epochs={args.epochs}) ...")
    ens, rows, test, table, meta, xr_all, xq_all = main_table(args, refs, q, args.places)

    tab = Table(title=f"Recall on {meta['test_queries']} test queries, {args.places} places")
    for c in ("method", "R@1", "R@5", "R@10", "PR-AUC"):
        tab.add_column(c)
    for k, v in table.items():
        tab.add_row(k, *(f"{v[m]:.3f}" for m in ("r1", "r5", "r10", "pr_auc")))
    con.print(tab)
    con.print(
        f"T={meta['threshold']} ({meta['hyperactive_masked']} neurons masked); ensemble trained in "
        f"{meta['ensemble_train_s']:.1f}s ({args.workers} workers)"
    )
    out_dir = args.out.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    gt_cols = test
    plot_pr(rows, gt_cols, out_dir / "place_pr.png")
    plot_recall(rows, gt_cols, out_dir / "place_recall_at_n.png")

    con.print("runtime throughput and board fit ...")
    thr, fits = throughput_and_fit(ens, xq_all[: args.places], Path("/tmp"))
    con.print(thr)
    for b, d in fits.items():
        if isinstance(d, dict):
            con.print(f"fit {b}: {d.get('verdict')}, {d.get('queries_per_s')} queries/s (estimate)")
        else:
            con.print(f"fit: {d}")

    con.print("new region on the device ...")
    nr = new_region(ens, xr_all, xq_all, args.places, test, region)
    con.print(
        f"new module learned in {nr['learn_s']:.1f}s; old test R@1 {nr['old_test_before']['r1']:.3f}"
        f" -> {nr['old_test_after']['r1']:.3f} ({nr['delta_r1_points']:+.2f} points); "
        f"new-region R@1 {nr['new_region_queries']['r1']:.3f}"
    )

    sizes = [int(s) for s in args.scaling.split(",")]
    con.print(f"scaling {sizes} ...")
    sc = scaling(args, sizes)
    _scaling_table(con, sc, args.epochs)
    plot_scaling(sc, out_dir / "place_scaling.png")

    res = {
        "bench": "place",
        "host": {
            "python": platform.python_version(),
            "machine": platform.machine(),
            "omp_threads": os.environ.get("OMP_NUM_THREADS"),
        },
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "main": {"table": table, **meta},
        "ratios": {
            "reg_over_noreg_r1": _ratio(
                table, "ensemble + regulariser", "ensemble, no regulariser"
            ),
            "ensemble_over_sad_r1": _ratio(
                table, "ensemble + regulariser", "SAD (patch-normalised)"
            ),
        },
        "runtime": thr,
        "fit": fits,
        "new_region": nr,
        "scaling": sc,
        "total_s": time.perf_counter() - t_all,
        "plots": ["place_pr.png", "place_recall_at_n.png", "place_scaling.png"],
    }
    args.out.write_text(json.dumps(res, indent=1, default=float))
    con.print(f"wrote {args.out} in {res['total_s']:.0f}s")


def _scaling_table(con, sc, epochs):
    from rich.table import Table

    st = Table(title=f"training cost vs places (projected to {epochs} epochs)")
    for c in ("model", "places", "neurons", "train s", "peak MiB", "model MiB"):
        st.add_column(c)
    for r in sc:
        st.add_row(
            r["model"],
            str(r["places"]),
            str(r["neurons"]),
            f"{r['train_s']:.1f}",
            f"{r['peak_mib']:.1f}",
            f"{r['model_mib']:.2f}",
        )
    con.print(st)


def _ratio(table, a, b):
    return table[a]["r1"] / table[b]["r1"] if table[b]["r1"] > 0 else None


if __name__ == "__main__":
    main()
