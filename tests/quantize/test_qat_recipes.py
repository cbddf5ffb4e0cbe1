"""QAT recipes: quantizer semantics against numpy references, calibration, training,
checkpoints, torchrun/DDP."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from tlc_models import calibrated

torch = pytest.importorskip("torch")

from neuroplast.errors import DataError, ExportError, NeuroplastError  # noqa: E402
from neuroplast.quantize import calibrate, evaluate, prepare, train  # noqa: E402
from neuroplast.quantize.qat import lif_module_classes  # noqa: E402
from neuroplast.quantize.recipes import build, digits_data, load_model, save_model  # noqa: E402


def test_config_and_layer_validation():
    net = torch.nn.Sequential(torch.nn.Linear(4, 4))
    with pytest.raises(NeuroplastError, match="weight_bits"):
        prepare(net, weight_bits=3)
    with pytest.raises(NeuroplastError, match="act_bits"):
        prepare(net, act_bits=2)
    bn = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
    with pytest.raises(NeuroplastError, match="module '1' \\(BatchNorm2d\\).*fold BatchNorm"):
        prepare(bn)


@pytest.mark.parametrize("bits", [8, 4, 2])
@pytest.mark.parametrize("per_channel", [True, False])
def test_weight_quantizer_matches_numpy_reference(bits, per_channel):
    torch.manual_seed(bits)
    net = torch.nn.Sequential(torch.nn.Linear(16, 8))
    q = prepare(net, weight_bits=bits, per_channel=per_channel)
    layer = q[1]
    w = net[0].weight.detach().numpy().astype(np.float32)
    qmax = 2 ** (bits - 1) - 1
    # symmetric narrow range, scale = max|w| / qmax (per row or per tensor)
    amax = np.abs(w).max(axis=1, keepdims=True) if per_channel else np.abs(w).max()
    scale = (amax / qmax).astype(np.float32)
    ref = np.clip(np.round(w / scale), -qmax, qmax)
    qw = layer.quant_weight()
    assert np.array_equal(qw.int().numpy(), ref.astype(np.int8))
    assert np.allclose(qw.scale.detach().numpy().reshape(np.shape(scale)), scale, rtol=1e-6)
    assert len(np.unique(ref)) <= 2 * qmax + 1


def test_calibration_sets_activation_scale_from_data():
    torch.manual_seed(0)
    q = prepare(torch.nn.Sequential(torch.nn.Linear(8, 4)))
    x = torch.rand(512, 8) * 4 - 2  # |x| <= 2
    calibrate(q, [x[:256], (x[256:], None)])
    s = float(q[0].act_quant.scale())
    assert s == pytest.approx(2.0 / 127, rel=0.05)  # high-percentile of |x| over 127
    with pytest.raises(DataError, match="no calibration"):
        calibrate(q, [])


def test_quant_lif_follows_the_integer_contract():
    """QuantLIF vs a numpy transcription of the contract's LIF recurrence."""
    from brevitas.quant_tensor import IntQuantTensor

    _, QuantLIF = lif_module_classes()
    rng = np.random.default_rng(0)
    T, n, s = 20, 16, 0.0123
    iq = rng.integers(-30, 120, size=(T, 1, n))
    for reset in ("subtract", "zero"):
        lif = QuantLIF(beta=0.85, threshold=0.9, reset=reset)
        cur = torch.tensor(iq * s, dtype=torch.float32, requires_grad=True)
        qt = IntQuantTensor(cur, torch.tensor(s), torch.tensor(0.0), torch.tensor(16.0), True, True)
        spikes = lif(qt)
        beta_q, th = round(0.85 * 2**15), round(0.9 / s)
        v = np.zeros((1, n), np.int64)
        ref = []
        for t in range(T):
            v = ((v * beta_q + 2**14) >> 15) + iq[t]
            sp = v > th
            v = v - th * sp if reset == "subtract" else np.where(sp, 0, v)
            ref.append(sp)
        assert np.array_equal(spikes.detach().numpy(), np.array(ref, np.float32))
        spikes.sum().backward()  # the surrogate gradient reaches the current
        assert torch.count_nonzero(cur.grad) > 0


def test_training_learns_digits_and_checkpoint_round_trips(tmp_path):
    torch.manual_seed(0)
    model, r = build("mlp", 8, 8)
    (xtr, ytr), (xte, yte) = digits_data("mlp")
    hist = train(model, (xtr, ytr), epochs=3, lr=3e-3, progress=False, val=(xte, yte))
    assert hist.loss[-1] < hist.loss[0]
    acc = evaluate(model, (xte, yte))
    assert acc > 0.85  # 10 classes: chance is 0.1
    p = save_model(tmp_path / "m.pt", model, "mlp", 8, 8)
    m2, r2 = load_model(p)
    assert r2.name == "mlp"
    with torch.no_grad():
        assert torch.equal(m2(xte), model.eval()(xte))
    with pytest.raises(ExportError, match="8-bit weights, not 4"):
        load_model(p, weight_bits=4)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ExportError, match="junk.pt"):
        load_model(tmp_path / "junk.pt")
    torch.save({"recipe": "mlp"}, tmp_path / "plain.pt")
    with pytest.raises(ExportError, match="neuroplast-qat-v1"):
        load_model(tmp_path / "plain.pt")
    with pytest.raises(DataError):
        train(model, (xtr, ytr[:10]), epochs=1, progress=False)


def test_calibrated_helper_models_are_quantized():
    model, _ = calibrated("cnn")
    assert all(np.isfinite(float(m.act_quant.scale())) for m in model if hasattr(m, "act_quant"))


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_torchrun_ddp_two_processes(tmp_path):
    """Two processes under torchrun (gloo): DDP averages gradients, rank 0 saves."""
    out = tmp_path / "ddp.pt"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_port",
            str(_free_port()),  # a fixed port collides with other runs on a shared machine
            "-m",
            "neuroplast.quantize.train",
            "--recipe",
            "mlp",
            "--epochs",
            "1",
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert "rank 0/2" in res.stdout
    model, _ = load_model(out)
    (_, _), (xte, yte) = digits_data("mlp")
    assert evaluate(model, (xte, yte)) > 0.3  # one epoch on half the data per rank
