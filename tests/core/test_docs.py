"""Every Python block in the README and docs/*.md runs as written, and prints what the doc says.

A doc's blocks run in order in one fresh process (like a notebook: later blocks may use
earlier names), in an empty temporary folder. Printed output is checked two ways:

* a line ``print(...)  # -> text`` must print exactly ``text`` (whitespace-normalised);
* a fenced block tagged ``output`` right after a Python block holds that block's whole
  expected stdout (lines starting with ``...`` match anything).

A block preceded by ``<!-- doc-test: skip REASON -->`` is not run (the reason is shown).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ["README.md"] + sorted(
    str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md") if p.is_file()
)
FENCE = re.compile(
    r"(?P<skip><!-- doc-test: skip[^>]*-->\s*)?```python\n(?P<code>.*?)```"
    r"(?:\s*```output\n(?P<out>.*?)```)?",
    flags=re.S,
)
ARROW = re.compile(r"^(?P<indent>\s*)print\((?P<args>.*)\)\s*#\s*->\s*(?P<want>.*)$")

# Runs the blocks in one namespace; prints a JSON list of each block's stdout at the end.
DRIVER = r"""
import contextlib, io, json, sys
blocks = json.loads(sys.stdin.read())
ns = {"__name__": "__main__"}
outs = []
for i, code in enumerate(blocks):
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(compile(code, f"<block {i + 1}>", "exec"), ns)
    outs.append(buf.getvalue())
print("\n@@OUTPUTS@@" + json.dumps(outs))
"""


def doc_blocks(doc: str) -> list[dict]:
    text = (ROOT / doc).read_text()
    return [{"code": m["code"], "out": m["out"], "skip": m["skip"]} for m in FENCE.finditer(text)]


def _norm(s: str) -> str:
    return " ".join(s.split())


def _arrows(code: str) -> list[str]:
    return [m["want"].strip() for line in code.splitlines() if (m := ARROW.match(line))]


def _matches(got: str, want: str) -> bool:
    g, w = got.strip().splitlines(), want.strip().splitlines()
    if len(g) != len(w):
        return False
    return all(wl.strip() == "..." or _norm(gl) == _norm(wl) for gl, wl in zip(g, w))


@pytest.mark.parametrize("doc", [d for d in DOCS if doc_blocks(d)])
def test_doc_blocks_run_and_print_what_the_doc_says(doc, tmp_path):
    blocks = [b for b in doc_blocks(doc) if not b["skip"]]
    if not blocks:
        pytest.skip("every block is marked doc-test: skip")
    r = subprocess.run(
        [sys.executable, "-c", DRIVER],
        input=json.dumps([b["code"] for b in blocks]),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, f"{doc}: a block failed:\n{r.stderr[-3000:]}"
    outs = json.loads(r.stdout.rsplit("@@OUTPUTS@@", 1)[1])
    for i, (b, out) in enumerate(zip(blocks, outs), 1):
        printed = [ln for ln in out.splitlines() if ln.strip()]
        for want in _arrows(b["code"]):
            assert any(_norm(p) == _norm(want) for p in printed), (
                f"{doc} block {i}: expected a line {want!r}; printed {printed!r}"
            )
        if b["out"] is not None:
            assert _matches(out, b["out"]), (
                f"{doc} block {i}: printed\n{out}\nbut the doc's output block says\n{b['out']}"
            )


def test_the_harness_catches_a_wrong_arrow(tmp_path):
    code = "print(1 + 1)  # -> 3\n"
    assert _arrows(code) == ["3"]
    assert _matches("a\nb\n", "a\n...\n") and not _matches("a\n", "b\n")


def test_docs_index_links_every_page_and_the_readme_links_the_index():
    index = (ROOT / "docs" / "index.md").read_text()
    linked = set(re.findall(r"\]\(([\w.-]+\.md)\)", index))
    pages = {p.name for p in (ROOT / "docs").glob("*.md")} - {"index.md"}
    assert pages <= linked, f"docs/index.md does not link {sorted(pages - linked)}"
    assert all((ROOT / "docs" / p).is_file() for p in linked)
    assert "(docs/index.md)" in (ROOT / "README.md").read_text()
