"""Event-driven cost split: ``event_macs`` (scaled by the input rate, charged at the
profile's ``event_taps_per_s``) + the dense per-step part, on the motion app's HDDelayConv.

Expected numbers are computed here by hand from the kernel's non-zeros, the layer's shapes
and the coefficients written in the test's own profile (never from a timing); the taps per
event are checked against the tap tables the runtime op actually scatters.
"""

from __future__ import annotations

import numpy as np
import pytest

from neuroplast.apps.motion import runtime_node as rn
from neuroplast.apps.motion.event_layer import (
    compile_int_taps,
    compile_taps,
    init_event_state,
    init_int_state,
    pull_int_ops,
    warm_int_pull,
)
from neuroplast.apps.motion.events import make_events
from neuroplast.boards import parse_profile
from neuroplast.boards.estimate import fit_graph
from neuroplast.errors import BoardError, GraphError
from neuroplast.graph.cost import cost
from neuroplast.quant import QuantSpec, quantize
from neuroplast.runtime import Runtime
from neuroplast.runtime.native import native_module

from .test_fit_backends import _PROFILE

C, KT, KY, KX = 3, 4, 3, 2
W_S, H_S = 9, 7  # sensor (width, height)
HO, WO = H_S - KY + 1, W_S - KX + 1
OUTS = C * HO * WO  # 3 * 5 * 8 = 120
SLOT = 2 * C * (H_S + KY - 1) * (W_S + KX - 1)  # 2 * 3 * 9 * 10 = 540 elements


def _kernel() -> np.ndarray:
    """(C, 2, K_T, K_Y, K_X) with every third weight zero: 144 weights, 96 non-zero."""
    w = np.arange(1, C * 2 * KT * KY * KX + 1, dtype=np.float32).reshape(C, 2, KT, KY, KX)
    w = (w - 70.0) / 100.0  # some negative, none zero yet
    w.reshape(-1)[::3] = 0.0
    return w


NNZ = 96


def _graph(int_mode: bool = False):
    w = _kernel()
    wq = QuantSpec(8, float(np.abs(w).max()) / 127) if int_mode else None
    oq = QuantSpec(8, 0.05) if int_mode else None
    return rn.hd_graph(w, np.zeros(C, np.float32), (W_S, H_S), weight_q=wq, out_q=oq)


def _hd_row(g, rate: float, backend: str = "numpy"):
    return next(r for r in cost(g, rate, backend=backend) if r.name == "hd")


def test_float_cost_split_by_hand():
    w = _kernel()
    assert np.count_nonzero(w) == NNZ
    # the runtime op's tap tables: an event of either polarity scatters nnz(W) taps
    taps = compile_taps(w, np.zeros(C), (W_S, H_S))
    assert taps.offsets[0].size == taps.offsets[1].size == NNZ
    g = _graph()
    full = NNZ * 2 * H_S * W_S  # taps per event x both polarities of every pixel
    for rate in (1.0, 0.25, 0.02):
        r = _hd_row(g, rate)
        assert r.event_macs == full == 12096
        assert r.macs == full + 2 * OUTS  # dense: max(B0, B1) and the bias per output
        assert r.synops == round(rate * full)
        assert r.step_bytes == 4 * SLOT * (5 * KT - 4)  # zero K_T slots, carry in and out
        # state: the carry the runtime op keeps between steps (its own arrays' bytes)
        assert r.state_bytes == init_event_state(taps).carry.nbytes == 4 * SLOT * (KT - 1)
    # the input is not spiking: no other kind would count synops here
    assert next(r for r in cost(g, 0.5) if r.name == "events").synops == 0


def test_int_cost_counts_the_compiled_int_taps():
    g = _graph(int_mode=True)
    node = g.nodes["hd"]
    codes = quantize(node.weight, node.weight_q)
    it = compile_int_taps(codes.astype(np.int8), (W_S, H_S))
    per_event = it.taps.offsets[0].size
    assert it.taps.offsets[1].size == per_event
    if it.form == "direct":  # the codes of this kernel keep every non-zero weight
        assert per_event == np.count_nonzero(codes)
    a = 2 if it.bound <= 2**15 - 1 else 4  # int16 / int32 accumulators
    r = _hd_row(g, 0.1)
    assert r.event_macs == per_event * 2 * H_S * W_S
    assert r.macs == r.event_macs + 4 * OUTS  # readout + requantization per output
    assert r.step_bytes == a * SLOT * (3 * KT - 2)  # zero K_T slots, carry in (no copy out)
    assert r.state_bytes == init_int_state(it).carry.nbytes == a * SLOT * (KT - 1)
    assert r.synops == round(0.1 * r.event_macs)


def _profile(cost_extra: str = "", native_extra: str = "", bandwidth: float | None = 1.0e8):
    text = _PROFILE.format(kind="linux", extra="")
    if bandwidth is not None:
        text = text.replace(
            "delay_macs_per_s = 1.0e8\n",
            f"delay_macs_per_s = 1.0e8\nmem_bandwidth_Bps = {bandwidth}\n",
        )
    text = text.replace(
        "delay_macs_per_s = 1.0e8\n", f"delay_macs_per_s = 1.0e8\n{cost_extra}\n", 1
    )
    text = text.replace("step_overhead_s = 5.0e-6\n", f"step_overhead_s = 5.0e-6\n{native_extra}\n")
    return parse_profile(text, "twin.toml")


@pytest.mark.parametrize("rate", [0.02, 0.3])
def test_numpy_latency_of_the_event_layer_by_hand(rate):
    g = _graph()
    full, step_bytes = NNZ * 2 * H_S * W_S, 4 * SLOT * (5 * KT - 4)
    p = _profile("event_taps_per_s = 2.0e7")
    rep = fit_graph(g, p, input_rate=rate, backend="numpy")
    # 2 nodes x 1e-5 s; dense part: max(240 / 1e9, 34560 B / 1e8 B/s); scatter: taps / 2e7
    dense = max(2 * OUTS / 1e9, step_bytes / 1e8)
    expect = 2 * 1e-5 + dense + round(rate * full) / 2e7
    assert rep.latency_s == pytest.approx(expect, rel=1e-12)
    assert rep.ops.synops == round(rate * full) and rep.ops.macs == full + 2 * OUTS
    # without a bandwidth figure the dense part is its MACs alone
    nb = fit_graph(g, _profile("event_taps_per_s = 2.0e7", bandwidth=None), input_rate=rate,
                   backend="numpy")  # fmt: skip
    assert nb.latency_s == pytest.approx(
        2 * 1e-5 + 2 * OUTS / 1e9 + round(rate * full) / 2e7, rel=1e-12
    )
    # no event_taps_per_s: the scatter falls back to synops_per_s (1e9)
    fb = fit_graph(g, _profile(), input_rate=rate, backend="numpy")
    assert fb.latency_s == pytest.approx(2 * 1e-5 + dense + round(rate * full) / 1e9, rel=1e-12)


def test_native_table_and_int_rate():
    p = _profile(
        "event_taps_per_s = 2.0e7\nint_event_taps_per_s = 5.0e7", "event_taps_per_s = 4.0e7"
    )
    g = _graph()
    full, step_bytes = NNZ * 2 * H_S * W_S, 4 * SLOT * (5 * KT - 4)
    nat = fit_graph(g, p, input_rate=0.1, backend="native")
    # [cost.native]: 5e-6 per step + 2 x 1e-6 per node; bandwidth from [cost]
    expect = 5e-6 + 2 * 1e-6 + max(2 * OUTS / 4e9, step_bytes / 1e8) + round(0.1 * full) / 4e7
    assert nat.latency_s == pytest.approx(expect, rel=1e-12)
    gi = _graph(int_mode=True)
    r = _hd_row(gi, 0.1)
    num = fit_graph(gi, p, input_rate=0.1, mode="int", backend="numpy")
    dense = max(4 * OUTS / 5e8, r.step_bytes / 1e8)  # int_macs_per_s = 5e8
    assert num.latency_s == pytest.approx(2 * 2e-5 + dense + r.synops / 5e7, rel=1e-12)
    # [cost.native] omits int_event_taps_per_s: it comes from [cost] (as every omitted key)
    # and int_event_chunks_per_s (nowhere): the pull path falls back to the scatter, noted
    nati = fit_graph(gi, p, input_rate=0.1, mode="int", backend="native")
    dense = max(4 * OUTS / 2e9, r.step_bytes / 1e8)
    expect = 5e-6 + 2 * 2e-5 + dense + r.synops / 5e7  # int_op_overhead_s from [cost]
    assert nati.latency_s == pytest.approx(expect, rel=1e-12)
    assert nati.memory.state == r.state_bytes and num.notes == ()
    assert len(nati.notes) == 1 and nati.verdict == num.verdict
    assert nati.notes[0].startswith(
        "layer 'hd' (HDDelayConv): [cost.native] has no "
        "int_event_chunks_per_s, so it is costed as its scatter"
    )
    assert nati.to_dict()["notes"] == list(nati.notes)


@pytest.mark.parametrize(
    ("cost_extra", "native_extra", "message"),
    [
        ("event_taps_per_s = 0", "", r"^twin.toml: 'cost.event_taps_per_s' = 0 must be > 0$"),
        (
            'event_taps_per_s = "fast"',
            "",
            r"^twin.toml: 'cost.event_taps_per_s' must be a number, got str$",
        ),
        ("int_event_taps_per_s = -1.0", "", r"'cost.int_event_taps_per_s' = -1.0 must be > 0$"),
        ("", "event_taps_per_s = 0.0", r"'cost.native.event_taps_per_s' = 0.0 must be > 0$"),
        (
            "",
            "int_event_chunks_per_s = 0",
            r"'cost.native.int_event_chunks_per_s' = 0 must be > 0$",
        ),
    ],
)
def test_event_rate_keys_are_validated(cost_extra, native_extra, message):
    with pytest.raises(BoardError, match=message) as e:
        _profile(cost_extra, native_extra)
    assert "\n" not in str(e.value)


# ------------------------------------------------------------------ the integer pull path
HAS_NATIVE = native_module() is not None
PIXEL_BYTES = 40  # IntPullState: t, pix, a0, a1, m, one int64 each per (ms, pixel)


def _split_kernel() -> np.ndarray:
    """ON and OFF halves equal but for one weight: ``W_d`` has one non-zero, so the
    sum/difference form has fewer taps and the pull path takes its pair layout."""
    w = _kernel()
    w[:, 1] = w[:, 0]
    w[0, 1, 0, 0, 1] += 0.3
    return w


def _int_graph(w: np.ndarray):
    wq = QuantSpec(8, float(np.abs(w).max()) / 127)
    return rn.hd_graph(w, np.zeros(C, np.float32), (W_S, H_S), weight_q=wq,
                       out_q=QuantSpec(8, 0.05))  # fmt: skip


def _interior_stream(n_ms: int, k: int, seed: int = 0) -> np.ndarray:
    """``k`` OFF and ``k`` ON events per ms for ``n_ms`` ms, each alone in its (ms, pixel),
    all on interior rows ``K_Y - 1 .. H_o - 1`` (every kernel row lands on the grid)."""
    rng = np.random.default_rng(seed)
    pix = [(y, x) for y in range(KY - 1, HO) for x in range(W_S)]
    t, x, y, p = [], [], [], []
    for ms in range(n_ms):
        for j, i in enumerate(rng.choice(len(pix), 2 * k, replace=False)):
            t.append(1000 * ms + 500), y.append(pix[i][0]), x.append(pix[i][1]), p.append(j % 2)
    return make_events(np.array(t), np.array(x), np.array(y), np.array(p))


@pytest.mark.parametrize(("kernel", "form", "pairs"),
                         [(_kernel, "direct", False), (_split_kernel, "split", True)])  # fmt: skip
def test_native_int_cost_counts_the_pull_paths_chunks(kernel, form, pairs):
    g = _int_graph(kernel())
    node = g.nodes["hd"]
    it = compile_int_taps(quantize(node.weight, node.weight_q).astype(np.int8), (W_S, H_S))
    rw = warm_int_pull(it)
    assert (it.form, rw.pairs) == (form, pairs)
    n0, n1 = rw.n_chunks
    # by hand: an event runs, over its K_T steps in the window, each delay's chunks once, of
    # every source its coefficients reach: direct OFF (A_off = 1) source 0, ON source 1;
    # the pair layout's one table for either polarity
    per_pair = 2 * n0 if pairs else n0 + n1
    k, n_ms = 3, 6  # 3 OFF + 3 ON interior events per ms
    rate = 2 * k / (2 * H_S * W_S)
    r = _hd_row(g, rate, "native")
    assert r.event_unit == "chunks" and r.event_macs == per_pair * H_S * W_S
    assert r.synops == k * per_pair
    # the pull path's own count on the stream, every event's window complete
    assert pull_int_ops(it, _interior_stream(n_ms, k), n_ms + KT - 1) == n_ms * r.synops
    # dense: the requantizing read-out of every output; state: the pixels of K_T - 1 ms
    assert r.macs == r.event_macs + 4 * OUTS
    assert r.state_bytes == PIXEL_BYTES * (KT - 1) * H_S * W_S
    # tables re-laid per call (offset + lanes per chunk, read and written) + planes zeroed
    assert r.step_bytes == (2 * (n0 + n1) * (8 + rw.lanes * rw.acc_bytes)
                            + 2 * C * (HO + 1) * rw.row_stride * rw.acc_bytes)  # fmt: skip


@pytest.mark.skipif(not HAS_NATIVE, reason="neuroplast._native not built")
def test_native_int_state_bytes_are_the_ops_carried_pixels():
    g = _int_graph(_kernel())
    rt = Runtime(g, mode="int")
    assert rn.int_pull_path("int", rt.kernels["hd"].backend)
    full = np.ones((2, H_S, W_S), np.float32)  # 100 % activity
    for _ in range(KT + 2):
        rt.step(full)
    st = rt.state["hd"][0]
    held = sum(a.nbytes for a in (st.t, st.pix, st.a0, st.a1, st.m))
    assert held == _hd_row(g, 1.0, "native").state_bytes


def test_numpy_figures_unchanged_and_float_native_is_the_scatter():
    for g in (_graph(), _graph(int_mode=True)):
        assert cost(g, 0.3) == cost(g, 0.3, backend="numpy")
        assert all(r.event_unit == "taps" for r in cost(g, 0.3))
    assert cost(_graph(), 0.3, backend="native") == cost(_graph(), 0.3)  # float: scatter
    with pytest.raises(GraphError, match=r"^backend must be one of numpy, native, got 'gpu'$"):
        cost(_graph(), 0.3, backend="gpu")


def test_native_int_latency_and_memory_by_hand():
    p = _profile("int_event_taps_per_s = 5.0e7", "int_event_chunks_per_s = 3.0e7")
    gi = _graph(int_mode=True)
    r = _hd_row(gi, 0.1, "native")
    rep = fit_graph(gi, p, input_rate=0.1, mode="int", backend="native")
    dense = max(4 * OUTS / 2e9, r.step_bytes / 1e8)  # [cost.native] int_macs_per_s
    assert rep.latency_s == pytest.approx(5e-6 + 2 * 2e-5 + dense + r.synops / 3e7, rel=1e-12)
    assert rep.notes == () and rep.memory.state == r.state_bytes
    assert rep.ops.synops == r.synops
    # the numpy backend keeps the scatter whatever the native table says
    num = fit_graph(gi, p, input_rate=0.1, mode="int", backend="numpy")
    s = _hd_row(gi, 0.1)
    assert num.memory.state == s.state_bytes and num.ops.synops == s.synops
    # a profile without [cost.native]: the native backend reads [cost], which lacks the rate
    bare = parse_profile(_PROFILE.format(kind="linux", extra="native_extension = true")
                         .split("[cost.native]")[0], "bare.toml")  # fmt: skip
    fb = fit_graph(gi, bare, input_rate=0.1, mode="int", backend="native")
    assert fb.notes and "[cost] has no int_event_chunks_per_s" in fb.notes[0]
    assert fb.memory.state == s.state_bytes


def test_profiler_measures_the_pull_chunk_rate(load_bench):
    """_calibrate_event on the native backend times the int op on its pull path and reports
    the chunk rate under the profile key (structure only: no assertion on a timing)."""
    if not HAS_NATIVE:
        pytest.skip("neuroplast._native not built")
    mod = load_bench("fit_table")
    ev = mod._calibrate_event("native", steps=3, shape=(2, 3, 3, 3), sensor=(8, 8))
    e = ev["int"]
    assert e["scatter"] == "native pull" and "int_event_chunks_per_s" in e
    assert e["event_taps_per_s"] is None and e["taps_per_step"][0] == 0
    assert len(e["median_step_s"]) == len(mod.PULL_DENSITIES)
