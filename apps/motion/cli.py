"""``neuroplast motion ...``: simulate | train | eval | run EVENTS.

Thin wrappers over :mod:`neuroplast.apps.motion`; long work shows progress and
results are rich tables.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from neuroplast.paths import output_dir

__all__ = ["register"]

KERNEL = output_dir("motion", "motion_kernel.npz")  # `motion train` writes, eval/run read

_ARROWS = "→↗↑↖←↙↓↘"


def _console() -> Any:
    from rich.console import Console

    return Console()


def _arrow(vx: float, vy: float) -> str:
    import math

    # image rows grow downwards: flip y so that "up" on screen is up
    ang = math.atan2(-vy, vx) % (2 * math.pi)
    return _ARROWS[int(round(ang / (math.pi / 4))) % 8]


def register(app: Any) -> None:
    """Add the ``motion`` command group to the ``neuroplast`` typer app."""
    import typer

    motion = typer.Typer(
        help="Event-camera motion detection with heterogeneous synaptic delays (HD-SNN).",
        no_args_is_help=True,
    )
    app.add_typer(motion, name="motion")

    @motion.command("simulate")
    def simulate_cmd(
        out: Path = typer.Argument(
            ..., help="events file to write (.npz, .npy, .raw, .aedat4, .dat or .es)"
        ),
        seed: int = typer.Option(0),
        steps: int = typer.Option(200, help="movie length in ms"),
        size: int = typer.Option(32, help="sensor side in pixels"),
        contrast: float = typer.Option(1.0, help="log-intensity std (x4 ~ x4 events)"),
        fmt: str = typer.Option(
            "evt3", "--format", help="raw format when OUT ends in .raw: evt2|evt3"
        ),
    ) -> None:
        """Simulate a labelled movie of a natural texture moving in 36 motion classes.

        Labels go into the .npz, or beside any other format as NAME.labels.npy.

        \b
        Examples:
            neuroplast motion simulate movie.npz --steps 500
            neuroplast motion simulate movie.raw --format evt3
        """
        import numpy as np

        from neuroplast.apps.motion.datasets import DEFAULT_DVS, DEFAULT_SCENE
        from neuroplast.apps.motion.io import write_events
        from neuroplast.apps.motion.simulate import SceneParams, simulate_movie

        scene = SceneParams(
            size=size,
            texture_size=2 * size,
            n_steps=steps,
            f_cut=DEFAULT_SCENE.f_cut,
            contrast=contrast,
        )
        m = simulate_movie(seed, scene, DEFAULT_DVS)
        write_events(out, m.events, m.sensor_size, version=fmt, labels=m.labels)
        if out.suffix.lower() != ".npz":
            np.save(out.with_suffix(".labels.npy"), m.labels)
        _console().print(
            f"wrote {out}: {m.events.size} events, {size}x{size}, {steps} ms, "
            f"{1 + int(np.count_nonzero(np.diff(m.labels)))} motion segments"
        )

    @motion.command("train")
    def train_cmd(
        out: Path = typer.Option(KERNEL, help="kernel file to write"),
        movies: int = typer.Option(64, help="training movies"),
        epochs: int = typer.Option(4),
        lr: float = typer.Option(1e-2),
        seed: int = typer.Option(0),
        n_delays: int = typer.Option(12, help="K_T, ms (paper: 21)"),
        kernel_size: int = typer.Option(9, help="K_X = K_Y, px, odd (paper: 17)"),
        size: int = typer.Option(32, help="training sensor side, px"),
        threshold: float = typer.Option(0.8, help="DVS contrast threshold (log units)"),
    ) -> None:
        """Train the HD layer with PyTorch on simulated movies (CPU, 1 thread).

        \b
        Examples:
            neuroplast motion train --movies 64 --epochs 4
        """
        import torch

        from neuroplast.apps.motion.datasets import make_dataset, sensor_setup
        from neuroplast.apps.motion.model import HDParams, TrainParams, train_hd
        from neuroplast.checks import require_int
        from neuroplast.errors import DataError
        from neuroplast.progress import Progress

        torch.set_num_threads(1)
        # every setting checked before the movies are simulated
        hp, tp = (
            HDParams(n_delays=n_delays, kernel=kernel_size),
            TrainParams(epochs=epochs, lr=lr, seed=seed, stride=1),
        )
        sensor = sensor_setup(size, threshold)
        require_int(DataError, "motion train", 1, 10**6, movies=movies)
        out.parent.mkdir(parents=True, exist_ok=True)  # before the work, not after it
        with Progress(f"simulating {movies} movies") as bar:
            bar.update(0)
            x, y, _ = make_dataset(range(seed * 100_000, seed * 100_000 + movies), *sensor)
            bar.update(movies, total=movies)
        with Progress("training (steps)") as bar:

            def cb(step: int, total: int, loss: float) -> None:
                bar.update(step, f"loss {loss:.3f}", total=total)

            kern, losses = train_hd(list(x), list(y), hp, tp, cb)
        kern.save(out)
        _console().print(f"wrote {out}: weight {kern.weight.shape}, losses {losses}")

    @motion.command("eval")
    def eval_cmd(
        kernel: Path = typer.Option(KERNEL),
        movies: int = typer.Option(50, help="held-out movies"),
        prune: float = typer.Option(1.0, help="keep 1/PRUNE of the weights (largest |w|)"),
        basis: str = typer.Option("split", help="pruning basis: split (W_s, W_d) or onoff"),
        size: int = typer.Option(64, help="sensor side, px (paper: 128)"),
        threshold: float = typer.Option(0.8, help="DVS contrast threshold (log units)"),
        constant: bool = typer.Option(
            False, help="one motion per movie (the paper's test world) instead of switches"
        ),
    ) -> None:
        """Per-time-step 36-class accuracy on held-out movies.

        \b
        Examples:
            neuroplast motion eval --movies 50
            neuroplast motion eval --prune 20 --constant
        """
        import torch
        from rich.table import Table

        from neuroplast.apps.motion.datasets import held_out_movies, sensor_setup
        from neuroplast.apps.motion.metrics import score
        from neuroplast.apps.motion.model import HDKernel, predict_dense, prune_kernel

        torch.set_num_threads(1)
        k = HDKernel.load(kernel)
        if prune > 1:
            k = prune_kernel(k, int(k.weight.size / prune), basis=basis)
        x, y, _ = held_out_movies(movies, *sensor_setup(size, threshold), constant=constant)
        sc = score(predict_dense(k, x), y, k.n_delays)
        n_s, n_d = k.nnz_split
        t = Table(title=f"motion eval: {kernel}")
        t.add_column("item")
        t.add_column("value", justify="right")
        rows = [
            ("movies", f"{movies} ({'constant' if constant else 'switching'} motion)"),
            ("non-zero weights (W_s + W_d)", f"{n_s + n_d:,} / {k.weight.size:,}"),
            ("taps per event", f"{n_d:,}"),
            ("per-step accuracy", f"{sc['per_step_top1']:.1%}"),
            (f"after the first {k.n_delays} ms", f"{sc['per_step_top1_after_warmup']:.1%}"),
        ]
        if "per_movie_top1" in sc:
            rows.append(("per-movie accuracy", f"{sc['per_movie_top1']:.1%}"))
        rows.append(("chance", f"{1 / 36:.1%}"))
        for a, b in rows:
            t.add_row(a, b)
        _console().print(t)

    @motion.command("run")
    def run_cmd(
        events: Path = typer.Argument(
            ..., help=".npz, .npy, .raw (EVT 2/2.1/3), .aedat4, .dat, .es"
        ),
        kernel: Path = typer.Option(KERNEL),
        window: int = typer.Option(10, help="window of the direction map, ms"),
        width: int = typer.Option(0, help="sensor width if the file does not say"),
        height: int = typer.Option(0, help="sensor height if the file does not say"),
        downsample: int = typer.Option(
            1, help="bin events to SxS-pixel blocks (large sensors; speeds stay in sensor px)"
        ),
        start: float = typer.Option(0.0, help="skip this many seconds after the first event"),
        duration: float = typer.Option(
            0.0, help="run this many seconds from --start (0: to the end)"
        ),
        prune: float = typer.Option(1.0, help="keep 1/PRUNE of the weights"),
        basis: str = typer.Option("split", help="pruning basis: split (W_s, W_d) or onoff"),
        plot: Path | None = typer.Option(
            None, help="PNG: direction/speed maps (HSV, colour wheel), ground truth, accuracy"
        ),
    ) -> None:
        """Run the event-driven layer on a recording; print the motion over time.

        \b
        Examples:
            neuroplast motion run recording.raw --plot directions.png
            neuroplast motion run movie.npz --window 20
            neuroplast motion run recording.raw --start 60 --duration 10
            neuroplast motion run prophesee.raw --downsample 4
        """
        import numpy as np
        from rich.table import Table

        from neuroplast.apps.motion.detect import detect_stream
        from neuroplast.apps.motion.event_layer import fast_backend
        from neuroplast.apps.motion.io import read_events, read_labels
        from neuroplast.apps.motion.model import HDKernel, prune_kernel
        from neuroplast.checks import require_int, require_real
        from neuroplast.errors import DataError

        require_real(DataError, "motion run", 0.0, 1e9, start=start, duration=duration)
        require_int(DataError, "motion run", 1, 1024, downsample=downsample)
        given = (width, height) if width and height else None
        ev, size = read_events(events, given)
        labels = read_labels(events)
        offset = 0  # ms from the recording's first event to the part's (rows, labels)
        if (start or duration) and ev.size:
            t = ev["t"].astype(np.int64)
            t_first, t0 = int(t.min()), int(t.min()) + round(start * 1e6)
            ev = ev[(t >= t0) & ((t < t0 + round(duration * 1e6)) if duration else True)]
            if ev.size == 0:
                span = f" for {duration:g} s" if duration else ""
                raise DataError(f"{events} holds no events from {start:g} s{span}")
            offset = (int(ev["t"].min()) - t_first) // 1000
            if labels is not None:  # per ms from the first event
                labels = labels[offset:]
        size = given or size
        if size is None:
            if ev.size == 0:
                raise DataError(f"{events} holds no events")
            size = (int(ev["x"].max()) + 1, int(ev["y"].max()) + 1)
        if downsample > 1:  # the layer sees S x S blocks; duplicates merge per ms and block
            ev = ev.copy()
            ev["x"] //= downsample
            ev["y"] //= downsample
            size = (-(-size[0] // downsample), -(-size[1] // downsample))
        k = HDKernel.load(kernel)
        if prune > 1:
            k = prune_kernel(k, int(k.weight.size / prune), basis=basis)
        det = detect_stream(k, ev, size, window_ms=window, backend=fast_backend())
        binned = f", binned {downsample}x{downsample}" if downsample > 1 else ""
        t = Table(title=f"motion in {events} ({ev.size} events, {size[0]}x{size[1]}{binned})")
        for c in ("t (ms)", "events", "dir", "angle (ccw, up=90)", "speed px/ms", "class"):
            t.add_column(c, justify="right")
        if labels is not None:
            t.add_column("true", justify="right")
        for i, (c, v) in enumerate(zip(det.window_class, det.window_velocity)):
            ang = float(np.degrees(np.arctan2(-v[1], v[0])) % 360)
            row = [
                f"{offset + i * window}-{offset + (i + 1) * window}",
                str(int(det.events_per_window[i])),
                _arrow(*v),
                f"{ang:.0f}",
                f"{downsample * np.hypot(*v):.3f}",
                str(int(c)),
            ]
            if labels is not None:
                seg = labels[i * window : (i + 1) * window]
                row.append(str(int(np.bincount(seg).argmax())) if seg.size else "-")
            t.add_row(*row)
        _console().print(t)
        if plot is not None:
            from neuroplast.apps.motion.plots import plot_detection

            plot_detection(det, plot, labels, title=f"HD-SNN motion in {events.name}", t0_ms=offset)
            _console().print(f"wrote {plot}")
