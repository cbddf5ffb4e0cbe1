"""Fixtures for the boards tests: small bundles and a real OpenSSH server on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

SSHD = "/usr/sbin/sshd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_graph(n_in: int = 16, n_hidden: int = 32, seed: int = 0):
    from neuroplast.graph import LIF, Graph, Input, Linear

    rng = np.random.default_rng(seed)
    w = (rng.standard_normal((n_hidden, n_in)) * 0.5).astype(np.float32)
    return Graph.sequential(
        [
            ("in", Input(shape=(n_in,))),
            ("fc", Linear(weight=w, bias=np.zeros(n_hidden, np.float32))),
            (
                "lif",
                LIF(
                    tau_mem=np.full(n_hidden, 0.02, np.float32), v_th=np.ones(n_hidden, np.float32)
                ),
            ),
        ],
        dt=1e-3,
    )


@pytest.fixture
def small_bundle(tmp_path: Path) -> Path:
    from neuroplast.bundle import save_bundle

    return save_bundle(tmp_path / "small", make_graph())


@dataclass
class SshServer:
    port: int
    user: str
    key: Path
    other_key: Path
    known_hosts: Path
    root: Path
    python: str


def _base_python() -> str:
    """An interpreter for the remote venv whose system site-packages already hold numpy,
    so the test installs nothing from the network (the host venv's base interpreter)."""
    base = getattr(sys, "_base_executable", None) or sys.executable
    cand = [base, os.path.realpath(base), shutil.which("python3") or ""]
    for c in cand:
        if c and os.path.exists(c):
            r = subprocess.run([c, "-c", "import numpy"], capture_output=True)
            if r.returncode == 0:
                return c
    return base


def start_sshd(d: Path) -> tuple[subprocess.Popen, SshServer]:
    """A real sshd on a free loopback port with its keys in ``d``; returns (process, server)."""
    os.chmod(d, 0o755)
    for name in ("host_key", "user_key", "other_key"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)], check=True
        )
    (d / "authorized_keys").write_text((d / "user_key.pub").read_text())
    port = free_port()
    cfg = d / "sshd_config"
    cfg.write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {d / 'host_key'}",
                f"PidFile {d / 'sshd.pid'}",
                f"AuthorizedKeysFile {d / 'authorized_keys'}",
                "PermitRootLogin prohibit-password",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PubkeyAuthentication yes",
                "StrictModes no",
                "UsePAM no",
                "MaxStartups 50",
                "LogLevel ERROR",
                "",
            ]
        )
    )
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege-separation dir
    log = open(d / "sshd.log", "wb")
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(cfg)], stdout=log, stderr=log)
    log.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited: {(d / 'sshd.log').read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            time.sleep(0.05)
    else:
        stop_sshd(proc)
        raise RuntimeError("sshd did not start listening within 10 s")
    import pwd

    return proc, SshServer(
        port=port,
        user=pwd.getpwuid(os.geteuid()).pw_name,
        key=d / "user_key",
        other_key=d / "other_key",
        known_hosts=d / "known_hosts",
        root=d,
        python=_base_python(),
    )


def stop_sshd(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _need_sshd() -> None:
    if (
        not os.path.exists(SSHD)
        or shutil.which("ssh") is None
        or shutil.which("ssh-keygen") is None
    ):
        pytest.skip("OpenSSH server/client not installed (apt-get install openssh-server)")
    if os.geteuid() != 0:
        pytest.skip("the loopback sshd fixture runs as root (privilege separation dir)")


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory):
    _need_sshd()
    proc, server = start_sshd(tmp_path_factory.mktemp("sshd"))
    try:
        yield server
    finally:
        stop_sshd(proc)


@pytest.fixture(scope="session")
def sshd_fleet(tmp_path_factory: pytest.TempPathFactory):
    """Four real sshd instances on loopback ports (a fleet of four hosts)."""
    _need_sshd()
    started = []
    try:
        for i in range(4):
            started.append(start_sshd(tmp_path_factory.mktemp(f"fleet-sshd{i}")))
        yield [s for _, s in started]
    finally:
        for proc, _ in started:
            stop_sshd(proc)


@pytest.fixture
def plastic_bundle(tmp_path: Path) -> Path:
    """The small graph with an Oja rule on ``fc`` (on-device learning)."""
    from neuroplast.bundle import save_bundle
    from neuroplast.plasticity import OjaParams, PlasticityEngine

    eng = PlasticityEngine(seed=0)
    eng.attach("fc", OjaParams(lr=0.01))
    return save_bundle(tmp_path / "plastic", make_graph(), plasticity=eng.to_dict())


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from neuroplast.boards.ssh_deploy import build_wheel

    return build_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="session")
def deploy_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from neuroplast.bundle import save_bundle

    return save_bundle(tmp_path_factory.mktemp("dep") / "small", make_graph())


def ssh_target(sshd: SshServer, remote_dir: Path, key: Path | None = None, port: int | None = None):
    from neuroplast.boards.ssh_deploy import DeployTarget

    return DeployTarget(
        host=f"{sshd.user}@127.0.0.1",
        port=port or sshd.port,
        identity=str(key or sshd.key),
        remote_dir=str(remote_dir),
        python=sshd.python,
        connect_timeout=5,
        known_hosts=str(sshd.known_hosts),
    )


@pytest.fixture(scope="session")
def deployed(sshd: SshServer, deploy_bundle: Path, wheel: Path, tmp_path_factory):
    """One real deploy to the loopback sshd (fresh venv); later deploys reuse its folder."""
    from neuroplast.boards.ssh_deploy import deploy

    remote = tmp_path_factory.mktemp("remote")
    res = deploy(deploy_bundle, "host", ssh_target(sshd, remote), wheel=wheel)
    return res, remote


MOSQUITTO = "/usr/sbin/mosquitto"


@dataclass
class Broker:
    """A real mosquitto on 127.0.0.1: ``port`` anonymous, ``auth_port`` username/password,
    ``tls_port`` TLS (server cert signed by ``ca``) + username/password."""

    port: int
    auth_port: int
    tls_port: int
    user: str
    password_file: Path
    ca: Path
    root: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory):
    """mosquitto (Debian package, see the Makefile's APT_PACKAGES) on free loopback ports."""
    if not os.path.exists(MOSQUITTO) or shutil.which("mosquitto_passwd") is None:
        pytest.skip("mosquitto not installed (apt-get install mosquitto)")
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    d = tmp_path_factory.mktemp("mosquitto")
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=neuroplast test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        cwd=d,
    )
    _openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        cwd=d,
    )
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server.crt", cwd=d)  # fmt: skip
    user, password = "device1", "s3cret-pass"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(d / "passwd"), user, password],
                   check=True, capture_output=True)  # fmt: skip
    (d / "password").write_text(password + "\n")
    ports = [free_port() for _ in range(3)]
    auth = ["allow_anonymous false", f"password_file {d / 'passwd'}"]
    lines = ["per_listener_settings true", "persistence false", "log_dest stderr",
             "log_type error", f"pid_file {d / 'mosquitto.pid'}"]  # fmt: skip
    if os.geteuid() == 0:
        lines.append("user root")  # else it drops to 'mosquitto', who cannot read tmp files
    lines += [f"listener {ports[0]} 127.0.0.1", "allow_anonymous true"]
    lines += [f"listener {ports[1]} 127.0.0.1", *auth]
    lines += [f"listener {ports[2]} 127.0.0.1", *auth, f"cafile {d / 'ca.crt'}",
              f"certfile {d / 'server.crt'}", f"keyfile {d / 'server.key'}"]  # fmt: skip
    (d / "mosquitto.conf").write_text("\n".join(lines) + "\n")
    log = open(d / "mosquitto.log", "wb")
    proc = subprocess.Popen([MOSQUITTO, "-c", str(d / "mosquitto.conf")], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 10
        for port in ports:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"mosquitto exited: {(d / 'mosquitto.log').read_text()}")
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError("mosquitto did not listen within 10 s") from None
                    time.sleep(0.05)
        yield Broker(ports[0], ports[1], ports[2], user, d / "password", d / "ca.crt", d)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
