"""Merge the two motion evaluation runs into bench/results/motion.json.

The motion numbers come from two processes (one core each): run (a) scores the 200 +
200 held-out movies and the magnitude-pruning sweeps, run (b) retrains the pruned
kernels level by level. Both score the same sweep movies, so their magnitude sweeps in
the shared basis must agree; this script checks that, then takes run (a) and adds run
(b)'s retrained sweep, runtime check and homeostasis (measured on its retrained 20x
kernel), and redraws the pruning plot. ``--homeostasis H.json`` takes the homeostasis
from a ``--homeostasis-only`` run instead (on the same retrained kernel).

    .venv/bin/python bench/motion_merge.py A/motion.json B/motion.json [--homeostasis H.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from neuroplast.apps.motion.metrics import max_factor_within
from neuroplast.apps.motion.plots import plot_pruning
from neuroplast.errors import DataError

__all__ = ["merge", "main"]

RESULTS = Path(__file__).resolve().parent / "results"


def merge(a: dict, b: dict, homeostasis: dict | None = None) -> dict:
    """Run (a) plus run (b)'s retrained sweep; raises DataError if the runs disagree."""
    pa, pb = a["pruning"], b["pruning"]
    if "finetuned" not in pb:
        raise DataError("run (b) has no retrained sweep (run it with --finetune-movies)")
    basis = pb["finetuned"]["basis"]
    sa = {e["factor"]: e for e in pa["sweeps"].get(basis, [])}
    shared = [e for e in pb["sweeps"][basis] if e["factor"] in sa]
    if len(shared) < 2:
        raise DataError(f"the runs share no magnitude sweep in the {basis!r} basis")
    for e in shared:
        for key in ("nnz", "accuracy", "accuracy_constant"):
            if key in e and abs(e[key] - sa[e["factor"]].get(key, float("nan"))) > 1e-9:
                raise DataError(
                    f"runs disagree at {e['factor']}x ({key}: {e[key]} vs "
                    f"{sa[e['factor']].get(key)}): not the same kernel or movies"
                )
    out = json.loads(json.dumps(a))
    ft = dict(pb["finetuned"])
    ft["max_factor_within_5_points"] = max_factor_within(ft["sweep"], pa["peak"])
    if "peak_constant" in pa:
        ft["max_factor_within_5_points_constant"] = max_factor_within(
            ft["sweep"], pa["peak_constant"], "accuracy_constant"
        )
    out["pruning"]["finetuned"] = ft
    out["event_layer"] = b["event_layer"]
    out["homeostasis"] = homeostasis or b["homeostasis"]
    out["merged_from"] = {
        "pruning.finetuned, event_layer": "run (b)",
        "homeostasis": "homeostasis-only run" if homeostasis else "run (b)",
    }
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("run_a", type=Path)
    ap.add_argument("run_b", type=Path)
    ap.add_argument("--homeostasis", type=Path, default=None, help="a --homeostasis-only run")
    ap.add_argument("--out", type=Path, default=RESULTS / "motion.json")
    args = ap.parse_args(argv)
    h = json.loads(args.homeostasis.read_text())["homeostasis"] if args.homeostasis else None
    res = merge(json.loads(args.run_a.read_text()), json.loads(args.run_b.read_text()), h)
    res["pruning"]["plot"] = str(
        plot_pruning(res["pruning"], args.out.parent / "motion_pruning.png")
    )
    args.out.write_text(json.dumps(res, indent=2))
    print(f"wrote {args.out}")
    return res


if __name__ == "__main__":
    main()
