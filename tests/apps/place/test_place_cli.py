"""`neuroplast place synth|train|eval|query` end to end on a tiny route."""

import json
import re

from typer.testing import CliRunner

from neuroplast.cli import build_app


def _app():
    return build_app()  # the real app: errors become one line and exit status 2


def test_cli_synth_train_eval_query(tmp_path):
    app, run = _app(), CliRunner()
    r = run.invoke(app, ["place", "synth", str(tmp_path / "d"), "--places", "12", "--seed", "4"])
    assert r.exit_code == 0, r.output
    assert len(list((tmp_path / "d" / "query").glob("*.png"))) == 12
    r = run.invoke(
        app,
        [
            "place",
            "train",
            str(tmp_path / "d"),
            "--out",
            str(tmp_path / "e.npz"),
            "--region-size",
            "6",
            "--neurons",
            "2",
            "--epochs",
            "2",
            "--bundle",
            str(tmp_path / "b"),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "2 modules" in r.output
    r = run.invoke(
        app,
        [
            "place",
            "eval",
            str(tmp_path / "e.npz"),
            str(tmp_path / "d"),
            "--json",
            "--plots",
            str(tmp_path / "plots"),
            "--seq",
            "3",
        ],
    )
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)["methods"]
    assert "SAD (patch-normalised)" in res and any(k.startswith("spiking ensemble") for k in res)
    assert any("sequence" in k for k in res)
    assert all(0 <= v["recall"]["1"] <= v["recall"]["10"] <= 1 for v in res.values())
    assert (tmp_path / "plots" / "pr.png").stat().st_size > 1000
    img = sorted((tmp_path / "d" / "query").glob("*.png"))[3]
    outs = []
    for model in (tmp_path / "e.npz", tmp_path / "b"):
        r = run.invoke(app, ["place", "query", str(model), str(img), "--top", "2"])
        assert r.exit_code == 0, r.output
        outs.append(re.findall(r"(\d+) \(", r.output.split("\n", 3)[-1]))
    assert outs[0] == outs[1] and len(outs[0]) == 2  # model and runtime list the same places


def test_cli_errors_are_clean(tmp_path):
    r = CliRunner().invoke(_app(), ["place", "train", str(tmp_path / "missing")])
    assert r.exit_code == 2
    assert r.stderr.startswith("error: ") and "missing" in r.stderr
