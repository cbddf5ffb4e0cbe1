"""KWS voice adaptation: a few examples per word of a voice the model never heard.

The benchmark model (``bench/kws_bench.py``'s ``--out`` folder: ``kws.bundle`` and the
enrollment stage's guard ``kws_guard.npz``) adapts its readout to one voice at a time
(:mod:`neuroplast.apps.kws.adapt`) from ``--examples`` clips per word of that voice and
is scored on the voice's other clips, before and after, over ``--draws`` random draws;
the in-domain test split (other voices) measures what the adaptation costs elsewhere.
The learning settings (share of the user's examples, ridge) are chosen per adaptation
by cross-validation on that user's examples (the library's default); beside it, the best
fixed setting of the same grid chosen on the validation voices. The held-out engine's
voices (festival) are only read for the final numbers.

    python bench/kws_adapt.py --bench-out DIR --data-root ROOT --results bench/results/kws_adapt.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from kws_bench import BENCH, train_dir  # noqa: E402

from neuroplast.apps.kws import data as D  # noqa: E402
from neuroplast.apps.kws.pipeline import (  # noqa: E402
    PipelineConfig,
    adaptation_stage,
    load_features,
    load_kws_runtime,
)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bench-out", default=str(D.cache_dir("bench_out")))
    ap.add_argument("--data-root", default=str(D.cache_dir()))
    ap.add_argument("--examples", type=int, default=5, help="clips per word of the voice")
    ap.add_argument("--draws", type=int, default=3, help="random draws per held-out voice")
    ap.add_argument("--curve", type=int, nargs="*", default=[1, 2, 10],
                    help="also these examples per word (chosen settings; a curve)")  # fmt: skip
    ap.add_argument("--guard-per-class", type=int, nargs="*", default=[20, 50, 200],
                    help="also a guard of these many training clips per class")  # fmt: skip
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--results", default="bench/results/kws_adapt.json")
    a = ap.parse_args(argv)
    out, root = Path(a.bench_out), Path(a.data_root)
    if not (out / "kws.bundle").is_dir() or not (out / "kws_guard.npz").is_file():
        raise SystemExit(f"{out} has no kws.bundle / kws_guard.npz: run bench/kws_bench.py first")
    cfg = PipelineConfig(**BENCH)
    _, _, mel, delta = load_kws_runtime(out / "kws.bundle")
    F = load_features(root / train_dir(cfg.clips_per_word), mel, delta, cfg.enroll_word, cfg.seed)
    H = load_features(root / "bench_heldout", mel, delta, cfg.enroll_word, cfg.seed)
    r = adaptation_stage(out / "kws.bundle", F, H, out / "kws_guard.npz", a.examples, a.draws,
                         a.seed, tuple(a.curve), sensitivity=True,
                         guard_sizes=tuple(a.guard_per_class), progress=print)  # fmt: skip
    r["bench_out"] = str(out)
    z = r["zero_shot"]
    print(f"\nno examples, guard-only readout refit (ridge {z['ridge']}): held-out "
          f"{100 * z['heldout_bundle']:.1f} -> {100 * z['heldout_refit']:.1f} %, in-domain test "
          f"{100 * z['test_bundle']:.1f} -> {100 * z['test_refit']:.1f} %, validation "
          f"{100 * z['val_bundle']:.1f} -> {100 * z['val_refit']:.1f} %")  # fmt: skip
    print(f"\n| voice | clips scored | before | after ({a.examples} per word, {a.draws} draws) |")
    print("|---|---|---|---|")
    for v, x in r["voices"].items():
        print(f"| {v} | {x['n_rest']} | {100 * x['before']:.1f} % | "
              f"{100 * x['after']:.1f} % +- {100 * x['after_std']:.1f} |")  # fmt: skip
    print(f"| mean | | {100 * r['heldout_before']:.1f} % | {100 * r['heldout_after']:.1f} % |")
    fx = r["fixed"]
    print(f"settings picked (share/ridge: adaptations): {r['picks']}; best fixed setting on "
          f"validation voices {fx['share']}/{fx['ridge']}: {100 * fx['after']:.1f} % "
          f"(in-domain {100 * fx['test_after']:.1f} %)")  # fmt: skip
    for n, c in r.get("examples_curve", {}).items():
        print(f"{n} examples per word: {100 * c['before']:.1f} -> {100 * c['after']:.1f} % "
              f"(in-domain {100 * c['test_after']:.1f} %)")  # fmt: skip
    for k, x in r.get("guard_sizes", {}).items():
        print(f"guard of {k} clips per class ({x['rows']} rows, {x['mbytes']:.1f} MB): "
              f"{100 * x['after']:.1f} % (in-domain {100 * x['test_after']:.1f} %)")  # fmt: skip
    for g in r.get("heldout_sensitivity", []):
        print(f"held-out sensitivity, share {g['share']} ridge {g['ridge']}: "
              f"{100 * g['after']:.1f} % (in-domain {100 * g['test_after']:.1f} %)")  # fmt: skip
    if a.results:
        Path(a.results).write_text(json.dumps(r, indent=1))
    return r


if __name__ == "__main__":
    main()
