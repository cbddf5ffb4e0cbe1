"""ONNX QCDQ export checked against onnxruntime on three architectures."""

from __future__ import annotations

import numpy as np
import pytest
from tlc_models import SHAPES, calibrated, random_inputs

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")

from neuroplast.errors import ExportError  # noqa: E402
from neuroplast.quantize.onnx_export import export_onnx  # noqa: E402


@pytest.mark.parametrize("name,bits", [("mlp", 8), ("cnn", 8), ("audio1d", 8), ("cnn", 4)])
def test_onnxruntime_matches_brevitas(tmp_path, name, bits):
    model, recipe = calibrated(name, bits)
    path = export_onnx(model, recipe.example_input(), tmp_path / f"{name}.onnx")
    m = onnx.load(str(path))
    init = {i.name for i in m.graph.initializer}
    assert [i.name for i in m.graph.input] == ["input"]
    assert not init & {i.name for i in m.graph.input}
    ops = {n.op_type for n in m.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    if name == "cnn":  # the depthwise conv keeps its groups
        groups = [
            a.i
            for n in m.graph.node
            if n.op_type == "Conv"
            for a in n.attribute
            if a.name == "group"
        ]
        assert 16 in groups
    x = random_inputs(SHAPES[name], n=64)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    for level in (
        ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    ):
        so = ort.SessionOptions()
        so.graph_optimization_level = level
        so.intra_op_num_threads = 1
        s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        out = s.run(None, {"input": x})[0]  # the batch axis is symbolic
        assert out.shape == ref.shape
        assert np.abs(out - ref).max() <= 1e-4


def test_bad_example_input_is_an_export_error(tmp_path):
    model, _ = calibrated("mlp")
    with pytest.raises(ExportError, match="QCDQ export failed"):
        export_onnx(model, torch.zeros(1, 3, 5), tmp_path / "bad.onnx")


@pytest.mark.parametrize("to", ["onnx", "tflite"])
def test_spiking_model_is_refused_before_export(tmp_path, to):
    """SNN -> ONNX used to fail inside Brevitas ("Bit width 16 is not supported"); the
    QAT model is now lowered and checked against the format's table first."""
    from neuroplast.errors import UnsupportedError
    from neuroplast.quantize import export
    from neuroplast.quantize.recipes import build

    model, recipe = build("snn")
    with pytest.raises(UnsupportedError) as ei:
        export(model, tmp_path / f"snn.{to}", to=to, example_input=recipe.example_input())
    assert str(ei.value).startswith(
        f"node 'lif1' (LIF) cannot run on {to}: "
        f"{'ONNX' if to == 'onnx' else 'TFLite'} has no stateful spiking neuron op; "
        "export NIR for neuromorphic runtimes, or run it in the neuroplast runtime"
    )
    assert not list(tmp_path.iterdir())
