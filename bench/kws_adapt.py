"""KWS voice adaptation: a few examples per word of a voice the model never heard.

The benchmark model (``bench/kws_bench.py``'s ``--out`` folder: ``kws.bundle`` and the
enrollment stage's guard ``kws_guard.npz``) adapts its readout to one voice at a time
(:mod:`neuroplast.apps.kws.adapt`) from ``--examples`` clips per word of that voice and
is scored on the voice's other clips, before and after, over ``--draws`` random draws;
the in-domain test split (other voices) measures what the adaptation costs elsewhere.
The learning settings (share of the user's examples, ridge) are chosen on the
validation voices by the same protocol; the held-out engine's voices (festival) are
only read for the final numbers.

    python bench/kws_adapt.py --bench-out DIR --data-root ROOT --results bench/results/kws_adapt.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from kws_bench import BENCH, train_dir  # noqa: E402

from neuroplast.apps.kws import data as D  # noqa: E402
from neuroplast.apps.kws.adapt import (  # noqa: E402
    AdaptParams,
    adapt_init,
    adapt_readout,
    adapted_scores,
)
from neuroplast.apps.kws.enroll import EnrollParams  # noqa: E402
from neuroplast.apps.kws.infer import runtime_scores  # noqa: E402
from neuroplast.apps.kws.pipeline import (  # noqa: E402
    PipelineConfig,
    example_embeddings,
    load_features,
    load_kws_runtime,
    with_bands,
)

SHARES = (0.2, 0.5, 0.8)
RIDGES = (1.0, 10.0, 100.0)


def embeddings(rt, X: np.ndarray, p: EnrollParams) -> dict:  # noqa: ANN001
    """Embeddings, augmented copies' embeddings and old-readout scores of ``X``."""
    e, a = example_embeddings(rt, X, p)
    sc, _ = runtime_scores(rt, X)
    return {"emb": e, "aug": a, "scores": sc}


def adapt_voices(
    S: dict, y: np.ndarray, spk: np.ndarray, guard: dict, ap: AdaptParams, n: int, draws: int,
    seed: int, test: dict | None = None,
) -> dict:  # fmt: skip
    """Per voice (``spk``, not ``background``): ``draws`` times ``n`` clips per class of
    that voice adapt the readout; accuracy on the voice's other clips before and after
    (and on ``test``, other voices, after)."""
    rng = np.random.default_rng(seed)
    st0 = adapt_init(S["emb"].shape[1], guard["scores"].shape[1])
    out = {}
    for v in sorted(set(spk) - {"background"}):
        iv = np.flatnonzero(spk == v)
        rows = []
        for _ in range(draws):
            ex = np.concatenate([rng.permutation(iv[y[iv] == c])[:n] for c in np.unique(y[iv])])
            rest = np.setdiff1d(iv, ex)
            st, rep = adapt_readout(
                st0, S["emb"][ex], y[ex], guard["emb"], guard["labels"], ap, S["aug"][ex]
            )
            r = {
                "before": float(np.mean(S["scores"][rest].argmax(1) == y[rest])),
                "after": float(np.mean(adapted_scores(st, S["emb"][rest]).argmax(1) == y[rest])),
                "accepted": rep.accepted, "guard_before": rep.guard_acc_before,
                "guard_after": rep.guard_acc_after, "n_examples": rep.n_examples,
            }  # fmt: skip
            if test is not None:
                r["test_after"] = float(
                    np.mean(adapted_scores(st, test["emb"]).argmax(1) == test["y"])
                )
            rows.append(r)
        out[v] = {
            "before": float(np.mean([r["before"] for r in rows])),
            "after": float(np.mean([r["after"] for r in rows])),
            "after_std": float(np.std([r["after"] for r in rows])),
            "n_rest": int(len(iv) - len(ex)),
            "draws": rows,
        }
    return out


def _mean(res: dict, k: str) -> float:
    return float(np.mean([v[k] for v in res.values()]))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bench-out", default=str(D.cache_dir("bench_out")))
    ap.add_argument("--data-root", default=str(D.cache_dir()))
    ap.add_argument("--examples", type=int, default=5, help="clips per word of the voice")
    ap.add_argument("--draws", type=int, default=3, help="random draws per held-out voice")
    ap.add_argument("--curve", type=int, nargs="*", default=[1, 2, 10],
                    help="also these examples per word (chosen settings; a curve)")  # fmt: skip
    ap.add_argument("--n-aug", type=int, default=AdaptParams().n_aug, help="copies per example")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--results", default="bench/results/kws_adapt.json")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    out, root = Path(a.bench_out), Path(a.data_root)
    if not (out / "kws.bundle").is_dir() or not (out / "kws_guard.npz").is_file():
        raise SystemExit(f"{out} has no kws.bundle / kws_guard.npz: run bench/kws_bench.py first")
    cfg = PipelineConfig(**BENCH)
    rt, classes, mel, delta = load_kws_runtime(out / "kws.bundle", hidden=True)
    p = with_bands(EnrollParams(), mel)
    p = replace(p, augment=replace(p.augment, n_aug=a.n_aug))
    with np.load(out / "kws_guard.npz") as z:
        guard = {k: z[k] for k in ("emb", "labels", "scores")}
    F = load_features(root / train_dir(cfg.clips_per_word), mel, delta, cfg.enroll_word, cfg.seed)
    H = load_features(root / "bench_heldout", mel, delta, cfg.enroll_word, cfg.seed)
    val = embeddings(rt, F["val"][0], p)
    test = embeddings(rt, F["test"][0], replace(p, augment=replace(p.augment, n_aug=0)))
    test["y"] = F["test"][1]
    fest = embeddings(rt, H["test"][0], p)
    print(f"embeddings in {time.perf_counter() - t0:.0f} s", flush=True)
    # the settings, on the validation voices (one draw each)
    grid = []
    for share, ridge in itertools.product(SHARES, RIDGES):
        r = adapt_voices(val, F["val"][1], np.array(F["speakers"]["val"]), guard,
                         AdaptParams(share=share, ridge=ridge, n_aug=a.n_aug), a.examples, 1,
                         a.seed)  # fmt: skip
        grid.append({"share": share, "ridge": ridge, "before": _mean(r, "before"),
                     "after": _mean(r, "after")})  # fmt: skip
        print(f"val share {share} ridge {ridge}: {_mean(r, 'before'):.3f} -> "
              f"{_mean(r, 'after'):.3f}", flush=True)  # fmt: skip
    best = max(grid, key=lambda g: g["after"])
    ap_best = AdaptParams(share=best["share"], ridge=best["ridge"], n_aug=a.n_aug)
    res = adapt_voices(fest, H["test"][1], np.array(H["speakers"]["test"]), guard, ap_best,
                       a.examples, a.draws, a.seed + 1, test)  # fmt: skip
    # sensitivity, for the record only (never used to choose): every grid point on the
    # held-out voices, one draw each
    sens = []
    for share, ridge in itertools.product(SHARES, RIDGES):
        r = adapt_voices(fest, H["test"][1], np.array(H["speakers"]["test"]), guard,
                         AdaptParams(share=share, ridge=ridge), a.examples, 1, a.seed + 2, test)  # fmt: skip
        sens.append({"share": share, "ridge": ridge, "before": _mean(r, "before"),
                     "after": _mean(r, "after"),
                     "test_after": float(np.mean([d["test_after"] for v in r.values()
                                                  for d in v["draws"]]))})  # fmt: skip
    curve = {}
    for n in sorted({*a.curve, a.examples}):
        r = res if n == a.examples else adapt_voices(
            fest, H["test"][1], np.array(H["speakers"]["test"]), guard, ap_best, n, a.draws,
            a.seed + 1, test)  # fmt: skip
        curve[n] = {"before": _mean(r, "before"), "after": _mean(r, "after"),
                    "test_after": float(np.mean([d["test_after"] for v in r.values()
                                                 for d in v["draws"]]))}  # fmt: skip
    test_before = float(np.mean(test["scores"].argmax(1) == test["y"]))
    test_after = float(np.mean([r["test_after"] for v in res.values() for r in v["draws"]]))
    result = {
        "bench_out": str(out), "examples_per_word": a.examples, "draws": a.draws,
        "n_aug": a.n_aug, "chosen": {"share": best["share"], "ridge": best["ridge"]},
        "validation_grid": grid, "heldout_sensitivity": sens, "voices": res,
        "examples_curve": curve,
        "heldout_before": _mean(res, "before"), "heldout_after": _mean(res, "after"),
        "test_before": test_before, "test_after": test_after,
        "accepted": int(sum(r["accepted"] for v in res.values() for r in v["draws"])),
        "n_adaptations": int(sum(len(v["draws"]) for v in res.values())),
        "seconds": time.perf_counter() - t0,
    }  # fmt: skip
    print(f"\nchosen on validation voices: share {best['share']}, ridge {best['ridge']}")
    print(f"| voice | clips scored | before | after ({a.examples} per word, {a.draws} draws) |")
    print("|---|---|---|---|")
    for v, r in res.items():
        print(f"| {v} | {r['n_rest']} | {100 * r['before']:.1f} % | "
              f"{100 * r['after']:.1f} % +- {100 * r['after_std']:.1f} |")  # fmt: skip
    print(
        f"| mean | | {100 * result['heldout_before']:.1f} % | {100 * result['heldout_after']:.1f} % |"
    )
    print(f"in-domain test (other voices): {100 * test_before:.1f} % -> {100 * test_after:.1f} %")
    print("\nexamples per word (chosen settings, mean of the voices):")
    for n, c in curve.items():
        print(f"  {n}: {100 * c['before']:.1f} -> {100 * c['after']:.1f} % "
              f"(in-domain {100 * c['test_after']:.1f} %)")  # fmt: skip
    print("\nsensitivity (held-out voices, one draw; not used to choose):")
    for g in sens:
        print(f"  share {g['share']} ridge {g['ridge']}: {100 * g['before']:.1f} -> "
              f"{100 * g['after']:.1f} % (in-domain {100 * g['test_after']:.1f} %)")  # fmt: skip
    if a.results:
        Path(a.results).write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
