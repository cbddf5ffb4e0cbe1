"""Run two artifacts (ONNX, TFLite, NIR, bundle, QAT checkpoint) on the same input and
measure how far apart their outputs are (in real units and in output LSBs).

Inputs are given in neuroplast's layout (channels first, batch first); each runner
converts to its runtime's layout and returns dequantized float outputs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neuroplast.errors import DataError, ExportError

__all__ = ["Artifact", "open_artifact", "compare", "CompareResult"]


@dataclass(frozen=True)
class Artifact:
    """``run(x)``: float outputs for a batch; ``out_scale``: output LSB (None if float)."""

    path: str
    kind: str
    run: Callable[[np.ndarray], np.ndarray]
    out_scale: float | None


def open_artifact(path: str | os.PathLike) -> Artifact:
    """Open an artifact: a ``.pt`` QAT checkpoint (a recipe's runs in torch, a user
    model's stored graph in the integer runtime), or any model file
    :func:`neuroplast.formats.open_model` runs (bundle, ``.nir``, ``.onnx``, ``.tflite``) in
    its own engine. A stateful runtime runs each row of the batch as one step from reset."""
    p = Path(path)
    if not p.exists():
        raise ExportError(f"artifact {str(p)!r} does not exist")
    ck = None
    if p.suffix == ".pt":
        from neuroplast.quantize.recipes import open_checkpoint

        ck = open_checkpoint(p)
    if ck is not None and ck.model is not None:
        model = ck.model
        want = tuple(ck.example_input().shape[1:])

        def run_pt(x: np.ndarray) -> np.ndarray:
            import torch

            if tuple(x.shape[1:]) != want:
                raise DataError(
                    f"{p.name} takes inputs (B, {', '.join(map(str, want))}); got {x.shape}"
                )
            with torch.no_grad():
                return model(torch.as_tensor(x, dtype=torch.float32)).numpy()

        return Artifact(str(p), "qat", run_pt, None)
    from neuroplast.formats import open_model
    from neuroplast.runtime import Runtime

    m = Runtime(ck.graph, mode="int") if ck is not None else open_model(p)
    if hasattr(m, "step"):  # the neuroplast runtime (bundle or graph format)
        from neuroplast.quant import dequantize

        oq = m.kernels[m.outputs[0]].out_quant
        quantized = m.mode == "int" and oq is not None

        def run_runtime(x: np.ndarray) -> np.ndarray:
            m.reset()
            y = m.step(x)
            return dequantize(y, oq) if quantized else y

        kind = "bundle" if p.is_dir() or p.suffix == ".zip" else p.suffix[1:]
        return Artifact(
            str(p), f"{kind}/{m.mode}", run_runtime, float(oq.scale) if quantized else None
        )
    if m.name == "litert":
        in_s, in_z = m._in.get("quantization", (0.0, 0))
        out_s, out_z = m.output_quant

        def run_tfl(x: np.ndarray) -> np.ndarray:
            if m.input_dtype == np.int8:
                x = np.clip(np.round(x / in_s) + in_z, -128, 127).astype(np.int8)
            y = m.run(x)
            return (y.astype(np.float32) - out_z) * out_s if y.dtype == np.int8 else y

        return Artifact(str(p), "tflite", run_tfl, float(out_s) if out_s else None)
    return Artifact(str(p), "onnx", m.run, None)


@dataclass(frozen=True)
class CompareResult:
    max_abs: float
    mean_abs: float
    max_lsb: float | None
    argmax_agree: float
    n: int


def compare(a: str | os.PathLike, b: str | os.PathLike, x: Any) -> CompareResult:
    """Run artifacts ``a`` and ``b`` on batch ``x``; return their output distance."""
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise DataError(f"input dtype {x.dtype} is not numeric")
    x = x.astype(np.float32)
    A, B = open_artifact(a), open_artifact(b)
    ya, yb = np.asarray(A.run(x), np.float32), np.asarray(B.run(x), np.float32)
    if ya.shape != yb.shape:
        if ya.size == yb.size:
            yb = yb.reshape(ya.shape)
        else:
            raise DataError(
                f"outputs differ in shape: {ya.shape} ({A.kind}) vs {yb.shape} ({B.kind})"
            )
    d = np.abs(ya - yb)
    scale = A.out_scale or B.out_scale
    agree = float(np.mean(ya.reshape(len(ya), -1).argmax(1) == yb.reshape(len(yb), -1).argmax(1)))
    return CompareResult(
        float(d.max()),
        float(d.mean()),
        float(d.max() / scale) if scale else None,
        agree,
        int(len(ya)),
    )
