"""Event-driven HD layer vs the dense torch conv3d (independent reference), runtime node, cost."""

from __future__ import annotations

import numpy as np
import pytest

from neuroplast.apps.motion.event_layer import compile_taps, hd_event_run, numba_available
from neuroplast.apps.motion.events import events_to_voxels, make_events
from neuroplast.apps.motion.model import HDKernel, prune_kernel
from neuroplast.errors import DataError, GraphError

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _kernel(c=5, kt=4, k=3, keep=150, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((c, 2, kt, k, k)).astype(np.float32)
    return prune_kernel(HDKernel(w, rng.standard_normal(c).astype(np.float32)), keep)


def _events(size=(11, 9), n_bins=23, density=0.08, seed=1):
    rng = np.random.default_rng(seed)
    w, h = size
    a = rng.random((2, n_bins, h, w)) < density
    p, t, y, x = np.nonzero(a)
    t_us = t * 1000 + rng.integers(0, 1000, t.size)
    ev = make_events(t_us, x, y, p)
    return ev[np.argsort(ev["t"], kind="stable")], a


def _torch_reference(a, weight, bias):
    """Independent dense reference written directly with conv3d (no shared code)."""
    w = torch.from_numpy(weight)
    b = torch.from_numpy(bias)
    x = torch.from_numpy(a[None].astype(np.float32))
    kt = weight.shape[2]
    x = F.pad(x, (0, 0, 0, 0, kt - 1, 0))
    z = torch.maximum(F.conv3d(x, w, b), F.conv3d(x[:, [1, 0]], w, b))
    return z[0].numpy().transpose(1, 0, 2, 3)  # (T, C, Ho, Wo)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_event_layer_equals_dense_conv3d(backend):
    if backend == "numba" and not numba_available():
        pytest.skip("numba not installed")
    k = _kernel()
    ev, a = _events()
    taps = compile_taps(k.weight, k.bias, (11, 9))
    z = hd_event_run(taps, ev, 23, chunk=5, backend=backend)  # chunk edges inside delays
    ref = _torch_reference(a, k.weight, k.bias)
    assert z.shape == ref.shape
    # the training path (grouped-conv identity) computes the same function
    from neuroplast.apps.motion.model import hd_logits_torch

    zt = hd_logits_torch(
        torch.from_numpy(a[None].astype(np.float32)),
        torch.from_numpy(k.weight),
        torch.from_numpy(k.bias),
    )[0].numpy()
    np.testing.assert_allclose(zt.transpose(1, 0, 2, 3), ref, atol=2e-5)
    np.testing.assert_allclose(z, ref, atol=2e-5, rtol=1e-5)
    pooled = hd_event_run(taps, ev, 23, chunk=23, backend=backend, pooled=True)
    np.testing.assert_allclose(pooled, ref.mean(axis=(2, 3)), atol=2e-5)


def test_causality_and_delay_span():
    k = _kernel(keep=10_000)  # dense
    taps = compile_taps(k.weight, k.bias, (9, 9))
    ev = make_events([5000], [4], [4], [1])  # one ON event in bin 5
    z = hd_event_run(taps, ev, 15, chunk=4) - k.bias[None, :, None, None]
    touched = np.abs(z).reshape(15, -1).max(axis=1) > 0
    # affects exactly bins 5 .. 5 + n_delays - 1 (causal, finite delays)
    assert touched.tolist() == [5 <= t < 5 + 4 for t in range(15)]


def test_cost_is_events_times_nnz():
    k = _kernel(keep=37)
    taps = compile_taps(k.weight, k.bias, (11, 9))
    # each event touches the taps of its polarity in both flip branches: nnz in total
    assert taps.offsets[0].size == taps.offsets[1].size == 37 == taps.nnz


def test_duplicate_events_collapse_to_boolean_raster():
    k = _kernel()
    ev, a = _events(seed=4)
    taps = compile_taps(k.weight, k.bias, (11, 9))
    doubled = np.sort(np.concatenate([ev, ev]), order="t")
    np.testing.assert_allclose(
        hd_event_run(taps, doubled, 23), _torch_reference(a, k.weight, k.bias), atol=2e-5
    )
    assert events_to_voxels(doubled, (11, 9), 23).sum() == a.sum()


def test_bad_inputs():
    k = _kernel()
    with pytest.raises(DataError, match="smaller than"):
        compile_taps(k.weight, k.bias, (2, 2))
    taps = compile_taps(k.weight, k.bias, (11, 9))
    with pytest.raises(DataError, match="outside"):
        hd_event_run(taps, make_events([0], [20], [0], [0]), 3)
    with pytest.raises(DataError, match="backend"):
        hd_event_run(taps, make_events([0], [1], [0], [0]), 3, backend="gpu")


def test_runtime_node_matches_reference_and_bundle_roundtrip(tmp_path):
    import neuroplast
    from neuroplast.apps.motion.runtime_node import hd_graph
    from neuroplast.bundle import save_bundle
    from neuroplast.graph import Graph
    from neuroplast.runtime import Runtime, SparseInput

    k = _kernel()
    _, a = _events(n_bins=12)
    ref = _torch_reference(a, k.weight, k.bias)
    g = hd_graph(k.weight, k.bias, (11, 9))
    rt = Runtime(g)
    zs = np.stack([rt.step(SparseInput(np.flatnonzero(a[:, t]))) for t in range(12)])
    np.testing.assert_allclose(zs, ref, atol=2e-5)
    g2 = Graph.from_dict(g.to_dict()) if hasattr(Graph, "from_dict") else g
    assert g2.nodes["hd"].kind == "HDDelayConv"
    save_bundle(tmp_path / "b", g)
    rt2 = neuroplast.load(tmp_path / "b")
    out = rt2.run(a.transpose(1, 0, 2, 3).astype(np.float32))
    np.testing.assert_allclose(out, ref, atol=2e-5)
    with pytest.raises(GraphError):
        Runtime(g, mode="int")


def test_runtime_backend_request_reaches_the_event_op():
    """``Runtime(backend="numpy")`` runs the event scatter in numpy too (the reference
    everywhere), ``op_backends`` says which loop each such node runs, and both runtimes
    agree with the dense reference."""
    from neuroplast.apps.motion.event_layer import fast_backend
    from neuroplast.apps.motion.runtime_node import hd_graph
    from neuroplast.runtime import Runtime, SparseInput

    k = _kernel()
    _, a = _events(n_bins=12)
    ref = _torch_reference(a, k.weight, k.bias)
    g = hd_graph(k.weight, k.bias, (11, 9))
    ref_rt, auto_rt = Runtime(g, backend="numpy"), Runtime(g)
    assert ref_rt.op_backends == {"hd": "numpy"} and ref_rt.backend == "numpy"
    assert auto_rt.op_backends == {"hd": fast_backend()}
    if fast_backend() != "numpy":
        assert f"'hd' {fast_backend()}" in auto_rt.backend_reason
    for rt in (ref_rt, auto_rt):
        zs = np.stack([rt.step(SparseInput(np.flatnonzero(a[:, t]))) for t in range(12)])
        np.testing.assert_allclose(zs, ref, atol=2e-5)


def test_runtime_float_mode_follows_a_weight_and_bias_update():
    """Float mode's compiled tables fold in the bias: a bias array replaced between
    steps shifts the next output by exactly the change, and a weight written in place
    gives the dense reference of the new kernel once the ``K_T - 1`` ms of partial sums
    carried from before have left the window (never the stale tables)."""
    from neuroplast.apps.motion.event_layer import fast_backend
    from neuroplast.apps.motion.runtime_node import hd_graph
    from neuroplast.runtime import Runtime, SparseInput

    k, k2 = _kernel(), _kernel(seed=5)
    _, a = _events(n_bins=20)
    kt, u, u2 = k.weight.shape[2], 6, 12  # bias update before step u, weight before u2
    ref_old = _torch_reference(a, k.weight, k.bias)
    ref_new = _torch_reference(a, k2.weight, k2.bias)
    for backend in sorted({"numpy", fast_backend()}):
        rt = Runtime(hd_graph(k.weight, k.bias, (11, 9)), backend=backend)
        zs = []
        for t in range(20):
            if t == u:
                rt.params["hd"]["bias"] = k2.bias.copy()
            if t == u2:
                rt.params["hd"]["weight"][...] = k2.weight
            zs.append(rt.step(SparseInput(np.flatnonzero(a[:, t]))))
        zs = np.stack(zs)
        np.testing.assert_allclose(zs[:u], ref_old[:u], atol=2e-5)
        shift = (k2.bias - k.bias)[None, :, None, None]
        np.testing.assert_allclose(zs[u:u2], ref_old[u:u2] + shift, atol=2e-5)
        np.testing.assert_allclose(zs[u2 + kt - 1 :], ref_new[u2 + kt - 1 :], atol=2e-5)
        assert np.abs(ref_new[u2 + kt - 1 :] - ref_old[u2 + kt - 1 :] - shift).max() > 0.1


def _stream_with_edges(size, n_bins, density, seed):
    """Random voxels plus events on all four sensor borders and corners, two empty
    ms, a burst of every pixel ON and one of every pixel with both polarities."""
    rng = np.random.default_rng(seed)
    w, h = size
    a = rng.random((2, n_bins, h, w)) < density
    a[:, :, [0, -1], :] |= rng.random((2, n_bins, 2, w)) < 0.3
    a[:, :, :, [0, -1]] |= rng.random((2, n_bins, h, 2)) < 0.3
    a[:, 3:5] = False  # empty ms
    a[1, 6] = True  # burst: every pixel ON
    a[0, 6] = False
    a[:, 8] = True  # every pixel both polarities (A_d = 0)
    p, t, y, x = np.nonzero(a)
    ev = make_events(t * 1000 + rng.integers(0, 1000, t.size), x, y, p)
    return ev[rng.permutation(ev.size)], a  # any order in: the layer sorts


@pytest.mark.parametrize(
    ("shape", "keep"),
    [((5, 4, 3, 3), 10**6), ((5, 4, 3, 3), 40), ((4, 6, 5, 5), 300), ((3, 3, 3, 5), 50)],
)
@pytest.mark.parametrize("basis", ["onoff", "split"])
def test_pooled_split_path_equals_fft_reference_and_maxbranch(shape, keep, basis):
    if not numba_available():
        pytest.skip("numba not installed")
    from neuroplast.apps.motion.model import hd_logits_torch, hd_pooled_torch

    c, kt, ky, kx = shape
    rng = np.random.default_rng(keep)
    w = rng.standard_normal((c, 2, kt, ky, kx)).astype(np.float32)
    k = prune_kernel(HDKernel(w, rng.standard_normal(c).astype(np.float32)), keep, basis)
    size, n_bins = (13, 10), 16
    ev, a = _stream_with_edges(size, n_bins, 0.1, seed=keep)
    taps = compile_taps(k.weight, k.bias, size)
    assert taps.split.nnz_d <= taps.nnz and taps.split.nnz_s <= taps.nnz
    at = torch.from_numpy(a[None].astype(np.float32))
    wt, bt = torch.from_numpy(k.weight), torch.from_numpy(k.bias)
    ref = hd_logits_torch(at, wt, bt)[0].mean(dim=(2, 3)).numpy().T  # (T, C)
    if ky == kx:
        fft = hd_pooled_torch(at, wt, bt)[0].numpy().T
        np.testing.assert_allclose(fft, ref, atol=2e-5)
    old = hd_event_run(taps, ev, n_bins, backend="numba-maxbranch", pooled=True)
    np.testing.assert_allclose(old, ref, atol=2e-5)
    z = hd_event_run(taps, ev, n_bins, backend="numba", pooled=True)
    assert z.shape == (n_bins, c) and z.dtype == np.float32
    np.testing.assert_allclose(z, ref, atol=2e-5)
    np.testing.assert_allclose(z, old, atol=2e-5)
    assert (z.argmax(1) == old.argmax(1)).all()
    np.testing.assert_allclose(z[3:5], ref[3:5], atol=2e-5)  # empty ms: carried delays only


def test_pooled_split_path_non_binary_and_chunk_edges():
    if not numba_available():
        pytest.skip("numba not installed")
    k = _kernel(c=4, kt=5, k=3, keep=120, seed=3)
    ev, _ = _events(size=(9, 8), n_bins=12, density=0.15, seed=5)
    taps = compile_taps(k.weight, k.bias, (9, 8))
    dup = np.sort(np.concatenate([ev, ev[::3]]), order="t")
    for binary in (True, False):
        old = hd_event_run(taps, dup, 12, backend="numpy", pooled=True, binary=binary)
        new = hd_event_run(taps, dup, 12, backend="numba", pooled=True, binary=binary)
        np.testing.assert_allclose(new, old, atol=2e-5)
    empty = hd_event_run(taps, ev[:0], 5, backend="numba", pooled=True)
    np.testing.assert_array_equal(empty, np.broadcast_to(k.bias, (5, 4)))
    with pytest.raises(DataError, match="backend"):
        hd_event_run(taps, ev, 12, backend="cuda", pooled=True)


def test_node_registration_is_idempotent():
    import importlib
    from dataclasses import dataclass
    from typing import ClassVar

    import neuroplast.apps.motion.runtime_node as rn
    from neuroplast.graph.nodes import NODE_KINDS, Node, register_node
    from neuroplast.runtime.kernels import OPS

    importlib.reload(rn)
    importlib.reload(rn)  # a re-import registers the new class, no error
    assert NODE_KINDS["HDDelayConv"] is rn.HDDelayConv
    assert OPS[rn.HDDelayConv] is rn.HDDelayConvKernel
    assert register_node(rn.HDDelayConv) is rn.HDDelayConv

    @dataclass(frozen=True, eq=False)
    class Impostor(Node):  # another class claiming the kind is refused
        kind: ClassVar[str] = "HDDelayConv"

    with pytest.raises(GraphError, match="already registered"):
        register_node(Impostor)
