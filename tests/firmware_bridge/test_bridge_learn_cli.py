"""``neuroplast board load`` sends the bundle's rule; ``board learn`` learns on the board and
writes a new bundle whose state equals the host engine's after the same steps; rules the
board cannot run are refused up front (one line, exit 2)."""

from __future__ import annotations

import numpy as np
import pytest
from bridge_models import mlp_lif_li, plastic
from typer.testing import CliRunner

import neuroplast
from neuroplast.bundle import load_bundle, save_bundle
from neuroplast.cli import build_app
from neuroplast.errors import UnsupportedError
from neuroplast.firmware_bridge.image import FIRMWARE
from neuroplast.plasticity import IntSTDPParams, PairSTDPParams, PlasticityEngine


def _bundle(path, rules, make=plastic):
    rt = make()
    eng = PlasticityEngine()
    for layer, rule in rules:
        eng.attach(layer, rule)
    return save_bundle(path, rt.graph, mode="int", plasticity=eng)


def _host(path, x):
    """The host engine over the same steps: the bundle's state after them."""
    rt = neuroplast.load(path, mode="int").learn(True)
    for xt in x:
        rt.step(xt)
    return rt.state_dict()


def _same_state(got: dict, want: dict) -> None:
    keys = [k for k in want if k.startswith(("param/", "plasticity/0/"))]
    assert any(k.endswith("/int_stdp/rng") for k in keys)
    for k in keys:
        if k.endswith(("/_seen", "/_post_sum")):
            continue  # host-only firing-rate statistics (the board keeps no rate counters)
        np.testing.assert_array_equal(np.asarray(got[k]), np.asarray(want[k]), err_msg=k)


def test_board_load_and_learn_round_trip(vboard, tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROPLAST_OUT", str(tmp_path / "out"))
    src = _bundle(tmp_path / "m.zip", [("fc", IntSTDPParams(seed=77, eta_plus=300, eta_minus=260))])
    rng = np.random.default_rng(3)
    x1 = (rng.random((1500, 20)) < 0.25).astype(np.int8)
    x2 = (rng.random((900, 20)) < 0.3).astype(np.int8)
    np.save(tmp_path / "x1.npy", x1)
    np.save(tmp_path / "x2.npy", x2)
    app, run = build_app(), CliRunner()
    port = ["--port", vboard.port]

    r = run.invoke(app, ["board", "load", str(src), *port])
    assert r.exit_code == 0, r.output
    assert "int_stdp on 'fc' configured" in r.output

    r = run.invoke(app, ["board", "learn", str(src), str(tmp_path / "x1.npy"), *port])
    assert r.exit_code == 0, r.output
    first = tmp_path / "out" / "board" / "m.learned.zip"  # the output folder
    assert first.is_file() and "wrote" in r.output
    _same_state(load_bundle(first).state, _host(src, x1))

    # continue from the learned bundle: equal to the host continuing from it
    second = tmp_path / "m2.zip"
    r = run.invoke(app, ["board", "learn", str(first), str(tmp_path / "x2.npy"), "-o", str(second), *port])  # fmt: skip
    assert r.exit_code == 0, r.output
    got = load_bundle(second).state
    _same_state(got, _host(first, x2))
    assert int(got["meta/steps"]) == 2400 and int(got["plasticity/0/fc/int_stdp/_updates"]) == 2400
    w_src = neuroplast.load(src, mode="int").params["fc"]["weight"]
    assert np.count_nonzero(neuroplast.load(second).params["fc"]["weight"] != w_src) > 20

    # never over an existing file without --force, never over the source
    r = run.invoke(app, ["board", "learn", str(src), str(tmp_path / "x1.npy"), *port])
    assert r.exit_code == 2 and "exists; pass --force" in r.output
    r = run.invoke(app, ["board", "learn", str(src), str(tmp_path / "x1.npy"), "-o", str(src), "--force", *port])  # fmt: skip
    assert r.exit_code == 2 and "is the source bundle" in r.output
    np.save(tmp_path / "bad.npy", np.zeros((5, 7), np.int8))
    bad = ["--force", "--port", "/nonexistent/tty"]  # refused before the board is opened
    r = run.invoke(app, ["board", "learn", str(src), str(tmp_path / "bad.npy"), *bad])
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1, r.output
    assert "inputs must be (T, *(20,))" in r.output


def test_rules_the_board_cannot_run_are_refused_up_front(vboard, tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROPLAST_OUT", str(tmp_path / "out"))
    src = _bundle(tmp_path / "f.zip", [("fc", PairSTDPParams(w_min=-1.0))])
    np.save(tmp_path / "x.npy", np.zeros((10, 20), np.int8))
    app, run = build_app(), CliRunner()
    for cmd in (["load", str(src)], ["learn", str(src), str(tmp_path / "x.npy")]):
        r = run.invoke(app, ["board", *cmd, "--port", vboard.port])
        assert r.exit_code == 2, r.output
        line = r.output.strip()
        assert len(line.splitlines()) == 1, line
        assert "rule pair_stdp on 'fc'" in line and "int_stdp" in line and "--no-learning" in line
    assert not (tmp_path / "out").exists()
    r = run.invoke(app, ["board", "load", str(src), "--no-learning", "--port", vboard.port])
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize(
    "rules, why",
    [
        ([("fc2", IntSTDPParams())], "must feed exactly one LIF"),  # fc2 feeds an LI
        ([("lif1", IntSTDPParams())], "learns on a Linear"),
        ([("fc1", IntSTDPParams()), ("fc2", IntSTDPParams())], "one layer"),
    ],
)
def test_firmware_rule_table(rules, why):
    rt = mlp_lif_li()
    eng = PlasticityEngine()
    for layer, rule in rules:
        eng.attach(layer, rule)
    with pytest.raises(UnsupportedError, match=why):
        FIRMWARE.require_rules(rt.graph, eng)
    ok = PlasticityEngine()
    ok.attach("fc1", IntSTDPParams())
    FIRMWARE.require_rules(rt.graph, ok)  # a Linear -> LIF layer is fine


def test_image_level_check():
    from neuroplast.firmware_bridge import build_image
    from neuroplast.firmware_bridge.learning import BoardRule, check_image

    image = build_image(mlp_lif_li())
    check_image(image, BoardRule("fc1", IntSTDPParams(), 0))
    with pytest.raises(UnsupportedError, match="rule int_stdp on 'fc2'"):
        check_image(image, BoardRule("fc2", IntSTDPParams(), 0))  # fc2 feeds an LI
