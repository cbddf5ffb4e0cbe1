"""Where neuroplast writes: results to an output folder, caches to the user cache.

Nothing the SDK runs writes into the source tree or tracked files:

* :func:`output_dir` -- results a user asked for (bundles, plots, JSON): ``--out`` of a
  command, else ``$NEUROPLAST_OUT``, else ``./neuroplast-out`` (one folder, ignored by git
  in a checkout);
* :func:`cache_dir` -- things that can be rebuilt (compiled kernels, generated data, feature
  caches, firmware builds): ``$NEUROPLAST_CACHE``, else ``$XDG_CACHE_HOME/neuroplast``,
  else ``~/.cache/neuroplast``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["output_dir", "cache_dir", "use_user_numba_cache", "OUT_ENV", "CACHE_ENV"]

OUT_ENV = "NEUROPLAST_OUT"
CACHE_ENV = "NEUROPLAST_CACHE"


def output_dir(*parts: str) -> Path:
    """The default output folder (``$NEUROPLAST_OUT`` or ``./neuroplast-out``) joined with
    ``parts``; not created here (the command that writes creates it)."""
    return Path(os.environ.get(OUT_ENV) or "neuroplast-out", *parts)


def cache_dir(*parts: str) -> Path:
    """The user cache folder for neuroplast joined with ``parts`` (not created here)."""
    base = os.environ.get(CACHE_ENV)
    if not base:
        base = str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "neuroplast"))
    return Path(base, *parts)


def use_user_numba_cache(numba: Any) -> None:
    """Point numba's on-disk cache (``njit(cache=True)``) at ``cache_dir("numba")`` unless
    the user chose one (``NUMBA_CACHE_DIR``): numba's default writes next to the source,
    into the package's ``__pycache__``."""
    if not getattr(numba.config, "CACHE_DIR", ""):
        numba.config.CACHE_DIR = str(cache_dir("numba"))
