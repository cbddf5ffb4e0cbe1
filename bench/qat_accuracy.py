"""QAT accuracy on a real small task (scikit-learn digits, 1797 8x8 images, 10 classes)
and artifact sizes.

For each architecture (``mlp``, ``cnn``, ``audio1d`` recipes) in one run:
  * fp32: the float net trained with Adam (the baseline);
  * int8 (w8/a8) and 4-bit weights (w4/a8), and 2-bit weights (w2/a8): QAT fine-tuning
    started from the fp32 weights;
accuracy is measured on the held-out 25 % three ways for the quantized nets: the
Brevitas QAT model, the neuroplast integer runtime (lowered graph), and LiteRT running
the exported int8 .tflite. Goals: int8 within 1 point of fp32, w4 within 3 points.

Sizes: fp32 ONNX (plain torch export) vs int8 TFLite for the same model.

    .venv/bin/python bench/qat_accuracy.py [--epochs 40 --qat-epochs 15]
Writes bench/results/qat.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from neuroplast.export.tflite import export_tflite  # noqa: E402
from neuroplast.quant import quantize  # noqa: E402
from neuroplast.quantize import evaluate, lower, prepare, train  # noqa: E402
from neuroplast.quantize.onnx_export import export_float_onnx  # noqa: E402
from neuroplast.quantize.recipes import digits_data, get_recipe  # noqa: E402
from neuroplast.runtime import Runtime  # noqa: E402

OUT = Path(__file__).parent / "results" / "qat.json"


def litert_accuracy(path: Path, x: np.ndarray, y: np.ndarray) -> float:
    from neuroplast.backends import LiteRTBackend

    be = LiteRTBackend(path, layout="neuroplast")
    return float((be.run(x).argmax(-1) == y).mean())


def run_arch(name: str, epochs: int, qat_epochs: int, seed: int, tmp: Path) -> dict:
    from rich.progress import track

    r = get_recipe(name)
    (xtr, ytr), (xte, yte) = digits_data(name, seed=seed)
    torch.manual_seed(seed)
    fp32 = r.build()
    t0 = time.perf_counter()
    train(fp32, (xtr, ytr), epochs=epochs, lr=3e-3, progress=False, seed=seed)
    res: dict = {
        "fp32": {"accuracy": evaluate(fp32, (xte, yte)), "train_s": time.perf_counter() - t0}
    }
    onnx32 = export_float_onnx(fp32, r.example_input(), tmp / f"{name}_fp32.onnx")
    xte_np, yte_np = xte.numpy(), yte.numpy()
    for wb in track((8, 4, 2), description=f"{name}: QAT w8/w4/w2"):
        torch.manual_seed(seed)
        q = prepare(fp32, weight_bits=wb, act_bits=8)
        t0 = time.perf_counter()
        train(q, (xtr, ytr), epochs=qat_epochs, lr=1e-3, progress=False, seed=seed)
        entry = {"accuracy": evaluate(q, (xte, yte)), "train_s": time.perf_counter() - t0}
        g = lower(q, r.example_input())
        xq = quantize(xte_np, g.nodes["input"].quant)
        entry["accuracy_int_runtime"] = float(
            (Runtime(g, mode="int").step(xq).argmax(-1) == yte_np).mean()
        )
        tfl = export_tflite(g, tmp / f"{name}_w{wb}.tflite")
        entry["accuracy_litert"] = litert_accuracy(tfl, xte_np, yte_np)
        entry["delta_vs_fp32_points"] = 100 * (entry["accuracy"] - res["fp32"]["accuracy"])
        entry["tflite_bytes"] = tfl.stat().st_size
        res[f"w{wb}a8"] = entry
    res["fp32"]["onnx_bytes"] = onnx32.stat().st_size
    res["int8_tflite_over_fp32_onnx"] = res["w8a8"]["tflite_bytes"] / res["fp32"]["onnx_bytes"]
    return res


def run_snn(epochs: int, qat_epochs: int, seed: int) -> dict:
    """The ``snn`` recipe (rate-coded spikes, Linear+LIF x2, spike-count readout): float
    LIF with surrogate gradients vs QAT, accuracy also from the integer runtime (the
    lowered graph runs the integer LIF recurrence; TFLite has no LIF)."""
    r = get_recipe("snn")
    (xtr, ytr), (xte, yte) = digits_data("snn", seed=seed)
    torch.manual_seed(seed)
    fp32 = r.build()
    t0 = time.perf_counter()
    train(fp32, (xtr, ytr), epochs=epochs // 2, lr=3e-3, progress=False, seed=seed, time_major=True)
    res: dict = {
        "fp32": {
            "accuracy": evaluate(fp32, (xte, yte), time_major=True),
            "train_s": time.perf_counter() - t0,
        }
    }
    for wb in (8, 4, 2):
        torch.manual_seed(seed)
        q = prepare(fp32, weight_bits=wb, act_bits=8)
        t0 = time.perf_counter()
        train(q, (xtr, ytr), epochs=qat_epochs, lr=1e-3, progress=False, seed=seed, time_major=True)
        entry = {
            "accuracy": evaluate(q, (xte, yte), time_major=True),
            "train_s": time.perf_counter() - t0,
        }
        g = lower(q, r.example_input())
        counts = Runtime(g, mode="int").run(xte.numpy().astype(np.int8)).sum(0)
        entry["accuracy_int_runtime"] = float((counts.argmax(-1) == yte.numpy()).mean())
        entry["delta_vs_fp32_points"] = 100 * (entry["accuracy"] - res["fp32"]["accuracy"])
        res[f"w{wb}a8"] = entry
    return res


def size_row(tmp: Path) -> dict:
    """A larger MLP (64-256-256-10, 83k params) where per-tensor metadata is negligible."""
    from neuroplast.quantize import calibrate

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(64, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, 10),
    )
    f32 = export_float_onnx(net, torch.zeros(1, 64), tmp / "big_fp32.onnx")
    q = prepare(net)
    calibrate(q, [torch.rand(256, 64)])
    t8 = export_tflite(lower(q, torch.zeros(1, 64)), tmp / "big_int8.tflite")
    return {
        "params": sum(p.numel() for p in net.parameters()),
        "fp32_onnx_bytes": f32.stat().st_size,
        "int8_tflite_bytes": t8.stat().st_size,
        "ratio": t8.stat().st_size / f32.stat().st_size,
    }


def main() -> None:
    from rich.console import Console
    from rich.table import Table

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--qat-epochs", type=int, default=15)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--archs", default="mlp,cnn,audio1d")
    p.add_argument("--no-snn", dest="snn", action="store_false", help="skip the spiking net")
    a = p.parse_args()
    torch.set_num_threads(1)
    results: dict = {}
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        for name in a.archs.split(","):
            results[name] = run_arch(name, a.epochs, a.qat_epochs, a.seed, tmp)
        sizes = size_row(tmp)
    if a.snn:
        results["snn"] = run_snn(a.epochs, a.qat_epochs, a.seed)
    t = Table(title="QAT on sklearn digits (test accuracy, %)")
    for col in (
        "arch",
        "fp32",
        "int8 QAT",
        "int8 runtime",
        "int8 LiteRT",
        "w4 QAT",
        "w4 LiteRT",
        "w2 QAT",
        "int8 - fp32",
        "w4 - fp32",
    ):
        t.add_column(col, justify="right")
    for name, r in results.items():
        if name == "snn":
            continue
        t.add_row(
            name,
            f"{100 * r['fp32']['accuracy']:.2f}",
            f"{100 * r['w8a8']['accuracy']:.2f}",
            f"{100 * r['w8a8']['accuracy_int_runtime']:.2f}",
            f"{100 * r['w8a8']['accuracy_litert']:.2f}",
            f"{100 * r['w4a8']['accuracy']:.2f}",
            f"{100 * r['w4a8']['accuracy_litert']:.2f}",
            f"{100 * r['w2a8']['accuracy']:.2f}",
            f"{r['w8a8']['delta_vs_fp32_points']:+.2f}",
            f"{r['w4a8']['delta_vs_fp32_points']:+.2f}",
        )
    c = Console(width=max(Console().width, 150))
    c.print(t)
    if "snn" in results:
        r = results["snn"]
        st = Table(title="spiking net (rate-coded digits, 8 steps, LIF): test accuracy, %")
        for col in (
            "fp32 (float LIF)",
            "int8 QAT",
            "int8 int-runtime",
            "w4 QAT",
            "w4 int-runtime",
            "w2 QAT",
            "int8 - fp32",
            "w4 - fp32",
        ):
            st.add_column(col, justify="right")
        st.add_row(
            f"{100 * r['fp32']['accuracy']:.2f}",
            f"{100 * r['w8a8']['accuracy']:.2f}",
            f"{100 * r['w8a8']['accuracy_int_runtime']:.2f}",
            f"{100 * r['w4a8']['accuracy']:.2f}",
            f"{100 * r['w4a8']['accuracy_int_runtime']:.2f}",
            f"{100 * r['w2a8']['accuracy']:.2f}",
            f"{r['w8a8']['delta_vs_fp32_points']:+.2f}",
            f"{r['w4a8']['delta_vs_fp32_points']:+.2f}",
        )
        c.print(st)
    s = Table(title="artifact size: int8 TFLite / fp32 ONNX")
    for col in ("model", "fp32 ONNX bytes", "int8 TFLite bytes", "ratio"):
        s.add_column(col, justify="right")
    for name, r in results.items():
        if name == "snn":
            continue
        s.add_row(
            name,
            f"{r['fp32']['onnx_bytes']:,}",
            f"{r['w8a8']['tflite_bytes']:,}",
            f"{r['int8_tflite_over_fp32_onnx']:.3f}",
        )
    s.add_row(
        f"mlp 64-256-256-10 ({sizes['params']:,} params)",
        f"{sizes['fp32_onnx_bytes']:,}",
        f"{sizes['int8_tflite_bytes']:,}",
        f"{sizes['ratio']:.3f}",
    )
    c.print(s)
    goals = {
        name: {
            "int8_within_1_point": r["w8a8"]["delta_vs_fp32_points"] >= -1.0,
            "w4_within_3_points": r["w4a8"]["delta_vs_fp32_points"] >= -3.0,
        }
        for name, r in results.items()
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(
        json.dumps(
            {
                "task": f"sklearn digits, 75/25 split (seed {a.seed}), 10 classes",
                "epochs_fp32": a.epochs,
                "epochs_qat": a.qat_epochs,
                "results": results,
                "size_large_mlp": sizes,
                "goals_met": goals,
                "machine": platform.platform(),
                "torch_threads": 1,
            },
            indent=2,
        )
    )
    c.print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
