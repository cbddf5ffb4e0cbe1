"""The app stays light: no torch/matplotlib at import; every package exports __all__."""

import subprocess
import sys


def test_import_is_light():
    code = (
        "import sys, neuroplast.apps.place as p; "
        "bad = [m for m in ('torch', 'brevitas', 'matplotlib', 'typer') if m in sys.modules]; "
        "assert not bad, bad; assert 'train_ensemble' in p.__all__; "
        "assert all(hasattr(p, n) for n in p.__all__)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
