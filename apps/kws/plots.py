"""PNG plots: confusion matrix, spike raster, learned-delay histogram (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = [
    "confusion",
    "plot_confusion",
    "plot_raster",
    "plot_delay_histogram",
    "plot_det",
    "all_plots",
]


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n: int) -> np.ndarray:
    """Counts ``C[i, j]`` of true class ``i`` predicted as ``j``."""
    c = np.zeros((n, n), np.int64)
    np.add.at(c, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return c


def _plt():  # noqa: ANN202
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(
    cm: np.ndarray,
    classes: list[str],
    path: str | Path,
    title: str = "KWS confusion (test, int8 QAT)",
) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 5))
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=60, fontsize=7)
    ax.set_yticks(range(len(classes)), classes, fontsize=7)
    for i in range(len(classes)):
        for j in range(len(classes)):
            if cm[i, j]:
                ax.text(
                    j,
                    i,
                    str(cm[i, j]),
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="white" if norm[i, j] > 0.5 else "black",
                )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_raster(
    layers: list[np.ndarray], names: list[str], path: str | Path, title: str = ""
) -> Path:
    """Spike rasters ``(T, n)`` of several layers, stacked."""
    plt = _plt()
    fig, axes = plt.subplots(len(layers), 1, figsize=(7, 2 + 1.5 * len(layers)), sharex=True)
    axes = np.atleast_1d(axes)
    for ax, s, name in zip(axes, layers, names):
        t, n = np.nonzero(np.asarray(s))
        ax.scatter(t, n, s=1.5, c="k", marker="|")
        ax.set_ylabel(name)
    axes[-1].set_xlabel("time step (10 ms)")
    if title:
        axes[0].set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_delay_histogram(delays: list[np.ndarray], path: str | Path) -> Path:
    """Histogram of the rounded learned delays of every layer."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    dmax = max(int(d.max()) for d in delays)
    bins = np.arange(dmax + 2) - 0.5
    for i, d in enumerate(delays, start=1):
        ax.hist(d.ravel(), bins=bins, histtype="step", label=f"fc{i}", linewidth=1.5)
    ax.set_xlabel("learned delay (steps of 10 ms)")
    ax.set_ylabel("synapses")
    ax.set_title(
        f"KWS learned synaptic delays per layer ({sum(d.size for d in delays):,} synapses)"
    )
    # outside the axes: step histograms fill the whole plot area, any corner hides a bar
    ax.legend(title="layer", loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_det(
    curves: dict[str, dict],
    path: str | Path,
    point: tuple[float, float] | None = None,
    title: str = "KWS streaming detection: DET curve (10 keywords, int8 runtime)",
) -> Path:
    """DET curves: miss rate (%) against false alarms per hour (log axis), one line per
    stream (``{"theta", "recall", "fa_per_hour"}`` from
    :func:`~neuroplast.apps.kws.detect.det_curve`); ``point`` marks the operating point."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for name, c in curves.items():
        fa = np.maximum(np.asarray(c["fa_per_hour"], float), 0.1)  # 0 FA/h drawn at 0.1
        miss = 100 * (1 - np.asarray(c["recall"], float))
        order = np.argsort(fa)
        ax.plot(fa[order], miss[order], marker=".", ms=3, label=name)
    if point is not None:
        ax.plot(max(point[0], 0.1), 100 * (1 - point[1]), "r*", ms=12, label="operating point")
    ax.set_xscale("log")
    ax.set_xlabel("false alarms per hour (all keywords; 0 drawn at 0.1)")
    ax.set_ylabel("miss rate (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def all_plots(model, dep, F: dict, out: str | Path) -> dict:  # noqa: ANN001
    """The three PNGs of a trained model; returns their paths."""
    import torch

    from neuroplast.apps.kws.train import predict

    out = Path(out)
    Xte, yte = F["test"]
    classes = list(F["classes"])
    pred = predict(model, Xte).argmax(1)
    p1 = plot_confusion(confusion(yte, pred, len(classes)), classes, out / "confusion.png")
    i = int(np.flatnonzero(yte == 0)[0]) if np.any(yte == 0) else 0
    model.eval()
    model.set_hard(True)
    with torch.no_grad():
        x = torch.from_numpy(Xte[i : i + 1].astype(np.float32)).transpose(1, 2)
        _, spikes = model(x, record=True)
    model.set_hard(False)
    layers = [Xte[i]] + [s[0].numpy().T for s in spikes]
    p2 = plot_raster(
        layers,
        ["input", "lif1", "lif2"],
        out / "raster.png",
        title=f"spikes for '{classes[int(yte[i])]}'",
    )
    p3 = plot_delay_histogram([layer.delay for layer in dep.layers], out / "delays.png")
    return {"confusion": str(p1), "raster": str(p2), "delays": str(p3)}
