"""Chip-constraint checker and CLI against the shipped board profiles."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("nir")

from neuroplast.errors import BoardError  # noqa: E402
from neuroplast.graph import IF, LIF, Delay, Graph, Input, Linear, QuantSpec  # noqa: E402
from neuroplast.quantize.nir import export_nir, read  # noqa: E402
from neuroplast.quantize.nir_check import check_graph, check_nir  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::neuroplast.quantize.nir.NIRPeerWarning")


def _mlp(n_in: int, n_hidden: int, n_out: int, bits: int = 8, neuron=LIF, delay: bool = False):
    rng = np.random.default_rng(0)
    q = QuantSpec(bits=bits, scale=0.01, narrow=True)

    def cell():
        if neuron is LIF:
            return LIF(tau_mem=np.float32(5e-3), v_th=np.float32(1))
        return IF(v_th=np.float32(1))

    layers = [
        ("x", Input(shape=(n_in,))),
        ("fc1", Linear(weight=rng.normal(0, 0.3, (n_hidden, n_in)).astype(np.float32), weight_q=q)),
        ("n1", cell()),
    ]
    if delay:
        layers.append(("d", Delay(delay=np.int32(2))))
    layers += [
        (
            "fc2",
            Linear(weight=rng.normal(0, 0.3, (n_out, n_hidden)).astype(np.float32), weight_q=q),
        ),
        ("n2", cell()),
    ]
    return Graph.sequential(layers, dt=1e-3)


def test_small_lif_net_fits_xylo_and_loihi2(tmp_path):
    path = export_nir(_mlp(16, 64, 8), tmp_path / "m.nir")
    for board in ("xylo", "loihi2"):
        rep = check_nir(path, board)
        assert rep.ok, rep.violations
        assert rep.totals["neurons"] == 72


def test_violations_are_named(tmp_path):
    # 40 inputs > 16, 2000 hidden > 1000 neurons/core, 12-bit weights > 8, 40 outputs > 8,
    # each hidden neuron drives 40 synapses > fan-out 32
    rep = check_graph(_mlp(40, 2000, 40, bits=12), "xylo")
    rules = {v.rule for v in rep.violations if v.severity == "error"}
    assert {"inputs", "outputs", "weight-bits", "cores", "fan-out"} <= rules
    assert not rep.ok
    # Speck runs IF only and has no delays
    rep = check_graph(_mlp(8, 8, 4, delay=True), "speck")
    msgs = {(v.rule, v.node) for v in rep.violations}
    assert ("neuron-type", "n1") in msgs and ("delays", "d") in msgs
    assert check_graph(_mlp(8, 8, 4, neuron=IF), "speck").ok
    with pytest.raises(BoardError, match="no neuromorphic limits"):
        check_graph(_mlp(8, 8, 4), "rpi5")


def test_cli_check(tmp_path):
    typer = pytest.importorskip("typer")
    from typer.testing import CliRunner

    from neuroplast.quantize.nir_cli import register

    app = typer.Typer()
    register(app)

    @app.command("noop")  # typer collapses single-command apps; keep `check` a subcommand
    def noop() -> None:
        pass

    ok = export_nir(_mlp(16, 32, 4), tmp_path / "ok.nir")
    bad = export_nir(_mlp(64, 32, 4), tmp_path / "bad.nir")
    r = CliRunner().invoke(app, ["check", str(ok), "--board", "xylo", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["ok"] is True
    r = CliRunner().invoke(app, ["check", str(bad), "--board", "xylo"])
    assert r.exit_code == 1 and "inputs" in r.output and "does not fit" in r.output


@pytest.mark.parametrize("board", ["xylo", "speck", "loihi2", "sfq"])
def test_check_of_the_file_equals_the_check_of_the_graph(tmp_path, board):
    """``neuroplast check model.nir`` reads the file and runs the one chip table: the
    same findings as checking (and fitting) the graph it was exported from."""
    from neuroplast.boards.estimate import fit, fit_graph

    for i, g in enumerate([_mlp(40, 2000, 40, bits=12), _mlp(8, 8, 4, delay=True),
                           _mlp(16, 64, 8, neuron=IF), _mlp(8, 8, 4, bits=4, neuron=IF)]):  # fmt: skip
        path = export_nir(g, tmp_path / f"{i}.nir")
        a, b = check_nir(path, board), check_graph(g, board)
        assert [str(v) for v in a.violations] == [str(v) for v in b.violations]
        fitted = {r for r in fit_graph(g, board).reasons if not r.startswith("synaptic memory")}
        assert fitted == {str(v) for v in b.errors}
        assert fit(path, board).reasons == fit_graph(read(path), board).reasons  # `fit model.nir`
