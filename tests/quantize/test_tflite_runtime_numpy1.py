"""The legacy ``tflite-runtime`` wheel loads and runs our .tflite files.

tflite-runtime 2.14 cannot load under numpy 2 (``_ARRAY_API not found``), so it is
checked in a separate interpreter with numpy<2: set ``NEUROPLAST_TFLITE_RUNTIME_PYTHON``
to a Python that has ``tflite_runtime`` (e.g. ``python -m venv v && v/bin/pip install
'numpy<2' tflite-runtime==2.14.0``). Skipped when it is not set.
"""

from __future__ import annotations

import os
import subprocess

import numpy as np
import pytest
from tlc_models import calibrated, random_inputs, to_nhwc

PY = os.environ.get("NEUROPLAST_TFLITE_RUNTIME_PYTHON")
pytestmark = pytest.mark.skipif(
    not PY, reason="set NEUROPLAST_TFLITE_RUNTIME_PYTHON to a numpy<2 Python with tflite_runtime"
)

RUNNER = """
import sys, numpy as np
from tflite_runtime.interpreter import Interpreter
model, xs, out = sys.argv[1:4]
it = Interpreter(model_path=model); it.allocate_tensors()
i, o = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]
x = np.load(xs); res = []
for k in range(len(x)):
    it.set_tensor(i, x[k:k + 1]); it.invoke(); res.append(it.get_tensor(o))
np.save(out, np.concatenate(res))
"""


@pytest.mark.parametrize("name", ["cnn", "audio1d"])
def test_tflite_runtime_matches_int_runtime(tmp_path, name):
    from neuroplast.export.tflite import export_tflite
    from neuroplast.quant import quantize
    from neuroplast.quantize import lower
    from neuroplast.runtime import Runtime

    model, recipe = calibrated(name)
    g = lower(model, recipe.example_input())
    path = export_tflite(g, tmp_path / "m.tflite", io="int8")
    xq = quantize(random_inputs(recipe.input_shape, 100, 3), g.nodes["input"].quant)
    np.save(tmp_path / "x.npy", to_nhwc(xq))
    subprocess.run(
        [PY, "-c", RUNNER, str(path), str(tmp_path / "x.npy"), str(tmp_path / "y.npy")],
        check=True,
        capture_output=True,
        timeout=120,
    )
    ref = Runtime(g, mode="int").step(xq).astype(np.int64)
    got = np.load(tmp_path / "y.npy").astype(np.int64)
    # tflite-runtime's kernels round twice (gemmlowp): at most 1 LSB from single rounding
    assert np.abs(got - ref).max() <= 1
