"""Host engine vs C board on-device learning, bit for bit, over many random layers.

Each case is a random Linear -> LIF network with random quantization, neuron and
``int_stdp`` parameters and a 10^4-step input stream with silent and saturated stretches
(``tests/firmware_bridge/test_bridge_learn.py``); odd cases pause half-way, pull the
learning state, push it back and resume. The host side is ``rt.step`` with the
plasticity engine's ``int_stdp`` rule; the board is the x86 virtual board (``--qemu``:
the Cortex-M4 build under QEMU, slow). Counts mismatching outputs, weights, trace
entries, generator words and change counts (all must be 0) and writes
bench/results/board_learning_bitexact.json (``_qemu.json`` with ``--qemu``).

Run:  OMP_NUM_THREADS=1 .venv/bin/python bench/board_learning_bitexact.py [--cases 20] [--qemu]
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
sys.path.insert(0, str(ROOT / "tests" / "firmware_bridge"))

import numpy as np  # noqa: E402
from test_bridge_learn import STEPS, board_run, host_run, random_case  # noqa: E402

from neuroplast.firmware_bridge import Board, QemuBoard, VirtualBoard  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=20, help="random layers (10^4 steps each)")
    ap.add_argument("--qemu", action="store_true", help="the Cortex-M4 build under QEMU")
    args = ap.parse_args()
    keys = ("outputs", "weights", "traces", "rng", "changes")
    tot = dict.fromkeys(keys, 0) | {"cases": 0, "steps": 0, "weight_changes": 0}
    board = QemuBoard("m4") if args.qemu else VirtualBoard()
    t0 = time.perf_counter()
    with board as proc, Board.connect(proc.port, timeout=1.0 if args.qemu else 0.5) as b:
        for c in range(args.cases):
            rt, layer, p, x = random_case(c)
            got = board_run(b, rt, layer, p, x, pause_at=STEPS // 2 if c % 2 else None)
            rt.reset()
            ref = host_run(rt, layer, p, x)
            mis = (
                int(np.count_nonzero(got[0] != ref[0])),
                int(np.count_nonzero(got[1] != ref[1])),
                int(
                    np.count_nonzero(got[2].x != ref[2].x) + np.count_nonzero(got[2].y != ref[2].y)
                ),
                int(got[2].rng != ref[2].rng),
                int(got[3] != ref[3]),
            )
            for k, m in zip(keys, mis, strict=True):
                tot[k] += m
            tot["cases"] += 1
            tot["steps"] += STEPS
            tot["weight_changes"] += ref[3]
            shape = tuple(rt.params[layer]["weight"].shape)
            print(f"case {c:3d} {shape!s:>10}  changes {ref[3]:>9,}  mismatches {sum(mis)}")
    tot["board"] = "qemu-m4" if args.qemu else "x86 virtual"
    tot["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(tot))
    name = "board_learning_bitexact_qemu.json" if args.qemu else "board_learning_bitexact.json"
    out = ROOT / "bench" / "results" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(tot, indent=1) + "\n")
    return 0 if all(tot[k] == 0 for k in keys) else 1


if __name__ == "__main__":
    raise SystemExit(main())
