"""Generate the firmware's C header ``firmware/protocol_gen.h`` from :mod:`.spec`.

``render()`` returns the header text; ``main()`` writes it (``python -m
neuroplast.firmware_bridge.gen_header [--check]``). The header is committed so the
firmware builds without Python; a test checks that regenerating gives the same bytes.
"""

from __future__ import annotations

import sys
from pathlib import Path

from neuroplast.firmware_bridge import spec

__all__ = [
    "render",
    "render_tables",
    "header_path",
    "protocol_md_path",
    "update_protocol_md",
    "main",
]

BEGIN = "<!-- BEGIN GENERATED TABLES (gen_header.py) -->"
END = "<!-- END GENERATED TABLES -->"


def header_path() -> Path:
    """Path of the committed generated header."""
    return Path(__file__).resolve().parent / "firmware" / "protocol_gen.h"


def protocol_md_path() -> Path:
    """Path of PROTOCOL.md, whose code tables are generated from the same spec."""
    return Path(__file__).resolve().parent / "PROTOCOL.md"


def _md(title: str, entries: tuple[spec.Entry, ...], fmt: str) -> list[str]:
    rows = [f"**{title}**", "", "| code | name | meaning |", "|---|---|---|"]
    rows += [f"| {fmt.format(e.code)} | `{e.name}` | {e.doc} |" for e in entries]
    return rows + [""]


def render_tables() -> str:
    """The Markdown tables of PROTOCOL.md §3 (between the BEGIN/END markers)."""
    lines = [BEGIN, ""]
    lines += _md("Message types (header byte 1)", spec.MESSAGES, "0x{0:02X}")
    lines += _md("Error codes (NACK payload byte 1)", spec.ERRORS, "{0}")
    lines += _md("Header flags (header byte 2)", spec.FLAGS, "0x{0:02X}")
    lines += _md("Model image layer kinds", spec.LAYER_KINDS, "{0}")
    lines += _md("LEARN_ENABLE modes (payload byte 0)", spec.LEARN_MODES, "{0}")
    lines += _md("STATS reply: u32 counters in this order", spec.STATS_FIELDS, "{0}")
    lines.append(END)
    return "\n".join(lines)


def update_protocol_md(text: str) -> str:
    """Replace the generated block of PROTOCOL.md's text."""
    if BEGIN not in text or END not in text:
        raise ValueError("PROTOCOL.md lacks the generated-table markers")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return head + render_tables() + tail


def _block(prefix: str, entries: tuple[spec.Entry, ...], fmt: str) -> list[str]:
    width = max(len(prefix + e.name) for e in entries) + 1
    return [
        f"#define {(prefix + e.name).ljust(width)} {fmt.format(e.code)}  /* {e.doc} */"
        for e in entries
    ]


def render() -> str:
    """Return the full text of ``protocol_gen.h``."""
    lines = [
        "/* protocol_gen.h -- GENERATED from firmware_bridge/spec.py; do not edit.",
        " * Regenerate: python -m neuroplast.firmware_bridge.gen_header",
        " * Byte-level specification: firmware_bridge/PROTOCOL.md */",
        "#ifndef NP_PROTOCOL_GEN_H",
        "#define NP_PROTOCOL_GEN_H",
        "",
        "/* constants */",
        *_block("NP_", spec.CONSTANTS, "{0}"),
        "",
        "/* message types (header byte 1) */",
        *_block("NP_MSG_", spec.MESSAGES, "0x{0:02X}"),
        "",
        "/* error codes (NACK payload byte 1) */",
        *_block("NP_ERR_", spec.ERRORS, "{0}"),
        "",
        "/* header flags (header byte 2) */",
        *_block("NP_FLAG_", spec.FLAGS, "0x{0:02X}"),
        "",
        "/* model image layer kinds */",
        *_block("NP_LAYER_", spec.LAYER_KINDS, "{0}"),
        "",
        "/* LEARN_ENABLE modes (payload byte 0) */",
        *_block("NP_LEARN_", spec.LEARN_MODES, "{0}"),
        "",
        "/* STATS reply field indices */",
        *_block("NP_STAT_", spec.STATS_FIELDS, "{0}"),
        "",
        f'#define NP_IMAGE_MAGIC "{spec.IMAGE_MAGIC.decode()}"',
        "",
        "#endif /* NP_PROTOCOL_GEN_H */",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Write the header, or with ``--check`` exit 1 if the committed one differs."""
    argv = sys.argv[1:] if argv is None else argv
    text = render()
    path = header_path()
    md_path = protocol_md_path()
    md_old = md_path.read_text()
    md_new = update_protocol_md(md_old)
    if "--check" in argv:
        ok = path.exists() and path.read_text() == text and md_old == md_new
        print(f"{path.name}, {md_path.name}: {'up to date' if ok else 'STALE, regenerate'}")
        return 0 if ok else 1
    path.write_text(text)
    md_path.write_text(md_new)
    print(f"wrote {path} and the tables of {md_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
