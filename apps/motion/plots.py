"""Figures of the motion app (matplotlib, Agg). Every panel has a title and axis labels.

Directions are colours: hue = direction of the velocity in image coordinates
(``atan2(vy, vx)``, rows grow downwards, as the maps are drawn), value = speed relative
to the fastest class, so a full turn of the colour wheel is a full turn of direction
(no 180-degree ambiguity) and dark means slow, absent or inconsistent motion.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from neuroplast.errors import DataError

__all__ = [
    "velocity_to_rgb",
    "plot_detection",
    "plot_switch_response",
    "plot_pruning",
]


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise DataError("plots need matplotlib: pip install 'neuroplast[apps]'") from None
    return plt


def _save(fig: Any, path: str | Path, dpi: int = 120) -> Path:
    """Save and close; every panel must carry a title or x label, and a y label."""
    for ax in fig.axes:  # a twin axis (shared x) borrows its sibling's title and x label
        sib = ax.get_shared_x_axes().get_siblings(ax)
        if not ax.get_ylabel() or not any(a.get_title() and a.get_xlabel() for a in sib):
            raise DataError(f"motion figure {path}: a panel lacks its title or axis labels")
    fig.savefig(path, dpi=dpi)
    _pyplot().close(fig)
    return Path(path)


def velocity_to_rgb(v: np.ndarray, v_max: float) -> np.ndarray:
    """``(..., 2)`` velocities (vx, vy) px/ms -> ``(..., 3)`` RGB in [0, 1]:
    hue = ``atan2(vy, vx) / 2 pi``, saturation 1, value = ``min(1, |v| / v_max)``."""
    from matplotlib.colors import hsv_to_rgb

    v = np.asarray(v, dtype=np.float64)
    hue = (np.arctan2(v[..., 1], v[..., 0]) / (2 * np.pi)) % 1.0
    val = np.clip(np.hypot(v[..., 0], v[..., 1]) / v_max, 0.0, 1.0)
    return hsv_to_rgb(np.stack([hue, np.ones_like(hue), val], axis=-1))


def _colour_wheel(ax: Any, v_max: float, speeds: np.ndarray | None = None) -> None:
    """The key of :func:`velocity_to_rgb`: velocity (vx, vy) at each point of the disc."""
    n = 101
    g = np.linspace(-v_max, v_max, n)
    vx, vy = np.meshgrid(g, g)
    rgb = velocity_to_rgb(np.stack([vx, vy], -1), v_max)
    rgba = np.concatenate([rgb, (np.hypot(vx, vy) <= v_max)[..., None]], -1)
    ax.imshow(rgba, extent=(-v_max, v_max, v_max, -v_max), origin="upper")
    for s in speeds if speeds is not None else ():
        ax.add_patch(__import__("matplotlib").patches.Circle((0, 0), s, fill=False, lw=0.5))
    ax.set_title("key: velocity", fontsize=8)
    ax.set_xlabel("vx (px/ms)", fontsize=7)
    ax.set_ylabel("vy (px/ms, down)", fontsize=7)
    ax.tick_params(labelsize=6)


def plot_detection(
    det: Any,
    path: str | Path,
    labels: np.ndarray | None = None,
    n_panels: int = 6,
    title: str = "",
    t0_ms: int = 0,
) -> Path:
    """Direction maps of :func:`~neuroplast.apps.motion.detect.detect_stream` output.

    Top row: the per-position direction map (mean local velocity of the winning class)
    at ``n_panels`` windows; middle row (with ``labels``, per-ms classes): the ground
    truth of the same windows; bottom: the global direction per ms (predicted and
    true) and, with labels, the running per-step accuracy. ``t0_ms``: the recording's
    time of the first step (``motion run --start``), so titles and axis keep its clock.
    """
    from neuroplast.apps.motion.simulate import class_velocities

    plt = _pyplot()
    vel = class_velocities()
    v_max = float(np.hypot(*vel.T).max())
    n_maps = len(det.direction_map)
    idx = np.unique(np.linspace(0, n_maps - 1, min(n_panels, n_maps)).astype(int))
    rows = 3 if labels is not None else 2
    fig = plt.figure(figsize=(2.1 * (len(idx) + 1), 2.2 * rows + 0.8))
    gs = fig.add_gridspec(rows, len(idx) + 1, height_ratios=[1] * (rows - 1) + [1.1])
    w = det.window_ms
    for j, m in enumerate(idx):
        i = int(det.map_windows[m])  # the window of the m-th kept map
        ax = fig.add_subplot(gs[0, j])
        ax.imshow(velocity_to_rgb(det.direction_map[m], v_max), interpolation="nearest")
        ax.set_title(f"predicted, {t0_ms + i * w}-{t0_ms + (i + 1) * w} ms", fontsize=7)
        ax.set_xlabel("x (px)", fontsize=6)
        ax.set_ylabel("y (px)", fontsize=6)
        ax.tick_params(labelsize=5)
        if labels is not None:
            seg = np.asarray(labels)[i * w : (i + 1) * w]
            true_v = vel[seg].mean(0) if seg.size else np.zeros(2)
            ax = fig.add_subplot(gs[1, j])
            ax.imshow(velocity_to_rgb(np.broadcast_to(true_v, det.direction_map[m].shape), v_max))
            ax.set_title(f"ground truth, {t0_ms + i * w}-{t0_ms + (i + 1) * w} ms", fontsize=7)
            ax.set_xlabel("x (px)", fontsize=6)
            ax.set_ylabel("y (px)", fontsize=6)
            ax.tick_params(labelsize=5)
    _colour_wheel(fig.add_subplot(gs[0, -1]), v_max, np.unique(np.round(np.hypot(*vel.T), 6)))
    ax = fig.add_subplot(gs[-1, :])
    t = t0_ms + np.arange(len(det.classes))
    ang = np.degrees(np.arctan2(vel[:, 1], vel[:, 0])) % 360
    ax.scatter(
        t, ang[det.classes], s=6, c=velocity_to_rgb(vel[det.classes], v_max), label="predicted"
    )
    if labels is not None:
        lab = np.asarray(labels)[: len(t)]
        ax.plot(t[: len(lab)], ang[lab], "k-", lw=0.8, label="ground truth")
        ax2 = ax.twinx()
        hit = (det.classes[: len(lab)] == lab).astype(float)
        k = max(1, min(len(hit), 2 * w))
        run = np.convolve(hit, np.ones(k), "same") / np.convolve(
            np.ones_like(hit), np.ones(k), "same"
        )
        ax2.plot(t[: len(lab)], 100 * run, c="0.5", lw=1)
        ax2.set_ylabel(f"accuracy, {k}-ms mean (%)", fontsize=7)
        ax2.set_ylim(0, 105)
        ax2.tick_params(labelsize=6)
    ax.set_ylim(-5, 365)
    ax.set_xlabel("time (ms)", fontsize=7)
    ax.set_ylabel("direction (deg, image axes)", fontsize=7)
    ax.set_title("global motion per ms (dot colour = predicted velocity)", fontsize=8)
    ax.legend(fontsize=6, loc="upper left")
    ax.tick_params(labelsize=6)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, path, 110)


def plot_switch_response(
    curves: dict[str, dict[int, float]], path: str | Path, title: str = ""
) -> Path:
    """Per-step accuracy against ms since the last motion switch, one line per model
    (``curves[name][k]`` = accuracy ``k`` ms after a switch, fractions)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for name, c in curves.items():
        ks = sorted(int(k) for k in c)
        ax.plot(ks, [100 * c[k] if k in c else 100 * c[str(k)] for k in ks], "o-", ms=3, label=name)
    ax.axhline(85, ls="--", c="gray", lw=1, label="85 %")
    ax.set_xlabel("ms since the last motion switch (last point: that and later)")
    ax.set_ylabel("per-step accuracy (%)")
    ax.set_ylim(0, 102)
    ax.set_title(title or "Following a motion switch", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def plot_pruning(pruning: dict, path: str | Path) -> Path:
    """Accuracy vs non-zero weights (magnitude pruning, and pruned + retrained when
    present), one panel per test protocol present."""
    from neuroplast.apps.motion.simulate import N_CLASSES

    plt = _pyplot()
    panels = [("accuracy", "switching motion (p = 1/24 per ms)", pruning["peak"])]
    if "peak_constant" in pruning:
        panels.append(
            ("accuracy_constant", "constant motion (paper's test)", pruning["peak_constant"])
        )
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    names = {"onoff": "ON/OFF K", "split": "(W_s, W_d)"}
    sweeps = pruning.get("sweeps") or {pruning.get("basis", "onoff"): pruning["sweep"]}
    curves = [
        (f"pruned, {names[b]} basis", st, sw) for (b, sw), st in zip(sweeps.items(), ("o-", "x--"))
    ]
    for key, style in (("finetuned", "s-"), ("finetuned_256", "^-")):
        if ft := pruning.get(key):
            n, b = ft.get("movies_per_level"), ft.get("basis", "onoff")
            curves.append(
                (f"pruned + retrained, {names[b]} ({n} movies/level)", style, ft["sweep"])
            )
    for ax, (key, title, peak) in zip(axes[0], panels):
        for label, style, sw in curves:
            pts = [(s["nnz"], 100 * s[key]) for s in sw if key in s]
            if pts:
                ax.semilogx(*zip(*pts), style, label=label)
        ax.axhline(100 * (peak - 0.05), ls="--", c="gray", lw=1, label="peak - 5 points")
        ax.axhline(100 / N_CLASSES, ls=":", c="r", lw=1, label="chance")
        ax.set_xlabel("non-zero weights")
        ax.set_ylabel("per-step accuracy (%)")
        ax.set_title(f"HD-SNN pruning: {title}", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)
