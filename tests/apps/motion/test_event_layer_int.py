"""The integer event scatter of the HD layer (``hd_event_chunk_int``; the C loop
``sdk/_native.c event_scatter_i16/_i32``) against an independent reference: ``torch``
conv3d in float64 on the int8 codes (exact integers), flip-max, the int32 bias and
``neuroplast.quant.requantize`` written out here. The native, numba and numpy backends
and the runtime's integer ``HDDelayConv`` (output codes ``z_q`` and pooled int32
evidence) equal it bit for bit on random kernels and random and adversarial streams
(border pixels, repeated events at one pixel, empty steps, max-magnitude codes); the
int16 / int32 choice follows the kernel bound and is refused or widened where it could
overflow."""

from __future__ import annotations

import numpy as np
import pytest

from neuroplast.apps.motion import runtime_node
from neuroplast.apps.motion.event_layer import (
    compile_int_rows,
    compile_int_taps,
    hd_event_chunk_int,
    hd_event_chunk_int_pull,
    hd_event_evidence_int,
    hd_event_run_int,
    init_int_pull_state,
    init_int_state,
    int_acc_dtype,
    numba_available,
    pull_int_ops,
)
from neuroplast.apps.motion.events import make_events
from neuroplast.errors import DataError
from neuroplast.quant import QuantSpec, quantize_multiplier, requantize
from neuroplast.runtime.native import OPS, native_module

torch = pytest.importorskip("torch")
BACKENDS = (
    ["numpy"]
    + (["numba"] if numba_available() else [])
    + (["native"] if native_module() is not None else [])
)


def _codes(shape, keep, seed, extreme=False):
    """Random int8 codes ``(C, 2, K_T, K_Y, K_X)`` with ``keep`` non-zeros (``extreme``:
    all of magnitude 127, and -128 where the test allows the full int8 range)."""
    rng = np.random.default_rng(seed)
    c, kt, ky, kx = shape
    q = rng.integers(-127, 128, (c, 2, kt, ky, kx)).astype(np.int8)
    if extreme:
        q = np.where(rng.random(q.shape) < 0.5, 127, -127).astype(np.int8)
    flat = q.reshape(-1)
    flat[rng.permutation(flat.size)[keep:]] = 0
    return q


def _raster(size, n_bins, density, seed, adversarial=True):
    """Event counts ``(2, T, H, W)`` and the events (shuffled): random plus, if
    ``adversarial``, every border pixel in both polarities, an empty ms and repeated
    events (3 per voxel) at one corner and one interior pixel."""
    rng = np.random.default_rng(seed)
    w, h = size
    a = (rng.random((2, n_bins, h, w)) < density).astype(np.int64)
    if adversarial:
        a[:, 2, 0, :] = a[:, 2, -1, :] = a[:, 2, :, 0] = a[:, 2, :, -1] = 1
        a[:, 4] = 0  # an empty ms
        a[1, 6, 0, 0] = 3  # repeated events at a corner
        a[0, 6, h // 2, w // 2] = 3
        a[:, 7] = 1  # every pixel, both polarities
    p, t, y, x = np.nonzero(a)
    n = a[p, t, y, x]
    p, t, y, x = (np.repeat(v, n) for v in (p, t, y, x))
    ev = make_events(t * 1000 + rng.integers(0, 1000, t.size), x, y, p)
    return a, ev[rng.permutation(ev.size)]


def _dense_b(a, codes):
    """``max(B_0, B_1)`` (T, C, Ho, Wo) int64 by conv3d in float64 (exact integers)."""
    f = torch.nn.functional
    w = torch.from_numpy(codes.astype(np.float64))
    x = torch.from_numpy(a[None].astype(np.float64))
    x = f.pad(x, (0, 0, 0, 0, codes.shape[2] - 1, 0))
    z = torch.maximum(f.conv3d(x, w), f.conv3d(x[:, [1, 0]], w))[0].numpy()
    return np.rint(z).astype(np.int64).transpose(1, 0, 2, 3)


@pytest.mark.parametrize("form", ["direct", "split"])
@pytest.mark.parametrize(
    ("shape", "keep", "size", "seed", "extreme"),
    [
        ((5, 4, 3, 3), 60, (11, 9), 0, False),
        ((6, 7, 5, 9), 400, (16, 12), 1, False),
        ((3, 3, 3, 5), 10**6, (9, 7), 2, True),  # every tap at +-127: int32 accumulators
        ((4, 2, 2, 2), 10**6, (5, 4), 3, True),
    ],
)
def test_integer_scatter_equals_dense_reference(shape, keep, size, seed, extreme, form):
    codes = _codes(shape, keep, seed, extreme)
    if extreme:
        codes[0, 0, 0, 0, 0] = -128  # the full int8 range
    n_bins = 12
    a, ev = _raster(size, n_bins, 0.2, seed)
    ref = _dense_b(a, codes)
    it = compile_int_taps(codes, size, form)
    q = codes.astype(np.int64)
    w_s, w_d = (
        np.abs(v).reshape(shape[0], -1).sum(axis=1).max()
        for v in (q[:, 0] + q[:, 1], q[:, 0] - q[:, 1])
    )
    bound = np.abs(q).reshape(shape[0], -1).sum(axis=1).max()
    assert it.form == form and it.bound == (bound if form == "direct" else max(2 * w_s, w_d))
    for be in BACKENDS:
        for chunk in (1, 5, 32):
            z = hd_event_run_int(it, ev, n_bins, chunk=chunk, backend=be, binary=False)
            assert z.dtype == np.int32
            np.testing.assert_array_equal(z, ref, err_msg=f"{be} chunk {chunk}")
    if "native" in BACKENDS:  # 1, 2 or 4 events per pass over the taps: the same integers
        for g in (1, 2):
            z = hd_event_run_int(it, ev, n_bins, chunk=5, backend="native", binary=False, group=g)
            np.testing.assert_array_equal(z, ref, err_msg=f"group {g}")
    zb = hd_event_run_int(it, ev, n_bins, backend=BACKENDS[-1])  # binary: one per voxel
    np.testing.assert_array_equal(zb, _dense_b(np.minimum(a, 1), codes))


def test_auto_form_takes_the_fewer_taps():
    """``"auto"``: the sum/difference form when it has fewer taps (a kernel pruned in
    that basis: W_s sparse) at no wider accumulators, else the direct form."""
    codes = _split_pruned((3, 4, 3, 3), 5)
    it = compile_int_taps(codes, (8, 7))
    n_direct = np.count_nonzero(codes)
    assert it.form == "split" and it.taps.offsets[0].size < n_direct
    a, ev = _raster((8, 7), 9, 0.3, 5)
    for be in BACKENDS:
        np.testing.assert_array_equal(hd_event_run_int(it, ev, 9, backend=be, binary=False),
                                      _dense_b(a, codes))  # fmt: skip
    dense = _codes((3, 4, 3, 3), 10**6, 6)
    dense[:, 1] = 0  # OFF taps only: W_s = W_d = K_off, twice the taps
    assert compile_int_taps(dense, (8, 7)).form == "direct"
    with pytest.raises(DataError, match="form"):
        compile_int_taps(dense, (8, 7), "both")


def test_accumulator_width_follows_the_bound():
    """int16 exactly up to 2^15 - 1, int32 up to 2^31 - 1, refused beyond; an int16
    carry meeting repeated events that could overflow it is widened (still exact)."""
    assert int_acc_dtype(32767) == np.int16 and int_acc_dtype(32768) == np.int32
    assert int_acc_dtype(16384, per_voxel=2) == np.int32
    assert int_acc_dtype(2**31 - 1) == np.int32
    with pytest.raises(DataError, match="2\\^31"):
        int_acc_dtype(2**30, per_voxel=2)
    # 258 taps of 127 per class: bound 32766 -> int16; the 3 x 3 kernel at 127 with 1 event
    codes = np.zeros((2, 2, 3, 9, 15), np.int8)
    codes.reshape(2, -1)[:, :258] = 127
    codes[1] = -codes[0]
    it = compile_int_taps(codes, (20, 12), "direct")
    assert it.bound == 32766 and init_int_state(it).carry.dtype == np.int16
    codes[0, 0, 0, 0, 0] = 0
    codes[0, 1, 0, 0, 0] = 127  # moves a tap: bound unchanged
    codes[0, 1, 0, 0, 1] = 2  # bound 32768: int32 from the start
    it2 = compile_int_taps(codes, (20, 12), "direct")
    assert it2.bound == 32768 and init_int_state(it2).carry.dtype == np.int32
    with pytest.raises(DataError, match="overflows"):
        init_int_state(it2, np.int16)
    with pytest.raises(DataError, match="int16 or int32"):
        init_int_state(it2, np.int64)
    with pytest.raises(DataError, match="int8"):
        compile_int_taps(codes.astype(np.int16), (20, 12))
    # every pixel at once, in both polarities and twice: the int16 bound would not hold
    n_bins = 5
    a = np.ones((2, n_bins, 12, 20), np.int64)
    a[:, 1] = 2
    codes[0, 1, 0, 0, 1] = 0  # back to the kernel of ``it``
    codes[0, 1, 0, 0, 0] = 0
    codes[0, 0, 0, 0, 0] = 127
    ref = _dense_b(a, codes)
    p, t, y, x = np.nonzero(a)
    n = a[p, t, y, x]
    ev = make_events(np.repeat(t, n) * 1000, np.repeat(x, n), np.repeat(y, n), np.repeat(p, n))
    assert np.abs(ref).max() > 32767  # int16 would have wrapped
    for be in BACKENDS:
        st = init_int_state(it)
        assert st.carry.dtype == np.int16
        z, st = hd_event_chunk_int(it, st, *_cols(ev), n_bins, be)
        assert st.carry.dtype == np.int32  # widened for the repeated voxels
        np.testing.assert_array_equal(z, ref)


def _cols(ev):
    from neuroplast.apps.motion.events import voxel_indices

    return voxel_indices(ev, 1000, 0)


@pytest.mark.skipif(native_module() is None, reason="extension not built")
def test_native_integer_scatter_refuses_bad_arguments():
    lib = native_module()
    buf = np.zeros(10, np.int32)
    off = np.array([0, 3], np.int64)
    wt = np.ones(2, np.int8)
    base, pol = np.array([8], np.int64), np.zeros(1, np.uint8)
    with pytest.raises(ValueError, match="event_scatter: tap outside"):
        lib.op(OPS["event_scatter_i"], (1, 10, 1, 2, 2, 4), (buf, base, pol, off, wt, off, wt))
    with pytest.raises(ValueError, match="acc_bytes"):
        lib.op(OPS["event_scatter_i"], (1, 10, 1, 2, 2, 8), (buf, base, pol, off, wt, off, wt))
    with pytest.raises(ValueError, match="group"):
        lib.op(OPS["event_scatter_i"], (1, 10, 1, 2, 2, 4, 3), (buf, base, pol, off, wt, off, wt))
    with pytest.raises(ValueError, match="code bytes"):
        lib.op(
            OPS["event_scatter_i"], (1, 10, 1, 2, 2, 4, 4, 4), (buf, base, pol, off, wt, off, wt)
        )
    with pytest.raises(ValueError, match="w0"):  # 2 int8 codes are not 2 int16
        lib.op(
            OPS["event_scatter_i"], (1, 10, 1, 2, 2, 4, 4, 2), (buf, base, pol, off, wt, off, wt)
        )
    with pytest.raises(ValueError, match="buf"):  # 10 int32 are not 10 int64
        lib.op(OPS["event_scatter_i"], (1, 20, 1, 2, 2, 4), (buf, base, pol, off, wt, off, wt))
    assert not buf.any()
    assert all(lib.scatter_peak(3, b, g)[0] > 0 for b in (2, 4) for g in (1, 2, 4))
    with pytest.raises(ValueError, match="scatter_peak"):
        lib.scatter_peak(3, 8)
    with pytest.raises(ValueError, match="scatter_peak"):
        lib.scatter_peak(3, 2, 3)


def _int_graph(codes, size, seed, pooled, zp=0):
    """Float weights that quantize back to ``codes`` exactly (power-of-two class scales),
    a bias on the accumulator grid and an output scale that makes requantization round
    (zero point ``zp``; the pooled graph's SumPool2d takes zero point 0 only)."""
    rng = np.random.default_rng(seed)
    c = codes.shape[0]
    s_w = 2.0 ** -rng.integers(4, 9, c)
    b_q = rng.integers(-3000, 3000, c)
    weight = (codes * s_w[:, None, None, None, None]).astype(np.float32)
    bias = (b_q * s_w).astype(np.float32)
    wq = QuantSpec(bits=8, scale=tuple(float(v) for v in s_w), axis=0, narrow=True)
    oq = QuantSpec(bits=8, scale=0.37, zero_point=zp)
    g = runtime_node.hd_graph(weight, bias, size, weight_q=wq, out_q=oq, pooled=pooled)
    qm, sh = quantize_multiplier(s_w / np.float64(np.float32(0.37)))
    return g, b_q, qm, sh


def _split_pruned(shape, seed):
    """int8 codes of a kernel pruned in the sum/difference basis (W_s sparse): the
    ``"auto"`` form is split."""
    rng = np.random.default_rng(seed)
    w_s = rng.integers(-60, 61, shape) * (rng.random(shape) < 0.1)
    w_d = rng.integers(-60, 61, shape) * (rng.random(shape) < 0.4)
    return np.stack([w_s + w_d, w_s - w_d], axis=1).astype(np.int8)


@pytest.mark.parametrize("form", ["direct", "split"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_runtime_integer_mode_equals_reference(backend, form, monkeypatch):
    """``Runtime(mode="int")`` with each scatter backend and both tap forms: z_q and the
    pooled int32 evidence equal the reference requantization of the dense integer
    accumulators, with sparse steps holding repeated indices (A = 3) and empty steps."""
    from neuroplast.runtime import Runtime, SparseInput

    monkeypatch.setattr(runtime_node, "fast_backend", lambda: backend)
    size, n_bins = (13, 10), 12
    if form == "direct":
        codes = _codes((5, 4, 3, 5), 120, 7)
        codes[0, 0, 0, 0, 0] = 127
        codes[1, 1, 3, 2, 4] = -127
    else:
        codes = _split_pruned((5, 4, 3, 5), 7)
    assert compile_int_taps(codes, size).form == form
    a, _ = _raster(size, n_bins, 0.15, 7)
    acc = _dense_b(a, codes)
    g, b_q, qm, sh = _int_graph(codes, size, 7, pooled=False, zp=-3)
    zq = requantize(acc + b_q[None, :, None, None], qm[:, None, None], sh[:, None, None]) - 3
    zq = np.clip(zq, -128, 127).astype(np.int8)
    rt = Runtime(g, mode="int")
    w, h = size
    steps = []
    for t in range(n_bins):
        p, y, x = np.nonzero(a[:, t])
        idx = np.repeat((p * h + y) * w + x, a[p, t, y, x])
        steps.append(rt.step(SparseInput(idx[::-1].copy())))
    out = np.stack(steps)
    assert out.dtype == np.int8 and len(np.unique(out)) > 20
    np.testing.assert_array_equal(out, zq)
    gp, *_ = _int_graph(codes, size, 7, pooled=True)
    rtp = Runtime(gp, mode="int")
    dense = np.minimum(a, 1).transpose(1, 0, 2, 3)[:, None].astype(np.int8)  # (T, 1, 2, H, W)
    ev = rtp.run(dense)[:, 0]
    zb = requantize(_dense_b(np.minimum(a, 1), codes) + b_q[None, :, None, None],
                    qm[:, None, None], sh[:, None, None])  # fmt: skip
    np.testing.assert_array_equal(ev, np.clip(zb, -128, 127).sum(axis=(2, 3)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_runtime_integer_mode_follows_a_weight_update(backend, monkeypatch):
    """The op's compiled tables are never stale: weight codes and bias written in place
    into ``rt.params`` between steps (as plasticity and ``load_state`` do), or the
    weight array replaced, give the dense reference of the new parameters once the
    ``K_T - 1`` ms carried from before have left the window (the scatter carries partial
    sums made with the old codes until then; the pull path rebuilds every step from the
    pixels, so it follows at once), and differ from the old parameters' outputs."""
    from neuroplast.runtime import Runtime, SparseInput

    monkeypatch.setattr(runtime_node, "fast_backend", lambda: backend)
    size, n_bins, shape = (13, 10), 24, (5, 4, 3, 5)
    codes, codes2 = _codes(shape, 120, 7), _codes(shape, 150, 8)
    a, _ = _raster(size, n_bins, 0.15, 7)
    g, b_q, qm, sh = _int_graph(codes, size, 7, pooled=False)
    b_q2 = b_q[::-1] + 100

    def ref(q, b):
        z = requantize(_dense_b(a, q) + b[None, :, None, None], qm[:, None, None],
                       sh[:, None, None])  # fmt: skip
        return np.clip(z, -128, 127).astype(np.int8)

    old, new, new2 = ref(codes, b_q), ref(codes2, b_q2), ref(codes, b_q2)
    rt = Runtime(g, mode="int")
    w, h = size
    kt, u, u2 = shape[1], 8, 16  # updates before steps u (in place) and u2 (replaced)
    steps = []
    for t in range(n_bins):
        if t == u:
            rt.params["hd"]["weight"][...] = codes2
            rt.params["hd"]["bias"][...] = b_q2
        if t == u2:
            rt.params["hd"]["weight"] = codes.copy()
        p, y, x = np.nonzero(a[:, t])
        steps.append(rt.step(SparseInput(np.repeat((p * h + y) * w + x, a[p, t, y, x]))))
    out = np.stack(steps)
    np.testing.assert_array_equal(out[:u], old[:u])
    np.testing.assert_array_equal(out[u + kt - 1 : u2], new[u + kt - 1 : u2])
    np.testing.assert_array_equal(out[u2 + kt - 1 :], new2[u2 + kt - 1 :])
    if runtime_node.int_pull_path("int", backend):  # no carried sums: follows at once
        np.testing.assert_array_equal(out[u:u2], new[u:u2])
        np.testing.assert_array_equal(out[u2:], new2[u2:])
    assert not np.array_equal(new[u + kt - 1 : u2], old[u + kt - 1 : u2])


@pytest.mark.parametrize("backend", BACKENDS)
def test_slot_window_gives_the_fresh_buffer_outputs(backend):
    """Chunks through a :class:`SlotWindow` (2 spare slots: it slides every 2 bins) equal
    the fresh-buffer chunks, float and integer (an int16 carry widened to int32 by
    repeated events on the way), also when a state the window did not hand out (a copy)
    is stepped from."""
    from neuroplast.apps.motion.event_layer import (
        EventLayerState,
        SlotWindow,
        compile_taps,
        hd_event_chunk,
        init_event_state,
    )

    size, n_bins = (9, 8), 14
    codes = _codes((4, 5, 3, 3), 80, 11, extreme=True)
    it = compile_int_taps(codes, size)
    ft = compile_taps(codes.astype(np.float32) / 7, np.arange(4.0), size)
    a, _ = _raster(size, n_bins, 0.3, 11)
    a[0, 9, 3, 3] = 40  # 40 events in one voxel: int16 would overflow
    pp, tt, yy, xx = np.nonzero(a)
    n = a[pp, tt, yy, xx]
    ev = make_events(*(np.repeat(v, n) for v in (tt * 1000, xx, yy, pp)))
    p, tb, y, x = _cols(ev)
    for chunk, init, tabs in ((hd_event_chunk_int, init_int_state, it),
                              (hd_event_chunk, init_event_state, ft)):  # fmt: skip
        ref, st = [], init(tabs)
        for t in range(n_bins):
            m = tb == t
            z, st = chunk(tabs, st, p[m], tb[m], y[m], x[m], 1, backend)
            ref.append(z)
        win, got, st = SlotWindow(spare=2), [], init(tabs)
        for t in range(n_bins):
            m = tb == t
            if t == 7:  # a copied state: not the window's view, copied in
                st = EventLayerState(st.carry.copy(), st.t_next)
            z, st = chunk(tabs, st, p[m], tb[m], y[m], x[m], 1, backend, window=win)
            got.append(z)
        if chunk is hd_event_chunk_int:
            assert st.carry.dtype == np.int32
        np.testing.assert_array_equal(np.concatenate(got), np.concatenate(ref))
    with pytest.raises(DataError, match="spare"):
        SlotWindow(spare=0)


def test_integer_chunk_is_pure():
    """The state passed in is not modified (the returned carry is a fresh buffer's view):
    stepping twice from one state gives the same output and carry."""
    from neuroplast.apps.motion.events import voxel_indices

    codes = _codes((4, 5, 3, 3), 80, 11)
    it = compile_int_taps(codes, (9, 8))
    _, ev = _raster((9, 8), 8, 0.3, 11)
    p, tb, y, x = voxel_indices(ev, 1000, 0)
    st = init_int_state(it)
    z0, st1 = hd_event_chunk_int(it, st, p[tb < 4], tb[tb < 4], y[tb < 4], x[tb < 4], 4)
    keep = st1.carry.copy()
    m = tb >= 4
    for be in BACKENDS:
        za, sa = hd_event_chunk_int(it, st1, p[m], tb[m], y[m], x[m], 4, be)
        zb, sb = hd_event_chunk_int(it, st1, p[m], tb[m], y[m], x[m], 4, be)
        np.testing.assert_array_equal(za, zb)
        np.testing.assert_array_equal(sa.carry, sb.carry)
        np.testing.assert_array_equal(st1.carry, keep)
        assert not np.shares_memory(sa.carry, st1.carry)


# ------------------------------------------------------------------ integer pull path
NATIVE = native_module() is not None


def _evidence_ref(a, codes, b_q, qm, sh, zp, out_range):
    """The pooled integer evidence from the dense reference: requantize, clamp, sum."""
    z = requantize(_dense_b(a, codes) + b_q[None, :, None, None], qm[None, :, None, None],
                   sh[None, :, None, None])  # fmt: skip
    return np.clip(z + zp, *out_range).sum(axis=(2, 3))


def _requant_params(c, seed, scale_bits=(8, 12)):
    """A bias on the accumulator grid and multipliers that make the output both round and
    saturate: ``M_c`` from ``2^-12`` to ``2^-8``."""
    rng = np.random.default_rng(seed)
    b_q = rng.integers(-3000, 3000, c)
    qm, sh = quantize_multiplier(2.0 ** -rng.uniform(*scale_bits, c) * 1.37)
    return b_q, qm, sh


@pytest.mark.skipif(not NATIVE, reason="extension not built")
@pytest.mark.parametrize("form", ["direct", "split"])
@pytest.mark.parametrize(
    ("shape", "keep", "size", "seed", "extreme"),
    [
        ((5, 4, 3, 3), 60, (11, 9), 0, False),
        ((6, 7, 5, 9), 400, (16, 12), 1, False),
        ((13, 3, 4, 6), 500, (21, 14), 4, False),  # 13 classes: a partial last group
        ((3, 3, 3, 5), 10**6, (9, 7), 2, True),  # every tap at +-127: int32 planes
        ((4, 2, 2, 2), 10**6, (5, 4), 3, True),
    ],
)
def test_integer_pull_path_equals_reference(shape, keep, size, seed, extreme, form):
    """``hd_event_evidence_int(backend="native")`` (the pull path) equals the requantized
    dense reference and the per-position scatters bit for bit: random kernels, both
    forms, border pixels, repeated events (non-binary: 3 per voxel), empty steps, an all-on
    step, +-127 / -128 codes; any class group and int16 lane width."""
    codes = _codes(shape, keep, seed, extreme)
    if extreme:
        codes[0, 0, 0, 0, 0] = -128
    n_bins = 12
    a, ev = _raster(size, n_bins, 0.2, seed)
    it = compile_int_taps(codes, size, form)
    b_q, qm, sh = _requant_params(shape[0], seed)
    for binary, counts in ((False, a), (True, np.minimum(a, 1))):
        ref = _evidence_ref(counts, codes, b_q, qm, sh, -3, (-128, 127))
        assert len(np.unique(ref)) > 10
        for be in BACKENDS:  # the per-position paths, for the record
            be = "native-scatter" if be == "native" else be
            got = hd_event_evidence_int(it, ev, n_bins, b_q, qm, sh, -3, backend=be,
                                        binary=binary)  # fmt: skip
            np.testing.assert_array_equal(got, ref, err_msg=be)
        for g in (1, 2, 5, 64):
            for lanes in (8, 16):
                for sweep in (0, 1, 2):  # by delay; one sweep in row / pixel order
                    for pairs in (None, False):  # the pair layout where it applies; two planes
                        got = hd_event_evidence_int(it, ev, n_bins, b_q, qm, sh, -3,
                                                    binary=binary, group=g, lanes=lanes,
                                                    sweep=sweep, pairs=pairs)  # fmt: skip
                        np.testing.assert_array_equal(got, ref, err_msg=f"{g} {lanes} {sweep}")
    # the plane width: int_acc_dtype of the bound times the events per voxel (3 here)
    wide = int_acc_dtype(it.bound, 3).itemsize == 4
    assert ((8, 4) in it.rows) == wide
    if shape == (3, 3, 3, 5):  # 3 events x the +-127 kernel's bound > 2^15 - 1
        assert wide
    # the pair layout ran for the split form whenever its planes were int16
    assert ((16, 2, "pairs") in it.rows) == (form == "split")
    if form == "direct":
        with pytest.raises(DataError, match="pair layout"):
            hd_event_evidence_int(it, ev, n_bins, b_q, qm, sh, pairs=True)


@pytest.mark.skipif(not NATIVE, reason="extension not built")
def test_integer_pull_path_saturates_and_handles_empty_streams():
    """Output codes at both clamp ends, a zero point, a narrow range; no events at all
    (every position holds the requantized bias: ``Ho Wo z0``)."""
    codes = _split_pruned((4, 5, 3, 4), 8)
    size, n_bins = (12, 10), 9
    a, ev = _raster(size, n_bins, 0.3, 8)
    it = compile_int_taps(codes, size)
    b_q, qm, sh = _requant_params(4, 8, (2, 4))  # large M_c: many positions saturate
    z = requantize(_dense_b(np.minimum(a, 1), codes) + b_q[None, :, None, None],
                   qm[None, :, None, None], sh[None, :, None, None])  # fmt: skip
    assert (z < -128).mean() > 0.05 and (z > 127).mean() > 0.05
    for zp, rng_ in ((0, (-128, 127)), (5, (-20, 30)), (-7, (0, 0))):
        ref = _evidence_ref(np.minimum(a, 1), codes, b_q, qm, sh, zp, rng_)
        np.testing.assert_array_equal(hd_event_evidence_int(it, ev, n_bins, b_q, qm, sh, zp, rng_),
                                      ref)  # fmt: skip
    empty = ev[:0]
    ref = _evidence_ref(np.zeros_like(a), codes, b_q, qm, sh, 0, (-128, 127))
    np.testing.assert_array_equal(hd_event_evidence_int(it, empty, n_bins, b_q, qm, sh), ref)


@pytest.mark.skipif(not NATIVE, reason="extension not built")
def test_integer_pull_path_counts_and_refuses():
    """``pull_int_ops``: one interior event executes every chunk of both sources (split:
    ``A_s = A_d = 1``); an event in the last ms only its delay-0 chunks. Bad arguments
    raise ``DataError`` / the C check's ``ValueError``; ``irmw_peak`` measures."""
    codes = _split_pruned((3, 4, 3, 3), 9)
    size = (9, 8)
    it = compile_int_taps(codes, size, "split")
    rw = compile_int_rows(it, 16)
    one = make_events(np.array([0]), np.array([4]), np.array([4]), np.array([0]))
    assert pull_int_ops(it, one, 4, lanes=16, pairs=False) == sum(rw.n_chunks)
    rp = compile_int_rows(it, 16, 2, pairs=True)  # the pair layout: one table, the union
    r8 = compile_int_rows(it, 8)  # greedy covers: the union's is between max and sum
    assert rp.n_chunks[1] == 0 and max(r8.n_chunks) <= rp.n_chunks[0] <= sum(r8.n_chunks)
    assert pull_int_ops(it, one, 4) == pull_int_ops(it, one, 4, pairs=True) == rp.n_chunks[0]
    last = make_events(np.array([3000]), np.array([4]), np.array([4]), np.array([0]))
    d0 = sum(int(ys.reshape(3, 4, 4)[:, 0, 3].sum() - ys.reshape(3, 4, 4)[:, 0, 0].sum())
             for ys in rw.ystart)  # fmt: skip
    assert pull_int_ops(it, last, 4, lanes=16, pairs=False) == d0
    b_q, qm, sh = _requant_params(3, 9)
    with pytest.raises(DataError, match="backend"):
        hd_event_evidence_int(it, one, 4, b_q, qm, sh, backend="numba-rows")
    with pytest.raises(DataError, match="group"):
        hd_event_evidence_int(it, one, 4, b_q, qm, sh, group=0)
    with pytest.raises(DataError, match="int32"):
        hd_event_evidence_int(it, one, 4, np.full(3, 2**31 - 10), qm, sh)
    with pytest.raises(DataError, match="int32 x 8"):
        compile_int_rows(it, 16, 4)
    lib = native_module()
    fst, pix = np.array([0, 1], np.int64), np.array([size[0] * size[1]], np.int64)  # off-sensor
    ho, wo = 8 - 3 + 1, 9 - 3 + 1
    ints = (1, 9, 8, 1, 4, ho, wo, 3, 3, rw.row_stride, rw.pad_left, 16, 2, 3, 3, rw.plane, 1,
            rw.off[0].size, rw.off[1].size, 1, 0, -128, 127, 0)  # fmt: skip
    bufs = (fst, pix, np.ones(1, np.int64), np.ones(1, np.int64), rw.ystart[0], rw.off[0],
            rw.vals[0], rw.ystart[1], rw.off[1], rw.vals[1], b_q.astype(np.int64),
            qm.astype(np.int64), sh.astype(np.int64), np.zeros(3, np.int64))  # fmt: skip
    with pytest.raises(ValueError, match="pull_int: pixel"):
        lib.op(OPS["pull_int"], ints, bufs)
    bad_off = rw.off[0].copy()
    bad_off[0] += 10**6
    with pytest.raises(ValueError, match="pull_int: chunk offset"):
        lib.op(OPS["pull_int"], ints, (fst, pix * 0, *bufs[2:5], bad_off, *bufs[6:]))
    lib.op(OPS["pull_int"], ints, (fst, pix * 0, *bufs[2:]))  # the valid call runs
    assert all(lib.irmw_peak(3, b, n)[0] > 0 for b, n in ((2, 8), (2, 16), (4, 8)))
    with pytest.raises(ValueError, match="irmw_peak"):
        lib.irmw_peak(3, 4, 16)


@pytest.mark.skipif(not NATIVE, reason="extension not built")
@pytest.mark.parametrize("form", ["direct", "split"])
def test_integer_pull_chunks_carry_the_window(form):
    """``hd_event_chunk_int_pull`` over chunks of 1, 3 and 7 bins (state = the last
    ``K_T - 1`` ms of pixels) gives the per-position codes and sums of the scatter +
    requantization reference, with repeated events counted; the state passed in is not
    modified."""
    codes = _codes((4, 5, 3, 4), 150, 12) if form == "direct" else _split_pruned((4, 5, 3, 4), 12)
    size, n_bins = (11, 9), 14
    a, ev = _raster(size, n_bins, 0.2, 12)
    it = compile_int_taps(codes, size, form)
    b_q, qm, sh = _requant_params(4, 12)
    zq = requantize(_dense_b(a, codes) + b_q[None, :, None, None], qm[None, :, None, None],
                    sh[None, :, None, None])  # fmt: skip
    zq = np.clip(zq + 2, -100, 90)
    from neuroplast.apps.motion.events import voxel_indices

    p, tb, y, x = voxel_indices(ev, 1000, 0)
    for chunk in (1, 3, 7):
        st = init_int_pull_state()
        zs, es = [], []
        for t0 in range(0, n_bins, chunk):
            n = min(chunk, n_bins - t0)
            m = (tb >= t0) & (tb < t0 + n)
            keep = (st.t.copy(), st.pix.copy())
            z, e, st2 = hd_event_chunk_int_pull(it, st, p[m], tb[m], y[m], x[m], n, b_q, qm, sh,
                                                2, (-100, 90))  # fmt: skip
            assert np.array_equal(st.t, keep[0]) and np.array_equal(st.pix, keep[1])
            zs.append(z)
            es.append(e)
            st = st2
        np.testing.assert_array_equal(np.concatenate(zs), zq, err_msg=f"chunk {chunk}")
        np.testing.assert_array_equal(np.concatenate(es), zq.sum(axis=(2, 3)))
        assert st.t.size and st.t.min() >= n_bins - 4  # K_T - 1 = 4 ms carried
    one = np.array([0])
    for bad in ((2, 0, 0), (0, 9, 0), (0, 0, -1)):  # polarity 2, off-sensor row / column
        with pytest.raises(DataError, match="sensor"):
            hd_event_chunk_int_pull(it, st, one * 0 + bad[0], one * 0 + n_bins, one * 0 + bad[1],
                                    one * 0 + bad[2], 1, b_q, qm, sh)  # fmt: skip
