"""Audio conditions and TTS engines: each effect against an analytic expectation."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from neuroplast.apps.kws import augment as A
from neuroplast.apps.kws import tts
from neuroplast.errors import DataError

SR = 16000
needs_sox = pytest.mark.skipif(shutil.which("sox") is None, reason="sox not installed")


def _tone(f: float, seconds: float = 1.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amp * np.sin(2 * np.pi * f * t)).astype(np.float32)


def _peak_hz(x: np.ndarray) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / SR)[np.argmax(spec)])


@pytest.mark.parametrize("rt60", [0.2, 0.6])
def test_room_impulse_decays_at_its_rt60_and_drr(rt60):
    rng = np.random.default_rng(1)
    h = A.room_impulse(rng, rt60, drr_db=6.0).astype(np.float64)
    assert h[0] == 1.0
    # direct-to-reverberant energy ratio exactly as asked
    assert 10 * np.log10(1.0 / np.sum(h[1:] ** 2)) == pytest.approx(6.0, abs=1e-6)
    # Schroeder backward integration of the tail: its -5..-25 dB slope, extrapolated to
    # -60 dB, is the reverberation time
    edc = np.cumsum(h[1:][::-1] ** 2)[::-1]
    edc_db = 10 * np.log10(edc / edc[0])
    t = np.arange(len(edc_db)) / SR
    m = (edc_db < -5) & (edc_db > -25)
    slope = np.polyfit(t[m], edc_db[m], 1)[0]
    assert -60.0 / slope == pytest.approx(rt60, rel=0.2)


def test_reverberate_is_linear_convolution():
    rng = np.random.default_rng(0)
    x, h = rng.standard_normal(300).astype(np.float32), rng.standard_normal(50).astype(np.float32)
    np.testing.assert_allclose(A.reverberate(x, h), np.convolve(x, h)[:300], atol=1e-4)


def test_band_limit_passes_the_band_and_removes_the_rest():
    x = _tone(1000) + _tone(6000)
    y = A.band_limit(x, 300.0, 3400.0)
    spec = np.abs(np.fft.rfft(y)) / (SR / 2)
    f = np.fft.rfftfreq(SR, 1 / SR)
    assert spec[f == 1000][0] == pytest.approx(0.5, rel=0.02)
    assert spec[f == 6000][0] < 1e-3


def test_mix_at_snr_sets_the_ratio():
    rng = np.random.default_rng(3)
    x = _tone(440)
    n = A.noise("white", len(x), rng)
    y = A.mix_at_snr(x, n, 10.0)
    noise_part = y - x
    snr = 10 * np.log10(np.mean(x**2) / np.mean(noise_part**2))
    assert snr == pytest.approx(10.0, abs=0.05)


@pytest.mark.parametrize("kind,slope", [("pink", -1.0), ("brown", -2.0), ("white", 0.0)])
def test_coloured_noise_has_its_spectral_slope(kind, slope):
    rng = np.random.default_rng(5)
    w = A.noise(kind, 2**16, rng)
    assert np.sqrt(np.mean(w**2)) == pytest.approx(1.0, rel=1e-3)
    p = np.abs(np.fft.rfft(w)) ** 2
    f = np.fft.rfftfreq(len(w), 1 / SR)
    m = (f > 100) & (f < 4000)
    fit = np.polyfit(np.log10(f[m]), np.log10(p[m]), 1)[0]  # power ~ f^slope
    assert fit == pytest.approx(slope, abs=0.15)


def test_babble_and_hum_and_bad_kind():
    rng = np.random.default_rng(2)
    pool = _tone(300, 3.0)
    b = A.noise("babble", SR, rng, pool)
    assert np.sqrt(np.mean(b**2)) == pytest.approx(1.0, rel=1e-3)
    assert abs(_peak_hz(b) - 300) < 5  # made of the pool's speech (here a tone)
    hum = A.noise("hum", SR, rng)
    assert _peak_hz(hum) in (50.0, 60.0)  # mains fundamental dominates
    with pytest.raises(DataError, match="noise kind"):
        A.noise("rain", SR, rng)


@needs_sox
def test_sox_pitch_scales_frequency_and_tempo_scales_duration():
    x = _tone(500)
    y = A.sox_effects(x, pitch_cents=1200.0)  # one octave up, same duration
    assert abs(len(y) - len(x)) < 0.02 * SR
    assert _peak_hz(y[2000:-2000]) == pytest.approx(1000.0, abs=10)
    z = A.sox_effects(x, tempo=2.0)  # twice as fast, same pitch
    assert len(z) == pytest.approx(len(x) / 2, rel=0.05)
    assert _peak_hz(z[1000:-1000]) == pytest.approx(500.0, abs=10)


@needs_sox
@pytest.mark.parametrize("codec", A.CODECS)
def test_codec_roundtrip_is_lossy_but_keeps_the_signal(codec):
    if codec == "opus" and shutil.which("opusenc") is None:
        pytest.skip("opus-tools not installed")
    x = _tone(440) * np.linspace(0, 1, SR, dtype=np.float32)  # not stationary
    y = A.codec_roundtrip(x, codec, kbps=16)
    assert abs(len(y) - len(x)) < 0.1 * SR
    assert not np.allclose(y[: len(x)], x[: len(y)], atol=1e-3)  # really encoded
    assert abs(_peak_hz(y) - 440) < 10  # the tone survives
    with pytest.raises(DataError, match="codec"):
        A.codec_roundtrip(x, "flac")


@needs_sox
def test_channel_draw_is_reproducible_and_apply_keeps_the_length():
    ch = A.Channel(p_codec=1.0, codecs=("gsm",), p_room=1.0, p_noise=1.0, noises=("pink",))
    a, b = ch.draw(np.random.default_rng(7)), ch.draw(np.random.default_rng(7))
    assert a == b and a.codec == "gsm" and a.rt60 > 0 and a.noise == "pink"
    assert "room" in a.tags() and "codec:gsm" in a.tags()
    rng = np.random.default_rng(0)
    src = A.apply_source(_tone(300, 0.5), a, rng)
    assert len(src) >= int(0.5 * SR)  # the room adds a tail
    y = A.apply_channel(np.resize(src, SR), a, rng)
    assert y.shape == (SR,) and np.abs(y).max() <= 1.0
    assert A.Condition().tags() == ["clean"]


@pytest.mark.parametrize("name", sorted(tts.ENGINES))
def test_each_installed_engine_speaks(name):
    e = tts.engine(name)
    if not e.available():
        pytest.skip(f"{name} not installed ({e.apt})")
    voices = e.voices or ("en-us+m3",)
    clips = tts.synthesize(name, [tts.Utterance("yes", v, tts.Prosody(rate=1.1)) for v in voices])
    for c in clips:
        voiced = np.flatnonzero(np.abs(c) > 0.05 * np.abs(c).max())
        assert c.dtype == np.float32 and np.abs(c).max() > 0.05
        assert 0.1 < (voiced[-1] - voiced[0]) / SR < 1.5  # a word, not silence or a sentence


def test_unknown_engine_is_refused():
    with pytest.raises(DataError, match="unknown TTS engine"):
        tts.synthesize("sam", [tts.Utterance("yes", "x")])
