"""NIR interchange with real peers: agreement and speed, neuroplast vs snnTorch vs Norse.

A fixed-random 64-128-10 LIF network (dt = 1e-4 s, tau 2 ms / 4 ms) runs T steps of
30 % Poisson input spikes three ways in one run:
  * neuroplast float runtime (reference),
  * snnTorch ``import_from_nir`` of our ``r_mode="spec"`` export,
  * Norse ``from_nir(dt=1e-4)`` of our ``r_mode="fold"`` export;
and the reverse direction: a network built in snnTorch, exported with its
``export_to_nir`` (then ``snntorch.utils.reset``: the export traces the net and leaves its
hidden membranes non-zero), imported by ``neuroplast.quantize.nir.read`` and run by
neuroplast. Also the time-step trap: the same net at dt = 1e-3 s exported as is (snnTorch
steps at 1e-4 s; export warns) and with ``time_step=1e-4``.
Reported: fraction of identical spikes (all neurons x steps), max membrane difference
(relative to max(1, |v|)), wall time per step, and ratios to neuroplast.

    .venv/bin/python bench/bench_nir.py [--steps 1000]
Writes bench/results/nir.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from neuroplast.graph import LIF, Graph, Input, Linear  # noqa: E402
from neuroplast.quantize.nir import export_nir, read  # noqa: E402
from neuroplast.runtime import Runtime  # noqa: E402

DT = 1e-4


def _net(dt: float = DT) -> Graph:
    rng = np.random.default_rng(0)
    return Graph.sequential(
        [
            ("x", Input(shape=(64,))),
            (
                "fc1",
                Linear(
                    weight=rng.normal(0, 0.5, (128, 64)).astype(np.float32),
                    bias=rng.normal(0, 0.05, 128).astype(np.float32),
                ),
            ),  # fmt: skip
            ("n1", LIF(tau_mem=np.float32(2e-3), v_th=np.float32(1.0))),
            (
                "fc2",
                Linear(
                    weight=rng.normal(0, 0.4, (10, 128)).astype(np.float32),
                    bias=np.zeros(10, np.float32),
                ),
            ),  # fmt: skip
            ("n2", LIF(tau_mem=np.float32(4e-3), v_th=np.float32(1.0))),
        ],
        dt=dt,
    )


def _mem_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b) / np.maximum(1.0, np.abs(b))))


def main() -> None:
    import nir
    import norse.torch as nt
    import snntorch as snn
    import torch
    from snntorch import utils as snn_utils
    from snntorch.export_nir import export_to_nir
    from snntorch.import_nir import import_from_nir

    torch.set_num_threads(1)
    logging.getLogger().setLevel(logging.ERROR)
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=1000)
    steps = ap.parse_args().steps
    g = _net()
    x = (np.random.default_rng(1).random((steps, 64)) < 0.3).astype(np.float32)
    tmp = Path(tempfile.mkdtemp())
    out: dict = {"steps": steps, "net": "64-128-10 LIF, dt=1e-4 s"}

    # neuroplast reference (step by step, to read membranes; and vectorized run for speed)
    rt = Runtime(g)
    ref_s, ref_v = [], []
    for t in range(steps):
        ref_s.append(np.asarray(rt.step(x[t])).ravel())
        ref_v.append(np.asarray(rt.state["n1"].v).ravel())
    ref_s, ref_v = np.array(ref_s), np.array(ref_v)
    t0 = time.perf_counter()
    Runtime(g).run(x)
    t_np = (time.perf_counter() - t0) / steps
    rows = {"neuroplast": {"spikes": int(ref_s.sum()), "s_per_step": t_np}}

    # snnTorch runs our spec-mode file
    net = import_from_nir(nir.read(str(export_nir(g, tmp / "spec.nir"))))
    s_out, v_out = [], []
    t0 = time.perf_counter()
    with torch.no_grad():
        for t in range(steps):
            o = net(torch.from_numpy(x[t : t + 1]))
            s_out.append((o[0] if isinstance(o, tuple) else o).numpy().ravel())
            v_out.append(net.n1.mem.numpy().ravel())
    dt_s = (time.perf_counter() - t0) / steps
    s_out, v_out = np.array(s_out), np.array(v_out)
    rows["snntorch"] = {"spikes": int(s_out.sum()), "agreement": float((s_out == ref_s).mean()),
                        "max_mem_err": _mem_err(v_out, ref_v), "s_per_step": dt_s}  # fmt: skip

    # Norse runs our fold-mode file
    mod = nt.from_nir(nir.read(str(export_nir(g, tmp / "fold.nir", r_mode="fold"))), dt=DT)
    state, s_out, v_out = None, [], []
    t0 = time.perf_counter()
    with torch.no_grad():
        for t in range(steps):
            o, state = mod(torch.from_numpy(x[t : t + 1]), state)
            s_out.append(o.numpy().ravel())
            st = state.state["n1"]
            st = st if hasattr(st, "v") else st[0]
            v_out.append(st.v.numpy().ravel())
    dt_n = (time.perf_counter() - t0) / steps
    s_out, v_out = np.array(s_out), np.array(v_out)
    rows["norse"] = {"spikes": int(s_out.sum()), "agreement": float((s_out == ref_s).mean()),
                     "max_mem_err": _mem_err(v_out, ref_v), "s_per_step": dt_n}  # fmt: skip

    # reverse: snnTorch-built network -> export_to_nir -> neuroplast
    torch.manual_seed(0)
    kw = dict(init_hidden=True, reset_mechanism="zero", reset_delay=False)
    snet = torch.nn.Sequential(
        torch.nn.Linear(64, 128),
        snn.Leaky(beta=torch.full((128,), 0.95), threshold=torch.ones(128), **kw),
        torch.nn.Linear(128, 10),
        snn.Leaky(beta=torch.full((10,), 0.9), threshold=torch.ones(10), output=True, **kw),
    )
    with torch.no_grad():
        snet[0].weight.mul_(4.0)
        snet[2].weight.mul_(4.0)
    nir.write(str(tmp / "snn.nir"), export_to_nir(snet, torch.zeros(1, 64), ignore_dims=[0]))
    snn_utils.reset(snet)
    theirs = []
    with torch.no_grad():
        for t in range(steps):
            o = snet(torch.from_numpy(x[t : t + 1]))
            theirs.append((o[0] if isinstance(o, tuple) else o).numpy().ravel())
    theirs = np.array(theirs)
    g2 = read(tmp / "snn.nir")
    ours = np.asarray(Runtime(g2).run(x)).reshape(theirs.shape)
    out["import_snntorch_export"] = {"spikes_snntorch": int(theirs.sum()), "spikes_neuroplast": int(ours.sum()),
                                     "agreement": float((ours == theirs).mean()), "dt_inferred": g2.dt}  # fmt: skip
    # the time-step trap: a dt = 1e-3 s net read by snnTorch (1e-4 s), and the fix
    g3 = _net(dt=1e-3)
    ref3 = np.asarray(Runtime(g3).run(x)).reshape(steps, -1)
    trap = {"spikes_neuroplast": int(ref3.sum())}
    for key, ts in (("default_time_step", None), ("time_step_1e-4", 1e-4)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            path = export_nir(g3, tmp / f"{key}.nir", time_step=ts)
        net3, got = import_from_nir(nir.read(str(path))), []
        with torch.no_grad():
            for t in range(steps):
                o = net3(torch.from_numpy(x[t : t + 1]))
                got.append((o[0] if isinstance(o, tuple) else o).numpy().ravel())
        trap[key] = {"snntorch_agreement": float((np.array(got) == ref3).mean()),
                     "warned": any("snnTorch" in str(w.message) for w in caught)}  # fmt: skip
    out["dt_1e-3_in_snntorch"] = trap
    for k in ("snntorch", "norse"):
        rows[k]["time_ratio_vs_neuroplast"] = rows[k]["s_per_step"] / t_np
    out["runs"] = rows

    try:
        from rich.console import Console
        from rich.table import Table

        t = Table(title=f"NIR peers, {steps} steps (reference: neuroplast float runtime)")
        for c in ("runner", "spikes", "spike agreement", "max mem err", "us/step", "x neuroplast"):
            t.add_column(c)
        for k, r in rows.items():
            t.add_row(k, str(r["spikes"]), f"{r.get('agreement', 1.0):.4f}", f"{r.get('max_mem_err', 0.0):.1e}",
                      f"{r['s_per_step'] * 1e6:.1f}", f"{r.get('time_ratio_vs_neuroplast', 1.0):.1f}")  # fmt: skip
        Console().print(t)
        imp = out["import_snntorch_export"]
        Console().print(f"snnTorch export_to_nir -> neuroplast: agreement {imp['agreement']:.4f} "
                        f"({imp['spikes_neuroplast']} vs {imp['spikes_snntorch']} spikes, dt {imp['dt_inferred']:.1e})")  # fmt: skip
        tr = out["dt_1e-3_in_snntorch"]
        Console().print(f"dt = 1e-3 s net in snnTorch: default export {tr['default_time_step']['snntorch_agreement']:.4f} "
                        f"(warned: {tr['default_time_step']['warned']}), time_step=1e-4 "
                        f"{tr['time_step_1e-4']['snntorch_agreement']:.4f}")  # fmt: skip
    except ImportError:
        print(json.dumps(out, indent=1))
    res = Path(__file__).resolve().parent / "results" / "nir.json"
    res.write_text(json.dumps(out, indent=1))
    print(f"wrote {res}")


if __name__ == "__main__":
    main()
