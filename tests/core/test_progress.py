"""Progress off a terminal is one plain line per update (no carriage-return frames in logs)."""

from __future__ import annotations

import io

import pytest

from neuroplast.progress import Progress


def test_plain_lines_off_a_terminal():
    buf = io.StringIO()  # not a TTY
    with Progress("training (epochs)", total=3, every_s=0, stream=buf) as p:
        for e in range(3):
            p.update(e + 1, f"loss {1 / (e + 1):.2f}")
    assert "\r" not in buf.getvalue()
    assert buf.getvalue().splitlines() == [
        "training (epochs): 1/3  loss 1.00",
        "training (epochs): 2/3  loss 0.50",
        "training (epochs): 3/3  loss 0.33",
    ]
    buf = io.StringIO()
    with Progress("learning", total=1000, every_s=3600, stream=buf) as p:
        for t in range(1000):
            p.update(t + 1)
    assert buf.getvalue().splitlines() == ["learning: 1/1000", "learning: 1000/1000"]


def test_qat_training_prints_one_line_per_epoch(capsys):
    torch = pytest.importorskip("torch")
    from neuroplast.quantize.train import TrainConfig, train

    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    x, y = torch.randn(64, 4), (torch.rand(64) > 0.5).long()
    hist = train(model, (x, y), TrainConfig(epochs=3, batch_size=16), val=(x, y))
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("training (epochs)")]
    assert [ln.split()[2] for ln in lines] == ["1/3", "2/3", "3/3"]
    assert f"loss {hist.loss[-1]:.4f}" in lines[-1]
