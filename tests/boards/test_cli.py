"""The boards commands through the real ``neuroplast`` CLI app."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from neuroplast.cli import build_app, main


@pytest.fixture(scope="module")
def app():
    return build_app()


def test_boards_list_and_show(app):
    r = CliRunner().invoke(app, ["boards", "list"], terminal_width=200)
    assert r.exit_code == 0, r.output
    for name in ("rpi4", "rpi5", "jetson-orin-nano", "esp32s3", "xylo", "speck", "loihi2", "sfq"):
        assert name in r.output
    r = CliRunner().invoke(app, ["boards", "show", "xylo", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["neuromorphic"]["neurons_per_core"] == 1000 and d["kind"] == "neuromorphic"
    r = CliRunner().invoke(app, ["boards", "show", "rp2040"], terminal_width=200)
    assert r.exit_code == 0 and "2E8A:000A" in r.output


def test_unknown_board_is_one_clear_line(capsys):
    assert main(["boards", "show", "rpi9"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: BoardError: unknown board 'rpi9'")
    assert "Traceback" not in err


def test_fit_command(app, plastic_bundle):
    r = CliRunner().invoke(app, ["fit", str(plastic_bundle), "--board", "rpi4", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["board"] == "rpi4" and d["verdict"] == "fits" and d["ops"]["updates"] == 512
    r = CliRunner().invoke(
        app, ["fit", str(plastic_bundle), "--board", "speck"], terminal_width=200
    )
    assert r.exit_code == 1, r.output  # a check that ran and failed, like `check`
    assert "does-not-fit" in r.output and "LIF is not a neuron of this chip" in r.output


def test_serve_command(app, small_bundle, tmp_path):
    xs = np.random.default_rng(5).random((4, 16), dtype=np.float32)
    np.save(tmp_path / "x.npy", xs)
    r = CliRunner().invoke(
        app,
        ["serve", str(small_bundle), "--source", str(tmp_path / "x.npy"), "--max-steps", "3",
         "--emit", "argmax", "--state-dir", str(tmp_path / "st"), "--no-learn"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    recs = [json.loads(ln) for ln in r.stdout.splitlines() if ln.startswith("{")]
    import neuroplast

    rt = neuroplast.load(small_bundle)
    ref = [int(np.argmax(rt.step(x))) for x in xs[:3]]
    assert [x["argmax"] for x in recs] == ref and [x["step"] for x in recs] == [1, 2, 3]
    assert (tmp_path / "st" / "state.npz").is_file()


def test_deploy_command_reports_unreachable_host(small_bundle, capsys):
    from .conftest import free_port

    port = free_port()
    code = main(["deploy", str(small_bundle), "--board", "host", "--host", "nobody@127.0.0.1",
                 "--ssh-port", str(port), "--wheel", str(small_bundle)])  # fmt: skip
    assert code == 2
    assert "cannot reach nobody@127.0.0.1" in capsys.readouterr().err


@pytest.mark.timeout(180)
def test_deploy_command_end_to_end(sshd, deployed, wheel, small_bundle, capsys):
    _, remote = deployed  # reuse the venv of the first deploy (a fresh one costs ~5-10 s)
    code = main(
        ["deploy", str(small_bundle), "--board", "rpi5", "--host", f"{sshd.user}@127.0.0.1",
         "--ssh-port", str(sshd.port), "--identity", str(sshd.key), "--remote-dir", str(remote),
         "--python", sshd.python, "--known-hosts", str(sshd.known_hosts), "--wheel", str(wheel)]
    )  # fmt: skip
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "smoke output matches this host" in out.out
    # the x86-64 loopback "Pi" is reported, not refused
    assert "profile rpi5 expects aarch64" in out.out
    assert (remote / "bundles" / "small" / "manifest.json").is_file()


def test_boards_detect_command(app, monkeypatch):
    from serial.tools.list_ports_common import ListPortInfo

    from neuroplast.boards import detect

    p = ListPortInfo("/dev/ttyACM0", skip_link_detection=True)
    p.vid, p.pid, p.description = 0x2341, 0x805A, "Nano 33 BLE"
    monkeypatch.setattr(detect, "_list_ports", lambda: [p])
    r = CliRunner().invoke(app, ["board", "detect"], terminal_width=200)
    assert r.exit_code == 0, r.output
    assert "/dev/ttyACM0" in r.output and "nano33ble" in r.output and "2341:805A" in r.output
    monkeypatch.setattr(detect, "_list_ports", lambda: [])
    r = CliRunner().invoke(app, ["boards", "detect"])  # the old spelling still works
    assert r.exit_code == 0 and "no known board connected" in r.output


def test_deploy_dry_run_checks_and_plans_without_connecting(small_bundle, capsys):
    # a port nothing listens on: any connection attempt would fail; a dry run makes none
    code = main(["deploy", str(small_bundle), "--board", "rpi5", "--host", "pi@127.0.0.1",
                 "--ssh-port", "1", "--service", "--dry-run"])  # fmt: skip
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "deploy would do (7 steps)" in out.out
    assert "ssh -p 1 " in out.out and "pi@127.0.0.1" in out.out
    assert "neuroplast-small.service" in out.out and "fits" in out.out
    code = main(["deploy", str(small_bundle), "--board", "esp32s3", "--host", "pi@127.0.0.1",
                 "--dry-run"])  # fmt: skip
    assert code == 2 and "without Python" in capsys.readouterr().err
