"""Following motion switches: a short-window HD channel group + an evidence read-out, and
the integer (QAT) layer, on held-out 128 x 128 movies. Writes bench/results/motion_switch.json
and two figures.

Stages (each cached in --work, so a run can be resumed or extended):

1. the short-window kernel: the trained 21-delay kernel restricted to its first
   ``--short-delays`` delays, retrained on fresh 40 x 40 switching movies (or --short-kernel);
2. per-step class evidence of both kernels (the two families) on the read-out fitting
   movies (seeds from 4,000,000), the validation movies (VAL_SEED0) and the held-out
   switching (TEST_SEED0) and constant-motion (CONSTANT_SEED0) movies;
3. read-outs (lags x hidden units) fitted on the fitting movies, one chosen on validation
   accuracy, scored once on the held-out movies, with accuracy vs ms since a switch;
4. --int: the two-family layer quantized by the Brevitas quantizers (post-training) and
   its 20x split-pruned version with one QAT epoch per family; integer evidence (the QAT
   model's integer layer) against the float layer's on the first --int-movies held-out
   movies of each protocol at --int-size (40 x 40 by default: the FFT in float64 that
   makes it exact costs ~11 s per 128 x 128 movie), the read-out applied to both, and the
   runtime's integer HDDelayConv checked against the QAT integer layer bit for bit on
   --check-movies 40 x 40 movies.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python bench/motion_switch.py --work /tmp/motion_work \\
        [--test 100 --constant-test 100] [--int]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from neuroplast.apps.motion.datasets import (
    CONSTANT_SEED0,
    TEST_SEED0,
    VAL_SEED0,
    make_dataset,
    sensor_setup,
)
from neuroplast.apps.motion.metrics import accuracy_per_step, accuracy_vs_since_switch, score
from neuroplast.apps.motion.model import (
    HDKernel,
    HDParams,
    TrainParams,
    predict_dense,
    prune_kernel,
    prune_mask_of,
    train_hd,
)
from neuroplast.apps.motion.readout import EvidenceReadout, fit_readout, stack_kernels

RESULTS = Path(__file__).resolve().parent / "results"
FIT_SEED0 = 4_000_000  # read-out fitting movies (disjoint from train/val/test)
SHORT_SEED0 = 5_000_000  # short-kernel training movies
QAT_SEED0 = 6_000_000  # QAT fine-tuning movies


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _tag(kernel: HDKernel) -> str:
    return hashlib.sha1(kernel.weight.tobytes() + kernel.bias.tobytes()).hexdigest()[:10]


def _seeds(name: str, n: int) -> tuple[range, bool]:
    seed0, constant = {
        "fit": (FIT_SEED0, False),
        "val": (VAL_SEED0, False),
        "test": (TEST_SEED0, False),
        "constant": (CONSTANT_SEED0, True),
    }[name]
    return range(seed0, seed0 + n), constant


def evidence(work: Path, name: str, n: int, kernels: dict, scene, dvs) -> tuple[dict, np.ndarray]:
    """``{family: (n, T, C) evidence}`` and labels of the movie set ``name``, computed in
    chunks of 4 movies and cached per kernel (resumable)."""
    seeds, constant = _seeds(name, n)
    sc = replace(scene, p_switch=0.0) if constant else scene
    files = {f: work / f"ev_{name}_{_tag(k)}.npz" for f, k in kernels.items()}
    have = {
        f: (dict(np.load(p)) if p.exists() else {"E": None, "Y": None}) for f, p in files.items()
    }
    done = min((0 if h["E"] is None else len(h["E"])) for h in have.values())
    t0 = time.perf_counter()
    for i in range(done, n, 4):
        x, y, _ = make_dataset(seeds[i : min(n, i + 4)], sc, dvs)
        for f, k in kernels.items():
            h = have[f]
            if h["E"] is not None and len(h["E"]) >= i + len(y):
                continue
            e = predict_dense(k, x, batch=len(x))  # one kernel spectrum per 4 movies
            h["E"] = e if h["E"] is None else np.concatenate([h["E"][:i], e])
            h["Y"] = y if h["Y"] is None else np.concatenate([h["Y"][:i], y])
            np.savez(files[f], **h)
        _log(f"{name}: {min(n, i + 4)}/{n} movies ({time.perf_counter() - t0:.0f} s)")
    return {f: have[f]["E"][:n] for f in kernels}, next(iter(have.values()))["Y"][:n]


def train_short(work: Path, long: HDKernel, args, dvs) -> HDKernel:
    """The long kernel's first ``S`` delays, retrained on fresh 40 x 40 movies."""
    s = args.short_delays
    path = work / f"short{s}_{args.short_train}x{args.short_epochs}.npz"
    if path.exists():
        return HDKernel.load(path)
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    init = HDKernel(long.weight[:, :, -s:].copy(), long.bias.copy())
    scene, _ = sensor_setup(40, args.threshold)
    x, y, _ = make_dataset(range(SHORT_SEED0, SHORT_SEED0 + args.short_train), scene, dvs)
    t0 = time.perf_counter()
    k, losses = train_hd(
        list(x),
        list(y),
        HDParams(n_delays=s, kernel=long.weight.shape[3]),
        TrainParams(epochs=args.short_epochs, lr=2e-3, lr_final=1e-4, stride=1, batch=8),
        init=init,
        on_epoch=lambda ep, kk: kk.save(path.with_suffix(f".ep{ep}.npz")),
    )
    _log(f"short kernel: losses {np.round(losses, 3).tolist()} ({time.perf_counter() - t0:.0f} s)")
    k.save(path)
    return k


def _curve(e: np.ndarray, y: np.ndarray, max_ms: int = 25) -> dict[str, float]:
    return {str(k): a for k, (a, _) in accuracy_vs_since_switch(e, y, max_ms).items()}


READOUTS = ((1, 0, False), (4, 0, False), (8, 0, False), (4, 16, False), (8, 16, False))
READOUTS += ((8, 16, True), (8, 32, True), (8, 64, True))  # tanh units see class margins


def _fit_readouts(work, ev_fit, y_fit, ev_val, y_val) -> tuple[dict, str, EvidenceReadout]:
    """Read-outs over (lags, hidden units, margins), each fitted once per fitting set
    (cached in ``work``); the one with the best validation accuracy."""
    rows, best = {}, None
    fit_tag = hashlib.sha1(ev_fit.tobytes() + y_fit.tobytes()).hexdigest()[:10]
    for lags, hidden, margins in READOUTS:
        path = work / f"readout_{fit_tag}_{lags}_{hidden}_{int(margins)}.npz"
        if path.exists():
            r = EvidenceReadout.load(path)
        else:
            r = fit_readout(ev_fit, y_fit, 2, lags=lags, hidden=hidden, margins=margins)
            r.save(path)
        acc = accuracy_per_step(r.apply(ev_val), y_val)
        name = f"lags={lags}, hidden={hidden}" + (", margins" if margins else "")
        rows[name] = {
            "validation_accuracy": acc,
            "fit_accuracy": accuracy_per_step(r.apply(ev_fit), y_fit),
        }
        _log(f"read-out {name}: validation {acc:.4f}")
        if best is None or acc > rows[best[0]]["validation_accuracy"]:
            best = (name, r)
    return rows, best[0], best[1]


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--kernel", default=str(RESULTS / "motion_kernel.npz"))
    ap.add_argument("--short-kernel", default=None, help="skip stage 1: this kernel (.npz)")
    ap.add_argument("--short-delays", type=int, default=6)
    ap.add_argument("--short-train", type=int, default=384)
    ap.add_argument("--short-epochs", type=int, default=3)
    ap.add_argument("--fit", type=int, default=32, help="read-out fitting movies")
    ap.add_argument("--val", type=int, default=16, help="read-out selection movies")
    ap.add_argument("--test", type=int, default=100)
    ap.add_argument("--constant-test", type=int, default=100)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--threshold", type=float, default=0.8)
    ap.add_argument("--work", type=Path, required=True, help="cache folder (evidence, kernels)")
    ap.add_argument("--evidence-only", action="store_true", help="stop after stage 2")
    ap.add_argument(
        "--only",
        choices=("long", "short", "int"),
        default=None,
        help="stage 2 for one kernel, or the heavy part of stage 4, then stop (processes "
        "can share the work through --work)",
    )
    ap.add_argument("--int", action="store_true", help="also stage 4 (QAT, integer layer)")
    ap.add_argument("--qat-movies", type=int, default=32)
    ap.add_argument("--int-movies", type=int, default=8)
    ap.add_argument("--int-size", type=int, default=40, help="sensor side of the int movies")
    ap.add_argument("--check-movies", type=int, default=1)
    ap.add_argument("--out", type=Path, default=RESULTS / "motion_switch.json")
    args = ap.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    scene, dvs = sensor_setup(args.size, args.threshold)
    long = HDKernel.load(args.kernel)
    sets = {"fit": args.fit, "val": args.val, "test": args.test, "constant": args.constant_test}
    if args.only == "long":
        for name, n in sets.items():
            evidence(args.work, name, n, {"long": long}, scene, dvs)
        return {}
    short = (
        HDKernel.load(args.short_kernel)
        if args.short_kernel
        else train_short(args.work, long, args, dvs)
    )
    kernels = {"long": long, "short": short}
    if args.only == "int":
        int_work(args, long, short, scene, dvs)
        return {}
    if args.only == "short":
        for name, n in sets.items():
            evidence(args.work, name, n, {"short": short}, scene, dvs)
        return {}
    ev, lab = {}, {}
    for name, n in sets.items():
        fam, lab[name] = evidence(args.work, name, n, kernels, scene, dvs)
        ev[name] = np.concatenate([fam["long"], fam["short"]], axis=-1)
    if args.evidence_only:
        return {}
    rows, chosen, ro = _fit_readouts(args.work, ev["fit"], lab["fit"], ev["val"], lab["val"])
    ro.save(args.work / "readout.npz")
    kt = long.n_delays
    res: dict = {
        "scene": asdict(scene),
        "dvs": asdict(dvs),
        "kernel": args.kernel,
        "short_kernel": {
            "delays": short.n_delays,
            "source": args.short_kernel
            or f"first {args.short_delays} delays of --kernel, retrained on {args.short_train} "
            f"40x40 movies x {args.short_epochs} epochs (seeds from {SHORT_SEED0})",
        },
        "readouts": rows,
        "readout": {"chosen": chosen, "file": str(args.work / "readout.npz")},
        "movies": {k: {"n": v, "seed0": _seeds(k, v)[0].start} for k, v in sets.items()},
    }
    curves = {}
    for name, key in (("test", "switching"), ("constant", "constant")):
        e, y = ev[name], lab[name]
        models = {
            "long window (21 ms), argmax": e[..., :36],
            f"short window ({short.n_delays} ms), argmax": e[..., 36:],
            f"read-out ({chosen})": ro.apply(e),
        }
        res[key] = {m: score(v, y, kt) for m, v in models.items()}
        for m, v in models.items():
            res[key][m]["vs_ms_since_switch"] = _curve(v, y)
        curves[key] = {m: res[key][m]["vs_ms_since_switch"] for m in models}
        _log(f"{key}: " + ", ".join(f"{m}: {res[key][m]['per_step_top1']:.4f}" for m in models))
    from neuroplast.apps.motion.plots import plot_switch_response

    res["plot"] = str(
        plot_switch_response(
            curves["switching"],
            args.out.parent / "motion_switch.png",
            f"HD-SNN after a motion switch ({args.test} held-out switching movies, 128 x 128)",
        )
    )
    if args.int:
        res["int"] = int_stage(args, long, short, ro, scene, dvs)
    args.out.write_text(json.dumps(res, indent=2))
    _log(f"wrote {args.out}")
    return res


def int_models(args, long: HDKernel, short: HDKernel) -> dict:
    """``{label: QuantizedHD}`` of the two-family layer (cached): post-training
    quantization through the Brevitas quantizers, and 20x split-pruned with one QAT
    epoch per family (each its own 36-class layer, --qat-movies fresh 40 x 40 movies;
    the pruning mask is kept); the output scale is calibrated on the stacked layer."""
    import torch

    from neuroplast.apps.motion.qat import (
        HDQuantParams,
        QuantizedHD,
        stack_quantized,
        train_hd_qat,
    )

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    tscene, tdvs = sensor_setup(40, args.threshold)
    xq, yq, _ = make_dataset(range(QAT_SEED0, QAT_SEED0 + args.qat_movies), tscene, tdvs)
    both = stack_kernels([long, short])
    out = {}
    for label, factor in (("unpruned, PTQ", 1), ("pruned 20x (split basis), QAT", 20)):
        path = args.work / f"qat_{factor}x_{_tag(both)}_{args.qat_movies}.npz"
        if not path.exists():
            t0 = time.perf_counter()
            if factor == 1:
                q, _ = train_hd_qat([], [], both, xq[:1], HDQuantParams())
            else:
                fams = []
                for k in (long, short):
                    k0 = prune_kernel(k, k.nnz_in("split") // factor, "split")
                    qf, losses = train_hd_qat(
                        list(xq),
                        list(yq),
                        k0,
                        xq[:1],
                        HDQuantParams(),
                        TrainParams(epochs=1, lr=5e-4, lr_final=5e-5, stride=1, batch=8),
                        prune_mask=prune_mask_of(k0, "split"),
                    )
                    _log(f"QAT {label}, {k.n_delays} delays: losses {losses}")
                    fams.append(qf)
                q = stack_quantized(fams, xq[:1])
            q.save(path)
            _log(f"{label}: {time.perf_counter() - t0:.0f} s")
        out[label] = QuantizedHD.load(path)
    return out


def int_evidence_cached(args, q, name: str, dvs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integer evidence (the QAT model's integer layer), float evidence of the float
    two-family layer and labels of the first --int-movies movies at --int-size."""
    from neuroplast.apps.motion.qat import int_evidence

    n, size = args.int_movies, args.int_size
    f = args.work / f"int_{name}_{_tag(q.kernel)}_{n}_{size}.npz"
    if not f.exists():
        seeds, constant = _seeds(name, n)
        scene, _ = sensor_setup(size, args.threshold)
        sc = replace(scene, p_switch=0.0) if constant else scene
        x, y, _ = make_dataset(seeds, sc, dvs)
        both = stack_kernels([HDKernel.load(args.kernel), HDKernel.load(args.short_kernel)])
        np.savez(f, E=int_evidence(q, x), F=predict_dense(both, x), Y=y)
        _log(f"int evidence {name}: {n} movies of {size} x {size}")
    z = np.load(f)
    return z["E"], z["F"], z["Y"]


def int_work(args, long, short, scene, dvs) -> dict:
    """The heavy part of stage 4 (QAT, integer evidence, runtime check), all cached."""
    out = {}
    for label, q in int_models(args, long, short).items():
        for name in ("test", "constant"):
            int_evidence_cached(args, q, name, dvs)
        f = args.work / f"check_{_tag(q.kernel)}_{args.check_movies}.json"
        if not f.exists():
            f.write_text(json.dumps(_runtime_check(q, args, dvs)))
        out[label] = (q, json.loads(f.read_text()))
    return out


def int_stage(args, long, short, ro, scene, dvs) -> dict:
    """Scores of the integer layers against the float layer on the same movies."""
    out: dict = {
        "qat_movies": args.qat_movies,
        "seed0": QAT_SEED0,
        "sensor": args.int_size,
        "models": {},
    }
    count = (args.int_size - long.weight.shape[3] + 1) ** 2
    for label, (q, check) in int_work(args, long, short, scene, dvs).items():
        n_s, n_d = q.kernel.nnz_split
        row: dict = {
            "nnz_split": n_s + n_d,
            "weight_q": q.weight_q.to_dict(),
            "out_q": q.out_q.to_dict(),
            "runtime_vs_qat": check,
        }
        for name, key in (("test", "switching"), ("constant", "constant")):
            ei, ef, y = int_evidence_cached(args, q, name, dvs)
            deq = ei.astype(np.float64) * q.out_q.scale / count  # mean z per class
            row[key] = {
                "movies": len(y),
                "int long window, argmax": accuracy_per_step(ei[..., :36], y),
                "int read-out": accuracy_per_step(ro.apply(deq), y),
                "float unpruned long window, argmax (same movies)": accuracy_per_step(
                    ef[..., :36], y
                ),
                "float unpruned read-out (same movies)": accuracy_per_step(ro.apply(ef), y),
                "int vs float unpruned read-out decisions agree": float(
                    np.mean(ro.apply(deq).argmax(-1) == ro.apply(ef).argmax(-1))
                ),
            }
            _log(f"int {label} {key}: {row[key]}")
        out["models"][label] = row
    return out


def _runtime_check(q, args, dvs) -> dict:
    """The runtime's integer graph (events -> HDDelayConv -> pooled evidence) against the
    QAT model's integer layer on 40 x 40 held-out movies: identical integers?"""
    from neuroplast.apps.motion.qat import int_evidence
    from neuroplast.runtime import Runtime, SparseInput

    scene, _ = sensor_setup(40, args.threshold)
    x, _, _ = make_dataset(range(TEST_SEED0, TEST_SEED0 + args.check_movies), scene, dvs)
    ref = int_evidence(q, x)
    same, total = 0, 0
    for i in range(len(x)):
        rt = Runtime(q.graph((40, 40), pooled=True), mode="int")
        got = np.stack(
            [rt.step(SparseInput(np.flatnonzero(x[i][:, t]))) for t in range(x.shape[2])]
        )
        same += int(np.sum(got.reshape(ref[i].shape) == ref[i]))
        total += ref[i].size
    _log(f"runtime vs QAT integer evidence: {same}/{total} identical")
    return {"movies": len(x), "size": 40, "identical_values": same, "values": total}


if __name__ == "__main__":
    main()
