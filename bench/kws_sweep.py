"""Train variants of the KWS delay SNN on the benchmark's features, side by side.

Where the full benchmark (``bench/kws_bench.py``) trains one model and then runs every
deployment stage, this script asks which training change moves accuracy: it trains
named variants of the benchmark's recipe (width, depth, epochs, training-set size,
regularisation) on the *same* spike rasters, one process per variant (``--jobs`` at a
time, on ``--device``), and reports validation, voice-disjoint test and held-out-engine
accuracy (torch, exact integer delays, fake-quantized int8 weights; the benchmark
itself reports the integer runtime's accuracy, which agrees to within a clip or two).

    python bench/kws_sweep.py pack --out feats.npz      # from the benchmark's data cache
    python bench/kws_sweep.py run feats.npz --out DIR --device cuda --jobs 4 base half
    python bench/kws_sweep.py report DIR --bench bench/results/kws_full.json --json OUT.json

``pack`` stores the rasters bit-packed (1/8 of the uint8 size), so the file travels to
a GPU machine; each variant writes one JSON line per epoch to ``DIR/NAME.jsonl`` and a
final record, so a run cut short still reports its curves.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

BASE = dict(hidden=(192, 192), epochs=16, lr=1e-3, dropout=0.1, max_delay=15, frac=1.0, aug={})
AUG2 = dict(time_masks=3, time_mask=15, band_masks=3, band_mask=8, drop=0.1)
VARIANTS: dict[str, dict] = {
    "base": {},  # the benchmark's recipe (kws_bench.py defaults)
    "half": {"frac": 0.5},  # half the training clips (stratified): the data-scaling slope
    "quarter": {"frac": 0.25},
    "wide": {"hidden": (320, 320)},
    "deep": {"hidden": (192, 192, 192)},
    "long": {"epochs": 32},
    "drop2": {"dropout": 0.2},
    "delay25": {"max_delay": 25},
    "lr2": {"lr": 2e-3},
    "aug2": {"aug": AUG2},  # stronger SpecAugment masks and spike deletion
    "bshift": {"aug": {"band_shift": 2}},  # mel-axis shift (formant / vocal-tract proxy)
    "bshift4": {"aug": {"band_shift": 4}},
    "ls1": {"aug": {"label_smoothing": 0.1}},  # ("aug": any TrainConfig field)
    "ls2": {"aug": {"label_smoothing": 0.2}},
    "wd4": {"aug": {"weight_decay": 1e-4}},
}
SPLITS = ("train", "val", "test", "heldout")


def pack(out: Path, data_root: Path, clips_per_word: int | None = None) -> None:
    """The benchmark's train/val/test and held-out-engine rasters -> one packed npz."""
    sys.path.insert(0, str(Path(__file__).parent))
    from kws_bench import BENCH, train_dir

    from neuroplast.apps.kws import data as D
    from neuroplast.apps.kws.pipeline import PipelineConfig, load_features

    cfg = PipelineConfig(**{**BENCH, "clips_per_word": clips_per_word or BENCH["clips_per_word"]})
    tdir = data_root / train_dir(cfg.clips_per_word)
    if not tdir.is_dir():
        raise SystemExit(f"{tdir} does not exist: run bench/kws_bench.py with that --data-root")
    F = load_features(tdir, cfg.mel, cfg.delta, cfg.enroll_word, cfg.seed)
    hcfg = D.heldout_config(cfg.heldout_clips, cfg.seed + 1, tuple(cfg.heldout_voices))
    hdir = data_root / "bench_heldout"
    D.generate_synthetic(hdir, hcfg, progress=True)
    H = load_features(hdir, cfg.mel, cfg.delta, cfg.enroll_word, cfg.seed)
    save(out, {**{s: F[s] for s in SPLITS[:3]}, "heldout": H["test"]}, F["classes"])
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")


def save(out: Path, splits: dict[str, tuple[np.ndarray, np.ndarray]], classes: list) -> None:
    """``(N, T, C)`` 0/1 rasters and labels per split -> one npz, bit-packed over C."""
    arr = {"classes": np.array(classes, dtype="U16")}
    for s, (X, y) in splits.items():
        arr[f"X_{s}"], arr[f"y_{s}"] = np.packbits(X.astype(bool), axis=-1), y
        arr[f"shape_{s}"] = np.array(X.shape)
    np.savez_compressed(out, **arr)


def load(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    z = np.load(path)
    out = {}
    for s in SPLITS:
        C = int(z[f"shape_{s}"][-1])
        out[s] = (np.unpackbits(z[f"X_{s}"], axis=-1, count=C).astype(np.float32), z[f"y_{s}"])
    return out


def one(data: Path, name: str, out: Path, device: str, threads: int, every_epoch: bool) -> None:
    """Train variant ``name``; JSON lines per epoch, then the final record."""
    from neuroplast.apps.kws.model import KwsNetConfig
    from neuroplast.apps.kws.train import TrainConfig, evaluate, train

    v = {**BASE, **VARIANTS[name]}
    F = load(data)
    Xtr, ytr = F["train"]
    if v["frac"] < 1.0:  # stratified subset, the same for every run
        rng = np.random.default_rng(0)
        keep = np.concatenate(
            [
                rng.permutation(np.flatnonzero(ytr == c))[: int(v["frac"] * (ytr == c).sum())]
                for c in np.unique(ytr)
            ]  # fmt: skip
        )
        Xtr, ytr = Xtr[np.sort(keep)], ytr[np.sort(keep)]
    net = KwsNetConfig(n_in=Xtr.shape[2], hidden=tuple(v["hidden"]), n_classes=int(ytr.max()) + 1,
                       max_delay=v["max_delay"], learn_delays=True, weight_bits=8,
                       dropout=v["dropout"])  # fmt: skip
    tc = TrainConfig(epochs=v["epochs"], lr=v["lr"], seed=1, threads=threads, device=device,
                     **v["aug"])  # fmt: skip
    log = (out / f"{name}.jsonl").open("w")

    def cb(rec: dict) -> None:
        log.write(json.dumps({"name": name, **rec}) + "\n")
        log.flush()

    def curves(model: object) -> dict:  # every epoch's test accuracies: a cut run still reports
        return {s: evaluate(model, *F[s]) for s in ("test", "heldout")} if every_epoch else {}

    r = train(Xtr, ytr, *F["val"], net, tc, progress=cb, on_epoch=curves)
    res = {
        "name": name, "final": True, "variant": {k: v[k] for k in BASE}, "n_train": len(ytr),
        "val": r.best_val_acc, "best_epoch": r.best_epoch, "seconds": r.seconds,
        "test": evaluate(r.model, *F["test"]), "heldout": evaluate(r.model, *F["heldout"]),
    }  # fmt: skip
    log.write(json.dumps(res) + "\n")
    log.close()
    print(json.dumps(res), flush=True)


def run(
    data: Path, names: list[str], out: Path, device: str, jobs: int, threads: int, every: bool
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    todo, live = list(names), []
    t0 = time.time()
    while todo or live:
        while todo and len(live) < jobs:
            n = todo.pop(0)
            cmd = [sys.executable, __file__, "one", str(data), n, "--out", str(out),
                   "--device", device, "--threads", str(threads)] + ["--every-epoch"] * every  # fmt: skip
            live.append((n, subprocess.Popen(cmd)))
        time.sleep(2)
        for n, p in list(live):
            if p.poll() is not None:
                live.remove((n, p))
                print(f"{n}: exit {p.returncode} at {time.time() - t0:.0f} s", flush=True)
    report(out)


def _bench_row(path: Path) -> dict:
    """The benchmark run's model as a sweep record (the ``base`` recipe on the same data)."""
    r = json.loads(path.read_text())
    m, c = r["models"][0], r["config"]
    return {
        "name": "base (kws_bench run)", "final": True, "n_train": r["data"]["sizes"]["train"],
        "variant": {"hidden": c["hidden"], "epochs": c["epochs"], "lr": c["lr"],
                    "dropout": c["dropout"], "max_delay": c["max_delay"], "frac": 1.0, "aug": {}},
        "val": m["val_acc"], "best_epoch": m["best_epoch"], "seconds": m["train_seconds"],
        "test": m["test_acc"], "heldout": r["heldout"]["qat_acc"],
    }  # fmt: skip


def report(out: Path, bench: Path | None = None, json_out: Path | None = None) -> None:
    """Markdown table of the variants in ``out`` (and the benchmark run, if given);
    ``json_out`` keeps the final records."""
    rows = [_bench_row(bench)] if bench else []
    print("| variant | train clips | best epoch / run | val % | test % | held-out % | s |")
    print("|---|---|---|---|---|---|---|")
    for f in sorted(out.glob("*.jsonl")):
        recs = [json.loads(x) for x in f.read_text().splitlines() if x.strip()]
        fin = [r for r in recs if r.get("final")]
        ep = [r for r in recs if "epoch" in r]
        if fin:
            rows.append(fin[0])
        elif ep:
            best = max(ep, key=lambda r: r["val_acc"])
            te, ho = (f"{100 * best[k]:.1f}" if k in best else "" for k in ("test", "heldout"))
            print(f"| {f.stem} (cut at epoch {len(ep)}) | | {best['epoch'] + 1} | "
                  f"{100 * best['val_acc']:.1f} | {te} | {ho} | {ep[-1]['seconds']:.0f} |")  # fmt: skip
    for r in rows:
        print(f"| {r['name']} | {r['n_train']} | {r['best_epoch'] + 1} / {r['variant']['epochs']} | "
              f"{100 * r['val']:.1f} | {100 * r['test']:.1f} | {100 * r['heldout']:.1f} | "
              f"{r['seconds']:.0f} |")  # fmt: skip
    if json_out:
        json_out.write_text(json.dumps(rows, indent=1))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--data-root", type=Path, help="the benchmark's --data-root (default: cache)")
    p.add_argument("--clips-per-word", type=int, help="the benchmark's (default: its default)")
    for c in ("run", "one"):
        p = sub.add_parser(c)
        p.add_argument("data", type=Path)
        p.add_argument("names", nargs="+", choices=sorted(VARIANTS))
        p.add_argument("--out", type=Path, required=True)
        p.add_argument("--device", default="cpu")
        p.add_argument("--threads", type=int, default=1)
        p.add_argument("--every-epoch", action="store_true", help="test/held-out every epoch")
        if c == "run":
            p.add_argument("--jobs", type=int, default=2)
    p = sub.add_parser("report")
    p.add_argument("out", type=Path)
    p.add_argument("--bench", type=Path, help="a kws_bench results json: its model as a row")
    p.add_argument("--json", type=Path, help="write the final records here")
    a = ap.parse_args(argv)
    if a.cmd == "pack":
        from neuroplast.apps.kws.data import cache_dir

        pack(a.out, a.data_root or cache_dir(), a.clips_per_word)
    elif a.cmd == "one":
        a.out.mkdir(parents=True, exist_ok=True)
        one(a.data, a.names[0], a.out, a.device, a.threads, a.every_epoch)
    elif a.cmd == "run":
        run(a.data, a.names, a.out, a.device, a.jobs, a.threads, a.every_epoch)
    else:
        report(a.out, a.bench, a.json)


if __name__ == "__main__":
    main()
