"""LearningGuard rollback and crash safety of rt.save_state under SIGKILL."""

from __future__ import annotations

import os
import signal
import struct
import sys
import time

import numpy as np
import pytest

from neuroplast.errors import PlasticityError
from neuroplast.graph import Graph, Input, Linear
from neuroplast.plasticity import DeltaRuleParams, LearningGuard, PairSTDPParams
from neuroplast.runtime import Runtime


def _readout_task(seed=0, n=10, m=400):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((m, n)).astype(np.float32)
    w_true = rng.standard_normal((3, n))
    return x, np.argmax(x @ w_true.T, axis=1)


def _accuracy(rt, x, y):
    return float(np.mean(np.argmax(rt.run(x), axis=1) == y))


def _learner(n=10):
    g = Graph.sequential(
        [("in", Input(shape=(n,))), ("ro", Linear(weight=np.zeros((3, n), np.float32)))]
    )
    rt = Runtime(g)
    rt.plasticity.attach("ro", DeltaRuleParams(lr=0.05))
    return rt.learn(True)


def _train(rt, x, y, guard=None, corrupt_from=None):
    for i, (xi, yi) in enumerate(zip(x, y, strict=True)):
        label = (yi + 1) % 3 if corrupt_from is not None and i >= corrupt_from else yi
        rt.plasticity.set_target("ro", np.eye(3)[label])
        (guard.step if guard else rt.step)(xi)


def test_guard_rolls_back_harmful_learning(tmp_path) -> None:
    x, y = _readout_task(m=1200)
    xc, yc = x[800:], y[800:]  # held-out check set from the same task
    x, y = x[:800], y[:800]
    # unguarded: labels corrupted after 400 samples wreck the readout
    rt = _learner()
    _train(rt, x, y, corrupt_from=400)
    bad = _accuracy(rt, xc, yc)
    rt2 = _learner()
    guard = LearningGuard(
        rt2, lambda r: _accuracy(r, xc, yc), every=20, max_drop=0.03, path=tmp_path / "g.npz"
    )
    _train(rt2, x, y, guard=guard, corrupt_from=400)
    good = _accuracy(rt2, xc, yc)
    assert good > 0.75 and bad < 0.45, (good, bad)
    assert good == pytest.approx(guard.good_metric)
    assert all(not keep for s, _, keep in guard.history if s > 400)  # every bad chunk undone
    assert guard.rollbacks >= 20
    # after the last rollback the weights equal the last accepted state exactly
    np.testing.assert_array_equal(rt2.params["ro"]["weight"], guard.good_state["param/ro/weight"])
    # the saved checkpoint is that accepted state
    rt3 = _learner()
    rt3.load_state(tmp_path / "g.npz")
    np.testing.assert_array_equal(rt3.params["ro"]["weight"], guard.good_state["param/ro/weight"])
    with pytest.raises(PlasticityError, match="every"):
        LearningGuard(rt2, lambda r: 1.0, every=0)


def _crash_runtime(n_in=256, n_out=128):
    g = Graph.sequential(
        [("in", Input(shape=(n_in,))), ("fc", Linear(weight=np.zeros((n_out, n_in), np.float32)))]
    )
    rt = Runtime(g)
    rt.plasticity.attach("fc", PairSTDPParams())
    return rt


def _fill(rt, k: int) -> None:
    """State number k: every weight equals k (the plasticity traces too)."""
    rt.params["fc"]["weight"][...] = k
    rt.step(np.zeros(256, np.float32))  # creates neuron state + trace arrays
    b = rt.plasticity.bindings[0]
    for key in ("pre", "post", "post2"):
        b.state[key] = np.full_like(b.state.get(key, np.zeros(1)), float(k))


@pytest.mark.skipif(sys.platform == "win32", reason="needs fork and SIGKILL")
def test_save_state_survives_50_sigkills(tmp_path) -> None:
    """A child process saves states 1, 2, 3, ... in a loop and reports each completed
    save over a pipe; it is SIGKILLed at a random moment, 50 times. Every time the file
    must load and be exactly the last completed state or the one being written."""
    path = tmp_path / "state.npz"
    rng = np.random.default_rng(0)
    rt = _crash_runtime()
    rt.learn(True)
    _fill(rt, 0)
    rt.save_state(path)
    k_start = 1
    outcomes = {"old": 0, "new": 0}
    for _ in range(50):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: save forever
            try:
                os.close(r)
                k = k_start
                while True:
                    _fill(rt, k)
                    rt.save_state(path)
                    os.write(w, struct.pack("<q", k))
                    k += 1
            finally:
                os._exit(0)
        os.close(w)
        time.sleep(float(rng.uniform(0.0, 0.06)))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        data = b""
        while chunk := os.read(r, 65536):
            data += chunk
        os.close(r)
        done = struct.unpack(f"<{len(data) // 8}q", data[: len(data) // 8 * 8])
        last = done[-1] if done else k_start - 1
        probe = _crash_runtime()
        probe.load_state(path)  # must never raise
        val = probe.params["fc"]["weight"]
        k_file = int(val.flat[0])
        assert (val == k_file).all()
        np.testing.assert_array_equal(probe.plasticity.bindings[0].state["pre"], float(k_file))
        assert k_file in (last, last + 1), (k_file, last)
        outcomes["old" if k_file == last else "new"] += 1
        k_start = max(k_file, last) + 1
    print(f"crash outcomes over 50 SIGKILLs: {outcomes}")
    leftovers = [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
    assert len(leftovers) <= 50  # at most one orphaned temp file per kill
