"""Host vs board on-device learning, bit for bit: one integer STDP definition.

The host side is the plasticity engine (rule ``int_stdp``, ``sdk/plasticity/int_stdp.py``)
inside an integer-mode Runtime stepped with ``rt.step``; the board side is the C firmware
(``np_model.c: stdp_step``) on the x86 virtual board and the Cortex-M4 build under QEMU.
Random layers (shapes, quantization, neuron and rule parameters, seeds) run 10^4 learning
steps; every step's output, the learned weights, both trace vectors, the generator word
and the count of weight changes must be identical.
"""

from __future__ import annotations

import numpy as np
import pytest

from neuroplast.firmware_bridge import Board
from neuroplast.graph import LIF, Graph, Input, Linear, QuantSpec
from neuroplast.plasticity import IntSTDPParams, IntSTDPState, PlasticityEngine
from neuroplast.runtime import Runtime

STEPS = 10_000
CASES = 5  # random layers on the x86 board
QEMU_CASES = 2  # the Cortex-M4 UART under QEMU moves ~30 us per byte


def random_case(seed: int) -> tuple[Runtime, str, IntSTDPParams, np.ndarray]:
    """A random plastic network, rule parameters and a 10^4-step input stream with
    silent and saturated stretches (all int8 codes)."""
    rng = np.random.default_rng(1000 + seed)
    n_in = int(rng.integers(4, 49))
    n_out = int(rng.integers(2, 33))
    zp = int(rng.integers(-20, 21)) if seed % 2 else 0
    layers: list = [("x", Input(shape=(n_in,), quant=QuantSpec(8, 1.0, zp)))]
    n_pre = n_in
    if seed % 3 == 2:  # the plastic layer behind a spiking hidden layer
        n_pre = int(rng.integers(4, 33))
        layers += [
            ("fc0", Linear(weight=rng.normal(0.1, 0.4, (n_pre, n_in)),
                           weight_q=QuantSpec(8, 0.01, 0, narrow=True),
                           out_q=QuantSpec(16, 0.01, 0))),
            ("lif0", LIF(tau_mem=rng.uniform(0.002, 0.05, n_pre), v_th=0.5)),
        ]  # fmt: skip
    w_scale = float(rng.choice([0.004, 0.01, 0.02]))
    layers += [
        ("fc", Linear(weight=rng.normal(0.15, 0.3, (n_out, n_pre)),
                      weight_q=QuantSpec(8, w_scale, 0, narrow=True),
                      out_q=QuantSpec(16, 0.01, 0))),
        ("lif", LIF(tau_mem=rng.uniform(0.002, 0.05, n_out), v_th=rng.uniform(0.2, 1.0, n_out),
                    reset=str(rng.choice(["zero", "subtract"])))),
    ]  # fmt: skip
    rt = Runtime(Graph.sequential(layers, dt=1e-3), mode="int")
    a_pre, eta_plus = int(rng.integers(500, 16000)), int(rng.integers(1, 120))
    params = IntSTDPParams(  # depression-dominated, so weights wander rather than peg
        a_pre=a_pre,
        a_post=int(rng.integers(a_pre, 2 * a_pre)),
        decay_pre=int(rng.integers(16000, 32769)),
        decay_post=int(rng.integers(16000, 32769)),
        eta_plus=eta_plus,
        eta_minus=eta_plus + int(rng.integers(0, 30)),
        w_min=int(rng.integers(-128, -40)),
        w_max=int(rng.integers(40, 128)),
        seed=int(rng.integers(0, 2**32)),
    )
    x = rng.integers(zp - 8, zp + 10, (STEPS, n_in))
    x[rng.random(STEPS) < 0.05] = zp  # silence
    x[rng.random(STEPS) < 0.02] = 127  # saturation
    return rt, "fc", params, np.clip(x, -128, 127).astype(np.int8)


def host_run(rt: Runtime, layer: str, params: IntSTDPParams, x: np.ndarray):
    eng = PlasticityEngine()
    eng.attach(layer, params, force=True)  # random bounds may clip (the board clamps alike)
    rt.plasticity = eng
    rt.learn(True)
    out = np.stack([np.asarray(rt.step(xt)) for xt in x])
    sd = eng.state_dict()
    key = f"0/{layer}/int_stdp/"
    st = IntSTDPState(sd[key + "x"], sd[key + "y"], int(sd[key + "rng"]))
    return out, rt.params[layer]["weight"].copy(), st, int(sd[key + "changed"])


def board_run(board: Board, rt: Runtime, layer: str, params: IntSTDPParams, x: np.ndarray,
              pause_at: int | None = None):  # fmt: skip
    """Learn on the board; with ``pause_at``, stop there, pull the state, push it back
    and resume (exercises the learning-state transfer both ways)."""
    board.load(rt)
    before = board.stats()["learn_updates"]
    board.learn(True, layer=layer, params=params)
    cut = STEPS if pause_at is None else pause_at
    outs = list(board.stream(x[:cut], reset=True))
    if pause_at is not None:
        board.learn(False)
        st = board.pull_learn_state()
        board.push_learn_state(st)
        board.learn(True, resume=True)
        outs += list(board.stream(x[cut:]))
    board.learn(False)
    changed = board.stats()["learn_updates"] - before
    return np.stack(outs), board.pull_state(layer), board.pull_learn_state(), changed


@pytest.mark.parametrize("case", range(CASES))
def test_board_learning_bit_exact_with_engine(board_proc, board, case):
    if board_proc.kind != "virtual" and case >= QEMU_CASES:
        pytest.skip("QEMU runs the first case only (slow emulated UART)")
    rt, layer, params, x = random_case(case)
    w0 = rt.params[layer]["weight"].copy()
    got = board_run(board, rt, layer, params, x, pause_at=STEPS // 2 if case % 2 else None)
    rt.reset()
    ref = host_run(rt, layer, params, x)
    np.testing.assert_array_equal(got[0], ref[0])  # every step's output
    np.testing.assert_array_equal(got[1], ref[1])  # learned weights
    np.testing.assert_array_equal(got[2].x, ref[2].x)  # pre traces
    np.testing.assert_array_equal(got[2].y, ref[2].y)  # post traces
    assert got[2].rng == ref[2].rng  # generator word
    assert got[3] == ref[3]  # weight changes (LEARN_UPDATES)
    # the comparison means something: learning moved weights, neurons fired and rested
    assert ref[3] > 50 and np.count_nonzero(ref[1] != w0) > 0
    rate = float(np.mean(ref[0]))
    assert 0.0 < rate < 1.0, rate


def test_learning_state_transfer_is_validated(board):
    from neuroplast.errors import DataError
    from neuroplast.firmware_bridge import BridgeError, DeviceError

    rt, layer, params, x = random_case(0)
    board.load(rt)
    with pytest.raises(BridgeError, match="not configured"):
        board.pull_learn_state()
    with pytest.raises(DeviceError) as ei:  # the board refuses too (no configuration)
        board._get_object(0xFF, "learning state")
    assert ei.value.code_name == "BAD_ARG"
    with pytest.raises(DeviceError) as ei:
        board.learn(True, resume=True)
    assert ei.value.code_name == "BAD_ARG"
    board.learn(True, layer=layer, params=params, start=False)  # configured, not learning
    assert not board.info().learning
    list(board.stream(x[:50]))
    np.testing.assert_array_equal(board.pull_state(layer), rt.params[layer]["weight"])
    st = board.pull_learn_state()
    assert st.rng != 0 and not st.x.any() and not st.y.any()  # traces only move when learning
    n_pre = st.x.size
    with pytest.raises(DataError):
        board.push_learn_state(IntSTDPState(np.full(n_pre, 40000), st.y, st.rng))
    with pytest.raises(DataError):
        board.push_learn_state(IntSTDPState(st.x[:-1], st.y, st.rng))
    # a hostile object straight to the board: trace above 32767 -> BAD_ARG, state kept
    import struct

    bad = struct.pack("<I", 7) + np.full(n_pre + st.y.size, 0xFFFF, "<u2").tobytes()
    with pytest.raises(DeviceError) as ei:
        board._set_object(0xFF, bad)
    assert ei.value.code_name == "BAD_ARG"
    assert board.pull_learn_state().rng == st.rng
    with pytest.raises(DeviceError) as ei:
        board._set_object(0xFF, bad[:-2])
    assert ei.value.code_name == "BAD_ARG"
    board.push_learn_state(IntSTDPState(st.x + 5, st.y + 9, 12345))
    back = board.pull_learn_state()
    assert back.rng == 12345 and (back.x == 5).all() and (back.y == 9).all()
