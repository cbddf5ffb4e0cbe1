"""Deploy over a real OpenSSH server on 127.0.0.1 (started by the ``sshd`` fixture)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from neuroplast.boards.ssh_deploy import (
    DeployTarget,
    _ssh,
    deploy,
    host_key_fingerprint,
    pin_host_key,
    ssh_command,
    systemd_unit,
)
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
    assert " --source serial:///dev/ttyACM0?baud=115200 " in exec_line  # safe: left bare


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_systemd_unit_escaping_is_accepted_by_systemd(tmp_path):
    """Paths with %, $, spaces, quotes and backslashes: systemd's own parser accepts the unit
    (the ExecStart program exists), and the same unit without %% escaping is refused."""
    d = tmp_path / "we%ird $dir 100%"
    d.mkdir()
    (d / "python").symlink_to(Path(sys.executable).resolve())
    unit = systemd_unit(
        bundle_path=f'{d}/b "q" 50%', venv_python=f"{d}/python", work_dir=str(d),
        state_dir=f"{d}/state \\ $HOME", user=None, source="udp://127.0.0.1:9750",
    )  # fmt: skip
    assert 'Description=neuroplast serve b "q" 50%%' in unit
    good, bad = tmp_path / "np-good.service", tmp_path / "np-bad.service"
    good.write_text(unit)
    bad.write_text(unit.replace("%%", "%"))
    ok = subprocess.run(["systemd-analyze", "verify", str(good)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    no = subprocess.run(["systemd-analyze", "verify", str(bad)], capture_output=True, text=True)
    assert no.returncode != 0
    with pytest.raises(BoardError, match="control characters"):
        systemd_unit(bundle_path="/b\nExecStartPre=/bin/evil", venv_python="/p", work_dir="/w",
                     state_dir="/s", user=None)  # fmt: skip
    with pytest.raises(BoardError, match="quotes or backslashes"):
        systemd_unit(bundle_path="/b", venv_python='/a"b/python', work_dir="/w", state_dir="/s",
                     user=None)  # fmt: skip
    with pytest.raises(BoardError, match="bad user name"):
        systemd_unit(bundle_path="/b", venv_python="/p", work_dir="/w", state_dir="/s",
                     user="pi\nUser=root")  # fmt: skip


def _keygen_fingerprint(pub: Path) -> str:
    """OpenSSH's own fingerprint of a public key file (the independent reference)."""
    out = subprocess.run(
        ["ssh-keygen", "-lf", str(pub)], capture_output=True, text=True, check=True
    )
    return out.stdout.split()[1]


def test_strict_host_keys_and_pinned_fingerprint(sshd, tmp_path):
    host_fp = _keygen_fingerprint(sshd.root / "host_key.pub")
    assert host_key_fingerprint((sshd.root / "host_key.pub").read_text().split()[1]) == host_fp
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    base = dict(host=f"{sshd.user}@127.0.0.1", port=sshd.port, identity=str(sshd.key),
                connect_timeout=5, known_hosts=str(empty))  # fmt: skip
    # strict: a host missing from known_hosts is refused (no trust on first use) ...
    with pytest.raises(BoardError, match="not in known_hosts or does not match"):
        _ssh(DeployTarget(**base, strict_host_keys=True), "true", timeout=30)
    assert empty.read_text() == ""
    # ... pinned: only the key with that fingerprint is trusted, and strictly checked
    pinned = pin_host_key(DeployTarget(**base, host_key_fingerprint=host_fp), tmp_path)
    assert pinned.strict_host_keys and Path(pinned.known_hosts).read_text().count("\n") == 1
    proc = _ssh(pinned, "echo pinned-ok", timeout=30)
    assert proc.returncode == 0 and proc.stdout.strip() == b"pinned-ok"
    other_fp = _keygen_fingerprint(sshd.root / "other_key.pub")  # not the server's key
    with pytest.raises(BoardError, match="does not match the pinned fingerprint"):
        pin_host_key(DeployTarget(**base, host_key_fingerprint=other_fp), tmp_path)
    with pytest.raises(BoardError, match="bad host key fingerprint"):
        DeployTarget(**base, host_key_fingerprint="MD5:00:11")


def test_deploy_command_with_wrong_pin_is_one_line(sshd, small_bundle, tmp_path, capsys):
    from neuroplast.cli import main

    other_fp = _keygen_fingerprint(sshd.root / "other_key.pub")
    code = main(["deploy", str(small_bundle), "--board", "host", "--host", f"{sshd.user}@127.0.0.1",
                 "--ssh-port", str(sshd.port), "--identity", str(sshd.key), "--wheel", str(small_bundle),
                 "--host-key-fingerprint", other_fp])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "does not match the pinned fingerprint" in err
