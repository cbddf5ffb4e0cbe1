"""Fleet deploy, status, collect and staged rollout against four real sshd instances."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from neuroplast.boards.fleet.ssh import (
    fleet_collect,
    fleet_deploy,
    fleet_rollout,
    fleet_status,
    load_fleet,
)
from neuroplast.boards.remote import check_score
from neuroplast.errors import FleetError

from .conftest import make_graph

pytestmark = pytest.mark.timeout(300)


def _bundle(path: Path, w_sign: float, seed: int = 0) -> Path:
    """The 16 -> 32 LIF graph; its check set's labels are what the *reference* graph
    (w_sign = 1) predicts, so a good version scores 1 and a broken one less."""
    from neuroplast.bundle import save_bundle
    from neuroplast.runtime import Runtime

    g = make_graph(seed=seed)
    x = np.random.default_rng(5).random((24, 10, 16), dtype=np.float32) * 2
    rt = Runtime(g)
    rt.reset(len(x))
    y = np.asarray(rt.run(np.moveaxis(x, 1, 0))).sum(0).argmax(1)
    if w_sign != 1:
        g = make_graph(seed=seed + 1)  # other weights: another model
    out = save_bundle(path, g)
    np.savez(out / "fleet_check.npz", x=x, y=y)
    return out


def _fleet_file(tmp: Path, servers) -> Path:  # noqa: ANN001
    lines = []
    for i, s in enumerate(servers):
        lines += ["[[device]]", f'name = "dev{i}"', f'host = "{s.user}@127.0.0.1"', f"port = {s.port}",
                  f'identity = "{s.key}"', f'known_hosts = "{s.known_hosts}"', f'python = "{s.python}"',
                  f'remote_dir = "{tmp / f"remote{i}"}"', f'group = "{"canary" if i == 0 else "rest"}"',
                  "connect_timeout = 5", ""]  # fmt: skip
    p = tmp / "fleet.toml"
    p.write_text("\n".join(lines))
    return p


def test_fleet_file_errors(tmp_path):
    bad = tmp_path / "f.toml"
    bad.write_text('[[device]]\nname = "a"\nhost = "h"\nbogus = 1\n')
    with pytest.raises(FleetError, match="unknown field 'bogus'"):
        load_fleet(bad)
    bad.write_text('[[device]]\nname = "a"\nhost = "h"\n[[device]]\nname = "a"\nhost = "h"\n')
    with pytest.raises(FleetError, match="unique name"):
        load_fleet(bad)
    bad.write_text("[defaults\n")
    with pytest.raises(FleetError, match="not valid TOML"):
        load_fleet(bad)


def test_rollout_canary_and_rollback(sshd_fleet, wheel, tmp_path):
    fleet = load_fleet(_fleet_file(tmp_path, sshd_fleet))
    assert fleet.groups == ["canary", "rest"]
    v1 = _bundle(tmp_path / "v1", 1)
    bad = _bundle(tmp_path / "v2bad", -1)
    good = _bundle(tmp_path / "v3", 1)
    t = time.perf_counter()
    dep = fleet_deploy(fleet, v1, wheel=wheel)
    deploy_s = time.perf_counter() - t
    assert all(r.get("ok") for r in dep.values()), dep
    st = fleet_status(fleet)
    assert {n: r["score"] for n, r in st.items()} == {f"dev{i}": 1.0 for i in range(4)}
    assert check_score(bad) < 0.9  # independent local reference: the bad version regresses

    rep = fleet_rollout(fleet, bad, wheel=wheel)
    assert not rep.completed and rep.stages[0]["group"] == "canary"
    assert list(rep.stages[0]["failed"]) == ["dev0"] and "score fell" in rep.reason
    assert rep.rolled_back == ["dev0"] and len(rep.stages) == 2  # the rest never saw it
    after = fleet_status(fleet)
    assert all(r["bundle"].endswith("/bundles/v1") and r["score"] == 1.0 for r in after.values())

    rep2 = fleet_rollout(fleet, good, wheel=wheel)
    assert rep2.completed and [s["group"] for s in rep2.stages] == ["canary", "rest"]
    final = fleet_status(fleet)
    assert all(r["bundle"].endswith("/bundles/v3") and r["score"] == 1.0 for r in final.values())

    got = fleet_collect(fleet, tmp_path / "collected")
    assert (
        all(r.get("ok") for r in got.values())
        and (tmp_path / "collected" / "dev3" / "state").is_dir()
    )
    out = Path(
        __import__("os").environ.get("NEUROPLAST_FLEET_BENCH_OUT", tmp_path / "rollout.json")
    )
    out.write_text(json.dumps({"hosts": 4, "deploy_all_s": deploy_s, "bad_rollout_s": rep.seconds,
                               "bad_rollout_reason": rep.reason, "rolled_back": rep.rolled_back,
                               "good_rollout_s": rep2.seconds,
                               "stage_seconds": [s["seconds"] for s in rep.stages + rep2.stages]}, indent=1))  # fmt: skip


def test_regression_rules():
    from neuroplast.boards.fleet.ssh import _regressed

    base = {"ok": True, "score": 0.9, "errors": 0}
    assert _regressed(base, {"ok": True, "score": 0.89, "errors": 0}, 0.02) is None
    assert "score fell" in _regressed(base, {"ok": True, "score": 0.85, "errors": 0}, 0.02)
    assert "error counter rose" in _regressed(base, {"ok": True, "score": 0.9, "errors": 2}, 0.02)
    assert "health check failed" in _regressed(base, {"ok": False, "errors": 1}, 0.02)
    assert (
        _regressed({"ok": True, "score": None, "errors": 0}, {"ok": True, "score": None}, 0.02)
        is None
    )
