"""The compiled pooled event layer (``backend="native"``: _ring_split_py's C port in
neuroplast._native) against an independent dense conv3d reference, and bit-identical to
the numba path when numba is installed."""

from __future__ import annotations

import numpy as np
import pytest

from neuroplast.apps.motion.event_layer import compile_taps, hd_event_run, numba_available
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
    z = hd_event_run(taps, ev, n_bins, backend="native", pooled=True)
    assert z.shape == (n_bins, c) and z.dtype == np.float32
    np.testing.assert_allclose(z, _dense_pooled(a, k.weight, k.bias), atol=2e-5)
    for binary in (True, False):
        dup = np.sort(np.concatenate([ev, ev[::3]]), order="t")
        zn = hd_event_run(taps, dup, n_bins, backend="native", pooled=True, binary=binary)
        ref = hd_event_run(taps, dup, n_bins, backend="numpy", pooled=True, binary=binary)
        np.testing.assert_allclose(zn, ref, atol=2e-5)
        if numba_available():
            zb = hd_event_run(taps, dup, n_bins, backend="numba", pooled=True, binary=binary)
            np.testing.assert_array_equal(zn, zb)


def test_native_backend_refuses_unpooled_and_bad_tables():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((3, 2, 3, 3, 3)).astype(np.float32)
    k = prune_kernel(HDKernel(w, np.zeros(3, np.float32)), 60, "split")
    ev, _ = _stream((8, 7), 10, 0.2, 0)
    taps = compile_taps(k.weight, k.bias, (8, 7))
    with pytest.raises(DataError, match="pooled"):
        hd_event_run(taps, ev, 10, backend="native")
    lib = native_module()
    bad = np.array([5, 1], np.int64)  # unsorted keys are refused before any access
    z = np.zeros(1, np.int64)
    f = np.zeros(1, np.float32)
    with pytest.raises(ValueError, match="sorted|range"):
        lib.op(30, (1, 8, 7, 1, 6, 3, 5, 6, 3, 3, 2, 0, 0, 0, 3),
               (bad, z, z, z, z, z, f, z, z, z, z, f, np.zeros(3 * 5 * 6 * 3, np.float32),
                np.zeros(6 * 3)))  # fmt: skip
