"""`make demo` leaves `git status` clean: its steps (read from the Makefile, the KWS demo on
tiny sizes) run in a temporary clone, and nothing but the one ignored output folder
(`neuroplast-out/`) appears there; generated data goes to the user cache."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
QUICK = {"neuroplast.apps.kws.demo": ["--epochs", "1", "--clips-per-word", "1", "--no-baseline"]}


def demo_steps(makefile: Path) -> list[tuple[dict[str, str], list[str]]]:
    """The commands of the Makefile's ``demo`` recipe: ``(env assignments, argv)`` each,
    ``$(PY)`` replaced by this interpreter."""
    text = makefile.read_text()
    recipe = re.search(r"^demo:.*\n((?:\t.*\n)+)", text, re.M)
    assert recipe, "no demo target in the Makefile"
    steps = []
    for line in recipe.group(1).splitlines():
        words = shlex.split(line.strip().replace("$(PY)", sys.executable))
        env = {}
        while words and re.fullmatch(r"[A-Z_]+=.*", words[0]):
            k, v = words.pop(0).split("=", 1)
            env[k] = v
        steps.append((env, words))
    return steps


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_make_demo_leaves_git_status_clean(tmp_path):
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed (make apt)")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    cache = tmp_path / "cache"
    base = {k: v for k, v in os.environ.items() if not k.startswith("NEUROPLAST_")}
    base.update(XDG_CACHE_HOME=str(cache), OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    steps = demo_steps(clone / "Makefile")
    assert any("neuroplast.demo" in argv for _, argv in steps)
    for env, argv in steps:
        module = argv[argv.index("-m") + 1] if "-m" in argv else ""
        r = subprocess.run(argv + QUICK.get(module, []), cwd=clone, env={**base, **env},
                           capture_output=True, text=True, timeout=540)  # fmt: skip
        assert r.returncode == 0, f"{argv}: {r.stderr[-2000:]}"

    def status(*extra: str) -> list[str]:
        out = subprocess.run(["git", "status", "--porcelain", *extra], cwd=clone,
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
        return out.splitlines()

    assert status() == [], "make demo changed or added files in the checkout"
    assert status("--ignored") == ["!! neuroplast-out/"]
    assert (clone / "neuroplast-out" / "kws" / "results.json").is_file()
    assert any((cache / "neuroplast" / "kws").iterdir())  # generated clips: the user cache
