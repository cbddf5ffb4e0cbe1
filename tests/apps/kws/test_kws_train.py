"""Stream-crop training option (``TrainConfig.context_prob`` / ``context_steps``)."""

from __future__ import annotations

import numpy as np
import pytest

from neuroplast.apps.kws.train import stream_crops
from neuroplast.errors import DataError


def _pool(n: int, T: int, C: int) -> np.ndarray:
    """Raster ``j`` holds ``1000 j + t + 1`` at step ``t`` in every channel, so any copied
    window tells which raster and which steps it came from."""
    j = np.arange(n)[:, None, None]
    t = np.arange(T)[None, :, None]
    return np.broadcast_to(1000 * j + t + 1, (n, T, C)).astype(np.float32)


def test_clip_is_kept_after_the_context_and_context_is_one_contiguous_window():
    rng = np.random.default_rng(0)
    B, T, C, steps = 400, 12, 3, 5
    x = rng.integers(0, 2, (B, T, C)).astype(np.float32)
    pool = _pool(7, 20, C)
    out = stream_crops(x, pool, 0.5, steps, rng)
    assert out.shape == (B, steps + T, C)
    np.testing.assert_array_equal(out[:, steps:], x)  # label steps untouched
    ctx = out[:, :steps, 0]
    with_ctx = (ctx != 0).any(1)
    assert np.all((ctx != 0).all(1) == with_ctx)  # all context or none (silence)
    for row in ctx[with_ctx]:
        j, t = np.divmod(row.astype(int) - 1, 1000)
        assert np.all(j == j[0]) and 0 <= j[0] < 7  # one pool raster
        np.testing.assert_array_equal(np.diff(t), 1)  # consecutive steps
        assert 0 <= t[0] and t[-1] < 20
    assert np.all(out[:, :steps, 1:] == out[:, :steps, :1])  # whole frames copied
    # Binomial(400, 0.5): mean 200, sd 10
    assert 150 < with_ctx.sum() < 250


def test_probability_extremes_and_context_longer_than_the_pool():
    rng = np.random.default_rng(1)
    x = np.ones((50, 4, 2), np.float32)
    assert not stream_crops(x, _pool(3, 9, 2), 0.0, 6, rng)[:, :6].any()
    out = stream_crops(x, _pool(3, 4, 2), 1.0, 6, rng)
    assert not out[:, :2].any()  # pool rasters are 4 steps: the first 2 stay silent
    np.testing.assert_array_equal(out[:, 2:6, 0] % 1000, np.tile(np.arange(1, 5), (50, 1)))
    assert stream_crops(x, _pool(3, 9, 2), 1.0, 0, rng).shape == x.shape


@pytest.mark.parametrize("prob,steps", [(1.5, 4), (-0.1, 4), (0.5, -1)])
def test_bad_stream_crop_settings_raise(prob, steps):
    with pytest.raises(DataError):
        stream_crops(np.zeros((2, 3, 2)), np.zeros((2, 3, 2)), prob, steps, np.random.default_rng())


def _two_classes(n: int, steps: int, rate: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` rasters of 4 channels: class ``c`` fires channels ``2c, 2c+1`` at ``rate``."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    X = np.zeros((n, steps, 4), np.float32)
    for i, c in enumerate(y):
        X[i, :, 2 * c : 2 * c + 2] = rng.random((steps, 2)) < rate
    return X, y


def test_training_with_stream_crops_learns_from_the_clip_steps():
    """Two classes told apart by which channels fire; every training clip is preceded
    by a window of another clip (often of the other class). The loss reads only the
    clip's own steps, so the classes are still learnt (evaluated without context)."""
    pytest.importorskip("torch")
    pytest.importorskip("brevitas")
    from neuroplast.apps.kws.model import KwsNetConfig
    from neuroplast.apps.kws.train import TrainConfig, train

    X, y = _two_classes(96, 12, 0.6, seed=0)
    net = KwsNetConfig(n_in=4, hidden=(8,), n_classes=2, max_delay=2, dropout=0.0)
    tc = TrainConfig(epochs=4, batch_size=16, lr=3e-3, max_shift=0, drop=0.0, time_masks=0,
                     band_masks=0, context_prob=1.0, context_steps=6)  # fmt: skip
    res = train(X[:64], y[:64], X[64:], y[64:], net, tc)
    assert res.best_val_acc == 1.0


def test_band_masks_silence_the_same_bands_in_every_channel_group():
    from neuroplast.apps.kws.train import TrainConfig, _augment

    M, groups, T = 10, 5, 30  # on, off and three spectral-shape levels of 10 bands
    cfg = TrainConfig(max_shift=0, drop=0.0, time_masks=0, band_masks=2, band_mask=4, bands=M)
    x = np.ones((64, T, groups * M), np.float32)
    out = _augment(x, cfg, np.random.default_rng(3))
    per_group = out.reshape(64, T, groups, M)
    # a band is masked in all groups or in none, for every raster
    np.testing.assert_array_equal(per_group, np.broadcast_to(per_group[:, :, :1], per_group.shape))
    assert (per_group == 0).any()  # some mask was drawn
    with pytest.raises(DataError, match="groups of 7 bands"):
        _augment(x, TrainConfig(bands=7), np.random.default_rng(0))


def test_band_shift_moves_every_group_by_one_offset_within_bounds():
    from neuroplast.apps.kws.train import TrainConfig, _augment

    M, groups, T, s = 10, 5, 4, 3
    cfg = TrainConfig(max_shift=0, drop=0.0, time_masks=0, band_masks=0, bands=M, band_shift=s)
    # band b of group g carries the value 1 + b (group-independent), so a shift k reads as
    # out[b] = 1 + b - k where it is filled, 0 where zero-filled
    x = np.broadcast_to(1.0 + np.arange(M, dtype=np.float32), (64, T, groups, M))
    out = _augment(x.reshape(64, T, groups * M), cfg, np.random.default_rng(1)).reshape(x.shape)
    ks = set()
    for r in out:
        k = int(round(float((np.arange(M) + 1 - r[0, 0])[r[0, 0] > 0][0])))
        want = np.where((np.arange(M) - k >= 0) & (np.arange(M) - k < M), 1.0 + np.arange(M) - k, 0)
        np.testing.assert_array_equal(r, np.broadcast_to(want, r.shape))
        ks.add(k)
    assert ks == set(range(-s, s + 1))  # every offset drawn, none beyond +-s
    with pytest.raises(DataError, match="groups of 7 bands"):
        _augment(x.reshape(64, T, -1), TrainConfig(bands=7, band_masks=0, band_shift=1),
                 np.random.default_rng(0))  # fmt: skip


@pytest.mark.parametrize(
    ("device", "msg"), [("cuda", "no CUDA GPU"), ("tpu9", "unknown torch device")]
)
def test_training_device_is_refused_in_one_line_when_absent_or_unknown(device, msg):
    torch = pytest.importorskip("torch")
    pytest.importorskip("brevitas")
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    from neuroplast.apps.kws.model import KwsNetConfig
    from neuroplast.apps.kws.train import TrainConfig, train

    X = np.zeros((4, 6, 4), np.float32)
    y = np.arange(4) % 2
    net = KwsNetConfig(n_in=4, hidden=(4,), n_classes=2, max_delay=2)
    with pytest.raises(DataError, match=msg):
        train(X, y, X, y, net, TrainConfig(epochs=1, device=device))


def test_a_model_trained_on_an_explicit_device_comes_back_on_the_cpu():
    torch = pytest.importorskip("torch")
    pytest.importorskip("brevitas")
    from neuroplast.apps.kws.model import KwsNetConfig
    from neuroplast.apps.kws.train import TrainConfig, evaluate, train

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    X, y = _two_classes(32, 8, 0.7, seed=1)
    net = KwsNetConfig(n_in=4, hidden=(6,), n_classes=2, max_delay=2, dropout=0.0)
    tc = TrainConfig(epochs=3, batch_size=8, lr=3e-3, max_shift=0, drop=0.0, time_masks=0,
                     band_masks=0, device=dev)  # fmt: skip
    res = train(X, y, X, y, net, tc)
    assert all(p.device.type == "cpu" for p in res.model.parameters())
    assert evaluate(res.model, X, y) == res.best_val_acc


def test_label_smoothing_floors_the_loss_at_the_smoothed_targets_entropy():
    """Cross-entropy against (1 - e) onehot + e / K can not fall below that target's
    entropy (analytic: K = 2, e = 0.2 -> H(0.9, 0.1) = 0.325 nats); without smoothing the
    same run goes well below it. A value outside [0, 1) is refused in one line."""
    pytest.importorskip("torch")
    pytest.importorskip("brevitas")
    from neuroplast.apps.kws.model import KwsNetConfig
    from neuroplast.apps.kws.train import TrainConfig, train

    X, y = _two_classes(96, 12, 0.6, seed=0)
    net = KwsNetConfig(n_in=4, hidden=(8,), n_classes=2, max_delay=2, dropout=0.0)
    loss = {}
    for e in (0.0, 0.2):
        tc = TrainConfig(epochs=6, batch_size=16, lr=1e-2, max_shift=0, drop=0.0, time_masks=0,
                         band_masks=0, label_smoothing=e)  # fmt: skip
        loss[e] = [h["loss"] for h in train(X[:64], y[:64], X[64:], y[64:], net, tc).history]
    h = -(0.9 * np.log(0.9) + 0.1 * np.log(0.1))
    assert min(loss[0.2]) >= h - 1e-6 and loss[0.0][-1] < h / 2
    with pytest.raises(DataError, match=r"label_smoothing must be in \[0, 1\)"):
        TrainConfig(epochs=1, label_smoothing=1.0)
