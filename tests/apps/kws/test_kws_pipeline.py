"""End to end on a tiny synthetic set: QAT model == bundle in the integer runtime,
ONNX/TFLite reference verified in onnxruntime/LiteRT, streaming == batch, enrollment,
the results table script and the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("brevitas")
if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
    pytest.skip("espeak-ng/sox not installed", allow_module_level=True)

from neuroplast.apps.kws import data as D  # noqa: E402
from neuroplast.apps.kws.infer import KeywordStreamer, runtime_scores  # noqa: E402
from neuroplast.apps.kws.pipeline import (  # noqa: E402
    GUARD_AUGS,
    OPEN_BUDGETS,
    PipelineConfig,
    choose_on_validation,
    featurize,
    load_kws_runtime,
    run_pipeline,
)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("kws")
    cfg = PipelineConfig(
        data_dir=str(root / "data"),
        heldout_dir=str(root / "heldout"),
        out_dir=str(root / "out"),
        voices=("flite:awb",),
        heldout_voices=("festival:kal_diphone",),
        heldout_clips=1,
        stream_minutes=1.0,
        clips_per_word=1,
        train_voices=5,
        val_voices=3,
        test_voices=2,
        epochs=2,
        hidden=(12, 12),
        max_delay=4,
        baseline=False,
        n_enroll=3,
        stream_clips=1,
    )
    return cfg, run_pipeline(cfg, progress=None)


def test_bundle_in_integer_runtime_equals_qat_model(run):
    cfg, r = run
    b = r["bundle"]
    # the integer runtime reproduces the QAT model spike for spike: identical accuracy
    assert b["runtime_int_test_acc"] == pytest.approx(b["qat_test_acc"], abs=1e-12)
    assert abs(b["runtime_float_test_acc"] - b["qat_test_acc"]) <= 0.35  # float LIF, no rounding
    saved = json.loads((Path(cfg.out_dir) / "results.json").read_text())
    assert saved["bundle"]["qat_test_acc"] == b["qat_test_acc"]
    for name in ("confusion", "raster", "delays"):
        assert (Path(r["plots"][name])).stat().st_size > 1000


def test_reference_exports_verified_in_third_party_runtimes(run):
    _, r = run
    ref = r["exports"]["reference"]
    assert ref["runtime_int_argmax_agree"] == 1.0
    if "onnx_argmax_agree" in ref:
        assert ref["onnx_vs_brevitas_max_abs"] < 1e-4
    if "tflite_vs_runtime_max_lsb" in ref:
        assert ref["tflite_vs_runtime_max_lsb"] <= 1
    nir = r["exports"]["nir"]
    if "skipped" not in nir:
        # the delay network itself: Delay nodes in NIR, run by a metadata-blind interpreter
        assert "Delay" in nir["node_kinds"] and nir["n_delay_nodes"] > 0
        assert nir["plain_nir_argmax_agree"] >= 0.95
        assert nir["roundtrip_int_identical"]
        # ... and that interpreter against snnTorch and Norse on the delay-free graph
        for k in ("snntorch_vs_interpreter_nodelay", "norse_vs_interpreter_nodelay"):
            assert "error" not in nir[k], nir[k]
            if "skipped" not in nir[k]:
                assert nir[k]["spike_agree"] >= 0.999, nir[k]


def test_streaming_equals_batch_window(run):
    cfg, r = run
    rt, classes, mel, delta = load_kws_runtime(r["bundle"]["path"], mode="int")
    s = D.load_gsc(cfg.data_dir)
    clip = s["test"].audio[0]
    batch, _ = runtime_scores(rt, featurize(clip[None], mel, delta))
    st = KeywordStreamer(rt, mel, delta, window=100)
    res = st.stream(clip)
    np.testing.assert_allclose(res.scores, batch[0], rtol=1e-9)
    assert res.latencies.shape == (100,) and len(classes) == 12
    assert r["streaming"]["int"]["hops"] == 100


def test_enrollment_and_board_estimates_reported(run):
    _, r = run
    e = r["enrollment"]
    saved = e["saved"]
    assert saved["report"]["n_examples"] == 3 and "old_drop" in saved
    # 3 validation voices, 3 examples: every cross-voice draw uses each voice once
    assert len(saved["voices"]) == 3 and e["cross_voice"]["examples_per_draw"] == [3]
    assert e["cross_voice"]["draws"] == 20 and 0 <= e["cross_voice"]["recall_mean"] <= 1
    assert "skipped" in e["personal"]  # one clip per test voice: no personal protocol
    # the soft gate's budget was chosen on validation voices, used, and kept with the guard
    # with the guard's augmented copies (guard_aug), and the guard keeps the chosen rows
    cal = e["calibration"]
    grid = {f"{k}/{float(b)}" for k in GUARD_AUGS for b in OPEN_BUDGETS}
    assert set(cal["candidates"]) == grid and cal["chosen"] in grid
    assert choose_on_validation(cal["candidates"]) == (cal["chosen"], cal["met"])
    chosen = cal["candidates"][cal["chosen"]]
    assert e["params"]["open_budget"] == chosen["open_budget"]
    assert e["params"]["guard_aug"] == chosen["guard_aug"]
    with np.load(Path(r["config"]["out_dir"]) / "kws_guard.npz") as z:
        assert float(z["open_budget"]) == chosen["open_budget"]
        n_clips = int(z["group"].max()) + 1
        assert len(z["labels"]) == len(z["emb"]) == (1 + chosen["guard_aug"]) * n_clips
        np.testing.assert_array_equal(
            z["labels"][n_clips:], np.tile(z["labels"][:n_clips], chosen["guard_aug"])
        )
    rep = saved["report"]
    # the guard invariant: an accepted enrollment costs at most 3 points on the guard set
    assert not rep["accepted"] or rep["guard_acc_before"] - rep["guard_acc_after"] <= 0.03
    # before enrolling, decisions are the old readout's: the bundle's test accuracy
    for before in (saved["old_acc_before"], e["cross_voice"]["old_acc_before"]):
        assert before == pytest.approx(r["bundle"]["runtime_int_test_acc"])
    assert set(r["boards"]) >= {"rpi4", "stm32h7"} or "skipped" in r["boards"]
    assert r["memory"]["param_bytes"] > 0 and r["memory"]["state_bytes"] > 0


def test_report_script_writes_the_table(run, tmp_path):
    import subprocess
    import sys

    cfg, r = run
    src = Path(cfg.out_dir) / "results.json"
    dst = tmp_path / "kws-results.md"
    script = Path(__file__).resolve().parents[3] / "bench" / "kws_report.py"
    subprocess.run([sys.executable, str(script), str(src), str(dst)], check=True)
    text = dst.read_text()
    acc = f"{100 * r['models'][0]['test_acc']:.1f} %"
    assert "learned-delays int8: test accuracy | " + acc in text
    assert "Streaming latency" in text
    assert f"Held-out TTS engine, bundle in int runtime | {100 * r['heldout']['acc']:.1f} %" in text
    assert "Streaming detection, 1 min stream" in text
    assert "| Voice adaptation | not run | no validation voice has more than 5 clips" in text


def test_heldout_engine_and_detection_reported(run):
    cfg, r = run
    h = r["heldout"]
    assert set(h["per_voice"]) == {"festival-kaldiphone", "background"}
    n = sum(v["n"] for v in h["per_voice"].values())
    assert n == h["n"] == r["data"]["heldout_size"] and 0 <= h["acc"] <= 1
    # per-voice accuracies average back to the total
    tot = sum(v["acc"] * v["n"] for v in h["per_voice"].values()) / n
    assert tot == pytest.approx(h["acc"])
    d = r["detection"]
    assert d["test"]["minutes"] == 1.0 and d["val"]["minutes"] == 0.5
    assert d["test"]["keywords"] == 8 and Path(d["plot"]).stat().st_size > 1000
    assert d["test"]["theta"] == d["theta"]  # the validation stream's threshold


def test_stream_scores_equal_the_hop_by_hop_streamer(run):
    from neuroplast.apps.kws import detect
    from neuroplast.apps.kws.pipeline import featurize_stream

    cfg, r = run
    rt, classes, mel, delta = load_kws_runtime(r["bundle"]["path"], mode="int")
    audio = np.concatenate(list(D.load_gsc(cfg.data_dir)["test"].audio[:3]))  # 3 s, no resets
    spikes = featurize_stream(audio, mel, delta)
    scores = detect.stream_scores(rt, spikes, window=100, chunk=70)
    st = KeywordStreamer(rt, mel, delta, window=100)
    hop = mel.hop_length
    for k in range(len(audio) // hop):
        m = st.push(audio[k * hop : (k + 1) * hop])
        np.testing.assert_allclose(scores[k], m / 100, rtol=1e-9, atol=1e-12)
    # the detection default (a shorter smoothing window): a 30-step streamer
    short = detect.stream_scores(rt, spikes, chunk=70)
    st = KeywordStreamer(rt, mel, delta, window=detect.DETECT_WINDOW)
    for k in range(len(audio) // hop):
        m = st.push(audio[k * hop : (k + 1) * hop])
        np.testing.assert_allclose(short[k], m / detect.DETECT_WINDOW, rtol=1e-9, atol=1e-12)


def _kws_app(typer, register):  # noqa: ANN001, ANN202
    """A root Typer app with the ``kws`` commands registered, as the neuroplast CLI has."""
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """neuroplast"""

    register(app)
    return app


def test_cli_eval_listen_enroll(run, tmp_path):
    typer = pytest.importorskip("typer")
    from typer.testing import CliRunner

    from neuroplast.apps.kws.cli import register

    cfg, r = run
    app = _kws_app(typer, register)
    runner = CliRunner()
    bundle = r["bundle"]["path"]
    res = runner.invoke(app, ["kws", "eval", "--bundle", bundle, "--data", cfg.data_dir])
    assert res.exit_code == 0, res.output
    assert f"{r['bundle']['runtime_int_test_acc']:.4f}" in res.output
    for spk in r["test_breakdown"]["per_voice"]:
        assert spk in res.output  # per-voice rows
    res = runner.invoke(app, ["kws", "eval", "--bundle", bundle, "--data", cfg.heldout_dir])
    assert res.exit_code == 0 and f"{r['heldout']['acc']:.4f}" in res.output, res.output
    det = ["kws", "detect", "--bundle", bundle, "--minutes", "0.5", "--out", str(tmp_path)]
    res = runner.invoke(app, [*det, "--data", cfg.data_dir])
    assert res.exit_code == 0 and "recall" in res.output, res.output
    assert (tmp_path / "detection_det.png").stat().st_size > 1000
    # an evaluation-only set has no validation stream to choose the threshold on
    res = runner.invoke(app, [*det, "--data", cfg.heldout_dir])
    assert res.exit_code != 0 and "validation and test splits" in str(res.exception)
    wav = tmp_path / "clip.wav"
    D.write_wav(wav, D.load_gsc(cfg.data_dir)["test"].audio[0])
    res = runner.invoke(app, ["kws", "listen", str(wav), "--bundle", bundle])
    assert res.exit_code == 0, res.output
    samples = tmp_path / "samples"
    samples.mkdir()
    for i, f in enumerate(sorted((Path(cfg.data_dir) / cfg.enroll_word).glob("*.wav"))[:3]):
        shutil.copy(f, samples / f"{i}.wav")
    state = tmp_path / "enroll.npz"
    res = runner.invoke(
        app,
        [
            "kws",
            "enroll",
            "--word",
            "marvin",
            "--samples",
            str(samples),
            "--bundle",
            bundle,
            "--guard",
            str(Path(cfg.out_dir) / "kws_guard.npz"),
            "--state",
            str(state),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "marvin" in res.output and "from the guard set" in res.output
    if state.exists():  # accepted: listen decides with the enrolled word too
        res = runner.invoke(
            app,
            ["kws", "listen", str(samples / "0.wav"), "--bundle", bundle, "--enroll", str(state)],
        )
        assert res.exit_code == 0 and "on-device learned" in res.output, res.output
    # an empty samples folder is a clear DataError, not a traceback deep in numpy
    empty = tmp_path / "empty"
    empty.mkdir()
    res = runner.invoke(
        app, ["kws", "enroll", "--word", "x", "--samples", str(empty), "--bundle", bundle]
    )
    assert res.exit_code != 0 and "has no recordings (.wav" in str(res.exception)


def test_deployment_carries_its_front_end(run, tmp_path):
    # the front end a model was trained on travels in its deployment file, so `kws export`
    # writes a bundle that codes audio as in training; files written before it was stored
    # there get the code of their time (by input width: delta alone, or shape ungated)
    typer = pytest.importorskip("typer")
    from typer.testing import CliRunner

    from neuroplast.apps.kws.cli import register
    from neuroplast.apps.kws.frontend import DeltaParams
    from neuroplast.apps.kws.pipeline import deployment_delta, legacy_delta
    from neuroplast.errors import DataError

    cfg, r = run
    dep_file = Path(cfg.out_dir) / "kws_deploy.npz"
    assert deployment_delta(dep_file) == cfg.delta
    with np.load(dep_file) as z:
        old = {k: z[k] for k in z.files if k != "delta"}
    np.savez(tmp_path / "old.npz", **old)
    assert deployment_delta(tmp_path / "old.npz") == DeltaParams(shape_contrast_db=0.0)
    assert legacy_delta({}) == DeltaParams(shape_db=(), shape_contrast_db=0.0)
    with pytest.raises(DataError, match="unknown fields \\['gain'\\]"):
        legacy_delta({"threshold_db": 3.0, "gain": 2.0})
    app = _kws_app(typer, register)
    res = CliRunner().invoke(
        app, ["kws", "export", "--deploy", str(tmp_path / "old.npz"), "--out", str(tmp_path)]
    )
    assert res.exit_code == 0, res.output
    assert load_kws_runtime(tmp_path / "kws.bundle")[3] == DeltaParams(shape_contrast_db=0.0)


def test_cli_adapt_to_a_voice_and_listen_with_it(run, tmp_path):
    typer = pytest.importorskip("typer")
    from typer.testing import CliRunner

    from neuroplast.apps.kws.adapt import load_adapt_state
    from neuroplast.apps.kws.cli import register

    cfg, r = run
    app = _kws_app(typer, register)
    runner = CliRunner()
    bundle = r["bundle"]["path"]
    classes = r["data"]["classes"]
    samples = tmp_path / "voice"
    words = [w for w in classes if (Path(cfg.heldout_dir) / w).is_dir()][:3]
    for w in words:  # the held-out engine's clips: a voice the model never heard
        (samples / w).mkdir(parents=True)
        for i, f in enumerate(sorted((Path(cfg.heldout_dir) / w).glob("*.wav"))[:2]):
            shutil.copy(f, samples / w / f"{i}.wav")
    state = tmp_path / "adapt.npz"
    cmd = ["kws", "adapt", "--samples", str(samples), "--bundle", bundle, "--state", str(state),
           "--guard", str(Path(cfg.out_dir) / "kws_guard.npz")]  # fmt: skip
    res = runner.invoke(app, cmd)
    assert res.exit_code == 0, res.output
    n = sum(len(list((samples / w).glob("*.wav"))) for w in words)
    assert "examples (all calls)" in res.output and str(n) in res.output
    # settings cross-validated on the examples when a word has two, else the fallback
    two = any(len(list((samples / w).glob("*.wav"))) > 1 for w in words)
    assert ("cross-validated" if two else "0.2 / 1") in res.output, res.output
    if "saved to" in res.output:  # else the guard rolled it back and nothing was written
        st = load_adapt_state(state)
        assert len(st.labels) == n and {classes[i] for i in st.labels} == set(words)
        res = runner.invoke(app, cmd)  # examples accumulate
        assert res.exit_code == 0 and str(2 * n) in res.output, res.output
        wav = next((samples / words[0]).glob("*.wav"))
        res = runner.invoke(
            app, ["kws", "listen", str(wav), "--bundle", bundle, "--adapt", str(state)]
        )
        assert res.exit_code == 0 and "on-device learned" in res.output, res.output
    else:
        assert "rolled back by the guard" in res.output and not state.exists()
    (samples / "notaword").mkdir()
    res = runner.invoke(app, cmd)
    assert res.exit_code != 0 and "notaword not keywords of this model" in str(res.exception)
    res = runner.invoke(app, [*cmd, "--share", "1.5"])
    assert res.exit_code != 0 and "share must be in (0, 1)" in str(res.exception)
    res = runner.invoke(app, [*cmd, "--ridge", "0"])
    assert res.exit_code != 0 and "ridge must be > 0" in str(res.exception)
    # no samples: a new state with the guard-only refit; an existing state is not lost
    fresh = tmp_path / "guard_readout.npz"
    base = ["kws", "adapt", "--bundle", bundle, "--guard", str(Path(cfg.out_dir) / "kws_guard.npz")]
    res = runner.invoke(app, [*base, "--state", str(fresh)])
    assert res.exit_code == 0 and "no examples" in res.output, res.output
    assert len(load_adapt_state(fresh).labels) == 0
    res = runner.invoke(app, [*base, "--state", str(fresh)])
    assert res.exit_code != 0 and "remove it to start over" in str(res.exception)


def test_adaptation_stage_protocol(run):
    from neuroplast.apps.kws.pipeline import adaptation_stage, load_features

    cfg, r = run
    # the fixture's pipeline skips it in one line: too few clips per voice for 5 examples
    assert "more than 5 clips of any word" in r["adaptation"]["skipped"]
    F = load_features(cfg.data_dir, cfg.mel, cfg.delta, cfg.enroll_word, cfg.seed)
    # the fixture's validation and held-out voices have one clip per word: the plumbing
    # is tested on its training voices in both roles
    F = {**F, "val": F["train"], "speakers": {**F["speakers"], "val": F["speakers"]["train"]}}
    H = {"test": F["train"], "speakers": {"test": F["speakers"]["train"]}}
    a = adaptation_stage(r["bundle"]["path"], F, H, Path(cfg.out_dir) / "kws_guard.npz", n=1,
                         draws=2, curve=(1,), sensitivity=True, guard_sizes=(1,))  # fmt: skip
    assert "skipped" not in a, a
    # the in-domain "before" is the bundle's own int-runtime test accuracy
    assert a["test_before"] == pytest.approx(r["bundle"]["runtime_int_test_acc"])
    best = max(a["fixed"]["validation_grid"], key=lambda g: g["after"])
    assert (a["fixed"]["share"], a["fixed"]["ridge"]) == (best["share"], best["ridge"])
    # n=1: one example per word, nothing to cross-validate: every adaptation used the
    # library's fallback setting
    assert a["picks"] == {"0.2/1.0": a["n_adaptations"]}
    z = a["zero_shot"]  # the bundle's readout vs the guard-only refit, whole splits
    assert z["test_bundle"] == pytest.approx(a["test_before"])
    assert all(
        0 <= z[f"{k}_{r}"] <= 1 for k in ("heldout", "test", "val") for r in ("bundle", "refit")
    )
    v0 = next(iter(a["voices"].values()))
    assert all(0 <= d["refit"] <= 1 for d in v0["draws"])
    assert set(a["voices"]) <= set(F["speakers"]["train"]) - {"background"} and a["voices"]
    assert a["n_adaptations"] == 2 * len(a["voices"]) >= a["accepted"]
    for v in a["voices"].values():
        assert len(v["draws"]) == 2 and all(0 <= d["after"] <= 1 for d in v["draws"])
    assert a["examples_curve"][1]["after"] == pytest.approx(a["heldout_after"])
    assert len(a["heldout_sensitivity"]) == len(a["fixed"]["validation_grid"]) == 15
    g = np.load(Path(cfg.out_dir) / "kws_guard.npz")  # one clip per class: one row each
    assert a["guard_sizes"][1]["rows"] == len(np.unique(g["labels"]))
    assert g["emb"].dtype == g["scores"].dtype == np.float32  # the device's copy: 4 bytes


def test_device_labels_start_from_the_bundle(run):
    # with nothing learned, and with an adapted readout at its start, the device's labels
    # are the bundle's own argmax (runtime_scores: another code path)
    from neuroplast.apps.kws.adapt import adapt_init
    from neuroplast.apps.kws.infer import runtime_scores
    from neuroplast.apps.kws.pipeline import (
        adapt_embed_params,
        adaptation_embeddings,
        device_labels,
        load_features,
    )

    cfg, r = run
    rt, classes, mel, delta = load_kws_runtime(r["bundle"]["path"], mode="int", hidden=True)
    X = load_features(cfg.data_dir, cfg.mel, cfg.delta, cfg.enroll_word, cfg.seed)["test"][0]
    ref = runtime_scores(load_kws_runtime(r["bundle"]["path"], mode="int")[0], X)[0].argmax(1)
    np.testing.assert_array_equal(device_labels(rt, X), ref)
    e = adaptation_embeddings(rt, X[:2], adapt_embed_params(mel))["emb"]
    st = adapt_init(e.shape[1], len(classes))
    np.testing.assert_array_equal(device_labels(rt, X, adapted=st), ref)


def test_demo_table_shows_the_on_device_stages(run):
    from rich.console import Console

    from neuroplast.apps.kws.demo import results_table

    cfg, r = run
    con = Console(width=200, record=True)
    con.print(results_table(r))
    text = con.export_text()
    assert "adapt to a held-out voice" in text and "skipped" in text  # too few clips here
    a = {"examples_per_word": 2, "heldout_before": 0.5, "heldout_after": 0.625, "voices": {"v": {}},
         "test_before": 0.8, "test_after": 0.79, "accepted": 3, "n_adaptations": 3}  # fmt: skip
    con = Console(width=200, record=True)
    con.print(results_table({**r, "adaptation": a}))
    text = con.export_text()
    assert "50.0 % -> 62.5 %" in text and "in-domain 80.0 % -> 79.0 %; 3/3 accepted" in text
