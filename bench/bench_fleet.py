"""Fleet consolidation on Flower's simulation engine: each device alone vs after
consolidation, bytes on the wire per device per round, rounds, robustness (one client
that drops and one that sends garbage or a poisoned update, every round).

    OMP_NUM_THREADS=1 python bench/bench_fleet.py [--out bench/results/fleet.json]

Scenarios (synthetic, seeded): place -- 8 robots, each drove 1/8 of an 80-place route;
kws -- 4 speakers, each enrolled one new word (old words + 'unknown' readout frozen);
runtime -- 32 devices with Oja + adaptive thresholds on their own input statistics.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from neuroplast.boards.fleet.flower import FleetClient, FleetStrategy, simulate


def _fleet(learners: dict, faults: bool) -> list[FleetClient]:
    clients = [FleetClient(lr, name) for name, lr in learners.items()]
    if faults:
        first = next(iter(learners.values()))
        clients += [FleetClient(first, "faulty-drop", "drop"), FleetClient(first, "faulty-garbage", "garbage"),
                    FleetClient(first, "faulty-poison", "poison")]  # fmt: skip
    return clients


def _wire(st: FleetStrategy) -> dict:
    s = st.summary()
    return {"rounds": len(s["rounds"]), "converged_round": s["converged_round"],
            "per_round": [{k: r[k] for k in ("round", "phase", "accepted", "dropped", "malformed",
                                             "out_of_range", "down_bytes_per_device", "up_bytes_per_device")}
                          for r in s["rounds"]]}  # fmt: skip


def place(cpus: int) -> dict:
    from neuroplast.apps.place import EnsembleParams, PlaceParams, make_route, preprocess_batch
    from neuroplast.apps.place.ensemble import Ensemble, region_jobs, train_regions
    from neuroplast.apps.place.fleet import PlaceLearner, PlaceMerger

    robots, per = 8, 10
    n = robots * per
    route, refs, q = make_route(n, seed=1)
    cal = route.traverse("query", seed=999)
    imgs = np.stack([r.images for r in refs])
    xr = [preprocess_batch(r.images) for r in refs]
    xq, xc = preprocess_batch(q.images), preprocess_batch(cal.images)
    params = EnsembleParams(region_size=per, place=PlaceParams())
    jobs = region_jobs(imgs, np.arange(n), per)
    learners, alone = {}, {}
    r1 = lambda e: float(np.mean(e.places[e.scores(xq).argmax(1)] == np.arange(n)))  # noqa: E731
    for i in range(robots):
        ens = Ensemble(tuple(train_regions([jobs[i]], params.place, [i])), params)
        sl = slice(i * per, (i + 1) * per)
        learners[f"robot{i}"] = PlaceLearner(
            ens, np.concatenate([x[sl] for x in xr]), xc[sl], np.arange(n)[sl]
        )
        alone[f"robot{i}"] = r1(ens)
    central = Ensemble(tuple(train_regions(jobs, params.place, list(range(robots)))), params)
    out = {"devices": robots, "alone_recall1": alone, "central_recall1_no_regulariser": r1(central)}
    for faults in (False, True):
        m = PlaceMerger(n, params)
        st = simulate(FleetStrategy(m), _fleet(learners, faults), cpus=cpus)
        out["faults" if faults else "clean"] = {"recall1": r1(m.ensemble()), "threshold": m.ensemble().threshold,
                                                **_wire(st)}  # fmt: skip
    return out


def kws(cpus: int) -> dict:
    from neuroplast.apps.kws.enroll import (
        EnrollParams,
        augment_raster,
        decide,
        enroll_init,
        enroll_word,
    )
    from neuroplast.apps.kws.fleet import KwsLearner, KwsMerger
    from neuroplast.apps.kws.synth import Embedder, WordParams, word_clips, word_protos

    p, n_old, n_unk, n_new = WordParams(), 6, 10, 4
    protos = word_protos(n_old + 2 * n_unk + n_new, p, seed=3)
    rng, emb = np.random.default_rng(0), Embedder(p)
    old, unk = list(range(n_old)), list(range(n_old, n_old + n_unk))
    new = list(range(n_old + n_unk, n_old + n_unk + n_new))
    test_unk = list(range(n_old + n_unk + n_new, len(protos)))
    clips = lambda ws, k: np.concatenate([word_clips(protos, w, k, rng, p) for w in ws])  # noqa: E731
    n_cls = n_old + 1
    E = emb(clips(old + unk, 30))
    y = np.r_[np.repeat(old, 30), np.full(30 * n_unk, n_old)]
    A = np.hstack([E, np.ones((len(E), 1))])
    W = np.linalg.solve(A.T @ A + 0.1 * np.eye(A.shape[1]), A.T @ np.eye(n_cls)[y])
    score = lambda e: np.hstack([e, np.ones((len(e), 1))]) @ W  # noqa: E731
    Ev = emb(clips(old + unk, 10))
    yv = np.r_[np.repeat(old, 10), np.full(10 * n_unk, n_old)]
    Et = emb(np.concatenate([clips(old, 20), clips(new, 20), clips(test_unk, 4)]))
    yt = np.r_[
        np.repeat(old, 20), np.repeat(np.arange(n_new) + n_cls, 20), np.full(4 * n_unk, n_old)
    ]
    names = [f"word{j}" for j in range(n_new)]

    def acc(st) -> float:  # noqa: ANN001
        pred = decide(score(Et), Et, st)
        hit = pred >= n_cls
        pred[hit] = [n_cls + names.index(st.words[k - n_cls]) for k in pred[hit]]
        return float(np.mean(pred == yt))

    ep = EnrollParams()
    learners, alone = {}, {}
    for j, w in enumerate(new):
        ex = word_clips(protos, w, 5, rng, p)
        e = emb(ex)
        ea = emb(
            augment_raster(ex, p.channels, ep.augment).reshape(-1, p.steps, p.channels)
        ).reshape(len(ex), -1, e.shape[1])
        st, _ = enroll_word(
            enroll_init(e.shape[1], n_cls, n_old), names[j], e, Ev, score(Ev), yv, ep, ea
        )
        learners[f"speaker{j}"] = KwsLearner(st)
        alone[f"speaker{j}"] = acc(st)
    out = {
        "devices": n_new,
        "test": "old words + new words + unseen non-keywords",
        "alone_accuracy": alone,
    }
    for faults in (False, True):
        m = KwsMerger(enroll_init(Et.shape[1], n_cls, n_old), Ev, score(Ev), yv)
        st = simulate(FleetStrategy(m), _fleet(learners, faults), cpus=cpus)
        out["faults" if faults else "clean"] = {"accuracy": acc(m.state), "words": m.state.words,
                                                "guard_rejected": m.guard_rejected, **_wire(st)}  # fmt: skip
    return out


def _runtime_learner(i: int):
    from neuroplast.boards.fleet.merge import RuntimeLearner
    from neuroplast.graph import LIF, Graph, Input, Linear
    from neuroplast.plasticity import OjaParams, PlasticityEngine, SpikeThresholdParams
    from neuroplast.runtime import Runtime

    w = (np.random.default_rng(0).standard_normal((24, 12)) * 0.4).astype(np.float32)
    g = Graph.sequential([("in", Input(shape=(12,))), ("fc", Linear(weight=w, bias=np.zeros(24, np.float32))),
                          ("lif", LIF(tau_mem=np.full(24, 0.02, np.float32), v_th=np.ones(24, np.float32)))],
                         dt=1e-3)  # fmt: skip
    rt = Runtime(g)
    eng = PlasticityEngine(seed=0)
    eng.attach("fc", OjaParams(lr=0.005))
    eng.attach("lif", SpikeThresholdParams(theta_plus=0.05, tau_theta=50.0, dt=1.0))
    rt.plasticity = eng
    rng = np.random.default_rng(100 + i)
    bias = rng.random(12) * (i % 8 + 1) / 4  # devices see different input statistics
    return RuntimeLearner(rt, [(rng.random(12) + bias).astype(np.float32) for _ in range(40)])


def runtime(cpus: int, n_dev: int = 32, rounds: int = 12) -> dict:
    from neuroplast.boards.fleet.merge import RuntimeMerger

    learners = {f"dev{i:02d}": _runtime_learner(i) for i in range(n_dev)}
    w0, th0 = learners["dev00"].snapshot()
    out = {
        "devices": n_dev,
        "rule": "Oja on fc + spike-triggered thresholds on lif; clip 2, trim 2",
    }
    for faults in (False, True):
        m = RuntimeMerger(w0, th0, clip=2.0, trim=2, tol=0.02)
        st = simulate(FleetStrategy(m), _fleet(learners, faults), rounds=rounds, cpus=cpus)
        out["faults" if faults else "clean"] = {"change_per_round": [r.metrics.get("change") for r in st.log],
                                                "final": {k: v.tolist() for k, v in {**m.weights, **m.thetas}.items()},
                                                **_wire(st)}  # fmt: skip
    a, b = (out[k]["final"] for k in ("clean", "faults"))
    out["faults_vs_clean_max_abs_diff"] = max(
        float(np.abs(np.array(a[k]) - np.array(b[k])).max()) for k in a
    )
    for k in ("clean", "faults"):
        del out[k]["final"]
    return out


def table(res: dict) -> str:
    """Markdown summary of the JSON: accuracy alone vs consolidated, bytes, rounds, faults."""
    head = (
        "| app | devices | each alone | consolidated | with faults | rounds (converged) | "
        "bytes/device/round down, up | faults per round: dropped, malformed, out of range |"
    )
    lines = [head,
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for app, r in res.items():
        clean, bad = r["clean"], r["faults"]
        alone = r.get("alone_recall1") or r.get("alone_accuracy")
        metric = "recall1" if "recall1" in clean else "accuracy"
        a = f"{min(alone.values()):.1%}..{max(alone.values()):.1%}" if alone else "-"
        c, f = (f"{x[metric]:.1%}" if metric in x else "-" for x in (clean, bad))
        if app == "runtime":
            c, f = "-", f"max diff vs clean {r['faults_vs_clean_max_abs_diff']:.2g}"
        down = max(x["down_bytes_per_device"] for x in clean["per_round"])
        up = max(x["up_bytes_per_device"] for x in clean["per_round"])
        fr = bad["per_round"][0]
        lines.append(f"| {app} | {r['devices']} | {a} | {c} | {f} | {clean['rounds']} "
                     f"({clean['converged_round']}) | {down:,.0f}, {up:,.0f} | "
                     f"{fr['dropped']}, {fr['malformed']}, {fr['out_of_range']} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench/results/fleet.json")
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--only", choices=("place", "kws", "runtime"), action="append")
    ap.add_argument("--table-only", action="store_true", help="Only print --out as a table.")
    args = ap.parse_args()
    if args.table_only:
        print(table(json.loads(Path(args.out).read_text())), end="")
        return
    res = {}
    for name, fn in (("place", place), ("kws", kws), ("runtime", runtime)):
        if args.only and name not in args.only:
            continue
        t = time.perf_counter()
        res[name] = fn(args.cpus)
        res[name]["seconds"] = time.perf_counter() - t
        print(
            name, json.dumps({k: v for k, v in res[name].items() if k not in ("clean", "faults")})
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    old = json.loads(Path(args.out).read_text()) if Path(args.out).is_file() else {}
    Path(args.out).write_text(json.dumps({**old, **res}, indent=1))
    Path(args.out).with_suffix(".md").write_text(table({**old, **res}))
    print(table({**old, **res}), end="")
    print(f"wrote {args.out} and {Path(args.out).with_suffix('.md')}")


if __name__ == "__main__":
    main()
