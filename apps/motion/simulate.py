"""Synthetic event movies with ground-truth motion labels (HD-SNN world model).

Scene: a natural-statistics texture (random-phase noise with a 1/f amplitude
spectrum, band-limited and whitened like the paper's van Hateren images, or a
Motion-Cloud-like log-Gabor texture) translated with sub-pixel precision in the
Fourier domain, ``I_t(k) = I_0(k) exp(-2 pi i k . s_t)``. The velocity is one of
12 directions x 3 speeds (``v_k = 0.5 * 2**(2k/3 - 1)`` px/ms = 0.25, 0.397,
0.630; odd speed rings rotated by half a direction step) and switches to a new
random class with probability 1/24 per 1 ms step, so segments last 24 ms on
average. Labels come for free.

Sensor: an ESIM-style DVS pixel. Each pixel keeps a reference log intensity
``r``; while ``|L(t) - r| >= C_xy`` it emits an event of sign ``sign(L - r)`` at
the linearly interpolated crossing time and moves ``r`` by ``+-C_xy``. Thresholds
carry per-pixel mismatch ``C_xy = C (1 + sigma_C n_xy)``; a pixel that fired is
blind for ``refractory_us`` (crossings then are lost and ``r`` follows the
signal); shot-noise events arrive as a Poisson process of ``noise_hz`` per pixel.
Everything is drawn from one ``numpy.random.Generator`` seed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from neuroplast.apps.motion.events import EVENT_DTYPE, make_events
from neuroplast.checks import require_int, require_real, require_seed
from neuroplast.errors import DataError

__all__ = [
    "N_DIRECTIONS",
    "N_SPEEDS",
    "N_CLASSES",
    "SceneParams",
    "DVSParams",
    "Movie",
    "class_velocities",
    "natural_texture",
    "fourier_translate",
    "motion_labels",
    "render_frames",
    "dvs_events",
    "simulate_movie",
    "contrast_for_rate_ratio",
]

N_DIRECTIONS = 12
N_SPEEDS = 3
N_CLASSES = N_DIRECTIONS * N_SPEEDS


@dataclass(frozen=True)
class SceneParams:
    """World model. Sizes in pixels, times in 1 ms steps, speeds in px/ms."""

    size: int = 32  #: side of the sensor crop
    texture_size: int = 64  #: side of the (periodic) texture the crop moves over
    n_steps: int = 128  #: movie length in 1 ms frames
    p_switch: float = 1.0 / 24.0  #: motion switch probability per step
    texture: str = "pink"  #: "pink" (1/f, whitened) or "cloud" (log-Gabor)
    contrast: float = 1.0  #: std of the log intensity
    f_cut: float = 0.4  #: pink texture: whitening cut-off frequency f0 (cycles/px)
    f_peak: float = 0.15  #: cloud texture: peak spatial frequency (cycles/px)
    bandwidth: float = 0.8  #: cloud texture: log-frequency bandwidth
    noise_std: float = 0.001  #: Gaussian noise on the frames (as in the paper)

    def __post_init__(self) -> None:
        n = "SceneParams"
        require_int(DataError, n, 1, size=self.size, texture_size=self.texture_size)
        require_int(DataError, n, 1, n_steps=self.n_steps)
        require_real(DataError, n, 0.0, 1.0, p_switch=self.p_switch)
        require_real(DataError, n, 0.0, contrast=self.contrast, noise_std=self.noise_std)
        require_real(
            DataError, n, 0.0, open_lo=True, f_cut=self.f_cut, f_peak=self.f_peak,
            bandwidth=self.bandwidth,
        )  # fmt: skip


@dataclass(frozen=True)
class DVSParams:
    """ESIM-style pixel. ``threshold`` in log-intensity units; times in microseconds."""

    threshold: float = 0.3
    threshold_mismatch: float = 0.05  #: relative std of per-pixel thresholds
    refractory_us: int = 200
    noise_hz: float = 1.0  #: shot-noise events per pixel per second
    frame_us: int = 1000
    max_events_per_frame: int = 8  #: cap on crossings per pixel per frame

    def __post_init__(self) -> None:
        n = "DVSParams"
        require_real(DataError, n, 0.0, open_lo=True, threshold=self.threshold)
        require_real(DataError, n, 0.0, threshold_mismatch=self.threshold_mismatch)
        require_real(DataError, n, 0.0, noise_hz=self.noise_hz)
        require_int(DataError, n, 0, refractory_us=self.refractory_us)
        require_int(DataError, n, 1, frame_us=self.frame_us)
        require_int(DataError, n, 1, max_events_per_frame=self.max_events_per_frame)


@dataclass(frozen=True)
class Movie:
    """One simulated movie: time-sorted events, per-ms labels and velocities."""

    events: np.ndarray  #: EVENT_DTYPE, t in us from 0
    labels: np.ndarray  #: int64 (n_steps,), class = speed * 12 + direction
    velocity: np.ndarray  #: float64 (n_steps, 2) px/ms as (vx, vy)
    sensor_size: tuple[int, int]  #: (width, height)
    n_steps: int


def class_velocities() -> np.ndarray:
    """Return ``(36, 2)`` velocities ``(vx, vy)`` in px/ms; class = speed*12 + direction."""
    v = np.zeros((N_CLASSES, 2))
    for k in range(N_SPEEDS):
        speed = 0.5 * 2.0 ** (2.0 * k / 3.0 - 1.0)
        offset = np.pi / N_DIRECTIONS if k % 2 else 0.0  # logpol: odd rings half-step
        for d in range(N_DIRECTIONS):
            th = 2.0 * np.pi * d / N_DIRECTIONS + offset
            v[k * N_DIRECTIONS + d] = speed * np.cos(th), speed * np.sin(th)
    return v


def natural_texture(rng: np.random.Generator, params: SceneParams) -> np.ndarray:
    """Return a zero-mean, unit-std periodic texture of side ``texture_size``.

    ``pink``: amplitude ``|F(f)| ~ 1/f`` times the whitening filter ``f exp(-(f/f0)^4)``
    used on natural images (Olshausen & Field), i.e. a flat band with soft cut-off
    at ``f0 = f_cut`` (0.4 by default) cycles/px. ``cloud``: log-Gabor radial envelope
    ``exp(-ln(f/f_peak)^2 / (2 ln(1+B)^2))`` as in Motion Clouds, random phase.
    """
    n = params.texture_size
    fx = np.fft.fftfreq(n)[None, :]
    fy = np.fft.fftfreq(n)[:, None]
    f = np.sqrt(fx**2 + fy**2)
    f[0, 0] = 1.0
    if params.texture == "pink":
        amp = (1.0 / f) * f * np.exp(-((f / params.f_cut) ** 4))
    elif params.texture == "cloud":
        amp = np.exp(-(np.log(f / params.f_peak) ** 2) / (2 * np.log(1 + params.bandwidth) ** 2))
    else:
        raise DataError(f"unknown texture {params.texture!r}; use 'pink' or 'cloud'")
    amp[0, 0] = 0.0
    phase = rng.uniform(0, 2 * np.pi, (n, n))
    img = np.real(np.fft.ifft2(amp * np.exp(1j * phase)))
    return (img - img.mean()) / (img.std() + 1e-12)


def fourier_translate(img: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Translate a periodic image by sub-pixel ``shifts`` ``(n, 2)`` = (dx, dy) pixels.

    ``out[i](y, x) = img(y - dy_i, x - dx_i)`` via ``F^-1[F[img] exp(-2 pi i (fx dx + fy dy))]``.
    Returns ``(n, H, W)`` float64.
    """
    h, w = img.shape
    F = np.fft.fft2(img)
    fx = np.fft.fftfreq(w)[None, None, :]
    fy = np.fft.fftfreq(h)[None, :, None]
    dx = shifts[:, 0][:, None, None]
    dy = shifts[:, 1][:, None, None]
    ramp = np.exp(-2j * np.pi * (fx * dx + fy * dy))
    return np.real(np.fft.ifft2(F[None] * ramp))


def motion_labels(rng: np.random.Generator, n_steps: int, p_switch: float) -> np.ndarray:
    """Per-ms class labels: start uniform, switch to a new uniform class w.p. ``p_switch``."""
    labels = np.empty(n_steps, dtype=np.int64)
    c = int(rng.integers(N_CLASSES))
    switches = rng.random(n_steps) < p_switch
    draws = rng.integers(N_CLASSES, size=n_steps)
    for t in range(n_steps):
        if t and switches[t]:
            c = int(draws[t])
        labels[t] = c
    return labels


def render_frames(
    rng: np.random.Generator, params: SceneParams
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw a texture and trajectory; return (log-intensity frames (n+1, S, S), labels, velocity).

    Frame ``k`` is the scene at time ``k`` ms; the motion during ``[k, k+1)`` is ``labels[k]``.
    """
    tex = natural_texture(rng, params) * params.contrast
    labels = motion_labels(rng, params.n_steps, params.p_switch)
    vel = class_velocities()[labels]
    pos = np.vstack([rng.uniform(0, params.texture_size, (1, 2)), vel]).cumsum(axis=0)
    frames = fourier_translate(tex, pos)
    s = params.size
    o = (params.texture_size - s) // 2
    frames = frames[:, o : o + s, o : o + s]
    frames = frames + params.noise_std * rng.standard_normal(frames.shape)
    return frames, labels, vel


def dvs_events(log_frames: np.ndarray, params: DVSParams, rng: np.random.Generator) -> np.ndarray:
    """Convert log-intensity frames ``(n+1, H, W)`` (1 frame per ``frame_us``) to events.

    ESIM model described in the module docstring; the log intensity is linearly
    interpolated between frames to time the threshold crossings. Time-sorted output.
    """
    log_frames = np.asarray(log_frames, dtype=np.float64)
    if log_frames.ndim != 3 or log_frames.shape[0] < 2:
        raise DataError(f"dvs_events needs frames of shape (n>=2, H, W), got {log_frames.shape}")
    if not np.isfinite(log_frames).all():
        raise DataError("dvs_events: frames contain NaN or Inf")
    if params.threshold <= 0:
        raise DataError(f"DVS threshold must be > 0, got {params.threshold}")
    n, h, w = log_frames.shape
    c = params.threshold * (1.0 + params.threshold_mismatch * rng.standard_normal((h, w)))
    c = np.maximum(c, 0.1 * params.threshold)
    ref = log_frames[0].copy()
    last_t = np.full((h, w), -(10**12), dtype=np.int64)
    yy, xx = np.mgrid[0:h, 0:w]
    ts, xs, ys, ps = [], [], [], []
    fu = params.frame_us
    for k in range(1, n):
        l0, l1 = log_frames[k - 1], log_frames[k]
        t0 = (k - 1) * fu
        dl = l1 - l0
        for _ in range(params.max_events_per_frame):
            diff = l1 - ref
            fire = np.abs(diff) >= c
            if not fire.any():
                break
            sgn = np.sign(diff)
            target = ref + sgn * c
            # interpolated crossing time of the level `target` on the segment l0 -> l1
            with np.errstate(divide="ignore", invalid="ignore"):
                frac = np.where(dl != 0, (target - l0) / dl, 1.0)
            tcross = t0 + np.clip(frac, 0.0, 1.0) * fu
            tc = tcross.astype(np.int64)
            ok = fire & (tc - last_t >= params.refractory_us)
            blind = fire & ~ok
            ref = np.where(fire, target, ref)  # blind pixels lose the crossing but track L
            last_t = np.where(ok, tc, last_t)
            if ok.any():
                ts.append(tc[ok])
                xs.append(xx[ok])
                ys.append(yy[ok])
                ps.append(sgn[ok] > 0)
            del blind
        # pixels still beyond threshold after the cap: snap the reference (saturation)
        far = np.abs(l1 - ref) >= c
        ref = np.where(far, l1 - np.sign(l1 - ref) * np.mod(np.abs(l1 - ref), c), ref)
    if params.noise_hz > 0:
        dur_s = (n - 1) * fu * 1e-6
        k_noise = rng.poisson(params.noise_hz * dur_s * h * w)
        ts.append(rng.integers(0, (n - 1) * fu, k_noise))
        xs.append(rng.integers(0, w, k_noise))
        ys.append(rng.integers(0, h, k_noise))
        ps.append(rng.random(k_noise) < 0.5)
    if not ts:
        return np.empty(0, EVENT_DTYPE)
    ev = make_events(np.concatenate(ts), np.concatenate(xs), np.concatenate(ys), np.concatenate(ps))
    return ev[np.argsort(ev["t"], kind="stable")]


def simulate_movie(
    seed: int, scene: SceneParams | None = None, dvs: DVSParams | None = None
) -> Movie:
    """Render one labelled event movie; identical output for identical ``seed`` and params."""
    require_seed(DataError, "simulate_movie", seed)
    scene = scene or SceneParams()
    dvs = dvs or DVSParams()
    rng = np.random.default_rng(seed)
    frames, labels, vel = render_frames(rng, scene)
    ev = dvs_events(frames, dvs, rng)
    return Movie(ev, labels, vel, (scene.size, scene.size), scene.n_steps)


def contrast_for_rate_ratio(
    seed: int, scene: SceneParams, dvs: DVSParams, ratio: float = 4.0, iters: int = 8
) -> tuple[float, float]:
    """Scene contrast whose event count is ``ratio`` times that at ``scene.contrast``.

    Bisection over the contrast on the same seed (the event count grows monotonically
    with contrast: more log-intensity crossings of the same thresholds). Returns
    ``(contrast, achieved ratio)``.
    """
    n0 = max(1, simulate_movie(seed, scene, dvs).events.size)
    lo, hi = scene.contrast, scene.contrast * 2 * ratio
    best = (lo, 1.0)
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        r = simulate_movie(seed, replace(scene, contrast=mid), dvs).events.size / n0
        if abs(r - ratio) < abs(best[1] - ratio):
            best = (mid, r)
        lo, hi = (mid, hi) if r < ratio else (lo, mid)
    return best
