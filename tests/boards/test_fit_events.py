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
)
from neuroplast.boards import parse_profile
from neuroplast.boards.estimate import fit_graph
from neuroplast.errors import BoardError
from neuroplast.graph.cost import cost
from neuroplast.quant import QuantSpec, quantize

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


def _hd_row(g, rate: float):
    return next(r for r in cost(g, rate) if r.name == "hd")


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
    nati = fit_graph(gi, p, input_rate=0.1, mode="int", backend="native")
    dense = max(4 * OUTS / 2e9, r.step_bytes / 1e8)
    expect = 5e-6 + 2 * 2e-5 + dense + r.synops / 5e7  # int_op_overhead_s from [cost]
    assert nati.latency_s == pytest.approx(expect, rel=1e-12)


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
    ],
)
def test_event_rate_keys_are_validated(cost_extra, native_extra, message):
    with pytest.raises(BoardError, match=message) as e:
        _profile(cost_extra, native_extra)
    assert "\n" not in str(e.value)
