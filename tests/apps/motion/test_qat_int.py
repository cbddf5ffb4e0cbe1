"""Brevitas QAT of the HD kernel and the integer HDDelayConv: the runtime's integer mode
reproduces the QAT model's integer layer bit for bit; the integer codes stay within
1 LSB of Brevitas' fake-quantized float forward."""

from __future__ import annotations

import numpy as np
import pytest

from neuroplast.apps.motion.events import events_to_voxels
from neuroplast.apps.motion.model import HDKernel, HDParams, TrainParams, prune_kernel
from neuroplast.errors import GraphError

torch = pytest.importorskip("torch")
pytest.importorskip("brevitas")

from neuroplast.apps.motion.qat import (  # noqa: E402
    HDQuantParams,
    QuantizedHD,
    hd_fake_quant,
    int_evidence,
    int_logits,
    train_hd_qat,
)


def _kernel(c=5, kt=4, k=3, keep=150, seed=0, basis="split"):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((c, 2, kt, k, k)).astype(np.float32)
    return prune_kernel(HDKernel(w, rng.standard_normal(c).astype(np.float32)), keep, basis)


def _rasters(n=3, t=20, h=9, w=11, density=0.1, seed=1):
    return np.random.default_rng(seed).random((n, 2, t, h, w)) < density


@pytest.mark.parametrize(
    ("per_class", "backend"), [(True, "native"), (False, "native"), (True, "numpy")]
)
def test_runtime_int_mode_is_bit_exact_with_the_qat_integer_layer(
    per_class, backend, tmp_path, monkeypatch
):
    """Through each integer scatter backend (native: sdk/_native.c event_scatter_i*)."""
    from neuroplast.apps.motion import runtime_node
    from neuroplast.runtime import Runtime, SparseInput
    from neuroplast.runtime.native import native_module

    if backend == "native" and native_module() is None:
        pytest.skip("extension not built")
    monkeypatch.setattr(runtime_node, "fast_backend", lambda: backend)

    kern = _kernel(seed=int(per_class))
    a = _rasters()
    q, _ = train_hd_qat([], [], kern, a[:2], HDQuantParams(per_class=per_class))
    assert q.weight_q.narrow and q.weight_q.per_channel == per_class
    ref = int_logits(q, a)  # (N, C, T, Ho, Wo), dense conv3d on the codes
    assert np.mean(np.abs(ref) >= 127) < 0.02 and np.count_nonzero(ref) > ref.size // 4
    # the FFT path (used for 128 x 128 evaluation) sums the same codes
    np.testing.assert_array_equal(int_evidence(q, a), ref.sum(axis=(3, 4)).transpose(0, 2, 1))
    for i in range(len(a)):
        rt = Runtime(q.graph((11, 9), pooled=False), mode="int")
        out = np.stack([rt.step(SparseInput(np.flatnonzero(a[i][:, t]))) for t in range(20)])
        assert out.dtype == np.int8
        np.testing.assert_array_equal(out, ref[i].transpose(1, 0, 2, 3))
    # pooled graph, dense input, after a bundle round trip of the quantized kernel
    q.save(tmp_path / "q.npz")
    q2 = QuantizedHD.load(tmp_path / "q.npz")
    rt = Runtime(q2.graph((11, 9), pooled=True), mode="int")
    dense = a[0].transpose(1, 0, 2, 3)[:, None].astype(np.int8)  # (T, B=1, 2, H, W)
    ev = rt.run(dense)[:, 0]
    np.testing.assert_array_equal(ev, ref[0].sum(axis=(2, 3)).T)


def test_integer_codes_within_one_lsb_of_the_brevitas_fake_quant_forward():
    from neuroplast.apps.motion.model import hd_logits_torch

    kern = _kernel(c=4, kt=5, k=3, keep=10**6, seed=3)
    a = _rasters(n=2, seed=4)
    q, _ = train_hd_qat([], [], kern, a)
    fq = hd_fake_quant(kern)
    with torch.no_grad():
        w, b = fq(torch.from_numpy(kern.weight), torch.from_numpy(kern.bias))
        z = hd_logits_torch(torch.from_numpy(a.astype(np.float32)), w, b).numpy()
    codes = int_logits(q, a)
    real = np.clip(z / q.out_q.scale, *q.out_q.range)  # the output quantizer's grid
    assert np.abs(real - codes).max() <= 0.5 + 1e-3  # same value, rounded
    assert np.mean(np.round(real) != codes) < 0.01  # differs only at (near-)ties


def test_qat_training_keeps_the_pruning_and_learns():
    from neuroplast.apps.motion.model import prune_mask_of, split_weight
    from neuroplast.apps.motion.simulate import DVSParams, SceneParams, simulate_movie

    scene = SceneParams(size=14, texture_size=28, n_steps=24, f_cut=0.15)
    movies = [simulate_movie(s, scene, DVSParams(threshold=0.8)) for s in range(4)]
    vox = [events_to_voxels(m.events, m.sensor_size, m.n_steps) for m in movies]
    hp = HDParams(n_delays=4, kernel=5)
    from neuroplast.apps.motion.model import init_kernel
    from neuroplast.apps.motion.simulate import class_velocities

    k0 = prune_kernel(init_kernel(hp, 0, class_velocities()), 2000, "split")
    mask = prune_mask_of(k0, "split")
    q, losses = train_hd_qat(
        vox,
        [m.labels for m in movies],
        k0,
        np.stack(vox[:2]),
        train=TrainParams(epochs=3, batch=4, lr=1e-2, stride=1),
        prune_mask=mask,
    )
    assert losses[-1] < losses[0]
    s = split_weight(q.kernel.weight)
    assert np.all(s[~mask] == 0)  # pruned weights stay pruned through quantization
    codes, _ = q.codes()
    assert codes.dtype == np.int8 and np.abs(codes).max() == 127


def test_integer_mode_refusals():
    from neuroplast.apps.motion.runtime_node import EVENT_Q, HDDelayConv
    from neuroplast.graph import Graph
    from neuroplast.graph.nodes import Input
    from neuroplast.quant import QuantSpec
    from neuroplast.runtime import Runtime

    kern = _kernel()

    def graph(in_q, **quant):
        hd = HDDelayConv(weight=kern.weight, bias=kern.bias, **quant)
        return Graph.sequential([("events", Input(shape=(2, 9, 11), quant=in_q)), ("hd", hd)])

    with pytest.raises(GraphError, match="weight_q and out_q"):
        Runtime(graph(EVENT_Q), mode="int")
    q = {"weight_q": QuantSpec(bits=8, scale=0.1, narrow=True), "out_q": QuantSpec(scale=1.0)}
    with pytest.raises(GraphError, match="0/1 events"):
        Runtime(graph(QuantSpec(bits=8, scale=0.5), **q), mode="int")
    with pytest.raises(Exception, match="weight_bits"):
        HDQuantParams(weight_bits=9)


def test_stacked_families_keep_their_codes_and_share_the_output_scale():
    from neuroplast.apps.motion.qat import stack_quantized

    a = _rasters(n=2, seed=5)
    fams = [train_hd_qat([], [], _kernel(c=3, kt=kt, seed=kt), a)[0] for kt in (4, 2)]
    q = stack_quantized(fams, a)
    assert q.kernel.weight.shape == (6, 2, 4, 3, 3)
    codes, _ = q.codes()
    for i, f in enumerate(fams):  # each family's int8 codes, embedded in the longer window
        fc, _ = f.codes()
        np.testing.assert_array_equal(codes[3 * i : 3 * i + 3, :, 4 - fc.shape[2] :], fc)
    np.testing.assert_array_equal(
        int_evidence(q, a), int_logits(q, a).sum(axis=(3, 4)).transpose(0, 2, 1)
    )
