"""The KWS NIR check: :mod:`neuroplast.quantize.nir_run` (the NIR interpreter and the
snnTorch / Norse runners) with the KWS readout score (time-summed softmax)."""

from __future__ import annotations

from typing import Any

import numpy as np

from neuroplast.quantize.nir_run import compare_with_peers as _compare
from neuroplast.quantize.nir_run import for_peer, run_nir, run_peer, strip_delays

__all__ = ["run_nir", "strip_delays", "for_peer", "run_peer", "compare_with_peers"]


def compare_with_peers(ng: Any, x: np.ndarray, dt: float, out: str = "out") -> dict[str, Any]:
    """:func:`neuroplast.quantize.nir_run.compare_with_peers` on the delay-free graph,
    scoring the LI readout ``out`` as KWS does (argmax of the time-summed softmax)."""
    from neuroplast.apps.kws.infer import summed_softmax_np

    return _compare(ng, x, dt, strip=True, readout=out, score=summed_softmax_np)
