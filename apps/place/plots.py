"""PNG plots of place-recognition results (matplotlib, imported lazily, Agg backend)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neuroplast.apps.place.metrics import pr_auc, precision_recall, recall_at_n

__all__ = ["plot_pr", "plot_recall", "plot_scaling"]


def _save(plt, fig, path: str | Path) -> Path:
    """Lay out, write ``fig`` as a PNG at ``path`` (folders created) and close it."""
    fig.tight_layout()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=120)
    plt.close(fig)
    return p


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_pr(rows: dict[str, np.ndarray], gt: np.ndarray, path: str | Path) -> Path:
    """Precision-recall curves of several score matrices (Q, P) against ground truth."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 4))
    for name, s in rows.items():
        prec, rec = precision_recall(s, gt)
        ax.plot(rec, prec, label=f"{name} (AUC {pr_auc(s, gt):.2f})")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(fontsize=7)
    return _save(plt, fig, path)


def plot_recall(
    rows: dict[str, np.ndarray], gt: np.ndarray, path: str | Path, ns=(1, 5, 10, 15, 20, 25)
) -> Path:
    """Recall@N curves."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 4))
    for name, s in rows.items():
        r = recall_at_n(s, gt, tuple(ns))
        ax.plot(list(r), list(r.values()), marker="o", label=name)
    ax.set(xlabel="N", ylabel="Recall@N", ylim=(0, 1.02))
    ax.legend(fontsize=7)
    return _save(plt, fig, path)


def plot_scaling(table: list[dict], path: str | Path) -> Path:
    """Train time and peak memory against the number of places, ensemble vs single SNN."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for key, ax, lab in (
        ("train_s", axes[0], "train time (s)"),
        ("peak_mib", axes[1], "peak memory (MiB)"),
    ):
        for model in sorted({r["model"] for r in table}):
            pts = [(r["places"], r[key]) for r in table if r["model"] == model and r.get(key)]
            if pts:
                x, y = zip(*sorted(pts))
                ax.plot(x, y, marker="o", label=model)
        ax.set(xlabel="places", ylabel=lab, xscale="log", yscale="log")
        ax.legend(fontsize=7)
    return _save(plt, fig, path)
