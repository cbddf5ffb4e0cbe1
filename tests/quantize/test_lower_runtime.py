"""Lowering reads Brevitas' learned quantizers; the integer runtime reproduces QAT."""

from __future__ import annotations

import numpy as np
import pytest
from tlc_models import SHAPES, calibrated, random_inputs

torch = pytest.importorskip("torch")

from neuroplast.errors import ExportError  # noqa: E402
from neuroplast.quant import dequantize  # noqa: E402
from neuroplast.quantize import lower  # noqa: E402
from neuroplast.runtime import Runtime  # noqa: E402


@pytest.mark.parametrize(
    "name,bits", [("mlp", 8), ("cnn", 8), ("audio1d", 8), ("mlp", 4), ("cnn", 2)]
)
def test_int_runtime_reproduces_qat_model(name, bits):
    model, recipe = calibrated(name, bits)
    g = lower(model, recipe.example_input())
    # the specs are Brevitas' own float32 scales, not re-estimated ones
    assert g.nodes["input"].quant.scale == float(np.float32(model[0].act_quant.scale().item()))
    first_w = next(m for m in model if hasattr(m, "quant_weight"))
    node = next(n for n in g.nodes.values() if getattr(n, "weight_q", None) is not None)
    s_ref = first_w.quant_weight().scale.detach().numpy().ravel().astype(np.float32)
    assert np.array_equal(np.asarray(node.weight_q.scale, np.float32), s_ref)
    assert node.weight_q.bits == bits and node.weight_q.narrow
    x = random_inputs(SHAPES[name], n=100)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    out_q = g.nodes[g.outputs[0]].out_q
    y_int = Runtime(g, mode="int").step(x)
    diff_lsb = np.abs(dequantize(y_int, out_q) - ref) / out_q.scale
    # identical up to float-vs-fixed-point rounding at exact ties (none expected here)
    assert diff_lsb.max() <= 1.0 + 1e-3
    assert np.mean(diff_lsb > 1e-3) < 0.01


def test_avgpool_and_4bit_activations_lower_exactly():
    from neuroplast.quantize import calibrate, prepare

    torch.manual_seed(3)
    nn = torch.nn
    net = nn.Sequential(
        nn.Conv2d(2, 6, 3, padding=1),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Conv2d(6, 4, 3),
        nn.Flatten(),
        nn.Linear(4 * 2 * 2, 5),
    )
    for act_bits in (8, 4):
        q = prepare(net, weight_bits=4, act_bits=act_bits)
        calibrate(q, [torch.rand(64, 2, 8, 8) * 2 - 0.5])
        q.eval()
        g = lower(q, torch.zeros(1, 2, 8, 8))
        assert "avgpool2d1" in g.nodes and g.nodes["input"].quant.bits == act_bits
        x = random_inputs((2, 8, 8), n=100, seed=act_bits)
        with torch.no_grad():
            ref = q(torch.from_numpy(x)).numpy()
        out_q = g.nodes[g.outputs[0]].out_q
        y = dequantize(Runtime(g, mode="int").step(x), out_q)
        assert np.abs(y - ref).max() <= out_q.scale * 1.001
        assert np.mean(np.abs(y - ref) > 1e-6) < 0.01


def test_spiking_net_lowers_to_lif_and_matches_spike_for_spike():
    from neuroplast.quantize.recipes import build, digits_data
    from neuroplast.quantize.train import TrainConfig, train

    torch.manual_seed(0)
    model, recipe = build("snn", 8, 8)
    (xtr, ytr), (xte, _) = digits_data("snn")
    train(model, (xtr[:, :400], ytr[:400]), TrainConfig(epochs=1, progress=False), time_major=True)
    model.eval()
    g = lower(model, recipe.example_input())
    assert [n.kind for n in g.nodes.values()] == ["Input", "Linear", "LIF", "Linear", "LIF"]
    assert g.nodes["linear1"].out_q.bits == 16 and g.nodes["lif1"].v_q == g.nodes["linear1"].out_q
    x = xte[:, :40]
    with torch.no_grad():
        ref = model(x).numpy()
    assert ref.sum() > 0  # the comparison is not vacuous
    out = Runtime(g, mode="int").run(x.numpy().astype(np.int8))
    assert out.shape == ref.shape
    assert np.array_equal(out.astype(np.float32), ref)


def test_unsupported_layer_is_named():
    import brevitas.nn as qnn

    m = torch.nn.Sequential(qnn.QuantIdentity(return_quant_tensor=True), torch.nn.Tanh())
    with pytest.raises(ExportError, match="module '1' \\(Tanh\\) .*replace it with ReLU"):
        lower(m, torch.zeros(1, 4))
    m = torch.nn.Sequential(torch.nn.Linear(2, 2), qnn.QuantLinear(2, 2, bias=False))
    with pytest.raises(ExportError, match="input quantizer"):
        lower(m, torch.zeros(1, 2))
