"""Deploy over a real OpenSSH server on 127.0.0.1 (started by the ``sshd`` fixture)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from neuroplast.boards.ssh_deploy import DeployTarget, deploy, ssh_command, systemd_unit
from neuroplast.errors import BoardError

from .conftest import free_port, ssh_target

pytestmark = pytest.mark.timeout(180)  # never hang CI on a stuck ssh/subprocess


def test_deploy_to_loopback_sshd(deployed, deploy_bundle):
    import neuroplast

    res, remote = deployed
    assert res.smoke_matches_host and res.smoke["ok"]
    assert res.smoke["shape"] == [8, 32] and res.smoke["steps"] == 8
    assert res.unit_name is None and not res.service_installed
    assert res.remote_dir == str(remote) and res.mem_available > 0
    # the venv on the "board" runs neuroplast installed from the wheel, not the source tree
    venv_py = remote / "venv" / "bin" / "python"
    loc = subprocess.run(
        [str(venv_py), "-c", "import neuroplast; print(neuroplast.__file__)"],
        capture_output=True, text=True, cwd="/", check=True,
    ).stdout.strip()  # fmt: skip
    assert loc.startswith(str(remote / "venv"))
    # independent reference: the remote smoke output equals this host's Runtime on the same input
    out = subprocess.run(
        [str(venv_py), "-m", "neuroplast.boards.remote", "smoke", str(remote / "bundles" / "small"),
         "--steps", "5", "--seed", "3"],
        capture_output=True, text=True, cwd="/", check=True,
    ).stdout  # fmt: skip
    got = json.loads(out.strip().splitlines()[-1])
    rt = neuroplast.load(deploy_bundle)
    xs = np.random.default_rng(3).random((5, 16), dtype=np.float32)
    ref = np.stack([rt.step(x) for x in xs])
    assert ref.sum() > 0  # the check is not vacuous: some neurons spike
    np.testing.assert_array_equal(np.asarray(got["values"]), ref)
    assert (remote / "requirements.txt").read_text().strip() == f"numpy=={np.__version__}"


def test_service_install_steps(deployed, deploy_bundle, sshd, tmp_path, wheel):
    # second deploy to the same folder reuses the venv and installs the service: systemd is
    # not running here, so the unit lands in unit_dir and `systemctl daemon-reload` fails
    _, remote = deployed
    unit_dir = tmp_path / "units"
    unit_dir.mkdir()
    with pytest.raises(BoardError, match="smoke-tested, but installing the systemd unit") as ei:
        deploy(
            deploy_bundle,
            "host",
            ssh_target(sshd, remote),
            service=True,
            wheel=wheel,
            unit_dir=str(unit_dir),
        )
    assert "neuroplast-small.service" in str(ei.value)
    unit = (unit_dir / "neuroplast-small.service").read_text()
    assert "Restart=on-failure" in unit
    assert (
        f"ExecStart={remote}/venv/bin/python -m neuroplast.boards.stream {remote}/bundles/small"
        in unit
    )
    assert f"--state-dir {remote}/state/small" in unit
    assert "WantedBy=multi-user.target" in unit and f"User={sshd.user}" in unit
    assert (remote / "neuroplast-small.service").read_text() == unit


def test_unreachable_host_is_a_clear_board_error(sshd, small_bundle, tmp_path, wheel):
    port = free_port()  # nothing listens there
    with pytest.raises(
        BoardError, match=r"cannot reach root@127\.0\.0\.1:\d+ over SSH: .*Connection refused"
    ):
        deploy(small_bundle, "host", ssh_target(sshd, tmp_path / "r", port=port), wheel=wheel)


def test_auth_failure_is_a_clear_board_error(sshd, small_bundle, tmp_path, wheel):
    with pytest.raises(BoardError, match="authentication .* failed"):
        deploy(
            small_bundle, "host", ssh_target(sshd, tmp_path / "r", key=sshd.other_key), wheel=wheel
        )
    assert not (tmp_path / "r").exists()


def test_insufficient_ram_is_refused_before_connecting(small_bundle, tmp_path):
    text = (Path(__file__).resolve().parents[2] / "boards" / "profiles" / "rpi4.toml").read_text()
    text = text.replace('name = "rpi4"', 'name = "tinypi"')
    text = text.replace("ram_bytes = 4294967296", "ram_bytes = 67108864")  # 64 MiB
    text = text.replace("reserved_ram_bytes = 402653184", "reserved_ram_bytes = 33554432")
    prof = tmp_path / "tinypi.toml"
    prof.write_text(text)
    # port 1 on loopback: would fail differently if a connection were attempted
    target = DeployTarget(host="nobody@127.0.0.1", port=1, connect_timeout=1)
    with pytest.raises(
        BoardError, match=r"insufficient RAM: small needs about 48\.\d MiB .* 32\.0 MiB usable"
    ):
        deploy(small_bundle, str(prof), target)


def test_mcu_board_is_not_an_ssh_target(small_bundle):
    with pytest.raises(BoardError, match="rp2040 is a mcu target without Python"):
        deploy(small_bundle, "rp2040", DeployTarget(host="pi@127.0.0.1"))


def test_bad_target_fields_are_rejected(tmp_path):
    with pytest.raises(BoardError, match="bad SSH host"):
        DeployTarget(host="-oProxyCommand=evil")
    with pytest.raises(BoardError, match="bad SSH port"):
        DeployTarget(host="pi@h", port=70000)
    with pytest.raises(BoardError, match="identity file not found"):
        DeployTarget(host="pi@h", identity=str(tmp_path / "nokey"))


def test_ssh_command_is_non_interactive():
    argv = ssh_command(DeployTarget(host="pi@raspberrypi.local", port=2222), "true")
    assert argv[0] == "ssh" and "BatchMode=yes" in argv and argv[-2:] == ["--", "true"]
    assert argv[argv.index("-p") + 1] == "2222"


def test_systemd_unit_text():
    unit = systemd_unit(
        bundle_path="/home/pi/neuroplast/bundles/kws",
        venv_python="/home/pi/neuroplast/venv/bin/python",
        work_dir="/home/pi/neuroplast",
        state_dir="/home/pi/neuroplast/state/kws",
        user="pi",
        source="serial:///dev/ttyACM0?baud=115200",
        learn=False,
    )
    lines = unit.splitlines()
    assert lines[0] == "[Unit]" and "[Service]" in lines and "[Install]" in lines
    assert "User=pi" in lines and "Restart=on-failure" in lines
    exec_line = next(ln for ln in lines if ln.startswith("ExecStart="))
    assert exec_line.endswith("--no-learn")
    assert "'serial:///dev/ttyACM0?baud=115200'" in exec_line  # shell-quoted
