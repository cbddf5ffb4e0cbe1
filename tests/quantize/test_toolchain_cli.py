"""``neuroplast export`` / ``neuroplast compare`` end to end on a trained checkpoint."""

from __future__ import annotations

import numpy as np
import pytest
from tlc_models import calibrated

typer = pytest.importorskip("typer")
torch = pytest.importorskip("torch")

from typer.testing import CliRunner  # noqa: E402

from neuroplast.errors import DataError, ExportError  # noqa: E402
from neuroplast.quantize.cli import register  # noqa: E402
from neuroplast.quantize.compare import compare  # noqa: E402
from neuroplast.quantize.recipes import save_model  # noqa: E402


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    model, _ = calibrated("cnn")
    save_model(d / "cnn.pt", model, "cnn", 8, 8)
    rng = np.random.default_rng(0)
    np.save(d / "x.npy", rng.random((20, 1, 8, 8), dtype=np.float32))
    return d


def _app():
    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)  # keep Typer in multi-command mode
    return app


def test_export_all_formats_and_compare(workdir):
    runner = CliRunner()
    app = _app()
    for to, name in (("onnx", "m.onnx"), ("tflite", "m.tflite"), ("bundle", "m.zip")):
        r = runner.invoke(
            app,
            [
                "export",
                str(workdir / "cnn.pt"),
                "--to",
                to,
                "--bits",
                "8",
                "-o",
                str(workdir / name),
            ],
        )
        assert r.exit_code == 0, r.output + repr(r.exception)
        assert (workdir / name).stat().st_size > 0
    r = runner.invoke(
        app,
        [
            "compare",
            str(workdir / "m.tflite"),
            str(workdir / "m.zip"),
            "--input",
            str(workdir / "x.npy"),
        ],
    )
    assert r.exit_code == 0, repr(r.exception)
    assert "max LSB diff" in r.output
    # the numbers behind the table, against the source QAT model
    x = np.load(workdir / "x.npy")
    assert compare(workdir / "cnn.pt", workdir / "m.onnx", x).max_abs <= 1e-4
    res = compare(workdir / "m.tflite", workdir / "m.zip", x)
    assert res.max_lsb is not None and res.max_lsb <= 1.0 + 1e-6 and res.n == 20
    assert compare(workdir / "cnn.pt", workdir / "m.tflite", x).max_abs <= 1e-2


def test_cli_errors_are_neuroplast_errors(workdir):
    runner = CliRunner()
    app = _app()
    r = runner.invoke(app, ["export", str(workdir / "cnn.pt"), "--to", "pdf", "-o", "x"])
    assert isinstance(r.exception, ExportError) and "unknown export format" in str(r.exception)
    r = runner.invoke(
        app,
        [
            "export",
            str(workdir / "cnn.pt"),
            "--to",
            "onnx",
            "--bits",
            "4",
            "-o",
            str(workdir / "y.onnx"),
        ],
    )
    assert isinstance(r.exception, ExportError) and "8-bit" in str(r.exception)
    (workdir / "bad.npy").write_bytes(b"nope")
    r = runner.invoke(
        app,
        [
            "compare",
            str(workdir / "cnn.pt"),
            str(workdir / "cnn.pt"),
            "--input",
            str(workdir / "bad.npy"),
        ],
    )
    assert isinstance(r.exception, DataError)
    with pytest.raises(ExportError, match="does not exist"):
        compare(workdir / "nothing.onnx", workdir / "cnn.pt", np.zeros((1, 1, 8, 8)))
    # a flat batch for an image model: one line naming the shapes, not torch's traceback
    with pytest.raises(DataError, match=r"cnn.pt takes inputs \(B, 1, 8, 8\); got \(3, 64\)"):
        compare(workdir / "cnn.pt", workdir / "cnn.pt", np.zeros((3, 64), np.float32))


def test_exporter_table_is_complete_and_lazy():
    import subprocess
    import sys

    from neuroplast.quantize import EXPORTERS, export
    from neuroplast.quantize.export import ExporterSpec

    assert set(EXPORTERS) == {"bundle", "onnx", "tflite", "nir", "sfq"}
    assert all(isinstance(s, ExporterSpec) and callable(s.load()) for s in EXPORTERS.values())
    with pytest.raises(ExportError, match="unknown export format 'pdf'"):
        export(None, "x", to="pdf")
    with pytest.raises(ExportError, match="ExporterSpec|not available"):
        ExporterSpec("neuroplast.nope:fn", "graph", "", "").load()
    code = (
        "import sys, neuroplast.quantize as q; q.EXPORTERS; "
        "print(sorted(m for m in ('torch', 'brevitas', 'onnx', 'ai_edge_litert') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
