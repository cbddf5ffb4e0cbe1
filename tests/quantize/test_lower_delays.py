"""DCLS delay layers lower to ``DelayLinear`` through ``quantize.lower`` (the rule the KWS
app imports): through :func:`lower` in a QAT Sequential and as plain arrays
(:func:`delay_chain`), both running the integer recurrence the QAT layer computes."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("brevitas")

from neuroplast.apps.kws.model import DelayQuantLinear  # noqa: E402
from neuroplast.errors import GraphError  # noqa: E402
from neuroplast.graph import DelayLinear  # noqa: E402
from neuroplast.quantize.lower import (  # noqa: E402
    DelayLayer,
    delay_chain,
    delay_layer,
    delay_linear,
    lower,
)
from neuroplast.quantize.qat import SpikeQuant, lif_module_classes  # noqa: E402
from neuroplast.runtime import Runtime  # noqa: E402


def _dcls(n_in: int, n_out: int, seed: int) -> DelayQuantLinear:
    torch.manual_seed(seed)
    m = DelayQuantLinear(n_in, n_out, max_delay=5, learn=True, bits=8)
    m.hard = True
    return m


def test_lower_turns_a_dcls_layer_into_delay_linear():
    _, QuantLIF = lif_module_classes()
    d1, d2 = _dcls(10, 12, 0), _dcls(12, 4, 1)
    seq = torch.nn.Sequential(SpikeQuant(), d1, QuantLIF(0.75, 0.3, "zero"), SpikeQuant(), d2,
                              QuantLIF(0.5, 0.2, "zero"))  # fmt: skip
    g = lower(seq, torch.zeros(3, 1, 10), dt=1e-3)
    assert [n.kind for n in g.nodes.values()] == [
        "Input",
        "DelayLinear",
        "LIF",
        "DelayLinear",
        "LIF",
    ]
    for name, m in (("delaylinear1", d1), ("delaylinear2", d2)):
        node, want = g.nodes[name], delay_linear(delay_layer(m))
        np.testing.assert_array_equal(node.weight, want.weight)
        np.testing.assert_array_equal(node.delay, m.int_delays().numpy())
        assert node.weight_q == want.weight_q and node.out_q == want.out_q
        assert node.out_q.bits == 32 and node.out_q.scale == node.weight_q.scale  # spikes: s_in = 1
    assert g.nodes["lif1"].v_q == g.nodes["delaylinear1"].out_q
    assert float(g.nodes["lif1"].tau_mem) == pytest.approx(1e-3 / 0.25)


def test_delay_chain_runs_the_dcls_recurrence_bit_exactly():
    """Hand-rolled integer reference of one DelayLinear -> LIF -> DelayLinear -> LI chain:
    ``I[t] = sum_j w_q x_j[t - D]``, ``v = floor((v beta_q + 2^14) / 2^15) + I``,
    spike ``v > th_q``, reset to 0; the readout accumulates without spikes."""
    rng = np.random.default_rng(0)
    layers = [DelayLayer(rng.integers(-60, 90, (7, 5)), 0.02, rng.integers(0, 4, (7, 5)).astype(np.int32), 8),
              DelayLayer(rng.integers(-60, 60, (3, 7)), 0.03, rng.integers(0, 3, (3, 7)).astype(np.int32), 8)]  # fmt: skip
    beta, beta_out, v_th = 0.75, 0.5, 1.0
    g = delay_chain(layers, beta=beta, beta_out=beta_out, v_th=v_th, dt=1e-2)
    x = (rng.random((50, 5)) < 0.4).astype(np.int8)
    got = np.asarray(Runtime(g, mode="int").run(x[:, None])).reshape(50, 3)

    def cur(layer: DelayLayer, s: np.ndarray, t: int) -> np.ndarray:
        past = [s[t - d] if t >= d else np.zeros(s.shape[1]) for d in range(4)]
        return np.array([sum(layer.weight_q[i, j] * past[layer.delay[i, j]][j]
                             for j in range(layer.weight_q.shape[1])) for i in range(layer.weight_q.shape[0])])  # fmt: skip

    def step(v: np.ndarray, b: float, i: np.ndarray) -> np.ndarray:
        return np.floor((v * round(b * 2**15) + 2**14) / 2**15) + i

    v1, v2, s1, ref = np.zeros(7), np.zeros(3), np.zeros((50, 7)), []
    th = round(v_th / 0.02)
    for t in range(50):
        v1 = step(v1, beta, cur(layers[0], x, t))
        s1[t] = v1 > th
        v1 = np.where(s1[t] > 0, 0, v1)
        v2 = step(v2, beta_out, cur(layers[1], s1, t))
        ref.append(v2.copy())  # the runtime returns membrane codes (scale 0.03)
    assert s1.sum() > 20
    np.testing.assert_array_equal(got, np.array(ref))
    with pytest.raises(GraphError, match="layer 1: an integer DelayLinear needs 2-, 4- or 8-bit"):
        delay_chain([DelayLayer(layers[0].weight_q, 1.0, layers[0].delay, 0)], beta=0.5,
                    beta_out=0.5, v_th=1.0, dt=1e-2)  # fmt: skip
    assert isinstance(
        delay_chain(layers, beta=0.5, beta_out=0.5, v_th=1, dt=1e-2, quantized=False).nodes["fc1"],
        DelayLinear,
    )
