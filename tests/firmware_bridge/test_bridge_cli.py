"""``neuroplast board ...`` commands against the virtual board (typer's CliRunner)."""

from __future__ import annotations

import numpy as np
import pytest
import typer
from bridge_models import conv_delay
from typer.testing import CliRunner

from neuroplast.firmware_bridge.cli import register


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """test root"""

    register(app)
    return app


def test_board_commands(vboard, tmp_path):
    from neuroplast.bundle import save_bundle

    rt = conv_delay()
    bundle = save_bundle(tmp_path / "m", rt.graph, mode="int")
    x = np.random.default_rng(0).integers(-128, 128, (12, 2, 20)).astype(np.int8)
    np.save(tmp_path / "x.npy", x)
    runner = CliRunner()
    app = _app()

    r = runner.invoke(app, ["board", "ping", "--port", vboard.port, "-n", "3", "--size", "300"])
    assert r.exit_code == 0, r.output
    assert "mean ms" in r.output

    r = runner.invoke(app, ["board", "load", str(bundle), "--port", vboard.port])
    assert r.exit_code == 0, r.output
    assert "board reports 40 -> 8" in r.output

    out = tmp_path / "y.npy"
    r = runner.invoke(
        app,
        ["board", "infer", str(bundle), "-i", str(tmp_path / "x.npy"), "--port", vboard.port]
        + ["--no-load", "--check", "-o", str(out)],
    )
    assert r.exit_code == 0, r.output
    assert "bit-identical" in r.output
    rt.reset()
    np.testing.assert_array_equal(np.load(out), rt.run(x))

    r = runner.invoke(app, ["board", "info", "--port", vboard.port])
    assert r.exit_code == 0, r.output
    assert "posix-virtual" in r.output and "infer_steps" in r.output

    r = runner.invoke(
        app, ["board", "monitor", "--port", vboard.port, "--count", "2", "--interval", "0.05"]
    )
    assert r.exit_code == 0, r.output
    assert r.output.count("uptime") == 2

    r = runner.invoke(app, ["board", "ping", "--port", vboard.port, "--trace", "-n", "1"])
    assert r.exit_code == 0


def test_virtual_command_prints_a_pty():
    r = CliRunner().invoke(_app(), ["board", "virtual", "--duration", "0.3"])
    assert r.exit_code == 0, r.output
    assert "/dev/pts/" in r.output


def test_missing_port_is_a_clear_error(monkeypatch):
    import neuroplast.cli
    from neuroplast.errors import BoardError

    monkeypatch.setattr(neuroplast.cli, "PORT_FINDERS", [lambda b: []])
    r = CliRunner().invoke(_app(), ["board", "ping"], env={"NEUROPLAST_PORT": ""})
    assert isinstance(r.exception, BoardError)
    assert "--port" in str(r.exception)


def test_qemu_command_prints_a_pty():
    r = CliRunner().invoke(_app(), ["board", "qemu", "--duration", "0.5"])
    assert r.exit_code == 0, r.output
    assert "/dev/pts/" in r.output and "cortex-m4" in r.output


def test_selftest_command(vboard):
    r = CliRunner().invoke(
        _app(),
        [
            "board",
            "selftest",
            "--port",
            vboard.port,
            "--graphs",
            "1",
            "--kind",
            "Conv2d",
            "--kind",
            "LIF",
        ],  # fmt: skip
    )
    assert r.exit_code == 0, r.output
    assert "Conv2d" in r.output and "LIF" in r.output and "bit-identical" in r.output


def test_without_port_the_one_detected_board_is_used(monkeypatch):
    """`board ping` with no --port uses what `board detect` finds: one board -> its port;
    two -> an error naming both."""
    import neuroplast.cli
    from neuroplast.cli import find_port
    from neuroplast.errors import BoardError

    monkeypatch.setattr(neuroplast.cli, "PORT_FINDERS", [lambda b: [("/dev/x", "rp2040")]])
    assert find_port() == ("/dev/x", "rp2040")
    two = [("/dev/x", "rp2040"), ("/dev/y", "esp32s3")]
    monkeypatch.setattr(neuroplast.cli, "PORT_FINDERS", [lambda b: two])
    with pytest.raises(BoardError, match="several boards connected.*/dev/x.*/dev/y"):
        find_port()
