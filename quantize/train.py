"""A small training loop for QAT models, with progress per epoch, ready for ``torchrun``.

Single process::

    hist = train(model, (X, y), epochs=10)

Several processes / machines (gradients averaged by DistributedDataParallel over the
``gloo`` backend on CPU, ``nccl`` on GPU)::

    torchrun --nproc_per_node 4 -m neuroplast.quantize.train --recipe cnn --epochs 10 -o cnn.pt

Under ``torchrun`` (``WORLD_SIZE`` > 1) :func:`train` joins the process group, shards
the data with a ``DistributedSampler`` and wraps the model in DDP; only rank 0 shows
progress (:class:`neuroplast.progress.Progress`: a bar on a terminal, one line per epoch
in a log). Spiking models (output ``[T, B, C]``) are trained on the spike
count ``sum_t s[t]`` as logits.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from typing import Any

from neuroplast.errors import DataError

__all__ = ["TrainConfig", "train", "evaluate", "predict", "main"]


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters: ``epochs``, ``batch_size``, ``lr`` (Adam), ``weight_decay``,
    ``seed``, ``progress`` (report each epoch on stderr)."""

    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        if self.epochs < 0 or self.batch_size < 1 or not self.lr > 0:
            raise DataError(f"bad training config {self}")


@dataclass
class History:
    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)


def _as_tensors(data: Any) -> tuple[Any, Any]:
    import torch

    if isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = (torch.as_tensor(d) for d in data)
    else:
        raise DataError("data must be an (inputs, targets) pair of arrays/tensors")
    if len(x) != len(y) or len(x) == 0:
        raise DataError(f"inputs ({len(x)}) and targets ({len(y)}) must be non-empty, same length")
    return x.float(), y.long()


def _logits(out: Any, time_major: bool) -> Any:
    # spiking nets: [T, B, C] spikes -> spike counts as logits
    return out.sum(0) if time_major else out


def predict(model: Any, x: Any, time_major: bool = False, batch_size: int = 512) -> Any:
    """Class predictions (argmax) of ``model`` on ``x`` (``[T, B, ...]`` if time-major)."""
    import torch

    model.eval()
    outs = []
    with torch.no_grad():
        n = x.shape[1] if time_major else x.shape[0]
        for i in range(0, n, batch_size):
            xb = x[:, i : i + batch_size] if time_major else x[i : i + batch_size]
            outs.append(_logits(model(xb), time_major).argmax(-1))
    return torch.cat(outs)


def evaluate(model: Any, data: Any, time_major: bool = False) -> float:
    """Top-1 accuracy in [0, 1] of ``model`` on ``(inputs, targets)``."""
    x, y = _as_tensors(data) if not time_major else (data[0], data[1])
    return float((predict(model, x, time_major) == y).float().mean())


def _dist_env() -> tuple[int, int]:
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def train(
    model: Any,
    data: Any,
    config: TrainConfig | None = None,
    val: Any = None,
    time_major: bool = False,
    loss_fn: Any = None,
    **overrides: Any,
) -> History:
    """Train ``model`` on ``data = (inputs, targets)`` with Adam + cross entropy.

    ``time_major``: inputs are ``[T, N, ...]`` (spiking nets; batches split axis 1).
    Returns the per-epoch mean loss and (if ``val`` is given) validation accuracy.
    """
    import torch
    import torch.distributed as dist

    from neuroplast.progress import Progress

    cfg = config or TrainConfig(**overrides)
    rank, world = _dist_env()
    x, y = (data[0].float(), data[1].long()) if time_major else _as_tensors(data)
    n = x.shape[1] if time_major else x.shape[0]
    torch.manual_seed(cfg.seed)
    net = model
    if world > 1:
        if not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        net = torch.nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    loss_fn = loss_fn or torch.nn.CrossEntropyLoss()
    hist = History()
    g = torch.Generator().manual_seed(cfg.seed)
    show = cfg.progress and rank == 0
    with Progress(
        "training (epochs)", total=cfg.epochs, every_s=0, live=None if show else False
    ) as bar:
        for epoch in range(cfg.epochs):
            net.train()
            perm = torch.randperm(n, generator=g)
            perm = perm[rank::world]  # the DistributedSampler split: disjoint shards
            tot, cnt = 0.0, 0
            for i in range(0, len(perm), cfg.batch_size):
                idx = perm[i : i + cfg.batch_size]
                xb = x[:, idx] if time_major else x[idx]
                opt.zero_grad()
                loss = loss_fn(_logits(net(xb), time_major), y[idx])
                loss.backward()
                opt.step()
                tot += loss.item() * len(idx)
                cnt += len(idx)
            hist.loss.append(tot / max(cnt, 1))
            if val is not None:
                hist.accuracy.append(evaluate(model, val, time_major))
            if show:
                acc = f", val acc {hist.accuracy[-1]:.4f}" if val is not None else ""
                bar.update(epoch + 1, f"loss {hist.loss[-1]:.4f}{acc}")
    return hist


def main(argv: list[str] | None = None) -> None:
    """``python -m neuroplast.quantize.train`` / ``torchrun ... -m neuroplast.quantize.train``:
    QAT-train a named recipe on scikit-learn's digits and save a MODEL.pt."""
    import torch

    from neuroplast.quantize.recipes import build, digits_data, save_model

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("--recipe", default="mlp")
    p.add_argument("--weight-bits", type=int, default=8)
    p.add_argument("--act-bits", type=int, default=8)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("-o", "--output", default="model.pt")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    model, recipe = build(a.recipe, a.weight_bits, a.act_bits)
    (xtr, ytr), (xte, yte) = digits_data(recipe.name)
    hist = train(
        model,
        (xtr, ytr),
        TrainConfig(epochs=a.epochs, lr=a.lr),
        val=(xte, yte),
        time_major=recipe.spiking,
    )
    rank, world = _dist_env()
    if rank == 0:
        save_model(a.output, model, a.recipe, a.weight_bits, a.act_bits)
        print(f"rank 0/{world}: test accuracy {hist.accuracy[-1]:.4f}; saved {a.output}")
    if world > 1:
        import torch.distributed as dist

        dist.destroy_process_group()


if __name__ == "__main__":
    main()
