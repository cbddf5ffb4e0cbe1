"""Conformance: N random graphs through every target the capability matrix claims.

    python bench/conformance.py --n 5000 --out bench/results/conformance.json

Each graph runs in every registered target whose engine is installed: claimed graphs must
agree with the reference runtime (bit-exact integer codes, identical float outputs within
1e-5), refused ones must fail with the target's one-line UnsupportedError. Prints a table
per target and writes the JSON the README row is made from (`python bench/report.py`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from neuroplast.quantize.conformance import run_suite


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5000, help="graphs to generate (default 5000)")
    ap.add_argument("--seed", type=int, default=0, help="first graph seed")
    ap.add_argument("--targets", nargs="*", default=None, help="only these targets")
    ap.add_argument("--out", type=Path, default=None, help="write the JSON report here")
    args = ap.parse_args(argv)

    def progress(i: int, n: int) -> None:
        if i % max(n // 20, 1) == 0 or i == n:
            print(f"  {i}/{n} graphs", file=sys.stderr, flush=True)

    rep = run_suite(args.n, seed=args.seed, targets=args.targets, progress=progress)
    d = rep.to_dict()
    print(f"{d['graphs']} graphs in {d['seconds']} s")
    print(
        f"{'target':<12} {'tried':>6} {'claimed':>8} {'agree':>6} {'refused':>8} {'errors':>7} {'max diff':>9}"
    )
    for t, r in d["targets"].items():
        print(f"{t:<12} {r['tried']:>6} {r['claimed']:>8} {r['agree']:>6} {r['refused_cleanly']:>8} "
              f"{r['errors']:>7} {r['max_diff']:>9.2g}")  # fmt: skip
    for f in d["failures"][:20]:
        print(f"FAIL seed {f['seed']} ({f['family']}) {f['target']}: {f['detail']}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(d, indent=1) + "\n")
    return 0 if rep.ok else 1


if __name__ == "__main__":
    sys.exit(main())
