"""The Python block of docs/place.md runs as written and its models recognise the route."""

import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[3] / "docs" / "place.md"


def test_place_doc_block_runs(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) == 1
    r = subprocess.run(
        [sys.executable, "-c", blocks[0]], cwd=tmp_path, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    r1 = [float(v) for v in re.findall(r"R@1 ([0-9.]+)", r.stdout)]
    assert len(r1) == 2 and min(r1) >= 0.5, r.stdout  # chance is 1/40
