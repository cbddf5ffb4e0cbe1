"""Text-to-speech engines for the synthetic keyword sets: one handler per engine.

Each engine turns a list of :class:`Utterance` (word, voice, prosody) into 16 kHz
float32 audio. The engines are independent synthesisers from Debian (main; mbrola's
voices and SVOX Pico are in contrib / non-free, which ``make apt`` enables):

========== ============================== =====================================================
engine     voices                         prosody controls
========== ============================== =====================================================
espeak-ng  ``<accent>+<variant>``         formant synthesis; ``-s`` wpm, ``-p`` pitch, ``-g`` gap
flite      awb rms slt kal kal16          CMU clustergen / diphone; ``duration_stretch``,
                                          ``int_f0_target_mean``
mbrola     us1 us2 us3 en1                diphone concatenation (MBROLA databases of four
                                          speakers) driven by espeak-ng's front end (``mb-*``
                                          voices); ``-s`` wpm, ``-p`` pitch
pico       en-US en-GB                    SVOX Pico (``pico2wave``); ``<speed>``/``<pitch>``
                                          markup levels in percent
rhvoice    alan bdl clb evgeniy-eng       RHVoice (HTS statistical parametric voices built
           lyubov slt                     from CMU Arctic and other recordings);
                                          ``-r``/``-t`` rate and pitch in percent
festival   kal_diphone ked_diphone        diphone and HTS (statistical parametric) voices;
           cmu_us_slt_arctic_hts          ``Duration_Stretch``
========== ============================== =====================================================

Prosody is given engine-neutrally (:class:`Prosody`: a speaking-rate factor and a pitch
factor) and mapped to each engine's own controls; engines without a pitch control
(festival) ignore it (pitch is also perturbed after synthesis, see
:mod:`~neuroplast.apps.kws.augment`). Every engine's output is resampled by
``sox -R`` (repeatable dither) to 16 kHz mono.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neuroplast.errors import DataError

__all__ = [
    "SR",
    "Prosody",
    "Utterance",
    "Engine",
    "ENGINES",
    "engine",
    "available_engines",
    "synthesize",
    "to_16k",
]

SR = 16000


@dataclass(frozen=True)
class Prosody:
    """Engine-neutral prosody: ``rate`` (speaking-rate factor, 1 = the engine's
    default), ``pitch`` (F0 factor, 1 = the voice's default) and ``gap`` (espeak-ng
    word gap in 10 ms units)."""

    rate: float = 1.0
    pitch: float = 1.0
    gap: int = 0


@dataclass(frozen=True)
class Utterance:
    """One thing to say: ``text`` in ``voice`` of the engine, with ``prosody``."""

    text: str
    voice: str
    prosody: Prosody = Prosody()


@dataclass(frozen=True)
class Engine:
    """A TTS engine: its voices, the programs it needs and its batch synthesiser."""

    name: str
    voices: tuple[str, ...]
    programs: tuple[str, ...]
    apt: str  # Debian packages that provide it
    synth: Callable[[Sequence[Utterance]], list[np.ndarray]]
    data: str = ""  # a voice's data folder ("{voice}" filled in), where voices are packages

    def available(self) -> bool:
        have = all(shutil.which(p) for p in (*self.programs, "sox"))
        return have and all(
            Path(self.data.format(voice=v)).is_dir() for v in self.voices if self.data
        )

    def check(self) -> None:
        if not self.available():
            raise DataError(
                f"TTS engine {self.name!r} needs {', '.join(self.programs)} and sox"
                f"{' and its voices' if self.data else ''}: apt-get install {self.apt} sox"
            )


def to_16k(wav: bytes, what: str) -> np.ndarray:
    """Any WAV (bytes) -> float32 16 kHz mono via ``sox -R`` (repeatable dither)."""
    sox = ["sox", "-R", "-V1", "-G", "-t", "wav", "-", "-r", str(SR), "-c", "1", "-b", "16"]
    sox += ["-e", "signed-integer", "-t", "raw", "-"]
    p = subprocess.run(sox, input=wav, capture_output=True, check=False)
    if p.returncode != 0:
        raise DataError(f"sox failed on {what}: {p.stderr.decode()[:200]}")
    return np.frombuffer(p.stdout, dtype="<i2").astype(np.float32) / 32768.0


def _run(cmd: list[str], what: str, **kw: object) -> bytes:
    p = subprocess.run(cmd, capture_output=True, check=False, **kw)  # type: ignore[call-overload]
    if p.returncode != 0 or (not p.stdout and "--stdout" in cmd):
        raise DataError(f"{what} failed: {p.stderr.decode(errors='replace')[:200]}")
    return p.stdout


def _espeak(items: Sequence[Utterance], prefix: str = "") -> list[np.ndarray]:
    out = []
    for u in items:
        voice = prefix + u.voice
        # espeak-ng: 175 wpm and pitch 50 (0..99) are its defaults
        cmd = ["espeak-ng", "-v", voice, "-s", str(int(round(175 * u.prosody.rate)))]
        cmd += ["-p", str(int(np.clip(round(50 * u.prosody.pitch), 0, 99)))]
        cmd += ["-g", str(int(u.prosody.gap)), "--stdout", u.text]
        out.append(to_16k(_run(cmd, f"espeak-ng voice {voice!r}"), f"espeak-ng {voice}"))
    return out


def _mbrola(items: Sequence[Utterance]) -> list[np.ndarray]:
    """MBROLA diphone voices through espeak-ng's ``mb-<voice>`` front end."""
    return _espeak(items, prefix="mb-")


def _pico(items: Sequence[Utterance]) -> list[np.ndarray]:
    """SVOX Pico: rate and pitch as its ``<speed level>`` / ``<pitch level>`` markup
    (percent of the voice's default; pico accepts 20-500 and 50-200)."""
    out = []
    with tempfile.TemporaryDirectory(prefix="np-pico-") as d:
        path = str(Path(d) / "u.wav")  # pico2wave wants a .wav name
        for u in items:
            speed = int(np.clip(round(100 * u.prosody.rate), 20, 500))
            pitch = int(np.clip(round(100 * u.prosody.pitch), 50, 200))
            text = u.text.replace("<", " ").replace(">", " ")
            markup = f"<speed level='{speed}'><pitch level='{pitch}'>{text}</pitch></speed>"
            _run(["pico2wave", "-l", u.voice, "-w", path, markup], f"pico2wave voice {u.voice!r}")
            out.append(to_16k(Path(path).read_bytes(), f"pico {u.voice}"))
    return out


# flite's voices' default F0 means (Hz), so a pitch factor can be turned into a target
_FLITE_F0 = {"awb": 100.0, "rms": 100.0, "slt": 160.0, "kal": 105.0, "kal16": 105.0}


def _rhvoice(items: Sequence[Utterance]) -> list[np.ndarray]:
    """RHVoice: rate and pitch as ``RHVoice-test -r/-t`` percent of the voice's default
    (100; the text is read from stdin, the 24 kHz WAV written to a file)."""
    out = []
    with tempfile.TemporaryDirectory(prefix="np-rhvoice-") as d:
        path = str(Path(d) / "u.wav")
        for u in items:
            rate = int(np.clip(round(100 * u.prosody.rate), 20, 500))
            pitch = int(np.clip(round(100 * u.prosody.pitch), 50, 200))
            cmd = ["RHVoice-test", "-p", u.voice, "-r", str(rate), "-t", str(pitch), "-o", path]
            _run(cmd, f"RHVoice voice {u.voice!r}", input=u.text.encode())
            out.append(to_16k(Path(path).read_bytes(), f"rhvoice {u.voice}"))
    return out


def _flite(items: Sequence[Utterance]) -> list[np.ndarray]:
    out = []
    with tempfile.TemporaryDirectory(prefix="np-flite-") as d:
        path = str(Path(d) / "u.wav")
        for u in items:
            f0 = _FLITE_F0.get(u.voice, 110.0) * u.prosody.pitch
            cmd = [
                "flite",
                "-voice",
                u.voice,
                "--setf",
                f"duration_stretch={1 / u.prosody.rate:.3f}",
            ]
            cmd += ["--setf", f"int_f0_target_mean={f0:.1f}", "-t", u.text, "-o", path]
            _run(cmd, f"flite voice {u.voice!r}")
            out.append(to_16k(Path(path).read_bytes(), f"flite {u.voice}"))
    return out


def _festival(items: Sequence[Utterance]) -> list[np.ndarray]:
    """All items in one ``festival -b`` process (its start-up costs ~0.4 s)."""
    with tempfile.TemporaryDirectory(prefix="np-festival-") as d:
        lines = []
        for i, u in enumerate(items):
            text = u.text.replace("\\", " ").replace('"', " ")
            lines += [
                f"(voice_{u.voice})",
                f"(Parameter.set 'Duration_Stretch {1 / u.prosody.rate:.3f})",
                f'(utt.save.wave (utt.synth (Utterance Text "{text}")) "{d}/{i}.wav" \'riff)',
            ]
        script = Path(d) / "say.scm"
        script.write_text("\n".join(lines) + "\n")
        _run(["festival", "-b", str(script)], "festival")
        out = []
        for i, u in enumerate(items):
            f = Path(d) / f"{i}.wav"
            if not f.exists():
                raise DataError(f"festival wrote nothing for voice {u.voice!r} ({u.text!r})")
            out.append(to_16k(f.read_bytes(), f"festival {u.voice}"))
    return out


ENGINES: dict[str, Engine] = {
    e.name: e
    for e in (
        Engine("espeak-ng", (), ("espeak-ng",), "espeak-ng", _espeak),
        Engine("flite", ("awb", "rms", "slt", "kal", "kal16"), ("flite",), "flite", _flite),
        Engine(
            "mbrola",
            ("us1", "us2", "us3", "en1"),
            ("espeak-ng", "mbrola"),
            "espeak-ng mbrola mbrola-us1 mbrola-us2 mbrola-us3 mbrola-en1",
            _mbrola,
            data="/usr/share/mbrola/{voice}",
        ),
        Engine("pico", ("en-US", "en-GB"), ("pico2wave",), "libttspico-utils", _pico),
        Engine(
            "rhvoice",
            ("alan", "bdl", "clb", "evgeniy-eng", "lyubov", "slt"),
            ("RHVoice-test",),
            "rhvoice rhvoice-english",
            _rhvoice,
            data="/usr/share/RHVoice/voices/{voice}",
        ),
        Engine(
            "festival",
            ("kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts"),
            ("festival", "text2wave"),
            "festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts",
            _festival,
        ),
    )
}


def engine(name: str) -> Engine:
    """The engine called ``name``; :class:`DataError` naming the known ones otherwise."""
    if name not in ENGINES:
        raise DataError(f"unknown TTS engine {name!r}; known: {', '.join(ENGINES)}")
    return ENGINES[name]


def available_engines() -> list[str]:
    """Engines whose programs are installed."""
    return [n for n, e in ENGINES.items() if e.available()]


def synthesize(engine_name: str, items: Sequence[Utterance]) -> list[np.ndarray]:
    """Speak ``items`` with one engine -> float32 16 kHz clips (one per item)."""
    e = engine(engine_name)
    e.check()
    return e.synth(list(items)) if items else []
