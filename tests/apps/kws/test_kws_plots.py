"""The KWS delay histogram is titled and labelled, and its legend covers no data."""

from __future__ import annotations

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")


def test_delay_histogram_is_titled_and_legend_clears_the_data(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    from neuroplast.apps.kws.plots import plot_delay_histogram

    monkeypatch.setattr(plt, "close", lambda fig=None: None)  # keep the figure to inspect it
    rng = np.random.default_rng(0)
    delays = [rng.integers(0, 16, (128, 40)), rng.integers(0, 16, (128, 128)),
              rng.integers(0, 4, (12, 128))]  # fmt: skip
    path = plot_delay_histogram(delays, tmp_path / "delays.png")
    assert path.stat().st_size > 1000
    fig = plt.gcf()
    ax = fig.axes[0]
    assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    assert f"{sum(d.size for d in delays):,}" in ax.get_title()
    r = fig.canvas.get_renderer()
    legend = ax.get_legend().get_window_extent(r)
    for patch in ax.patches:  # the step outlines of the three histograms
        assert not legend.overlaps(patch.get_window_extent(r))
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["fc1", "fc2", "fc3"]
    plt.close("all")
