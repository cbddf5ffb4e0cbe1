"""Delay SNN: DCLS kernels against explicit shifts, the sigma schedule, and the QAT
model against its lowered Graph IR running in the neuroplast runtime (bit exact)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("brevitas")

from neuroplast.apps.kws import infer, lower  # noqa: E402
from neuroplast.apps.kws.model import (  # noqa: E402
    DelayQuantLinear,
    KwsNet,
    KwsNetConfig,
    sigma_at_epoch,
)
from neuroplast.runtime import Runtime  # noqa: E402

torch.set_num_threads(1)


def test_hard_delay_kernel_equals_explicit_shift():
    torch.manual_seed(0)
    layer = DelayQuantLinear(3, 2, max_delay=4, learn=True, bits=0)
    layer.hard = True
    x = torch.rand(1, 3, 12)
    y, _ = layer(x)
    w = layer.fc.weight.detach().numpy()
    d = layer.int_delays().numpy()
    xn = x[0].numpy()
    ref = np.zeros((2, 12))
    for i in range(2):
        for j in range(3):
            for t in range(12):
                if t - d[i, j] >= 0:
                    ref[i, t] += w[i, j] * xn[j, t - d[i, j]]
    np.testing.assert_allclose(y[0].detach().numpy(), ref, atol=1e-6)


def test_gaussian_kernel_is_normalised_and_centred():
    layer = DelayQuantLinear(1, 1, max_delay=10, learn=True, bits=0)
    with torch.no_grad():
        layer.fc.weight.fill_(0.7)
        layer.pos.fill_(4.3)
    layer.sigma = 1.0
    k, _ = layer.kernel()
    g = k[0, 0].flip(-1).detach().numpy()  # index = delay
    assert g.sum() == pytest.approx(0.7, rel=1e-5)  # sum_d k[d] = w
    assert (np.arange(11) * g).sum() / g.sum() == pytest.approx(4.3, abs=0.05)
    # gradients reach the position (the delay is learnable)
    y, _ = layer(torch.ones(1, 1, 20))
    y.sum().backward()
    assert layer.pos.grad is not None


def test_sigma_schedule_of_the_paper():
    # sigma_0 = D/2, decays geometrically to 0.23 over the first epochs/4, + 0.27
    assert sigma_at_epoch(0, 20, 16) == pytest.approx(8.27)
    assert sigma_at_epoch(5, 20, 16) == pytest.approx(0.5)
    assert sigma_at_epoch(12, 20, 16) == pytest.approx(0.5)
    mid = sigma_at_epoch(2, 20, 16) - 0.27
    assert mid == pytest.approx(8.0 * (0.23 / 8.0) ** (2 / 5))


@pytest.mark.parametrize("bits", [8, 4])
def test_qat_model_equals_lowered_graph_in_integer_runtime(bits):
    torch.manual_seed(1)
    cfg = KwsNetConfig(n_in=12, hidden=(10, 8), n_classes=4, max_delay=5, weight_bits=bits)
    model = KwsNet(cfg)
    with torch.no_grad():  # spread the delays
        for m in model.layers:
            m.pos.uniform_(0, 5)
    model.eval()
    model.set_hard(True)
    rng = np.random.default_rng(0)
    X = (rng.random((5, 25, 12)) < 0.35).astype(np.float32)
    with torch.no_grad():
        v, spikes = model(torch.from_numpy(X).transpose(1, 2), record=True)
    assert float(spikes[0].mean()) > 0.01  # the neurons do fire
    dep = lower.from_model(model)
    assert all(int(lay.delay.max()) > 0 for lay in dep.layers)
    graph = infer.with_outputs(lower.to_graph(dep), ("out", "lif1", "lif2"))
    rt = Runtime(graph, mode="int")
    y = rt.run(np.ascontiguousarray(X.transpose(1, 0, 2)).astype(np.int8))
    # every spike of every hidden neuron and the readout membrane agree exactly
    np.testing.assert_array_equal(y["lif1"], spikes[0].numpy().transpose(2, 0, 1))
    np.testing.assert_array_equal(y["lif2"], spikes[1].numpy().transpose(2, 0, 1))
    out = np.asarray(y["out"], np.float64) * infer.readout_scale(rt)
    np.testing.assert_allclose(out, v.numpy().transpose(2, 0, 1), rtol=1e-6, atol=1e-6)
    # integer weights stay in the narrow symmetric range of the bit width
    qmax = 2 ** (bits - 1) - 1
    assert all(np.abs(lay.weight_q).max() <= qmax for lay in dep.layers)


def test_learned_delays_solve_a_timing_task_zero_delays_cannot():
    """Two classes differ only in the interval between a spike on channel 0 and one on
    channel 1 (3 vs 9 steps). The neurons are memoryless (beta 0, as DCLS's tau ~ 1 step
    on SHD), so without delays every step sees the same single spikes in both classes;
    only delays can bring the two spikes together."""
    from neuroplast.apps.kws.train import TrainConfig, evaluate, train

    rng = np.random.default_rng(0)
    n, T = 128, 30
    X = np.zeros((n, T, 2), np.float32)
    y = rng.integers(0, 2, n)
    for i in range(n):
        t0 = int(rng.integers(2, 12))
        X[i, t0, 0] = 1
        X[i, t0 + (3 if y[i] == 0 else 9), 1] = 1
    tc = TrainConfig(epochs=16, batch_size=16, lr=2e-3, pos_lr=0.3, max_shift=0, drop=0.0, bands=1)
    accs = {}
    for learn in (True, False):
        cfg = KwsNetConfig(
            n_in=2,
            hidden=(16,),
            n_classes=2,
            max_delay=12 if learn else 0,
            learn_delays=learn,
            beta=0.0,
            beta_out=0.0,
            dropout=0.0,
            weight_bits=8,
        )
        r = train(X[:64], y[:64], X[64:96], y[64:96], cfg, tc)  # epoch chosen on val
        accs[learn] = evaluate(r.model, X[96:], y[96:])  # held-out test
    assert accs[True] >= 0.9
    assert accs[False] <= 0.75  # near chance: the task is invisible without delays


def _lif_autograd(cur, s, beta, v_th, spiking, integer):  # noqa: ANN001, ANN202
    """Reference: the LIF step loop written out, differentiated by autograd step by step
    (the formulation the fused scan replaced)."""
    from neuroplast.apps.kws.model import _Spike, _ste_round

    if not integer:
        s, iq = torch.ones(()), cur
    else:
        iq = _ste_round(cur / s)
        if not torch.is_grad_enabled():
            iq = iq.double()
    beta_q = round(beta * 2**15)
    th = max(1.0, float(np.round(v_th / float(s.detach())))) if integer else v_th
    v, out = torch.zeros_like(iq[..., 0]), []
    for t in range(iq.shape[-1]):
        v = (_ste_round(v * beta_q / 2**15) if integer else v * beta) + iq[..., t]
        if spiking:
            spk = _Spike.apply((v - th) / th)
            out.append(spk.to(cur.dtype))
            v = v * (1.0 - spk.detach())
        else:
            out.append((v * float(s.detach())).to(cur.dtype))
    return torch.stack(out, dim=-1)


@pytest.mark.parametrize("integer", [True, False])
@pytest.mark.parametrize("spiking", [True, False])
def test_fused_lif_scan_equals_the_autograd_step_loop(spiking, integer):
    from neuroplast.apps.kws.model import _lif

    g = torch.Generator().manual_seed(3)
    s = torch.tensor(0.0371, requires_grad=True)  # a weight scale: currents in units of s
    cur = (torch.randn(4, 33, 60, generator=g) * 0.8 + 0.15).requires_grad_(True)
    w = torch.randn(4, 33, 60, generator=g)  # a random loss direction
    res = []
    for fn in (_lif, _lif_autograd):
        y = fn(cur, s, 0.5, 1.0, spiking, integer)
        wrt = [cur, s] if integer else [cur]  # s only reaches the integer path (I / s)
        res.append((y.detach(), torch.autograd.grad((y * w).sum(), wrt)))
    (y0, g0), (y1, g1) = res
    if spiking:
        assert 0.02 < float(y1.mean()) < 0.98  # the spikes vary
    torch.testing.assert_close(y0, y1, rtol=0, atol=0)  # forward bit-exact
    for a, b in zip(g0, g1, strict=True):
        assert float(b.abs().max()) > 0
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    with torch.no_grad():  # evaluation: the float64 integer path, bit-exact too
        torch.testing.assert_close(_lif(cur, s, 0.5, 1.0, spiking, integer),
                                   _lif_autograd(cur, s, 0.5, 1.0, spiking, integer), rtol=0, atol=0)  # fmt: skip
