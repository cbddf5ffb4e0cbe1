"""HD model (torch): causality, mask, pruning, a small training run; the CLI end to end."""

from __future__ import annotations

import numpy as np
import pytest

from neuroplast.apps.motion.events import events_to_voxels
from neuroplast.apps.motion.metrics import accuracy_per_step
from neuroplast.apps.motion.model import (
    HDKernel,
    HDParams,
    TrainParams,
    delay_mask,
    embed_kernel,
    hd_logits_torch,
    hd_pooled_torch,
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
    # a part of the recording: rows keep the recording's time, events only the part's
    part = ["motion", "run", str(tmp_path / "m.npz"), "--kernel", str(kpath)]
    png2 = tmp_path / "part.png"
    res = r.invoke(app, [*part, "--start", "0.02", "--duration", "0.02", "--plot", str(png2)])
    assert res.exit_code == 0 and png2.stat().st_size > 0, res.output
    assert "20-30" in res.output and "30-40" in res.output and "40-50" not in res.output
    res = r.invoke(app, [*part, "--downsample", "2"])
    assert res.exit_code == 0 and "16x16, binned 2x2" in res.output, res.output
    res = r.invoke(app, [*part, "--start", "600"])
    assert isinstance(res.exception, DataError) and "no events from 600 s" in str(res.exception)
    res = r.invoke(app, ["motion", "eval", "--kernel", str(kpath), "--movies", "2"])
    assert res.exit_code == 0 and "per-step accuracy" in res.output
    args = ["motion", "eval", "--kernel", str(kpath), "--movies", "2", "--size", "24"]
    res = r.invoke(app, [*args, "--constant", "--prune", "20"])
    assert res.exit_code == 0, res.output
    assert "per-movie accuracy" in res.output and "constant" in res.output
    res = r.invoke(app, [*args, "--prune", "20", "--basis", "polar"])
    assert res.exit_code != 0 and isinstance(res.exception, DataError)
    res = r.invoke(app, ["motion", "run", str(tmp_path / "nope.npz"), "--kernel", str(kpath)])
    assert res.exit_code != 0 and isinstance(res.exception, DataError)


@pytest.mark.parametrize("kt,k,h", [(5, 3, 12), (7, 5, 16), (4, 5, 11)])
def test_fft_pooled_equals_conv3d_pooled(kt, k, h):
    # the training/eval path (integral images + FFT) against torch's direct conv3d
    rng = np.random.default_rng(kt)
    a = torch.from_numpy((rng.random((2, 2, 20, h, h + 1)) < 0.1).astype(np.float32))
    w = torch.from_numpy(rng.standard_normal((4, 2, kt, k, k)).astype(np.float32))
    b = torch.from_numpy(rng.standard_normal(4).astype(np.float32))
    ref = hd_logits_torch(a, w, b).mean(dim=(3, 4))
    got = hd_pooled_torch(a, w, b)
    assert got.shape == ref.shape
    assert torch.allclose(got, ref, atol=2e-5, rtol=1e-5)


def test_fft_pooled_stride_equals_subsampled_rectified_half():
    # stride folds the spectrum: |W_d * A_d| averaged over every 2nd position
    rng = np.random.default_rng(1)
    a = torch.from_numpy((rng.random((1, 2, 16, 14, 14)) < 0.1).astype(np.float32))
    w = torch.from_numpy(rng.standard_normal((3, 2, 4, 5, 5)).astype(np.float32))
    zero = torch.zeros_like(w)
    wd = torch.stack([w[:, 0], -w[:, 0]], 1)  # W_s = 0: only the rectified half remains
    full = hd_logits_torch(a, wd, None)  # (1, C, T, 10, 10)
    ref = full[..., ::2, ::2].mean(dim=(3, 4))
    assert torch.allclose(hd_pooled_torch(a, wd, None, stride=2), ref, atol=2e-5)
    assert torch.allclose(hd_pooled_torch(a, zero, None), torch.zeros_like(ref))


def test_embed_kernel_is_the_same_layer():
    rng = np.random.default_rng(2)
    small = HDKernel(
        rng.standard_normal((3, 2, 4, 3, 3)).astype(np.float32), np.arange(3, dtype=np.float32)
    )
    big = embed_kernel(small, HDParams(n_classes=3, n_delays=7, kernel=7))
    a = torch.from_numpy((rng.random((1, 2, 15, 12, 12)) < 0.2).astype(np.float32))
    zs = hd_logits_torch(a, torch.from_numpy(small.weight), torch.from_numpy(small.bias))
    zb = hd_logits_torch(a, torch.from_numpy(big.weight), torch.from_numpy(big.bias))
    assert torch.allclose(zs[..., 2:-2, 2:-2], zb, atol=1e-5)  # same on the common grid
    with pytest.raises(DataError):
        embed_kernel(big, HDParams(n_classes=3, n_delays=4, kernel=3))


@pytest.mark.parametrize("basis", ["onoff", "split"])
def test_prune_mask_keeps_pruned_weights_zero(basis):
    from neuroplast.apps.motion.model import prune_mask_of, split_weight

    scene = SceneParams(size=12, texture_size=24, n_steps=20, f_cut=0.15)
    movies = [simulate_movie(s, scene, DVSParams(threshold=0.8)) for s in range(2)]
    vox = [events_to_voxels(m.events, m.sensor_size, m.n_steps) for m in movies]
    hp = HDParams(n_delays=4, kernel=5)
    k0 = init_kernel(hp, 0, velocities=class_velocities())
    kp = prune_kernel(k0, k0.weight.size // 20, basis=basis)
    m = prune_mask_of(kp, basis)
    seen = []
    k1, _ = train_hd(
        vox,
        [mv.labels for mv in movies],
        hp,
        TrainParams(epochs=2, batch=2, lr=1e-2, stride=1),
        init=k0,  # the mask alone prunes it
        prune_mask=m,
        mask_basis=basis,
        on_epoch=lambda ep, k: seen.append(ep),
    )
    assert seen == [0, 1]
    w0, w1 = (k.weight if basis == "onoff" else split_weight(k.weight) for k in (kp, k1))
    assert np.all(w1[~m] == 0)
    assert not np.allclose(w1[m], w0[m])


def test_bad_shapes_raise_data_error():
    w = torch.zeros(2, 2, 3, 5, 5)
    with pytest.raises(DataError, match="smaller than the 5x5 kernel"):
        hd_pooled_torch(torch.zeros(1, 2, 4, 4, 4), w, None)
    hp = HDParams(n_classes=36, n_delays=3, kernel=3)
    vox = [np.zeros((2, 6, 5, 5), bool)]
    with pytest.raises(DataError, match="prune mask"):
        train_hd(vox, [np.zeros(6, np.int64)], hp, TrainParams(epochs=1), prune_mask=np.ones(3))


def test_score_counts_steps_and_the_per_movie_decision():
    from neuroplast.apps.motion.metrics import score

    n_t, n_delays = 30, 5
    labels = np.array([[3] * n_t, [7] * n_t])
    ev = np.zeros((2, n_t, 36))
    ev[0, :, 3] = 1.0  # movie 0: always right
    ev[1, :n_delays, 7] = 1.0  # movie 1: right only during warm-up ...
    ev[1, n_delays:, 19] = 1.0  # ... then class 19: same direction (7 = 19 - 12), other speed
    ev[1, -3:, 19] = 0.0
    ev[1, -3:, 7] = 1.0  # right again for the last 3 steps; the mean still says 19
    s = score(ev, labels, n_delays)
    right = n_t + n_delays + 3
    assert s["per_step_top1"] == pytest.approx(right / (2 * n_t))
    assert s["per_step_top1_after_warmup"] == pytest.approx(
        (n_t - n_delays + 3) / (2 * (n_t - n_delays))
    )
    assert s["per_movie_top1"] == 0.5
    assert s["direction_only"] == 1.0
    assert s["speed_only"] == pytest.approx(right / (2 * n_t))
    switching = labels.copy()
    switching[0, 10:] = 4
    assert "per_movie_top1" not in score(ev, switching, n_delays)


def test_split_pruning_keeps_largest_sum_and_difference_weights():
    from neuroplast.apps.motion.model import prune_mask_of, split_weight

    rng = np.random.default_rng(1)
    k = HDKernel(rng.standard_normal((3, 2, 4, 5, 5)).astype(np.float32), np.zeros(3, np.float32))
    p = prune_kernel(k, 40, basis="split")
    sp, s0 = split_weight(p.weight), split_weight(k.weight)
    assert sum(p.nnz_split) == 40 == int(prune_mask_of(p, "split").sum())
    kept = np.sort(np.abs(sp[sp != 0]))
    assert np.allclose(kept, np.sort(np.abs(s0).ravel())[-40:], atol=1e-6)
    assert np.allclose(sp[sp != 0], s0[sp != 0], atol=1e-6)  # survivors unchanged
    # the stored ON/OFF kernel runs as the pruned (W_s, W_d) pair:
    # z = (W_s * A_s)/2 + |W_d * A_d|/2, by direct conv3d on the sum/difference rasters
    F = torch.nn.functional
    a = F.pad(torch.from_numpy(rng.random((1, 2, 10, 9, 9)) < 0.2).float(), (0, 0, 0, 0, 3, 0))
    ws, wd = (torch.from_numpy(sp[:, i : i + 1]) for i in (0, 1))
    zs = F.conv3d(a[:, :1] + a[:, 1:], ws)
    zd = F.conv3d(a[:, :1] - a[:, 1:], wd)
    ref = (0.5 * zs + 0.5 * zd.abs()).mean((3, 4))
    got = hd_pooled_torch(a[:, :, 3:], torch.from_numpy(p.weight), None)
    assert torch.allclose(got, ref, atol=1e-5)
    with pytest.raises(DataError, match="basis"):
        prune_kernel(k, 4, basis="polar")


def test_contrast_step_hits_the_requested_event_rate_ratio():
    from neuroplast.apps.motion.simulate import contrast_for_rate_ratio

    scene = SceneParams(size=16, texture_size=32, n_steps=120, f_cut=0.15)
    dvs = DVSParams(threshold=0.8)
    c, r = contrast_for_rate_ratio(3, scene, dvs, ratio=4.0)
    n0 = simulate_movie(3, scene, dvs).events.size
    from dataclasses import replace

    n1 = simulate_movie(3, replace(scene, contrast=c), dvs).events.size
    assert n1 / n0 == pytest.approx(r) and r == pytest.approx(4.0, rel=0.05)
    assert c > scene.contrast
