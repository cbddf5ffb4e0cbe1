"""``python -m neuroplast.apps.kws.demo``: the KWS pipeline end to end on small defaults.

Generates a small synthetic keyword set (espeak-ng and flite voices under random
real-world conditions) and a held-out festival set, QAT-trains the delay SNN (and the
fixed-zero delay baseline) for a few epochs, exports the bundle (+ ONNX/TFLite reference,
NIR when available), runs the bundle in the runtime, scores the held-out engine and a
streaming detection test, enrolls a new word, streams a few clips for latency, and
prints a results table. Generated clips go to the user cache, results to ``--out``
(default ``neuroplast-out/kws``, see :mod:`neuroplast.paths`; ``results.json`` there);
``--json PATH`` also writes the results JSON the README rows are made from (a checkout's
bench results folder, by hand).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from neuroplast.paths import cache_dir, output_dir

__all__ = ["main", "results_table", "enroll_only", "DEMO"]

# small embedded defaults: a few minutes on 2 idle CPU cores
DEMO = dict(
    clips_per_word=5,
    epochs=12,
    hidden=(192, 192),
    max_delay=15,
    stream_clips=3,
    heldout_clips=4,
    adapt_examples=2,  # of the 4 clips per held-out voice and word: 2 adapt, 2 are scored
    stream_minutes=10.0,  # a 5 min validation stream picks the threshold: 40 keywords
    val_voices=8,  # the enrollment calibration needs more than 5 voices (issue 21, docs/kws.md)
)


def _pct(x: Any) -> str:
    return "-" if x is None else f"{100 * float(x):.1f} %"


def results_table(r: dict) -> Any:
    """A rich table of the headline numbers of a pipeline result."""
    from rich.table import Table

    t = Table(title="neuroplast KWS: delay-learning SNN (12 classes, voice-disjoint test)")
    t.add_column("what")
    t.add_column("value", justify="right")
    t.add_column("note")
    d = r.get("data", {})
    t.add_row(
        "data (train/val/test clips)",
        "/".join(str(d.get("sizes", {}).get(s, "?")) for s in ("train", "val", "test")),
        f"input spike rate {d.get('input_spike_rate', 0):.3f}",
    )
    for m in r.get("models", []):
        t.add_row(
            f"{m['name']} test acc",
            _pct(m["test_acc"]),
            f"val {_pct(m['val_acc'])} at epoch {m['best_epoch'] + 1}, {m['train_seconds']:.0f} s",
        )
    b = r.get("bundle", {})
    t.add_row(
        "bundle runtime int / float acc",
        f"{_pct(b.get('runtime_int_test_acc'))} / {_pct(b.get('runtime_float_test_acc'))}",
        f"int - QAT = {b.get('int_minus_qat_points', 0):+.2f} points",
    )
    h = r.get("heldout")
    if h:
        t.add_row(
            "held-out TTS engine (int runtime)",
            _pct(h["acc"]),
            ", ".join(f"{k} {_pct(v['acc'])}" for k, v in h["per_voice"].items()
                      if k != "background"),
        )  # fmt: skip
    det = r.get("detection", {}).get("test")
    if det:
        t.add_row(
            f"streaming detection ({det['minutes']:g} min stream)",
            f"recall {_pct(det['recall'])}",
            f"{det['fa_per_hour']:.1f} false alarms/h at threshold {det['theta']:.2f} "
            "(chosen on a validation stream)",
        )
    ex = r.get("exports", {})
    ref = ex.get("reference", {})
    if "test_acc" in ref:
        t.add_row(
            "ONNX / TFLite reference MLP acc",
            _pct(ref["test_acc"]),
            f"ORT argmax agree {_pct(ref.get('onnx_argmax_agree'))}, "
            f"LiteRT max {ref.get('tflite_vs_runtime_max_lsb', '-')} LSB",
        )
    nir = ex.get("nir", {})
    t.add_row(
        "NIR export",
        "ok" if "path" in nir else "skipped",
        str(nir.get("node_kinds", nir.get("skipped", nir.get("error", ""))))[:60],
    )
    e = r.get("enrollment", {})
    for name in ("cross_voice", "personal"):
        c = e.get(name, {})
        if "recall_mean" in c:
            t.add_row(
                f"enroll a new word ({name.replace('_', '-')}, {c['examples_per_draw']} examples)",
                _pct(c["recall_mean"]),
                f"+- {100 * c['recall_std']:.1f}; old-word drop {c['old_drop_points_mean']:.2f} "
                f"points (max {c['old_drop_points_max']:.2f}), {c['draws']} draws",
            )
    a = r.get("adaptation", {})
    if "voices" in a:
        t.add_row(
            f"adapt to a held-out voice ({a['examples_per_word']} examples per word)",
            f"{_pct(a['heldout_before'])} -> {_pct(a['heldout_after'])}",
            f"in-domain {_pct(a['test_before'])} -> {_pct(a['test_after'])}; "
            f"{a['accepted']}/{a['n_adaptations']} accepted by the guard"
            + (
                f"; no examples, guard-only readout: {_pct(z['heldout_bundle'])} -> "
                f"{_pct(z['heldout_refit'])}"
                if (z := a.get("zero_shot"))
                else ""
            ),
        )
    elif "skipped" in a:
        t.add_row("adapt to a held-out voice", "skipped", a["skipped"])
    for mode, s in r.get("streaming", {}).items():
        t.add_row(
            f"streaming latency / 10 ms hop ({mode})",
            f"{s['latency_ms_mean']:.3f} ms",
            f"p99 {s['latency_ms_p99']:.3f} ms, heap peak {s['heap_peak_kib']:.0f} KiB",
        )
    mem = r.get("memory", {})
    if mem:
        t.add_row(
            "model memory (weights + state)",
            f"{(mem['param_bytes'] + mem['state_bytes']) / 1024:.1f} KiB",
            f"bundle on disk {mem['bundle_bytes'] / 1024:.1f} KiB",
        )
    for board, f in r.get("boards", {}).items():
        if isinstance(f, dict) and "verdict" in f:
            t.add_row(
                f"neuroplast fit: {board}",
                f["verdict"],
                f"{f['latency_ms_per_step']:.3f} ms/step, RAM {f['ram_needed_kib']:.0f} KiB",
            )
    t.add_row("total time", f"{r.get('total_seconds', 0):.0f} s", "")
    return t


def enroll_only(cfg, progress=None) -> dict:  # noqa: ANN001
    """Re-run the pipeline's on-device stages (enrollment, then voice adaptation where
    the held-out set is cached) on the bundle of an earlier run in ``cfg.out_dir`` (its
    ``results.json`` must exist; the features come from the cache) and return that
    run's results with those sections replaced."""
    from neuroplast.apps.kws.pipeline import adaptation_stage, enrollment_stage, load_features
    from neuroplast.errors import DataError

    out = Path(cfg.out_dir)
    res = out / "results.json"
    if not (out / "kws.bundle").exists() or not res.exists():
        raise DataError(f"{out} has no kws.bundle and results.json of an earlier run")
    r = json.loads(res.read_text())
    F = load_features(cfg.data_dir, cfg.mel, cfg.delta, cfg.enroll_word, cfg.seed)
    r["enrollment"] = enrollment_stage(
        out / "kws.bundle", F, cfg.data_dir, out, cfg.enroll_word, cfg.n_enroll, cfg.seed, progress
    )
    if cfg.heldout_dir and Path(cfg.heldout_dir).is_dir():
        H = load_features(cfg.heldout_dir, cfg.mel, cfg.delta, cfg.enroll_word, cfg.seed)
        r["adaptation"] = adaptation_stage(
            out / "kws.bundle", F, H, out / "kws_guard.npz", cfg.adapt_examples, seed=cfg.seed,
            progress=progress,
        )  # fmt: skip
    return r


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m neuroplast.apps.kws.demo", description=__doc__)
    ap.add_argument("--data", default=str(cache_dir("kws", "demo")), help="clips (cache)")
    ap.add_argument("--out", default=str(output_dir("kws")), help="results folder")
    ap.add_argument("--json", default="", help="also write the results JSON here")
    ap.add_argument("--epochs", type=int, default=DEMO["epochs"])
    ap.add_argument("--clips-per-word", type=int, default=DEMO["clips_per_word"])
    ap.add_argument(
        "--hidden", type=int, nargs="+", default=list(DEMO["hidden"]), help="hidden sizes"
    )
    ap.add_argument("--no-baseline", action="store_true", help="skip the zero-delay baseline")
    ap.add_argument("--four-bit", action="store_true", help="also train 4-bit weights")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--enroll-only",
        action="store_true",
        help="re-run only the on-device stages (enrollment, voice adaptation) on the bundle "
        "and results.json in --out",
    )
    a = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(a.threads))
    from rich.console import Console

    from neuroplast.apps.kws.pipeline import PipelineConfig, _jsonable, run_pipeline

    console = Console()
    cfg = PipelineConfig(
        data_dir=a.data or str(cache_dir("kws", "demo")),
        heldout_dir=str(cache_dir("kws", "demo_heldout")),
        out_dir=a.out,
        **{
            **DEMO,
            "clips_per_word": a.clips_per_word,
            "epochs": a.epochs,
            "hidden": tuple(a.hidden),
        },
        baseline=not a.no_baseline,
        four_bit=a.four_bit,
        threads=a.threads,
    )
    log = lambda m: console.print(m, markup=False, highlight=False)  # noqa: E731
    if a.enroll_only:
        r = enroll_only(cfg, log)
    else:
        r = run_pipeline(cfg, progress=log)
    console.print(results_table(r))
    for out in [Path(a.out) / "results.json"] + ([Path(a.json)] if a.json else []):
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(_jsonable(r), indent=1))
        console.print(f"results written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
