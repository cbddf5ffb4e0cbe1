"""PNG plots of place-recognition results (matplotlib, imported lazily, Agg backend).

Every plot has a title that says how many queries it covers, labelled axes, and its legend
outside the axes (never over the data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neuroplast.apps.place.metrics import pr_auc, precision_recall, recall_at_n

__all__ = ["plot_pr", "plot_recall", "plot_scaling"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, ax, path: str | Path) -> Path:
    """Legend below the axes, write ``fig`` as a PNG at ``path`` (folders created), close."""
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=1, frameon=False)
    fig.tight_layout()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return p


def plot_pr(
    rows: dict[str, np.ndarray], gt: np.ndarray, path: str | Path, places: int | None = None
) -> Path:
    """Precision-recall curves of several score matrices (Q, P) against ground truth."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for name, s in rows.items():
        prec, rec = precision_recall(s, gt)
        ax.plot(rec, prec, label=f"{name} (AUC {pr_auc(s, gt):.2f})")
    where = f"{places} places, " if places else ""
    ax.set(
        title=f"Precision-recall ({where}{len(gt)} test queries)",
        xlabel="recall",
        ylabel="precision",
        xlim=(0, 1),
        ylim=(0, 1.02),
    )
    return _save(plt, fig, ax, path)


def plot_recall(
    rows: dict[str, np.ndarray],
    gt: np.ndarray,
    path: str | Path,
    places: int | None = None,
    ns=(1, 5, 10, 15, 20, 25),
) -> Path:
    """Recall@N curves."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for name, s in rows.items():
        r = recall_at_n(s, gt, tuple(ns))
        ax.plot(list(r), list(r.values()), marker="o", label=name)
    where = f"{places} places, " if places else ""
    ax.set(
        title=f"Recall@N ({where}{len(gt)} test queries)",
        xlabel="N (top-N places)",
        ylabel="Recall@N",
        ylim=(0, 1.02),
    )
    return _save(plt, fig, ax, path)


def plot_scaling(points: list[tuple[int, int, float, str]], path: str | Path) -> Path:
    """Training time against places: points (places, workers, seconds, how)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for key in sorted({(w, how) for _, w, _, how in points}):
        pts = sorted((n, s) for n, w, s, how in points if (w, how) == key)
        x, y = zip(*pts)
        ax.plot(x, y, marker="o", label=f"{key[1]}, {key[0]} worker(s)")
    ax.set(
        title="Ensemble training time (one module per 25 places)",
        xlabel="places",
        ylabel="training time (s)",
        xscale="log",
        yscale="log",
    )
    return _save(plt, fig, ax, path)
