"""The capability matrix: generated docs without drift, one-line refusals before any work,
and `fit` never saying "fits" for a model its board's target cannot run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from neuroplast.errors import UnsupportedError
from neuroplast.graph import Conv2d, Flatten, Graph, Input, Linear, QuantSpec
from neuroplast.targets import TARGETS, capability_matrix, load_plugins, write_capabilities_doc

ROOT = Path(__file__).resolve().parents[2]


def _int_cnn() -> Graph:
    rng = np.random.default_rng(0)
    q8, wq = QuantSpec(8, 0.05), QuantSpec(8, 0.01)
    return Graph.sequential(
        [
            ("in", Input(shape=(1, 8, 8), quant=q8)),
            ("conv", Conv2d(weight=rng.standard_normal((4, 1, 3, 3)), weight_q=wq, out_q=q8)),
            ("flat", Flatten()),
            ("fc", Linear(weight=rng.standard_normal((3, 144)), weight_q=wq, out_q=q8)),
        ]
    )


def test_capabilities_doc_is_generated_from_the_tables():
    doc = ROOT / "docs" / "capabilities.md"
    assert write_capabilities_doc(doc, check=True), (
        "docs/capabilities.md is stale: run `neuroplast targets --markdown` / "
        "neuroplast.targets.write_capabilities_doc('docs/capabilities.md')"
    )


def test_every_kind_has_a_verdict_on_every_target():
    from neuroplast.graph.nodes import NODE_KINDS

    load_plugins()
    m = capability_matrix()
    assert set(m) == set(NODE_KINDS)
    assert all(set(row) == set(TARGETS) for row in m.values())
    for kind, row in m.items():
        for target, (ok, text) in row.items():
            assert ok or text, f"{kind} on {target}: a refusal must say why"


def test_refusal_is_one_line_naming_node_kind_target_and_what_to_do():
    from neuroplast.firmware_bridge.image import FIRMWARE

    with pytest.raises(UnsupportedError) as ei:
        FIRMWARE.require(_int_cnn())
    msg = str(ei.value)
    assert "\n" not in msg
    assert msg.startswith("node 'conv' (Conv2d) cannot run on firmware")
    assert "TensorFlow Lite Micro" in msg
    assert [r.node for r in ei.value.refusals] == ["conv"]


@pytest.mark.parametrize("board", ["stm32h7", "rp2040", "esp32s3", "nano33ble"])
def test_fit_never_says_fits_when_the_firmware_cannot_run_the_model(board):
    from neuroplast.boards.estimate import fit_graph

    rep = fit_graph(_int_cnn(), board)
    assert rep.verdict == "does-not-fit"
    assert rep.reasons[0].startswith("node 'conv' (Conv2d) cannot run on firmware")


def test_targets_command_prints_the_matrix_and_a_models_verdict(tmp_path):
    from neuroplast.bundle import save_bundle
    from neuroplast.cli import build_app

    app = build_app()
    r = CliRunner().invoke(app, ["targets", "--json"])
    assert r.exit_code == 0, r.output
    m = json.loads(r.output)
    assert m["Conv2d"]["runtime"]["supported"] is True
    path = tmp_path / "cnn.zip"
    save_bundle(path, _int_cnn(), mode="int")
    r = CliRunner().invoke(app, ["targets", str(path), "--json"])
    assert r.exit_code == 0, r.output
    v = json.loads(r.output)
    assert v["runtime-int"] == {"ok": True, "refusals": []}
    assert v["firmware"]["ok"] is False
    assert v["firmware"]["refusals"][0].startswith("node 'conv' (Conv2d)")
