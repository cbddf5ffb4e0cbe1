"""The NIR interpreter and the snnTorch / Norse runners on random graphs over every kind
NIR expresses: the interpreter (the NIR spec, no neuroplast metadata) equals the
neuroplast runtime on our export; each peer equals the interpreter wherever it can import
the graph, and refuses the rest in one line naming the node."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from nir_graphs import random_graph, spike_input

torch = pytest.importorskip("torch")
nir = pytest.importorskip("nir")
pytest.importorskip("nirtorch")
pytest.importorskip("snntorch.import_nir")
pytest.importorskip("norse.torch")

from neuroplast.errors import UnsupportedError  # noqa: E402
from neuroplast.quantize.nir import to_nir  # noqa: E402
from neuroplast.quantize.nir_run import (  # noqa: E402
    compare_with_peers,
    peer_refusals,
    run_nir,
    run_peer,
    strip_delays,
)
from neuroplast.runtime import Runtime  # noqa: E402

SEEDS = range(48)
T, B = 40, 3


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
    logging.getLogger().setLevel(logging.ERROR)


def _same(ng: object, got: dict, ref: dict) -> None:
    """Identical spikes on every spiking node; LI membranes within float32 rounding."""
    for k, v in got.items():
        if type(ng.nodes[k]).__name__ == "LI":
            np.testing.assert_allclose(
                v, ref[k], rtol=1e-4, atol=1e-4 * max(1.0, np.abs(ref[k]).max())
            )
        else:
            assert np.array_equal(v, ref[k]), (k, float(np.mean(v == ref[k])))


@pytest.mark.parametrize("seed", SEEDS)
def test_interpreter_equals_the_runtime_on_our_export(seed):
    g = random_graph(seed)
    x = spike_input(g, T, B, seed)
    ref = np.asarray(Runtime(g).run(x))
    (out,) = g.outputs
    got = run_nir(to_nir(g), x, g.dt)[out].reshape(ref.shape)
    if g.nodes[out].spiking:
        assert np.array_equal(got, ref)
    else:
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4 * max(1.0, np.abs(ref).max()))


def test_peers_equal_the_interpreter_where_they_import_and_refuse_the_rest():
    ran = {"snntorch": 0, "norse": 0}
    refused: set[str] = set()
    spikes = 0
    leaky = ("LIF", "CubaLIF", "LI")  # the neuron kinds snnTorch imports
    for seed, g in [(s, random_graph(s)) for s in SEEDS] + [
        (s, random_graph(s, leaky)) for s in SEEDS
    ]:
        g0 = strip_delays(to_nir(g))  # neither peer runs Delay
        x = spike_input(g, T, B, seed)
        ref = run_nir(g0, x, g.dt)
        for peer in ran:
            why = peer_refusals(g0, peer)
            try:
                got = run_peer(g0, x, g.dt, peer)
            except UnsupportedError as e:
                assert "\n" not in str(e) and "node '" in str(e)
                refused.add(peer)
                continue
            assert not why, (seed, peer, why)
            _same(g0, got, ref)
            spikes += sum(int(ref[k].sum()) for k in got if type(g0.nodes[k]).__name__ != "LI")
            ran[peer] += 1
    assert min(ran.values()) >= 8 and spikes > 5000, (ran, spikes)  # enough to mean something
    assert refused == {"snntorch", "norse"}


def _chain(*layers: tuple[str, object], dt: float = 1e-3) -> object:
    from neuroplast.graph import Graph, Input

    return Graph.sequential([("x", Input(shape=(6,))), *layers], dt=dt)


def _lin(n_out: int, n_in: int, seed: int = 0) -> object:
    from neuroplast.graph import Linear

    return Linear(
        weight=np.random.default_rng(seed).normal(0, 0.8, (n_out, n_in)).astype(np.float32)
    )


def test_peer_refusals_name_what_each_importer_lacks():
    from neuroplast.graph import IF, LI, LIF

    g = to_nir(_chain(("fc", _lin(5, 6)), ("n", IF(v_th=np.float32(1)))))
    assert peer_refusals(g, "snntorch") == [
        "node 'n': snnTorch's import_from_nir builds IF as a leaky neuron (beta 0.9)"
    ]
    assert peer_refusals(g, "norse") == []
    lif = LIF(tau_mem=np.float32(5e-3), v_th=np.float32(1), v_reset=np.float32(0.2))
    g = to_nir(
        _chain(
            ("fc", _lin(5, 6)),
            ("li", LI(tau_mem=np.float32(5e-3))),
            ("fc2", _lin(3, 5)),
            ("n", lif),
        )
    )
    why = peer_refusals(g, "norse")
    assert why[0].startswith("node 'li': norse has no LI; it runs as a LIF that never fires")
    assert why[1] == "node 'n': norse resets to 0 only (LIF v_reset != 0)"
    with pytest.raises(
        UnsupportedError, match=r"node 'li': snntorch has no LI; .* \(and 1 more\)$"
    ):
        run_peer(g, np.zeros((2, 1, 6)), 1e-3, "snntorch")


def test_compare_with_peers_strips_delays_and_reports_agreement():
    from neuroplast.graph import LI, LIF, DelayLinear

    rng = np.random.default_rng(3)
    dl = DelayLinear(weight=rng.normal(0, 0.8, (8, 6)).astype(np.float32),
                     delay=rng.integers(0, 3, (8, 6)).astype(np.int32))  # fmt: skip
    g = _chain(("fc1", dl), ("lif1", LIF(tau_mem=np.float32(4e-3), v_th=np.float32(0.5))),
               ("fc2", _lin(3, 8, 1)), ("out", LI(tau_mem=np.float32(8e-3))))  # fmt: skip
    x = (rng.random((60, 4, 6)) < 0.4).astype(np.float32)
    r = compare_with_peers(to_nir(g), x, g.dt, strip=True, readout="out", score=lambda v: v.sum(0))
    assert r["n_delay_nodes_after_strip"] == 0 and r["interpreter_spikes"]["lif1"] > 50
    for peer in ("snntorch", "norse"):
        assert r[peer]["spike_agree"] == 1.0 and r[peer]["argmax_agree"] == 1.0, r[peer]
        assert r[peer]["readout_max_abs"] <= 1e-4 * max(1.0, r[peer]["readout_max_abs_ref"])
