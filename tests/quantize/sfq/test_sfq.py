"""SFQ netlist, exporter, simulator: checked against analytic rates and a fresh RCSJ fit."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from neuroplast.errors import DataError, ExportError
from neuroplast.graph import Graph, Input, Linear, ReLU, Threshold
from neuroplast.quantize.sfq import (
    CELL_LIBRARY,
    DEFAULT_PCURVE,
    Cell,
    Connection,
    Netlist,
    SFQConfig,
    SFQLayer,
    build_netlist,
    check_timing,
    export_sfq,
    load_netlist,
    network_rates,
    neuron_rate,
    save_netlist,
    simulate,
    to_netlist,
    to_spice,
)
from neuroplast.quantize.sfq.pcurve import fit_probit, rcsj_switching_probability
from neuroplast.quantize.sfq.spice import SUBCKT_PORTS, subckt_jj_counts


def _binom_tol(p: float, n: int, k: float = 5.0) -> float:
    return k * math.sqrt(max(p * (1 - p), 1e-4) / n) + 1e-3


def _hand_netlist(kind: str, p: float = 0.5, theta: int = 1) -> Netlist:
    """IN -> DRO -> [cell under test] -> OUT (optionally a second input), clocked."""
    cells = {
        "a": Cell.make("a", "IN"),
        "b": Cell.make("b", "IN"),
        "da": Cell.make("da", "DRO"),
        "db": Cell.make("db", "DRO"),
        "clk": Cell.make("clk", "CLK", phase_ps=0.0),
        "s0": Cell.make("s0", "SPLIT"),
        "s1": Cell.make("s1", "SPLIT"),
        "o": Cell.make("o", "OUT"),
    }
    conns = [
        Connection("a", "q", "da", "d"),
        Connection("b", "q", "db", "d"),
        Connection("clk", "q", "s0", "a"),
        Connection("s0", "q0", "s1", "a"),
        Connection("s1", "q0", "da", "clk"),
        Connection("s1", "q1", "db", "clk"),
    ]
    meta = {"input_hold_ps": 1.0, "latency_cycles": 1}
    if kind == "syn":
        cells["x"] = Cell.make("x", "SYN", bias_ua=DEFAULT_PCURVE.bias_for(p))
        conns += [Connection("da", "q", "x", "a"), Connection("x", "q", "o", "a")]
    elif kind in ("merge", "merge_skew"):
        cells["x"] = Cell.make("x", "MERGE")
        skew = 20.0 if kind == "merge_skew" else 0.0
        conns += [
            Connection("da", "q", "x", "a"),
            Connection("db", "q", "x", "b", skew),
            Connection("x", "q", "o", "a"),
        ]
    elif kind == "neuron":
        cells["x"] = Cell.make("x", "NEURON", theta=theta, floor=0)
        conns += [
            Connection("da", "q", "x", "exc"),
            Connection("db", "q", "x", "inh"),
            Connection("s0", "q1", "x", "clk", 4.3),
            Connection("x", "q", "o", "a"),
        ]
        meta["latency_cycles"] = 2
        meta["layers"] = [{"neurons": ["x"]}]
    nl = Netlist(
        "t", cells, conns, ["a", "b"], ["o"], clock_ghz=20.0, clock_source="clk", meta=meta
    )
    nl.validate()
    return nl


# ------------------------------------------------------------------ analytic references
@pytest.mark.parametrize("p", [0.2, 0.7])
def test_bernoulli_synapse_rate_is_p(p):
    n = 3000
    res = simulate(_hand_netlist("syn", p), {"a": 1.0, "b": 0.0}, n, seed=3)
    p_prog = DEFAULT_PCURVE.probability(DEFAULT_PCURVE.bias_for(p))
    assert abs(p_prog - p) < 1e-9  # bias_for inverts probability
    assert abs(res.output_rates["o"] - p) < _binom_tol(p, n)


def test_merger_rate_coincident_or_and_skewed_sum():
    n = 3000
    ra, rb = 0.5, 0.4
    co = simulate(_hand_netlist("merge"), {"a": ra, "b": rb}, n, seed=1).output_rates["o"]
    want = 1 - (1 - ra) * (1 - rb)  # coincident pulses merge into one
    assert abs(co - want) < _binom_tol(want, n)
    sk = simulate(_hand_netlist("merge_skew"), {"a": ra, "b": rb}, n, seed=1).output_rates["o"]
    # 20 ps apart (> dead time): both pass, but both still inside one period -> count both
    assert abs(sk - (ra + rb)) < _binom_tol(0.45, n) * 2


@pytest.mark.parametrize("theta,e,i", [(1, 0.6, 0.3), (3, 0.7, 0.2), (2, 0.5, 0.5)])
def test_neuron_rate_matches_markov_chain(theta, e, i):
    n = 4000
    nl = _hand_netlist("neuron", theta=theta)
    res = simulate(nl, {"a": e, "b": i}, n, seed=7)
    want = neuron_rate(e, i, theta)
    if theta == 1:
        assert want == pytest.approx(e * (1 - i))
    if theta == 3 and i == 0:
        assert want == pytest.approx(e / 3)
    assert abs(res.neuron_rates["x"] - want) < _binom_tol(want, n)


def test_neuron_rate_closed_forms():
    assert neuron_rate(0.6, 0.0, theta=3) == pytest.approx(0.2)
    assert neuron_rate(0.4, 0.25, theta=1) == pytest.approx(0.3)


# ------------------------------------------------------------------ p(I) curve
def test_default_pcurve_describes_a_fresh_rcsj_simulation():
    bias = np.array([15.0, 16.0, 17.0])
    n = 600
    p_sim = rcsj_switching_probability(bias, n_trials=n, seed=11)
    p_fit = DEFAULT_PCURVE.probability(bias)
    assert np.all(np.abs(p_sim - p_fit) < 5 * np.sqrt(p_fit * (1 - p_fit) / n) + 0.02)
    # and the fit procedure recovers a known probit curve
    xs = np.linspace(10, 14, 9)
    ps = 0.5 * (1 + np.vectorize(math.erf)((xs - 12.0) / (0.7 * math.sqrt(2))))
    i50, sig = fit_probit(xs, ps, 10**6)
    assert i50 == pytest.approx(12.0, abs=1e-3) and sig == pytest.approx(0.7, rel=1e-3)


# ------------------------------------------------------------------ exporter
def _graph(w1, b1, w2, b2, act=ReLU):
    return Graph.sequential(
        [
            ("x", Input(shape=(w1.shape[1],))),
            ("fc0", Linear(weight=w1, bias=b1)),
            ("a0", act() if act is ReLU else act(v_th=np.float32(0.5))),
            ("fc1", Linear(weight=w2, bias=b2)),
            ("a1", ReLU()),
        ]
    )


def test_export_roundtrip_and_rates_match_mean_field(tmp_path):
    rng = np.random.default_rng(0)
    w1 = rng.uniform(-1, 1, (3, 2)).astype(np.float32)
    b1 = rng.uniform(-0.3, 0.3, 3).astype(np.float32)
    w2 = rng.uniform(0, 1, (1, 3)).astype(np.float32)
    g = _graph(w1, b1, w2, np.zeros(1, np.float32))
    path = tmp_path / "net.sfq.json"
    assert export_sfq(g, path, clock_ghz=20.0) == path
    nl = to_netlist(g, clock_ghz=20.0)
    doc = json.loads(path.read_text())
    assert doc["format"] == "neuroplast-sfq-netlist" and doc["version"] == 1
    assert doc["totals"]["jj"] == sum(CELL_LIBRARY[c["type"]].jj for c in doc["cells"])
    nl2 = load_netlist(path)
    assert nl2.to_dict() == nl.to_dict()
    syn = [c for c in nl.cells.values() if c.type == "SYN"]
    assert syn and all(
        abs(DEFAULT_PCURVE.probability(c.bias_ua) - c.params["p"]) < 1e-6 for c in syn
    )
    n = 3000
    x = np.array([1.0, 0.6])
    res = simulate(nl2, {"in0": x[0], "in1": x[1]}, n, seed=5)
    layers = [SFQLayer("fc0", w1, b1), SFQLayer("fc1", w2, np.zeros(1))]
    mf = network_rates(layers, x)
    for j in range(3):
        got = res.neuron_rates[f"L0_n{j}"]
        assert abs(got - mf[0][j]) < _binom_tol(mf[0][j], n)
    assert res.latency_ps == pytest.approx(3 * 50.0, abs=50.0)
    assert res.energy_j > 0


def test_export_refuses_negative_weights_without_inhibitory_cells(tmp_path):
    w1 = np.array([[0.5, -0.4]], np.float32)
    g = _graph(w1, np.zeros(1, np.float32), np.ones((1, 1), np.float32), np.zeros(1, np.float32))
    with pytest.raises(ExportError, match=r"fc0.*negative weight\[0, 1\].*inhibitory"):
        export_sfq(g, tmp_path / "x.json", inhibitory=False)


def test_export_refuses_fan_in_over_limit_and_large_weights():
    w1 = np.full((2, 20), 0.5, np.float32)
    g = _graph(w1, np.zeros(2, np.float32), np.ones((1, 2), np.float32), np.zeros(1, np.float32))
    with pytest.raises(ExportError, match=r"fan-in 20 .*max_fan_in=16"):
        to_netlist(g)
    w1 = np.array([[1.5, 0.1]], np.float32)
    g = _graph(w1, np.zeros(1, np.float32), np.ones((1, 1), np.float32), np.zeros(1, np.float32))
    with pytest.raises(ExportError, match=r"weight\[0, 0\] = 1.5 is outside \[-1, 1\]"):
        to_netlist(g)


def test_export_refuses_unmappable_graph_and_too_fast_clock():
    w = np.full((2, 2), 0.5, np.float32)
    g = Graph.sequential(
        [("x", Input(shape=(2,))), ("fc", Linear(weight=w)), ("t", Threshold(v_th=np.float32(0)))]
    )
    nl = to_netlist(g)
    with pytest.raises(ExportError, match=r"GHz too fast.*max clock"):
        check_timing(nl, 200.0)
    with pytest.raises(ExportError, match="too fast"):
        build_netlist([SFQLayer("l", w)], 2, config=SFQConfig(clock_ghz=100.0))
    g2 = Graph.sequential([("x", Input(shape=(2,))), ("fc", Linear(weight=w))])
    with pytest.raises(ExportError, match="no activation"):
        to_netlist(g2)


def test_what_does_not_map_is_refused_up_front_in_one_line(tmp_path):
    from neuroplast.errors import UnsupportedError
    from neuroplast.graph import IF, LIF, Conv2d, Flatten
    from neuroplast.quantize import export

    w = np.full((2, 2), 0.5, np.float32)
    x = ("x", Input(shape=(2,)))
    cnn = Graph.sequential(
        [("x", Input(shape=(1, 4, 4))), ("conv", Conv2d(weight=np.full((2, 1, 3, 3), 0.1))),
         ("flat", Flatten()), ("fc", Linear(weight=np.full((1, 8), 0.1))), ("a", ReLU())]
    )  # fmt: skip
    cases = [
        (cnn, "node 'conv' (Conv2d) cannot run on sfq: the SFQ mapping has no convolution"),
        (
            Graph.sequential([x, ("fc", Linear(weight=w)), ("lif", LIF(tau_mem=[0.01], v_th=[1]))]),
            "node 'lif' (LIF) cannot run on sfq: SFQ neurons count pulses without leak",
        ),
        (
            Graph.sequential(
                [x, ("fc0", Linear(weight=w)), ("fc1", Linear(weight=w)), ("a", ReLU())]
            ),  # fmt: skip
            "node 'fc1' (Linear) cannot run on sfq: it follows Linear 'fc0' with no activation",
        ),
        (
            Graph.sequential([x, ("fc", Linear(weight=w)), ("if", IF(v_th=[1.5]))]),
            (
                "node 'if' (IF) cannot run on sfq: SFQ neurons count pulses: v_th must be one "
                "integer >= 1, got [1.5]"
            ),
        ),
        (
            Graph.sequential([x, ("a", ReLU())]),
            "node 'a' (ReLU) cannot run on sfq: it has no Linear before it",
        ),
    ]
    for g, line in cases:
        with pytest.raises(UnsupportedError) as ei:
            export(g, tmp_path / "n.json", to="sfq")
        assert str(ei.value).startswith(line) and "\n" not in str(ei.value)
    assert not list(tmp_path.iterdir())
    # a multi-dimensional input maps through a Flatten (one port per element, C order)
    img = Graph.sequential(
        [("x", Input(shape=(1, 2, 2))), ("flat", Flatten()),
         ("fc", Linear(weight=np.full((1, 4), 0.5, np.float32))), ("a", ReLU())]
    )  # fmt: skip
    assert to_netlist(img).inputs == ["in0", "in1", "in2", "in3"]


def test_netlist_validation_and_bad_files(tmp_path):
    nl = _hand_netlist("syn", 0.5)
    bad = Netlist(nl.name, dict(nl.cells), nl.connections + [Connection("da", "q", "o", "a")],
                  nl.inputs, nl.outputs, 20.0, "clk", meta=nl.meta)  # fmt: skip
    with pytest.raises(ExportError, match="drives more than one wire"):
        bad.validate()
    p = tmp_path / "x.json"
    p.write_text("{not json")
    with pytest.raises(DataError, match="cannot read"):
        load_netlist(p)
    save_netlist(nl, p)
    d = json.loads(p.read_text())
    d["version"] = 99
    p.write_text(json.dumps(d))
    with pytest.raises(DataError, match="version 99"):
        load_netlist(p)
    with pytest.raises(DataError, match="rate 1.5"):
        simulate(nl, {"a": 1.5, "b": 0.0}, 10)
    with pytest.raises(DataError, match="must name exactly"):
        simulate(nl, {"a": 1.0}, 10)


# ------------------------------------------------------------------ SPICE deck
_ELEM = {"B": 3, "L": 3, "R": 3, "C": 3}  # tokens after the label: n+ n- value/model


def _check_josim_deck(text: str) -> dict:
    """Independent grammar check of the JoSIM syntax in JoeyDelp/JoSIM docs/syntax.md."""
    lines = [
        ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith(("*", "#"))
    ]
    subckts: dict[str, int] = {}
    models = set()
    cur = None
    labels: set[str] = set()
    seen = {"tran": 0, "end": 0, "print": 0}
    used_sub: list[tuple[str, int]] = []
    for ln in lines:
        tok = ln.split()
        head = tok[0].upper()
        if head == ".MODEL":
            assert re.fullmatch(r"\.model \w+ jj\((\w+=[\d.e+-]+[a-zA-Z]*,? ?)+\)", ln, re.I), ln
            models.add(tok[1].upper())
        elif head == ".SUBCKT":
            assert cur is None, "nested .subckt"
            cur = tok[1].upper()
            subckts[cur] = len(tok) - 2
            labels = set()
        elif head == ".ENDS":
            assert cur is not None, ".ends without .subckt"
            cur = None
        elif head == ".TRAN":
            assert len(tok) >= 3 and all(re.fullmatch(r"[\d.]+p?", t) for t in tok[1:]), ln
            seen["tran"] += 1
        elif head == ".PRINT":
            assert tok[1].upper() in {"DEVV", "DEVI", "PHASE", "NODEV", "NODEP"}
            seen["print"] += 1
        elif head == ".TEMP":
            float(tok[1])
        elif head == ".END":
            seen["end"] += 1
        elif head[0] in _ELEM:
            assert len(tok) >= 4, ln
            if head[0] == "B":
                assert tok[3].upper() in models, f"undefined model in {ln}"
                assert all(re.fullmatch(r"\w+=[\d.]+", t) for t in tok[4:]), ln
            else:
                assert re.fullmatch(r"[\d.]+[pfnum]?", tok[3]), ln
        elif head[0] == "I":
            m = re.fullmatch(r"I\w+ \w+ \w+ pwl\(([^)]*)\)", ln)
            assert m, ln
            vals = m.group(1).split()
            assert len(vals) % 2 == 0 and vals[:2] == ["0", "0"], ln
            ts = [float(v.rstrip("p")) for v in vals[0::2]]
            assert all(b >= a for a, b in zip(ts, ts[1:], strict=False)), (
                f"pwl times not monotonic: {ln}"
            )
        elif head[0] == "X":
            used_sub.append((tok[1].upper(), len(tok) - 2))
        else:
            raise AssertionError(f"unknown line: {ln}")
        if head[0] in "BLRCIX":
            assert not re.search(r"[.|]", " ".join(tok[:3] if head[0] != "X" else tok)), ln
            assert (cur, tok[0].upper()) not in labels, f"duplicate label {tok[0]}"
            labels.add((cur, tok[0].upper()))
    assert cur is None, "unterminated .subckt"
    for name, nports in used_sub:
        assert name in subckts, f"undefined subckt {name}"
        assert subckts[name] == nports, f"{name}: {nports} nodes for {subckts[name]} ports"
    assert seen["tran"] == 1 and seen["end"] == 1 and seen["print"] >= 1
    assert lines[-1].strip().upper() == ".END"
    return {"subckts": subckts, "instances": len(used_sub)}


def test_spice_deck_is_well_formed():
    w1 = np.array([[0.9, -0.8], [-0.8, 0.9]], np.float32)
    g = _graph(
        w1,
        np.array([0.1, 0], np.float32),
        np.array([[0.95, 0.95]], np.float32),
        np.zeros(1, np.float32),
    )
    nl = to_netlist(g)
    deck = to_spice(nl, {"in0": np.array([1, 0, 1, 1]), "in1": np.array([0, 0, 1, 0])}, n_cycles=4)
    info = _check_josim_deck(deck)
    n_sub = sum(1 for c in nl.cells.values() if c.type in SUBCKT_PORTS)
    assert info["instances"] == n_sub
    assert subckt_jj_counts() == {k: CELL_LIBRARY[k].jj for k in SUBCKT_PORTS}
    # a broken deck is caught by the checker (the checker itself can fail)
    with pytest.raises(AssertionError):
        _check_josim_deck(deck.replace(".ends\n", "", 1))
    with pytest.raises(DataError):
        to_spice(nl, {"in0": np.array([2, 0, 0, 0])}, n_cycles=4)


# ------------------------------------------------------------------ XOR case study
def test_xor_case_study_small():
    from neuroplast.quantize.sfq.xor import run_xor_case_study

    rep = run_xor_case_study(steps=300, restarts=1, n_cycles=300)
    assert rep["all_correct"], rep["patterns"]
    assert rep["margin"] > 0.5
    assert rep["jj_count"] > 0 and rep["energy_per_inference_j"] > 0
    for row in rep["patterns"]:
        assert abs(row["rate"] - row["mean_field_rate"]) < 0.1


def test_quantize_export_table_writes_sfq(tmp_path):
    from neuroplast.quantize import export

    w1 = np.array([[0.9, -0.8], [-0.8, 0.9]], np.float32)
    g = _graph(
        w1, np.zeros(2, np.float32), np.array([[0.95, 0.95]], np.float32), np.zeros(1, np.float32)
    )
    path = export(g, tmp_path / "x.sfq.json", to="sfq", clock_ghz=25.0)
    nl = load_netlist(path)
    assert nl.clock_ghz == 25.0 and nl.totals()["cells"]["NEURON"] == 3


def test_cli_sfq_sim_and_spice(tmp_path):
    typer = pytest.importorskip("typer")
    from typer.testing import CliRunner

    from neuroplast.quantize.sfq.cli import register

    app = typer.Typer()
    register(app)
    w1 = np.array([[0.9, -0.8], [-0.8, 0.9]], np.float32)
    g = _graph(
        w1, np.zeros(2, np.float32), np.array([[0.95, 0.95]], np.float32), np.zeros(1, np.float32)
    )
    path = export_sfq(g, tmp_path / "n.json")
    r = CliRunner().invoke(app, ["sfq-sim", str(path), "-i", "in0=1", "--cycles", "400"])
    assert r.exit_code == 0, r.output
    rate = float(re.search(r"out0\D+\d+\D+?([01]\.\d+)", r.output).group(1))
    assert abs(rate - network_rates(
        [SFQLayer("a", w1), SFQLayer("b", np.array([[0.95, 0.95]]))], np.array([1.0, 0.0])
    )[-1][0]) < 0.08  # fmt: skip
    from neuroplast.cli import build_app  # the real app turns a NeuroplastError into exit 2

    r = CliRunner().invoke(build_app(), ["sfq-sim", str(path), "-i", "bogus=1"])
    assert r.exit_code == 2 and "NAME=RATE" in r.output
    r = CliRunner().invoke(app, ["sfq-spice", str(path), "-o", str(tmp_path / "d.cir")])
    assert r.exit_code == 0 and _check_josim_deck((tmp_path / "d.cir").read_text())
