"""Fault injection between host and board, and the C parser fuzzed under ASan/UBSan."""

from __future__ import annotations

import re
import subprocess

import numpy as np
import pytest
from bridge_models import mlp_lif_li, random_codes
from conftest import link_timeout

from neuroplast.firmware_bridge import (
    Board,
    BridgeError,
    BridgeTimeout,
    FaultProxy,
    build_firmware,
    spec,
)


def test_10000_messages_through_a_faulty_link(board_proc):
    """1% flipped, 1% dropped, 1% duplicated frames in each direction. Every message is
    either delivered exactly once (the reply is correct and the board executed it once)
    or reported as an error; nothing is silently corrupted or executed twice.
    (10,000 messages on the virtual board; 2,000 through QEMU's byte-at-a-time UART.)"""
    qemu = board_proc.kind != "virtual"
    rt = mlp_lif_li()
    with Board.connect(board_proc.port, timeout=link_timeout(board_proc.kind)) as b0:
        b0.load(rt)
        b0.reset("stats")
        stats0 = b0.stats()
    rng = np.random.default_rng(2024)
    x = random_codes(rt, 5000, rng)
    rt.reset()
    ref = rt.run(x)  # board STREAM steps must follow this exactly (state makes repeats visible)
    n_msgs = 2_000 if qemu else 10_000
    errors = delivered = 0
    step = 0
    with FaultProxy(board_proc.port, p_flip=0.01, p_drop=0.01, p_dup=0.01, seed=7) as proxy:
        proxy.enabled = False  # HELLO is re-executed on retransmit by design: keep it clean
        # short enough to exercise many retransmits, long enough that a loaded CI machine
        # does not starve the host through 10 attempts in a row
        with Board.connect(proxy.port, timeout=0.05 if qemu else 0.03, retries=10) as b:
            proxy.enabled = True
            b.image = b0.image
            for i in range(n_msgs):
                try:
                    if i % 2 == 0:
                        payload = rng.integers(
                            0, 256, int(rng.integers(0, 64)), dtype=np.uint8
                        ).tobytes()
                        echo = b.request(spec.MsgType.PING, payload)
                        assert echo == payload, f"message {i}: echo corrupted"
                    else:
                        y = b._run_frame(
                            x[step : step + 1].reshape(1, -1), spec.MsgType.STREAM, 0, b.image
                        )
                        np.testing.assert_array_equal(y[0], ref[step], err_msg=f"step {step}")
                        step += 1
                    delivered += 1
                except BridgeError:
                    errors += 1
                    break  # a lost STREAM reply leaves the board state unknown to the host
            proxy.enabled = False
            stats = b.stats()
        counts = proxy.counts
    assert delivered + errors == n_msgs
    assert errors == 0, "with 10 retries at 3% loss no message should exhaust its retries"
    assert min(counts.dropped, counts.flipped, counts.duplicated) > n_msgs // 200
    # exactly once: the board executed each request once (+ HELLO and the STATS just
    # read), and answered the rest (retransmits, duplicates) from its reply cache
    assert stats["executed"] - stats0["executed"] == n_msgs + 2
    assert stats["pings"] - stats0["pings"] == n_msgs // 2
    assert stats["infer_steps"] - stats0["infer_steps"] == step == n_msgs // 2
    assert stats["rx_duplicates"] > 0 and stats["rx_crc_errors"] + stats["rx_framing_errors"] > 0
    assert b.counters.retransmits > 0


def test_lost_replies_are_reported_and_never_re_executed(board_proc):
    """All replies lost: the host reports an error; the board ran the request once and
    answered every retransmit from its cache (the 'reported as an error' branch)."""
    with FaultProxy(board_proc.port, p_flip=0, p_drop=1.0, p_dup=0, direction="to_host") as proxy:
        proxy.enabled = False
        with Board.connect(proxy.port, timeout=0.05, retries=3) as b:
            before = b.stats()
            proxy.enabled = True
            with pytest.raises(BridgeTimeout):
                b.ping(b"once")
            proxy.enabled = False
            after = b.stats()
    assert after["pings"] - before["pings"] == 1
    assert after["rx_duplicates"] - before["rx_duplicates"] == 3
    assert after["executed"] - before["executed"] == 2  # the PING and this STATS


def test_link_resynchronizes_after_garbage(board_proc):
    with FaultProxy(board_proc.port, p_flip=0, p_drop=0, p_dup=0) as proxy:
        with Board.connect(proxy.port, timeout=link_timeout(board_proc.kind), retries=3) as b:
            before = b.stats()
            rng = np.random.default_rng(1)
            proxy.inject_garbage(
                rng.integers(1, 256, 5000, dtype=np.uint8).tobytes()
            )  # no delimiter
            proxy.inject_garbage(b"\x00")
            proxy.inject_garbage(rng.integers(0, 256, 3000, dtype=np.uint8).tobytes() + b"\x00")
            proxy.inject_garbage(
                rng.integers(0, 256, 300, dtype=np.uint8).tobytes(), to_board=False
            )
            for k in range(20):
                b.ping(bytes([k]) * k)
            after = b.stats()
    assert after["rx_overflows"] > before["rx_overflows"]
    assert after["rx_framing_errors"] + after["rx_crc_errors"] > before["rx_framing_errors"]
    assert b.counters.rx_bad_frames > 0  # host saw (and survived) garbage too


def test_c_frame_parser_fuzz_asan_ubsan(tmp_path):
    """100,000 random and mutated frames and model images into the board engine built
    with AddressSanitizer + UBSan (abort on the first error); all replies well-formed.
    The mutated images start from a valid image of every layer kind."""
    from neuroplast.firmware_bridge.image import build_image
    from neuroplast.firmware_bridge.selftest import KIND_GRAPHS, random_graph
    from neuroplast.runtime import Runtime

    rng = np.random.default_rng(3)
    seeds = []
    for kind in KIND_GRAPHS:
        data = build_image(Runtime(random_graph(kind, rng), mode="int")).data
        while len(data) > 12_000:  # the fuzzer's 16 KiB staging buffer
            data = build_image(Runtime(random_graph(kind, rng), mode="int")).data
        (tmp_path / f"{kind}.npmi").write_bytes(data)
        seeds.append(str(tmp_path / f"{kind}.npmi"))
    exe = build_firmware("fuzz_asan")
    proc = subprocess.run(
        [str(exe), "100000", "12345", *seeds], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    m = re.search(r"(\d+) inputs, (\d+) replies \((\d+) ACK, (\d+) NACK", proc.stdout)
    assert m and int(m.group(1)) == 100_000
    assert int(m.group(3)) > 1000 and int(m.group(4)) > 1000  # both paths exercised
    assert "ERROR" not in proc.stderr and "runtime error" not in proc.stderr


def test_fuzzed_requests_over_the_wire(board_proc):
    """Well-framed but hostile requests (random payloads with good CRCs, mutated model
    images with good chunk CRCs) reach the handlers and the image parser of the running
    board (on the Cortex-M4 too: its alignment and 32-bit size_t). Every request gets a
    reply, and afterwards the board still runs a model bit-exactly."""
    from neuroplast.firmware_bridge import DeviceError, build_image
    from neuroplast.firmware_bridge.selftest import random_graph
    from neuroplast.runtime import Runtime

    rng = np.random.default_rng(99)
    images = [build_image(Runtime(random_graph(k, rng), mode="int")).data
              for k in ("Conv2d", "Add", "CubaLIF", "DelayLinear", "AvgPool2d", "Scale")]  # fmt: skip
    types = [t for t in spec.MsgType if t not in (spec.MsgType.LOG, spec.MsgType.ACK,
                                                   spec.MsgType.NACK)] + [0x55]  # fmt: skip
    replies = {"ack": 0, "nack": 0}
    with Board.connect(board_proc.port, timeout=link_timeout(board_proc.kind), retries=2) as b:
        for i in range(150):
            try:
                if i % 3 == 0:  # a mutated image through LOAD_BUNDLE, valid CRCs
                    img = bytearray(images[int(rng.integers(len(images)))])
                    for _ in range(int(rng.integers(1, 6))):
                        img[int(rng.integers(len(img)))] = int(rng.integers(256))
                    b.load(bytes(img[: int(rng.integers(16, len(img) + 1))]))
                else:
                    t = int(types[int(rng.integers(len(types)))])
                    n = int(rng.integers(0, 300))
                    flags = int(rng.integers(0, 16)) & ~spec.Flag.UNSOLICITED  # (ignored: a reply)
                    b.request(t, rng.integers(0, 256, n, dtype=np.uint8).tobytes(), flags=flags)
                replies["ack"] += 1
            except DeviceError:
                replies["nack"] += 1
            except BridgeTimeout as e:  # a chunk-CRC NACK is resent (and answered) as CRC
                assert "corrupted" in str(e), e
                replies["nack"] += 1
        assert replies["ack"] > 10 and replies["nack"] > 10, replies
        b.hello()
        rt = mlp_lif_li()
        b.load(rt)
        x = random_codes(rt, 30, rng)
        rt.reset()
        np.testing.assert_array_equal(b.infer(x), rt.run(x))
