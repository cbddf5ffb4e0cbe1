"""Re-signing fuzzer for learned state: 5,000 hostile state.npz / plasticity.json
variants with valid hashes (tests/plasticity/state_fuzz.py); every case must end in a
BundleError / RuntimeStateError or a working runtime. Prints the outcome counts and
writes bench/results/plasticity_state_fuzz.json.

Run:  OMP_NUM_THREADS=1 .venv/bin/python bench/plasticity_state_fuzz.py [--n 5000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.plasticity.state_fuzz import one_case  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--out", default=str(ROOT / "bench/results/plasticity_state_fuzz.json"))
    a = ap.parse_args()
    counts: Counter = Counter()
    crashes = []
    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        for i in range(a.n):
            try:
                counts[one_case(i, Path(d))] += 1
            except Exception as e:  # noqa: BLE001 - what the fuzzer is looking for
                counts["CRASH"] += 1
                crashes.append({"case": i, "error": f"{type(e).__name__}: {e}"[:300]})
                if len(crashes) <= 5:
                    traceback.print_exc()
    dt = time.perf_counter() - t
    print(
        f"{a.n} cases in {dt:.0f} s: " + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
    )
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps({"n": a.n, "counts": counts, "crashes": crashes}, indent=1))
    return 1 if crashes else 0


if __name__ == "__main__":
    raise SystemExit(main())
