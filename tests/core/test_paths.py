"""Outputs and caches go where neuroplast.paths says (never into the source tree)."""

from __future__ import annotations

import types
from pathlib import Path

from neuroplast.paths import cache_dir, output_dir, use_user_numba_cache


def test_output_and_cache_dirs_follow_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("NEUROPLAST_OUT", raising=False)
    monkeypatch.delenv("NEUROPLAST_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert output_dir("kws") == Path("neuroplast-out", "kws")
    assert cache_dir("numba") == tmp_path / "xdg" / "neuroplast" / "numba"
    monkeypatch.setenv("NEUROPLAST_OUT", str(tmp_path / "out"))
    monkeypatch.setenv("NEUROPLAST_CACHE", str(tmp_path / "c"))
    assert output_dir("kws") == tmp_path / "out" / "kws"
    assert cache_dir("numba") == tmp_path / "c" / "numba"


def test_numba_cache_goes_to_the_user_cache_unless_the_user_chose(monkeypatch, tmp_path):
    monkeypatch.setenv("NEUROPLAST_CACHE", str(tmp_path))
    fake = types.SimpleNamespace(config=types.SimpleNamespace(CACHE_DIR=""))
    use_user_numba_cache(fake)
    assert fake.config.CACHE_DIR == str(tmp_path / "numba")
    mine = types.SimpleNamespace(config=types.SimpleNamespace(CACHE_DIR="/elsewhere"))
    use_user_numba_cache(mine)  # NUMBA_CACHE_DIR set by the user: kept
    assert mine.config.CACHE_DIR == "/elsewhere"


def test_accelerated_stdp_points_numba_at_the_user_cache(tmp_path):
    """Loading the real numba kernels (``njit(cache=True)``) sets numba's cache folder to the
    user cache, so their compiled files never land next to the source."""
    import os
    import subprocess
    import sys

    import pytest

    pytest.importorskip("numba")
    code = (
        "import numba\n"
        "from neuroplast.plasticity._accel import kernels\n"
        "print(kernels() is not None, numba.config.CACHE_DIR)\n"
    )
    env = {
        k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "NEUROPLAST_NO_NUMBA")
    }
    env["NEUROPLAST_CACHE"] = str(tmp_path)
    env["NEUROPLAST_BACKEND"] = "numpy"  # numba is the fallback behind the compiled kernels
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       timeout=300)  # fmt: skip
    assert r.stdout.split() == ["True", str(tmp_path / "numba")], r.stderr
