"""NIR export/import: every node kind round-trips through nir.write/nir.read; conventions."""

from __future__ import annotations

import json

import numpy as np
import pytest

nir = pytest.importorskip("nir")

from neuroplast.errors import DataError, ExportError, GraphError  # noqa: E402
from neuroplast.graph import (  # noqa: E402
    IF,
    LI,
    LIF,
    Add,
    Conv1d,
    Conv2d,
    CubaLIF,
    Delay,
    DelayLinear,
    Flatten,
    Graph,
    Input,
    Linear,
    QuantSpec,
    ReLU,
    Scale,
    SumPool2d,
    Threshold,
)
from neuroplast.quantize.nir import describe_nir, export_nir, read, to_nir  # noqa: E402

# these tests write files for neuroplast itself; test_nir_peers.py covers the peer warnings
pytestmark = pytest.mark.filterwarnings("ignore::neuroplast.quantize.nir.NIRPeerWarning")
from neuroplast.runtime import Runtime  # noqa: E402

DT = 1e-3


def _f(*shape, scale=0.5, seed=0):
    return (np.random.default_rng(seed + sum(shape)).normal(0, scale, shape)).astype(np.float32)


def _big_graph() -> Graph:
    """Conv2d, IF, SumPool2d, Flatten, Linear, LIF, Delay, Scale, DelayLinear,
    CubaLIF, LI, with quantization metadata on a few nodes."""
    rng = np.random.default_rng(4)
    wq = QuantSpec(bits=8, scale=0.01, zero_point=0, narrow=True)
    return Graph.sequential(
        [
            ("x", Input(shape=(2, 8, 8), quant=QuantSpec(bits=8, scale=0.5, zero_point=-3))),
            (
                "conv",
                Conv2d(weight=_f(4, 2, 3, 3, scale=0.8), bias=_f(4, scale=0.1), padding=(1, 1)),
            ),
            ("if1", IF(v_th=np.float32(0.7), r=np.float32(1.0))),
            ("pool", SumPool2d(kernel=(2, 2), stride=(2, 2))),
            ("flat", Flatten()),
            (
                "fc",
                Linear(
                    weight=_f(16, 64, scale=0.4),
                    bias=_f(16, scale=0.1),
                    weight_q=wq,
                    out_q=QuantSpec(bits=16, scale=0.002),
                ),
            ),  # fmt: skip
            (
                "lif",
                LIF(
                    tau_mem=np.linspace(2e-3, 9e-3, 16).astype(np.float32),
                    v_th=np.float32(0.8),
                ),
            ),  # fmt: skip
            ("dly", Delay(delay=rng.integers(0, 5, 16).astype(np.int32))),
            ("sc", Scale(scale=np.linspace(0.5, 1.5, 16).astype(np.float32))),
            (
                "dl",
                DelayLinear(
                    weight=_f(6, 16, scale=0.6),
                    delay=rng.integers(0, 4, (6, 16)).astype(np.int32),
                    bias=_f(6, scale=0.1),
                ),
            ),  # fmt: skip
            (
                "cuba",
                CubaLIF(tau_syn=np.float32(3e-3), tau_mem=np.float32(6e-3), v_th=np.float32(0.3)),
            ),
            ("fc2", Linear(weight=_f(3, 6))),
            ("li", LI(tau_mem=np.float32(5e-3))),
        ],
        dt=DT,
    )


def _branchy_graph() -> Graph:
    """Conv1d, Threshold, Add (two Linear branches summed), LIF."""
    nodes = {
        "x": Input(shape=(3, 12)),
        "c1": Conv1d(weight=_f(4, 3, 3), bias=_f(4, scale=0.1), stride=(2,)),
        "th": Threshold(v_th=np.float32(0.1)),
        "fl": Flatten(),
        "a": Linear(weight=_f(5, 20), bias=_f(5, scale=0.1)),
        "b": Linear(weight=_f(5, 20, seed=3)),
        "sum": Add(),
        "lif": LIF(tau_mem=np.float32(4e-3), v_th=np.float32(0.5)),
    }
    edges = [("x", "c1"), ("c1", "th"), ("th", "fl"), ("fl", "a"), ("fl", "b"), ("a", "sum"),
             ("b", "sum"), ("sum", "lif")]  # fmt: skip
    return Graph(nodes, edges, dt=DT)


def _run(g: Graph, x: np.ndarray) -> np.ndarray:
    return np.asarray(Runtime(g).run(x))


@pytest.mark.parametrize("make,in_shape", [(_big_graph, (2, 8, 8)), (_branchy_graph, (3, 12))])
def test_every_node_kind_round_trips(tmp_path, make, in_shape):
    g = make()
    x = (np.random.default_rng(7).random((40, *in_shape)) < 0.4).astype(np.float32)
    path = export_nir(g, tmp_path / "g.nir")
    ng = nir.read(str(path))  # nir's own reader and type checker accept the file
    kinds = {type(n).__name__ for n in ng.nodes.values()}
    g2 = read(path)
    assert g2.dt == pytest.approx(DT)
    ref = _run(g, x)
    got = _run(g2, x)
    assert ref.shape == got.shape and np.abs(ref).sum() > 0
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
    if make is _big_graph:
        assert {"Conv2d", "IF", "SumPool2d", "Flatten", "Affine", "LIF", "Delay", "Scale",
                "CubaLIF", "Linear", "LI", "Input", "Output"} <= kinds  # fmt: skip
        # per-synapse delays: one Delay branch per distinct delay value, summed
        n_delays = len(np.unique(g.nodes["dl"].delay))
        assert sum(1 for k in ng.nodes if k.startswith("dl__d")) == n_delays
        assert isinstance(g2.nodes["dl"], DelayLinear)
        np.testing.assert_array_equal(
            np.where(g.nodes["dl"].weight != 0, g.nodes["dl"].delay, 0),
            np.where(g2.nodes["dl"].weight != 0, g2.nodes["dl"].delay, 0),
        )
        # quantization metadata is restored
        assert g2.nodes["fc"].weight_q == g.nodes["fc"].weight_q
        assert g2.nodes["fc"].out_q == g.nodes["fc"].out_q
        assert g2.nodes["x"].quant == g.nodes["x"].quant
        meta = json.loads(ng.nodes["fc"].metadata["neuroplast"])
        assert meta["quant"]["weight_q"]["scale"] == 0.01
    else:
        assert "Threshold" in kinds and "Conv1d" in kinds
        assert isinstance(g2.nodes["sum"], Add)


def test_time_constant_convention_against_euler_reference(tmp_path):
    """tau and r carry over unchanged; the runtime is forward Euler of the NIR ODE
    tau dv/dt = (v_leak - v) + r I at the graph's dt, reset to v_reset at v > v_th."""
    tau, r, v_leak, v_th, v_reset, dt = 5e-3, 3.0, 0.2, 1.0, -0.1, 5e-4
    ng = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([1])}),
            "lif": nir.LIF(
                tau=np.array([tau]),
                r=np.array([r]),
                v_leak=np.array([v_leak]),
                v_threshold=np.array([v_th]),
                v_reset=np.array([v_reset]),
            ),  # fmt: skip
            "output": nir.Output(output_type={"output": np.array([1])}),
        },
        edges=[("input", "lif"), ("lif", "output")],
    )
    nir.write(str(tmp_path / "one.nir"), ng)
    g = read(tmp_path / "one.nir", dt=dt)
    current = np.full((60, 1), 0.9, np.float32)
    rt = Runtime(g)
    v_rt, s_rt = [], []
    for t in range(60):
        s_rt.append(float(np.ravel(rt.step(current[t]))[0]))
        v_rt.append(float(np.ravel(rt.state["lif"].v)[0]))
    v, v_ref, s_ref = 0.0, [], []  # independent Euler integration in float64, v(0) = 0
    for _ in range(60):
        v = v + dt / tau * ((v_leak - v) + r * 0.9)
        s = v > v_th
        v = v_reset if s else v
        v_ref.append(v)
        s_ref.append(float(s))
    assert s_rt == s_ref and sum(s_ref) >= 3
    np.testing.assert_allclose(v_rt, v_ref, atol=1e-5)
    # and on export the runtime's defaults become explicit NIR values
    g_out = Graph.sequential(
        [("x", Input(shape=(1,))), ("lif", LIF(tau_mem=np.float32(tau), v_th=np.float32(1)))], dt=dt
    )
    n = to_nir(g_out).nodes["lif"]
    assert n.tau[0] == pytest.approx(tau) and n.r[0] == pytest.approx(tau / dt)
    assert n.v_reset[0] == 0 and n.v_leak[0] == 0


def test_cubalif_and_if_input_gain_conventions():
    g = Graph.sequential(
        [
            ("x", Input(shape=(2,))),
            (
                "c",
                CubaLIF(
                    tau_syn=np.float32(2e-3),
                    tau_mem=np.float32(4e-3),
                    v_th=np.float32(1),
                    w_in=np.float32(0.5),
                ),
            ),
            ("i", IF(v_th=np.float32(1), r=np.float32(2.0))),
        ],  # fmt: skip
        dt=DT,
    )
    ng = to_nir(g)
    # runtime i' = alpha i + w_in' S  <=>  NIR tau_syn dI/dt = -I + w_in S with w_in = w_in' tau_syn/dt
    assert ng.nodes["c"].w_in[0] == pytest.approx(0.5 * 2e-3 / DT)
    assert ng.nodes["i"].r[0] == pytest.approx(2.0 / DT)  # NIR IF: dv/dt = r I


def test_describe_nir(tmp_path):
    path = export_nir(_big_graph(), tmp_path / "g.nir")
    info = describe_nir(path)
    assert info["written_by_neuroplast"] and info["dt"] == pytest.approx(DT)
    types = {r["name"]: r["type"] for r in info["nodes"]}
    assert types["lif"] == "LIF" and types["conv"] == "Conv2d"
    assert info["n_neurons"] == 4 * 8 * 8 + 16 + 6 + 3


def test_bad_inputs_raise_clear_errors(tmp_path):
    g = Graph.sequential([("x", Input(shape=(3,))), ("fc", Linear(weight=_f(2, 3))), ("r", ReLU())])
    with pytest.raises(
        ExportError, match="'r' \\(ReLU\\) cannot run on nir: NIR has no ReLU primitive"
    ):
        export_nir(g, tmp_path / "x.nir")
    with pytest.raises(DataError, match="does not exist"):
        read(tmp_path / "missing.nir")
    (tmp_path / "junk.nir").write_bytes(b"not an hdf5 file")
    with pytest.raises(DataError, match="cannot read NIR file"):
        read(tmp_path / "junk.nir")
    bad = nir.NIRGraph(
        nodes={"input": nir.Input(input_type={"input": np.array([2])}),
               "d": nir.Delay(delay=np.array([1.5e-3, 2e-3])),
               "output": nir.Output(output_type={"output": np.array([2])})},
        edges=[("input", "d"), ("d", "output")],
    )  # fmt: skip
    nir.write(str(tmp_path / "d.nir"), bad)
    with pytest.raises(GraphError, match="not multiples of dt"):
        read(tmp_path / "d.nir", dt=1e-3)
    odd = nir.NIRGraph(
        nodes={"input": nir.Input(input_type={"input": np.array([2])}),
               "i": nir.I(r=np.array([1.0, 1.0])),
               "output": nir.Output(output_type={"output": np.array([2])})},
        edges=[("input", "i"), ("i", "output")],
    )  # fmt: skip
    nir.write(str(tmp_path / "i.nir"), odd)
    with pytest.raises(GraphError, match="type I is not supported"):
        read(tmp_path / "i.nir")
    with pytest.raises(ExportError, match="r_mode"):
        to_nir(_branchy_graph(), r_mode="bogus")


def test_quantize_export_table_writes_nir(tmp_path):
    from neuroplast.quantize import export

    g = _branchy_graph()
    path = export(g, tmp_path / "t.nir", to="nir")
    g2 = read(path)
    x = (np.random.default_rng(2).random((10, 3, 12)) < 0.5).astype(np.float32)
    np.testing.assert_allclose(_run(g2, x), _run(g, x), rtol=1e-5, atol=1e-5)


def test_integer_mode_survives_the_round_trip(tmp_path):
    """The QuantSpecs restored from metadata make the re-imported graph run bit-exactly in
    integer mode; the same file stripped of metadata cannot run in integer mode."""
    rng = np.random.default_rng(0)
    sw, sv = 0.01, 0.005

    def wq(shape):
        return (np.round(rng.normal(0, 0.3, shape) / sw).clip(-127, 127) * sw).astype(np.float32)

    def lin(shape):
        return Linear(weight=wq(shape), weight_q=QuantSpec(bits=8, scale=sw, narrow=True),
                      out_q=QuantSpec(bits=16, scale=sv))  # fmt: skip

    def lif():
        return LIF(tau_mem=np.float32(5e-3), v_th=np.float32(0.6), v_q=QuantSpec(bits=32, scale=sv))

    g = Graph.sequential(
        [
            ("x", Input(shape=(6,), quant=QuantSpec(bits=8, scale=1.0))),
            ("fc1", lin((12, 6))),
            ("n1", lif()),
            ("fc2", lin((4, 12))),
            ("n2", lif()),
        ],  # fmt: skip
        dt=DT,
    )
    x = (rng.random((100, 6)) < 0.4).astype(np.float32)
    ref = np.asarray(Runtime(g, mode="int").run(x))
    assert ref.sum() > 10
    path = export_nir(g, tmp_path / "q.nir")
    np.testing.assert_array_equal(np.asarray(Runtime(read(path), mode="int").run(x)), ref)
    ng = nir.read(str(path))
    for n in ng.nodes.values():
        n.metadata = {}
    ng.metadata = {}
    nir.write(str(tmp_path / "bare.nir"), ng)
    with pytest.raises(GraphError):
        Runtime(read(tmp_path / "bare.nir", dt=DT), mode="int")


def test_time_step_rescales_time_and_round_trips(tmp_path):
    """``time_step`` writes the file so that one NIR step of ``time_step`` seconds is one
    model step: time constants and delays scale by ``time_step / dt``, the NIR meaning
    at that step equals the model, and our reader restores the model's dt."""
    from neuroplast.quantize.nir_run import run_nir

    g = _big_graph()
    ng = to_nir(g, time_step=1e-4)
    assert ng.nodes["lif"].tau == pytest.approx(g.nodes["lif"].tau_mem * 0.1)
    assert ng.nodes["if1"].r[0, 0, 0] == pytest.approx(1.0 / 1e-4)  # runtime r = 1 per step
    d = np.asarray(g.nodes["dly"].delay)
    np.testing.assert_allclose(ng.nodes["dly"].delay, d * 1e-4, rtol=1e-6)
    x = (np.random.default_rng(7).random((40, 2, 2, 8, 8)) < 0.4).astype(np.float32)
    ref = _run(g, x)
    # plain NIR semantics (no metadata: LIF resets to v_reset here) at each file's own step
    at_dt = run_nir(to_nir(g), x, DT)
    at_ts = run_nir(ng, x, 1e-4)
    np.testing.assert_allclose(at_ts["li"], at_dt["li"], rtol=1e-6, atol=1e-6)
    assert at_dt["lif"].sum() > 20 and np.array_equal(at_ts["lif"], at_dt["lif"])
    path = export_nir(g, tmp_path / "ts.nir", time_step=1e-4)
    g2 = read(path)
    assert g2.dt == pytest.approx(DT)
    np.testing.assert_allclose(_run(g2, x), ref, rtol=1e-5, atol=1e-5)
    assert describe_nir(path)["time_step"] == pytest.approx(1e-4)
    with pytest.raises(ExportError, match="time_step must be > 0"):
        to_nir(g, time_step=0.0)


def test_export_table_covers_every_kind_it_claims():
    """No node kind is claimed by the NIR target without an export handler and an
    importer for what it writes."""
    from neuroplast.graph import NODE_KINDS
    from neuroplast.quantize.nir import IMPORTERS, NIR

    claimed = [k for k, cls in NODE_KINDS.items() if NIR.lookup(cls) is not None]
    assert set(claimed) >= {"Input", "Linear", "Conv1d", "Conv2d", "SumPool2d", "AvgPool2d",
                            "Flatten", "Scale", "Add", "LIF", "CubaLIF", "IF", "LI", "Threshold",
                            "Delay", "DelayLinear"}  # fmt: skip
    assert all(NIR.lookup(NODE_KINDS[k]).fn is not None for k in claimed)
    produced = {cls for cls, _ in IMPORTERS.values()}
    assert {NODE_KINDS[k] for k in claimed} - produced <= {
        NODE_KINDS["Add"],
        NODE_KINDS["DelayLinear"],
    }


def test_an_app_node_kind_exports_through_the_same_table():
    """An app's kind registers an export handler like the shipped ones do; a subclass of a
    shipped kind inherits its parent's handler; an unregistered kind is refused up front."""
    from dataclasses import dataclass
    from typing import ClassVar

    from neuroplast.errors import UnsupportedError
    from neuroplast.graph.nodes import Node, array_field, register_node
    from neuroplast.quantize.nir import NIR

    @register_node
    @dataclass(frozen=True, eq=False)
    class TestGain2(Node):
        kind: ClassVar[str] = "TestGain2"
        gain: np.ndarray = array_field()

    @register_node
    @dataclass(frozen=True, eq=False)
    class TestLIF2(LIF):
        kind: ClassVar[str] = "TestLIF2"

    @register_node
    @dataclass(frozen=True, eq=False)
    class TestOpaque2(Node):
        kind: ClassVar[str] = "TestOpaque2"

    @NIR.register(TestGain2, note="a Scale")
    def _gain(w, name, node):
        return w.nir.Scale(scale=w.param(name, node, "gain", 1.0) * 2)

    g = Graph.sequential([("x", Input(shape=(3,))), ("g", TestGain2(gain=np.float32(0.5))),
                          ("n", TestLIF2(tau_mem=np.float32(5e-3), v_th=np.float32(1)))], dt=DT)  # fmt: skip
    ng = to_nir(g)
    assert type(ng.nodes["g"]).__name__ == "Scale" and np.allclose(ng.nodes["g"].scale, 1.0)
    assert json.loads(ng.nodes["g"].metadata["neuroplast"])["kind"] == "TestGain2"
    assert type(ng.nodes["n"]).__name__ == "LIF"
    bad = Graph.sequential([("x", Input(shape=(3,))), ("o", TestOpaque2())], dt=DT)
    with pytest.raises(UnsupportedError, match="node 'o' \\(TestOpaque2\\) cannot run on nir"):
        to_nir(bad)


def test_a_subtractive_reset_is_refused_with_what_to_do(tmp_path):
    from neuroplast.errors import UnsupportedError

    g = Graph.sequential(
        [("x", Input(shape=(3,))), ("fc", Linear(weight=_f(2, 3))),
         ("lif", LIF(tau_mem=np.float32(5e-3), v_th=np.float32(0.5), reset="subtract"))]
    )  # fmt: skip
    with pytest.raises(UnsupportedError, match=r"'lif' \(LIF\) cannot run on nir.*reset='zero'"):
        export_nir(g, tmp_path / "x.nir")
    assert not (tmp_path / "x.nir").exists()
