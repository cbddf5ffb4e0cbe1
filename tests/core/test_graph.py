import json

import numpy as np
import pytest

from neuroplast.errors import GraphError
from neuroplast.graph import Add, Conv2d, Flatten, Graph, Input, Linear, QuantSpec, ReLU

from .factories import snn_graph


def _same(g1, g2):
    assert list(g1.nodes) == list(g2.nodes) and g1.edges == g2.edges and g1.dt == g2.dt
    for n in g1.nodes:
        a, b = g1.nodes[n], g2.nodes[n]
        assert type(a) is type(b)
        for k, v in a.arrays().items():
            np.testing.assert_array_equal(v, b.arrays()[k])
            assert v.dtype == b.arrays()[k].dtype


@pytest.mark.parametrize("kw", [dict(), dict(quantized=True), dict(delays=True)])
def test_roundtrip_json_and_arrays(kw):
    g = snn_graph(**kw)
    g2 = Graph.from_dict(json.loads(json.dumps(g.to_dict())))
    _same(g, g2)
    arrays = {}
    d = g.to_dict(arrays)
    _same(g, Graph.from_dict(d, arrays))
    assert g.fingerprint() == g2.fingerprint()


def test_quant_metadata_roundtrip():
    g = snn_graph(quantized=True)
    g2 = Graph.from_dict(g.to_dict())
    assert g2.nodes["fc1"].weight_q == g.nodes["fc1"].weight_q
    assert g2.nodes["fc1"].weight_q.axis == 0 and g2.nodes["fc1"].weight_q.per_channel


def test_dangling_edge_named():
    with pytest.raises(GraphError, match="'fc' does not exist"):
        Graph({"in": Input(shape=(3,))}, [("in", "fc")])


def test_shape_mismatch_names_node():
    with pytest.raises(GraphError, match="node 'fc'"):
        Graph.sequential([("in", Input(shape=(3,))), ("fc", Linear(weight=np.ones((2, 4))))])


def test_arity_and_cycle():
    with pytest.raises(GraphError, match="needs 2 input"):
        Graph.sequential([("in", Input(shape=(3,))), ("a", Add())])
    with pytest.raises(GraphError):
        Graph(
            {"in": Input(shape=(2,)), "r": ReLU(), "s": ReLU()},
            [("in", "r"), ("s", "r"), ("r", "s")],
        )


def test_nan_weights_and_bad_dtype_rejected():
    with pytest.raises(GraphError, match="NaN"):
        Linear(weight=np.array([[np.nan]]))
    with pytest.raises(GraphError):
        Linear(weight=np.array([["a"]]))


def test_unknown_kind_and_field():
    d = snn_graph().to_dict()
    d["nodes"]["fc1"]["kind"] = "Bogus"
    with pytest.raises(GraphError, match="unknown kind 'Bogus'"):
        Graph.from_dict(d)
    d = snn_graph().to_dict()
    d["nodes"]["fc1"]["surprise"] = 1
    with pytest.raises(GraphError, match="unknown fields"):
        Graph.from_dict(d)


def test_quantspec_validation():
    with pytest.raises(GraphError):
        QuantSpec(bits=1)
    with pytest.raises(GraphError):
        QuantSpec(scale=-1.0)
    with pytest.raises(GraphError):
        QuantSpec(scale=(0.1, 0.2))  # per-channel without axis
    with pytest.raises(GraphError):
        QuantSpec(bits=8, zero_point=300)


def test_conv_shapes_and_cost():
    from neuroplast.graph import cost

    g = Graph.sequential(
        [
            ("in", Input(shape=(3, 8, 8))),
            ("c", Conv2d(weight=np.ones((4, 3, 3, 3)), padding=(1, 1))),
            ("f", Flatten()),
        ]
    )
    assert g.shapes()["f"] == (256,)
    c = {r.name: r for r in cost(g)}
    assert c["c"].macs == 4 * 8 * 8 * 27 and c["c"].params == 108


def test_app_node_kinds_register_their_cost_handler():
    from dataclasses import dataclass
    from typing import ClassVar

    from neuroplast.errors import UnsupportedError
    from neuroplast.graph import Node, cost, register_node
    from neuroplast.graph.cost import COST

    @register_node
    @dataclass(frozen=True, eq=False)
    class _CostedNode(Node):
        kind: ClassVar[str] = "_TestCostedNode"

    g = Graph.sequential([("in", Input(shape=(5,))), ("x", _CostedNode())])
    with pytest.raises(UnsupportedError, match=r"node 'x' \(_TestCostedNode\).*cost model"):
        cost(g)

    @COST.register(_CostedNode)
    def _c(node, in_shapes, out_shape):
        return {"params": 7, "macs": 3 * in_shapes[0][0], "state_bytes": 12}

    row = {r.name: r for r in cost(g)}["x"]
    assert (row.params, row.macs, row.state_bytes) == (7, 15, 12)
