"""Raspberry Pi stand-in: bundles made on x86-64 run by the neuroplast device runtime in an
aarch64 Debian userland (python3.11 + the aarch64 numpy wheel) under qemu-user; integer
outputs bit-exact with x86, float outputs within float32 rounding. The userland is built
and cached by tests/aarch64_root.py (``make aarch64``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aarch64_root import ensure_root, run_python  # noqa: E402

import neuroplast  # noqa: E402
from neuroplast.bundle import save_bundle  # noqa: E402
from neuroplast.firmware_bridge.selftest import random_graph  # noqa: E402

from .factories import snn_graph  # noqa: E402

SCRIPT = """
import json, platform, sys
from pathlib import Path
import numpy as np
import neuroplast
d = Path(sys.argv[1])
out = {"machine": platform.machine(), "numpy": np.__version__}
for b in sorted(d.glob("*.zip")):
    x = np.load(d / (b.stem + ".x.npy"))
    for mode in ("int", "float"):
        y = np.asarray(neuroplast.load(b, mode=mode).run(x))
        np.save(d / f"{b.stem}.{mode}.arm.npy", y)
print(json.dumps(out))
"""


def test_bundles_from_x86_run_bit_exact_on_aarch64(tmp_path):
    root = ensure_root()
    rng = np.random.default_rng(21)
    graphs = {
        "snn_delays": snn_graph(quantized=True, delays=True),
        "residual_cnn": random_graph("Add", rng),
        "cubalif": random_graph("CubaLIF", rng),
        "conv_pool": random_graph("AvgPool2d", rng),
        "conv2d": random_graph("Conv2d", rng),
    }
    ref = {}
    for name, g in graphs.items():
        path = save_bundle(tmp_path / f"{name}.zip", g, mode="int")
        shape = g.shapes()[g.inputs[0]]
        x = (
            rng.integers(-60, 60, (12,) + shape).astype(np.float32) * 0.03
        )  # float input: quantized on load
        np.save(tmp_path / f"{name}.x.npy", x)
        ref[name] = {m: np.asarray(neuroplast.load(path, mode=m).run(x)) for m in ("int", "float")}
    (tmp_path / "run.py").write_text(SCRIPT)
    p = run_python(root, [str(tmp_path / "run.py"), str(tmp_path)])
    assert p.returncode == 0, p.stderr[-3000:]
    info = json.loads(p.stdout.strip().splitlines()[-1])
    assert info["machine"] == "aarch64" and info["numpy"] == np.__version__
    for name in graphs:
        arm_int = np.load(tmp_path / f"{name}.int.arm.npy")
        np.testing.assert_array_equal(arm_int, ref[name]["int"], err_msg=name)
        arm_f = np.load(tmp_path / f"{name}.float.arm.npy")
        np.testing.assert_allclose(arm_f, ref[name]["float"], rtol=1e-5, atol=1e-5, err_msg=name)
    assert any(np.unique(r["int"]).size > 1 for r in ref.values())  # outputs are not trivial
