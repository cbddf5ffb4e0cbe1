"""The Python blocks of docs/toolchain.md run as written."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("brevitas")
DOC = Path(__file__).resolve().parents[2] / "docs" / "toolchain.md"


def test_toolchain_doc_blocks_run(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert blocks
    for code in blocks:
        r = subprocess.run(
            [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True
        )
        assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "model.tflite").stat().st_size > 0
    assert (tmp_path / "model.onnx").stat().st_size > 0
