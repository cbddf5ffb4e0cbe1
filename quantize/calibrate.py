"""Calibration: set activation scales from data before (or instead of) QAT.

Brevitas' ``calibration_mode`` switches every activation quantizer to collect
statistics (running percentile of |x|) while quantization is bypassed; leaving the
context freezes the collected scales into the quantizer parameters. A few hundred
samples are enough. Weights need no calibration (their scales follow max |w|).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from neuroplast.errors import DataError

__all__ = ["calibrate"]


def calibrate(model: Any, batches: Iterable[Any], max_batches: int | None = None) -> Any:
    """Run ``batches`` through ``model`` in Brevitas calibration mode; return the model.

    Args:
        model: a QAT model from :func:`neuroplast.quantize.prepare`.
        batches: an iterable of input tensors, or of ``(input, target)`` pairs.
        max_batches: stop after this many batches.

    Raises:
        DataError: if ``batches`` yields nothing.
    """
    import torch
    from brevitas.graph.calibrate import calibration_mode

    was_training = model.training
    model.eval()
    n = 0
    with torch.no_grad(), calibration_mode(model):
        for b in batches:
            x = b[0] if isinstance(b, (tuple, list)) else b
            model(torch.as_tensor(x))
            n += 1
            if max_batches is not None and n >= max_batches:
                break
    model.train(was_training)
    if n == 0:
        raise DataError("calibrate: no calibration batches were given")
    return model
