"""Issue 16's trained-readout scenario as a table: held-out accuracy before/after pair
STDP fed normal / all-ones / silent / burst streams, under the old defaults
(w_min=0 forced, no saturation guard), the safe defaults, and the safe defaults plus a
LearningGuard (tests/plasticity/adversarial.py). Also shows that the old bounds are
refused without force. Writes bench/results/plasticity_adversarial.json.

Run:  OMP_NUM_THREADS=1 .venv/bin/python bench/plasticity_adversarial.py [--steps 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from neuroplast.errors import PlasticityError  # noqa: E402
from neuroplast.plasticity import PairSTDPParams  # noqa: E402
from neuroplast.runtime import Runtime  # noqa: E402
from tests.plasticity.adversarial import STREAMS, run, task, trained_readout  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--out", default=str(ROOT / "bench/results/plasticity_adversarial.json"))
    a = ap.parse_args()
    rt = Runtime(trained_readout(task()[0]))
    rt.plasticity.attach("ro", PairSTDPParams(w_min=0.0, w_max=1.0))
    try:
        rt.plasticity.validate(rt)
        refusal = "accepted (!)"
    except PlasticityError as e:
        refusal = str(e)
    print(f"attach pair_stdp with w_min=0 to the trained readout: {refusal}\n")
    rows = []
    print(
        f"{'stream':10s} {'setting':11s} {'before':>7s} {'after':>7s} {'rollbacks':>9s} {'w<0':>5s}"
    )
    for s in STREAMS:
        for setting in ("old", "safe", "safe+guard"):
            r = run(s, setting, steps=a.steps)
            rows.append(r)
            print(
                f"{s:10s} {setting:11s} {r['before']:7.2f} {r['after']:7.2f} "
                f"{r['rollbacks']:9d} {r['neg_weights']:5d}"
            )
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(
        json.dumps({"steps": a.steps, "refusal": refusal, "rows": rows}, indent=1)
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
