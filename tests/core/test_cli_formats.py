"""`neuroplast run/info/compare` take every format the SDK writes (bundle, NIR, ONNX,
TFLite), each in its own engine, checked against the integer / float runtime."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("ai_edge_litert")
pytest.importorskip("nir")

from neuroplast.bundle import save_bundle  # noqa: E402
from neuroplast.cli import main  # noqa: E402
from neuroplast.quant import dequantize  # noqa: E402
from neuroplast.runtime import Runtime  # noqa: E402


def _case(family: str):
    from neuroplast.quantize.conformance import random_graph

    return next(c for s in range(50) if (c := random_graph(s)).family == family)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from neuroplast.export.onnx import export_onnx_graph
    from neuroplast.export.tflite import export_tflite
    from neuroplast.quantize.nir import export_nir

    d = tmp_path_factory.mktemp("formats")
    cnn, snn = _case("cnn"), _case("snn")
    save_bundle(d / "cnn.zip", cnn.int_graph, mode="int")
    export_tflite(cnn.int_graph, d / "cnn.tflite")
    export_onnx_graph(cnn.int_graph, d / "cnn.onnx")
    export_nir(snn.float_graph, d / "snn.nir")
    xb = cnn.x.reshape(-1, *cnn.x.shape[2:]).astype(np.float32)  # a batch of samples
    xs = snn.x[:, 0].astype(np.float32)  # a window of time steps
    np.save(d / "xb.npy", xb)
    np.save(d / "xs.npy", xs)
    return d, cnn, snn, xb, xs


def _run_json(args, capsys):
    capsys.readouterr()
    assert main([str(a) for a in args] + ["--json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_run_every_format_in_its_engine(models, capsys):
    d, cnn, snn, xb, xs = models
    rt = Runtime(cnn.int_graph, mode="int")
    oq = rt.kernels[rt.outputs[0]].out_quant
    ref = np.stack([dequantize(rt.step(x[None])[0], oq) for x in xb])  # one step per sample
    for f, engine in (("cnn.tflite", "litert"), ("cnn.onnx", "onnxruntime")):
        r = _run_json(["run", d / f, "-i", d / "xb.npy"], capsys)
        assert r["engine"] == engine and r["axis"] == "sample"
        # the exporters are bit-exact with the integer runtime: within one output LSB
        np.testing.assert_allclose(np.asarray(r["output"]), ref, atol=float(oq.scale) * 1.01)
    r = _run_json(["run", d / "snn.nir", "-i", d / "xs.npy"], capsys)
    assert r["axis"] == "step" and r["mode"] == "float"
    np.testing.assert_allclose(np.asarray(r["output"]), Runtime(snn.float_graph).run(xs),
                               rtol=1e-5, atol=1e-6)  # fmt: skip


def test_run_says_when_it_truncates(models, capsys):
    d, *_ = models
    capsys.readouterr()
    assert main(["run", str(d / "cnn.zip"), "-i", str(d / "xb.npy"), "--rows", "2"]) == 0
    assert "showing 2 of 6 steps (--rows 0 for all" in capsys.readouterr().out.replace("\n", " ")


def test_info_lists_engine_models(models, capsys):
    d, cnn, *_ = models
    from neuroplast.graph import cost

    graph_params = {r.name: r.params for r in cost(cnn.int_graph)}
    tfl = _run_json(["info", d / "cnn.tflite"], capsys)
    weighted = [
        r for r in tfl["rows"] if r["op"] in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
    ]
    # every weighted layer holds the graph's parameters (weights + bias), in graph order
    want = [p for p in graph_params.values() if p]
    assert [r["params"] for r in weighted] == want
    onx = _run_json(["info", d / "cnn.onnx"], capsys)
    assert {"Conv", "Gemm"} & {r["op"] for r in onx["rows"]} and onx["engine"] == "onnxruntime"
    nir_info = _run_json(["info", d / "snn.nir"], capsys)
    assert nir_info["format"] == "nir" and nir_info["rows"][-1]["name"] == "total"


def test_compare_takes_nir_and_engines(models, capsys):
    d, *_ = models
    capsys.readouterr()
    assert main(["compare", str(d / "cnn.tflite"), str(d / "cnn.zip"), "-i", str(d / "xb.npy"),
                 "--json", "--min", "0.99"]) == 0  # fmt: skip
    r = json.loads(capsys.readouterr().out)
    assert r["max_lsb"] <= 1.0 + 1e-6 and r["argmax_agree"] >= 0.99
    # NIR against itself through the runtime: identical
    xs1 = np.load(d / "xs.npy")[:1]
    np.save(d / "xs1.npy", xs1)
    assert main(["compare", str(d / "snn.nir"), str(d / "snn.nir"), "-i", str(d / "xs1.npy"),
                 "--json"]) == 0  # fmt: skip
    assert json.loads(capsys.readouterr().out)["max_abs"] == 0.0


def test_mode_is_refused_for_engine_formats(models, capsys):
    d, *_ = models
    capsys.readouterr()
    assert main(["run", str(d / "cnn.tflite"), "-i", str(d / "xb.npy"), "--mode", "int"]) == 2
    assert "--mode applies to bundles" in capsys.readouterr().err


def test_litert_load_prints_no_delegate_banner(models, capfd):
    from neuroplast.backends import LiteRTBackend

    d, *_ = models
    capfd.readouterr()
    LiteRTBackend(d / "cnn.tflite").run(np.zeros((1, 8, 9, 2), np.float32))
    assert "XNNPACK delegate" not in capfd.readouterr().err
