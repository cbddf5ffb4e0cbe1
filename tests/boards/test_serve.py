"""serve(): stream sources, on-device learning, periodic atomic state saves, resume, signals."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import neuroplast
from neuroplast.boards.stream import serve
from neuroplast.errors import BoardError, DataError, RuntimeStateError

from .conftest import free_port

pytestmark = pytest.mark.timeout(180)  # never hang CI on a stuck ssh/subprocess


def _outputs(text: str) -> np.ndarray:
    return np.array([json.loads(ln)["output"] for ln in text.splitlines()])


def _reference(bundle: Path, xs: np.ndarray, learn: bool = True):
    rt = neuroplast.load(bundle)
    rt.learn(learn)
    return rt, np.stack([rt.step(x) for x in xs])


def test_npy_stream_learns_saves_and_resumes(plastic_bundle, tmp_path):
    xs = np.random.default_rng(1).random((20, 16), dtype=np.float32)
    np.save(tmp_path / "a.npy", xs[:14])
    np.save(tmp_path / "b.npy", xs[14])  # a single step (shape (16,)) is accepted too
    src = tmp_path / "stream"
    src.mkdir()
    os.replace(tmp_path / "a.npy", src / "0.npy")
    os.replace(tmp_path / "b.npy", src / "1.npy")
    out = io.StringIO()
    st = serve(plastic_bundle, str(src), state_dir=tmp_path / "st", save_every_steps=7,
               save_every_s=None, out=out)  # fmt: skip
    assert (st.steps, st.saves, st.resumed, st.stopped_by) == (15, 3, False, "eof")  # 7, 14, end
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
    st2 = serve(plastic_bundle, str(tmp_path / "c.npy"), state_dir=tmp_path / "st", out=out2)
    assert st2.resumed and st2.steps == 5
    ref_more = np.stack([ref_rt.step(x) for x in xs[15:]])
    got = _outputs(out2.getvalue())
    np.testing.assert_array_equal(got, ref_more)
    assert json.loads(out2.getvalue().splitlines()[0])["step"] == 16


def test_stdin_text_stream_and_bad_line_keeps_state(small_bundle, tmp_path):
    xs = np.random.default_rng(2).random((4, 16), dtype=np.float32)
    lines = [" ".join(f"{v:.9g}" for v in x) for x in xs[:3]] + [
        ",".join(f"{v:.9g}" for v in xs[3])
    ]
    out = io.StringIO()
    st = serve(small_bundle, "-", stdin=io.StringIO("\n".join(lines) + "\n"), learn=False, out=out)
    assert st.steps == 4
    _, ref = _reference(small_bundle, xs, learn=False)
    np.testing.assert_array_equal(_outputs(out.getvalue()), ref)

    bad = "\n".join(lines[:3] + ["1 2 3"]) + "\n"
    with pytest.raises(DataError, match="stdin line 4: got 3 numbers, the model input needs 16"):
        serve(
            small_bundle, "-", stdin=io.StringIO(bad), state_dir=tmp_path / "s", out=io.StringIO()
        )
    with np.load(tmp_path / "s" / "state.npz") as z:  # the 3 good steps were saved on the way out
        assert int(z["meta/steps"]) == 3


def test_udp_stream_on_localhost(small_bundle):
    port = free_port()
    xs = np.random.default_rng(3).random((5, 16), dtype=np.float32)
    out = io.StringIO()
    ready = threading.Event()
    stop = threading.Event()
    res = {}

    def run():
        res["st"] = serve(small_bundle, f"udp://127.0.0.1:{port}", learn=False, max_steps=5,
                          out=out, ready=ready, stop=stop)  # fmt: skip

    th = threading.Thread(target=run, daemon=True)
    th.start()
    try:
        assert ready.wait(10)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for i, x in enumerate(xs):
                if i == 2:  # text datagrams are accepted too
                    s.sendto(" ".join(f"{v:.9g}" for v in x).encode(), ("127.0.0.1", port))
                else:
                    s.sendto(x.astype("<f4").tobytes(), ("127.0.0.1", port))
        th.join(20)
    finally:
        stop.set()  # a failed test never leaves the server thread running
    assert not th.is_alive()
    assert res["st"].steps == 5 and res["st"].stopped_by == "max_steps"
    _, ref = _reference(small_bundle, xs, learn=False)
    np.testing.assert_array_equal(_outputs(out.getvalue()), ref)


def test_source_and_option_errors(small_bundle, tmp_path):
    with pytest.raises(BoardError, match="refusing to listen on non-loopback 192.0.2.1"):
        serve(small_bundle, "udp://192.0.2.1:9750", out=io.StringIO())
    with pytest.raises(BoardError, match="needs a port"):
        serve(small_bundle, "udp://127.0.0.1", out=io.StringIO())
    with pytest.raises(BoardError, match="stream source not found"):
        serve(small_bundle, str(tmp_path / "none.npy"), out=io.StringIO())
    np.save(tmp_path / "w.npy", np.zeros((3, 15), np.float32))
    with pytest.raises(DataError, match=r"shape \(3, 15\), expected \(16,\)"):
        serve(small_bundle, str(tmp_path / "w.npy"), out=io.StringIO())
    with pytest.raises(BoardError, match="save_every_steps must be > 0"):
        serve(small_bundle, "-", save_every_steps=0, out=io.StringIO())
    with pytest.raises(BoardError, match="emit must be"):
        serve(small_bundle, "-", emit="everything", out=io.StringIO())
    sd = tmp_path / "corrupt"
    sd.mkdir()
    (sd / "state.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(RuntimeStateError, match="corrupt"):
        serve(small_bundle, "-", state_dir=sd, stdin=io.StringIO(""), out=io.StringIO())


def test_module_entry_point_saves_state_on_sigterm(plastic_bundle, tmp_path):
    """What the systemd unit runs: python -m neuroplast.boards.stream ... ; SIGTERM -> final save."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "neuroplast.boards.stream", str(plastic_bundle),
         "--source", f"udp://127.0.0.1:{port}", "--state-dir", str(tmp_path / "st"),
         "--save-every-s", "3600", "--emit", "argmax"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stderr.readline().startswith("serving ")  # the UDP port is bound now
        xs = np.random.default_rng(4).random((3, 16), dtype=np.float32)
        got = []
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for x in xs:
                s.sendto(x.astype("<f4").tobytes(), ("127.0.0.1", port))
                got.append(json.loads(proc.stdout.readline()))
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "stopped by SIGTERM" in err
    assert [g["step"] for g in got] == [1, 2, 3]
    with np.load(tmp_path / "st" / "state.npz") as z:
        assert int(z["meta/steps"]) == 3


def test_serial_stream_on_a_pty(small_bundle):
    """A real serial device: the slave end of a pseudo-terminal, written from the master end."""
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
                  out=out, ready=ready, stop=stop),
        ),
        daemon=True,
    )  # fmt: skip
    try:
        th.start()
        assert ready.wait(20)  # the port is open (pyserial flushes input on open)
        for x in xs:
            os.write(master, (" ".join(f"{v:.9g}" for v in x) + "\n").encode())
        th.join(20)
    finally:
        stop.set()
        th.join(5)
        os.close(master)
        os.close(slave)
    assert not th.is_alive() and res["st"].steps == 3
    _, ref = _reference(small_bundle, xs, learn=False)
    np.testing.assert_array_equal(_outputs(out.getvalue()), ref)
