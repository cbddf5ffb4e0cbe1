"""The compiled C firmware as a virtual board on a pty, driven by the pyserial client.

Reference for every output: the neuroplast integer Runtime (``Runtime(graph, "int")``)."""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest
from bridge_models import conv_delay, delaylinear_groups, mlp_lif_li, plastic, random_codes
from conftest import BOARD_KINDS, link_timeout, start_board

from neuroplast.errors import DataError
from neuroplast.firmware_bridge import (
    Board,
    BridgeError,
    BridgeTimeout,
    DeviceError,
    ModelImageError,
    ProtocolVersionError,
    VirtualBoard,
    build_image,
    spec,
)
from neuroplast.firmware_bridge.framing import Deframer, Frame, decode_frame, encode_frame
from neuroplast.plasticity import IntSTDPParams, PlasticityEngine


def _int_stdp(rt, layer, params):
    """Attach the engine's integer rule (the board's rule) to ``rt`` and switch learning on."""
    eng = PlasticityEngine()
    eng.attach(layer, params)
    rt.plasticity = eng
    return rt.learn(True)


def test_hello_caps(board):
    caps = board.caps
    assert caps.protocol_version == spec.PROTOCOL_VERSION
    assert caps.max_payload == spec.MAX_PAYLOAD
    assert caps.firmware_version == spec.FW_VERSION
    assert set(caps.ops) == {e.name for e in spec.LAYER_KINDS}
    assert not caps.model_loaded
    for n in (0, 1, 254, 255, spec.MAX_PAYLOAD - 1):
        board.ping(bytes((i * 7 + 1) % 256 for i in range(n)))


@pytest.mark.parametrize("make", [mlp_lif_li, conv_delay, delaylinear_groups])
def test_inference_bit_identical_to_runtime(board, make, tmp_path):
    """Save a bundle, load it onto the board, run inferences (200 over the three
    models), compare bit for bit with the bundle loaded into the host integer runtime."""
    import neuroplast
    from neuroplast.bundle import save_bundle

    path = save_bundle(tmp_path / "model.zip", make().graph, mode="int")
    board.load(path)
    rt = neuroplast.load(path, mode="int")
    caps = board.info()
    assert caps.model_loaded and caps.in_size == board.image.in_size
    rng = np.random.default_rng(42)
    n_inf = {mlp_lif_li: 80, conv_delay: 60, delaylinear_groups: 60}[make]
    for _ in range(n_inf):
        x = random_codes(rt, int(rng.integers(1, 13)), rng)
        rt.reset()
        ref = np.asarray(rt.run(x), dtype=np.int64)
        got = board.infer(x)
        np.testing.assert_array_equal(got, ref)
    # the reference is not trivial: outputs vary
    assert np.unique(ref).size > 1
    assert board.stats()["infer_steps"] > n_inf


def test_long_window_splits_into_frames_and_keeps_state(board):
    rt = mlp_lif_li()
    board.load(rt)
    x = random_codes(rt, 700, np.random.default_rng(5))  # > one frame of outputs
    rt.reset()
    np.testing.assert_array_equal(board.infer(x), rt.run(x))
    # streaming continues the state across frames and calls
    rt.reset()
    ref = rt.run(x)
    got = np.stack(
        list(board.stream(x[:300], steps_per_frame=37, reset=True)) + list(board.stream(x[300:]))
    )
    np.testing.assert_array_equal(got, ref)


def test_float_input_is_quantized_like_the_runtime(board):
    rt = conv_delay()
    board.load(rt)
    x = np.random.default_rng(3).normal(0, 2, (9, 2, 20)).astype(np.float32)
    rt.reset()
    np.testing.assert_array_equal(board.infer(x), rt.run(x))


def test_event_stream_matches_sparse_runtime(board):
    from neuroplast.runtime import SparseInput

    rt = plastic()
    board.load(rt)
    rng = np.random.default_rng(9)
    steps = [
        np.sort(rng.choice(20, size=int(rng.integers(0, 8)), replace=False)) for _ in range(150)
    ]
    got = board.stream_events(steps, reset=True)
    rt.reset()
    ref = np.stack(
        [rt.step(SparseInput(s)) if s.size else rt.step(np.zeros(20, np.int8)) for s in steps]
    )
    np.testing.assert_array_equal(got, ref.reshape(got.shape))


def test_on_device_learning_matches_host_runtime(board):
    """Same inputs, same seed: board STDP == host Runtime + engine rule int_stdp, bit for bit."""
    rt = plastic()
    params = IntSTDPParams(seed=1234, eta_plus=300, eta_minus=260)
    board.load(rt)
    w0 = board.pull_state("fc")
    np.testing.assert_array_equal(w0, rt.params["fc"]["weight"])
    board.learn(True, layer="fc", params=params)
    rng = np.random.default_rng(11)
    x = (rng.random((400, 20)) < 0.25).astype(np.int8)
    got = np.stack(list(board.stream(x, reset=True)))
    w_board = board.pull_state("fc")

    _int_stdp(rt, "fc", params)
    rt.reset()
    ref = np.stack([rt.step(xt) for xt in x])
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(w_board, rt.params["fc"]["weight"])
    changed = int(np.count_nonzero(w_board != w0))
    assert changed > 20, "learning must actually move weights for the test to mean anything"
    assert board.stats()["learn_updates"] == int(
        rt.plasticity.state_dict()["0/fc/int_stdp/changed"]
    )
    # another seed gives different weights (the seed is really used)
    rt2 = plastic()
    _int_stdp(rt2, "fc", IntSTDPParams(seed=99, eta_plus=300, eta_minus=260))
    rt2.reset()
    for xt in x:
        rt2.step(xt)
    assert not np.array_equal(rt2.params["fc"]["weight"], w_board)
    # learned state round trip: push the initial weights back
    board.learn(False)
    board.push_state("fc", w0)
    np.testing.assert_array_equal(board.pull_state("fc"), w0)


def test_asan_virtual_board_end_to_end():
    """The firmware built with AddressSanitizer+UBSan serves real traffic over the pty
    (three models, learning, garbage) and exits cleanly with no sanitizer report."""
    rng = np.random.default_rng(8)
    vb = VirtualBoard(asan=True, start_timeout=30).start()
    try:
        with Board.connect(vb.port, timeout=2.0) as b:
            for make in (mlp_lif_li, conv_delay, delaylinear_groups):
                rt = make()
                b.load(rt)
                for _ in range(3):
                    x = random_codes(rt, 20, rng)
                    rt.reset()
                    np.testing.assert_array_equal(b.infer(x), rt.run(x))
            b.load(plastic())
            b.learn(True, params=IntSTDPParams(eta_plus=500, eta_minus=400))
            list(b.stream((rng.random((100, 20)) < 0.3).astype(np.int8)))
            b.pull_state()
            b.port.write(rng.integers(0, 256, 6000, dtype=np.uint8).tobytes() + b"\x00")
            b.ping(b"still here")
    finally:
        rc = vb.stop()
    assert rc == 0, vb.stderr_output[-3000:]
    assert "runtime error" not in vb.stderr_output and "AddressSanitizer" not in vb.stderr_output


def test_chunked_load_with_small_chunks_and_bad_image(board):
    rt = delaylinear_groups()
    img = build_image(rt)
    board.load(img, chunk=97)
    assert board.info().model_loaded
    assert any("model loaded: 4 layers, 40 -> 3" in text for _, text in board.logs), board.logs
    bad = bytearray(img.data)
    bad[20] ^= 0xFF  # corrupt the first layer's sizes
    with pytest.raises(DeviceError) as ei:
        board.load(bytes(bad))
    assert ei.value.code_name == "MODEL_INVALID" and "layer 0" in ei.value.detail
    assert not board.info().model_loaded
    with pytest.raises(DeviceError) as ei:
        board.load(img.data[:-3])
    assert ei.value.code_name in ("MODEL_INVALID",)


def test_device_errors_are_typed(board):
    with pytest.raises(DeviceError) as ei:
        board.request(spec.MsgType.INFER, struct.pack("<H", 1) + b"\x00" * 16)
    assert ei.value.code == spec.ErrorCode.NO_MODEL
    board.load(mlp_lif_li())
    with pytest.raises(DeviceError) as ei:
        board.request(spec.MsgType.INFER, struct.pack("<H", 2) + b"\x00" * 16)
    assert ei.value.code_name == "BAD_LENGTH"
    with pytest.raises(DeviceError) as ei:
        board.request(spec.MsgType.INFER, struct.pack("<H", 600))
    assert ei.value.code_name == "TOO_LARGE"
    with pytest.raises(DeviceError) as ei:
        board.request(0x55)
    assert ei.value.code_name == "UNKNOWN_TYPE"
    with pytest.raises(DeviceError) as ei:
        board.request(spec.MsgType.LOAD_BUNDLE, struct.pack("<IIII", 10, 100, 0, 0))
    assert ei.value.code_name == "CHUNK_ORDER"
    with pytest.raises(DeviceError) as ei:
        board.learn(True, layer="fc2")  # fc2 feeds an LI, not a LIF
    assert ei.value.code_name == "BAD_ARG"
    with pytest.raises(DataError):
        board.infer(np.zeros((3, 15), np.int8))
    with pytest.raises(DataError):
        board.infer(np.full((3, 16), np.nan, np.float32))
    with pytest.raises(DataError):
        board.infer(np.zeros((0, 16), np.int8))


@pytest.mark.parametrize("kind", BOARD_KINDS)
def test_model_too_large_for_board(kind):
    with (
        start_board(kind, staging=512) as vb,
        Board.connect(vb.port, timeout=link_timeout(kind)) as b,
    ):
        assert b.caps.max_model_bytes == 512
        with pytest.raises(ModelImageError):
            b.load(mlp_lif_li())
        data = build_image(mlp_lif_li()).data
        with pytest.raises(DeviceError) as ei:
            b.request(spec.MsgType.LOAD_BUNDLE, struct.pack("<IIII", 0, len(data), 0, 0))
        assert ei.value.code_name in ("TOO_LARGE", "CRC")


def test_unsupported_graph_is_refused_on_the_host():
    from neuroplast.errors import UnsupportedError
    from neuroplast.graph.graph import Graph
    from neuroplast.graph.nodes import Input, Node, register_node
    from neuroplast.quant import QuantSpec
    from neuroplast.runtime import Runtime
    from neuroplast.runtime.kernels import Kernel, register_op

    @register_node
    @dataclass(frozen=True, eq=False)
    class _HostOnly(Node):  # a user's node kind with a host kernel and no firmware handler
        kind: ClassVar[str] = "_TestHostOnly"

    @register_op(_HostOnly)
    class _HostOnlyKernel(Kernel):
        def step(self, inputs, state):
            return inputs[0], state

    g = Graph.sequential([("x", Input(shape=(4,), quant=QuantSpec(8, 0.1, 0))), ("r", _HostOnly())])
    with pytest.raises(UnsupportedError, match=r"'r' \(_TestHostOnly\) cannot run on firmware"):
        build_image(Runtime(g, mode="int"))
    with pytest.raises(ModelImageError, match="integer"):
        build_image(Runtime(g, mode="float"))
    from neuroplast.graph.nodes import Linear

    u8 = QuantSpec(8, 0.1, 0, signed=False)
    g2 = Graph.sequential(
        [
            ("x", Input(shape=(4,), quant=u8)),
            ("fc", Linear(weight=np.eye(4), weight_q=QuantSpec(8, 0.01, 0), out_q=u8)),
        ]
    )
    with pytest.raises(UnsupportedError, match=r"'x' \(Input\).*signed 8-bit input"):
        build_image(Runtime(g2, mode="int"))
    from neuroplast.graph.nodes import Flatten

    g3 = Graph.sequential(
        [("x", Input(shape=(2, 3), quant=QuantSpec(8, 0.1, 0))), ("f", Flatten())]
    )
    with pytest.raises(UnsupportedError, match="no layer the board computes"):
        build_image(Runtime(g3, mode="int"))


def test_protocol_version_mismatch(board_proc):
    fd = os.open(board_proc.port, os.O_RDWR | os.O_NOCTTY)
    try:
        import tty

        tty.setraw(fd)
        os.write(fd, encode_frame(Frame(type=spec.MsgType.HELLO, seq=5, version=2)))
        d = Deframer()
        frames = []
        while not frames:
            frames = d.feed(os.read(fd, 4096))
        f = decode_frame(frames[0])
        assert f.type == spec.MsgType.NACK and f.payload[1] == spec.ErrorCode.VERSION
    finally:
        os.close(fd)
    with Board.connect(board_proc.port, timeout=link_timeout(board_proc.kind)) as b:  # v1 host
        with pytest.raises(ProtocolVersionError):
            b._consider(
                encode_frame(Frame(spec.MsgType.ACK, b._seq, b"\x01", version=9))[:-1], 1, b._seq
            )


def test_c_encoder_is_byte_identical_to_python(board_proc):
    """The board's raw reply bytes equal the Python encoder's (canonical COBS, CRC, header)."""
    import tty

    fd = os.open(board_proc.port, os.O_RDWR | os.O_NOCTTY)
    try:
        tty.setraw(fd)
        for n in (0, 1, 253, 254, 255, 508, 1000, 2047):
            payload = bytes((i % 255) + 1 for i in range(n))  # long zero-free runs
            os.write(fd, encode_frame(Frame(type=spec.MsgType.PING, seq=n, payload=payload)))
            expect = encode_frame(Frame(type=spec.MsgType.ACK, seq=n, payload=b"\x0c" + payload))
            got = b""
            while not got.endswith(b"\x00"):
                got += os.read(fd, 65536)
            assert got == expect
    finally:
        os.close(fd)


def test_timeout_and_port_timeout_restored():
    import serial

    master, slave = os.openpty()  # nothing answers on this line
    try:
        port = serial.Serial(os.ttyname(slave), timeout=0.7)
        b = Board(port, timeout=0.05, retries=2)
        with pytest.raises(BridgeTimeout, match="3 attempts"):
            b.ping(b"x")
        assert port.timeout == 0.7
        assert b.counters.retransmits == 2
        b.close()
    finally:
        os.close(master)
        os.close(slave)
    with pytest.raises(BridgeError, match="cannot open"):
        Board.connect("/dev/does-not-exist-np", timeout=0.1)


def test_trace_hex_dump(board_proc):
    import io

    buf = io.StringIO()
    with Board.connect(board_proc.port, timeout=link_timeout(board_proc.kind), trace=buf) as b:
        b.ping(b"\x01\x02")
    text = buf.getvalue()
    assert "> HELLO" in text and "< ACK" in text and "> PING" in text
