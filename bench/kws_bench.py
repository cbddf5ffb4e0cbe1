"""KWS benchmark: robust training, held-out TTS engine, streaming detection.

Usage::

    OMP_NUM_THREADS=1 nice -n 10 python bench/kws_bench.py [--out DIR] [--epochs 16]
        [--hidden 192 192]
        [--results bench/results/kws_full.json]
    OMP_NUM_THREADS=1 python bench/kws_enroll.py --out DIR --data DATA_DIR --seed 1
    python bench/kws_report.py bench/results/kws_full.json docs/kws-results.md
    python bench/report.py

One :func:`~neuroplast.apps.kws.pipeline.run_pipeline` run at benchmark size: espeak-ng
(40 voice variants x 6 accents, voice-disjoint train/val/test), flite (awb, rms), mbrola,
SVOX Pico and RHVoice (``data.TRAIN_VOICES``) in training under random real-world conditions (vocal-tract length, pitch, tempo, rooms,
noise, telephone band, codecs, level; ``neuroplast.apps.kws.augment``) with
SpecAugment-style masks; evaluation on the voice-disjoint espeak-ng test split and on
festival, an engine never trained on (all its voices); a streaming detection test
(keywords in minutes of background sound and other speech, recall at the false-alarm
rate chosen on a validation stream, DET curve PNG). Data and features are cached under
``--data-root`` (default the user cache), outputs go to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from neuroplast.apps.kws import data as D
from neuroplast.apps.kws.pipeline import PipelineConfig, _jsonable, run_pipeline

BENCH = dict(clips_per_word=24, heldout_clips=24, seed=1, stream_clips=5, stream_minutes=60.0)


def train_dir(clips_per_word: int) -> str:
    """The training set's folder under ``--data-root`` (one per clips-per-word setting)."""
    return f"bench_train_c{clips_per_word}"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(D.cache_dir("bench_out")))
    ap.add_argument("--data-root", default=str(D.cache_dir()))
    ap.add_argument("--epochs", type=int, default=16)
    ap.add_argument("--no-baseline", action="store_true", help="skip the zero-delay baseline")
    ap.add_argument("--four-bit", action="store_true", help="also train 4-bit weights")
    ap.add_argument("--stream-minutes", type=float, default=BENCH["stream_minutes"])
    ap.add_argument("--hidden", type=int, nargs="+", default=[192, 192], help="hidden sizes")
    ap.add_argument("--lr", type=float, default=1e-3, help="Adam base rate (peak 5x)")
    ap.add_argument("--dropout", type=float, default=0.1, help="dropout on hidden spikes")
    ap.add_argument(
        "--context-prob", type=float, default=0.0, help="stream crops: fraction with context"
    )
    ap.add_argument(
        "--context-steps", type=int, default=0, help="stream crops: context steps (0: off)"
    )
    ap.add_argument(
        "--clips-per-word",
        type=int,
        default=BENCH["clips_per_word"],
        help="training clips per word and voice (data in bench_train_c<N>)",
    )
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", 1)))
    ap.add_argument("--device", default="cpu", help="torch device of the training ('cuda')")
    ap.add_argument("--results", default="bench/results/kws_full.json")
    a = ap.parse_args(argv)
    root = Path(a.data_root)
    c = a.clips_per_word
    cfg = PipelineConfig(
        data_dir=str(root / train_dir(c)),
        heldout_dir=str(root / "bench_heldout"),
        out_dir=a.out,
        epochs=a.epochs,
        baseline=not a.no_baseline,
        four_bit=a.four_bit,
        threads=a.threads,
        device=a.device,
        hidden=tuple(a.hidden),
        lr=a.lr,
        dropout=a.dropout,
        context_prob=a.context_prob,
        context_steps=a.context_steps,
        **{**BENCH, "stream_minutes": a.stream_minutes, "clips_per_word": c},
    )
    r = run_pipeline(cfg, progress=lambda m: print(m, flush=True))
    path = Path(a.results)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_jsonable(r), indent=1))
    print(f"wrote {path}")
    return r


if __name__ == "__main__":
    main()
