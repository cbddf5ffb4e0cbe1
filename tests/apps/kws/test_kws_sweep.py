"""bench/kws_sweep.py: the packed raster file round-trips, and the report reads finished
and cut-short runs (a cut run reports its best-validation epoch's test scores)."""

from __future__ import annotations

import json

import numpy as np


def test_packed_rasters_round_trip(tmp_path, load_bench):
    mod = load_bench("kws_sweep")
    rng = np.random.default_rng(0)
    splits = {s: ((rng.random((5, 7, 13)) < 0.3).astype(np.uint8), rng.integers(0, 3, 5))
              for s in mod.SPLITS}  # fmt: skip  # C = 13: not a multiple of 8
    mod.save(tmp_path / "f.npz", splits, ["a", "b", "c"])
    got = mod.load(tmp_path / "f.npz")
    for s, (X, y) in splits.items():
        assert got[s][0].dtype == np.float32
        np.testing.assert_array_equal(got[s][0], X)
        np.testing.assert_array_equal(got[s][1], y)


def test_report_reads_final_and_cut_runs(tmp_path, capsys, load_bench):
    mod = load_bench("kws_sweep")
    ep = {"loss": 1.0, "train_acc": 0.5, "sigma": 0.5}
    fin = {"name": "base", "final": True, "n_train": 100, "best_epoch": 1, "seconds": 9.0,
           "variant": {**mod.BASE, "epochs": 2}, "val": 0.8, "test": 0.75, "heldout": 0.5}  # fmt: skip
    (tmp_path / "base.jsonl").write_text(
        "\n".join(
            json.dumps(r)
            for r in [{"name": "base", "epoch": 0, "val_acc": 0.7, "seconds": 4.0, **ep}, fin]
        )  # fmt: skip
    )
    cut = [{"name": "aug2", "epoch": e, "val_acc": v, "test": t, "heldout": h, "seconds": 5.0 * (e + 1),
            **ep} for e, (v, t, h) in enumerate([(0.6, 0.61, 0.4), (0.9, 0.81, 0.52), (0.85, 0.9, 0.6)])]  # fmt: skip
    (tmp_path / "aug2.jsonl").write_text("\n".join(json.dumps(r) for r in cut) + "\n")
    mod.report(tmp_path, json_out=tmp_path / "out.json")
    lines = capsys.readouterr().out.splitlines()
    assert "| aug2 (cut at epoch 3) | | 2 | 90.0 | 81.0 | 52.0 | 15 |" in lines
    assert "| base | 100 | 2 / 2 | 80.0 | 75.0 | 50.0 | 9 |" in lines
    assert [r["name"] for r in json.loads((tmp_path / "out.json").read_text())] == ["base"]
