"""``neuroplast kws ...``: data | train | eval | export | detect | listen | enroll | demo.

Thin wrappers over the public functions of :mod:`neuroplast.apps.kws`; long work
shows progress, results are rich tables.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from neuroplast.paths import output_dir

__all__ = ["register"]

OUT = output_dir("kws")  # results: --out, else $NEUROPLAST_OUT/kws or ./neuroplast-out/kws


def _console() -> Any:
    from rich.console import Console

    return Console()


def _table(title: str, rows: list[tuple[str, str]]) -> Any:
    from rich.table import Table

    t = Table(title=title)
    t.add_column("item")
    t.add_column("value", justify="right")
    for k, v in rows:
        t.add_row(k, v)
    return t


def register(app: Any) -> None:
    """Add the ``kws`` command group to the ``neuroplast`` typer app."""
    import typer

    kws = typer.Typer(
        help="Audio keyword spotting with a delay-learning SNN.", no_args_is_help=True
    )
    app.add_typer(kws, name="kws")

    @kws.command("data")
    def data_cmd(
        out: Path = typer.Option(None, help="folder to write (GSC layout) [user cache]"),
        clips_per_word: int = typer.Option(8, help="clips per voice and word"),
        heldout: bool = typer.Option(
            False, help="an evaluation-only set of the held-out engine's voices (all in test)"
        ),
        voices: str = typer.Option(
            "",
            help="comma-separated engine:voice list (default: flite awb/rms for training, "
            "every festival voice with --heldout)",
        ),
        seed: int = typer.Option(0),
        force: bool = typer.Option(False, help="regenerate even if cached"),
    ) -> None:
        """Generate a synthetic keyword set with voice-disjoint splits.

        Several TTS engines under random real-world conditions.

        \b
        Examples:
            neuroplast kws data
            neuroplast kws data --heldout
            neuroplast kws data --clips-per-word 4 --out kws_data/
        """
        from neuroplast.apps.kws import data as D

        vs = tuple(v.strip() for v in voices.split(",") if v.strip())
        if heldout:
            cfg = D.heldout_config(clips_per_word, seed, vs or D.HELDOUT_VOICES)
        else:
            cfg = D.SynthConfig(
                clips_per_word=clips_per_word, seed=seed, voices=vs or D.TRAIN_VOICES
            )
        out = out or D.cache_dir("heldout" if heldout else "synth")
        D.generate_synthetic(out, cfg, progress=True, force=force)
        s = D.load_gsc(out)
        rows = [(k, f"{len(v)} clips, {len(set(v.speakers))} speakers") for k, v in s.items()]
        rows += [(f"{k} voices", ", ".join(v)[:200]) for k, v in cfg.split_voices().items() if v]
        _console().print(_table(f"KWS data in {out}", rows))

    @kws.command("train")
    def train_cmd(
        data: Path = typer.Option(None, help="GSC-layout folder [the `kws data` cache]"),
        out: Path = typer.Option(OUT, help="output folder"),
        epochs: int = typer.Option(12),
        bits: int = typer.Option(8, help="weight bits: 8 or 4"),
        zero_delays: bool = typer.Option(False, help="baseline: every delay fixed at 0"),
        max_delay: int = typer.Option(15, help="largest delay in steps (10 ms)"),
        threads: int = typer.Option(1),
        device: str = typer.Option("cpu", help="torch device for training: cpu or cuda"),
    ) -> None:
        """QAT-train the delay SNN; the epoch is chosen on the validation split.

        \b
        Examples:
            neuroplast kws train --epochs 12
            neuroplast kws train --bits 4 --out kws4/
        """

        from dataclasses import replace

        from neuroplast.apps.kws.data import cache_dir
        from neuroplast.apps.kws.lower import from_model
        from neuroplast.apps.kws.model import KwsNetConfig
        from neuroplast.apps.kws.pipeline import PipelineConfig, load_features, save_deployment
        from neuroplast.apps.kws.train import TrainConfig, evaluate, set_threads, train
        from neuroplast.progress import Progress

        pc = PipelineConfig()
        tc = TrainConfig(epochs=epochs, threads=threads, bands=pc.mel.n_mels, device=device)
        net = KwsNetConfig(  # settings checked before the features load; n_in / classes below
            max_delay=0 if zero_delays else max_delay,
            learn_delays=not zero_delays,
            weight_bits=bits,
        )
        set_threads(threads)
        F = load_features(data or cache_dir("synth"), pc.mel, pc.delta)
        net = replace(net, n_in=F["train"][0].shape[2], n_classes=len(F["classes"]))
        done = []
        with Progress("training (epochs)", total=epochs, every_s=0) as bar:
            res = train(
                *F["train"],
                *F["val"],
                net,
                tc,
                progress=lambda r: (
                    done.append(r),
                    bar.update(len(done), f"val {r['val_acc']:.3f}"),
                ),
            )
        out.mkdir(parents=True, exist_ok=True)
        save_deployment(out / "kws_deploy.npz", from_model(res.model), pc.delta)
        (out / "train_history.json").write_text(json.dumps(res.history, indent=1))
        test = evaluate(res.model, *F["test"])
        _console().print(
            _table(
                "KWS training",
                [
                    ("best epoch (validation)", str(res.best_epoch + 1)),
                    ("val accuracy", f"{res.best_val_acc:.4f}"),
                    ("test accuracy (QAT)", f"{test:.4f}"),
                    ("deployment", str(out / "kws_deploy.npz")),
                ],
            )
        )

    @kws.command("export")
    def export_cmd(
        deploy: Path = typer.Option(OUT / "kws_deploy.npz"),
        out: Path = typer.Option(OUT),
        mode: str = typer.Option("int", help="preferred runtime mode: int or float"),
    ) -> None:
        """Write the bundle (integer delays in ring buffers) and, if available, NIR.

        \b
        Examples:
            neuroplast kws export
        """
        from neuroplast.apps.kws.data import CLASSES
        from neuroplast.apps.kws.frontend import MelParams
        from neuroplast.apps.kws.pipeline import (
            deployment_delta,
            export_nir,
            load_deployment,
            save_kws_bundle,
        )

        dep = load_deployment(deploy)
        mel = MelParams()
        delta = deployment_delta(deploy, mel.n_mels)
        b = save_kws_bundle(out / "kws.bundle", dep, CLASSES, mel, delta, mode=mode)
        nir_res = export_nir(dep, out)
        _console().print(_table("KWS export", [("bundle", str(b)), ("nir", json.dumps(nir_res))]))

    @kws.command("eval")
    def eval_cmd(
        bundle: Path = typer.Option(OUT / "kws.bundle"),
        data: Path = typer.Option(None, help="GSC-layout folder [the `kws data` cache]"),
        split: str = typer.Option("test", help="train, val or test"),
        mode: str = typer.Option("int"),
        plot: Path = typer.Option(None, help="write a confusion-matrix PNG here"),
        minimum: float = typer.Option(
            None, "--min", help="exit 1 if the accuracy is below this (0..1)"
        ),
    ) -> None:
        """Accuracy of a bundle in the neuroplast runtime.

        Overall, per voice (speaker), per recording condition and per class.

        \b
        Examples:
            neuroplast kws eval --plot confusion.png
            neuroplast kws eval --split val --mode float --min 0.8
        """
        from neuroplast.apps.kws.data import cache_dir
        from neuroplast.apps.kws.infer import runtime_scores
        from neuroplast.apps.kws.pipeline import breakdown, load_features, load_kws_runtime
        from neuroplast.errors import DataError

        if split not in ("train", "val", "test"):
            raise DataError(f"--split must be train, val or test, got {split!r}")
        data = data or cache_dir("synth")
        rt, classes, mel, delta = load_kws_runtime(bundle, mode=mode)
        F = load_features(data, mel, delta)
        if not len(F[split][1]):
            raise DataError(f"{data} has no {split} clips (a held-out set keeps all in test)")
        b = breakdown(rt, F, split, data)
        rows = [(f"{split} accuracy", f"{b['acc']:.4f}"), ("clips", str(b["n"]))]
        for title, key in (
            ("voice", "per_voice"),
            ("condition", "per_condition"),
            ("class", "per_class"),
        ):
            rows.append((f"per {title}", ""))
            rows += [(f"  {k}", f"{v['acc']:.3f} ({v['n']})") for k, v in b[key].items()]
        if plot:
            from neuroplast.apps.kws.plots import confusion, plot_confusion

            X, y = F[split]
            pred = runtime_scores(rt, X)[0].argmax(1)
            plot_confusion(
                confusion(y, pred, len(classes)), list(classes), plot,
                title=f"KWS confusion ({split}, {Path(data).name}, {mode} runtime)",
            )  # fmt: skip
            rows.append(("plot", str(plot)))
        _console().print(_table(f"KWS eval ({mode}, {data})", rows))
        if minimum is not None and b["acc"] < minimum:
            from neuroplast.cli import check_failed

            check_failed(f"{split} accuracy {b['acc']:.4f} is below --min {minimum:g}")

    @kws.command("detect")
    def detect_cmd(
        bundle: Path = typer.Option(OUT / "kws.bundle"),
        data: Path = typer.Option(None, help="GSC-layout set with val/test splits [cache]"),
        heldout_data: Path = typer.Option(
            None,
            help="also lay this evaluation-only set's clips in (e.g. a `kws data --heldout` folder)",
        ),
        minutes: float = typer.Option(10.0, help="test stream length (validation: half)"),
        max_fa_per_hour: float = typer.Option(2.0, help="operating point, chosen on validation"),
        out: Path = typer.Option(OUT, help="folder for the DET curve PNG"),
        seed: int = typer.Option(0),
    ) -> None:
        """Streaming detection: recall and false alarms per hour on a long stream.

        Keywords, other speech and background sound, at a threshold chosen on a
        validation stream; writes the DET curve.

        \b
        Examples:
            neuroplast kws detect --minutes 10
            neuroplast kws detect --max-fa-per-hour 1 --out det/
        """
        from neuroplast.apps.kws.data import cache_dir
        from neuroplast.apps.kws.pipeline import PipelineConfig, detection_benchmark

        out.mkdir(parents=True, exist_ok=True)
        cfg = PipelineConfig(stream_minutes=minutes, max_fa_per_hour=max_fa_per_hour, seed=seed)
        H = {"dir": heldout_data} if heldout_data else None
        d = detection_benchmark(bundle, Path(data or cache_dir("synth")), H, cfg, out)
        rows = [("operating threshold (validation)", f"{d['theta']:.6f}")]
        for name in ("val", "test"):
            r = d[name]
            rows.append(
                (
                    f"{name} stream ({r['minutes']:g} min, {r['keywords']} keywords)",
                    f"recall {r['recall']:.3f} at {r['fa_per_hour']:.1f} FA/h",
                )
            )
        rows += [(f"  recall, {k}", f"{v:.3f}") for k, v in d["test"]["recall_by_engine"].items()]
        rows.append(("DET curve", d["plot"]))
        _console().print(_table("KWS streaming detection", rows))

    @kws.command("listen")
    def listen_cmd(
        wavs: list[Path] = typer.Argument(None, help="16 kHz mono WAV files (else the microphone)"),
        bundle: Path = typer.Option(OUT / "kws.bundle"),
        mode: str = typer.Option("int"),
        seconds: float = typer.Option(5.0, help="microphone capture length"),
        adapt: Path = typer.Option(None, help="an adapted readout (`kws adapt`) to decide with"),
        enroll: Path = typer.Option(None, help="enrolled words (`kws enroll`) to decide with"),
    ) -> None:
        """Stream audio through the spotter, 10 ms per step, and print the decisions.

        \b
        Examples:
            neuroplast kws listen yes.wav no.wav
            neuroplast kws listen --seconds 3
            neuroplast kws listen --enroll neuroplast-out/kws/kws_enroll.npz marvin.wav
        """
        import numpy as np

        from neuroplast.apps.kws.data import load_audio
        from neuroplast.apps.kws.infer import KeywordStreamer
        from neuroplast.apps.kws.pipeline import load_kws_runtime
        from neuroplast.errors import DataError

        rt, classes, mel, delta = load_kws_runtime(bundle, mode=mode)
        st = KeywordStreamer(rt, mel, delta)
        clips: list[tuple[str, Any]] = []
        if wavs:
            clips = [(str(w), load_audio(w, mel.sample_rate)) for w in wavs]
        else:
            try:
                import sounddevice as sd
            except ImportError as e:
                raise DataError("no WAV files given and sounddevice is not installed") from e
            rec = sd.rec(
                int(seconds * mel.sample_rate),
                samplerate=mel.sample_rate,
                channels=1,
                dtype="int16",
            )
            sd.wait()
            clips.append(("microphone", rec[:, 0]))
        from rich.table import Table

        t = Table(title="KWS listen")
        for col in ("source", "keyword", "score", "ms / 10 ms hop"):
            t.add_column(col)
        learned = adapt is not None or enroll is not None
        if learned:
            from neuroplast.apps.kws.adapt import load_adapt_state
            from neuroplast.apps.kws.data import pad_clip
            from neuroplast.apps.kws.enroll import load_enroll_state
            from neuroplast.apps.kws.pipeline import device_labels, featurize

            ad = load_adapt_state(adapt) if adapt is not None else None
            en = load_enroll_state(enroll) if enroll is not None else None
            names = list(classes) + (en.words if en is not None else [])
            rt_h = load_kws_runtime(bundle, mode="int", hidden=True)[0]
            t.add_column("on-device learned (first 1 s)")
        for name, x in clips:
            st.reset()
            r = st.stream(x)
            row = [
                name,
                classes[r.label],
                f"{r.scores[r.label] / r.scores.sum():.2f}",
                f"{1e3 * float(np.mean(r.latencies)):.3f}",
            ]
            if learned:
                X = featurize(pad_clip(np.asarray(x, np.int16))[None], mel, delta)
                row.append(names[int(device_labels(rt_h, X, en, ad)[0])])
            t.add_row(*row)
        _console().print(t)

    @kws.command("enroll")
    def enroll_cmd(
        word: str = typer.Option(..., help="the new keyword"),
        samples: Path = typer.Option(
            ..., help="folder of recordings of the word (WAV, FLAC, OGG; any rate; 5 are enough)"
        ),
        bundle: Path = typer.Option(OUT / "kws.bundle"),
        guard: Path = typer.Option(OUT / "kws_guard.npz", help="old-word guard set"),
        state: Path = typer.Option(OUT / "kws_enroll.npz", help="enrolled words"),
    ) -> None:
        """Learn a new word on the device from a few recordings.

        Augmented examples, a delta-rule readout row, a gate on the old 'unknown' class and
        a guard against forgetting.

        \b
        Examples:
            neuroplast kws enroll --word marvin --samples marvin_wavs/
        """
        from dataclasses import replace

        from neuroplast.apps.kws.data import load_word_folder
        from neuroplast.apps.kws.enroll import (
            EnrollParams,
            enroll_init,
            enroll_word,
            load_enroll_state,
            open_class_of,
            save_enroll_state,
        )
        from neuroplast.apps.kws.pipeline import (
            example_embeddings,
            featurize,
            load_guard,
            load_kws_runtime,
            with_bands,
        )

        rt, classes, mel, delta = load_kws_runtime(bundle, mode="int", hidden=True)
        X = featurize(load_word_folder(samples), mel, delta)
        g = load_guard(guard)
        # the soft-gate budget calibrated on validation voices when the guard was made
        budget = g["open_budget"]
        p = EnrollParams() if budget is None else replace(EnrollParams(), open_budget=budget)
        p = with_bands(p, mel)
        ex, aug = example_embeddings(rt, X, p)
        st = (
            load_enroll_state(state)
            if state.exists()
            else enroll_init(ex.shape[1], len(classes), open_class_of(classes))
        )
        new, rep = enroll_word(
            st, word, ex, g["emb"], g["scores"], g["labels"], p, augmented=aug,
            guard_groups=g["group"],
        )  # fmt: skip
        if rep.accepted:
            save_enroll_state(state, new)
        _console().print(
            _table(
                f"enroll '{word}'",
                [
                    ("examples", str(rep.n_examples)),
                    (
                        "soft-gate budget",
                        f"{p.open_budget} ({'default' if budget is None else 'from the guard set'})",
                    ),
                    ("threshold (readout)", f"{rep.threshold:.3f}"),
                    ("leave-one-out recall", f"{rep.loo_recall:.2f}"),
                    ("held-out guard false accepts", f"{rep.guard_false_accept_cv:.3f}"),
                    (
                        "guard accuracy before / after",
                        f"{rep.guard_acc_before:.3f} / {rep.guard_acc_after:.3f}",
                    ),
                    (
                        "result",
                        "saved to " + str(state) if rep.accepted else "rolled back by the guard",
                    ),
                ],
            )
        )

    @kws.command("adapt")
    def adapt_cmd(
        samples: Path = typer.Option(
            None,
            help="folder with one subfolder of recordings per keyword (yes/, no/, ...); "
            "without it: a new state with the readout refitted on the guard alone",
        ),
        bundle: Path = typer.Option(OUT / "kws.bundle"),
        guard: Path = typer.Option(OUT / "kws_guard.npz", help="old-word guard set"),
        state: Path = typer.Option(OUT / "kws_adapt.npz", help="adapted readout (accumulates)"),
        share: float = typer.Option(
            None,
            help="weight share of your examples, 0..1 (larger: more of your voice) "
            "[chosen by cross-validation on your examples]",
        ),
        ridge: float = typer.Option(None, help="ridge (larger: smoother) [chosen likewise]"),
    ) -> None:
        """Adapt the keywords to a voice from a few recordings of each (5 per word).

        The readout of the existing words is refitted on the guard set plus these
        examples (and any saved earlier), through the plasticity engine, with the
        settings that predict your held-out examples best (cross-validation); the
        guard rolls it back if the old voices would lose more than 3 points.

        Without --samples it writes the device's readout before any example: the
        least-squares readout of the guard set alone (it hears unseen voices a little
        better than the trained one; `kws listen --adapt` uses it).

        \b
        Examples:
            neuroplast kws adapt --samples my_voice/
            neuroplast kws adapt --samples my_voice/ --share 0.5 --ridge 10
            neuroplast kws adapt --state guard_readout.npz
        """
        from neuroplast.apps.kws.adapt import AdaptParams
        from neuroplast.apps.kws.pipeline import adapt_to_voice

        p = AdaptParams(share=share, ridge=ridge)
        rep, classes = adapt_to_voice(bundle, samples, guard, state, p)
        if samples is None:
            _console().print(
                _table(
                    "readout refitted on the guard set (no examples)",
                    [
                        ("ridge", f"{rep.ridge:g}"),
                        ("guard accuracy", f"{rep.guard_acc_after:.3f}"),
                        ("result", "saved to " + str(state)),
                    ],
                )
            )
            return
        _console().print(
            _table(
                "adapt to a voice",
                [
                    ("examples (all calls)", str(rep.n_examples)),
                    (
                        "per keyword",
                        ", ".join(f"{classes[k]}: {n}" for k, n in rep.per_class.items()),
                    ),
                    (
                        "settings (share / ridge)",
                        f"{rep.share:g} / {rep.ridge:g}"
                        + (
                            f", cross-validated on your examples: {rep.cv_accuracy:.3f}"
                            if rep.cv_accuracy is not None
                            else ""
                        ),
                    ),
                    (
                        "guard accuracy before / after",
                        f"{rep.guard_acc_before:.3f} / {rep.guard_acc_after:.3f}",
                    ),
                    (
                        "result",
                        "saved to " + str(state) if rep.accepted else "rolled back by the guard",
                    ),
                ],
            )
        )

    @kws.command("demo")
    def demo_cmd(
        out: Path = typer.Option(OUT),
        data: Path = typer.Option(None, help="data folder [user cache]"),
    ) -> None:
        """The whole pipeline on small defaults (data, QAT, export, runtime, enrollment).

        \b
        Examples:
            neuroplast kws demo
        """
        from neuroplast.apps.kws.demo import main as demo_main

        demo_main(["--out", str(out)] + (["--data", str(data)] if data else []))
