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

__all__ = ["smoke_inputs", "smoke", "check_score", "health", "requirements_satisfied", "main"]

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


def check_score(bundle: str | os.PathLike, plugins: list[str] | None = None) -> float | None:
    """Accuracy on the bundle's own held-out check set, ``fleet_check.npz`` in the bundle
    folder (``x``: (N, T, *input shape) float32, ``y``: (N,) labels): a window's class is
    the argmax of its outputs summed over time. None when the bundle has no check set."""
    import neuroplast
    from neuroplast.boards.plugins import import_plugins

    path = os.path.join(os.fspath(bundle), "fleet_check.npz")
    if not os.path.isfile(path):
        return None
    import_plugins(plugins)
    with np.load(path, allow_pickle=False) as z:
        x, y = np.asarray(z["x"], np.float32), np.asarray(z["y"], np.int64)
    rt = neuroplast.load(os.fspath(bundle))
    rt.learn(False)
    rt.reset(len(x))
    out = np.asarray(rt.run(np.ascontiguousarray(np.moveaxis(x, 1, 0))), np.float64)
    summed = out.sum(axis=0).reshape(len(x), -1)
    if not np.all(np.isfinite(summed)):
        return 0.0
    return float(np.mean(summed.argmax(axis=1) == y))


def health(remote_dir: str | os.PathLike, plugins: list[str] | None = None) -> dict[str, Any]:
    """Health of the bundle a fleet rollout made current in ``remote_dir`` (the path in
    ``remote_dir/current``): the smoke run, the check-set score and error counters
    (``errors``: failed smoke runs and non-finite outputs)."""
    cur = os.path.join(os.fspath(remote_dir), "current")
    if not os.path.isfile(cur):
        return {
            "ok": False,
            "bundle": None,
            "score": None,
            "errors": 1,
            "error": "no current bundle",
        }
    with open(cur, encoding="utf-8") as f:
        bundle = f.read().strip()
    res: dict[str, Any] = {"bundle": bundle, "errors": 0}
    try:
        sm = smoke(bundle, plugins=plugins)
        res["ok"] = bool(sm.get("ok"))
        res["errors"] += 0 if sm.get("ok") else 1
        res["score"] = check_score(bundle, plugins)
    except Exception as e:  # any failure is a health result, never a crash
        res.update(ok=False, score=None, error=f"{type(e).__name__}: {e}")
        res["errors"] += 1
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
    hp = sub.add_parser("health", help="smoke run, check-set score and error counters as JSON")
    hp.add_argument("remote_dir")
    hp.add_argument("--plugin", action="append", default=[], help="module to import first")
    cr = sub.add_parser("check-requirements", help="exit 1 unless all name==version pins are met")
    cr.add_argument("requirements")
    args = ap.parse_args(argv)
    if args.cmd == "check-requirements":
        missing = requirements_satisfied(args.requirements)
        for m in missing:
            print(f"not satisfied: {m}", file=sys.stderr)
        return 1 if missing else 0
    if args.cmd == "health":
        print(json.dumps(health(args.remote_dir, args.plugin)))
        return 0
    try:
        res = smoke(args.bundle, steps=args.steps, seed=args.seed, plugins=args.plugin)
    except Exception as e:  # report any failure as JSON so the deployer can show it
        res = {"ok": False, "error": f"{type(e).__name__}: {e}"}
    print(json.dumps(res))
    return 0 if res.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
