"""Board-link throughput: the C virtual board over a pty, at emulated UART line rates.

A pty has no line rate, so the firmware's POSIX port emulates one (``--baud``): a frame
is handled when its last byte would have arrived at 10 bits/byte (8N1), and each
reply is released when its last byte would have left. The emulation is conservative
(it never lets bytes arrive earlier than the wire would). "pty" rows run unthrottled.

Measured per line rate, in one run:
  * stream: STREAM frames of as many steps as fit in MAX_PAYLOAD (stop-and-wait);
    input payload bytes/s vs the theoretical line rate baud/10 -> efficiency
  * infer: one INFER round trip per single-step inference (latency bound)
  * echo: PING with a 2 KiB payload (goodput each way)
Peers in the same run: the theoretical line rate (ratio = efficiency) and the host
numpy integer runtime on the same model (steps/s).

    .venv/bin/python bench/bench_bridge.py [--seconds 3] [--bauds 115200,921600]
Writes bench/results/bench_bridge.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from neuroplast.firmware_bridge import Board, VirtualBoard, build_image, spec  # noqa: E402
from neuroplast.firmware_bridge.framing import Frame, encode_frame  # noqa: E402
from neuroplast.graph.graph import Graph  # noqa: E402
from neuroplast.graph.nodes import LIF, Input, Linear  # noqa: E402
from neuroplast.quant import QuantSpec  # noqa: E402
from neuroplast.runtime import Runtime  # noqa: E402


def model(n_in: int = 64, n_h: int = 32, n_out: int = 4) -> Runtime:
    """A keyword-spotting-sized streaming SNN: 64 features/step in, 4 int8 scores out."""
    rng = np.random.default_rng(0)
    w1 = rng.normal(0, 0.2, (n_h, n_in))
    w2 = rng.normal(0, 0.4, (n_out, n_h))
    g = Graph.sequential(
        [
            ("x", Input(shape=(n_in,), quant=QuantSpec(8, 0.05, 0))),
            (
                "fc1",
                Linear(
                    weight=w1,
                    weight_q=QuantSpec(8, 0.2 / 40, 0, narrow=True),
                    out_q=QuantSpec(16, 0.01, 0),
                ),
            ),
            ("lif", LIF(tau_mem=np.full(n_h, 0.01), v_th=np.full(n_h, 0.5))),
            (
                "fc2",
                Linear(
                    weight=w2,
                    weight_q=QuantSpec(8, 0.4 / 40, 0, narrow=True),
                    out_q=QuantSpec(8, 0.05, 0),
                ),
            ),
        ]
    )
    return Runtime(g, mode="int")


def wire_len(payload_len: int) -> int:
    return len(encode_frame(Frame(spec.MsgType.STREAM, 1, bytes(payload_len))))


def bench_link(baud: int, seconds: float, rt: Runtime) -> dict:
    image = build_image(rt)
    rng = np.random.default_rng(1)
    res: dict = {"baud": baud or None, "line_rate_Bps": baud / 10 if baud else None}
    with (
        VirtualBoard(baud=baud) as vb,
        Board.connect(vb.port, baud=baud or 921600, timeout=0.5) as b,
    ):
        b.load(image)
        per = b._steps_per_frame(image)
        x = rng.integers(-20, 60, (per * 4000, image.in_size)).astype(np.int8)
        # --- stream: full frames, stop-and-wait
        b0 = (b.counters.bytes_out, b.counters.bytes_in)
        steps = 0
        t0 = time.perf_counter()
        it = 0
        while time.perf_counter() - t0 < seconds:
            chunk = x[it * per : (it + 1) * per]
            b._run_frame(chunk, spec.MsgType.STREAM, 0, image)
            steps += per
            it += 1
        dt = time.perf_counter() - t0
        out_b = b.counters.bytes_out - b0[0]
        in_b = b.counters.bytes_in - b0[1]
        payload = steps * image.in_size
        res["stream"] = {
            "steps_per_frame": per,
            "frames": it,
            "inferences_per_s": steps / dt,
            "input_payload_Bps": payload / dt,
            "wire_out_Bps": out_b / dt,
            "wire_in_Bps": in_b / dt,
            "efficiency_payload": payload / dt / (baud / 10) if baud else None,
            "efficiency_wire": out_b / dt / (baud / 10) if baud else None,
        }
        # --- infer: one single-step INFER per round trip
        n = 0
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds / 2:
            b.infer(x[n : n + 1])
            n += 1
        dt = time.perf_counter() - t0
        res["infer_single"] = {"inferences_per_s": n / dt, "latency_ms": dt / n * 1e3}
        # --- echo: 2 KiB PING
        pl = bytes(range(256)) * 7 + bytes(range(250))
        n = 0
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds / 2:
            b.ping(pl)
            n += 1
        dt = time.perf_counter() - t0
        res["echo"] = {
            "payload_Bps_each_way": n * len(pl) / dt,
            "efficiency_each_way": n * len(pl) / dt / (baud / 10) if baud else None,
        }
        res["board_stats"] = b.stats()
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--bauds", default="115200,921600,0", help="comma list; 0 = unthrottled pty")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "bench_bridge.json"))
    args = ap.parse_args()
    rt = model()
    # peer in the same run: the host integer runtime on the same model
    xs = np.random.default_rng(2).integers(-20, 60, (2000, 64)).astype(np.int8)
    rt.reset()
    t0 = time.perf_counter()
    for xt in xs:
        rt.step(xt)
    host_step = len(xs) / (time.perf_counter() - t0)
    rt.reset()
    t0 = time.perf_counter()
    rt.run(xs)
    host_run = len(xs) / (time.perf_counter() - t0)
    rows = [bench_link(int(b), args.seconds, rt) for b in args.bauds.split(",")]
    out = {
        "machine": platform.platform(),
        "python": platform.python_version(),
        "model": "Linear 64->32 (int16 current) -> LIF -> Linear 32->4 (int8)",
        "frame_overhead_bytes": wire_len(0),
        "max_payload": spec.MAX_PAYLOAD,
        "host_runtime_steps_per_s": {"step": host_step, "run": host_run},
        "links": rows,
        "method": "stop-and-wait; line rate emulated in the firmware's POSIX HAL at 10 bits/byte",
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))

    from rich.console import Console
    from rich.table import Table

    t = Table(title="board link over a pty (C virtual board)")
    for c in (
        "link",
        "line B/s",
        "stream inf/s",
        "stream payload B/s",
        "stream eff.",
        "wire eff.",
        "1-step INFER/s",
        "echo B/s each way",
        "echo eff. (sum of both ways)",
        "vs host step()",
    ):
        t.add_column(c, justify="right")
    for r in rows:
        s, i, e = r["stream"], r["infer_single"], r["echo"]
        pct = lambda v: "-" if v is None else f"{100 * v:.1f}%"  # noqa: E731
        t.add_row(
            f"{r['baud']} baud" if r["baud"] else "pty (no limit)",
            "-" if not r["baud"] else f"{r['line_rate_Bps']:,.0f}",
            f"{s['inferences_per_s']:,.0f}",
            f"{s['input_payload_Bps']:,.0f}",
            pct(s["efficiency_payload"]),
            pct(s["efficiency_wire"]),
            f"{i['inferences_per_s']:,.0f}",
            f"{e['payload_Bps_each_way']:,.0f}",
            pct(None if e["efficiency_each_way"] is None else 2 * e["efficiency_each_way"]),
            f"{s['inferences_per_s'] / host_step:.2f}x",
        )
    Console(width=170).print(t)
    print(
        f"host integer runtime: {host_step:,.0f} steps/s (step), {host_run:,.0f} steps/s (run); wrote {args.out}"
    )


if __name__ == "__main__":
    main()
