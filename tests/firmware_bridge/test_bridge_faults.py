"""Fault injection between host and board, and the C parser fuzzed under ASan/UBSan."""

from __future__ import annotations

import re
import subprocess

import numpy as np
import pytest
from bridge_models import mlp_lif_li, random_codes

from neuroplast.firmware_bridge import (
    Board,
    BridgeError,
    BridgeTimeout,
    FaultProxy,
    build_firmware,
    spec,
)


def test_10000_messages_through_a_faulty_link(vboard):
    """1% flipped, 1% dropped, 1% duplicated frames in each direction. Every message is
    either delivered exactly once (the reply is correct and the board executed it once)
    or reported as an error; nothing is silently corrupted or executed twice."""
    rt = mlp_lif_li()
    with Board.connect(vboard.port, timeout=0.5) as b0:  # load over a clean link
        b0.load(rt)
        b0.reset("stats")
        stats0 = b0.stats()
    rng = np.random.default_rng(2024)
    x = random_codes(rt, 5000, rng)
    rt.reset()
    ref = rt.run(x)  # board STREAM steps must follow this exactly (state makes repeats visible)
    n_msgs = 10_000
    errors = delivered = 0
    step = 0
    with FaultProxy(vboard.port, p_flip=0.01, p_drop=0.01, p_dup=0.01, seed=7) as proxy:
        proxy.enabled = False  # HELLO is re-executed on retransmit by design: keep it clean
        # 30 ms per attempt: short enough to exercise many retransmits, long enough that a
        # loaded CI machine does not starve the host through 10 attempts in a row
        with Board.connect(proxy.port, timeout=0.03, retries=10) as b:
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
    assert counts.dropped > 50 and counts.flipped > 50 and counts.duplicated > 50
    # exactly once: the board executed each request once (+ HELLO and the STATS just
    # read), and answered the rest (retransmits, duplicates) from its reply cache
    assert stats["executed"] - stats0["executed"] == n_msgs + 2
    assert stats["pings"] - stats0["pings"] == n_msgs // 2
    assert stats["infer_steps"] - stats0["infer_steps"] == step == n_msgs // 2
    assert stats["rx_duplicates"] > 0 and stats["rx_crc_errors"] + stats["rx_framing_errors"] > 0
    assert b.counters.retransmits > 0


def test_lost_replies_are_reported_and_never_re_executed(vboard):
    """All replies lost: the host reports an error; the board ran the request once and
    answered every retransmit from its cache (the 'reported as an error' branch)."""
    with FaultProxy(vboard.port, p_flip=0, p_drop=1.0, p_dup=0, direction="to_host") as proxy:
        proxy.enabled = False
        with Board.connect(proxy.port, timeout=0.02, retries=3) as b:
            before = b.stats()
            proxy.enabled = True
            with pytest.raises(BridgeTimeout):
                b.ping(b"once")
            proxy.enabled = False
            after = b.stats()
    assert after["pings"] - before["pings"] == 1
    assert after["rx_duplicates"] - before["rx_duplicates"] == 3
    assert after["executed"] - before["executed"] == 2  # the PING and this STATS


def test_link_resynchronizes_after_garbage(vboard):
    with FaultProxy(vboard.port, p_flip=0, p_drop=0, p_dup=0) as proxy:
        with Board.connect(proxy.port, timeout=0.2, retries=3) as b:
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


def test_c_frame_parser_fuzz_asan_ubsan():
    """100,000 random and mutated frames and model images into the board engine built
    with AddressSanitizer + UBSan (abort on the first error); all replies well-formed."""
    exe = build_firmware("fuzz_asan")
    proc = subprocess.run(
        [str(exe), "100000", "12345"], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    m = re.search(r"(\d+) inputs, (\d+) replies \((\d+) ACK, (\d+) NACK", proc.stdout)
    assert m and int(m.group(1)) == 100_000
    assert int(m.group(3)) > 1000 and int(m.group(4)) > 1000  # both paths exercised
    assert "ERROR" not in proc.stderr and "runtime error" not in proc.stderr
