"""Fleet operations over SSH: deploy, status, collect and staged rollout.

A fleet file (TOML) names the devices, their boards and groups::

    [defaults]                      # any device field
    identity = "~/.ssh/fleet_key"
    board = "rpi4"

    [[device]]
    name = "pi-1"
    host = "pi@10.0.0.11"
    port = 22
    group = "canary"                # groups roll out in the order they first appear
    remote_dir = "neuroplast"

Each device is deployed with :func:`neuroplast.boards.ssh_deploy.deploy` (the same checks,
upload, install and smoke run), devices in parallel threads (``workers``). After a
deploy, ``remote_dir/current`` names the bundle that is live and ``remote_dir/previous``
the one before. ``status`` runs ``python -m neuroplast.boards.remote health`` on every
device: smoke run, the score on the bundle's check set (``fleet_check.npz``) and error
counters. ``collect`` copies every device's learned state (``remote_dir/state``).

``rollout`` is staged: health of every device first (the baseline), then group by group
(the first group is the canary): deploy, health, and when a device of the group fails to
deploy, its score drops by more than ``max_drop`` below its baseline, or its error count
rises, every device updated so far is rolled back (``current`` <- ``previous``) and the
rollout stops.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import shlex
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neuroplast.boards.ssh_deploy import DeployTarget, _check, _ssh, deploy
from neuroplast.errors import FleetError, NeuroplastError

__all__ = ["FleetDevice", "Fleet", "load_fleet", "fleet_deploy", "fleet_status", "fleet_collect",
           "fleet_rollout", "RolloutReport"]  # fmt: skip

_TARGET_FIELDS = {f.name for f in dataclasses.fields(DeployTarget)}


@dataclass(frozen=True)
class FleetDevice:
    """One device: a name, how to reach it, its board profile and rollout group."""

    name: str
    target: DeployTarget
    board: str = "host"
    group: str = "all"


@dataclass(frozen=True)
class Fleet:
    devices: tuple[FleetDevice, ...]

    @property
    def groups(self) -> list[str]:
        """Groups in the order they first appear (the first is the canary)."""
        return list(dict.fromkeys(d.group for d in self.devices))

    def group(self, name: str) -> list[FleetDevice]:
        return [d for d in self.devices if d.group == name]


def load_fleet(path: str | os.PathLike) -> Fleet:
    """Read and validate a fleet file (see the module docstring)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    p = Path(path)
    try:
        doc = tomllib.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise FleetError(f"cannot read fleet file {p}: {e}") from None
    except tomllib.TOMLDecodeError as e:
        raise FleetError(f"fleet file {p} is not valid TOML: {e}") from None
    defaults = doc.get("defaults", {})
    rows = doc.get("device")
    if not isinstance(defaults, dict) or not isinstance(rows, list) or not rows:
        raise FleetError(f"fleet file {p}: needs at least one [[device]] table")
    devices, seen = [], set()
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise FleetError(f"fleet file {p}: device {i} is not a table")
        d = {**defaults, **row}
        name, board, group = d.pop("name", None), d.pop("board", "host"), d.pop("group", "all")
        if not isinstance(name, str) or not name or name in seen:
            raise FleetError(f"fleet file {p}: device {i} needs a unique name, got {name!r}")
        seen.add(name)
        unknown = sorted(set(d) - _TARGET_FIELDS)
        if unknown:
            raise FleetError(f"fleet file {p}: device {name}: unknown field {unknown[0]!r}")
        if "identity" in d:
            d["identity"] = os.path.expanduser(str(d["identity"]))
        if "ssh_options" in d:
            d["ssh_options"] = tuple(d["ssh_options"])
        try:
            target = DeployTarget(**d)
        except TypeError as e:
            raise FleetError(f"fleet file {p}: device {name}: {e}") from None
        devices.append(FleetDevice(name, target, str(board), str(group)))
    return Fleet(tuple(devices))


def _parallel(fn: Any, devices: list[FleetDevice], workers: int) -> dict[str, Any]:
    """``fn(device)`` for every device in parallel threads; an error becomes its message."""

    def one(d: FleetDevice) -> Any:
        try:
            return fn(d)
        except NeuroplastError as e:
            return {"error": str(e)}

    with ThreadPoolExecutor(max(1, min(workers, len(devices)))) as ex:
        return dict(zip([d.name for d in devices], ex.map(one, devices)))


def _set_current(d: FleetDevice, bundle_path: str) -> None:
    rd = shlex.quote(d.target.remote_dir)
    cmd = (f"cd {rd} && ([ -f current ] && cp current previous || true) && "
           f"printf '%s\\n' {shlex.quote(bundle_path)} > current.tmp && mv current.tmp current")  # fmt: skip
    _check(_ssh(d.target, cmd, timeout=60, what="set current"), d.target, "set current")


def _rollback(d: FleetDevice) -> dict[str, Any]:
    rd = shlex.quote(d.target.remote_dir)
    cmd = f"cd {rd} && [ -f previous ] && cp previous current.tmp && mv current.tmp current"
    proc = _ssh(d.target, cmd, timeout=60, what="rollback")
    return {"rolled_back": proc.returncode == 0}


def fleet_deploy(fleet: Fleet, bundle: str | os.PathLike, *, wheel: str | os.PathLike | None = None,
                 devices: list[FleetDevice] | None = None, workers: int = 8) -> dict[str, Any]:  # fmt: skip
    """Deploy ``bundle`` to ``devices`` (default: all) in parallel and make it current.
    Returns per device ``{"ok", "seconds", "bundle"}`` or ``{"error"}``."""
    if wheel is None:  # build once for the whole fleet
        import tempfile

        from neuroplast.boards.ssh_deploy import build_wheel

        with tempfile.TemporaryDirectory(prefix="neuroplast-fleet-") as tmp:
            return fleet_deploy(
                fleet, bundle, wheel=build_wheel(tmp), devices=devices, workers=workers
            )

    def one(d: FleetDevice) -> dict[str, Any]:
        t = time.perf_counter()
        res = deploy(bundle, d.board, d.target, wheel=wheel)
        _set_current(d, res.bundle_path)
        return {"ok": True, "seconds": time.perf_counter() - t, "bundle": res.bundle_path}

    return _parallel(one, list(devices or fleet.devices), workers)


def fleet_status(
    fleet: Fleet, *, devices: list[FleetDevice] | None = None, workers: int = 8
) -> dict[str, Any]:
    """Health of every device (:func:`neuroplast.boards.remote.health`, run remotely)."""

    def one(d: FleetDevice) -> dict[str, Any]:
        rd = shlex.quote(d.target.remote_dir)
        cmd = f"cd {rd} && venv/bin/python -m neuroplast.boards.remote health ."
        out = _check(_ssh(d.target, cmd, timeout=300, what="health"), d.target, "health")
        try:
            return json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise FleetError(f"health on {d.name} printed no result: {out[-200:]!r}") from None

    return _parallel(one, list(devices or fleet.devices), workers)


def fleet_collect(fleet: Fleet, dest: str | os.PathLike, *, workers: int = 8) -> dict[str, Any]:
    """Copy every device's ``remote_dir/state`` to ``dest/<device>/state``."""
    out = Path(dest)

    def one(d: FleetDevice) -> dict[str, Any]:
        rd = shlex.quote(d.target.remote_dir)
        proc = _ssh(
            d.target, f"cd {rd} && mkdir -p state && tar czf - state", timeout=600, what="collect"
        )
        if proc.returncode != 0:
            raise FleetError(
                f"collect on {d.name} failed: {proc.stderr.decode(errors='replace')[-200:]}"
            )
        where = out / d.name
        where.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(proc.stdout), mode="r:gz") as tar:
            tar.extractall(where, filter="data")
        return {
            "ok": True,
            "bytes": len(proc.stdout),
            "files": sum(1 for p in where.rglob("*") if p.is_file()),
        }

    return _parallel(one, list(fleet.devices), workers)


@dataclass
class RolloutReport:
    """What :func:`fleet_rollout` did: baseline and per-stage health, the verdict."""

    baseline: dict[str, Any]
    stages: list[dict[str, Any]] = field(default_factory=list)
    rolled_back: list[str] = field(default_factory=list)
    completed: bool = False
    reason: str = ""
    seconds: float = 0.0


def _regressed(before: dict[str, Any], after: dict[str, Any], max_drop: float) -> str | None:
    if "error" in after:
        return after["error"]
    if not after.get("ok"):
        return f"health check failed ({after.get('error', 'smoke run')})"
    if int(after.get("errors", 0)) > int(before.get("errors", 0)):
        return f"error counter rose from {before.get('errors', 0)} to {after.get('errors')}"
    b, a = before.get("score"), after.get("score")
    if b is not None and (a is None or a < b - max_drop):
        return f"score fell from {b:.3f} to {a if a is None else round(a, 3)}"
    return None


def fleet_rollout(fleet: Fleet, bundle: str | os.PathLike, *, wheel: str | os.PathLike | None = None,
                  max_drop: float = 0.02, workers: int = 8) -> RolloutReport:  # fmt: skip
    """Staged rollout with automatic rollback (see the module docstring)."""
    t0 = time.perf_counter()
    rep = RolloutReport(baseline=fleet_status(fleet, workers=workers))
    done: list[FleetDevice] = []
    for g in fleet.groups:
        devs = fleet.group(g)
        t = time.perf_counter()
        dep = fleet_deploy(fleet, bundle, wheel=wheel, devices=devs, workers=workers)
        ok = [d for d in devs if "error" not in dep[d.name]]
        done += ok
        health = fleet_status(fleet, devices=ok, workers=workers) if ok else {}
        bad = {d.name: dep[d.name]["error"] for d in devs if d not in ok}
        for d in ok:
            why = _regressed(rep.baseline.get(d.name, {}), health[d.name], max_drop)
            if why:
                bad[d.name] = why
        rep.stages.append({"group": g, "devices": [d.name for d in devs], "health": health,
                           "failed": bad, "seconds": time.perf_counter() - t})  # fmt: skip
        if bad:
            t = time.perf_counter()
            rb = _parallel(_rollback, done, workers)
            rep.rolled_back = [n for n, r in rb.items() if r.get("rolled_back")]
            after = fleet_status(fleet, devices=done, workers=workers)
            rep.stages.append({"group": "rollback", "devices": [d.name for d in done], "health": after,
                               "failed": {}, "seconds": time.perf_counter() - t})  # fmt: skip
            rep.reason = f"group {g}: " + "; ".join(f"{k}: {v}" for k, v in sorted(bad.items()))
            rep.seconds = time.perf_counter() - t0
            return rep
    rep.completed = True
    rep.seconds = time.perf_counter() - t0
    return rep
