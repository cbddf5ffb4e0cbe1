"""``neuroplast check model.nir --board xylo``: read a ``.nir`` file and check it with the
one chip-constraint table, :mod:`neuroplast.boards.chips` (the check ``fit`` runs too)."""

from __future__ import annotations

import os

from neuroplast.boards.chips import ChipReport, Violation, check_graph

__all__ = ["Violation", "ChipReport", "check_nir", "check_graph"]


def check_nir(path: str | os.PathLike, board: str) -> ChipReport:
    """Read a ``.nir`` file (:func:`neuroplast.quantize.nir.read`) and check it on ``board``."""
    from neuroplast.quantize.nir import read

    return check_graph(read(path), board)
