"""neuroplast.backends: onnxruntime / LiteRT wrappers agree with calling those
runtimes directly, and with the neuroplast integer runtime."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from tlc_models import SHAPES, calibrated, random_inputs, to_nhwc

ort = pytest.importorskip("onnxruntime")
litert = pytest.importorskip("ai_edge_litert.interpreter")

from neuroplast.backends import LiteRTBackend, OnnxBackend, available_backends, load_backend  # noqa: E402
from neuroplast.errors import DataError, GraphError  # noqa: E402
from neuroplast.quant import dequantize, quantize  # noqa: E402
from neuroplast.runtime import Runtime  # noqa: E402


@pytest.fixture(scope="module")
def cnn_artifacts(tmp_path_factory):
    from neuroplast.quantize import export_onnx, export_tflite, lower

    d = tmp_path_factory.mktemp("backends")
    model, recipe = calibrated("cnn")
    g = lower(model, recipe.example_input())
    return (
        g,
        export_onnx(model, recipe.example_input(), d / "cnn.onnx"),
        export_tflite(g, d / "cnn.tflite", io="float"),
    )


def test_backends_package_does_not_import_torch():
    import subprocess

    code = "import sys, neuroplast.backends; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    assert available_backends() == {"onnxruntime": True, "litert": True}


def test_onnx_backend_equals_direct_session(cnn_artifacts):
    _, onnx_path, _ = cnn_artifacts
    x = random_inputs(SHAPES["cnn"], n=20)
    be = load_backend(onnx_path)
    assert isinstance(be, OnnxBackend) and be.input_shape == SHAPES["cnn"]
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    direct = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
    assert np.array_equal(be.run(x), direct.run(None, {"input": x})[0])
    assert np.array_equal(be.run(x[0]), direct.run(None, {"input": x[:1]})[0])
    with pytest.raises(DataError, match="NaN"):
        be.run(np.full_like(x, np.nan))
    with pytest.raises(DataError, match="shape"):
        be.run(np.zeros((2, 3, 8, 8), np.float32))


def test_litert_backend_equals_direct_interpreter(cnn_artifacts):
    _, _, tfl = cnn_artifacts
    x = random_inputs(SHAPES["cnn"], n=20)
    be = LiteRTBackend(tfl, layout="neuroplast")
    it = litert.Interpreter(model_path=str(tfl), num_threads=1)
    it.allocate_tensors()
    i, o = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]
    direct = []
    for xi in to_nhwc(x):
        it.set_tensor(i, xi[None])
        it.invoke()
        direct.append(it.get_tensor(o))
    assert np.array_equal(be.run(x), np.concatenate(direct))
    native = load_backend(tfl)  # native layout takes NHWC
    assert np.array_equal(native.run(to_nhwc(x)), np.concatenate(direct))
    with pytest.raises(DataError, match="shape"):
        native.run(x)  # channels-first given to a native-layout backend
    with pytest.raises(GraphError, match="does not exist"):
        LiteRTBackend(tfl.with_name("missing.tflite"))
    with pytest.raises(GraphError, match="cannot load"):
        LiteRTBackend(b"garbage bytes that are not a flatbuffer")
    with pytest.raises(GraphError, match="suffix"):
        load_backend(tfl.with_suffix(".bin"))


def test_litert_from_graph_matches_int_runtime(cnn_artifacts):
    g, _, _ = cnn_artifacts
    x = random_inputs(SHAPES["cnn"], n=30, seed=4)
    be = LiteRTBackend.from_graph(g, io="int8")
    xq = quantize(x, g.nodes["input"].quant)
    ref = Runtime(g, mode="int").step(xq)
    assert np.abs(be.run(xq).astype(np.int64) - ref.astype(np.int64)).max() <= 1
    bf = LiteRTBackend.from_graph(g)  # float I/O, dequantized
    out_q = g.nodes[g.outputs[0]].out_q
    assert np.abs(bf.run(x) - dequantize(ref, out_q)).max() <= out_q.scale * 1.001


@pytest.mark.parametrize("which", ["all_ops", "cnn", "audio1d"])
def test_onnx_from_graph_matches_int_runtime(tmp_path, which, cnn_artifacts):
    """ONNX QDQ written from the IR (no torch) in onnxruntime vs the integer runtime."""
    from test_tflite_int8 import all_ops_graph

    from neuroplast.quantize import export, lower

    if which == "all_ops":
        g = all_ops_graph()
    elif which == "cnn":
        g = cnn_artifacts[0]
    else:
        model, recipe = calibrated(which)
        g = lower(model, recipe.example_input())
    path = export(g, tmp_path / "g.onnx", to="onnx")
    be = OnnxBackend(path)
    x = random_inputs(g.shapes()["input"], n=100, seed=6)
    out_q = g.nodes[g.outputs[0]].out_q
    ref = dequantize(Runtime(g, mode="int").step(x), out_q)
    d = np.abs(be.run(x) - ref) / out_q.scale
    assert d.max() <= 1.0 + 1e-3
    assert np.mean(d > 1e-3) < 0.01  # float requantization differs only near ties


def test_onnx_from_graph_rejects_spiking_nodes(tmp_path):
    from neuroplast.errors import ExportError
    from neuroplast.graph import LIF, Graph, Input, Linear, QuantSpec

    g = Graph.sequential(
        [
            ("input", Input(shape=(4,), quant=QuantSpec(8, 1.0, 0))),
            (
                "fc",
                Linear(
                    weight=np.eye(4, dtype=np.float32),
                    weight_q=QuantSpec(8, 1 / 127),
                    out_q=QuantSpec(8, 0.05, 0),
                ),
            ),
            ("lif1", LIF(tau_mem=np.float32(0.01), v_th=np.float32(1.0))),
        ]
    )
    with pytest.raises(ExportError, match="'lif1' \\(LIF\\) cannot run on onnx"):
        OnnxBackend.from_graph(g, tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()
