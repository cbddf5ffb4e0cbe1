"""Conformance: 300 random graphs through every target the capability matrix claims, each
in its real engine (the 5,000-graph run is `make conformance`)."""

from __future__ import annotations

import numpy as np
import pytest

from neuroplast.graph.nodes import NODE_KINDS
from neuroplast.quantize.conformance import FAMILIES, random_graph, run_suite, targets_here
from neuroplast.runtime import Runtime
from neuroplast.targets import TARGETS

N_GRAPHS = 300


@pytest.fixture(scope="module")
def report():
    return run_suite(N_GRAPHS, seed=0)


def test_every_claimed_graph_agrees_and_every_refusal_is_one_clean_line(report):
    d = report.to_dict()
    assert d["failures"] == [], "\n".join(
        f"seed {f['seed']} {f['target']}: {f['detail']}" for f in d["failures"][:10]
    )
    for t in targets_here():
        row = d["targets"][t]
        assert row["tried"] == N_GRAPHS
        assert row["agree"] + row["refused_cleanly"] + row["skipped"] == N_GRAPHS
        assert row["claimed"] > 0, f"{t}: no generated graph was claimed"


def test_every_kind_a_target_claims_was_verified_there(report):
    for t in targets_here():
        claimed = {
            k
            for k, cls in NODE_KINDS.items()
            if cls.__module__ == "neuroplast.graph.nodes" and TARGETS[t].lookup(cls) is not None
        }
        missing = claimed - set(report.kinds[t])
        assert not missing, f"{t} claims {sorted(missing)} but no agreeing graph contained them"


def test_generator_is_seeded_and_covers_every_family():
    a, b = random_graph(7), random_graph(7)
    assert a.float_graph.to_json() == b.float_graph.to_json()
    assert a.int_graph.to_json() == b.int_graph.to_json() and np.array_equal(a.x, b.x)
    fams = {random_graph(s).family for s in range(30)}
    assert fams == set(FAMILIES)


def test_calibrated_int_graph_tracks_the_float_graph():
    """The PTQ in the generator is meaningful: on dense graphs the dequantized integer
    output stays close to the float one (a few output LSB plus weight rounding)."""
    from neuroplast.quant import dequantize

    close = 0
    for s in range(40):
        c = random_graph(s, family="dense")
        rt = Runtime(c.int_graph, mode="int")
        yq = rt.run(c.x)
        y = Runtime(c.float_graph, mode="float").run(c.x)
        yd = dequantize(yq, rt.kernels[c.int_graph.outputs[0]].out_quant)
        span = float(np.ptp(y)) or 1.0
        close += float(np.abs(yd - y).max()) / span < 0.25
    assert close >= 30


@pytest.mark.parametrize("seed", [1465, 1758, 4835, 4856])
def test_graphs_the_5000_run_caught_agree_on_the_board(seed):
    """Average pools of unsigned codes: the board averaged the raw codes, the runtime (as
    TFLite) their int8 view, so ties rounded apart (1-3 LSB) until the image sent the offset."""
    from neuroplast.quantize.conformance.engines import ENGINES, Session

    if "firmware" not in targets_here():
        pytest.skip("no C compiler for the virtual board")
    with Session() as s:
        out = ENGINES["firmware"][1](random_graph(seed), s)
    assert out.status == "agree", out.detail
