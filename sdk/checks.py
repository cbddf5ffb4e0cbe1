"""Range checks for the numbers of parameter dataclasses and commands, one line each.

A parameter object validates itself in ``__post_init__`` so that the library and the CLI
refuse the same values with the same message (the CLI maps the error to exit 2):

    >>> from neuroplast.checks import require_int
    >>> require_int(ValueError, "SceneParams", size=0, lo=1)
    Traceback (most recent call last):
    ...
    ValueError: SceneParams.size must be an integer in [1, 2147483647], got 0

``MAX_INT`` bounds every count and size: a value beyond it is a typo, not a model, and
numpy would otherwise fail on it deep inside with a message that names no parameter.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["MAX_INT", "MAX_SEED", "is_real", "require_int", "require_real", "require_seed"]

MAX_INT = 2**31 - 1  #: the largest count or size a parameter may hold
MAX_SEED = 2**32 - 1  #: seeds go to numpy and torch generators alike


def is_real(x: object) -> bool:
    """A real number (Python or numpy), not a bool."""
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)


def require_int(
    err: type[Exception], owner: str, lo: int = 0, hi: int = MAX_INT, **values: object
) -> None:
    """Every named value is an integer in ``[lo, hi]``, else ``err`` naming it."""
    for name, v in values.items():
        ok = isinstance(v, (int, np.integer)) and not isinstance(v, bool) and lo <= v <= hi
        if not ok:
            raise err(f"{owner}.{name} must be an integer in [{lo}, {hi}], got {v!r}")


def require_real(
    err: type[Exception],
    owner: str,
    lo: float = -math.inf,
    hi: float = math.inf,
    *,
    open_lo: bool = False,
    **values: object,
) -> None:
    """Every named value is a finite real in ``[lo, hi]`` (``(lo, hi]`` with ``open_lo``)."""
    for name, v in values.items():
        f = float(v) if is_real(v) else math.nan
        if not (math.isfinite(f) and (f > lo if open_lo else f >= lo) and f <= hi):
            if hi == math.inf:  # a bound below only: "> 0", ">= 0"
                rng = f"{'>' if open_lo else '>='} {lo:g}"
            else:
                rng = f"in {'(' if open_lo else '['}{lo:g}, {hi:g}]"
            raise err(f"{owner}.{name} must be a finite number {rng}, got {v!r}")


def require_seed(err: type[Exception], owner: str, seed: object) -> None:
    """A seed is an integer in ``[0, MAX_SEED]``."""
    require_int(err, owner, 0, MAX_SEED, seed=seed)
