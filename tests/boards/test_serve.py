"""serve(): stream sources, on-device learning, periodic atomic state saves, resume, signals,
and hostile input: bad messages counted and skipped, learning only from authenticated frames,
bounded queues with counted drops, corrupt state and leftover temp files at start."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import neuroplast
from neuroplast.boards.frames import encode_payload, seal
from neuroplast.boards.stream import serve
from neuroplast.errors import BoardError

from .conftest import free_port

pytestmark = pytest.mark.timeout(180)  # never hang CI on a stuck ssh/subprocess

KEY = bytes(range(32))


def _outputs(text: str) -> np.ndarray:
    return np.array([json.loads(ln)["output"] for ln in text.splitlines()])


def _reference(bundle: Path, xs: np.ndarray, learn: bool = True):
    rt = neuroplast.load(bundle)
    rt.learn(learn)
    return rt, np.stack([rt.step(x) for x in xs])


def _quiet(lines: list[str] | None = None):
    return lines.append if lines is not None else (lambda m: None)


class _UdpServe:
    """serve() on a loopback UDP port in a thread; ``send`` datagrams, ``finish`` -> stats."""

    def __init__(self, bundle: Path, **kw) -> None:
        self.port, self.out, self.log = free_port(), io.StringIO(), []
        self.ready, self.stop, self.res = threading.Event(), threading.Event(), {}
        kw.setdefault("log", self.log.append)
        kw.setdefault("status_every_s", None)
        kw.setdefault("guard", False)  # exact references below: no held-out messages

        def run() -> None:
            try:
                self.res["st"] = serve(bundle, f"udp://127.0.0.1:{self.port}", out=self.out,
                                       ready=self.ready, stop=self.stop, **kw)  # fmt: skip
            except BaseException as e:  # noqa: BLE001 - reported by finish()
                self.res["err"] = e

        self.th = threading.Thread(target=run, daemon=True)
        self.th.start()
        assert self.ready.wait(20)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def send(self, data: bytes) -> None:
        self.sock.sendto(data, ("127.0.0.1", self.port))

    def finish(self, timeout: float = 30.0):
        self.th.join(timeout)
        self.stop.set()
        self.th.join(10)
        self.sock.close()
        assert not self.th.is_alive()
        if "err" in self.res:
            raise self.res["err"]
        return self.res["st"]


def test_npy_stream_learns_saves_and_resumes(plastic_bundle, tmp_path):
    xs = np.random.default_rng(1).random((20, 16), dtype=np.float32)
    src = tmp_path / "stream"
    src.mkdir()
    np.save(src / "0.npy", xs[:14])
    np.save(src / "1.npy", xs[14])  # a single step (shape (16,)) is accepted too
    out = io.StringIO()
    st = serve(plastic_bundle, str(src), state_dir=tmp_path / "st", save_every_steps=7,
               save_every_s=None, out=out, log=_quiet(), guard=False)  # fmt: skip
    assert (st.steps, st.saves, st.resumed, st.stopped_by) == (15, 3, False, "eof")  # 7, 14, end
    assert st.counters["learned"] == 15  # files are the operator's: trusted to teach
    ref_rt, ref = _reference(plastic_bundle, xs[:15])
    np.testing.assert_array_equal(_outputs(out.getvalue()), ref)
    assert ref.sum() > 0
    with np.load(tmp_path / "st" / "state.npz") as z:
        assert int(z["meta/steps"]) == 15
        w_saved = z["param/fc/weight"]
    np.testing.assert_array_equal(w_saved, ref_rt.params["fc"]["weight"])
    assert not np.array_equal(w_saved, neuroplast.load(plastic_bundle).params["fc"]["weight"])
    assert [p.name for p in (tmp_path / "st").iterdir()] == ["state.npz"]  # no temp files left

    # restart: the state (weights, membranes, plasticity RNG) is resumed exactly
    np.save(tmp_path / "c.npy", xs[15:])
    out2 = io.StringIO()
    st2 = serve(plastic_bundle, str(tmp_path / "c.npy"), state_dir=tmp_path / "st", out=out2,
                log=_quiet(), guard=False)  # fmt: skip
    assert st2.resumed and st2.steps == 5
    ref_more = np.stack([ref_rt.step(x) for x in xs[15:]])
    np.testing.assert_array_equal(_outputs(out2.getvalue()), ref_more)
    assert json.loads(out2.getvalue().splitlines()[0])["step"] == 16


def test_stdin_bad_lines_are_counted_and_skipped(small_bundle, tmp_path):
    xs = np.random.default_rng(2).random((4, 16), dtype=np.float32)
    good = [" ".join(f"{v:.9g}" for v in x) for x in xs[:3]] + [",".join(f"{v:.9g}" for v in xs[3])]
    bad = ["1 2 3", "x" * 50, "1e39 " * 16, "nan " * 16, "\u00e9\u00e8", "0 " * 17]
    lines = [good[0], bad[0], good[1], bad[1], bad[2], "# a comment", "", good[2], bad[3],
             bad[4], bad[5], "9" * 5000, good[3]]  # fmt: skip
    out, log = io.StringIO(), []
    st = serve(small_bundle, "-", stdin=io.StringIO("\n".join(lines) + "\n"), learn=False,
               out=out, state_dir=tmp_path / "s", log=log.append, max_line=4096)  # fmt: skip
    c = st.counters
    assert st.steps == 4 and st.stopped_by == "eof"
    assert (c["received"], c["rejected"], c["processed"], c["dropped"]) == (11, 7, 4, 0)
    assert c["reasons"] == {"format": 4, "value": 2, "oversize": 1}
    _, ref = _reference(small_bundle, xs, learn=False)
    np.testing.assert_array_equal(_outputs(out.getvalue()), ref)  # good lines unaffected
    assert any("stdin line 2 (format): got 3 numbers, the model input needs 16" in m for m in log)
    assert any("stdin line 5 (value)" in m and "NaN or Inf after the cast" in m for m in log)
    assert "... 2 more bad messages not logged" in log  # at most 5 lines per 10 s
    with np.load(tmp_path / "s" / "state.npz") as z:
        assert int(z["meta/steps"]) == 4


def test_overflowing_message_cannot_leave_nan_state_behind(small_bundle):
    """3e38 is finite in float32 but overflows in the first layer: without a reset the
    membranes would stay NaN for every later message (one datagram = a dead device)."""
    xs = np.random.default_rng(5).random((2, 16), dtype=np.float32)
    text = "\n".join([" ".join(f"{v:.9g}" for v in xs[0]), "3e38 " * 16,
                      " ".join(f"{v:.9g}" for v in xs[1])])  # fmt: skip
    out, log = io.StringIO(), []
    st = serve(small_bundle, "-", stdin=io.StringIO(text + "\n"), out=out, log=log.append,
               learn=False)  # fmt: skip
    assert st.steps == 2 and st.counters["reasons"] == {"nonfinite": 1}
    got = _outputs(out.getvalue())
    np.testing.assert_array_equal(got[1], neuroplast.load(small_bundle).step(xs[1]))
    assert np.isfinite(got).all() and not any("Warning" in m for m in log)


def test_learning_that_makes_weights_nonfinite_is_undone(plastic_bundle, tmp_path, monkeypatch):
    """Fault injection: the rule writes NaN into the weights on the 3rd step; serve resets and
    restores the weights of its last save, and keeps serving."""
    from neuroplast.plasticity import PlasticityEngine

    real, calls = PlasticityEngine.apply, []

    def apply(self, rt, reward=None):
        calls.append(1)
        real(self, rt, reward)
        if len(calls) == 3:
            rt.params["fc"]["weight"][0, 0] = np.nan

    monkeypatch.setattr(PlasticityEngine, "apply", apply)
    xs = np.random.default_rng(6).random((4, 16), dtype=np.float32)
    np.save(tmp_path / "x.npy", xs)
    log = []
    st = serve(plastic_bundle, str(tmp_path / "x.npy"), state_dir=tmp_path / "st",
               save_every_steps=2, save_every_s=None, out=io.StringIO(), log=log.append,
               guard=False)  # fmt: skip
    assert st.steps == 3 and st.counters["reasons"] == {"nonfinite": 1}
    assert any("restored the last good ones" in m for m in log)
    monkeypatch.setattr(PlasticityEngine, "apply", real)
    ref = neuroplast.load(plastic_bundle).learn(True)
    for x in xs[:2]:
        ref.step(x)  # the weights saved after step 2 are the good copy; step 4 then learns
    ref.reset()
    ref.step(xs[3])
    with np.load(tmp_path / "st" / "state.npz") as z:
        np.testing.assert_array_equal(z["param/fc/weight"], ref.params["fc"]["weight"])


def test_binary_stdin_with_invalid_utf8(small_bundle):
    """Real stdin is read as bytes: an invalid UTF-8 line is one rejected message."""
    good = b" ".join([b"0.5"] * 16)
    stdin = io.BytesIO(good + b"\n\xff\xfe\x00 junk\n" + good + b"\n")
    st = serve(small_bundle, "-", stdin=stdin, learn=False, out=io.StringIO(), log=_quiet())
    assert st.steps == 2 and st.counters["reasons"] == {"format": 1}
    records = io.BytesIO(np.zeros((3, 16), "<f4").tobytes() + b"\x00" * 10)
    st = serve(small_bundle, "-", stdin=records, fmt="f32", learn=False, out=io.StringIO(),
               log=_quiet())  # fmt: skip
    assert st.steps == 3 and st.counters["reasons"] == {"format": 1}  # the 10-byte tail


def test_bad_message_log_is_rate_limited(small_bundle):
    log = []
    st = serve(small_bundle, "-", stdin=io.StringIO("1 2\n" * 200), learn=False,
               out=io.StringIO(), log=log.append)  # fmt: skip
    assert st.counters["rejected"] == 200 and st.steps == 0
    bad_lines = [m for m in log if m.startswith("rejected")]
    assert len(bad_lines) == 5
    assert "... 195 more bad messages not logged" in log


def test_udp_frames_are_explicit_and_bad_datagrams_never_stop_serve(small_bundle):
    xs = np.random.default_rng(3).random((5, 16), dtype=np.float32)
    srv = _UdpServe(small_bundle, learn=False, max_steps=5)
    text_4n = (" ".join(["1.5"] * 16)).ljust(64).encode()  # text of exactly 4*16 bytes
    hostile = [b"1.5 " * 15 + b"1.5", b"", b"\x00" * 63, b"\xff" * 65, os.urandom(3000),
               np.full(16, np.nan, "<f4").tobytes(), b"NPA1" + os.urandom(61)]  # fmt: skip
    for i, x in enumerate(xs):
        srv.send(hostile[i % len(hostile)])
        srv.send(encode_payload(x, "f32"))
    for h in hostile:
        srv.send(h)
    st = srv.finish()
    assert st.steps == 5 and st.stopped_by == "max_steps"
    _, ref = _reference(small_bundle, xs, learn=False)
    np.testing.assert_array_equal(_outputs(srv.out.getvalue()), ref)
    c = st.counters
    assert c["rejected"] >= 5 and c["reasons"].get("format", 0) >= 4
    assert c["received"] == c["rejected"] + c["processed"] + c["dropped"] + c["pending"]

    # a text datagram of exactly 4n bytes is text in text mode (the operator says which)
    srv = _UdpServe(small_bundle, learn=False, max_steps=1, fmt="text")
    srv.send(text_4n)
    st = srv.finish()
    assert st.steps == 1 and st.counters["rejected"] == 0
    _, ref = _reference(small_bundle, np.full((1, 16), 1.5, np.float32), learn=False)
    np.testing.assert_array_equal(_outputs(srv.out.getvalue()), ref)


def test_unauthenticated_udp_never_changes_weights(plastic_bundle, tmp_path):
    """200 'wipe' datagrams from any local process: inference only; authenticated frames
    teach exactly as the reference; replays and forged tags are refused, also after restart."""
    rng = np.random.default_rng(7)
    w0 = neuroplast.load(plastic_bundle).params["fc"]["weight"].copy()
    srv = _UdpServe(plastic_bundle, hmac_key=KEY, state_dir=tmp_path / "st", max_steps=200)
    for i in range(200):
        srv.send(encode_payload(rng.random(16, dtype=np.float32) * 50, "f32"))
        time.sleep(0.001 * (i % 20 == 0))  # paced: this test is about learning, not drops
    st = srv.finish()
    assert st.steps == 200 and st.counters["learned"] == 0
    assert st.counters["inference_only"] == 200
    with np.load(tmp_path / "st" / "state.npz") as z:
        np.testing.assert_array_equal(z["param/fc/weight"], w0)

    xs = rng.random((6, 16), dtype=np.float32)
    frames = [seal(KEY, 1000 + i, encode_payload(x, "f32")) for i, x in enumerate(xs)]
    forged = bytearray(frames[0])
    forged[20] ^= 1
    srv = _UdpServe(plastic_bundle, hmac_key=KEY, state_dir=tmp_path / "st", max_steps=3)
    for f in (frames[0], frames[0], bytes(forged), frames[1], frames[2]):
        srv.send(f)
    st = srv.finish()
    assert st.resumed and st.steps == 3 and st.counters["learned"] == 3
    assert st.counters["reasons"] == {"replay": 1, "auth": 1}
    assert (tmp_path / "st" / "auth_counter").read_text().strip() == "1002"
    ref_rt = neuroplast.load(plastic_bundle)
    ref_rt.load_state_dict(dict(np.load(tmp_path / "st" / "state.npz")))
    w_learned = ref_rt.params["fc"]["weight"].copy()
    assert not np.array_equal(w_learned, w0)
    # reference: the same 200 inference steps then 3 learning steps, in one runtime
    ref = neuroplast.load(plastic_bundle)
    for x in np.random.default_rng(7).random((200, 16), dtype=np.float32) * 50:
        ref.learn(False).step(x)
    for x in xs[:3]:
        ref.learn(True).step(x)
    np.testing.assert_allclose(w_learned, ref.params["fc"]["weight"], rtol=0, atol=0)

    # after a restart the persisted counter still refuses the old frames
    srv = _UdpServe(plastic_bundle, hmac_key=KEY, state_dir=tmp_path / "st", max_steps=1,
                    unauthenticated="reject")  # fmt: skip
    for f in frames[:3]:
        srv.send(f)
    srv.send(encode_payload(xs[3], "f32"))  # unauthenticated: rejected in this mode
    srv.send(frames[3])
    st = srv.finish()
    assert st.steps == 1 and st.counters["reasons"] == {"replay": 3, "unauthenticated": 1}


def test_full_queue_drops_are_counted(small_bundle):
    """A burst far beyond the queue: every datagram is processed or counted as dropped
    (queue full, or by the kernel when the socket buffer overflows)."""
    srv = _UdpServe(small_bundle, learn=False, queue_size=4, rcvbuf=4096, emit="none",
                    status_every_s=None)  # fmt: skip
    payload = encode_payload(np.zeros(16, np.float32), "f32")
    n = 3000
    for _ in range(n):
        srv.send(payload)
    time.sleep(1.0)  # let the step loop drain what was queued
    srv.stop.set()
    st = srv.finish()
    c = st.counters
    assert c["dropped"] + c["dropped_kernel"] > 0
    assert c["processed"] + c["dropped"] + c["dropped_kernel"] + c["rejected"] + c["pending"] == n


def test_source_and_option_errors(small_bundle, tmp_path):
    with pytest.raises(BoardError, match="refusing to listen on non-loopback 192.0.2.1"):
        serve(small_bundle, "udp://192.0.2.1:9750", out=io.StringIO())
    with pytest.raises(BoardError, match="needs a port"):
        serve(small_bundle, "udp://127.0.0.1", out=io.StringIO())
    with pytest.raises(BoardError, match="stream source not found"):
        serve(small_bundle, str(tmp_path / "none.npy"), out=io.StringIO())
    with pytest.raises(BoardError, match="save_every_steps must be > 0"):
        serve(small_bundle, "-", save_every_steps=0, out=io.StringIO())
    with pytest.raises(BoardError, match="emit must be"):
        serve(small_bundle, "-", emit="everything", out=io.StringIO())
    with pytest.raises(BoardError, match="format must be one of"):
        serve(small_bundle, "-", fmt="float64", out=io.StringIO())
    with pytest.raises(BoardError, match="HMAC key must be at least 16 bytes"):
        serve(small_bundle, "-", hmac_key=b"short", out=io.StringIO())
    key = tmp_path / "key"
    key.write_text(KEY.hex())
    key.chmod(0o644)
    with pytest.raises(BoardError, match="readable by others; run chmod 600"):
        serve(small_bundle, "-", hmac_key=key, out=io.StringIO())


def test_bad_npy_files_in_a_folder_are_skipped(small_bundle, tmp_path):
    xs = np.random.default_rng(8).random((3, 16), dtype=np.float32)
    np.save(tmp_path / "0.npy", xs[:2])
    np.save(tmp_path / "1.npy", np.zeros((3, 15), np.float32))  # wrong shape
    (tmp_path / "2.npy").write_bytes(b"\x93NUMPY junk")
    np.save(tmp_path / "3.npy", xs[2])
    out = io.StringIO()
    st = serve(small_bundle, str(tmp_path), learn=False, out=out, log=_quiet())
    assert st.steps == 3 and st.counters["reasons"] == {"file": 2}
    _, ref = _reference(small_bundle, xs, learn=False)
    np.testing.assert_array_equal(_outputs(out.getvalue()), ref)


def test_corrupt_state_falls_back_to_bundle_and_temp_files_are_cleaned(plastic_bundle, tmp_path):
    sd = tmp_path / "st"
    sd.mkdir()
    (sd / "state.npz").write_bytes(b"PK\x03\x04 not really a zip")
    (sd / ".state.npz.k2j3h4.tmp").write_bytes(b"half a save")
    (sd / "unrelated.tmp").write_bytes(b"not ours")
    xs = np.random.default_rng(9).random((4, 16), dtype=np.float32)
    np.save(tmp_path / "x.npy", xs)
    log, out = [], io.StringIO()
    st = serve(plastic_bundle, str(tmp_path / "x.npy"), state_dir=sd, out=out, log=log.append,
               guard=False)  # fmt: skip
    assert not st.resumed and st.steps == 4 and "corrupt" in st.state_fallback
    assert any(m.startswith("warning:") and "bundle's weights" in m for m in log)
    assert any("removed 1 temp file" in m for m in log)
    _, ref = _reference(plastic_bundle, xs)  # the bundle's own weights, as if no state
    np.testing.assert_array_equal(_outputs(out.getvalue()), ref)
    names = sorted(p.name for p in sd.iterdir())
    assert names[0] == "state.npz" and names[1].startswith("state.npz.bad-")
    assert names[2:] == ["unrelated.tmp"]
    assert (sd / names[1]).read_bytes() == b"PK\x03\x04 not really a zip"  # kept for a look
    # the restarted service resumes the good state written this time
    st2 = serve(plastic_bundle, str(tmp_path / "x.npy"), state_dir=sd, out=io.StringIO(),
                max_steps=1, log=_quiet())  # fmt: skip
    assert st2.resumed and st2.state_fallback is None


def test_module_entry_point_saves_learned_state_on_sigterm(plastic_bundle, tmp_path):
    """What the systemd unit runs: python -m neuroplast.boards.stream ... ; SIGTERM -> final save."""
    port = free_port()
    key = tmp_path / "key"
    key.write_text(KEY.hex() + "\n")
    key.chmod(0o600)
    proc = subprocess.Popen(
        [sys.executable, "-m", "neuroplast.boards.stream", str(plastic_bundle),
         "--source", f"udp://127.0.0.1:{port}", "--state-dir", str(tmp_path / "st"),
         "--save-every-s", "3600", "--emit", "argmax", "--hmac-key-file", str(key),
         "--no-guard"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stderr.readline().startswith("serving ")  # the UDP port is bound now
        xs = np.random.default_rng(4).random((3, 16), dtype=np.float32)
        got = []
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for i, x in enumerate(xs):
                s.sendto(seal(KEY, i + 1, encode_payload(x, "f32")), ("127.0.0.1", port))
                got.append(json.loads(proc.stdout.readline()))
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "stopped by SIGTERM" in err
    final = json.loads(next(ln for ln in err.splitlines() if ln.startswith('{"final"')))["final"]
    assert final["learned"] == 3 and final["rejected"] == 0
    assert [g["step"] for g in got] == [1, 2, 3]
    ref_rt, _ = _reference(plastic_bundle, xs)
    with np.load(tmp_path / "st" / "state.npz") as z:
        assert int(z["meta/steps"]) == 3
        np.testing.assert_array_equal(z["param/fc/weight"], ref_rt.params["fc"]["weight"])


def test_serial_stream_on_a_pty(small_bundle):
    """A real serial device: the slave end of a pseudo-terminal, written from the master end;
    an endless line is cut at max_line and skipped, the next lines still served."""
    import tty

    master, slave = os.openpty()
    tty.setraw(slave)  # no echo / line editing, like a USB CDC port
    path = os.ttyname(slave)
    xs = np.random.default_rng(6).random((3, 16), dtype=np.float32)
    out = io.StringIO()
    res = {}
    ready = threading.Event()
    stop = threading.Event()
    th = threading.Thread(
        target=lambda: res.setdefault(
            "st",
            serve(small_bundle, f"serial://{path}?baud=115200", learn=False, max_steps=3,
                  out=out, ready=ready, stop=stop, max_line=1024, log=_quiet()),
        ),
        daemon=True,
    )  # fmt: skip
    try:
        th.start()
        assert ready.wait(20)  # the port is open (pyserial flushes input on open)
        os.write(master, b"1 " * 3000 + b"\n")  # 6 kB line: over max_line
        for x in xs:
            os.write(master, (" ".join(f"{v:.9g}" for v in x) + "\n").encode())
        th.join(20)
    finally:
        stop.set()
        th.join(5)
        os.close(master)
        os.close(slave)
    assert not th.is_alive() and res["st"].steps == 3
    assert res["st"].counters["reasons"] == {"oversize": 1}
    _, ref = _reference(small_bundle, xs, learn=False)
    np.testing.assert_array_equal(_outputs(out.getvalue()), ref)


def test_guard_is_on_by_default_and_rolls_back_harmful_learning(plastic_bundle, tmp_path):
    """The first messages are held out as the guard's check; learning that changes the
    responses to them too much is rolled back; decisions are logged and saved."""
    xs = np.random.default_rng(2).random((300, 16), dtype=np.float32)
    xs[100:] *= 40.0  # a shifted stream: Oja on it moves the responses far
    np.save(tmp_path / "x.npy", xs)
    log = []
    st = serve(plastic_bundle, str(tmp_path / "x.npy"), state_dir=tmp_path / "st",
               save_every_s=None, out=io.StringIO(), log=log.append, guard_every=20,
               guard_holdout=16)  # fmt: skip
    assert st.steps == 300 and any(m.startswith("guard: 16 messages held out") for m in log)
    decisions = [m for m in log if m.startswith("guard step")]
    assert len(decisions) == (300 - 16) // 20 and any("rolled back" in m for m in decisions)
    rt = neuroplast.load(plastic_bundle)
    rt.load_state(tmp_path / "st" / "state.npz")
    assert len(rt.plasticity.log) == len(decisions)
    assert any(not e["kept"] for e in rt.plasticity.log)
