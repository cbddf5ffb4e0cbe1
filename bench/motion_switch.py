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
   its 20x split-pruned version: one-shot with one QAT epoch per family
   (--int-prune oneshot), or pruned gradually (--prune-factors, float retraining on
   --prune-movies fresh movies per level, the float pruning table's schedule) then
   quantized post-training and, with --prune-qat-movies, one QAT epoch (--int-prune
   gradual; both: all rows); integer evidence (the QAT
   model's integer layer) against the float layer's on the first --int-movies held-out
   movies of each protocol at --int-size (40 x 40 by default: the FFT in float64 that
   makes it exact costs ~11 s per 128 x 128 movie), the read-out applied to both, and the
   runtime's integer HDDelayConv checked against the QAT integer layer bit for bit on
   --check-movies 40 x 40 movies.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python bench/motion_switch.py --work /tmp/motion_work \\
        [--test 100 --constant-test 100] [--int]

``--only int`` runs stage 4 alone (stage 2's 128 x 128 evidence is not needed), scores it
with the saved read-out (--readout) and merges its rows into --out; ``--only prune-long``
/ ``--only prune-short`` run one family's gradual pruning (two processes can share it
through --work).
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
    prune_retrain_gradual,
    train_hd,
)
from neuroplast.apps.motion.readout import EvidenceReadout, fit_readout, stack_kernels

RESULTS = Path(__file__).resolve().parent / "results"
FIT_SEED0 = 4_000_000  # read-out fitting movies (disjoint from train/val/test)
SHORT_SEED0 = 5_000_000  # short-kernel training movies
QAT_SEED0 = 6_000_000  # QAT fine-tuning movies
# gradual prune + retrain movies: the seeds of the float pruning table's retrained sweep
# (bench/motion_experiments.py run (b): train_seed0 0 + 192 + 100,000), level i from
# PRUNE_SEED0 + i * --prune-movies; both families retrain on the same movies
PRUNE_SEED0 = 100_192


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
        choices=("long", "short", "int", "prune-long", "prune-short"),
        default=None,
        help="stage 2 for one kernel, the heavy part of stage 4 (int: then scored with "
        "--readout and merged into --out), or the gradual pruning of one family, then stop "
        "(processes can share the work through --work)",
    )
    ap.add_argument("--int", action="store_true", help="also stage 4 (QAT, integer layer)")
    ap.add_argument("--qat-movies", type=int, default=32)
    ap.add_argument("--int-movies", type=int, default=8)
    ap.add_argument("--int-size", type=int, default=40, help="sensor side of the int movies")
    ap.add_argument("--check-movies", type=int, default=1)
    ap.add_argument(
        "--int-prune",
        choices=("oneshot", "gradual", "both"),
        default="oneshot",
        help="the pruned integer rows: one-shot 20x + 1 QAT epoch on --qat-movies (oneshot), "
        "gradual split-basis pruning with float retraining + PTQ (gradual), or both",
    )
    ap.add_argument("--prune-factors", default="2,5,10,20", help="gradual schedule")
    ap.add_argument("--prune-movies", type=int, default=256, help="fresh movies per level")
    ap.add_argument(
        "--prune-qat-movies",
        type=int,
        default=0,
        help="gradual: also one QAT epoch of the retrained kernel on this many movies",
    )
    ap.add_argument("--prune-qat-lr", type=float, default=2e-4)
    ap.add_argument(
        "--readout",
        default=str(RESULTS / "motion_readout.npz"),
        help="--only int: the read-out applied to the int evidence",
    )
    ap.add_argument(
        "--readout-tag",
        default=None,
        help="--only int with another --readout: its scores go to int.other_readouts[TAG]",
    )
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
    if args.only in ("prune-long", "prune-short"):
        gradual_kernels(args, {"long": long, "short": short}[args.only[6:]])
        return {}
    if args.only == "int":
        return merge_int(args, long, short, scene, dvs)
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
            args.out.with_suffix(".png"),
            f"HD-SNN after a motion switch ({args.test} held-out switching movies, 128 x 128)",
        )
    )
    if args.int:
        res["int"] = int_stage(args, long, short, ro, scene, dvs)
        if args.out.exists():  # rows at other sensor sizes (--only int) are kept
            old = json.loads(args.out.read_text()).get("int", {})
            if "at_size" in old:
                res["int"]["at_size"] = old["at_size"]
    args.out.write_text(json.dumps(res, indent=2))
    _log(f"wrote {args.out}")
    return res


def _factors(args) -> list[int]:
    return [int(f) for f in args.prune_factors.split(",")]


def _prune_train(args) -> TrainParams:
    """The float pruning table's retraining: 1 epoch, Adam 1e-3 cosine to 5e-5."""
    return TrainParams(epochs=1, lr=1e-3, lr_final=5e-5, stride=1, batch=8)


def gradual_kernels(args, kernel: HDKernel) -> HDKernel:
    """``kernel`` pruned gradually in the split basis (--prune-factors) with float
    retraining on --prune-movies fresh 40 x 40 movies per level
    (:func:`prune_retrain_gradual`); every level cached in --work (resumable)."""
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    factors, n = _factors(args), args.prune_movies
    ref = kernel.nnz_in("split")
    tscene, tdvs = sensor_setup(40, args.threshold)

    def path(f: int) -> Path:
        return args.work / f"gradual_{_tag(kernel)}_{f}x_{n}_{PRUNE_SEED0}.npz"

    def data(f: int):
        i = factors.index(f)
        seeds = range(PRUNE_SEED0 + i * n, PRUNE_SEED0 + (i + 1) * n)
        return make_dataset(seeds, tscene, tdvs)[:2]

    def save(f: int, k: HDKernel) -> None:
        k.save(path(f))
        _log(f"gradual {kernel.n_delays} delays {f}x: nnz {k.nnz_in('split')} (of {ref})")

    done = [f for f in factors if path(f).exists()]
    cur = HDKernel.load(path(done[-1])) if done else kernel
    rest = factors[len(done) :]
    if rest:
        t0 = time.perf_counter()
        cur = prune_retrain_gradual(
            cur, rest, data, _prune_train(args), "split", reference=ref, on_level=save
        )[rest[-1]]
        _log(f"gradual {kernel.n_delays} delays: {time.perf_counter() - t0:.0f} s")
    return cur


def int_models(args, long: HDKernel, short: HDKernel) -> dict:
    """``{label: (QuantizedHD, float pruned kernel or None)}`` of the two-family layer
    (cached): post-training quantization through the Brevitas quantizers; 20x
    split-pruned with one QAT epoch per family (each its own 36-class layer,
    --qat-movies fresh 40 x 40 movies; the pruning mask is kept) (--int-prune oneshot);
    pruned gradually with float retraining (:func:`gradual_kernels`), then PTQ and,
    with --prune-qat-movies, one QAT epoch from the retrained kernel (--int-prune
    gradual). The output scale is calibrated on the stacked layer."""
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
    rows: list[tuple[str, int]] = [("unpruned, PTQ", 1)]
    if args.int_prune in ("oneshot", "both"):
        rows.append(("pruned 20x (split basis), QAT", 20))
    for label, factor in rows:
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
        # float reference of the one-shot row: the pruned kernels before QAT
        fp = stack_kernels(
            [prune_kernel(k, k.nnz_in("split") // factor, "split") for k in (long, short)]
        )
        out[label] = (QuantizedHD.load(path), fp if factor > 1 else None)
    if args.int_prune in ("gradual", "both"):
        f = _factors(args)[-1]
        g = [gradual_kernels(args, k) for k in (long, short)]
        gf = stack_kernels(g)
        tag = f"{f}x gradual ({args.prune_factors}), float retrain {args.prune_movies}/level"
        path = args.work / f"gptq_{_tag(gf)}.npz"
        if not path.exists():
            fams = [train_hd_qat([], [], k, xq[:1], HDQuantParams())[0] for k in g]
            stack_quantized(fams, xq[:1]).save(path)
        out[f"pruned {tag}, PTQ"] = (QuantizedHD.load(path), gf)
        nq = args.prune_qat_movies
        if nq:
            path = args.work / f"gqat_{_tag(gf)}_{nq}_{args.prune_qat_lr:g}.npz"
            if not path.exists():
                # fresh movies: after the QAT fine-tuning movies of the one-shot row
                seeds = range(QAT_SEED0 + 100_000, QAT_SEED0 + 100_000 + nq)
                xg, yg, _ = make_dataset(seeds, tscene, tdvs)
                t0 = time.perf_counter()
                fams = []
                for k in g:
                    qf, losses = train_hd_qat(
                        list(xg),
                        list(yg),
                        k,
                        xq[:1],
                        HDQuantParams(),
                        TrainParams(
                            epochs=1,
                            lr=args.prune_qat_lr,
                            lr_final=args.prune_qat_lr / 20,
                            stride=1,
                            batch=8,
                        ),
                        prune_mask=prune_mask_of(k, "split"),
                    )
                    _log(f"gradual QAT, {k.n_delays} delays: losses {losses}")
                    fams.append(qf)
                del xg
                stack_quantized(fams, xq[:1]).save(path)
                _log(f"gradual QAT: {time.perf_counter() - t0:.0f} s")
            out[f"pruned {tag}, + 1 QAT epoch on {nq} movies"] = (QuantizedHD.load(path), gf)
    return out


def _int_movies(args, name: str, dvs) -> tuple[np.ndarray, np.ndarray]:
    seeds, constant = _seeds(name, args.int_movies)
    scene, _ = sensor_setup(args.int_size, args.threshold)
    sc = replace(scene, p_switch=0.0) if constant else scene
    x, y, _ = make_dataset(seeds, sc, dvs)
    return x, y


def int_evidence_cached(args, q, name: str, dvs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integer evidence (the QAT model's integer layer), float evidence of the float
    two-family layer and labels of the first --int-movies movies at --int-size."""
    from neuroplast.apps.motion.qat import int_evidence

    n, size = args.int_movies, args.int_size
    f = args.work / f"int_{name}_{_tag(q.kernel)}_{n}_{size}.npz"
    if not f.exists():
        x, y = _int_movies(args, name, dvs)
        both = stack_kernels([HDKernel.load(args.kernel), HDKernel.load(args.short_kernel)])
        np.savez(f, E=int_evidence(q, x), F=predict_dense(both, x), Y=y)
        _log(f"int evidence {name}: {n} movies of {size} x {size}")
    z = np.load(f)
    return z["E"], z["F"], z["Y"]


def float_evidence_cached(args, kernel: HDKernel, name: str, dvs) -> np.ndarray:
    """Float evidence of ``kernel`` (e.g. the pruned, retrained float layer) on the int
    protocol's movies."""
    n, size = args.int_movies, args.int_size
    f = args.work / f"float_{name}_{_tag(kernel)}_{n}_{size}.npy"
    if not f.exists():
        x, _ = _int_movies(args, name, dvs)
        np.save(f, predict_dense(kernel, x))
    return np.load(f)


def int_work(args, long, short, scene, dvs) -> dict:
    """The heavy part of stage 4 (QAT, integer evidence, runtime check), all cached."""
    out = {}
    for label, (q, fp) in int_models(args, long, short).items():
        for name in ("test", "constant"):
            int_evidence_cached(args, q, name, dvs)
            if fp is not None:
                float_evidence_cached(args, fp, name, dvs)
        f = args.work / f"check_{_tag(q.kernel)}_{args.check_movies}.json"
        if not f.exists():
            f.write_text(json.dumps(_runtime_check(q, args, dvs)))
        out[label] = (q, fp, json.loads(f.read_text()))
    return out


def merge_int(args, long, short, scene, dvs) -> dict:
    """``--only int``: stage 4 scored with the saved read-out (--readout) and its rows
    merged into the ``int`` entry of --out (other rows and entries kept)."""
    ro = EvidenceReadout.load(args.readout)
    new = int_stage(args, long, short, ro, scene, dvs)
    res = json.loads(args.out.read_text()) if args.out.exists() else {}
    res.setdefault("int", {})
    if args.int_size == 40:  # the default protocol: the int entry itself
        blocks, key = res, "int"
    else:  # other sensor sizes beside it: int.at_size["128"], ...
        blocks, key = res["int"].setdefault("at_size", {}), str(args.int_size)
    if args.readout_tag:  # another read-out: beside the rows, not in them
        other = blocks.setdefault(key, {}).setdefault("other_readouts", {})
        other[args.readout_tag] = {"readout": args.readout, **new}
    else:
        old = blocks.get(key, {})
        models = {**old.get("models", {}), **new["models"]}
        blocks[key] = {**old, **{k: v for k, v in new.items() if k != "models"}, "models": models}
    args.out.write_text(json.dumps(res, indent=2))
    _log(f"merged {sorted(new['models'])} into {args.out}")
    return res


def int_stage(args, long, short, ro, scene, dvs) -> dict:
    """Scores of the integer layers against the float layer on the same movies."""
    out: dict = {
        "qat_movies": args.qat_movies,
        "seed0": QAT_SEED0,
        "sensor": args.int_size,
        "models": {},
    }
    count = (args.int_size - long.weight.shape[3] + 1) ** 2
    if args.int_prune in ("gradual", "both"):
        out["gradual"] = {
            "factors": _factors(args),
            "movies_per_level": args.prune_movies,
            "seed0": PRUNE_SEED0,
            "train": asdict(_prune_train(args)),
            "qat_movies": args.prune_qat_movies,
            "qat_lr": args.prune_qat_lr,
            "qat_seed0": QAT_SEED0 + 100_000,
            "note": "each family pruned in the split basis, each level from the previous "
            "retrained kernel, survivors retrained with the mask fixed (the float pruning "
            "table's schedule and seeds), then quantized by the Brevitas quantizers",
        }
    for label, (q, fp, check) in int_work(args, long, short, scene, dvs).items():
        n_s, n_d = q.kernel.nnz_split
        row: dict = {
            "nnz_split": n_s + n_d,
            "weight_q": q.weight_q.to_dict(),
            "out_q": q.out_q.to_dict(),
            "runtime_vs_qat": check,
        }
        if fp is not None:
            row["float_nnz_split"] = int(sum(fp.nnz_split))
        for name, key in (("test", "switching"), ("constant", "constant")):
            ei, ef, y = int_evidence_cached(args, q, name, dvs)
            deq = ei.astype(np.float64) * q.out_q.scale / count  # mean z per class
            pruned: dict = {}
            if fp is not None:
                ep = float_evidence_cached(args, fp, name, dvs)
                pruned = {
                    "float pruned long window, argmax (same movies)": accuracy_per_step(
                        ep[..., :36], y
                    ),
                    "float pruned read-out (same movies)": accuracy_per_step(ro.apply(ep), y),
                    "int vs float pruned read-out decisions agree": float(
                        np.mean(ro.apply(deq).argmax(-1) == ro.apply(ep).argmax(-1))
                    ),
                }
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
                **pruned,
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
