"""The Python blocks in the README and docs/runtime.md run as written."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ["README.md", "docs/runtime.md", "docs/security.md"]


def _blocks(path):
    return re.findall(r"```python\n(.*?)```", (ROOT / path).read_text(), flags=re.S)


@pytest.mark.parametrize("doc", DOCS)
def test_doc_blocks_run(doc, tmp_path):
    blocks = _blocks(doc)
    assert blocks, f"{doc} has no python blocks"
    for code in blocks:
        subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path, capture_output=True, text=True)
