"""Data: GSC folder loader, SHD HDF5 loader, synthetic espeak-ng generator."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from neuroplast.apps.kws import data as D
from neuroplast.errors import DataError


def _gsc_folder(root, words=("yes", "no", "cat", "dog", "marvin"), per=3):
    """A hand-made GSC v0.02 layout: 3 speakers per word, distinct DC levels as content."""
    lists = {"val": [], "test": []}
    for w in words:
        (root / w).mkdir(parents=True)
        for s in range(per):
            rel = f"{w}/spk{s}_nohash_0.wav"
            # clips shorter than 1 s get zero padded by the loader
            D.write_wav(root / rel, np.full(8000, 100 * (s + 1), np.int16))
            if s == 1:
                lists["val"].append(rel)
            elif s == 2:
                lists["test"].append(rel)
    (root / "_background_noise_").mkdir()
    D.write_wav(root / "_background_noise_" / "white.wav", np.full(50000, 7, np.int16))
    (root / "validation_list.txt").write_text("\n".join(lists["val"]) + "\n")
    (root / "testing_list.txt").write_text("\n".join(lists["test"]) + "\n")
    return lists


def test_load_gsc_follows_the_official_lists(tmp_path):
    lists = _gsc_folder(tmp_path)
    s = D.load_gsc(tmp_path, keywords=("yes", "no"), exclude=("marvin",), unknown_ratio=2.0)
    assert s["train"].classes == ("yes", "no", "unknown", "silence")
    for split, spk in (("train", "spk0"), ("val", "spk1"), ("test", "spk2")):
        sp = s[split]
        words = sp.labels[sp.labels < 3]
        # 1 clip each of yes, no; 2 unknown (cat, dog; marvin excluded); silence crops
        assert sorted(words.tolist()) == [0, 1, 2, 2]
        assert all(x == spk for x, lab in zip(sp.speakers, sp.labels) if lab < 3)
        # content: DC level of the speaker, zero padded after 0.5 s
        level = 100 * (int(spk[-1]) + 1)
        word_audio = sp.audio[sp.labels < 3]
        assert np.all(word_audio[:, :8000] == level) and np.all(word_audio[:, 8000:] == 0)
        sil = sp.audio[sp.labels == 3]
        assert len(sil) == 1 and sp.audio.shape[1] == 16000
        assert np.all(np.abs(sil) <= 7)
    assert "no/spk1_nohash_0.wav" in lists["val"]


def test_load_gsc_errors(tmp_path):
    with pytest.raises(DataError, match="not a directory"):
        D.load_gsc(tmp_path / "nope")
    _gsc_folder(tmp_path)
    with pytest.raises(DataError, match="keyword"):
        D.load_gsc(tmp_path, keywords=("yes", "left"))
    (tmp_path / "testing_list.txt").unlink()
    with pytest.raises(DataError, match="testing_list.txt"):
        D.load_gsc(tmp_path, keywords=("yes",))


def test_read_wav_rejects_garbage(tmp_path):
    p = tmp_path / "bad.wav"
    p.write_bytes(b"RIFF....not a wave file")
    with pytest.raises(DataError, match="bad.wav"):
        D.read_wav(p)


def _tone(rate: int, seconds: float = 0.5, f: float = 1000.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return 0.5 * np.sin(2 * np.pi * f * t)


@pytest.mark.parametrize(
    "rate,subtype,channels",
    [
        (44_100, "FLOAT", 2),
        (48_000, "PCM_24", 1),
        (8_000, "PCM_U8", 1),
        (22_050, "PCM_32", 3),
        (16_000, "DOUBLE", 1),
    ],  # fmt: skip
)
def test_load_audio_reads_what_a_microphone_writes(tmp_path, rate, subtype, channels):
    """A 1 kHz tone recorded at another rate, sample format and channel count arrives at
    16 kHz as the analytic 16 kHz tone (polyphase resampling; 8-bit: its quantisation)."""
    sf = pytest.importorskip("soundfile")
    pytest.importorskip("scipy")
    p = tmp_path / "rec.wav"
    sf.write(p, np.repeat(_tone(rate)[:, None], channels, 1), rate, subtype=subtype)
    x = D.load_audio(p, 16_000)
    ref = _tone(16_000) * 32767
    assert x.dtype == np.int16 and abs(len(x) - len(ref)) <= 1
    mid = slice(400, len(ref) - 400)  # the filter's edges aside
    tol = 300 if subtype == "PCM_U8" else 40  # 8-bit steps are 256 int16 LSB
    assert np.abs(x[mid].astype(float) - ref[mid]).max() < tol


def test_load_audio_16_bit_at_the_model_rate_is_the_file(tmp_path):
    x = (np.random.default_rng(0).standard_normal(4000) * 3000).astype(np.int16)
    D.write_wav(tmp_path / "a.wav", x)
    assert np.array_equal(D.load_audio(tmp_path / "a.wav"), x)
    D.write_wav(tmp_path / "slow.wav", x, rate=1000)
    with pytest.raises(DataError, match="1000 Hz is outside"):
        D.load_audio(tmp_path / "slow.wav")
    with pytest.raises(DataError, match="cannot read WAV file"):
        D.load_audio(tmp_path / "missing.wav")


def test_shd_loader_bins_events(tmp_path):
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "shd.h5"
    times = [np.array([0.001, 0.0105, 0.0199, 0.5], np.float32), np.array([0.035], np.float32)]
    units = [np.array([0, 5, 9, 3], np.uint16), np.array([699], np.uint16)]
    with h5py.File(path, "w") as f:
        vt = h5py.vlen_dtype(np.float32)
        vu = h5py.vlen_dtype(np.uint16)
        g = f.create_group("spikes")
        dt_ = g.create_dataset("times", (2,), dtype=vt)
        du = g.create_dataset("units", (2,), dtype=vu)
        for i in range(2):
            dt_[i], du[i] = times[i], units[i]
        f.create_dataset("labels", data=np.array([3, 7], np.uint8))
    X, y = D.load_shd(path, dt=0.01, n_steps=10, group=5)
    assert X.shape == (2, 10, 140) and y.tolist() == [3, 7]
    # clip 0: unit 0 at step 0 (channel 0); units 5 and 9 at step 1 (channel 1, count
    # clipped to 1); the 0.5 s spike is past the 10-step window
    assert X[0].sum() == 2 and X[0, 0, 0] == 1 and X[0, 1, 1] == 1
    assert X[1, 3, 139] == 1 and X[1].sum() == 1
    bad = tmp_path / "bad.h5"
    with h5py.File(bad, "w") as f:
        f.create_dataset("labels", data=np.zeros(2))
    with pytest.raises(DataError, match="SHD"):
        D.load_shd(bad)


def test_bin_events_rejects_bad_units():
    with pytest.raises(DataError, match="unit"):
        D.bin_events(np.array([0.0]), np.array([800]), 700, 0.01, 10)


needs_tts = pytest.mark.skipif(
    shutil.which("espeak-ng") is None
    or shutil.which("sox") is None
    or shutil.which("flite") is None,
    reason="espeak-ng/flite/sox not installed",
)
TINY = dict(
    clips_per_word=1,
    n_train=2,
    n_val=1,
    n_test=1,
    noise_seconds=3,
    keywords=("yes", "no"),
    unknown_words=("cat",),
    enroll_words=("marvin",),
    voices=("flite:awb",),
    voice_reps=1,
)


@needs_tts
def test_synthetic_set_is_voice_disjoint_and_cached(tmp_path):
    cfg = D.SynthConfig(**TINY)
    root = D.generate_synthetic(tmp_path / "s", cfg, progress=False, workers=1)
    splits = cfg.split_voices()
    assert "flite:awb" in splits["train"]
    assert not set(splits["train"]) & (set(splits["val"]) | set(splits["test"]))
    val = (root / "validation_list.txt").read_text().split()
    test = (root / "testing_list.txt").read_text().split()
    all_files = {f"{p.parent.name}/{p.name}" for p in root.glob("*/*_nohash_*.wav")}
    assert len(all_files) == 5 * 4  # 4 espeak variants + flite awb, x (yes, no, cat, marvin)
    spk = lambda rel: rel.split("/")[1].split("_nohash_")[0]  # noqa: E731
    train_spk = {spk(r) for r in all_files - set(val) - set(test)}
    assert "flite-awb" in train_spk and not train_spk & {spk(r) for r in val + test}
    x, rate = D.read_wav(root / "yes" / sorted(p.name for p in (root / "yes").iterdir())[0])
    assert rate == 16000 and len(x) == 16000 and np.abs(x).max() > 1000  # audible speech
    man = json.loads((root / "synth_manifest.json").read_text())
    assert set(man["clips"]) == all_files and all(c["tags"] for c in man["clips"].values())
    # cached: a second call does not rewrite anything
    mtime = (root / "validation_list.txt").stat().st_mtime_ns
    D.generate_synthetic(root, cfg, progress=False)
    assert (root / "validation_list.txt").stat().st_mtime_ns == mtime
    s = D.load_gsc(root, keywords=("yes", "no"))
    assert set(s["test"].labels.tolist()) == {0, 1, 2, 3}
    assert len(s["train"].files) == len(s["train"]) and "flite-awb" in s["train"].speakers


@needs_tts
def test_generation_is_the_same_for_any_number_of_workers(tmp_path):
    cfg = D.SynthConfig(**{**TINY, "espeak": False, "voice_reps": 2})
    a = D.generate_synthetic(tmp_path / "a", cfg, progress=False, workers=1)
    b = D.generate_synthetic(tmp_path / "b", cfg, progress=False, workers=2)
    fa = sorted(p.relative_to(a) for p in a.rglob("*.wav"))
    assert fa == sorted(p.relative_to(b) for p in b.rglob("*.wav")) and len(fa) == 8 + 5
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in fa)


def test_adding_a_voice_leaves_every_other_voices_clips_as_they_were():
    base = D.SynthConfig(**{**TINY, "voices": ("flite:awb",), "voice_reps": 2})
    more = D.SynthConfig(**{**TINY, "voices": ("pico:en-US", "flite:awb"), "voice_reps": 2})
    a, b = D._plan(base), D._plan(more)
    assert [j for j in b if j.voice != "pico:en-US"] == a  # test / val draws unchanged
    assert len(b) - len(a) == sum(j.voice == "pico:en-US" for j in b) > 0
    reseeded = D._plan(D.SynthConfig(**{**TINY, "voices": ("flite:awb",), "seed": 9}))
    assert [j.prosody for j in reseeded] != [j.prosody for j in a]


def test_heldout_config_puts_every_voice_in_test():
    h = D.heldout_config(2, voices=("flite:slt", "flite:kal"))
    assert h.split_voices() == {"train": [], "val": [], "test": ["flite:slt", "flite:kal"]}
    assert D.heldout_config().split_voices()["test"] == list(D.HELDOUT_VOICES)
    # no speaker of the held-out engine is trained on (see data.TRAIN_VOICES)
    assert not {v.split(":")[0] for v in D.TRAIN_VOICES} & {"festival"}
    # nor any of its speakers through another engine (flite's and RHVoice's slt, kal)
    assert not {v.split(":")[1] for v in D.TRAIN_VOICES} & {"slt", "kal", "kal16", "ked"}
    with pytest.raises(DataError, match="no voice"):
        D.SynthConfig(voices=("flite:nobody",)).split_voices()
    with pytest.raises(DataError, match="unknown TTS engine"):
        D.SynthConfig(voices=("sam:x",)).split_voices()


def test_feature_cache_is_keyed_by_the_data_not_by_itself(tmp_path):
    from neuroplast.apps.kws.frontend import DeltaParams, MelParams
    from neuroplast.apps.kws.pipeline import load_features

    _gsc_folder(tmp_path / "gsc", words=("yes", "no", "left", "right", "up", "down", "on",
                                          "off", "stop", "go", "cat", "marvin"))  # fmt: skip
    before = sorted(p.name for p in (tmp_path / "gsc").rglob("*"))
    cache = tmp_path / "cache"
    F1 = load_features(tmp_path / "gsc", MelParams(), DeltaParams(), cache=cache)
    F2 = load_features(tmp_path / "gsc", MelParams(), DeltaParams(), cache=cache)
    assert len(list(cache.glob("features_*.npz"))) == 1  # the second run hit the cache
    assert sorted(p.name for p in (tmp_path / "gsc").rglob("*")) == before  # data only read
    np.testing.assert_array_equal(F1["test"][0], F2["test"][0])
    assert F2["speakers"]["test"] == F1["speakers"]["test"] and F2["files"]["val"]
    # a changed clip is new data: new features
    D.write_wav(tmp_path / "gsc" / "yes" / "spk0_nohash_0.wav", np.zeros(16000, np.int16))
    load_features(tmp_path / "gsc", MelParams(), DeltaParams(), cache=cache)
    assert len(list(cache.glob("features_*.npz"))) == 2


def test_word_folder_takes_any_recording_and_refuses_silence(tmp_path):
    """Examples of a word (enroll / adapt samples) come in any format and rate; an empty,
    too short, silent, DC or NaN recording is refused naming the file (it would teach the
    model that silence is the word)."""
    sf = pytest.importorskip("soundfile")
    pytest.importorskip("scipy")
    rng = np.random.default_rng(3)
    good = tmp_path / "good"
    good.mkdir()
    sf.write(good / "a.flac", 0.3 * rng.standard_normal(8000), 8000)
    sf.write(good / "b.wav", 0.3 * rng.standard_normal(48000).astype(np.float32), 48000, "FLOAT")
    (good / "notes.txt").write_text("not audio")  # ignored
    a = D.load_word_folder(good)
    assert a.shape == (2, D.CLIP) and a.dtype == np.int16
    for name, x, msg in [
        ("empty", np.zeros(0), "0 ms of audio"),
        ("short", 0.3 * rng.standard_normal(800), "50 ms of audio"),
        ("silent", np.zeros(16000), "silent"),
        ("dc", np.full(16000, 0.5), "silent"),
        ("nan", np.full(16000, np.nan, np.float32), "silent"),
    ]:
        d = tmp_path / name
        d.mkdir()
        sf.write(d / "x.wav", x, 16000, "FLOAT" if x.dtype == np.float32 else "PCM_16")
        with pytest.raises(DataError, match=rf"{name}/x.wav: {msg}"):
            D.load_word_folder(d)
