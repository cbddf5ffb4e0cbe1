"""Keyword-spotting data: Google Speech Commands layout, SHD HDF5, and a synthetic set.

* :func:`load_gsc` reads the Google Speech Commands v0.02 folder layout
  (``<word>/<speaker>_nohash_<n>.wav``, ``validation_list.txt``, ``testing_list.txt``,
  ``_background_noise_/*.wav``) into the standard 12-class task: the 10 command
  words, "unknown" (every other word) and "silence" (1 s crops of background noise).
* :func:`load_shd` reads Spiking Heidelberg Digits style HDF5 files
  (``spikes/times``, ``spikes/units``, ``labels``) and bins them into dense rasters.
* :func:`generate_synthetic` writes a GSC-layout folder of keywords spoken by
  ``espeak-ng`` (piped through ``sox``): many accents, voice variants, speeds, pitches
  and amplitudes, with reverb, additive noise and time-shift augmentation. Splits are
  voice-disjoint: a voice *variant* used for testing never occurs in training, in any
  accent. Generation is cached (a manifest of the config) and shows a progress bar.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import wave
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from neuroplast.errors import DataError

__all__ = [
    "KEYWORDS",
    "UNKNOWN_WORDS",
    "ENROLL_WORD",
    "CLASSES",
    "ACCENTS",
    "VARIANTS",
    "SynthConfig",
    "KwsSplit",
    "read_wav",
    "write_wav",
    "synth_word",
    "generate_synthetic",
    "load_gsc",
    "load_word_folder",
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
SR = 16000
CLIP = SR  # 1 s clips, as in GSC


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """Read a 16-bit PCM WAV file -> (mono int16 samples, sample rate)."""
    path = Path(path)
    try:
        with wave.open(str(path), "rb") as w:
            n_ch, width, rate, n = (
                w.getnchannels(),
                w.getsampwidth(),
                w.getframerate(),
                w.getnframes(),
            )
            raw = w.readframes(n)
    except (wave.Error, EOFError, OSError) as e:
        raise DataError(f"cannot read WAV file {path}: {e}") from e
    if width != 2:
        raise DataError(f"{path}: only 16-bit PCM WAV is supported, got {8 * width}-bit")
    x = np.frombuffer(raw, dtype="<i2")
    if n_ch > 1:
        x = x[: len(x) // n_ch * n_ch].reshape(-1, n_ch).mean(axis=1).astype(np.int16)
    return x.astype(np.int16), rate


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


def synth_word(
    word: str,
    voice: str,
    speed: int = 160,
    pitch: int = 50,
    gap: int = 0,
    reverb: int = 0,
) -> np.ndarray:
    """Speak ``word`` with espeak-ng (``voice`` like ``"en-us+f3"``) -> float32 at 16 kHz.

    ``espeak-ng --stdout`` is piped into ``sox`` for resampling and an optional
    ``reverb`` (0..100 %). Raises :class:`DataError` when the tools are missing.
    """
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        raise DataError("espeak-ng and sox are needed: apt-get install espeak-ng sox")
    esp = ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-g", str(gap)]
    sox = ["sox", "-V1", "-G", "-t", "wav", "-", "-r", str(SR), "-c", "1", "-b", "16"]
    sox += ["-e", "signed-integer", "-t", "raw", "-"]
    if reverb > 0:
        sox += ["reverb", str(int(reverb))]
    p1 = subprocess.run([*esp, "--stdout", word], capture_output=True, check=False)
    if p1.returncode != 0 or not p1.stdout:
        raise DataError(f"espeak-ng failed for voice {voice!r}: {p1.stderr.decode()[:200]}")
    p2 = subprocess.run(sox, input=p1.stdout, capture_output=True, check=False)
    if p2.returncode != 0:
        raise DataError(f"sox failed: {p2.stderr.decode()[:200]}")
    return np.frombuffer(p2.stdout, dtype="<i2").astype(np.float32) / 32768.0


def _noise(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS white, pink or brown noise (spectral shaping in the rfft domain)."""
    w = rng.standard_normal(n).astype(np.float32)
    if kind != "white":
        f = np.fft.rfftfreq(n)
        f[0] = f[1]
        spec = np.fft.rfft(w) / (np.sqrt(f) if kind == "pink" else f)
        w = np.fft.irfft(spec, n).astype(np.float32)
    return w / (np.sqrt(np.mean(w**2)) + 1e-12)


@dataclass(frozen=True)
class SynthConfig:
    """What :func:`generate_synthetic` writes; a change regenerates the cache.

    Variants are split voice-disjoint: the first ``n_test`` shuffled variants are test,
    the next ``n_val`` validation, the rest training (``n_train`` of them, or all).
    """

    clips_per_word: int = 6  # per (variant, keyword) pair
    n_train: int = 0  # 0 = all remaining variants
    n_val: int = 5
    n_test: int = 8
    accents: tuple[str, ...] = ACCENTS
    variants: tuple[str, ...] = VARIANTS
    keywords: tuple[str, ...] = KEYWORDS
    unknown_words: tuple[str, ...] = UNKNOWN_WORDS
    enroll_words: tuple[str, ...] = (ENROLL_WORD,)
    noise_seconds: int = 60  # per background noise file
    snr_db: tuple[float, float] = (12.0, 40.0)
    seed: int = 0
    version: int = 1

    def key(self) -> str:
        """Stable hash of the config (the cache key)."""
        blob = json.dumps(asdict(self), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def split_variants(self) -> dict[str, list[str]]:
        """Voice-disjoint split of the variants: ``{"train": [...], "val": [...], "test": [...]}``."""
        if self.n_val + self.n_test >= len(self.variants):
            raise DataError("SynthConfig: n_val + n_test must leave training variants")
        order = list(np.random.default_rng(self.seed).permutation(len(self.variants)))
        v = [self.variants[i] for i in order]
        test, val = v[: self.n_test], v[self.n_test : self.n_test + self.n_val]
        train = v[self.n_test + self.n_val :]
        if self.n_train:
            train = train[: self.n_train]
        return {"train": train, "val": val, "test": test}


def _speaker_id(variant: str, accent: str) -> str:
    return hashlib.sha1(f"{variant}|{accent}".encode()).hexdigest()[:8]


def generate_synthetic(
    root: str | Path,
    cfg: SynthConfig = SynthConfig(),
    progress: bool = True,
    force: bool = False,
) -> Path:
    """Write a synthetic GSC-layout keyword set under ``root`` (cached by config hash).

    For every variant, keyword and repetition: a random accent, speed (110..210 wpm),
    pitch (15..85), word gap, reverb (0..60 % with probability 0.3), amplitude
    (-24..0 dB), time shift (+-150 ms) and additive white/pink/brown noise at an SNR
    drawn from ``cfg.snr_db``. Each unknown-word slot speaks a random word from
    ``cfg.unknown_words``. Also writes ``_background_noise_/`` and the split lists.
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
    if root.exists():
        for p in root.iterdir():  # only remove what a previous generation wrote
            if p.is_dir() and (p.name in {"_background_noise_"} or any(p.glob("*_nohash_*.wav"))):
                shutil.rmtree(p)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(cfg.seed)
    splits = cfg.split_variants()
    jobs: list[tuple[str, str, str, int]] = []  # (folder word, spoken word, variant, rep)
    for split in ("train", "val", "test"):
        for var in splits[split]:
            for r in range(cfg.clips_per_word):
                for w in cfg.keywords:
                    jobs.append((w, w, var, r))
                u = cfg.unknown_words[int(rng.integers(len(cfg.unknown_words)))]
                jobs.append((u, u, var, r))
                for e in cfg.enroll_words:
                    jobs.append((e, e, var, r))
    lists: dict[str, list[str]] = {"val": [], "test": []}
    split_of = {v: s for s, vs in splits.items() for v in vs}
    counters: dict[tuple[str, str], int] = {}
    kinds = ("white", "pink", "brown")
    with _progress(progress, len(jobs), "espeak-ng keywords") as tick:
        for folder, spoken, var, _r in jobs:
            accent = cfg.accents[int(rng.integers(len(cfg.accents)))]
            spk = _speaker_id(var, accent)
            x = synth_word(
                spoken,
                f"{accent}+{var}",
                speed=int(rng.integers(110, 211)),
                pitch=int(rng.integers(15, 86)),
                gap=int(rng.integers(0, 6)),
                reverb=int(rng.integers(10, 61)) if rng.random() < 0.3 else 0,
            )
            y = _fit_clip(x, shift=int(rng.integers(-2400, 2401)))
            y *= 0.9 / (np.abs(y).max() + 1e-9) * 10.0 ** (rng.uniform(-24.0, 0.0) / 20.0)
            snr = rng.uniform(*cfg.snr_db)
            rms = np.sqrt(np.mean(y[np.abs(y) > 0] ** 2)) if np.any(y) else 1e-3
            y = y + _noise(kinds[int(rng.integers(3))], CLIP, rng) * rms * 10 ** (-snr / 20)
            k = counters.get((folder, spk), 0)
            counters[(folder, spk)] = k + 1
            rel = f"{folder}/{spk}_nohash_{k}.wav"
            (root / folder).mkdir(exist_ok=True)
            write_wav(root / rel, np.clip(y, -1, 1))
            if split_of[var] in lists:
                lists[split_of[var]].append(rel)
            tick()
    bg = root / "_background_noise_"
    bg.mkdir(exist_ok=True)
    for kind in kinds:
        n = cfg.noise_seconds * SR
        amp = 10 ** (rng.uniform(-40, -15, size=n // SR + 1) / 20).repeat(SR)[:n]
        write_wav(bg / f"{kind}_noise.wav", np.clip(_noise(kind, n, rng) * amp, -1, 1))
    (root / "validation_list.txt").write_text("\n".join(lists["val"]) + "\n")
    (root / "testing_list.txt").write_text("\n".join(lists["test"]) + "\n")
    man.write_text(json.dumps({"key": cfg.key(), "config": asdict(cfg), "splits": splits}))
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
    """One split: ``audio (N, 16000) int16``, ``labels (N,)`` class indices, ``speakers``."""

    audio: np.ndarray
    labels: np.ndarray
    speakers: list[str]
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.labels)


def _pad_clip(x: np.ndarray) -> np.ndarray:
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
    noise = [read_wav(p)[0] for p in sorted((root / "_background_noise_").glob("*.wav"))]
    out: dict[str, KwsSplit] = {}
    for si, s in enumerate(("train", "val", "test")):
        items: list[tuple[str, int]] = []
        for ci, k in enumerate(keywords):
            items += [(rel, ci) for rel in per[s].get(k, [])]
        n_kw = max(1, len(items) // max(1, len(keywords)))
        unk = [rel for w, rels in per[s].items() if w not in keywords for rel in rels]
        n_unk = min(len(unk), int(round(unknown_ratio * n_kw)))
        if n_unk:
            pick = rng.choice(len(unk), size=n_unk, replace=False)
            items += [(unk[i], len(keywords)) for i in sorted(pick)]
        audio = [_pad_clip(read_wav(root / rel)[0]) for rel, _ in items]
        labels = [c for _, c in items]
        speakers = [Path(rel).name.split("_nohash_")[0] for rel, _ in items]
        n_sil = int(round(silence_ratio * n_kw)) if noise else 0
        lo, hi = (0.0, 0.8) if s == "train" else (0.8, 0.9) if s == "val" else (0.9, 1.0)
        for j in range(n_sil):
            src = noise[j % len(noise)]
            a, b = int(lo * len(src)), int(hi * len(src)) - CLIP
            start = a if b <= a else int(rng.integers(a, b))
            clip = src[start : start + CLIP].astype(np.float32)
            clip *= rng.uniform(0.0, 1.0)  # silence at any level, down to digital zero
            audio.append(_pad_clip(clip.astype(np.int16)))
            labels.append(len(keywords) + 1)
            speakers.append(f"noise{si}")
        if not audio:
            raise DataError(f"GSC split {s!r} under {root} is empty")
        out[s] = KwsSplit(np.stack(audio), np.asarray(labels, np.int64), speakers, classes)
    return out


def load_word_folder(path: str | Path, max_files: int | None = None) -> np.ndarray:
    """All ``*.wav`` files of a folder as a ``(N, 16000)`` int16 array (pads/crops to 1 s).

    Used for enrollment samples recorded on the device.
    """
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"samples folder {path} does not exist")
    files = sorted(path.glob("*.wav"))[:max_files]
    if not files:
        raise DataError(f"samples folder {path} has no .wav files")
    clips = []
    for f in files:
        x, rate = read_wav(f)
        if rate != SR:
            raise DataError(f"{f}: sample rate {rate} Hz, expected {SR} Hz")
        clips.append(_pad_clip(x))
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
