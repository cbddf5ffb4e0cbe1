"""Every rule x every layer shape it claims x float/int x batch over 10^5 adversarial
steps per case (5 streams: random spikes, silence, all-ones, bursts, extremes), each
step checked against the rule's pure functions (tests/plasticity/rule_matrix.py).

Prints a table (case, steps, max |engine - reference|, rows alive) and writes
bench/results/plasticity_matrix.json.

Run:  OMP_NUM_THREADS=1 .venv/bin/python bench/plasticity_matrix.py [--steps 100000]
      [--only SUBSTRING] [--check-every 10]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.plasticity.rule_matrix import STREAMS, cases, run_case  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=100_000, help="steps per case (all streams)")
    ap.add_argument(
        "--only", default="", help="comma-separated substrings a case id must all contain"
    )
    ap.add_argument("--skip", default="", help="comma-separated substrings to leave out")
    ap.add_argument("--check-every", type=int, default=10, help="compare every N steps")
    ap.add_argument("--out", default=str(ROOT / "bench/results/plasticity_matrix.json"))
    a = ap.parse_args()
    per = max(1, a.steps // len(STREAMS))
    rows, failed = [], 0
    need = [s for s in a.only.split(",") if s]
    skip = [s for s in a.skip.split(",") if s]
    todo = [c for c in cases() if all(s in c.id for s in need) and not any(s in c.id for s in skip)]
    print(f"{len(todo)} cases x {per * len(STREAMS)} steps ({', '.join(STREAMS)})")
    print(f"{'case':42s} {'steps':>7s} {'max err':>9s} {'alive':>6s} {'s':>6s}")
    for c in todo:
        t = time.perf_counter()
        try:
            r = run_case(c, per, check_every=a.check_every)
            r["ok"] = True
        except AssertionError as e:
            r = {"case": c.id, "ok": False, "error": str(e)[:300]}
            failed += 1
        r["seconds"] = round(time.perf_counter() - t, 1)
        rows.append(r)
        alive = f"{r.get('alive_rows', '-')}/{r.get('rows', '-')}" if r.get("rows") else "-"
        err = f"{r['max_err']:.2e}" if r["ok"] else "FAIL"
        print(f"{c.id:42s} {r.get('steps', 0):7d} {err:>9s} {alive:>6s} {r['seconds']:6.1f}")
        if not r["ok"]:
            print("   ", r["error"])
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(
        json.dumps({"steps_per_case": per * len(STREAMS), "rows": rows}, indent=1)
    )
    kinds = {c.kind for c in todo}
    print(
        f"{len(todo) - failed}/{len(todo)} cases passed: {len(kinds)} rules, "
        f"{len({c.shape for c in todo})} layer shapes, {len({c.mode for c in todo})} modes"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
