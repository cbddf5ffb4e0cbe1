"""Keyword-spotting data: Google Speech Commands layout, SHD HDF5, and a synthetic set.

* :func:`load_gsc` reads the Google Speech Commands v0.02 folder layout
  (``<word>/<speaker>_nohash_<n>.wav``, ``validation_list.txt``, ``testing_list.txt``,
  ``_background_noise_/*.wav``) into the standard 12-class task: the 10 command
  words, "unknown" (every other word) and "silence" (1 s crops of background noise).
* :func:`load_shd` reads Spiking Heidelberg Digits style HDF5 files
  (``spikes/times``, ``spikes/units``, ``labels``) and bins them into dense rasters.
* :func:`generate_synthetic` writes a GSC-layout folder of keywords spoken by several
  text-to-speech engines (:mod:`~neuroplast.apps.kws.tts`: espeak-ng's accents and voice
  variants, flite, festival) under random real-world conditions
  (:mod:`~neuroplast.apps.kws.augment`: vocal-tract length, pitch, tempo, rooms, noise,
  telephone band, codecs, level). Splits are voice-disjoint: an espeak-ng variant used
  for testing never occurs in training, in any accent; :func:`heldout_config` makes an
  evaluation-only set of an engine never trained on. Generation is cached (a manifest
  of the config) and shows a progress bar.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import wave
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from neuroplast.apps.kws import augment as aug
from neuroplast.apps.kws import tts
from neuroplast.checks import require_int, require_real, require_seed
from neuroplast.errors import DataError

__all__ = [
    "KEYWORDS",
    "UNKNOWN_WORDS",
    "ENROLL_WORD",
    "CLASSES",
    "ACCENTS",
    "VARIANTS",
    "TRAIN_VOICES",
    "HELDOUT_VOICES",
    "SynthConfig",
    "KwsSplit",
    "read_wav",
    "load_audio",
    "write_wav",
    "speaker_id",
    "cache_dir",
    "heldout_config",
    "generate_synthetic",
    "load_gsc",
    "load_word_folder",
    "pad_clip",
    "load_shd",
    "bin_events",
]

KEYWORDS: tuple[str, ...] = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
# the other GSC v0.02 words; "marvin" is kept out as the default word to enroll on device
UNKNOWN_WORDS: tuple[str, ...] = (
    "bed", "bird", "cat", "dog", "eight", "five", "four", "happy", "house", "nine", "one",
    "seven", "sheila", "six", "three", "tree", "two", "wow", "zero", "backward", "forward",
    "follow", "learn", "visual",
)  # fmt: skip
ENROLL_WORD = "marvin"
CLASSES: tuple[str, ...] = (*KEYWORDS, "unknown", "silence")
ACCENTS: tuple[str, ...] = (
    "en-us", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029",
)  # fmt: skip
VARIANTS: tuple[str, ...] = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5",
    "klatt", "klatt2", "klatt3", "klatt4", "Andy", "boris", "david", "ed", "iven", "john",
    "linda", "max", "paul", "rob", "robert", "steph", "travis", "victor", "zac", "Annie",
    "belinda", "benjamin", "caleb", "edward", "grandpa", "Mike", "norbert",
)  # fmt: skip
SR = tts.SR
CLIP = SR  # 1 s clips, as in GSC


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """Read an audio file -> (mono int16 samples, sample rate in Hz).

    16-bit PCM WAV is read by the standard library (exact samples, no dependency); any
    other file libsndfile reads (8/24/32-bit PCM or float WAV, FLAC, OGG, ...) through
    ``soundfile`` when it is installed, scaled to int16 full scale (float samples clipped
    to [-1, 1]). Channels are averaged. See :func:`load_audio` for another sample rate."""
    path = Path(path)
    try:
        with wave.open(str(path), "rb") as w:
            n_ch, width, rate, n = (
                w.getnchannels(),
                w.getsampwidth(),
                w.getframerate(),
                w.getnframes(),
            )
            raw = w.readframes(n) if width == 2 else b""
    except (wave.Error, EOFError, OSError) as e:
        if isinstance(e, OSError) and not path.is_file():
            raise DataError(f"cannot read WAV file {path}: {e}") from e
        return _read_soundfile(path, e)
    if width != 2:
        return _read_soundfile(path, f"{8 * width}-bit PCM")
    x = np.frombuffer(raw, dtype="<i2")
    if n_ch > 1:
        x = x[: len(x) // n_ch * n_ch].reshape(-1, n_ch).mean(axis=1).astype(np.int16)
    return x.astype(np.int16), rate


def _read_soundfile(path: Path, why: object) -> tuple[np.ndarray, int]:
    """Any format libsndfile reads, as mono int16 (the fallback of :func:`read_wav`)."""
    try:
        import soundfile as sf
    except ImportError:
        raise DataError(
            f"cannot read {path} ({why}): the standard library reads 16-bit PCM WAV only; "
            "convert it (sox IN -b 16 OUT.wav) or install soundfile"
        ) from None
    try:
        y, rate = sf.read(str(path), dtype="float32", always_2d=True)  # 16-bit is the goal
    except (RuntimeError, OSError, ValueError) as e:  # LibsndfileError is a RuntimeError
        raise DataError(f"cannot read audio file {path}: {e}") from None
    x = np.nan_to_num(y.mean(axis=1), nan=0.0, posinf=1.0, neginf=-1.0)
    return np.round(np.clip(x, -1.0, 1.0) * 32767.0).astype(np.int16), int(rate)


#: the sample rates :func:`load_audio` resamples from (Hz); outside them a file is refused
AUDIO_RATES = (4_000, 384_000)


def load_audio(path: str | Path, rate: int = SR) -> np.ndarray:
    """An audio file (:func:`read_wav`) as mono int16 at ``rate`` Hz: resampled with a
    polyphase filter (``scipy.signal.resample_poly``, up / down by the reduced rate ratio,
    Kaiser window) when its own rate differs, so a 44.1 or 48 kHz recording, stereo or
    float, feeds the 16 kHz front end."""
    x, src = read_wav(path)
    if src == rate:
        return x
    if not AUDIO_RATES[0] <= src <= AUDIO_RATES[1]:
        raise DataError(
            f"{path}: sample rate {src} Hz is outside {AUDIO_RATES[0]}-{AUDIO_RATES[1]} Hz"
        )
    try:
        from scipy.signal import resample_poly
    except ImportError:
        raise DataError(
            f"{path}: {src} Hz, expected {rate} Hz; resample it (sox IN -r {rate} OUT.wav) "
            "or install scipy"
        ) from None
    g = math.gcd(int(src), int(rate))
    y = resample_poly(x.astype(np.float64), rate // g, src // g)
    return np.clip(np.round(y), -32768, 32767).astype(np.int16)


def write_wav(path: str | Path, x: np.ndarray, rate: int = SR) -> None:
    """Write mono int16 (or float in [-1, 1]) samples as 16-bit PCM WAV."""
    x = np.asarray(x)
    if x.dtype != np.int16:
        x = np.clip(np.round(x * 32767.0), -32768, 32767).astype(np.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(x.astype("<i2").tobytes())


def cache_dir(*parts: str) -> Path:
    """The KWS cache folder (:func:`neuroplast.paths.cache_dir` ``/kws``) joined with
    ``parts``: default home of generated data and feature caches, so nothing is written
    into the working directory."""
    from neuroplast.paths import cache_dir as user_cache

    return user_cache("kws", *parts)


def _fit_clip(x: np.ndarray, shift: int = 0) -> np.ndarray:
    """Centre the voiced part of ``x`` in a 1 s clip, moved by ``shift`` samples."""
    x = x.astype(np.float32)
    loud = np.flatnonzero(np.abs(x) > 0.02 * (np.abs(x).max() + 1e-9))
    if loud.size:
        x = x[loud[0] : loud[-1] + 1]
    if len(x) > CLIP:
        start = (len(x) - CLIP) // 2
        x = x[start : start + CLIP]
    out = np.zeros(CLIP, np.float32)
    start = int(np.clip((CLIP - len(x)) // 2 + shift, 0, CLIP - len(x)))
    out[start : start + len(x)] = x
    return out


# voices of other engines: the training default and the held-out engine (all its voices).
# flite's kal/kal16 are the kal diphone database that festival's kal_diphone also uses,
# and flite's slt is the speaker of festival's slt HTS voice: neither is trained on, so
# no speaker of the held-out engine is ever heard in training. mbrola's four diphone
# databases and SVOX Pico's two voices are other speakers and other synthesis methods;
# RHVoice's slt is festival's slt speaker again (CMU Arctic) and stays out as well.
TRAIN_VOICES: tuple[str, ...] = (
    "flite:awb",
    "flite:rms",
    *(f"mbrola:{v}" for v in tts.ENGINES["mbrola"].voices),
    *(f"pico:{v}" for v in tts.ENGINES["pico"].voices),
    *(f"rhvoice:{v}" for v in tts.ENGINES["rhvoice"].voices if v != "slt"),
)
HELDOUT_VOICES: tuple[str, ...] = tuple(f"festival:{v}" for v in tts.ENGINES["festival"].voices)


@dataclass(frozen=True)
class SynthConfig:
    """What :func:`generate_synthetic` writes; a change regenerates the cache.

    Voices: the espeak-ng ``variants`` (each clip in a random accent), split
    voice-disjoint -- the first ``n_test`` shuffled variants are test, the next ``n_val``
    validation, the rest training (``n_train`` of them, or all; ``espeak=False``: none)
    -- plus ``voices`` of other engines (``"engine:voice"``), ``voice_reps`` repetitions
    each (0: ``4 * clips_per_word``), in training. ``heldout=True`` puts every voice in
    the test split (an evaluation-only set, e.g. of an engine never trained on).
    ``channel`` draws each clip's room, band, codec, noise and level
    (:class:`~neuroplast.apps.kws.augment.Channel`; None: the clean voice only).
    """

    clips_per_word: int = 6  # per (espeak variant, word)
    n_train: int = 0  # 0 = all remaining variants
    n_val: int = 5
    n_test: int = 8
    espeak: bool = True
    voices: tuple[str, ...] = TRAIN_VOICES
    voice_reps: int = 0
    heldout: bool = False
    accents: tuple[str, ...] = ACCENTS
    variants: tuple[str, ...] = VARIANTS
    keywords: tuple[str, ...] = KEYWORDS
    unknown_words: tuple[str, ...] = UNKNOWN_WORDS
    enroll_words: tuple[str, ...] = (ENROLL_WORD,)
    rate: tuple[float, float] = (0.7, 1.3)  # speaking-rate factor
    pitch: tuple[float, float] = (0.7, 1.5)  # F0 factor (engines with a pitch control)
    shift_ms: float = 150.0  # time shift of the word in its clip, uniform +-
    channel: aug.Channel | None = aug.Channel()
    noise_seconds: int = 60  # per background noise file
    seed: int = 0
    version: int = 4  # 4: per-voice generators (_plan)

    def __post_init__(self) -> None:
        n = "SynthConfig"
        require_seed(DataError, n, self.seed)
        require_int(DataError, n, 1, clips_per_word=self.clips_per_word)
        require_int(
            DataError, n, 0, n_train=self.n_train, n_val=self.n_val, n_test=self.n_test,
            voice_reps=self.voice_reps, noise_seconds=self.noise_seconds,
        )  # fmt: skip
        require_real(DataError, n, 0.0, shift_ms=self.shift_ms)
        require_int(DataError, n, 1, version=self.version)

    def key(self) -> str:
        """Stable hash of the config (the cache key)."""
        blob = json.dumps(asdict(self), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def split_voices(self) -> dict[str, list[str]]:
        """Voices per split: ``{"train": [...], "val": [...], "test": [...]}`` as
        ``"engine:voice"`` (espeak-ng variants as ``"espeak-ng:<variant>"``)."""
        out: dict[str, list[str]] = {"train": [], "val": [], "test": []}
        if self.espeak:
            if self.n_val + self.n_test >= len(self.variants) and not self.heldout:
                raise DataError("SynthConfig: n_val + n_test must leave training variants")
            order = list(np.random.default_rng(self.seed).permutation(len(self.variants)))
            v = [f"espeak-ng:{self.variants[i]}" for i in order]
            if self.heldout:
                out["test"] += v[: self.n_test or len(v)]
            else:
                out["test"] += v[: self.n_test]
                out["val"] += v[self.n_test : self.n_test + self.n_val]
                train = v[self.n_test + self.n_val :]
                out["train"] += train[: self.n_train] if self.n_train else train
        for voice in self.voices:
            eng, _, name = voice.partition(":")
            if name not in tts.engine(eng).voices:
                raise DataError(f"{voice!r}: engine {eng!r} has no voice {name!r}")
        out["test" if self.heldout else "train"] += list(self.voices)
        return out

    def split_variants(self) -> dict[str, list[str]]:
        """The espeak-ng variants per split (bare names)."""
        return {
            s: [v.split(":", 1)[1] for v in vs if v.startswith("espeak-ng:")]
            for s, vs in self.split_voices().items()
        }


def speaker_id(voice: str) -> str:
    """GSC-style speaker id of a voice ``"engine:name"``: ``engine-name`` without
    underscores (``flite:awb`` -> ``flite-awb``)."""
    return voice.replace(":", "-").replace("_", "")


def heldout_config(clips_per_word: int = 8, seed: int = 0, voices=HELDOUT_VOICES) -> SynthConfig:  # noqa: ANN001
    """An evaluation-only set of ``voices`` (default: every festival voice), all in test."""
    return SynthConfig(
        clips_per_word=clips_per_word,
        espeak=False,
        voices=tuple(voices),
        voice_reps=clips_per_word,
        heldout=True,
        seed=seed,
    )


@dataclass(frozen=True)
class _Job:
    word: str
    voice: str  # engine:voice (espeak-ng: engine:accent+variant)
    split: str
    prosody: tts.Prosody
    cond: aug.Condition | None
    shift: int
    seed: int = 0  # of the job's own generator (room, noise): jobs run in any order


def _plan(cfg: SynthConfig) -> list[_Job]:
    """Every clip of the set with all its random draws (fixed order: reproducible).

    Each (split, voice) draws from its own generator, seeded by ``cfg.seed`` and the
    voice's name, so adding or removing a voice leaves every other voice's clips as
    they were (a new training voice does not redraw the test set)."""
    jobs: list[_Job] = []
    for split, voices in cfg.split_voices().items():
        for voice in voices:
            rng = np.random.default_rng([cfg.seed, zlib.crc32(f"{split}/{voice}".encode())])
            espeak = voice.startswith("espeak-ng:")
            reps = cfg.clips_per_word if espeak else (cfg.voice_reps or 4 * cfg.clips_per_word)
            for _ in range(reps):
                words = list(cfg.keywords)
                if cfg.unknown_words:
                    words.append(cfg.unknown_words[int(rng.integers(len(cfg.unknown_words)))])
                words += cfg.enroll_words
                for word in words:
                    v = voice
                    if espeak:
                        acc = cfg.accents[int(rng.integers(len(cfg.accents)))]
                        v = f"espeak-ng:{acc}+{voice.split(':', 1)[1]}"
                    pros = tts.Prosody(
                        rate=float(rng.uniform(*cfg.rate)),
                        pitch=float(rng.uniform(*cfg.pitch)),
                        gap=int(rng.integers(0, 6)),
                    )
                    cond = cfg.channel.draw(rng) if cfg.channel else None
                    shift = int(rng.uniform(-cfg.shift_ms, cfg.shift_ms) * SR / 1000)
                    seed = int(rng.integers(2**63))
                    jobs.append(_Job(word, v, split, pros, cond, shift, seed))
    return jobs


def _speak(jobs: Sequence[_Job]) -> list[np.ndarray]:
    """Dry audio of ``jobs``, batched per engine."""
    out: list[np.ndarray | None] = [None] * len(jobs)
    by_engine: dict[str, list[int]] = {}
    for i, j in enumerate(jobs):
        by_engine.setdefault(j.voice.split(":", 1)[0], []).append(i)
    for eng, idx in by_engine.items():
        items = [tts.Utterance(jobs[i].word, jobs[i].voice.split(":", 1)[1], jobs[i].prosody)
                 for i in idx]  # fmt: skip
        for i, a in zip(idx, tts.synthesize(eng, items)):
            out[i] = a
    return out  # type: ignore[return-value]


def _render(batch: Sequence[_Job], babble: np.ndarray | None) -> list[np.ndarray]:
    """Finished 1 s clips of ``batch``: speech, source effects, placement, channel."""
    out = []
    for j, x in zip(batch, _speak(batch)):
        rng = np.random.default_rng(j.seed)
        if j.cond is not None:
            x = aug.apply_source(x, j.cond, rng)
        y = _fit_clip(x, shift=j.shift)
        if j.cond is not None:
            y = aug.apply_channel(y, j.cond, rng, babble)
        else:
            y *= 0.9 / (np.abs(y).max() + 1e-9)
        out.append(np.clip(y, -1, 1))
    return out


def _babble_pool(cfg: SynthConfig, rng: np.random.Generator, n_jobs: int) -> np.ndarray:
    """Speech of the set's own voices saying non-keywords, for babble noise: 60 words
    (8 for sets of fewer than 480 clips)."""
    voices = [v for vs in cfg.split_voices().values() for v in vs]
    words = cfg.unknown_words or ("babble",)
    n = min(60, max(8, n_jobs // 8))
    jobs = []
    for _ in range(n):
        v = voices[int(rng.integers(len(voices)))]
        if v.startswith("espeak-ng:"):
            v = f"espeak-ng:{cfg.accents[int(rng.integers(len(cfg.accents)))]}+{v.split(':', 1)[1]}"
        w = words[int(rng.integers(len(words)))]
        jobs.append(_Job(w, v, "", tts.Prosody(float(rng.uniform(*cfg.rate))), None, 0))
    clips = _speak(jobs)
    return np.concatenate([c / (np.abs(c).max() + 1e-9) for c in clips]).astype(np.float32)


def _render_star(args: tuple) -> list[np.ndarray]:
    return _render(*args)


def _write_batch(root, batch, ys, lists, clips, counters, tick) -> None:  # noqa: ANN001
    for j, y in zip(batch, ys):
        eng, name = j.voice.split(":", 1)
        spk = speaker_id(f"{eng}:{name.split('+')[-1]}")
        k = counters.get((j.word, spk), 0)
        counters[(j.word, spk)] = k + 1
        rel = f"{j.word}/{spk}_nohash_{k}.wav"
        (root / j.word).mkdir(exist_ok=True)
        write_wav(root / rel, y)
        if j.split in lists:
            lists[j.split].append(rel)
        clips[rel] = {
            "voice": j.voice,
            "prosody": asdict(j.prosody),
            "tags": j.cond.tags() if j.cond else ["clean"],
            "condition": j.cond.to_dict() if j.cond else None,
        }
        tick()


def generate_synthetic(
    root: str | Path,
    cfg: SynthConfig = SynthConfig(),
    progress: bool = True,
    force: bool = False,
    workers: int = 0,
) -> Path:
    """Write a synthetic GSC-layout keyword set under ``root`` (cached by config hash).

    For every voice (:meth:`SynthConfig.split_voices`), repetition and word: a random
    speaking rate and pitch (the engine's own controls), a vocal-tract-length / pitch /
    tempo perturbation, room, noise, band limit, codec and level drawn from
    ``cfg.channel`` (:mod:`~neuroplast.apps.kws.augment`), and a time shift. Each
    unknown-word slot speaks a random word from ``cfg.unknown_words``. Also writes
    ``_background_noise_/`` (white, pink, brown, hum and babble at varying levels), the
    split lists, and ``synth_manifest.json`` (config, voices per split, and every
    clip's voice and condition). Every clip's randomness comes from its own seed, so
    the set is the same for any number of ``workers`` (processes; 0: one per CPU).
    Returns ``root``.
    """
    root = Path(root)
    man = root / "synth_manifest.json"
    if man.exists() and not force:
        try:
            if json.loads(man.read_text()).get("key") == cfg.key():
                return root
        except (OSError, ValueError):
            pass
    engines = {v.split(":", 1)[0] for vs in cfg.split_voices().values() for v in vs}
    for e in sorted(engines):
        tts.engine(e).check()
    if root.exists():
        for p in root.iterdir():  # only remove what a previous generation wrote
            if p.is_dir() and (p.name in {"_background_noise_"} or any(p.glob("*_nohash_*.wav"))):
                shutil.rmtree(p)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(cfg.seed)
    jobs = _plan(cfg)
    babble = (
        _babble_pool(cfg, rng, len(jobs))
        if cfg.channel and "babble" in cfg.channel.noises
        else None
    )
    lists: dict[str, list[str]] = {"val": [], "test": []}
    clips: dict[str, dict] = {}
    counters: dict[tuple[str, str], int] = {}
    chunks = [jobs[c0 : c0 + 48] for c0 in range(0, len(jobs), 48)]
    n_proc = max(1, min(workers or (os.cpu_count() or 1), len(chunks)))
    pool = None
    if n_proc > 1:
        import multiprocessing as mp

        # fork: workers only run numpy and subprocesses, and a user script without a
        # __main__ guard must not be re-imported (spawn would)
        pool = mp.get_context("fork").Pool(n_proc)
    try:
        rendered = (
            pool.imap(_render_star, [(b, babble) for b in chunks])
            if pool
            else (_render(b, babble) for b in chunks)
        )
        with _progress(progress, len(jobs), "synthesising keywords") as tick:
            for batch, ys in zip(chunks, rendered):
                _write_batch(root, batch, ys, lists, clips, counters, tick)
    finally:
        if pool is not None:
            pool.terminate()
    bg = root / "_background_noise_"
    bg.mkdir(exist_ok=True)
    for kind in aug.NOISES:
        n = cfg.noise_seconds * SR
        amp = 10 ** (rng.uniform(-40, -15, size=n // SR + 1) / 20).repeat(SR)[:n]
        w = aug.noise(kind, n, rng, babble) * amp
        write_wav(bg / f"{kind}_noise.wav", np.clip(w, -1, 1))
    (root / "validation_list.txt").write_text("\n".join(lists["val"]) + "\n")
    (root / "testing_list.txt").write_text("\n".join(lists["test"]) + "\n")
    man.write_text(
        json.dumps(
            {"key": cfg.key(), "config": asdict(cfg), "splits": cfg.split_voices(), "clips": clips}
        )
    )
    return root


class _progress:
    """A rich progress bar when available and wanted, else a no-op ticker."""

    def __init__(self, enabled: bool, total: int, label: str) -> None:
        self.enabled, self.total, self.label = enabled, total, label
        self._p = None

    def __enter__(self) -> Callable[[], None]:
        if self.enabled:
            try:
                from rich.progress import Progress

                self._p = Progress(transient=True)
                self._p.start()
                task = self._p.add_task(self.label, total=self.total)
                return lambda: self._p.advance(task)
            except ImportError:
                self._p = None
        return lambda: None

    def __exit__(self, *exc: object) -> None:
        if self._p is not None:
            self._p.stop()


@dataclass
class KwsSplit:
    """One split: ``audio (N, 16000) int16``, ``labels (N,)`` class indices, ``speakers``
    and ``files`` (paths relative to the root; silence crops as ``noise.wav@start``)."""

    audio: np.ndarray
    labels: np.ndarray
    speakers: list[str]
    classes: tuple[str, ...]
    files: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)


def pad_clip(x: np.ndarray) -> np.ndarray:
    """One clip padded with zeros or cut to 1 s (``CLIP`` samples), int16."""
    out = np.zeros(CLIP, np.int16)
    out[: min(len(x), CLIP)] = x[:CLIP]
    return out


def _read_list(path: Path) -> set[str]:
    if not path.exists():
        raise DataError(f"GSC folder is missing {path.name} (expected at {path})")
    return {ln.strip() for ln in path.read_text().splitlines() if ln.strip()}


def load_gsc(
    root: str | Path,
    keywords: Sequence[str] = KEYWORDS,
    exclude: Sequence[str] = (ENROLL_WORD,),
    unknown_ratio: float = 1.0,
    silence_ratio: float = 1.0,
    max_per_word: int | None = None,
    seed: int = 0,
) -> dict[str, KwsSplit]:
    """Load a Google Speech Commands v0.02 folder as the 12-class task.

    Returns ``{"train", "val", "test"}`` splits (membership from the official
    ``validation_list.txt`` / ``testing_list.txt``; everything else is train). Class
    order: ``keywords``, then ``"unknown"`` (all other word folders except
    ``exclude``, subsampled to ``unknown_ratio`` x the mean keyword count per split),
    then ``"silence"`` (random 1 s crops of ``_background_noise_/*.wav``; the first
    80 % of each file feeds train, the next 10 % val, the last 10 % test, so no
    noise sample is shared between splits).
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"GSC root {root} is not a directory")
    val_set = _read_list(root / "validation_list.txt")
    test_set = _read_list(root / "testing_list.txt")
    words = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("_"))
    missing = [k for k in keywords if k not in words]
    if missing:
        raise DataError(f"GSC folder {root} has no folder for keyword(s) {missing}")
    rng = np.random.default_rng(seed)
    classes = (*keywords, "unknown", "silence")
    per: dict[str, dict[str, list[str]]] = {s: {} for s in ("train", "val", "test")}
    for w in words:
        if w in exclude:
            continue
        files = sorted(f"{w}/{p.name}" for p in (root / w).glob("*.wav"))
        if max_per_word:
            files = files[:max_per_word]
        for rel in files:
            s = "val" if rel in val_set else "test" if rel in test_set else "train"
            per[s].setdefault(w, []).append(rel)
    noise_files = sorted((root / "_background_noise_").glob("*.wav"))
    noise = [read_wav(p)[0] for p in noise_files]
    out: dict[str, KwsSplit] = {}
    for s in ("train", "val", "test"):
        items: list[tuple[str, int]] = []
        for ci, k in enumerate(keywords):
            items += [(rel, ci) for rel in per[s].get(k, [])]
        n_kw = max(1, len(items) // max(1, len(keywords)))
        unk = [rel for w, rels in per[s].items() if w not in keywords for rel in rels]
        n_unk = min(len(unk), int(round(unknown_ratio * n_kw)))
        if n_unk:
            pick = rng.choice(len(unk), size=n_unk, replace=False)
            items += [(unk[i], len(keywords)) for i in sorted(pick)]
        audio = [pad_clip(read_wav(root / rel)[0]) for rel, _ in items]
        labels = [c for _, c in items]
        speakers = [Path(rel).name.split("_nohash_")[0] for rel, _ in items]
        files = [rel for rel, _ in items]
        n_sil = int(round(silence_ratio * n_kw)) if noise and items else 0
        lo, hi = (0.0, 0.8) if s == "train" else (0.8, 0.9) if s == "val" else (0.9, 1.0)
        for j in range(n_sil):
            src = noise[j % len(noise)]
            a, b = int(lo * len(src)), int(hi * len(src)) - CLIP
            start = a if b <= a else int(rng.integers(a, b))
            clip = src[start : start + CLIP].astype(np.float32)
            clip *= rng.uniform(0.0, 1.0)  # silence at any level, down to digital zero
            audio.append(pad_clip(clip.astype(np.int16)))
            labels.append(len(keywords) + 1)
            speakers.append("background")
            files.append(f"_background_noise_/{noise_files[j % len(noise)].name}@{start}")
        audio_arr = np.stack(audio) if audio else np.zeros((0, CLIP), np.int16)
        out[s] = KwsSplit(audio_arr, np.asarray(labels, np.int64), speakers, classes, files)
    if not any(len(v) for v in out.values()):
        raise DataError(f"GSC folder {root} has no clips of the keywords {list(keywords)}")
    return out


#: the recordings a samples folder may hold (:func:`load_audio` reads them)
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
#: an example of a word lasts at least this long (s) and its level (RMS about its mean,
#: dBFS) reaches this: below, a file is empty, silent, DC or a dropout, and learning
#: silence as a word would make quiet rooms trigger it
EXAMPLE_MIN_S, EXAMPLE_MIN_DBFS = 0.1, -60.0


def check_example(x: np.ndarray, name: str, rate: int = SR) -> np.ndarray:
    """``x`` (int16) if it can be an example of a spoken word, else :class:`DataError`
    saying what is wrong with the recording ``name``."""
    if len(x) < EXAMPLE_MIN_S * rate:
        raise DataError(
            f"{name}: {1000 * len(x) / rate:.0f} ms of audio, a word takes 0.2-1 s: record it again"
        )
    rms = float(np.std(x.astype(np.float64))) / 32768.0
    db = 20 * np.log10(rms) if rms > 0 else -np.inf
    if db < EXAMPLE_MIN_DBFS:
        raise DataError(
            f"{name}: silent (level {db:.0f} dBFS, below {EXAMPLE_MIN_DBFS:.0f}): record it again"
        )
    return x


def load_word_folder(path: str | Path, max_files: int | None = None) -> np.ndarray:
    """The recordings of a folder (:data:`AUDIO_SUFFIXES`, any rate and format
    :func:`load_audio` reads) as a ``(N, 16000)`` int16 array (pads/crops to 1 s).

    Used for enrollment samples recorded on the device.
    """
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"samples folder {path} does not exist")
    files = sorted(f for f in path.iterdir() if f.suffix.lower() in AUDIO_SUFFIXES)[:max_files]
    if not files:
        raise DataError(f"samples folder {path} has no recordings ({', '.join(AUDIO_SUFFIXES)})")
    clips = [pad_clip(check_example(load_audio(f, SR), str(f))) for f in files]
    return np.stack(clips)


def bin_events(
    times: np.ndarray, units: np.ndarray, n_units: int, dt: float, n_steps: int, group: int = 1
) -> np.ndarray:
    """Bin one event stream into a dense ``(n_steps, ceil(n_units / group))`` count raster.

    Events at ``t >= n_steps * dt`` are dropped; ``group`` sums neighbouring units.
    """
    times = np.asarray(times, np.float64)
    units = np.asarray(units, np.int64)
    if times.shape != units.shape:
        raise DataError(f"spike times {times.shape} and units {units.shape} differ in shape")
    if units.size and (units.min() < 0 or units.max() >= n_units):
        raise DataError(f"spike unit ids must be in [0, {n_units}), got max {units.max()}")
    n_ch = -(-n_units // group)
    out = np.zeros((n_steps, n_ch), np.float32)
    t = np.floor(times / dt).astype(np.int64)
    keep = (t >= 0) & (t < n_steps)
    np.add.at(out, (t[keep], units[keep] // group), 1.0)
    return out


def load_shd(
    path: str | Path,
    dt: float = 0.01,
    n_steps: int = 100,
    group: int = 5,
    n_units: int = 700,
    limit: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Read an SHD-style HDF5 file -> (rasters ``(N, n_steps, n_units/group)``, labels).

    Layout: ``spikes/times`` and ``spikes/units`` (variable-length arrays, seconds and
    channel ids) and ``labels``. Rasters hold spike counts per bin, clipped to 1.
    """
    try:
        import h5py
    except ImportError as e:  # pragma: no cover - h5py is in the train extra
        raise DataError("reading SHD files needs h5py (pip install h5py)") from e
    try:
        with h5py.File(path, "r") as f:
            times, units, labels = f["spikes"]["times"], f["spikes"]["units"], f["labels"]
            n = len(labels) if limit is None else min(limit, len(labels))
            if len(times) < n or len(units) < n:
                raise DataError(f"{path}: spikes/times or spikes/units shorter than labels")
            X = np.stack(
                [
                    np.minimum(bin_events(times[i], units[i], n_units, dt, n_steps, group), 1.0)
                    for i in range(n)
                ]
            )
            y = np.asarray(labels[:n], np.int64)
    except (OSError, KeyError) as e:
        raise DataError(f"{path} is not an SHD-style HDF5 file: {e}") from e
    return X, y
