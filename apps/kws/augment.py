"""Audio conditions for robust keyword spotting: what happens between a mouth and the ADC.

Every function is ``audio (float32, 16 kHz) -> audio`` with its randomness drawn from a
``numpy.random.Generator``, so a generated set is reproducible from its seed. A
:class:`Channel` draws one condition per clip (:meth:`Channel.draw`); steps 1-2 act on
the dry utterance (:func:`apply_source`), steps 3-6 on the placed 1 s clip
(:func:`apply_channel`: the noise is in the room, so it passes the band limit and codec
too). In order:

1. **Vocal-tract length and pitch** (``sox -R pitch``/``tempo``): ``pitch c`` scales
   every frequency (formants and F0) by ``2^(c/1200)`` without changing duration, which
   is a vocal-tract-length change of the same factor (VTLP at the audio level); F0 alone
   is perturbed by the engine's own pitch control (:class:`~neuroplast.apps.kws.tts.Prosody`);
   ``tempo`` changes the speaking rate.
2. **Room** (:func:`room_impulse`): a generated impulse response -- direct path, a few
   early reflections (5-40 ms) and an exponentially decaying late tail whose energy
   falls by 60 dB in ``rt60`` seconds (``h(t) ~ n(t) exp(-6.91 t / rt60)``, Sabine's
   definition), low-passed so high frequencies decay faster; mixed at a
   direct-to-reverberant ratio.
3. **Noise** (:func:`noise`): white, pink, brown, mains hum with harmonics, or babble
   (other speech), at an SNR in dB relative to the speech's active-sample RMS.
4. **Band limit** (:func:`band_limit`): telephone band (300-3400 Hz, through 8 kHz) or
   a cheap microphone's low-pass (4-7 kHz), as a linear-phase FFT mask.
5. **Codec** (:func:`codec_roundtrip`): a lossy round trip through ``sox`` (MP3 8-32
   kbit/s, GSM 06.10 and AMR-NB at 8 kHz, Ogg Vorbis) or ``opusenc``/``opusdec``
   (Opus 6-16 kbit/s).
6. **Gain** (dB) and **clipping**.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from neuroplast.errors import DataError

__all__ = [
    "SR",
    "CODECS",
    "NOISES",
    "Channel",
    "Condition",
    "sox_effects",
    "room_impulse",
    "reverberate",
    "band_limit",
    "codec_roundtrip",
    "noise",
    "mix_at_snr",
    "apply_source",
    "apply_channel",
]

SR = 16000
CODECS: tuple[str, ...] = ("mp3", "gsm", "amr-nb", "vorbis", "opus")
NOISES: tuple[str, ...] = ("white", "pink", "brown", "hum", "babble")


def _sox(x: np.ndarray, args: list[str], rate: int = SR) -> np.ndarray:
    """Run raw 16-bit mono samples through ``sox -R`` with ``args`` (effects)."""
    pcm = (np.clip(x, -1, 1) * 32767).astype("<i2").tobytes()
    raw = ["-t", "raw", "-e", "signed-integer", "-b", "16", "-c", "1"]
    cmd = ["sox", "-R", "-V1", *raw, "-r", str(rate), "-", *raw, "-r", str(SR), "-", *args]
    p = subprocess.run(cmd, input=pcm, capture_output=True, check=False)
    if p.returncode != 0:
        raise DataError(f"sox {' '.join(args)} failed: {p.stderr.decode()[:200]}")
    return np.frombuffer(p.stdout, dtype="<i2").astype(np.float32) / 32768.0


def sox_effects(x: np.ndarray, pitch_cents: float = 0.0, tempo: float = 1.0) -> np.ndarray:
    """Scale all frequencies by ``2^(pitch_cents/1200)`` and the speaking rate by ``tempo``."""
    args: list[str] = []
    if abs(pitch_cents) >= 1:
        args += ["pitch", f"{pitch_cents:.0f}"]
    if abs(tempo - 1.0) >= 1e-3:
        args += ["tempo", "-s", f"{tempo:.3f}"]
    return _sox(x, args) if args else x


def room_impulse(rng: np.random.Generator, rt60: float, drr_db: float) -> np.ndarray:
    """A generated room impulse response at 16 kHz (see the module docstring).

    ``rt60`` seconds of decay to -60 dB, ``drr_db`` direct-to-reverberant energy ratio.
    """
    if rt60 <= 0:
        raise DataError(f"rt60 must be > 0 s, got {rt60}")
    n = int(min(1.2, 1.5 * rt60) * SR) + 1
    t = np.arange(n) / SR
    from scipy.signal import lfilter

    tail = rng.standard_normal(n) * np.exp(-6.91 * t / rt60)
    # a cross-fade from a light to a strong one-pole low-pass along the tail: highs
    # decay faster than lows, as air and walls absorb them more
    light, strong = (lfilter([1 - a], [1, -a], tail) for a in (0.05, 0.6))
    fade = np.linspace(0.0, 1.0, n)
    tail = (1 - fade) * light + fade * strong
    onset = int(0.002 * SR)
    tail[:onset] = 0.0
    for _ in range(int(rng.integers(3, 8))):  # early reflections, 5-40 ms
        k = int(rng.uniform(0.005, 0.04) * SR)
        tail[k] += rng.uniform(-1, 1) * np.exp(-6.91 * k / SR / rt60) * 3.0
    tail *= np.sqrt(10 ** (-drr_db / 10) / (np.sum(tail**2) + 1e-12))
    h = tail
    h[0] = 1.0  # the direct path, unit energy
    return h.astype(np.float32)


def reverberate(x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Convolve ``x`` with the impulse response ``h`` (FFT), same length as ``x``."""
    n = len(x) + len(h) - 1
    m = 1 << (n - 1).bit_length()
    y = np.fft.irfft(np.fft.rfft(x, m) * np.fft.rfft(h, m), m)[: len(x)]
    return y.astype(np.float32)


def band_limit(x: np.ndarray, lo_hz: float, hi_hz: float) -> np.ndarray:
    """Keep ``lo_hz..hi_hz`` (FFT mask with 100 Hz raised-cosine edges)."""
    m = 1 << (len(x) - 1).bit_length()
    f = np.fft.rfftfreq(m, 1 / SR)
    g = np.clip((f - (lo_hz - 50)) / 100, 0, 1) * np.clip(((hi_hz + 50) - f) / 100, 0, 1)
    g = 0.5 - 0.5 * np.cos(np.pi * g)
    return np.fft.irfft(np.fft.rfft(x, m) * g, m)[: len(x)].astype(np.float32)


def codec_roundtrip(x: np.ndarray, codec: str, kbps: int = 16) -> np.ndarray:
    """Encode and decode ``x`` with a lossy codec; the codec's delay is kept (the clip
    is re-centred later). ``kbps`` applies to mp3 and opus."""
    if codec not in CODECS:
        raise DataError(f"unknown codec {codec!r}; use one of {', '.join(CODECS)}")
    if codec == "opus" and not (shutil.which("opusenc") and shutil.which("opusdec")):
        raise DataError("the opus codec needs opusenc/opusdec: apt-get install opus-tools")
    with tempfile.TemporaryDirectory(prefix="np-codec-") as d:
        src, dec = Path(d) / "in.wav", Path(d) / "out.wav"
        from neuroplast.apps.kws.data import write_wav

        write_wav(src, np.clip(x, -1, 1))
        if codec == "opus":
            enc = Path(d) / "x.opus"
            steps = [
                ["opusenc", "--quiet", "--bitrate", str(kbps), str(src), str(enc)],
                ["opusdec", "--quiet", "--rate", str(SR), str(enc), str(dec)],
            ]
        else:
            ext, rate, extra = {
                "mp3": ("mp3", SR, ["-C", str(kbps)]),
                "gsm": ("gsm", 8000, []),
                "amr-nb": ("amr-nb", 8000, []),
                "vorbis": ("ogg", SR, ["-C", "0"]),
            }[codec]
            enc = Path(d) / f"x.{ext}"
            steps = [
                ["sox", "-R", "-V1", str(src), "-r", str(rate), *extra, str(enc)],
                ["sox", "-R", "-V1", str(enc), "-r", str(SR), "-b", "16", "-c", "1", str(dec)],
            ]
        for cmd in steps:
            p = subprocess.run(cmd, capture_output=True, check=False)
            if p.returncode != 0:
                raise DataError(f"{codec} round trip failed: {p.stderr.decode()[:200]}")
        from neuroplast.apps.kws.data import read_wav

        y, _ = read_wav(dec)
    return y.astype(np.float32) / 32768.0


def noise(
    kind: str, n: int, rng: np.random.Generator, babble: np.ndarray | None = None
) -> np.ndarray:
    """Unit-RMS noise of ``kind`` (:data:`NOISES`), ``n`` samples.

    ``babble`` is a pool of speech audio to draw 3-6 overlapping talkers from (white
    noise when absent); ``hum`` is 50 or 60 Hz mains with decaying harmonics plus a
    little pink noise.
    """
    if kind in ("white", "pink", "brown"):
        w = rng.standard_normal(n)
        if kind != "white":
            f = np.fft.rfftfreq(n)
            f[0] = f[1]
            w = np.fft.irfft(np.fft.rfft(w) / (np.sqrt(f) if kind == "pink" else f), n)
    elif kind == "hum":
        t = np.arange(n) / SR
        f0 = 50.0 if rng.random() < 0.5 else 60.0
        w = sum(
            np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 2 * np.pi)) / k**1.2 for k in range(1, 9)
        )
        w = w / np.sqrt(np.mean(w**2)) + 0.3 * noise("pink", n, rng)
    elif kind == "babble":
        if babble is None or len(babble) < n:
            return noise("white", n, rng)
        w = np.zeros(n)
        for _ in range(int(rng.integers(3, 7))):
            s = int(rng.integers(0, len(babble) - n + 1))
            w += babble[s : s + n] * rng.uniform(0.5, 1.0)
    else:
        raise DataError(f"unknown noise kind {kind!r}; use one of {', '.join(NOISES)}")
    w = np.asarray(w, np.float32)
    return w / (np.sqrt(np.mean(w**2)) + 1e-12)


def mix_at_snr(x: np.ndarray, n: np.ndarray, snr_db: float) -> np.ndarray:
    """``x + g n`` with ``g`` so that the speech (RMS over samples above 1 % of the peak)
    is ``snr_db`` dB above the noise."""
    active = np.abs(x) > 0.01 * (np.abs(x).max() + 1e-12)
    rms = np.sqrt(np.mean(x[active] ** 2)) if active.any() else 1e-3
    return (x + n * rms * 10 ** (-snr_db / 20)).astype(np.float32)


@dataclass(frozen=True)
class Condition:
    """One clip's drawn condition (``None``/0 = effect off); recorded in the manifest."""

    pitch_cents: float = 0.0
    tempo: float = 1.0
    rt60: float = 0.0
    drr_db: float = 0.0
    band: str = "full"  # full | telephone | lowpass<kHz>
    codec: str = ""
    kbps: int = 0
    noise: str = ""
    snr_db: float = 99.0
    gain_db: float = 0.0

    def tags(self) -> list[str]:
        """Short names of the effects that are on (for per-condition accuracy)."""
        t = []
        if self.rt60:
            t.append("room")
        if self.band != "full":
            t.append("telephone" if self.band == "telephone" else "lowpass")
        if self.codec:
            t.append(f"codec:{self.codec}")
        if self.noise and self.snr_db < 15:
            t.append("snr<15dB")
        return t or ["clean"]

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Channel:
    """Probabilities and ranges of the conditions (one draw per clip)."""

    pitch_cents: float = 250.0  # VTL / formant shift, uniform +-cents (+-15 %)
    tempo: tuple[float, float] = (0.85, 1.15)
    p_room: float = 0.5
    rt60: tuple[float, float] = (0.15, 0.9)
    drr_db: tuple[float, float] = (-3.0, 12.0)
    p_telephone: float = 0.15
    p_lowpass: float = 0.15
    p_codec: float = 0.3
    codecs: tuple[str, ...] = CODECS
    p_noise: float = 0.8
    noises: tuple[str, ...] = NOISES
    snr_db: tuple[float, float] = (5.0, 30.0)
    gain_db: tuple[float, float] = (-30.0, 0.0)
    p_clip: float = 0.05  # overdriven input: gain pushes the peak up to 2x full scale

    def draw(self, rng: np.random.Generator) -> Condition:
        """One random condition (the draw order is fixed, so sets are reproducible)."""
        c: dict = {
            "pitch_cents": float(rng.uniform(-self.pitch_cents, self.pitch_cents)),
            "tempo": float(rng.uniform(*self.tempo)),
        }
        if rng.random() < self.p_room:
            c["rt60"], c["drr_db"] = (
                float(rng.uniform(*self.rt60)),
                float(rng.uniform(*self.drr_db)),
            )
        u = rng.random()
        if u < self.p_telephone:
            c["band"] = "telephone"
        elif u < self.p_telephone + self.p_lowpass:
            c["band"] = f"lowpass{int(rng.integers(4, 8))}"
        if self.codecs and rng.random() < self.p_codec:
            c["codec"] = self.codecs[int(rng.integers(len(self.codecs)))]
            c["kbps"] = int(rng.choice([8, 12, 16, 24])) if c["codec"] in ("mp3", "opus") else 0
        if self.noises and rng.random() < self.p_noise:
            c["noise"] = self.noises[int(rng.integers(len(self.noises)))]
            c["snr_db"] = float(rng.uniform(*self.snr_db))
        if rng.random() < self.p_clip:
            c["gain_db"] = float(rng.uniform(0.0, 6.0))
        else:
            c["gain_db"] = float(rng.uniform(*self.gain_db))
        return Condition(**c)


def apply_source(x: np.ndarray, cond: Condition, rng: np.random.Generator) -> np.ndarray:
    """Vocal-tract length, pitch, tempo and room on the dry utterance ``x`` (any length;
    the room adds a 0.3 s tail)."""
    y = sox_effects(np.asarray(x, np.float32), cond.pitch_cents, cond.tempo)
    if cond.rt60:
        y = np.concatenate([y, np.zeros(int(0.3 * SR), np.float32)])
        y = reverberate(y, room_impulse(rng, cond.rt60, cond.drr_db))
    return y


def apply_channel(
    y: np.ndarray, cond: Condition, rng: np.random.Generator, babble: np.ndarray | None = None
) -> np.ndarray:
    """Noise (in the room, so it goes through the channel too), band limit, codec, gain
    and clipping on a placed clip ``y``; the output has ``len(y)`` samples. ``y`` is
    peak-normalised to 0.9 before the gain, so ``gain_db > 0`` clips."""
    y = np.asarray(y, np.float32)
    if cond.noise:
        y = mix_at_snr(y, noise(cond.noise, len(y), rng, babble), cond.snr_db)
    if cond.band == "telephone":
        y = band_limit(y, 300.0, 3400.0)
    elif cond.band.startswith("lowpass"):
        y = band_limit(y, 0.0, 1000.0 * float(cond.band[7:]))
    if cond.codec:
        z = codec_roundtrip(y, cond.codec, cond.kbps or 16)
        y = np.zeros_like(y)
        y[: min(len(y), len(z))] = z[: len(y)]
    y = y * (0.9 / (np.abs(y).max() + 1e-9)) * 10 ** (cond.gain_db / 20)
    return np.clip(y, -1.0, 1.0).astype(np.float32)
