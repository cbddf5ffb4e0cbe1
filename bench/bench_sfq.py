"""SFQ case study: deep XOR trained, exported to an SFQ netlist, simulated pulse by pulse.

Measured in one run:
  * the p(I_bias) curve: fresh stochastic-RCSJ sweep + probit fit vs the stored
    DEFAULT_PCURVE (I50, sigma);
  * XOR 2-4-4-1 and 2-4-4-4-1: all four patterns, output rates, classification margin
    (min rate | XOR=1 - max rate | XOR=0), JJ count, energy per inference (switching
    events x Ic x Phi0), pipeline latency and inference time, at 20 GHz;
  * peer in the same run: the analytic mean-field rate model the network was trained
    with (ratio simulated / analytic per pattern);
  * the timing-limited maximum clock and a run at it;
  * simulator speed (pulse events / s).

    .venv/bin/python bench/bench_sfq.py [--cycles 1000]
Writes bench/results/sfq.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from neuroplast.quantize.sfq import DEFAULT_PCURVE, check_timing, simulate  # noqa: E402
from neuroplast.quantize.sfq.export import to_netlist  # noqa: E402
from neuroplast.quantize.sfq.pcurve import fit_default_pcurve  # noqa: E402
from neuroplast.quantize.sfq.xor import run_xor_case_study, train_xor, xor_graph  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cycles", type=int, default=1000)
    args = ap.parse_args()
    out: dict = {"n_cycles": args.cycles}

    t0 = time.perf_counter()
    fit = fit_default_pcurve(n_points=25, n_trials=4000, seed=0)
    out["pcurve"] = {
        "refit": {"i50_ua": fit.i50_ua, "sigma_ua": fit.sigma_ua},
        "stored": {"i50_ua": DEFAULT_PCURVE.i50_ua, "sigma_ua": DEFAULT_PCURVE.sigma_ua},
        "seconds": time.perf_counter() - t0,
        "source": DEFAULT_PCURVE.source,
    }

    cases = {}
    for hidden in ((4, 4), (4, 4, 4)):
        t0 = time.perf_counter()
        rep = run_xor_case_study(hidden=hidden, n_cycles=args.cycles, clock_ghz=20.0)
        rep["seconds"] = time.perf_counter() - t0
        for row in rep["patterns"]:
            mf = row["mean_field_rate"]
            row["sim_over_analytic"] = row["rate"] / mf if mf > 1e-9 else None
        cases["2-" + "-".join(map(str, hidden)) + "-1"] = rep
    out["xor"] = cases

    # fastest clock the timing check allows for the 2-4-4-1 net, and a run there
    g = xor_graph(train_xor((4, 4), seed=0))
    nl = to_netlist(g, clock_ghz=20.0)
    crit = check_timing(nl)["critical_ps"]
    f_max = float(np.floor(1000.0 / crit))
    rates = []
    t0 = time.perf_counter()
    events = 0
    for pat in ((0, 0), (0, 1), (1, 0), (1, 1)):
        r = simulate(nl, {"in0": float(pat[0]), "in1": float(pat[1])}, args.cycles, clock_ghz=f_max)
        rates.append(r.output_rates[nl.outputs[0]])
        events += r.events
    dt = time.perf_counter() - t0
    out["max_clock"] = {
        "critical_path_ps": crit,
        "clock_ghz": f_max,
        "rates": rates,
        "correct": [int(x > 0.5) for x in rates] == [0, 1, 1, 0],
        "latency_ps_per_layer": 1000.0 / f_max,
    }
    out["simulator"] = {"events": events, "seconds": dt, "events_per_s": events / dt}

    try:
        from rich.console import Console
        from rich.table import Table

        t = Table(title="SFQ deep-XOR case study (pulse-level simulation)")
        for c in (
            "net",
            "rates 00/01/10/11",
            "analytic",
            "margin",
            "JJ",
            "E/inf (J)",
            "latency ps",
        ):
            t.add_column(c)
        for name, rep in cases.items():
            t.add_row(
                name,
                " ".join(f"{r['rate']:.3f}" for r in rep["patterns"]),
                " ".join(f"{r['mean_field_rate']:.3f}" for r in rep["patterns"]),
                f"{rep['margin']:.3f}",
                str(rep["jj_count"]),
                f"{rep['energy_per_inference_j']:.3g}",
                f"{rep['pipeline_latency_ps']:.0f}",
            )
        Console().print(t)
        Console().print(
            f"p(I) refit I50={fit.i50_ua:.3f} uA sigma={fit.sigma_ua:.3f} uA "
            f"(stored {DEFAULT_PCURVE.i50_ua}/{DEFAULT_PCURVE.sigma_ua}); "
            f"max clock {f_max:.0f} GHz correct={out['max_clock']['correct']}; "
            f"simulator {out['simulator']['events_per_s']:.3g} events/s"
        )
    except ImportError:
        print(json.dumps(out, indent=1))

    res = Path(__file__).resolve().parent / "results" / "sfq.json"
    res.parent.mkdir(exist_ok=True)
    res.write_text(json.dumps(out, indent=1))
    print(f"wrote {res}")


if __name__ == "__main__":
    main()
