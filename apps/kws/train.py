"""Training of the delay-learning SNN (toolchain side: imports torch lazily).

Recipe (DCLS-Delays, scaled down for a CPU):

* two Adam optimisers: weights (lr ``lr``, one-cycle to ``5 lr`` peak, weight decay
  1e-5) and delay positions (lr ``pos_lr``, cosine annealing);
* the Gaussian ``sigma`` schedule of :func:`~neuroplast.apps.kws.model.sigma_at_epoch`;
* loss = cross-entropy of the time-summed softmax of the readout;
* after every epoch the model is evaluated with exact integer delays on the
  *validation* split and the best epoch is kept -- the test split is never looked at
  during training.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from neuroplast.apps.kws.frontend import MelParams
from neuroplast.checks import require_int, require_real, require_seed
from neuroplast.errors import DataError

__all__ = [
    "TrainConfig",
    "TrainResult",
    "train",
    "evaluate",
    "predict",
    "set_threads",
    "stream_crops",
]


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings."""

    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-3
    pos_lr: float = 0.05
    weight_decay: float = 1e-5
    label_smoothing: float = 0.0  # cross-entropy against (1 - e) onehot + e / K
    seed: int = 0
    threads: int = 1
    max_shift: int = 8  # augmentation: random time shift of each raster by +-steps
    drop: float = 0.05  # augmentation: fraction of input spikes deleted at random
    time_masks: int = 2  # SpecAugment: up to this many time masks per raster ...
    time_mask: int = 10  # ... each up to this many steps wide
    band_masks: int = 2  # SpecAugment: up to this many mel-band masks per raster ...
    band_mask: int = 5  # ... each up to this many bands wide (in every channel group)
    bands: int = MelParams.n_mels  # mel bands per channel group (on, off, shape levels)
    band_shift: int = 0  # augmentation: shift every raster's bands by up to +-this many bands
    context_prob: float = 0.0  # stream crops: fraction of clips preceded by another clip's steps
    context_steps: int = 0  # ... of this many steps; the loss reads only the clip's own steps
    device: str = "cpu"  # torch device of training ("cuda"); the model returns on the CPU

    def __post_init__(self) -> None:
        n = "TrainConfig"
        require_seed(DataError, n, self.seed)
        require_int(DataError, n, 0, epochs=self.epochs)
        require_int(DataError, n, 1, 4096, threads=self.threads)
        require_int(DataError, n, 1, batch_size=self.batch_size, bands=self.bands)
        require_int(
            DataError, n, 0, max_shift=self.max_shift, time_masks=self.time_masks,
            time_mask=self.time_mask, band_masks=self.band_masks, band_mask=self.band_mask,
            band_shift=self.band_shift, context_steps=self.context_steps,
        )  # fmt: skip
        require_real(DataError, n, 0.0, open_lo=True, lr=self.lr)
        require_real(DataError, n, 0.0, pos_lr=self.pos_lr, weight_decay=self.weight_decay)
        require_real(DataError, n, 0.0, 1.0, drop=self.drop, context_prob=self.context_prob)
        if not 0.0 <= self.label_smoothing < 1.0:  # NaN fails too
            raise DataError(f"{n}.label_smoothing must be in [0, 1), got {self.label_smoothing}")


@dataclass
class TrainResult:
    """Best model (chosen on validation), its epoch and the per-epoch history."""

    model: object
    best_epoch: int
    best_val_acc: float
    history: list[dict]
    seconds: float


def set_threads(n: int) -> None:
    """Limit torch's intra-op threads (the build machines are shared)."""
    import torch

    torch.set_num_threads(max(1, int(n)))


def _device(name: str):  # noqa: ANN202 - torch.device (torch-side import)
    """The training device ``name``; an unknown or absent device is refused in one line."""
    import torch

    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError) as e:
        raise DataError(f"unknown torch device {name!r} (use 'cpu' or 'cuda')") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DataError(f"device {name!r} asked for, but torch sees no CUDA GPU (use 'cpu')")
    return dev


def _augment(x: np.ndarray, cfg: TrainConfig, rng: np.random.Generator) -> np.ndarray:
    """Random time shift (zero fill), SpecAugment-style masks and spike deletion of a
    ``(B, T, C)`` batch of delta rasters (channels in groups of ``M = cfg.bands``:
    ``[on_0..on_{M-1}, off_0..off_{M-1}, shape levels..]``).

    Masks (Park et al., 2019, on spikes): per raster up to ``time_masks`` spans of
    ``0..time_mask`` steps and up to ``band_masks`` spans of ``0..band_mask`` mel bands
    (in every channel group) are silenced. Band shift (a formant-shift / vocal-tract-
    length proxy on the mel axis): each raster's bands move by ``k in [-band_shift,
    band_shift]`` bands in every group, ``x'[.., g M + b] = x[.., g M + b - k]``, zero fill.
    """
    x = x.astype(np.float32)
    B, T, C = x.shape
    M = cfg.bands
    if (cfg.band_masks or cfg.band_shift) and (M < 1 or C % M):
        raise DataError(f"{C} input channels are not groups of {M} bands (TrainConfig.bands)")
    groups = C // M if cfg.band_masks else 0
    if cfg.band_shift:
        g = x.reshape(B, T, C // M, M)
        out = np.zeros_like(g)
        for i, k in enumerate(rng.integers(-cfg.band_shift, cfg.band_shift + 1, B)):
            if k >= 0:
                out[i, ..., k:] = g[i, ..., : M - k]
            else:
                out[i, ..., :k] = g[i, ..., -k:]
        x = out.reshape(B, T, C)
    for i in range(B):
        for _ in range(int(rng.integers(0, cfg.time_masks + 1))):
            w = int(rng.integers(0, cfg.time_mask + 1))
            t0 = int(rng.integers(0, max(1, T - w)))
            x[i, t0 : t0 + w] = 0
        for _ in range(int(rng.integers(0, cfg.band_masks + 1))):
            w = int(rng.integers(0, cfg.band_mask + 1))
            b0 = int(rng.integers(0, max(1, M - w)))
            for g in range(groups):
                x[i, :, g * M + b0 : g * M + b0 + w] = 0
    if cfg.max_shift:
        out = np.zeros_like(x)
        for i, k in enumerate(rng.integers(-cfg.max_shift, cfg.max_shift + 1, len(x))):
            if k >= 0:
                out[i, k:] = x[i, : x.shape[1] - k]
            else:
                out[i, :k] = x[i, -k:]
        x = out
    if cfg.drop:
        x *= rng.random(x.shape, dtype=np.float32) >= cfg.drop
    return x


def stream_crops(
    x: np.ndarray, pool: np.ndarray, prob: float, steps: int, rng: np.random.Generator
) -> np.ndarray:
    """Stream crops: prefix each ``(B, T, C)`` raster with ``steps`` steps of context.

    With probability ``prob`` the context is a random ``steps``-long window of a random
    raster of ``pool`` (other speech, keywords of other classes or background, as before
    a keyword in a stream), else silence (zeros: the network starts from rest, as on a
    reset clip). Returns ``(B, steps + T, C)``; rows ``[steps:]`` are ``x`` unchanged, so
    the label still belongs to the last ``T`` steps, where :func:`train` reads the loss.
    """
    B, T, C = x.shape
    if steps < 0 or not 0.0 <= prob <= 1.0:
        raise DataError(f"stream crops need steps >= 0 and 0 <= prob <= 1, got {steps}, {prob}")
    out = np.zeros((B, steps + T, C), np.float32)
    out[:, steps:] = x
    if steps == 0 or len(pool) == 0:
        return out
    Tp = pool.shape[1]
    for i in np.flatnonzero(rng.random(B) < prob):
        j = int(rng.integers(len(pool)))
        w = min(steps, Tp)
        t0 = int(rng.integers(0, Tp - w + 1))
        out[i, steps - w : steps] = pool[j, t0 : t0 + w]
    return out


def _check(X: np.ndarray, y: np.ndarray, n_in: int) -> None:
    if X.ndim != 3 or X.shape[2] != n_in:
        raise DataError(f"spike rasters must be (N, T, {n_in}), got {X.shape}")
    if len(X) != len(y):
        raise DataError(f"{len(X)} rasters but {len(y)} labels")


def predict(model, X: np.ndarray, batch_size: int = 256) -> np.ndarray:  # noqa: ANN001
    """Summed-softmax scores ``(N, classes)`` with exact integer delays (eval mode)."""
    import torch

    from neuroplast.apps.kws.model import summed_softmax

    model.eval()
    model.set_hard(True)
    dev = next(model.parameters()).device
    out = []
    with torch.no_grad():
        for i in range(0, len(X), batch_size):
            xb = torch.from_numpy(np.ascontiguousarray(X[i : i + batch_size], np.float32))
            out.append(summed_softmax(model(xb.to(dev).transpose(1, 2))).cpu().numpy())
    model.set_hard(False)
    return np.concatenate(out) if out else np.zeros((0, model.cfg.n_classes), np.float32)


def evaluate(model, X: np.ndarray, y: np.ndarray) -> float:  # noqa: ANN001
    """Top-1 accuracy (argmax of the summed softmax), exact integer delays."""
    if len(y) == 0:
        raise DataError("cannot evaluate on an empty split")
    return float(np.mean(predict(model, X).argmax(1) == y))


def train(
    Xtr: np.ndarray,
    ytr: np.ndarray,
    Xva: np.ndarray,
    yva: np.ndarray,
    net_cfg=None,  # noqa: ANN001 - KwsNetConfig (torch-side import)
    cfg: TrainConfig = TrainConfig(),
    progress: Callable[[dict], None] | None = None,
    on_epoch: Callable[[object], dict] | None = None,
) -> TrainResult:
    """Train a :class:`~neuroplast.apps.kws.model.KwsNet` on ``(N, T, C)`` spike rasters.

    ``on_epoch(model)``, if given, returns extra metrics of each epoch's model (e.g. test
    accuracy curves), merged into that epoch's history record.

    Returns the model at the epoch with the best validation accuracy (ties: the
    earlier epoch), on the CPU whatever ``cfg.device`` trained it (augmentation stays on
    the CPU, so a run is the same recipe on either; GPU sums differ in the last bits).
    """
    import torch

    from neuroplast.apps.kws.model import KwsNet, KwsNetConfig, sigma_at_epoch, summed_softmax

    net_cfg = net_cfg or KwsNetConfig(n_in=Xtr.shape[2], n_classes=int(ytr.max()) + 1)
    _check(Xtr, ytr, net_cfg.n_in)
    _check(Xva, yva, net_cfg.n_in)
    if cfg.epochs < 1:
        raise DataError("TrainConfig.epochs must be >= 1")
    dev = _device(cfg.device)
    set_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    model = KwsNet(net_cfg).to(dev)
    steps = -(-len(Xtr) // cfg.batch_size)
    opt_w = torch.optim.Adam(model.weight_params(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched_w = torch.optim.lr_scheduler.OneCycleLR(
        opt_w, max_lr=5 * cfg.lr, total_steps=cfg.epochs * steps
    )
    pos = model.position_params()
    opt_p = torch.optim.Adam(pos, lr=cfg.pos_lr) if pos else None
    sched_p = (
        torch.optim.lr_scheduler.CosineAnnealingLR(opt_p, T_max=cfg.epochs * steps)
        if opt_p
        else None
    )
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    best, best_acc, best_epoch, history = None, -1.0, -1, []
    t0 = time.perf_counter()
    for epoch in range(cfg.epochs):
        model.set_sigma(sigma_at_epoch(epoch, cfg.epochs, net_cfg.max_delay))
        model.train()
        order = rng.permutation(len(Xtr))
        tot, correct, n = 0.0, 0, 0
        for b in range(steps):
            idx = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
            xa = _augment(Xtr[idx], cfg, rng)
            if cfg.context_steps:
                xa = stream_crops(xa, Xtr, cfg.context_prob, cfg.context_steps, rng)
            xb = torch.from_numpy(xa).to(dev).transpose(1, 2)
            yb = torch.from_numpy(ytr[idx].astype(np.int64)).to(dev)
            m = summed_softmax(model(xb)[..., cfg.context_steps :])
            loss = loss_fn(m, yb)
            opt_w.zero_grad()
            if opt_p:
                opt_p.zero_grad()
            loss.backward()
            opt_w.step()
            sched_w.step()
            if opt_p:
                opt_p.step()
                sched_p.step()
            model.clamp_()
            tot += float(loss.detach()) * len(idx)
            correct += int((m.argmax(1) == yb).sum())
            n += len(idx)
        val_acc = evaluate(model, Xva, yva)
        rec = {
            "epoch": epoch,
            "loss": tot / n,
            "train_acc": correct / n,
            "val_acc": val_acc,
            "sigma": model.layers[0].sigma,
            "seconds": time.perf_counter() - t0,
        }
        if on_epoch:
            rec.update(on_epoch(model))
        history.append(rec)
        if progress:
            progress(rec)
        if val_acc > best_acc:
            best, best_acc, best_epoch = copy.deepcopy(model.state_dict()), val_acc, epoch
    model.load_state_dict(best)
    model.cpu().eval()
    return TrainResult(model, best_epoch, best_acc, history, time.perf_counter() - t0)
