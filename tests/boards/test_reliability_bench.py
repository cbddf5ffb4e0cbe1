"""bench/reliability.py at small counts (the full counts run in `make bench`): the hostile
families run end to end against the real CLI, serve and a real mosquitto, with 0 crashes,
0 hangs, 0 messages lost without a counter, and weights untouched by unauthenticated input."""

from __future__ import annotations

import random

import pytest

pytestmark = pytest.mark.timeout(300)


def test_classifier_is_strict(load_bench):
    rel = load_bench("reliability")
    assert rel.classify(0, "")[0] == "ok"
    assert rel.classify(2, "error: BundleError: x.zip: bad\n") == (
        "refused",
        "error: BundleError: x.zip: bad",
    )
    assert rel.classify(2, "error: a\nerror: b\n")[0] == "crashed"  # two lines is not one
    assert rel.classify(2, "Traceback (most recent call last):\nerror: x\n")[0] == "crashed"
    assert rel.classify(70, "error: internal error: ZeroDivisionError\n")[0] == "crashed"
    assert rel.classify(2, "error: input too large to process (MemoryError)\n")[0] == "crashed"
    assert rel.classify(-9, "")[0] == "crashed"


def test_hostile_families_quick(load_bench, tmp_path, mosquitto, plastic_bundle, small_bundle):
    rel = load_bench("reliability")
    rng = random.Random(0)
    n = dict(rel.QUICK, manifest=8, raw=8, geometry=8, input_fuzz=8, input_shapes=4)
    x = tmp_path / "x.npy"
    import numpy as np

    np.save(x, np.zeros((2, 16), np.float32))
    worker = rel.Worker()
    try:
        (tmp_path / "b").mkdir()
        rows = [(f, *worker.run(["run", str(p), "--input", str(x)]))
                for f, p in rel.hostile_bundles(tmp_path / "b", n, rng)]  # fmt: skip
        (tmp_path / "i").mkdir()
        rows_in = [(f, *worker.run(["run", str(small_bundle), "--input", str(p)]))
                   for f, m, p in rel.hostile_inputs(tmp_path / "i", n, rng) if m == "float"]  # fmt: skip
    finally:
        worker.close()
    for t in (rel.tally(rows), rel.tally(rows_in)):
        assert (t["crashed"], t["hangs"], t["tracebacks"]) == (0, 0, 0), t["crash_examples"]
        assert t["refused"] > 0.5 * t["tried"]
    udp = rel.udp_hostile(tmp_path, plastic_bundle, 140, rng)
    mq = rel.mqtt_hostile(tmp_path, plastic_bundle, mosquitto.port, 70, rng)
    for r in (udp, mq):
        assert (r["crashed"], r["hangs"], r["uncounted"]) == (0, 0, 0), r
        assert r["probes_answered"] and r["refused"] > 0
        assert r["weights_max_abs_change"] == 0.0
    load = rel.serve_load(tmp_path, small_bundle, mosquitto.port, (200,), 1.0)
    assert load["uncounted_total"] == 0 and load["rows"][0]["processed"] > 0
