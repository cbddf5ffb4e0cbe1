"""bench/motion_merge.py joins the two evaluation runs only when they scored the same
kernel on the same movies."""

from __future__ import annotations

import json

import pytest

from neuroplast.errors import DataError


def _sweep(accs, const):
    return [
        {"factor": f, "nnz": 1000 // f, "accuracy": a, "accuracy_constant": c}
        for f, a, c in zip((1, 5, 20), accs, const)
    ]


def _runs():
    mag = _sweep((0.80, 0.78, 0.70), (0.95, 0.93, 0.80))
    a = {
        "pruning": {"sweeps": {"split": mag}, "sweep": mag, "peak": 0.80, "peak_constant": 0.95},
        "event_layer": {"from": "a"},
        "homeostasis": {"from": "a"},
    }
    tuned = _sweep((0.80, 0.79, 0.77), (0.95, 0.94, 0.91))
    b = {
        "pruning": {
            "sweeps": {"split": [dict(e) for e in mag]},
            "finetuned": {"basis": "split", "sweep": tuned, "movies_per_level": 8},
        },
        "event_layer": {"from": "b"},
        "homeostasis": {"from": "b"},
    }
    return a, b


def test_merge_takes_the_retrained_sweep_and_recounts_the_5_point_factor(tmp_path, load_bench):
    mod = load_bench("motion_merge")
    a, b = _runs()
    out = mod.merge(a, b)
    ft = out["pruning"]["finetuned"]
    assert ft["max_factor_within_5_points"] == 20  # 0.77 >= 0.80 - 0.05
    assert ft["max_factor_within_5_points_constant"] == 20  # 0.91 >= 0.95 - 0.05
    assert out["event_layer"] == {"from": "b"} and out["homeostasis"] == {"from": "b"}
    assert "finetuned" not in a["pruning"]  # inputs untouched
    assert mod.merge(a, b, homeostasis={"from": "h"})["homeostasis"] == {"from": "h"}
    pa, pb = tmp_path / "a.json", tmp_path / "b.json"
    pa.write_text(json.dumps(a))
    pb.write_text(json.dumps(b))
    res = mod.main([str(pa), str(pb), "--out", str(tmp_path / "motion.json")])
    assert json.loads((tmp_path / "motion.json").read_text()) == res


def test_merge_refuses_runs_that_disagree(load_bench):
    mod = load_bench("motion_merge")
    a, b = _runs()
    b["pruning"]["sweeps"]["split"][1]["accuracy"] = 0.5  # another kernel or other movies
    with pytest.raises(DataError, match="disagree at 5x"):
        mod.merge(a, b)
    a, b = _runs()
    del b["pruning"]["finetuned"]
    with pytest.raises(DataError, match="no retrained sweep"):
        mod.merge(a, b)
