"""Code that runs on the deploy target: ``python -m neuroplast.boards.remote smoke BUNDLE``.

Needs only numpy and neuroplast (no typer/rich), so it works in the minimal target venv.
The smoke run feeds ``steps`` steps of seeded uniform [0, 1) input, collects the outputs, and
prints one JSON line with their shape, sha256 and (when small) values; :func:`smoke` returns
the same dict, so the deployer can compare the target with this host.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import tempfile
from typing import Any

import numpy as np

__all__ = ["smoke_inputs", "smoke", "requirements_satisfied", "main"]

_MAX_VALUES = 4096


def smoke_inputs(rt: Any, steps: int, seed: int) -> list[Any]:
    """Seeded input sequence for ``rt``: uniform [0, 1) float32 per input, one per step."""
    rng = np.random.default_rng(seed)
    seq = []
    for _ in range(steps):
        feeds = {n: rng.random(rt.shapes[n], dtype=np.float32) for n in rt.inputs}
        seq.append(feeds if len(feeds) > 1 else next(iter(feeds.values())))
    return seq


def _flat(out: Any) -> np.ndarray:
    if isinstance(out, dict):
        return np.concatenate([np.asarray(out[k], dtype=np.float64).ravel() for k in sorted(out)])
    return np.asarray(out, dtype=np.float64).ravel()


def smoke(
    bundle: str | os.PathLike, steps: int = 8, seed: int = 0, plugins: list[str] | None = None
) -> dict[str, Any]:
    """Run ``bundle`` for ``steps`` steps of :func:`smoke_inputs`; return a JSON-able summary.

    Also checks that the runtime state survives an atomic save/load round trip. ``plugins``
    are imported first (modules registering an app's node kinds).
    """
    import neuroplast
    from neuroplast.boards.plugins import import_plugins

    import_plugins(plugins)

    rt = neuroplast.load(os.fspath(bundle))
    rt.learn(False)
    outs = [_flat(rt.step(x)) for x in smoke_inputs(rt, steps, seed)]
    y = np.stack(outs)
    if not np.all(np.isfinite(y)):
        return {"ok": False, "error": "smoke output contains NaN or Inf"}
    with tempfile.TemporaryDirectory(prefix="neuroplast-smoke-") as tmp:
        path = os.path.join(tmp, "state.npz")
        rt.save_state(path)
        rt.load_state(path)
    res: dict[str, Any] = {
        "ok": True,
        "mode": rt.mode,
        "steps": int(steps),
        "shape": list(y.shape),
        "sha256": hashlib.sha256(np.ascontiguousarray(y).tobytes()).hexdigest(),
        "mean": float(y.mean()) if y.size else 0.0,
        "neuroplast": getattr(neuroplast, "__version__", "?"),
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    if y.size <= _MAX_VALUES:
        res["values"] = y.tolist()
    return res


def requirements_satisfied(path: str | os.PathLike) -> list[str]:
    """Pins (``name==version`` lines) of ``path`` that the running interpreter does not meet."""
    from importlib.metadata import PackageNotFoundError, version

    missing = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#")[0].strip()
            if not line:
                continue
            name, sep, want = line.partition("==")
            try:
                have = version(name.strip())
            except PackageNotFoundError:
                missing.append(line)
                continue
            if sep and have != want.strip():
                missing.append(f"{line} (have {have})")
    return missing


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m neuroplast.boards.remote")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("smoke", help="run a bundle on seeded input and print a JSON summary")
    sp.add_argument("bundle")
    sp.add_argument("--steps", type=int, default=8)
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--plugin", action="append", default=[], help="module to import first")
    cr = sub.add_parser("check-requirements", help="exit 1 unless all name==version pins are met")
    cr.add_argument("requirements")
    args = ap.parse_args(argv)
    if args.cmd == "check-requirements":
        missing = requirements_satisfied(args.requirements)
        for m in missing:
            print(f"not satisfied: {m}", file=sys.stderr)
        return 1 if missing else 0
    try:
        res = smoke(args.bundle, steps=args.steps, seed=args.seed, plugins=args.plugin)
    except Exception as e:  # report any failure as JSON so the deployer can show it
        res = {"ok": False, "error": f"{type(e).__name__}: {e}"}
    print(json.dumps(res))
    return 0 if res.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
