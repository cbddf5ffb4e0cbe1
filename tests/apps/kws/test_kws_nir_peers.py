"""The KWS NIR interpreter (``nir_ref.run_nir``) cross-checked by snnTorch and Norse on
the delay-free version of an exported KWS-like graph (tiny, random, a few seconds)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nir = pytest.importorskip("nir")
pytest.importorskip("nirtorch")
pytest.importorskip("snntorch.import_nir")
pytest.importorskip("norse.torch")

from neuroplast.apps.kws.lower import DeployLayer, KwsDeployment, to_graph  # noqa: E402
from neuroplast.apps.kws.nir_ref import (  # noqa: E402
    compare_with_peers,
    for_peer,
    run_nir,
    run_peer,
    strip_delays,
)
from neuroplast.apps.kws.pipeline import export_nir  # noqa: E402
from neuroplast.quantize.nir import export_nir as export_graph  # noqa: E402

DT = 0.01  # the KWS frame step; snnTorch needs the time rescaling to 1e-4
T, B = 40, 6


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
    logging.getLogger().setLevel(logging.ERROR)


def _dep(seed: int = 0) -> KwsDeployment:
    """A 10-16-16-4 KWS-like network, 8-bit weights, per-synapse delays 0..3 steps."""
    rng = np.random.default_rng(seed)
    sizes = (10, 16, 16, 4)
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        wq = rng.integers(-40, 80, (n_out, n_in)).astype(np.int8)
        d = rng.integers(0, 4, (n_out, n_in)).astype(np.int32)
        layers.append(DeployLayer(wq, 0.6 / 40, d, 8))
    return KwsDeployment(tuple(layers), beta=0.5, beta_out=0.8, v_th=1.0, dt=DT)


def _x(seed: int = 1) -> np.ndarray:
    return (np.random.default_rng(seed).random((T, B, 10)) < 0.3).astype(np.float32)


@pytest.fixture(scope="module")
def ng(tmp_path_factory):
    path = export_graph(to_graph(_dep()), tmp_path_factory.mktemp("nir") / "kws.nir")
    return nir.read(str(path))


def test_strip_delays_removes_every_delay_node(ng):
    g0 = strip_delays(ng)
    assert sum(isinstance(n, nir.Delay) for n in ng.nodes.values()) > 0
    assert not any(isinstance(n, nir.Delay) for n in g0.nodes.values())
    assert not any(a not in g0.nodes or b not in g0.nodes for a, b in g0.edges)
    x = _x()
    with_d, without = run_nir(ng, x, DT), run_nir(g0, x, DT)
    assert with_d["lif1"].sum() > 50 and without["lif1"].sum() > 50
    assert not np.array_equal(with_d["lif1"], without["lif1"])  # the delays did matter


@pytest.mark.parametrize("peer", ["snntorch", "norse"])
def test_peer_rewrites_keep_nir_dynamics(ng, peer):
    """for_peer only rewrites into the peer's conventions: run_nir sees the same spikes."""
    g0 = strip_delays(ng)
    gp = for_peer(g0, DT, peer)
    assert not any(isinstance(n, (nir.Scale, nir.LI)) for n in gp.nodes.values())
    x = _x()
    a = run_nir(g0, x, DT)
    b = run_nir(gp, x, 1e-4 if peer == "snntorch" else DT)
    for k in ("lif1", "lif2"):
        assert np.array_equal(a[k], b[k]), k


def test_snntorch_and_norse_agree_with_the_interpreter(ng):
    r = compare_with_peers(ng, _x(), DT)
    assert r["n_delay_nodes_after_strip"] == 0
    assert r["interpreter_spikes"]["lif1"] > 50 and r["interpreter_spikes"]["lif2"] > 50
    for peer in ("snntorch", "norse"):
        p = r[peer]
        assert "error" not in p and "skipped" not in p, p
        assert p["spike_agree"] >= 0.999, (peer, p)
        assert p["readout_max_abs"] <= 1e-4 * max(1.0, p["readout_max_abs_ref"]), (peer, p)
        assert p["argmax_agree"] == 1.0


def test_norse_fan_in_needs_merged_branches(ng):
    """Documents why for_peer merges the parallel branches for Norse: its importer
    (nirtorch's legacy GraphExecutor) feeds a fan-in node last step's value of the
    branches it has not run yet, so unmerged branches disagree."""
    g0 = strip_delays(ng)
    x = _x()
    ref = run_nir(g0, x, DT)["lif1"]
    assert np.array_equal(run_peer(g0, x, DT, "snntorch", merge=False)["lif1"], ref)
    assert not np.array_equal(run_peer(g0, x, DT, "norse", merge=False)["lif1"], ref)


def test_pipeline_export_records_the_peer_check(tmp_path):
    X = _x(2).transpose(1, 0, 2)  # (N, T, C) rasters
    res = export_nir(_dep(), tmp_path, X)
    assert "error" not in res, res
    assert res["plain_nir_vs_runtime_max_abs"] < 1e-4
    assert res["nodelay_check"]["n_delay_nodes_after_strip"] == 0
    for k in ("snntorch_vs_interpreter_nodelay", "norse_vs_interpreter_nodelay"):
        assert res[k]["spike_agree"] >= 0.999, res[k]
