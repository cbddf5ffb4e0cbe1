"""Simulator: analytic DVS cases, Fourier translation, labels, determinism, motion in events."""

from __future__ import annotations

import numpy as np
import pytest

from neuroplast.apps.motion.events import events_to_voxels
from neuroplast.apps.motion.simulate import (
    DVSParams,
    SceneParams,
    class_velocities,
    dvs_events,
    fourier_translate,
    motion_labels,
    natural_texture,
    render_frames,
    simulate_movie,
)
from neuroplast.errors import DataError

SMALL = SceneParams(size=16, texture_size=32, n_steps=40, f_cut=0.15)


def _exact(**kw):
    return DVSParams(threshold_mismatch=0.0, noise_hz=0.0, refractory_us=0, **kw)


def test_dvs_ramp_crossing_times():
    # one pixel, log intensity ramps 0 -> 1.05 in one 1 ms frame, C = 0.2:
    # 5 ON events at the crossings k*0.2/1.05 ms (truncated to us)
    frames = np.array([0.0, 1.05]).reshape(2, 1, 1)
    ev = dvs_events(frames, _exact(threshold=0.2), np.random.default_rng(0))
    want = [int(k * 0.2 / 1.05 * 1000) for k in range(1, 6)]
    assert ev["t"].tolist() == pytest.approx(want, abs=1)
    assert ev["p"].all()
    # falling ramp: OFF events
    ev = dvs_events(-frames, _exact(threshold=0.2), np.random.default_rng(0))
    assert ev.size == 5 and not ev["p"].any()


def test_dvs_refractory_and_reference():
    frames = np.array([0.0, 1.05]).reshape(2, 1, 1)
    # crossings 190 us apart; a 300 us refractory keeps the 1st, 3rd and 5th
    p = DVSParams(threshold=0.2, threshold_mismatch=0.0, noise_hz=0.0, refractory_us=300)
    ev = dvs_events(frames, p, np.random.default_rng(0))
    assert ev.size == 3
    # the reference is per pixel and persistent: 0 -> 0.15 -> 0.3 gives one event (at 0.2)
    frames = np.array([0.0, 0.15, 0.3]).reshape(3, 1, 1)
    ev = dvs_events(frames, _exact(threshold=0.2), np.random.default_rng(0))
    assert ev.size == 1 and 1000 <= ev["t"][0] < 2000


def test_dvs_noise_rate_is_poisson():
    frames = np.zeros((1001, 8, 8))  # static: only noise events
    p = DVSParams(noise_hz=200.0, threshold_mismatch=0.0)
    ev = dvs_events(frames, p, np.random.default_rng(1))
    lam = 200.0 * 1.0 * 64  # rate x 1 s x pixels
    assert abs(ev.size - lam) < 5 * np.sqrt(lam)


def test_dvs_rejects_bad_input():
    with pytest.raises(DataError, match="NaN"):
        dvs_events(np.full((3, 2, 2), np.nan), DVSParams(), np.random.default_rng(0))
    with pytest.raises(DataError, match="shape"):
        dvs_events(np.zeros((1, 2, 2)), DVSParams(), np.random.default_rng(0))


def test_fourier_translate_integer_shift_is_roll():
    img = natural_texture(np.random.default_rng(0), SceneParams(texture_size=16, f_cut=0.15))
    out = fourier_translate(img, np.array([[3.0, -2.0], [0.5, 0.0]]))
    assert np.allclose(out[0], np.roll(img, (-2, 3), axis=(0, 1)), atol=1e-10)
    # half-pixel shift twice = one pixel
    twice = fourier_translate(out[1], np.array([[0.5, 0.0]]))[0]
    assert np.allclose(twice, np.roll(img, 1, axis=1), atol=1e-10)


def test_class_velocities_match_paper():
    v = class_velocities()
    speeds = np.linalg.norm(v, axis=1).reshape(3, 12)
    assert np.allclose(speeds[:, 0], [0.25, 0.5 * 2 ** (-1 / 3), 0.5 * 2 ** (1 / 3)])
    ang = np.degrees(np.arctan2(v[:, 1], v[:, 0])).reshape(3, 12)
    assert ang[0, 1] == pytest.approx(30.0) and ang[1, 0] == pytest.approx(15.0)


def test_labels_switch_every_24_ms_on_average():
    lab = motion_labels(np.random.default_rng(0), 100_000, 1 / 24)
    n_seg = 1 + np.count_nonzero(np.diff(lab))
    # switches to the same class are invisible: expected visible rate (1/24)(35/36)
    assert 100_000 / n_seg == pytest.approx(24 * 36 / 35, rel=0.05)
    assert set(np.unique(lab)) == set(range(36))


def test_movie_is_deterministic_and_events_carry_the_motion():
    a = simulate_movie(7, SMALL)
    b = simulate_movie(7, SMALL)
    c = simulate_movie(8, SMALL)
    assert np.array_equal(a.events, b.events) and np.array_equal(a.labels, b.labels)
    assert not np.array_equal(a.events, c.events)
    assert np.all(np.diff(a.events["t"]) >= 0)
    # frames move by exactly the labelled velocity (Fourier translation)
    rng = np.random.default_rng(3)
    scene = SceneParams(size=32, texture_size=32, n_steps=20, f_cut=0.15, noise_std=0.0)
    fr, lab, vel = render_frames(rng, scene)
    for t in range(19):
        back = fourier_translate(fr[t + 1], -vel[t][None])[0]
        assert np.allclose(back, fr[t], atol=1e-9)


def test_event_density_in_paper_range():
    m = simulate_movie(0, SceneParams(n_steps=60, f_cut=0.15), DVSParams(threshold=1.2))
    dens = events_to_voxels(m.events, m.sensor_size, m.n_steps).mean()
    assert 0.01 < dens < 0.15  # paper: 6.1 % of polarity-voxels
