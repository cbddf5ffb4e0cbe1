"""The layering contract (pyproject [tool.importlinter], run by `make layering`) names every
module of the device runtime, so a new sdk/ module cannot slip past it."""

from __future__ import annotations

import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]


def test_device_runtime_contract_lists_every_sdk_module():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    contract = next(c for c in cfg["contracts"] if c["type"] == "forbidden")
    listed = set(contract["source_modules"])
    present = {
        f"neuroplast.{p.stem}"
        for p in (ROOT / "sdk").iterdir()
        if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").exists()
    }
    assert present == listed, f"add {sorted(present - listed)} / drop {sorted(listed - present)}"
    assert {"torch", "brevitas", "neuroplast.quantize"} <= set(contract["forbidden_modules"])


def test_entry_points_name_importable_modules():
    from importlib.metadata import entry_points
    from importlib.util import find_spec

    for group in ("neuroplast.commands", "neuroplast.plugins"):
        eps = list(entry_points(group=group))
        assert eps, f"no entry points in {group}: reinstall (pip install -e .)"
        for ep in eps:
            assert find_spec(ep.value) is not None, f"{group} {ep.name}: {ep.value} not found"
