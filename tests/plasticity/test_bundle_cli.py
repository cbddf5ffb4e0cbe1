"""plasticity.json in a bundle, the learn CLI, and state saved from it."""

from __future__ import annotations

import numpy as np
import pytest

import neuroplast
from neuroplast.bundle import save_bundle
from neuroplast.errors import BundleError
from neuroplast.graph import LIF, Graph, Input, Linear
from neuroplast.plasticity import (
    PairSTDPParams,
    PlasticityEngine,
    pair_stdp_update,
    stdp_init,
)
from neuroplast.plasticity.cli import learn_from_file, register, rules_table
from neuroplast.runtime import Runtime


def _graph():
    w = np.random.default_rng(0).uniform(0, 0.5, (4, 10)).astype(np.float32)
    return Graph.sequential(
        [
            ("in", Input(shape=(10,))),
            ("fc", Linear(weight=w)),
            ("lif", LIF(tau_mem=np.full(4, 5e-3), v_th=np.full(4, 0.5))),
        ]
    )


def _bundle(tmp_path):
    eng = PlasticityEngine(seed=1)
    eng.attach("fc", PairSTDPParams(eta_plus=0.02, eta_minus=0.02, w_min=0.0, w_max=1.0))
    return save_bundle(tmp_path / "b", _graph(), plasticity=eng.to_dict())


def test_bundle_round_trip_learns_like_pure_rule(tmp_path) -> None:
    path = _bundle(tmp_path)
    rt = neuroplast.load(path)
    assert rt.plasticity.to_dict()["rules"][0]["kind"] == "pair_stdp"
    rt.learn(True)
    xs = (np.random.default_rng(2).random((80, 10)) < 0.3).astype(np.float32)
    w, st = Runtime(_graph()).params["fc"]["weight"].astype(np.float64), stdp_init(10, 4)
    for x in xs:
        rt.step(x)
        p = PairSTDPParams(0.02, 0.02, w_min=0.0, w_max=1.0)
        w, st = pair_stdp_update(w, x, rt.last_outputs["lif"][0], st, p)
    np.testing.assert_allclose(rt.params["fc"]["weight"], w, atol=2e-6)


def test_hostile_plasticity_json_is_a_bundle_error(tmp_path) -> None:
    bad = {"format": "neuroplast-plasticity", "version": 1, "rules": [{"kind": "eval"}]}
    path = save_bundle(tmp_path / "b", _graph(), plasticity=bad)
    with pytest.raises(BundleError, match="unknown plasticity rule kind"):
        neuroplast.load(path)
    bad = {
        "format": "neuroplast-plasticity",
        "version": 1,
        "rules": [{"kind": "rate_threshold", "layer": "missing", "params": {}}],
    }
    with pytest.raises(BundleError, match="missing"):
        neuroplast.load(save_bundle(tmp_path / "c", _graph(), plasticity=bad))


def test_learn_cli(tmp_path) -> None:
    typer = pytest.importorskip("typer")
    from typer.testing import CliRunner

    path = _bundle(tmp_path)
    xs = (np.random.default_rng(3).random((50, 10)) < 0.3).astype(np.float32)
    np.save(tmp_path / "x.npy", xs)
    stats = learn_from_file(path, tmp_path / "x.npy", tmp_path / "s1.npz", guard=False)
    assert stats["fc:pair_stdp"]["updates"] == 50
    app = typer.Typer()
    register(app)
    res = CliRunner().invoke(
        app,
        ["learn", str(path), str(tmp_path / "x.npy"), "--state-out", str(tmp_path / "s.npz"),
         "--no-guard"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "fc:pair_stdp" in res.output
    a, b = neuroplast.load(path), neuroplast.load(path)
    a.load_state(tmp_path / "s.npz")
    b.load_state(tmp_path / "s1.npz")
    np.testing.assert_array_equal(a.params["fc"]["weight"], b.params["fc"]["weight"])
    res = CliRunner().invoke(app, ["plasticity-rules"])
    assert res.exit_code == 0 and "hlop" in res.output
    assert {r[0] for r in rules_table()} >= {"pair_stdp", "oja", "feast", "need_lr"}
    np.save(tmp_path / "bad.npy", np.full((3, 10), np.nan, np.float32))
    from neuroplast.cli import build_app  # the real app: a NeuroplastError is exit status 2

    res = CliRunner().invoke(
        build_app(), ["learn", str(path), str(tmp_path / "bad.npy"), "--no-guard"]
    )
    assert res.exit_code == 2 and "NaN" in res.output


@pytest.mark.parametrize("mode", ["float", "int"])
@pytest.mark.parametrize("kind", ["rate_threshold", "spike_threshold"])
def test_threshold_rule_on_shared_threshold_lif(tmp_path, mode: str, kind: str) -> None:
    """The README's ``v_th=[0.5]`` (one threshold shared by every neuron, as every
    QAT-lowered SNN has): threshold rules make it per neuron, in both modes, and
    ``neuroplast learn`` runs (exit 0, no traceback)."""
    from typer.testing import CliRunner

    from neuroplast.cli import build_app
    from neuroplast.graph import QuantSpec
    from neuroplast.plasticity import RULE_KINDS

    q = mode == "int"
    g = Graph.sequential(
        [
            ("in", Input(shape=(4,), quant=QuantSpec(scale=1.0) if q else None)),
            (
                "fc",
                Linear(
                    weight=np.eye(3, 4, dtype=np.float32),
                    weight_q=QuantSpec(scale=1 / 127, narrow=True) if q else None,
                    out_q=QuantSpec(bits=16, scale=1 / 512) if q else None,
                ),
            ),
            ("lif", LIF(tau_mem=[2e-3], v_th=[0.5])),
        ]
    )
    eng = PlasticityEngine()
    eng.attach("lif", RULE_KINDS[kind]())
    path = save_bundle(tmp_path / "b", g, plasticity=eng.to_dict())
    rt = neuroplast.load(path, mode=mode)
    rt.learn(True)
    x = np.array([1, 0, 1, 0], np.float32)
    for _ in range(5):
        rt.step(x)
    theta = rt.plasticity.state_dict()["0/lif/" + kind + "/theta"]
    assert theta.shape == (3,) and theta[0] > 0 and theta[1] == 0  # neuron 1 never fired
    np.save(tmp_path / "x.npy", np.tile(x, (20, 1)))
    res = CliRunner().invoke(build_app(), ["learn", str(path), str(tmp_path / "x.npy")])
    assert res.exit_code == 0 and "Traceback" not in res.output, res.output
