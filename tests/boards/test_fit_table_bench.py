"""bench/fit_table.py runs on the bundles it is given and reports missing ones clearly."""

from __future__ import annotations

import json


def test_bench_measures_present_bundles_and_skips_missing(
    plastic_bundle, tmp_path, capsys, load_bench
):
    mod = load_bench("fit_table")
    out = tmp_path / "fit.json"
    code = mod.main(
        ["--bundle", f"demo={plastic_bundle}", "--bundle", f"kws={tmp_path / 'nope.bundle'}",
         "--steps", "5", "--out", str(out), "--no-doc", "--no-calibrate"]
    )  # fmt: skip
    assert code == 0
    assert "bundle 'kws' not found at" in capsys.readouterr().err
    res = json.loads(out.read_text())
    assert "kws" in res["missing"] and "demo" in res["bundles"]
    demo = res["bundles"]["demo"]
    assert set(demo["fit"]) >= {"rpi4", "rpi5", "jetson-nano", "xylo", "loihi2", "host"}
    assert demo["measured"]["learning"] is True and demo["measured"]["median_step_s"] > 0
    h = demo["host_check"]
    assert h["latency_ratio"] == h["latency_est_s"] / h["latency_measured_s"]
    # the markdown goes between the markers of a doc, leaving the rest untouched
    doc = tmp_path / "boards.md"
    doc.write_text(
        "# Boards\n\nintro\n\n<!-- fit-table:start -->\nSTALE-TABLE\n<!-- fit-table:end -->\nend\n"
    )
    mod.write_doc(mod.markdown(res), doc)
    text = doc.read_text()
    assert text.startswith("# Boards\n\nintro\n") and text.endswith("<!-- fit-table:end -->\nend\n")
    assert (
        "STALE-TABLE" not in text
        and "| demo | float | on |" in text
        and "not measured: bundle 'kws'" in text
    )


def test_calibration_covers_both_backends_and_renders(load_bench):
    """calibrate_host times each runtime backend on the backend it names (structure only:
    no assertion on a timing) and the markdown lists a row per backend and mode."""
    from neuroplast.runtime.native import native_module

    mod = load_bench("fit_table")
    cal = mod.calibrate_host(sizes=(8, 16), steps=3, repeats=2)
    backends = ["numpy"] + (["native"] if native_module() is not None else [])
    assert [b for b in ("numpy", "native") if b in cal] == backends
    for b in backends:
        assert len(cal[b]["runs"]) == 2
        assert {"float", "int", "delay", "event"} <= set(cal[b])
    res = {"host": {"machine": "x", "python": "3", "numpy": "2"}, "steps": 1, "missing": {},
           "host_calibration": cal, "bundles": {}}  # fmt: skip
    md = mod.markdown(res)
    for b in backends:
        assert f"| {b} | float |" in md and f"| {b} | int |" in md
        assert f"| {b} | HDDelayConv scatter (float" in md
