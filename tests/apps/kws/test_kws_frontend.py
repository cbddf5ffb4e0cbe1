"""Front end: log-mel against analytic and direct-DFT references, streaming == batch,
delta/LIF encoders against hand-computed traces, clear errors."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from neuroplast.apps.kws import frontend as fe
from neuroplast.errors import DataError


def test_htk_mel_scale_anchor_and_filter_peaks():
    # HTK mel: 1000 Hz is ~1000 mel by construction of the 2595*log10(1+f/700) formula
    assert fe._hz_to_mel(1000.0) == pytest.approx(999.99, abs=0.01)
    p = fe.MelParams()
    fb = fe.mel_filterbank(p)
    assert fb.shape == (p.n_mels, p.n_fft // 2 + 1)
    freqs = np.linspace(0, p.sample_rate / 2, p.n_fft // 2 + 1)
    pts = fe._mel_to_hz(np.linspace(fe._hz_to_mel(p.f_min), fe._hz_to_mel(p.f_max), p.n_mels + 2))
    # each triangle peaks at the FFT bin nearest its centre frequency
    for m in range(p.n_mels):
        assert abs(freqs[np.argmax(fb[m])] - pts[m + 1]) <= p.sample_rate / p.n_fft
    assert fb.min() >= 0 and fb.max() <= 1


def test_log_mel_matches_direct_dft_and_tone_lands_in_its_band():
    p = fe.MelParams()
    t = np.arange(16000) / 16000
    f0 = 1234.0
    x = (0.5 * np.sin(2 * np.pi * f0 * t)).astype(np.float32)
    L = fe.log_mel(x, p)
    assert L.shape == (100, p.n_mels)
    # reference: frame 50 by an explicit DFT matrix (no FFT), same window and filterbank
    k = 50
    start = k * p.hop_length - (p.win_length - p.hop_length)
    frame = x[start : start + p.win_length].astype(np.float64)
    win = np.hanning(p.win_length + 1)[:-1]
    n = np.arange(p.win_length)
    bins = np.arange(p.n_fft // 2 + 1)
    dft = np.exp(-2j * np.pi * np.outer(bins, n) / p.n_fft) @ (frame * win)
    power = np.abs(dft) ** 2 * 4.0 / win.sum() ** 2
    ref = 10 * np.log10(np.maximum(fe.mel_filterbank(p).astype(np.float64) @ power, 1e-10))
    np.testing.assert_allclose(L[k], ref, atol=2e-3)
    # the loudest band contains the tone; a 0.5-amplitude sine is -6 dB per bin, and the
    # band also collects the Hann main lobe (neighbours at -6 dB relative): about -4 dB
    pts = fe._mel_to_hz(np.linspace(fe._hz_to_mel(p.f_min), fe._hz_to_mel(p.f_max), p.n_mels + 2))
    m = int(np.argmax(L[k]))
    assert pts[m] < f0 < pts[m + 2]
    assert -7.0 < L[k].max() < -3.0


def test_streaming_steps_equal_batch_frames():
    p = fe.MelParams()
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(3200) * 0.1).astype(np.float32)
    L = fe.log_mel(x, p)
    st = fe.log_mel_init(p)
    ref = fe.delta_init(p.n_mels)
    S = fe.delta_encode(L)
    for k in range(len(L)):
        frame, st = fe.log_mel_step(x[k * 160 : (k + 1) * 160], st, p)
        np.testing.assert_allclose(frame, L[k], atol=1e-4)
        spk, ref = fe.delta_step(L[k], ref)
        np.testing.assert_array_equal(spk, S[k])


def test_delta_encoder_hand_trace():
    # one band: a ramp of +1 dB per step from the -60 dB start level, then a drop
    d = fe.DeltaParams(threshold_db=3.0, init_db=-60.0, shape_db=())
    L = np.array([-59, -58, -57, -56.5, -55, -54, -53, -70], np.float32)[:, None]
    S = fe.delta_encode(L, d)
    # on when L - ref > 3 (ref moves by 3 each spike): -56.5 - (-60) = 3.5 -> spike, ref -57
    # then -53 - (-57) = 4 -> spike, ref -54; then -70 vs -54 -> off spike
    np.testing.assert_array_equal(S[:, 0], [0, 0, 0, 1, 0, 0, 1, 0])
    np.testing.assert_array_equal(S[:, 1], [0, 0, 0, 0, 0, 0, 0, 1])
    # a batch codes each clip as alone
    batch = fe.delta_encode(np.stack([L, L + 0.0]), d)
    np.testing.assert_array_equal(batch[0], S)
    # from the first frame the code is exactly loudness invariant: +20 dB changes
    # nothing (from the fixed start level it changes the onset)
    both = fe.delta_encode(np.stack([L, L + 20.0]), fe.DeltaParams(init_db=None, shape_db=()))
    np.testing.assert_array_equal(both[0], both[1])
    assert not np.array_equal(*fe.delta_encode(np.stack([L, L + 20.0]), d))


def test_delta_encoder_can_start_at_the_first_frame():
    # init_db=None: the reference is the first frame, so a steady level gives no
    # onset burst, and a clip cut out of a stream is coded like the stream from there
    first = fe.DeltaParams(init_db=None, shape_db=())
    L = np.array([-30, -30, -26, -31, -31], np.float32)[:, None]
    S = fe.delta_encode(L, first)
    np.testing.assert_array_equal(S[:, 0], [0, 0, 1, 0, 0])  # -26 - (-30) = 4 > 3: ref -27
    np.testing.assert_array_equal(S[:, 1], [0, 0, 0, 1, 0])  # -27 - (-31) = 4 > 3: ref -30
    # the fixed -60 dB start instead bursts: 30 dB above it -> on spikes for 9 steps
    burst = fe.delta_encode(
        np.full((12, 1), -30.0, np.float32), fe.DeltaParams(init_db=-60.0, shape_db=())
    )
    assert burst[:, 0].sum() == 9
    # streaming state: NaN until the first frame, then identical to the batch code
    ref = fe.delta_init(1, first)
    assert np.isnan(ref).all()
    for k in range(len(L)):
        spk, ref = fe.delta_step(L[k], ref, first)
        np.testing.assert_array_equal(spk, S[k])


def test_shape_channels_hand_trace():
    # three bands; a level fires while a band is more than d dB above (peak - d)
    p = fe.DeltaParams(shape_db=(6.0, 12.0), shape_floor_db=-70.0, shape_contrast_db=0.0)
    L = np.array([[-20, -25, -30], [-75, -80, -90], [0, -6, -12.5]], np.float32)
    S = fe.delta_encode(L, p)
    assert S.shape == (3, p.groups * 3) == (3, 12)
    shape = S[:, 6:]  # after the on and off groups, level-major
    np.testing.assert_array_equal(shape[0], [1, 1, 0, 1, 1, 1])  # -30 > -26? no; > -32: yes
    np.testing.assert_array_equal(shape[1], [0] * 6)  # peak -75 dB is below the floor
    np.testing.assert_array_equal(shape[2], [1, 0, 0, 1, 1, 0])  # strict: -6 is not > -6
    # invariant to a gain while the peak stays above the floor
    np.testing.assert_array_equal(fe.delta_encode(L[[0, 2]] + 10.0, p)[:, 6:], shape[[0, 2]])
    # streaming gives the batch code, frame by frame
    ref = fe.delta_init(3, p)
    for k in range(len(L)):
        spk, ref = fe.delta_step(L[k], ref, p)
        np.testing.assert_array_equal(spk, S[k])
    assert fe.n_encoder_channels(3, "delta", p) == 12
    assert fe.n_encoder_channels(40, "delta", fe.DeltaParams(shape_db=())) == 80
    # a bundle's JSON gives a list back: stored as the same tuple
    assert fe.DeltaParams(shape_db=[6, 12]) == fe.DeltaParams(shape_db=(6.0, 12.0))
    with pytest.raises(DataError, match="shape_db"):
        fe.DeltaParams(shape_db=(6.0, 0.0))


def test_shape_contrast_gate_silences_flat_frames():
    # P - median > c: a peaked (formant-like) frame keeps its shape spikes, a flat
    # (noise-like) one sends none; the on/off code is not gated
    p = fe.DeltaParams(shape_db=(6.0,), shape_contrast_db=12.0)
    peaked = [0, -20, -30, -30, -30]  # median -30: contrast 30 dB
    flat = [-10, -12, -14, -15, -13]  # median -13: contrast 3 dB
    edge = [0, -3, -12, -12, -20]  # median -12: contrast exactly 12, not > 12
    S = fe.delta_encode(np.array([peaked, flat, edge], np.float32), p)
    np.testing.assert_array_equal(S[:, 10:], [[1, 0, 0, 0, 0], [0] * 5, [0] * 5])
    np.testing.assert_array_equal(S[:, :10], fe.delta_encode(np.array([peaked, flat, edge],
                                  np.float32), fe.DeltaParams(shape_db=()))[:, :10])  # fmt: skip
    ungated = fe.delta_encode(np.array([flat], np.float32), replace(p, shape_contrast_db=0.0))
    np.testing.assert_array_equal(ungated[0, 10:], [1, 1, 1, 1, 1])  # within 6 dB of -10
    with pytest.raises(DataError, match="shape_contrast_db"):
        fe.DeltaParams(shape_contrast_db=-1.0)


def test_lif_encoder_hand_trace():
    p = fe.LIFEncoderParams(beta=0.5, gain=0.1, floor_db=-60.0)
    L = np.full((4, 1), -50.0, np.float32)  # drive 0.1 * 10 = 1.0 per step
    # v: 1.0 (no spike, not > 1), 1.5 -> spike -> 0.5, 1.25 -> spike -> 0.25, 1.125 -> spike
    np.testing.assert_array_equal(fe.lif_encode(L, p)[:, 0], [0, 1, 1, 1])


def test_bad_inputs_raise_data_error():
    with pytest.raises(DataError, match="1-D"):
        fe.log_mel(np.zeros((2, 100)))
    with pytest.raises(DataError, match="NaN"):
        fe.log_mel(np.array([0.0, np.nan] * 200))
    with pytest.raises(DataError, match="fewer than one hop"):
        fe.log_mel(np.zeros(10))
    with pytest.raises(DataError, match="hop_length"):
        fe.log_mel_step(np.zeros(100), fe.log_mel_init())
    with pytest.raises(DataError, match="encoder"):
        fe.encode(np.zeros(1600), encoder="magic")
    with pytest.raises(DataError, match="f_max"):
        fe.MelParams(f_max=9000.0)
