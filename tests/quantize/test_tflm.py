"""CNNs on microcontrollers the usual way: the int8 TFLite export run in the TensorFlow
Lite Micro interpreter (PyPI ``tflite-micro``: TFLM's reference kernels built for the host).

TFLM's reference kernels requantize with gemmlowp's double rounding
(SaturatingRoundingDoublingHighMul, then RoundingDivideByPOT); the neuroplast integer
runtime uses LiteRT's single rounding. So TFLM is checked two ways: bit for bit against
the integer runtime with its requantization replaced by an independent double-rounding
reference (written here from the TFLite reference code's definition), and within 1 LSB
(at exact ties only) against the unmodified runtime."""

from __future__ import annotations

import numpy as np
import pytest
from tflite_micro.python.tflite_micro import runtime as tflm
from tlc_models import SHAPES, calibrated, random_inputs, to_nhwc

from neuroplast.quant import quantize
from neuroplast.runtime import Runtime


def requantize_double(acc, qm, shift):
    """TFLite reference MultiplyByQuantizedMultiplier (no TFLITE_SINGLE_ROUNDING):
    x = acc * 2^max(shift, 0); hi = round-half-away((x * qm) / 2^31) (SaturatingRoundingDoublingHighMul);
    then divide by 2^max(-shift, 0) rounding half away from zero (RoundingDivideByPOT)."""
    acc, qm, shift = (np.asarray(v, np.int64) for v in (acc, qm, shift))
    x = acc * (np.int64(1) << np.maximum(shift, 0))
    ab = x * qm
    nudge = np.where(ab >= 0, np.int64(1 << 30), np.int64(1 - (1 << 30)))
    s = ab + nudge
    hi = np.where(s >= 0, s // (1 << 31), -((-s) // (1 << 31)))  # C division truncates
    right = np.maximum(-shift, 0)
    mask = (np.int64(1) << right) - 1
    threshold = (mask >> 1) + (hi < 0)
    return (hi >> right) + ((hi & mask) > threshold)


def run_tflm(model: bytes, x: np.ndarray) -> np.ndarray:
    it = tflm.Interpreter.from_bytes(model)
    out = []
    for k in range(len(x)):
        it.set_input(x[k : k + 1], 0)
        it.invoke()
        out.append(it.get_output(0))
    return np.concatenate(out)


def _tflite(graph):
    from neuroplast.export.tflite import tflite_bytes

    return tflite_bytes(graph, io="int8")


@pytest.mark.parametrize("name", ["cnn", "mlp", "audio1d"])
def test_recipe_in_tflm_matches_the_integer_runtime(name, monkeypatch):
    from neuroplast.quantize import lower

    model, recipe = calibrated(name, 8)
    g = lower(model, recipe.example_input())
    xq = quantize(random_inputs(SHAPES[name], n=150, seed=4), g.nodes["input"].quant)
    out_q = g.nodes[g.outputs[0]].out_q
    shift = 0 if out_q.signed else 128  # TFLite int8 codes of an unsigned neuroplast tensor
    got = run_tflm(_tflite(g), to_nhwc(xq).astype(np.int8)).astype(np.int64)
    single = Runtime(g, mode="int", backend="numpy").step(xq).astype(np.int64) - shift
    d = np.abs(got.reshape(single.shape) - single)
    assert d.max() <= 1 and np.mean(d > 0) < 0.05  # ties only
    import neuroplast.runtime.kernels as kernels

    # the numpy kernels: the compiled plan does not see the patched requantization
    monkeypatch.setattr(kernels, "requantize", requantize_double)
    double = Runtime(g, mode="int", backend="numpy").step(xq).astype(np.int64) - shift
    np.testing.assert_array_equal(got.reshape(double.shape), double)
    if name == "cnn":
        assert np.count_nonzero(d) > 0  # the rounding schemes really differ on this model
