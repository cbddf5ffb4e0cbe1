"""Small integer-mode test graphs covering every layer kind the firmware runs."""

from __future__ import annotations

import numpy as np

from neuroplast.graph.graph import Graph
from neuroplast.graph.nodes import IF, LI, LIF, Conv1d, Delay, DelayLinear, Flatten, Input, Linear
from neuroplast.quant import QuantSpec
from neuroplast.runtime import Runtime


def _wq(w: np.ndarray, per_channel: bool = False) -> QuantSpec:
    if per_channel:
        s = np.abs(w).reshape(w.shape[0], -1).max(axis=1) / 127 + 1e-4
        return QuantSpec(8, tuple(float(v) for v in s), 0, axis=0, narrow=True)
    return QuantSpec(8, float(np.abs(w).max() / 127 + 1e-4), 0, narrow=True)


def mlp_lif_li(seed: int = 0, n_in: int = 16, n_h: int = 24, n_out: int = 5) -> Runtime:
    """Linear(16-bit current) -> LIF(subtract) -> Linear(32-bit) -> LI readout."""
    rng = np.random.default_rng(seed)
    w1 = rng.normal(0, 0.3, (n_h, n_in))
    w2 = rng.normal(0, 0.5, (n_out, n_h))
    g = Graph.sequential(
        [
            ("x", Input(shape=(n_in,), quant=QuantSpec(8, 0.0473, 3))),
            (
                "fc1",
                Linear(
                    weight=w1,
                    bias=rng.normal(0, 0.1, n_h),
                    weight_q=_wq(w1, True),
                    out_q=QuantSpec(16, 0.0113, 0),
                ),
            ),
            (
                "lif",
                LIF(
                    tau_mem=rng.uniform(0.003, 0.02, n_h), v_th=np.full(n_h, 0.37), reset="subtract"
                ),
            ),
            ("fc2", Linear(weight=w2, weight_q=_wq(w2), out_q=QuantSpec(32, 0.00117, 0))),
            ("ro", LI(tau_mem=np.full(n_out, 0.0123), v_leak=np.full(n_out, 0.05))),
        ],
        dt=1e-3,
    )
    return Runtime(g, mode="int")


def conv_delay(seed: int = 1) -> Runtime:
    """Conv1d(per-channel, stride 2, pad 1, int8 out) -> Flatten -> Linear -> LIF(zero) -> Delay."""
    rng = np.random.default_rng(seed)
    wc = rng.normal(0, 0.4, (4, 2, 3))
    wl = rng.normal(0, 0.3, (8, 40))
    g = Graph.sequential(
        [
            ("x", Input(shape=(2, 20), quant=QuantSpec(8, 0.031, -7))),
            (
                "conv",
                Conv1d(
                    weight=wc,
                    bias=rng.normal(0, 0.05, 4),
                    stride=(2,),
                    padding=(1,),
                    weight_q=_wq(wc, True),
                    out_q=QuantSpec(8, 0.0571, 5),
                ),
            ),
            ("flat", Flatten()),
            (
                "fc",
                Linear(
                    weight=wl,
                    bias=rng.normal(0, 0.1, 8),
                    weight_q=_wq(wl),
                    out_q=QuantSpec(16, 0.0097, 0),
                ),
            ),
            (
                "lif",
                LIF(
                    tau_mem=np.full(8, 0.006),
                    v_th=np.full(8, 0.21),
                    v_reset=np.full(8, -0.05),
                    reset="zero",
                ),
            ),
            ("dly", Delay(delay=rng.integers(0, 6, 8))),
        ],
        dt=1e-3,
    )
    return Runtime(g, mode="int")


def delaylinear_groups(seed: int = 2) -> Runtime:
    """Conv1d(groups=2, dilation 2) -> Flatten -> DelayLinear(delays 0..6) -> IF -> Linear(int8)."""
    rng = np.random.default_rng(seed)
    wc = rng.normal(0, 0.5, (4, 2, 3))
    wd = rng.normal(0, 0.3, (10, 24))
    wo = rng.normal(0, 0.5, (3, 10))
    g = Graph.sequential(
        [
            ("x", Input(shape=(4, 10), quant=QuantSpec(8, 0.05, 0))),
            (
                "conv",
                Conv1d(
                    weight=wc,
                    groups=2,
                    dilation=(2,),
                    padding=(0,),
                    weight_q=_wq(wc),
                    out_q=QuantSpec(8, 0.08, -3),
                ),
            ),
            ("flat", Flatten()),
            (
                "dl",
                DelayLinear(
                    weight=wd,
                    delay=rng.integers(0, 7, (10, 24)),
                    bias=rng.normal(0, 0.1, 10),
                    weight_q=_wq(wd, True),
                    out_q=QuantSpec(16, 0.013, 0),
                ),
            ),
            ("if", IF(v_th=np.full(10, 0.4), reset="subtract")),
            ("out", Linear(weight=wo, weight_q=_wq(wo), out_q=QuantSpec(8, 0.021, 1))),
        ],
        dt=1e-3,
    )
    return Runtime(g, mode="int")


def plastic(seed: int = 3, n_in: int = 20, n_out: int = 12) -> Runtime:
    """Spike input -> Linear (plastic) -> LIF: the on-device learning test network."""
    rng = np.random.default_rng(seed)
    w = rng.normal(0.2, 0.3, (n_out, n_in))
    g = Graph.sequential(
        [
            ("x", Input(shape=(n_in,), quant=QuantSpec(8, 1.0, 0))),
            (
                "fc",
                Linear(
                    weight=w,
                    weight_q=QuantSpec(8, 0.01, 0, narrow=True),
                    out_q=QuantSpec(16, 0.01, 0),
                ),
            ),
            ("lif", LIF(tau_mem=np.full(n_out, 0.01), v_th=np.full(n_out, 0.6), reset="zero")),
        ],
        dt=1e-3,
    )
    return Runtime(g, mode="int")


def random_codes(rt: Runtime, t: int, rng: np.random.Generator) -> np.ndarray:
    shape = rt.shapes[rt.inputs[0]]
    return rng.integers(-128, 128, (t,) + tuple(shape)).astype(np.int8)
