"""A Raspberry Pi stand-in: an aarch64 Debian userland run under qemu-user, no binfmt.

``ensure_root()`` builds (once, cached under ``~/.cache/neuroplast/aarch64``) a folder with
Debian 12's arm64 ``python3.11`` and the shared libraries it needs, unpacked with
``dpkg -x`` from ``apt-get download`` (the host must list the arm64 architecture:
``dpkg --add-architecture arm64 && apt-get update``, which ``make apt`` does), plus the
aarch64 wheel of the numpy version the host runs (``pip download --platform``).
``run_python(root, args)`` runs ``qemu-aarch64-static -L ROOT ROOT/usr/bin/python3.11`` with
the neuroplast device runtime (``sdk/``, as the ``neuroplast`` package) on its path.

    python tests/aarch64_root.py          # build the cache (make aarch64 runs this)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEBS = ("libc6", "libgcc-s1", "libstdc++6", "zlib1g", "libexpat1", "libssl3", "libffi8",
        "libbz2-1.0", "liblzma5", "python3.11-minimal", "libpython3.11-minimal",
        "libpython3.11-stdlib")  # fmt: skip


def cache_root() -> Path:
    base = os.environ.get("NEUROPLAST_CACHE") or str(
        Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "neuroplast"
    )
    return Path(base) / "aarch64"


def _numpy_version() -> str:
    import numpy

    return numpy.__version__


def ensure_root(root: Path | None = None) -> Path:
    """Build the userland at ``root`` unless it is complete; return ``root``."""
    root = root or cache_root()
    marker = root / f"ready-numpy-{_numpy_version()}"
    if marker.exists():
        return root
    qemu = shutil.which("qemu-aarch64-static")
    if not qemu:
        raise RuntimeError("qemu-aarch64-static not found: apt-get install qemu-user-static")
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp_root = Path(tempfile.mkdtemp(prefix=".aarch64-", dir=root.parent))
    try:
        with tempfile.TemporaryDirectory() as dl:
            p = subprocess.run(["apt-get", "download", *(f"{d}:arm64" for d in DEBS)], cwd=dl,
                               capture_output=True, text=True)  # fmt: skip
            if p.returncode != 0:
                raise RuntimeError(
                    "apt-get download of the arm64 packages failed (does dpkg list arm64? "
                    f"run `make apt`): {p.stderr.strip()[-500:]}"
                )
            for deb in sorted(Path(dl).glob("*.deb")):
                subprocess.run(["dpkg", "-x", str(deb), str(tmp_root)], check=True)
            whl_dir = Path(dl) / "whl"
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                 "--platform", "manylinux_2_28_aarch64", "--platform", "manylinux2014_aarch64",
                 "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311",
                 f"numpy=={_numpy_version()}", "-d", str(whl_dir)],
                check=True, capture_output=True,
            )  # fmt: skip
            site = tmp_root / "site"
            for whl in whl_dir.glob("*.whl"):
                with zipfile.ZipFile(whl) as z:
                    z.extractall(site)
            for so in site.rglob("*.so*"):  # zipfile drops the executable bit
                so.chmod(0o755)
        (tmp_root / marker.name).touch()
        if root.exists():
            shutil.rmtree(root)
        tmp_root.rename(root)
        return root
    finally:
        if tmp_root.exists():
            shutil.rmtree(tmp_root, ignore_errors=True)


def run_python(root: Path, args: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the aarch64 python3.11 of ``root`` under qemu-aarch64-static with numpy and the
    neuroplast device runtime (``sdk/`` of this checkout) importable."""
    with tempfile.TemporaryDirectory() as src:  # this checkout's sdk/ as the neuroplast package
        (Path(src) / "neuroplast").symlink_to(REPO / "sdk")
        env = {"PYTHONPATH": f"{root / 'site'}:{src}", "PYTHONNOUSERSITE": "1",
               "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "LANG": "C.UTF-8",
               "PATH": "/usr/bin:/bin"}  # fmt: skip
        cmd = ["qemu-aarch64-static", "-L", str(root), str(root / "usr/bin/python3.11"), *args]
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


if __name__ == "__main__":
    r = ensure_root()
    out = run_python(
        r, ["-c", "import platform, numpy; print(platform.machine(), numpy.__version__)"]
    )
    print(r, out.stdout.strip() or out.stderr.strip()[-500:])
    sys.exit(out.returncode)
