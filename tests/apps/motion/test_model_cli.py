"""HD model (torch): causality, mask, pruning, a small training run; the CLI end to end."""

from __future__ import annotations

import numpy as np
import pytest

from neuroplast.apps.motion.events import events_to_voxels
from neuroplast.apps.motion.model import (
    HDKernel,
    HDParams,
    TrainParams,
    accuracy_per_step,
    delay_mask,
    hd_logits_torch,
    init_kernel,
    predict_dense,
    prune_kernel,
    train_hd,
)
from neuroplast.apps.motion.simulate import DVSParams, SceneParams, class_velocities, simulate_movie
from neuroplast.errors import DataError

torch = pytest.importorskip("torch")


def test_impulse_is_causal():
    # the reference notebook's unit test: an impulse at t only affects outputs >= t
    k = init_kernel(HDParams(n_classes=3, n_delays=5, kernel=3), 0)
    a = torch.zeros(1, 2, 12, 5, 5)
    a[0, 1, 6, 2, 2] = 1.0
    b = torch.from_numpy(k.bias)
    z = hd_logits_torch(a, torch.from_numpy(k.weight), b) - b[None, :, None, None, None]
    # zero input gives max(0, 0) = 0; the impulse gives max(W_on, W_off) per tap
    moved = z.abs().amax(dim=(0, 1, 3, 4)).numpy() > 0
    assert moved.tolist() == [6 <= t < 11 for t in range(12)]


def test_delay_mask_widens_with_delay():
    m = delay_mask(HDParams())
    assert m.shape == (12, 9, 9)
    assert m[-1, 4, 4] == pytest.approx(1.0)  # zero delay: centre only
    assert m[-1].sum() < 1.01
    assert m[0].sum() > 20 * m[-1].sum()  # longest delay: broad support


def test_prune_keeps_largest_magnitudes():
    rng = np.random.default_rng(0)
    k = HDKernel(rng.standard_normal((2, 2, 3, 3, 3)).astype(np.float32), np.zeros(2, np.float32))
    p = prune_kernel(k, 10)
    assert p.nnz == 10
    kept = np.sort(np.abs(p.weight[p.weight != 0]))
    assert np.allclose(kept, np.sort(np.abs(k.weight).ravel())[-10:])
    assert prune_kernel(k, 0).nnz == 0


def test_small_training_learns_motion():
    scene = SceneParams(size=16, texture_size=32, n_steps=40, f_cut=0.15)
    dvs = DVSParams(threshold=1.2)
    movies = [simulate_movie(s, scene, dvs) for s in range(6)]
    vox = [events_to_voxels(m.events, m.sensor_size, m.n_steps) for m in movies]
    lab = [m.labels for m in movies]
    hp = HDParams(n_delays=8, kernel=7)
    torch.manual_seed(0)
    k, losses = train_hd(vox, lab, hp, TrainParams(epochs=8, batch=6, lr=2e-2, stride=1))
    assert losses[-1] < losses[0] - 0.3
    acc = accuracy_per_step(predict_dense(k, np.stack(vox)), np.stack(lab))
    assert acc > 5 / 36  # well above chance on the training movies
    with pytest.raises(DataError):
        train_hd([], [], hp)


def test_kernel_file_roundtrip_and_errors(tmp_path):
    k = init_kernel(HDParams(n_classes=4, n_delays=3, kernel=3), 0)
    k.save(tmp_path / "k.npz")
    k2 = HDKernel.load(tmp_path / "k.npz")
    assert np.array_equal(k.weight, k2.weight)
    (tmp_path / "bad.npz").write_bytes(b"junk")
    with pytest.raises(DataError):
        HDKernel.load(tmp_path / "bad.npz")


def test_cli_simulate_run_eval(tmp_path):
    typer = pytest.importorskip("typer")
    from typer.testing import CliRunner

    from neuroplast.apps.motion.cli import register

    app = typer.Typer()
    register(app)
    r = CliRunner()
    kpath = tmp_path / "k.npz"
    init_kernel(HDParams(), 0, class_velocities()).save(kpath)
    res = r.invoke(app, ["motion", "simulate", str(tmp_path / "m.npz"), "--steps", "60"])
    assert res.exit_code == 0, res.output
    res = r.invoke(app, ["motion", "simulate", str(tmp_path / "m.raw"), "--steps", "30"])
    assert res.exit_code == 0, res.output
    png = tmp_path / "map.png"
    res = r.invoke(
        app,
        ["motion", "run", str(tmp_path / "m.npz"), "--kernel", str(kpath), "--plot", str(png)],
    )
    assert res.exit_code == 0, res.output
    assert "0-10" in res.output and "50-60" in res.output and png.stat().st_size > 0
    res = r.invoke(app, ["motion", "run", str(tmp_path / "m.raw"), "--kernel", str(kpath)])
    assert res.exit_code == 0, res.output
    res = r.invoke(app, ["motion", "eval", "--kernel", str(kpath), "--movies", "2"])
    assert res.exit_code == 0 and "per-step accuracy" in res.output
    res = r.invoke(app, ["motion", "run", str(tmp_path / "nope.npz"), "--kernel", str(kpath)])
    assert res.exit_code != 0 and isinstance(res.exception, DataError)
