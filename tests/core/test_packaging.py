"""Import hygiene, the console script, and a real wheel install."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

from neuroplast.bundle import save_bundle

from .factories import snn_graph

ROOT = Path(__file__).resolve().parents[2]


def test_runtime_never_imports_torch(tmp_path):
    p = save_bundle(tmp_path / "b.zip", snn_graph(quantized=True, delays=True), mode="int")
    code = (
        "import sys, numpy as np, neuroplast\n"
        f"rt = neuroplast.load({str(p)!r})\n"
        "rt.run((np.random.default_rng(0).random((10, 20)) < .3).astype(np.float32))\n"
        "import neuroplast.runtime, neuroplast.bundle, neuroplast.graph\n"
        "print(','.join(m for m in ('torch', 'brevitas', 'onnx', 'serial', 'matplotlib') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert out.stdout.strip() == "", f"device runtime imported: {out.stdout}"


def test_cli_version_info_run(tmp_path):
    p = save_bundle(tmp_path / "b", snn_graph())
    exe = Path(sys.executable).with_name("neuroplast")
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip().startswith("neuroplast ")
    out = subprocess.run([exe, "info", str(p)], capture_output=True, text=True, check=True)
    assert "fc1" in out.stdout and "total" in out.stdout
    np.save(tmp_path / "x.npy", np.ones((4, 20), np.float32))
    out = subprocess.run(
        [exe, "run", str(p), "--input", str(tmp_path / "x.npy"), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    import json

    assert json.loads(out.stdout)["shape"] == [4, 4]
    bad = subprocess.run(
        [exe, "run", str(p), "--input", str(tmp_path / "missing.npy")],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "DataError" in bad.stderr and "Traceback" not in bad.stderr


def test_wheel_installs_and_imports(tmp_path):
    """Build a wheel of the project and import it from a clean target folder."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    whl = next((tmp_path / "dist").glob("neuroplast-*.whl"))
    names = zipfile.ZipFile(whl).namelist()
    for pkg in (
        "neuroplast/__init__.py",
        "neuroplast/quantize/__init__.py",
        "neuroplast/firmware_bridge/__init__.py",
        "neuroplast/apps/__init__.py",
        "neuroplast/boards/__init__.py",
        "neuroplast/runtime/runtime.py",
    ):
        assert pkg in names, f"{pkg} missing from the wheel"
    assert not any(n.startswith("sdk/") for n in names)
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(site),
            str(whl),
        ],
        check=True,
        capture_output=True,
    )
    env = dict(os.environ, PYTHONPATH=str(site))
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import neuroplast, neuroplast.runtime; print(neuroplast.__version__, neuroplast.__file__)",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env=env,
    )
    version, path = out.stdout.split()
    assert version == "0.1.0" and path.startswith(str(site))
