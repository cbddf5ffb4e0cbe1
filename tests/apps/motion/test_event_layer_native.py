"""The compiled pooled event layer against an independent dense conv3d reference:
``backend="native"`` (the output-stationary row-chunk path, _pull_rows_py's C port) and
``"native-taps"`` (_ring_split_py's C port). Each is bit-identical to its numba twin
(``"numba-rows"`` / ``"numba"``); across the two formulations ``D`` is bit-identical (the
same float32 additions per accumulator, in the same order) and only ``sum |D|`` is
summed differently (float64: the ring telescopes ``|new| - |old|`` per tap, the pull
path sums ``|D|`` once), so they agree to float32 rounding of the pooled output:
``rtol = 1e-6`` stated below (observed: equal on the bench movie)."""

from __future__ import annotations

import numpy as np
import pytest

from neuroplast.apps.motion.event_layer import (
    compile_taps,
    hd_event_run,
    numba_available,
    pull_rows_ops,
)
from neuroplast.apps.motion.events import make_events
from neuroplast.apps.motion.model import HDKernel, prune_kernel
from neuroplast.errors import DataError
from neuroplast.runtime.native import native_module

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(native_module() is None, reason="extension not built")


def _stream(size, n_bins, density, seed):
    rng = np.random.default_rng(seed)
    w, h = size
    a = rng.random((2, n_bins, h, w)) < density
    a[1, 3] = True  # a burst: every pixel ON
    a[0, 3] = False
    a[:, 5] = True  # every pixel both polarities (A_d = 0)
    a[:, 7] = False  # an empty ms: carried delays only
    p, t, y, x = np.nonzero(a)
    ev = make_events(t * 1000 + rng.integers(0, 1000, t.size), x, y, p)
    return ev[rng.permutation(ev.size)], a


def _dense_pooled(a, weight, bias):
    """mean_{y,x} max(conv3d(A), conv3d(flip A)) + b, written with torch conv3d."""
    f = torch.nn.functional
    w, b = torch.from_numpy(weight), torch.from_numpy(bias)
    x = f.pad(torch.from_numpy(a[None].astype(np.float32)), (0, 0, 0, 0, weight.shape[2] - 1, 0))
    z = torch.maximum(f.conv3d(x, w, b), f.conv3d(x[:, [1, 0]], w, b))
    return z[0].mean(dim=(2, 3)).numpy().T  # (T, C)


@pytest.mark.parametrize(
    ("shape", "keep", "seed"),
    [
        ((5, 4, 3, 3), 10**6, 0),
        ((5, 4, 3, 3), 40, 1),
        ((4, 6, 5, 5), 300, 2),
        ((3, 3, 3, 5), 50, 3),
    ],
)
def test_native_pooled_layer_equals_dense_reference(shape, keep, seed):
    c, kt, ky, kx = shape
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((c, 2, kt, ky, kx)).astype(np.float32)
    k = prune_kernel(HDKernel(w, rng.standard_normal(c).astype(np.float32)), keep, "split")
    size, n_bins = (13, 10), 16
    ev, a = _stream(size, n_bins, 0.1, seed)
    taps = compile_taps(k.weight, k.bias, size)
    for be in ("native", "native-taps"):
        z = hd_event_run(taps, ev, n_bins, backend=be, pooled=True)
        assert z.shape == (n_bins, c) and z.dtype == np.float32
        np.testing.assert_allclose(z, _dense_pooled(a, k.weight, k.bias), atol=2e-5)
    for binary in (True, False):
        dup = np.sort(np.concatenate([ev, ev[::3]]), order="t")
        zn = hd_event_run(taps, dup, n_bins, backend="native", pooled=True, binary=binary)
        zt = hd_event_run(taps, dup, n_bins, backend="native-taps", pooled=True, binary=binary)
        ref = hd_event_run(taps, dup, n_bins, backend="numpy", pooled=True, binary=binary)
        np.testing.assert_allclose(zn, ref, atol=2e-5)
        np.testing.assert_allclose(zn, zt, rtol=1e-6, atol=1e-6)
        if numba_available():
            zb = hd_event_run(taps, dup, n_bins, backend="numba", pooled=True, binary=binary)
            np.testing.assert_array_equal(zt, zb)
            zr = hd_event_run(taps, dup, n_bins, backend="numba-rows", pooled=True, binary=binary)
            np.testing.assert_array_equal(zn, zr)


def test_native_backend_refuses_unpooled_and_bad_tables():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((3, 2, 3, 3, 3)).astype(np.float32)
    k = prune_kernel(HDKernel(w, np.zeros(3, np.float32)), 60, "split")
    ev, _ = _stream((8, 7), 10, 0.2, 0)
    taps = compile_taps(k.weight, k.bias, (8, 7))
    with pytest.raises(DataError, match="pooled"):
        hd_event_run(taps, ev, 10, backend="native-taps")
    lib = native_module()
    bad = np.array([5, 1], np.int64)  # unsorted keys are refused before any access
    z = np.zeros(1, np.int64)
    f = np.zeros(1, np.float32)
    with pytest.raises(ValueError, match="sorted|range"):
        lib.op(30, (1, 8, 7, 1, 6, 3, 5, 6, 3, 3, 2, 0, 0, 0, 3),
               (bad, z, z, z, z, z, f, z, z, z, z, f, np.zeros(3 * 5 * 6 * 3, np.float32),
                np.zeros(6 * 3)))  # fmt: skip


def _kernel(shape, keep, seed):
    c, kt, ky, kx = shape
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((c, 2, kt, ky, kx)).astype(np.float32)
    return prune_kernel(HDKernel(w, rng.standard_normal(c).astype(np.float32)), keep, "split")


@pytest.mark.parametrize(
    ("shape", "keep", "size", "seed"),
    [
        ((5, 4, 3, 3), 10**6, (13, 10), 0),  # dense kernel, narrow rows (kx < lanes)
        ((4, 6, 5, 11), 150, (17, 9), 1),  # rows wider than one chunk
        ((3, 5, 9, 20), 900, (23, 12), 2),  # kx > 2 lanes, 4 output columns
        ((2, 3, 4, 4), 20, (4, 4), 3),  # sensor = kernel: a 1 x 1 output grid
        ((3, 2, 1, 1), 6, (7, 5), 4),  # 1 x 1 kernel
        ((36, 3, 17, 17), 2000, (40, 33), 5),  # the paper's class count, 17 x 17 field
    ],
)
def test_row_chunks_equal_dense_reference_and_ring(shape, keep, size, seed):
    """native (pull rows) == dense conv3d (atol 2e-5), == ring to float32 rounding, and
    bit-identical to its numba twin; random kernels, pruning levels and sensor sizes."""
    k = _kernel(shape, keep, seed)
    n_bins = 14
    ev, a = _stream(size, n_bins, 0.15, seed)
    taps = compile_taps(k.weight, k.bias, size)
    z = hd_event_run(taps, ev, n_bins, backend="native", pooled=True)
    np.testing.assert_allclose(z, _dense_pooled(a, k.weight, k.bias), atol=2e-5)
    zt = hd_event_run(taps, ev, n_bins, backend="native-taps", pooled=True)
    np.testing.assert_allclose(z, zt, rtol=1e-6, atol=1e-6)
    if numba_available():
        zr = hd_event_run(taps, ev, n_bins, backend="numba-rows", pooled=True)
        np.testing.assert_array_equal(z, zr)


def test_row_chunks_cover_every_tap_once():
    """Rebuild W_d from the chunk table (offsets decoded back to (c, d, dy, dx)):
    every non-zero tap appears exactly once, with its weight."""
    k = _kernel((4, 5, 6, 19), 300, 7)
    size = (30, 11)
    taps = compile_taps(k.weight, k.bias, size)
    rw = taps.rows
    c_n, kt, ky, kx = 4, 5, 6, 19
    w_d = k.weight[:, 0] - k.weight[:, 1]
    rebuilt = np.zeros_like(w_d)
    hits = np.zeros(w_d.shape, int)
    ys = rw.ystart.reshape(c_n, kt, ky + 1)
    for c in range(c_n):
        for d in range(kt):
            for dy in range(ky):
                for i in range(ys[c, d, dy], ys[c, d, dy + 1]):
                    dx0 = rw.pad_left - dy * rw.row_stride - (rw.lanes - 1) - int(rw.off[i])
                    for j in range(rw.lanes):
                        dx = dx0 + rw.lanes - 1 - j
                        if rw.vals[i, j] != 0:
                            assert 0 <= dx < kx
                            rebuilt[c, kt - 1 - d, dy, dx] += rw.vals[i, j]
                            hits[c, kt - 1 - d, dy, dx] += 1
    np.testing.assert_array_equal(rebuilt, w_d)
    assert hits.max() == 1
    assert rw.n_chunks <= np.count_nonzero(w_d)


def _adversarial(size, n_bins, rng):
    w, h = size
    streams = {}
    t = rng.integers(0, 1000, 400)  # everything in one ms
    streams["one bin"] = make_events(
        2000 + t, rng.integers(0, w, 400), rng.integers(0, h, 400), rng.integers(0, 2, 400)
    )
    n = 3000  # one pixel spamming every ms, both polarities
    streams["one pixel"] = make_events(
        np.sort(rng.integers(0, n_bins * 1000, n)), np.full(n, w // 2), np.full(n, h - 1),
        rng.integers(0, 2, n),
    )  # fmt: skip
    xs, ys = np.meshgrid([0, w - 1], np.arange(h))  # border columns and rows, corners
    bx = np.concatenate([xs.ravel(), np.arange(w), np.arange(w)])
    by = np.concatenate([ys.ravel(), np.zeros(w, int), np.full(w, h - 1)])
    tb = rng.integers(0, n_bins, bx.size) * 1000
    streams["borders"] = make_events(tb, bx, by, rng.integers(0, 2, bx.size))
    m = 500  # sparse: most ms empty (only 3 ms carry events)
    streams["empty bins"] = make_events(
        rng.choice([1000, 9000, 16000], m), rng.integers(0, w, m), rng.integers(0, h, m),
        rng.integers(0, 2, m),
    )  # fmt: skip
    streams["none"] = make_events([], [], [], [])
    return streams


def test_row_chunks_adversarial_streams():
    """One bin holding every event, one pixel spamming, border-only events, mostly empty
    bins, no events, out-of-range bins dropped, unsorted timestamps (sorted internally):
    native == numba-rows exactly, == ring to float32 rounding, == dense conv3d."""
    from neuroplast.apps.motion.events import events_to_voxels

    k = _kernel((6, 7, 5, 9), 400, 11)
    size, n_bins = (16, 12), 18
    taps = compile_taps(k.weight, k.bias, size)
    rng = np.random.default_rng(3)
    for name, ev in _adversarial(size, n_bins, rng).items():
        a = events_to_voxels(ev, size, n_bins)
        z = hd_event_run(taps, ev, n_bins, backend="native", pooled=True)
        np.testing.assert_allclose(z, _dense_pooled(a, k.weight, k.bias), atol=2e-5, err_msg=name)
        zs = hd_event_run(taps, ev[::-1], n_bins, backend="native", pooled=True)
        np.testing.assert_array_equal(z, zs, err_msg=name)  # order of arrival is irrelevant
        zt = hd_event_run(taps, ev, n_bins, backend="native-taps", pooled=True)
        np.testing.assert_allclose(z, zt, rtol=1e-6, atol=1e-6, err_msg=name)
        if numba_available():
            zr = hd_event_run(taps, ev, n_bins, backend="numba-rows", pooled=True)
            np.testing.assert_array_equal(z, zr, err_msg=name)
    late = make_events([5000, 40000], [1, 2], [1, 2], [0, 1])  # bin 40 is past n_bins
    z = hd_event_run(taps, late, n_bins, backend="native", pooled=True)
    z1 = hd_event_run(taps, late[:1], n_bins, backend="native", pooled=True)
    np.testing.assert_array_equal(z, z1)


def test_pull_rows_ops_counts_the_executed_chunks():
    k = _kernel((3, 4, 5, 5), 60, 2)
    size = (16, 16)  # Ho = 12: rows 4 .. 11 reach every dy
    taps = compile_taps(k.weight, k.bias, size)
    one = make_events([0], [4], [6], [1])  # an interior pixel: every chunk
    assert pull_rows_ops(taps, one, 3) == taps.rows.n_chunks
    both = make_events([0, 1], [4, 4], [4, 4], [0, 1])  # ON and OFF: A_d = 0, no chunks
    assert pull_rows_ops(taps, both, 3) == 0
    top = make_events([0], [4], [0], [0])  # row 0 reaches only dy = 0
    ys = taps.rows.ystart.reshape(-1, taps.ky + 1)
    assert pull_rows_ops(taps, top, 3) == int((ys[:, 1] - ys[:, 0]).sum())


def test_pull_rows_refuses_corrupt_tables():
    """Offsets that would write outside the plane, or unsorted rows, raise ValueError in
    the extension before any access."""
    k = _kernel((3, 3, 3, 3), 60, 0)
    size, n_bins = (8, 7), 10
    taps = compile_taps(k.weight, k.bias, size)
    ev, _ = _stream(size, n_bins, 0.2, 0)
    hd_event_run(taps, ev, n_bins, backend="native", pooled=True)
    from dataclasses import replace

    rw = taps.rows
    bad_off = rw.off.copy()
    bad_off[0] -= 10**6
    with pytest.raises(ValueError, match="pull_rows"):
        hd_event_run(replace(taps, rows=replace(rw, off=bad_off)), ev, n_bins,
                     backend="native", pooled=True)  # fmt: skip
    bad_ys = rw.ystart.copy()
    bad_ys[1], bad_ys[2] = bad_ys[2] + 1, bad_ys[1]
    with pytest.raises(ValueError, match="pull_rows"):
        hd_event_run(replace(taps, rows=replace(rw, ystart=bad_ys)), ev, n_bins,
                     backend="native", pooled=True)  # fmt: skip


@pytest.mark.parametrize(
    ("shape", "keep", "size", "seed"),
    [
        ((5, 4, 3, 3), 10**6, (13, 10), 0),
        ((7, 5, 9, 20), 900, (23, 12), 2),  # kx > 16: rows need two 16-lane chunks
        ((36, 3, 17, 17), 2000, (40, 33), 5),
    ],
)
def test_pull_rows_lanes_and_class_groups_are_bit_identical(shape, keep, size, seed):
    """16-lane chunks (AVX-512 clone) and any class group g (g planes, chunk table re-laid
    per (group, delay, row)) change only the order of additions that never meet in one
    float: outputs equal numba-rows (8 lanes) exactly, and the dense conv3d to 2e-5."""
    k = _kernel(shape, keep, seed)
    n_bins = 12
    ev, a = _stream(size, n_bins, 0.15, seed)
    ref = None
    for lanes in (8, 16):
        taps = compile_taps(k.weight, k.bias, size, row_lanes=lanes)
        assert taps.rows.lanes == lanes
        for g in sorted({1, 2, 5, shape[0], 64}):
            z = hd_event_run(taps, ev, n_bins, backend="native", pooled=True, pull_group=g)
            if ref is None:
                ref = z
                np.testing.assert_allclose(z, _dense_pooled(a, k.weight, k.bias), atol=2e-5)
            np.testing.assert_array_equal(z, ref, err_msg=f"lanes {lanes} g {g}")
        if numba_available():
            zr = hd_event_run(taps, ev, n_bins, backend="numba-rows", pooled=True)
            np.testing.assert_array_equal(zr, ref)


def test_pull_rows_options_refused_and_rmw_probe():
    k = _kernel((3, 3, 3, 3), 60, 0)
    with pytest.raises(DataError, match="row_lanes"):
        compile_taps(k.weight, k.bias, (8, 7), row_lanes=4)
    taps = compile_taps(k.weight, k.bias, (8, 7))
    ev, _ = _stream((8, 7), 10, 0.2, 0)
    with pytest.raises(DataError, match="pull_group"):
        hd_event_run(taps, ev, 10, backend="native", pooled=True, pull_group=0)
    lib = native_module()
    rate, checksum = lib.rmw_peak(0, 3)  # portable level: always there
    assert rate > 0 and np.isfinite(checksum)
    with pytest.raises(ValueError, match="rmw_peak"):
        lib.rmw_peak(7, 3)
    # a larger plane (the pull pass's working set) is swept in 2048-float blocks against
    # the same weights: the plane after 3 reps, as numpy computes it in float32
    n, plane, shift = 2048, 5000, 1
    buf = (np.arange(3 * n + 64 + n) % 7).astype(np.float32) * np.float32(0.125)
    p = buf[n + 32 + shift : n + 32 + shift + 3 * n].copy()  # 5000 rounds up to 3 blocks
    for _ in range(3):
        for b in range(0, 3 * n, n):
            p[b : b + n] = p[b : b + n] + np.float32(1e-7) * buf[:n]
    rate, checksum = lib.rmw_peak(0, 3, shift, plane)
    assert rate > 0 and checksum == pytest.approx(float(p.astype(np.float64).sum()), rel=1e-12)
    with pytest.raises(ValueError, match="plane"):
        lib.rmw_peak(0, 3, 0, 100)


def test_native_per_position_scatter_equals_numba_and_dense_reference():
    """Not pooled, ``backend="native"`` is the chunked scatter compiled (event_scatter):
    equal to the numba loop exactly, to the dense conv3d max-branch reference to 2e-5;
    a base that would write outside the buffer is refused before any access."""
    from neuroplast.apps.motion.event_layer import fast_backend
    from neuroplast.runtime.native import OPS

    assert fast_backend() == "native"
    f = torch.nn.functional
    for shape, keep, size, seed in (
        ((5, 4, 3, 3), 150, (11, 9), 1),
        ((6, 7, 5, 9), 400, (16, 12), 2),
    ):
        k = _kernel(shape, keep, seed)
        n_bins = 14
        ev, a = _stream(size, n_bins, 0.15, seed)
        taps = compile_taps(k.weight, k.bias, size)
        z = hd_event_run(taps, ev, n_bins, chunk=5, backend="native")
        w, b = torch.from_numpy(k.weight), torch.from_numpy(k.bias)
        x = f.pad(torch.from_numpy(a[None].astype(np.float32)), (0, 0, 0, 0, shape[1] - 1, 0))
        ref = torch.maximum(f.conv3d(x, w, b), f.conv3d(x[:, [1, 0]], w, b))[0].numpy()
        np.testing.assert_allclose(z, ref.transpose(1, 0, 2, 3), atol=2e-5, rtol=1e-5)
        if numba_available():
            zb = hd_event_run(taps, ev, n_bins, chunk=5, backend="numba")
            np.testing.assert_array_equal(z, zb)
    lib = native_module()
    buf = np.zeros(10, np.float32)
    off = np.array([0, 3], np.int64)
    wt = np.ones(2, np.float32)
    with pytest.raises(ValueError, match="event_scatter"):
        lib.op(OPS["event_scatter"], (1, 10, 1, 2, 2),
               (buf, np.array([8], np.int64), np.zeros(1, np.uint8), off, wt, off, wt))  # fmt: skip
    assert not buf.any()
