"""Per-inference latency of the same int8 CNN in three runtimes, and the overhead of
neuroplast's backend wrappers over calling onnxruntime / LiteRT directly.

Model: the ``cnn`` recipe (conv 3x3 -> depthwise 3x3 -> pointwise -> maxpool -> linear,
8x8 input), QAT-prepared and calibrated; exported as ONNX QCDQ (onnxruntime fuses it
into QLinearConv/QGemm) and as int8 TFLite (LiteRT; XNNPACK by default). Batch 1, one
thread each, in one run:

  * neuroplast integer runtime (numpy)            ``Runtime(graph, "int").step(x)``
  * onnxruntime direct / ``OnnxBackend.run``
  * LiteRT direct (set_tensor/invoke/get_tensor) / ``LiteRTBackend.run``
    (native layout, and the neuroplast channels-first layout with its transpose)

Latency = the fastest of ``--repeats`` short blocks of ``--iters`` calls, blocks of all
cases interleaved round-robin (robust to bursts of background load on a shared CPU). Goal: backend overhead <= 10 % over the direct call.

    .venv/bin/python bench/bench_backends.py [--iters 50 --repeats 200]
Writes bench/results/backends.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402

OUT = Path(__file__).parent / "results" / "backends.json"


def latencies_us(cases: dict[str, Callable[[], object]], iters: int, repeats: int) -> dict:
    """Round-robin blocks of ``iters`` calls per case; the minimum block mean per case.
    Interleaving makes background load hit every case alike; the minimum is the least
    disturbed estimate of the cost of one call."""
    for fn in cases.values():
        for _ in range(min(iters, 50)):
            fn()  # warm up
    best = {k: np.inf for k in cases}
    for _ in range(repeats):
        for k, fn in cases.items():
            t0 = time.perf_counter()
            for _ in range(iters):
                fn()
            best[k] = min(best[k], (time.perf_counter() - t0) / iters)
    return {k: float(v * 1e6) for k, v in best.items()}


def big_cnn():  # noqa: ANN201 - torch module
    """A 3x32x32 int8 CNN (~60k MACs per layer scale) where kernels dominate latency."""
    import torch.nn as nn

    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(32, 32, 3, padding=1, groups=32),
        nn.ReLU(),
        nn.Conv2d(32, 64, 1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3, padding=1, groups=64),
        nn.ReLU(),
        nn.Conv2d(64, 64, 1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * 8 * 8, 10),
    )


def main() -> None:
    import torch
    from rich.console import Console

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--iters", type=int, default=50)
    p.add_argument("--repeats", type=int, default=200)
    a = p.parse_args()
    torch.set_num_threads(1)
    results = {}
    c = Console(width=max(Console().width, 120))
    models = {"cnn recipe 1x8x8": None, "cnn 3x32x32": big_cnn}
    for title, factory in models.items():
        res, extra = measure(
            factory, a.iters if factory is None else max(a.iters // 10, 5), a.repeats
        )
        results[title] = summarize(title, res, extra, c)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(
        json.dumps(
            {
                "models": results,
                "iters": a.iters,
                "repeats": a.repeats,
                "threads": 1,
                "machine": platform.platform(),
            },
            indent=2,
        )
    )
    c.print(f"wrote {OUT}")


def measure(factory, iters: int, repeats: int) -> tuple[dict, dict]:  # noqa: ANN001
    import onnxruntime as ort
    import torch
    from ai_edge_litert.interpreter import Interpreter

    from neuroplast.backends import LiteRTBackend, OnnxBackend
    from neuroplast.quant import quantize
    from neuroplast.quantize import calibrate, export_onnx, export_tflite, lower, prepare
    from neuroplast.quantize.recipes import build
    from neuroplast.runtime import Runtime

    torch.manual_seed(0)
    if factory is None:
        model, recipe = build("cnn")
        example = recipe.example_input()
    else:
        model = prepare(factory())
        example = torch.zeros(1, 3, 32, 32)
    calibrate(model, [torch.rand((128,) + tuple(example.shape[1:]))])
    g = lower(model, example)
    rng = np.random.default_rng(0)
    x = rng.random(tuple(example.shape), dtype=np.float32)
    x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    with tempfile.TemporaryDirectory() as td:
        onnx_path = export_onnx(model, example, Path(td) / "m.onnx")
        tfl_path = export_tflite(g, Path(td) / "m.tflite")
        sizes = {"onnx_qcdq": onnx_path.stat().st_size, "tflite_int8": tfl_path.stat().st_size}
        rt = Runtime(g, mode="int")
        rtf = Runtime(g, mode="float")
        xq = quantize(x, g.nodes["input"].quant)
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        sess = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
        ob = OnnxBackend(onnx_path, threads=1)
        ob_nc = OnnxBackend(onnx_path, threads=1, check=False)
        it = Interpreter(model_path=str(tfl_path), num_threads=1)
        it.allocate_tensors()
        ii, oi = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]

        def litert_direct() -> object:
            it.set_tensor(ii, x_nhwc)
            it.invoke()
            return it.get_tensor(oi)

        lb = LiteRTBackend(tfl_path, threads=1)
        lb_nc = LiteRTBackend(tfl_path, threads=1, check=False)
        lb_np = LiteRTBackend(tfl_path, threads=1, layout="neuroplast")
        cases = {
            "neuroplast int runtime": lambda: rt.step(xq),
            "neuroplast float runtime": lambda: rtf.step(x),
            "onnxruntime direct": lambda: sess.run(None, {"input": x}),
            "OnnxBackend.run": lambda: ob.run(x),
            "OnnxBackend.run (check=False)": lambda: ob_nc.run(x),
            "LiteRT direct": litert_direct,
            "LiteRTBackend.run": lambda: lb.run(x_nhwc),
            "LiteRTBackend.run (check=False)": lambda: lb_nc.run(x_nhwc),
            "LiteRTBackend.run (neuroplast layout)": lambda: lb_np.run(x),
        }
        agree = (
            len(
                {
                    int(np.argmax(rt.step(xq))),
                    int(np.argmax(ob.run(x))),
                    int(np.argmax(lb.run(x_nhwc))),
                }
            )
            == 1
        )
        res = latencies_us(cases, iters, repeats)
    return res, {"artifact_bytes": sizes, "predictions_agree": agree, "iters": iters}


def summarize(title: str, res: dict, extra: dict, c) -> dict:  # noqa: ANN001
    from rich.table import Table

    base = res["LiteRT direct"]
    ov = {
        "onnxruntime": res["OnnxBackend.run"] / res["onnxruntime direct"] - 1,
        "onnxruntime_check_false": res["OnnxBackend.run (check=False)"] / res["onnxruntime direct"]
        - 1,
        "litert": res["LiteRTBackend.run"] / base - 1,
        "litert_check_false": res["LiteRTBackend.run (check=False)"] / base - 1,
        "litert_neuroplast_layout": res["LiteRTBackend.run (neuroplast layout)"] / base - 1,
    }
    t = Table(title=f"{title}, int8, batch 1, 1 thread: latency per inference")
    for col in ("runtime", "µs / inference", "x LiteRT direct"):
        t.add_column(col, justify="right" if col != "runtime" else "left")
    for name, us in res.items():
        t.add_row(name, f"{us:.1f}", f"{us / base:.2f}")
    c.print(t)
    c.print(
        "backend overhead vs direct call: "
        + ", ".join(f"{k} {100 * v:+.1f} %" for k, v in ov.items())
        + " (goal <= 10 %)"
    )
    return {
        "latency_us": res,
        "ratio_vs_litert_direct": {k: v / base for k, v in res.items()},
        "backend_overhead": ov,
        "goal_overhead_le_10pct": bool(max(ov["onnxruntime"], ov["litert"]) <= 0.10),
        **extra,
    }


if __name__ == "__main__":
    main()
