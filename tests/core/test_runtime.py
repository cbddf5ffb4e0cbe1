import numpy as np
import pytest

from neuroplast.errors import DataError, GraphError, RuntimeStateError
from neuroplast.graph import Delay, Graph, Input, Linear
from neuroplast.runtime import Runtime, SparseInput

from .factories import snn_graph, spikes


@pytest.mark.parametrize("mode", ["float", "int"])
@pytest.mark.parametrize("delays", [False, True])
def test_run_equals_step_loop(mode, delays):
    g = snn_graph(quantized=True, delays=delays)
    x = spikes()
    rt = Runtime(g, mode=mode)
    y_run = rt.run(x)
    rt.reset()
    y_step = np.stack([rt.step(xt) for xt in x])
    if mode == "int":
        np.testing.assert_array_equal(y_run, y_step)
    else:
        np.testing.assert_allclose(y_run, y_step, atol=1e-5)
    # splitting a window in two gives the same as one window (state carries over)
    rt.reset()
    y_split = np.concatenate([rt.run(x[:17]), rt.run(x[17:])])
    np.testing.assert_allclose(y_split, y_run, atol=1e-5)


def test_delay_linear_against_explicit_history():
    rng = np.random.default_rng(2)
    g = snn_graph(delays=True)
    node = g.nodes["fc1"]
    x = spikes(t=30)
    h = Runtime(Graph.sequential([("in", Input(shape=(20,))), ("fc1", node)])).run(x)
    ref = np.zeros_like(h)
    for t in range(30):
        for o in range(node.weight.shape[0]):
            for j in range(20):
                d = node.delay[o, j]
                if t - d >= 0:
                    ref[t, o] += node.weight[o, j] * x[t - d, j]
    np.testing.assert_allclose(h, ref, atol=1e-5)
    del rng


def test_per_neuron_delay_ring_buffer():
    g = Graph.sequential([("in", Input(shape=(3,))), ("d", Delay(delay=[0, 2, 5]))])
    x = np.eye(3, dtype=np.float32)[[0, 1, 2] + [0] * 0]
    seq = np.zeros((10, 3), np.float32)
    seq[0] = 1
    y = Runtime(g).run(seq)
    assert np.argwhere(y).tolist() == [[0, 0], [2, 1], [5, 2]]
    del x


def test_sparse_input_matches_dense():
    g = snn_graph()
    x = spikes(t=10)
    rt_d, rt_s = Runtime(g), Runtime(g)
    for xt in x:
        yd = rt_d.step(xt)
        ys = rt_s.step(SparseInput(np.flatnonzero(xt)))
        np.testing.assert_allclose(yd, ys, atol=1e-5)


def test_batched_equals_individual():
    g = snn_graph()
    x = np.stack([spikes(seed=s) for s in range(3)], axis=1)  # (T, B, n)
    yb = Runtime(g).run(x)
    for b in range(3):
        np.testing.assert_allclose(yb[:, b], Runtime(g).run(x[:, b]), atol=1e-5)


@pytest.mark.parametrize(
    "bad,match",
    [
        (np.ones(19), "shape"),
        (np.full(20, np.nan), "NaN"),
        (np.array(["a"] * 20), "dtype"),
        (SparseInput(np.array([25])), "out of range"),
    ],
)
def test_bad_input_is_data_error(bad, match):
    rt = Runtime(snn_graph())
    with pytest.raises(DataError, match=match):
        rt.step(bad)


def test_batch_change_needs_reset():
    rt = Runtime(snn_graph())
    rt.step(np.zeros((2, 20)))
    with pytest.raises(DataError, match="batch size changed"):
        rt.step(np.zeros((3, 20)))
    rt.reset()
    rt.step(np.zeros((3, 20)))


def test_int_mode_requires_quantization():
    with pytest.raises(GraphError, match="node 'in'"):
        Runtime(snn_graph(quantized=False), mode="int")


def test_save_load_state_roundtrip(tmp_path):
    g = snn_graph()
    rt = Runtime(g)
    rt.run(spikes(t=7))
    rt.params["fc1"]["weight"][0, 0] = 42.0
    rt.save_state(tmp_path / "s.npz")
    rt2 = Runtime(g)
    rt2.load_state(tmp_path / "s.npz")
    assert rt2.params["fc1"]["weight"][0, 0] == 42.0
    x = spikes(t=5, seed=9)
    np.testing.assert_array_equal(rt.run(x), rt2.run(x))


def test_load_state_rejects_other_graph_and_garbage(tmp_path):
    rt = Runtime(snn_graph())
    rt.step(spikes()[0])
    rt.save_state(tmp_path / "s.npz")
    other = Runtime(snn_graph(seed=5))
    before = other.params["fc1"]["weight"].copy()
    with pytest.raises(RuntimeStateError, match="different graph"):
        other.load_state(tmp_path / "s.npz")
    np.testing.assert_array_equal(before, other.params["fc1"]["weight"])
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(RuntimeStateError, match="corrupt"):
        other.load_state(tmp_path / "bad.npz")


def test_graph_stays_frozen_while_params_learn():
    g = Graph.sequential([("in", Input(shape=(2,))), ("fc", Linear(weight=np.ones((1, 2))))])
    rt = Runtime(g)
    rt.params["fc"]["weight"][:] = 5
    assert g.nodes["fc"].weight[0, 0] == 1.0
    with pytest.raises(ValueError):
        g.nodes["fc"].weight[0, 0] = 3


def test_a_loaded_step_count_survives_the_first_step():
    """A state saved before any step (no batch yet) still carries its step count: the lazy
    state allocation on the first step must not reset it (a learned bundle counts on)."""
    g = Graph({"x": Input(shape=(3,)), "fc": Linear(weight=np.eye(2, 3, dtype=np.float32))},
              [("x", "fc")])  # fmt: skip
    d = Runtime(g).state_dict()
    d["meta/steps"] = np.array(7, np.int64)
    rt = Runtime(g)
    rt.load_state_dict(d)
    assert rt.steps == 7
    rt.step(np.ones(3, np.float32))
    assert rt.steps == 8
