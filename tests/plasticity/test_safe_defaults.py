"""Issue 16's trained-readout scenario (tests/plasticity/adversarial.py): clipping
bounds are refused, saturated and silent streams leave the readout working, the guard
keeps it working under learning that hurts, and its decisions are saved."""

from __future__ import annotations

import numpy as np
import pytest

from neuroplast.errors import PlasticityError
from neuroplast.plasticity import LearningGuard, PairSTDPParams, RateThresholdParams
from neuroplast.runtime import Runtime

from .adversarial import accuracy, run, task, trained_readout, windows


def test_bounds_that_clip_a_trained_layer_are_refused() -> None:
    rates, _ = task()
    rt = Runtime(trained_readout(rates))
    w = rt.params["ro"]["weight"]
    assert (w < 0).mean() > 0.25  # a third of the trained weights are negative
    rt.plasticity.attach("ro", PairSTDPParams(w_min=0.0, w_max=1.0))
    with pytest.raises(PlasticityError, match=r"would clip \d+ of 256 existing weights"):
        rt.plasticity.validate(rt)
    # default bounds: the layer's own range and sign, nothing clipped
    rt = Runtime(trained_readout(rates))
    rt.plasticity.attach("ro", PairSTDPParams())
    rt.plasticity.validate(rt)
    eff = rt.plasticity.bindings[0].eff
    a = float(np.abs(w).max())
    assert eff.w_min == pytest.approx(-a) and eff.w_max == pytest.approx(a)


@pytest.mark.parametrize("name", ["all-ones", "silence"])
def test_saturated_and_silent_streams_leave_the_readout_working(name: str) -> None:
    old = run(name, "old", steps=1000)
    safe = run(name, "safe", steps=1000)
    assert safe["after"] >= safe["before"] - 0.05, safe
    assert safe["neg_weights"] == 192  # none of the trained negative weights clipped
    if name == "all-ones":  # the old defaults are what the issue measured: a dead readout
        assert old["after"] < 0.3, old


@pytest.mark.parametrize("name", ["normal", "burst"])
def test_guard_keeps_the_readout_under_harmful_learning(name: str) -> None:
    bare = run(name, "safe", steps=1000)
    guarded = run(name, "safe+guard", steps=1000)
    assert bare["after"] < bare["before"] - 0.3, bare  # unguarded STDP wrecks this readout
    assert guarded["after"] >= guarded["before"] - 0.05 and guarded["rollbacks"] > 0, guarded


def test_guard_bar_is_fixed_and_decisions_are_saved(tmp_path) -> None:
    """Scores that each drop a little below the last accepted one are not accepted one
    after another (no ratchet): the bar stays at baseline - max_drop; decisions are
    reported, recorded in the engine's log and saved with the state."""
    rates, _ = task()
    rt = Runtime(trained_readout(rates))
    rt.plasticity.attach("lif", RateThresholdParams())
    scores = iter([0.95, 0.94, 0.93, 0.92, 0.91, 0.90])
    lines: list[str] = []
    g = LearningGuard(rt, lambda r: next(scores), every=1, max_drop=0.025, report=lines.append)
    rt.learn(True)
    x, _ = windows(rates, 1, seed=0)
    for xi in x[0][:5]:
        g.step(xi)
    assert [k for _, _, k in g.history] == [True, True, False, False, False]
    assert g.bar == pytest.approx(0.925) and len(lines) == 5 and "rolled back" in lines[-1]
    rt.save_state(tmp_path / "s.npz")
    rt2 = Runtime(trained_readout(rates))
    rt2.plasticity.attach("lif", RateThresholdParams())
    rt2.load_state(tmp_path / "s.npz")
    log = rt2.plasticity.log
    assert [e["kept"] for e in log] == [True, True, False, False, False]
    assert log[0]["baseline"] == 0.95
    assert accuracy(rt2, *windows(rates, 10, seed=5)) >= 0.9
