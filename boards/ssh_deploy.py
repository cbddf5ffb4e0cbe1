"""Deploy a bundle to a Linux board (Raspberry Pi, Jetson, any SSH host) with the system ssh.

Steps, each a single ssh connection (OpenSSH client, ``BatchMode=yes`` so a missing key fails
fast instead of prompting). Host keys: trust on first use by default
(``StrictHostKeyChecking=accept-new``); ``strict_host_keys`` requires the key to be in
known_hosts already; ``host_key_fingerprint`` (``SHA256:...``, as ``ssh-keygen -lf`` prints)
pins it: the server's keys are fetched with ``ssh-keyscan``, only the one with that
fingerprint is written to a private known_hosts file, and ssh then checks strictly that the
server holds it.

1. **check**: the board profile runs Python, and the bundle's estimated RAM (see
   :func:`neuroplast.boards.estimate.fit`) fits the profile's usable RAM;
2. **probe** the target: ``uname -m``, Python version, ``MemAvailable``; the bundle must fit
   in the RAM the target has free right now;
3. **upload** one tar stream: the bundle, a wheel of the local neuroplast (``pip wheel
   --no-deps``), and ``requirements.txt`` pinning the runtime dependencies to the versions
   this host runs (numpy);
4. **install**: ``python3 -m venv --system-site-packages`` (reuses a system numpy when the
   pinned version is already there), ``pip install`` the wheel and the pinned requirements;
5. **smoke**: run the bundle on the target for a few steps of seeded input
   (``python -m neuroplast.boards.remote smoke``) and compare its output with the same
   smoke run on this host;
6. **service** (optional): write a systemd unit that runs ``neuroplast serve`` with
   ``Restart=on-failure``, install it, ``systemctl daemon-reload`` and ``enable --now``.

Remote layout under ``remote_dir`` (default ``~/neuroplast``)::

    venv/  wheels/  requirements.txt  bundles/<name>  state/<name>/  <unit>.service
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import io
import json
import os
import re
import shlex
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neuroplast.boards.profile import BoardProfile, load_profile
from neuroplast.errors import BoardError

__all__ = [
    "DeployTarget",
    "pin_host_key",
    "host_key_fingerprint",
    "DeployResult",
    "deploy",
    "deploy_plan",
    "runtime_requirements",
    "systemd_unit",
    "build_wheel",
    "ssh_command",
]

SMOKE_STEPS = 8
SMOKE_SEED = 0


@dataclass(frozen=True)
class DeployTarget:
    """Where to deploy: ``host`` is ``[user@]hostname``; ``remote_dir`` is relative to the
    remote home unless absolute; ``python`` is the remote interpreter that creates the venv."""

    host: str
    port: int = 22
    identity: str | None = None
    remote_dir: str = "neuroplast"
    python: str = "python3"
    connect_timeout: float = 10.0
    known_hosts: str | None = None
    ssh_options: tuple[str, ...] = ()
    strict_host_keys: bool = False
    host_key_fingerprint: str | None = None

    def __post_init__(self) -> None:
        if not self.host or any(c.isspace() for c in self.host) or self.host.startswith("-"):
            raise BoardError(f"bad SSH host {self.host!r}: expected [user@]hostname")
        if not 0 < int(self.port) < 65536:
            raise BoardError(f"bad SSH port {self.port}: expected 1..65535")
        if self.identity is not None and not Path(self.identity).is_file():
            raise BoardError(f"SSH identity file not found: {self.identity}")
        if not self.remote_dir or "\n" in self.remote_dir:
            raise BoardError(f"bad remote directory {self.remote_dir!r}")
        fp = self.host_key_fingerprint
        if fp is not None and not re.fullmatch(r"SHA256:[A-Za-z0-9+/]{43}=?", fp):
            raise BoardError(
                f"bad host key fingerprint {fp!r}: expected SHA256:<43 base64 characters>, as "
                "`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` prints on the board"
            )


@dataclass(frozen=True)
class DeployResult:
    """What :func:`deploy` did and saw."""

    host: str
    board: str
    remote_dir: str
    bundle_path: str
    python: str
    machine: str
    mem_available: int
    smoke: dict[str, Any]
    smoke_matches_host: bool
    unit_name: str | None = None
    unit_text: str | None = None
    service_installed: bool = False
    warnings: tuple[str, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)


# ------------------------------------------------------------------ ssh plumbing
def ssh_command(target: DeployTarget, remote_cmd: str | None = None) -> list[str]:
    """The ``ssh`` argv for ``target`` (non-interactive, bounded connect time)."""
    argv = [
        "ssh",
        "-p",
        str(int(target.port)),
        "-o",
        "BatchMode=yes",
        "-o",
        f"ConnectTimeout={max(1, int(round(target.connect_timeout)))}",
        "-o",
        f"StrictHostKeyChecking={'yes' if target.strict_host_keys else 'accept-new'}",
        "-o",
        "LogLevel=ERROR",
    ]
    if target.known_hosts:
        argv += ["-o", f"UserKnownHostsFile={target.known_hosts}"]
    if target.identity:
        argv += ["-i", str(target.identity), "-o", "IdentitiesOnly=yes"]
    for opt in target.ssh_options:
        argv += ["-o", opt]
    argv.append(target.host)
    if remote_cmd is not None:
        argv += ["--", remote_cmd]
    return argv


def _classify_ssh_failure(target: DeployTarget, stderr: str) -> BoardError:
    where = f"{target.host}:{target.port}"
    low = stderr.lower()
    if "permission denied" in low or "too many authentication failures" in low:
        return BoardError(
            f"SSH authentication to {where} failed (publickey): {stderr.strip()[-300:]}. "
            "Pass --identity KEY or add your public key to the board's ~/.ssh/authorized_keys."
        )
    if "host key verification failed" in low or "remote host identification has changed" in low:
        return BoardError(
            f"SSH host key of {where} is not in known_hosts or does not match it: "
            f"{stderr.strip()[-300:]}. Check the board's key fingerprint and pass it as "
            "--host-key-fingerprint SHA256:..., or add it to known_hosts"
        )
    markers = (
        "connection refused",
        "no route to host",
        "could not resolve",
        "name or service not known",
        "timed out",
        "network is unreachable",
        "connection closed",
        "connection reset",
    )
    if any(m in low for m in markers):
        return BoardError(f"cannot reach {where} over SSH: {stderr.strip()[-300:]}")
    return BoardError(f"SSH to {where} failed: {stderr.strip()[-300:] or 'no message'}")


def _ssh(
    target: DeployTarget,
    remote_cmd: str,
    *,
    stdin: bytes | None = None,
    timeout: float = 600.0,
    what: str = "command",
) -> subprocess.CompletedProcess:
    argv = ssh_command(target, remote_cmd)
    try:
        proc = subprocess.run(
            argv,
            input=stdin if stdin is not None else b"",
            capture_output=True,
            timeout=timeout,
        )
    except FileNotFoundError as e:
        raise BoardError("the OpenSSH client 'ssh' is not installed on this host") from e
    except subprocess.TimeoutExpired as e:
        raise BoardError(
            f"SSH {what} on {target.host}:{target.port} timed out after {timeout:.0f} s"
        ) from e
    if proc.returncode == 255:
        raise _classify_ssh_failure(target, proc.stderr.decode("utf-8", "replace"))
    return proc


def _check(proc: subprocess.CompletedProcess, target: DeployTarget, what: str) -> str:
    if proc.returncode != 0:
        err = (proc.stderr or b"").decode("utf-8", "replace").strip()
        out = (proc.stdout or b"").decode("utf-8", "replace").strip()
        tail = (err or out)[-800:]
        raise BoardError(f"{what} failed on {target.host} (exit {proc.returncode}): {tail}")
    return proc.stdout.decode("utf-8", "replace")


def host_key_fingerprint(key_b64: str) -> str:
    """OpenSSH's SHA256 fingerprint of a public key blob (base64, as in known_hosts)."""
    digest = hashlib.sha256(base64.b64decode(key_b64)).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def pin_host_key(target: DeployTarget, workdir: str | os.PathLike) -> DeployTarget:
    """``target`` checking strictly against a known_hosts file in ``workdir`` that holds only
    the server key whose fingerprint is ``target.host_key_fingerprint``."""
    want = target.host_key_fingerprint
    if want is None:
        return target
    hostname = target.host.rpartition("@")[2]
    argv = ["ssh-keyscan", "-p", str(int(target.port)), "-T",
            str(max(1, int(round(target.connect_timeout)))), hostname]  # fmt: skip
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    except FileNotFoundError as e:
        raise BoardError("'ssh-keyscan' (OpenSSH client) is not installed on this host") from e
    except subprocess.TimeoutExpired:
        raise BoardError(f"ssh-keyscan of {hostname}:{target.port} timed out") from None
    offered: list[tuple[str, str]] = []
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3 and not line.startswith("#"):
            try:
                offered.append((parts[1], host_key_fingerprint(parts[2])))
            except (ValueError, binascii.Error):
                continue
            if offered[-1][1] == want.rstrip("="):
                known = Path(workdir) / "known_hosts"
                known.write_text(f"{parts[0]} {parts[1]} {parts[2]}\n")
                algos = "rsa-sha2-512,rsa-sha2-256" if parts[1] == "ssh-rsa" else parts[1]
                return dataclasses.replace(
                    target,
                    known_hosts=str(known),
                    strict_host_keys=True,
                    ssh_options=(*target.ssh_options, f"HostKeyAlgorithms={algos}"),
                )
    if not offered:
        raise BoardError(
            f"cannot read the SSH host keys of {hostname}:{target.port} "
            f"({proc.stderr.strip()[-200:] or 'no answer'})"
        )
    got = ", ".join(f"{fp} ({kind})" for kind, fp in offered)
    raise BoardError(
        f"SSH host key of {hostname}:{target.port} does not match the pinned fingerprint {want}: "
        f"the server offers {got}. Someone may be intercepting the connection; do not deploy"
    )


# ------------------------------------------------------------------ local artifacts
def runtime_requirements() -> list[str]:
    """Pinned runtime requirements: the versions this host runs and tests against."""
    import numpy

    return [f"numpy=={numpy.__version__}"]


def _project_root() -> Path | None:
    import neuroplast

    here = Path(neuroplast.__file__).resolve().parent  # .../sdk in a source checkout
    for cand in (here.parent, here.parent.parent):
        if (cand / "pyproject.toml").is_file() and (cand / "boards").is_dir():
            return cand
    return None


_SOURCE_FILES = ("pyproject.toml", "setup.py", "setup.cfg", "README.md", "LICENSE", "MANIFEST.in")
_SOURCE_DIRS = ("sdk", "quantize", "firmware_bridge", "apps", "boards")


def _copy_sources(root: Path, dst: Path) -> None:
    import shutil

    for name in _SOURCE_FILES:
        if (root / name).is_file():
            shutil.copy2(root / name, dst / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "build", "*.egg-info", "*.o")
    for name in _SOURCE_DIRS:
        if (root / name).is_dir():
            shutil.copytree(root / name, dst / name, ignore=ignore)


def build_wheel(out_dir: str | os.PathLike, project: str | os.PathLike | None = None) -> Path:
    """``pip wheel --no-deps`` of the neuroplast source tree into ``out_dir``; returns the wheel."""
    root = Path(project) if project is not None else _project_root()
    if root is None:
        raise BoardError(
            "deploy needs the neuroplast source tree to build a wheel (neuroplast is installed "
            "from a wheel here); pass wheel=PATH / --wheel PATH"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="neuroplast-src-") as src:
        # Build from a clean copy: setuptools' in-tree build/ folder would otherwise litter the
        # checkout and could carry stale modules into the wheel.
        _copy_sources(root, Path(src))
        cmd = [
            sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
            "--disable-pip-version-check", "-q", "-w", str(out.resolve()), src,
        ]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise BoardError(f"building the neuroplast wheel failed: {proc.stderr.strip()[-800:]}")
    wheels = sorted(out.glob("neuroplast-*.whl"), key=lambda p: p.stat().st_mtime)
    if not wheels:
        raise BoardError(f"pip wheel produced no neuroplast wheel in {out}")
    return wheels[-1]


def _safe_name(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_.-]", "-", name).strip(".-")
    return s or "bundle"


def _tar_upload(
    bundle: Path,
    bundle_name: str,
    wheel: Path,
    requirements: list[str],
    unit: tuple[str, str] | None,
) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(str(bundle), arcname=f"bundles/{bundle_name}")
        tar.add(str(wheel), arcname=f"wheels/{wheel.name}")
        req = ("\n".join(requirements) + "\n").encode()
        info = tarfile.TarInfo("requirements.txt")
        info.size = len(req)
        info.mtime = int(time.time())
        tar.addfile(info, io.BytesIO(req))
        if unit is not None:
            data = unit[1].encode()
            info = tarfile.TarInfo(unit[0])
            info.size = len(data)
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


# ------------------------------------------------------------------ systemd
def _unit_value(v: str, what: str) -> str:
    """A value for a unit file line: no control characters (a newline would start a new
    directive); ``%`` is escaped by the callers as ``%%`` (systemd expands specifiers)."""
    if any(ord(c) < 32 or ord(c) == 127 for c in v):
        raise BoardError(f"{what} {v!r} contains control characters; not allowed in a systemd unit")
    return v


def _exec_arg(a: str, first: bool) -> str:
    """One ExecStart= word: ``%%`` and, in arguments, ``$$`` (systemd substitutes ``$VAR``
    there, never in the program path); double-quoted with C escapes unless plainly safe."""
    a = _unit_value(a, "ExecStart argument").replace("%", "%%")
    if first and any(c in a for c in "\"'\\"):  # systemd's string_is_safe() refuses these
        raise BoardError(
            f"systemd cannot run a program whose path contains quotes or backslashes: {a!r}; "
            "deploy to a remote_dir without them"
        )
    if not first:
        a = a.replace("$", "$$")
    if re.fullmatch(r"[A-Za-z0-9_@%+=:,./?&$-]+", a):
        return a
    return '"' + a.replace("\\", "\\\\").replace('"', '\\"') + '"'


def systemd_unit(
    *,
    bundle_path: str,
    venv_python: str,
    work_dir: str,
    state_dir: str,
    user: str | None,
    source: str = "udp://127.0.0.1:9750",
    save_every_s: float = 60.0,
    learn: bool = True,
    plugins: list[str] | None = None,
) -> str:
    """Text of a systemd service running ``neuroplast serve`` that restarts on failure.

    Every value is escaped for systemd (``%%``, ``$$``, quoting; control characters refused),
    so paths and sources with spaces, ``%``, ``$`` or quotes reach serve unchanged."""
    args = [
        venv_python, "-m", "neuroplast.boards.stream", bundle_path,
        "--source", source, "--state-dir", state_dir, "--save-every-s", f"{save_every_s:g}",
    ]  # fmt: skip
    if not learn:
        args.append("--no-learn")
    for mod in plugins or ():
        args += ["--plugin", mod]
    exec_start = " ".join(_exec_arg(a, i == 0) for i, a in enumerate(args))
    if user is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?|[0-9]+", user):
        raise BoardError(f"bad user name for the systemd unit: {user!r}")
    for what, path in (("working directory", work_dir), ("venv Python", venv_python)):
        if not path.startswith("/"):  # a leading - @ : + ! would change ExecStart's meaning
            raise BoardError(f"the unit's {what} must be an absolute path, got {path!r}")
    lines = [
        "[Unit]",
        "Description=neuroplast serve "
        + _unit_value(Path(bundle_path).name, "bundle name").replace("%", "%%"),
        "After=network-online.target",
        "Wants=network-online.target",
        "",
        "[Service]",
        "Type=simple",
    ]
    if user:
        lines.append(f"User={user}")
    lines += [
        "WorkingDirectory=" + _unit_value(work_dir, "working directory").replace("%", "%%"),
        "Environment=PYTHONUNBUFFERED=1",
        f"ExecStart={exec_start}",
        "Restart=on-failure",
        "RestartSec=5",
        # SIGTERM makes serve write a final state save before exiting.
        "KillSignal=SIGTERM",
        "TimeoutStopSec=30",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ]
    return "\n".join(lines)


# ------------------------------------------------------------------ main entry
def _ram_check(bundle: Path, prof: BoardProfile, plugins: list[str] | None) -> Any:
    from neuroplast.boards.estimate import fit

    rep = fit(bundle, prof, plugins=plugins)
    if rep.memory.ram_needed > prof.memory.usable_ram_bytes:
        raise BoardError(
            f"insufficient RAM: {bundle.name} needs about {rep.memory.ram_needed / 2**20:.1f} MiB "
            f"(weights {rep.memory.weights} B, state {rep.memory.state} B, activations "
            f"{rep.memory.activations} B, plasticity {rep.memory.plasticity} B, workspace "
            f"{rep.memory.workspace} B, Python runtime "
            f"{rep.memory.runtime} B) but {prof.name} has "
            f"{prof.memory.usable_ram_bytes / 2**20:.1f} MiB usable"
        )
    return rep


def _compare_smoke(remote: dict[str, Any], local: dict[str, Any]) -> bool:
    import numpy as np

    if remote.get("shape") != local.get("shape"):
        return False
    if remote.get("sha256") == local.get("sha256"):
        return True
    a, b = remote.get("values"), local.get("values")
    if a is None or b is None:
        return False
    # Float mode may differ in the last bits across CPUs / BLAS builds.
    return bool(np.allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6))


def _local_checks(
    bundle: str | os.PathLike, board: str | BoardProfile, plugins: list[str] | None
) -> tuple[BoardProfile, Path, Any]:
    """Step 1 of :func:`deploy` (no connection): the profile runs Python, the bundle exists
    and fits the profile's usable RAM. Returns ``(profile, bundle path, fit report)``."""
    prof = board if isinstance(board, BoardProfile) else load_profile(board)
    if not prof.python_runtime:
        raise BoardError(
            f"{prof.name} is a {prof.kind} target without Python; deploy over SSH targets Linux "
            "boards (rpi4, rpi5, jetson-nano, jetson-orin-nano, host). Use the firmware bridge "
            "for microcontrollers."
        )
    bpath = Path(bundle)
    if not bpath.exists():
        raise BoardError(f"bundle not found: {bpath}")
    return prof, bpath, _ram_check(bpath, prof, plugins)


def deploy_plan(
    bundle: str | os.PathLike,
    board: str | BoardProfile,
    target: DeployTarget,
    *,
    service: bool = False,
    wheel: str | os.PathLike | None = None,
    serve_source: str = "udp://127.0.0.1:9750",
    smoke_steps: int = SMOKE_STEPS,
    plugins: list[str] | None = None,
) -> list[str]:
    """What :func:`deploy` would do, one line per step, without connecting to the board.

    Runs every check this host can make (the profile, the RAM fit, the smoke run that the
    board's output will be compared with); the remote paths assume ``remote_dir`` under
    the board user's home, as ``deploy`` resolves it."""
    from neuroplast.boards.remote import smoke as local_smoke

    prof, bpath, rep = _local_checks(bundle, board, plugins)
    local = local_smoke(bpath, steps=smoke_steps, seed=SMOKE_SEED, plugins=plugins)
    rd = target.remote_dir if target.remote_dir.startswith("/") else f"~/{target.remote_dir}"
    name = _safe_name(bpath.name)
    reqs = ", ".join(runtime_requirements())
    where = f"the wheel {Path(wheel).name}" if wheel else "a wheel built from this source tree"
    check = (
        f"check: {bpath.name} on {prof.name}: {rep.verdict}, about "
        f"{rep.memory.ram_needed / 2**20:.1f} MiB of {prof.memory.usable_ram_bytes / 2**20:.0f} "
        f"MiB usable RAM; local smoke run of {smoke_steps} steps: output {local.get('shape')}"
    )
    smoke = (
        "smoke: `python -m neuroplast.boards.remote smoke` on the board, compared with this "
        f"host's run (sha256 {str(local.get('sha256'))[:12]}...)"
    )
    lines = [
        check,
        "connect: " + " ".join(shlex.quote(a) for a in ssh_command(target)),
        f"probe: architecture, Python version and free RAM of {target.host}",
        f"upload: {rd}/bundles/{name}, {where}, requirements.txt ({reqs})",
        f"install: {rd}/venv ({target.python} -m venv), the wheel and the requirements",
        smoke,
    ]
    if service:
        unit = f"neuroplast-{_safe_name(bpath.stem)}.service"
        lines.append(
            f"service: systemd unit {unit} running `neuroplast serve` on {serve_source}, state in "
            f"{rd}/state/{name}, enabled with systemctl (sudo)"
        )
    return lines


def deploy(
    bundle: str | os.PathLike,
    board: str | BoardProfile,
    target: DeployTarget,
    *,
    service: bool = False,
    wheel: str | os.PathLike | None = None,
    requirements: list[str] | None = None,
    unit_dir: str = "/etc/systemd/system",
    serve_source: str = "udp://127.0.0.1:9750",
    systemctl: str = "systemctl",
    smoke_steps: int = SMOKE_STEPS,
    plugins: list[str] | None = None,
    log: Any = None,
) -> DeployResult:
    """Install ``bundle`` on ``target`` as board ``board``; see the module docstring.

    Raises :class:`BoardError` for an unsuitable board, a bundle that does not fit, an
    unreachable host, failed authentication, a host key that is unknown (strict) or not the
    pinned one, a failed install, or a smoke run whose output differs from this host's.
    """
    with tempfile.TemporaryDirectory(prefix="neuroplast-hostkey-") as kd:
        return _deploy(
            bundle,
            board,
            pin_host_key(target, kd),
            service=service,
            wheel=wheel,
            requirements=requirements,
            unit_dir=unit_dir,
            serve_source=serve_source,
            systemctl=systemctl,
            smoke_steps=smoke_steps,
            plugins=plugins,
            log=log,
        )


def _deploy(
    bundle: str | os.PathLike,
    board: str | BoardProfile,
    target: DeployTarget,
    *,
    service: bool = False,
    wheel: str | os.PathLike | None = None,
    requirements: list[str] | None = None,
    unit_dir: str = "/etc/systemd/system",
    serve_source: str = "udp://127.0.0.1:9750",
    systemctl: str = "systemctl",
    smoke_steps: int = SMOKE_STEPS,
    plugins: list[str] | None = None,
    log: Any = None,
) -> DeployResult:
    """The steps of :func:`deploy`, with the host key already pinned."""
    from neuroplast.boards.remote import smoke as local_smoke

    def say(msg: str) -> None:
        if log is not None:
            log(msg)

    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    warnings: list[str] = []
    prof, bpath, rep = _local_checks(bundle, board, plugins)
    say(f"fit on {prof.name}: {rep.verdict}, {rep.memory.ram_needed / 2**20:.1f} MiB RAM")
    local = local_smoke(bpath, steps=smoke_steps, seed=SMOKE_SEED, plugins=plugins)
    timings["check"] = time.perf_counter() - t0

    # --- probe
    t = time.perf_counter()
    rd = target.remote_dir
    qd = shlex.quote(rd)
    probe = (
        f"mkdir -p {qd} && cd {qd} && pwd && uname -m && id -un && "
        f"{shlex.quote(target.python)} -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])' && "
        "(grep MemAvailable /proc/meminfo || echo 'MemAvailable: 0 kB')"
    )
    out = _check(_ssh(target, probe, timeout=60, what="probe"), target, "probe")
    lines = [ln.strip() for ln in out.splitlines() if ln.strip()]
    if len(lines) < 5:
        raise BoardError(f"unexpected probe output from {target.host}: {out[-300:]!r}")
    abs_dir, machine, user, pyver = lines[0], lines[1], lines[2], lines[3]
    try:
        mem_avail = int(lines[4].split()[1]) * 1024
    except (IndexError, ValueError):
        mem_avail = 0
    if prof.cpu is not None and prof.kind != "host" and machine != prof.cpu.arch:
        warnings.append(f"target reports {machine}, profile {prof.name} expects {prof.cpu.arch}")
    if mem_avail and rep.memory.ram_needed > mem_avail:
        raise BoardError(
            f"insufficient RAM on {target.host}: bundle needs about "
            f"{rep.memory.ram_needed / 2**20:.1f} MiB, target has "
            f"{mem_avail / 2**20:.1f} MiB available"
        )
    timings["probe"] = time.perf_counter() - t
    say(f"target {target.host}: {machine}, Python {pyver}, {mem_avail / 2**20:.0f} MiB free")

    # --- artifacts + upload
    t = time.perf_counter()
    name = _safe_name(bpath.name)
    remote_bundle = f"{abs_dir}/bundles/{name}"
    state_dir = f"{abs_dir}/state/{name}"
    venv_py = f"{abs_dir}/venv/bin/python"
    unit_name = f"neuroplast-{_safe_name(bpath.stem)}.service" if service else None
    unit_text = None
    if service:
        unit_text = systemd_unit(
            bundle_path=remote_bundle,
            venv_python=venv_py,
            work_dir=abs_dir,
            state_dir=state_dir,
            user=user,
            source=serve_source,
            plugins=plugins,
        )
    reqs = list(requirements) if requirements is not None else runtime_requirements()
    with tempfile.TemporaryDirectory(prefix="neuroplast-deploy-") as tmp:
        whl = Path(wheel) if wheel is not None else build_wheel(tmp)
        if not whl.is_file():
            raise BoardError(f"wheel not found: {whl}")
        payload = _tar_upload(
            bpath, name, whl, reqs, (unit_name, unit_text) if unit_name and unit_text else None
        )
        wheel_name = whl.name
        wheel_sha = hashlib.sha256(whl.read_bytes()).hexdigest()
    timings["build"] = time.perf_counter() - t
    t = time.perf_counter()
    upload = (
        f"cd {shlex.quote(abs_dir)} && rm -rf bundles/{shlex.quote(name)} wheels && "
        f"mkdir -p state/{shlex.quote(name)} && tar xzf - --no-same-owner"
    )
    _check(_ssh(target, upload, stdin=payload, timeout=600, what="upload"), target, "upload")
    timings["upload"] = time.perf_counter() - t
    say(f"uploaded {len(payload) / 1024:.0f} KiB to {target.host}:{abs_dir}")

    # --- install
    t = time.perf_counter()
    pip = f"{shlex.quote(venv_py)} -m pip -q --disable-pip-version-check --no-input"
    # --without-pip + system site-packages: reuse the system pip when there is one (saves the
    # seconds ensurepip takes on a Pi); otherwise bootstrap pip into the venv. The pinned
    # requirements are installed only when the venv does not already satisfy them.
    install = (
        f"set -e; cd {shlex.quote(abs_dir)}; "
        f"[ -x venv/bin/python ] || {shlex.quote(target.python)} -m venv --system-site-packages "
        "--without-pip venv; "
        "venv/bin/python -m pip --version >/dev/null 2>&1 || "
        "venv/bin/python -m ensurepip --default-pip >/dev/null; "
        # reinstall only when the wheel changed (a rebuilt wheel always differs: timestamps)
        f'if [ "$(cat venv/.neuroplast-wheel 2>/dev/null)" != {wheel_sha} ]; then '
        f"{pip} install --no-deps --force-reinstall --no-index wheels/{shlex.quote(wheel_name)}; "
        f"echo {wheel_sha} > venv/.neuroplast-wheel; fi; "
        "venv/bin/python -m neuroplast.boards.remote check-requirements requirements.txt || "
        f"{pip} install -r requirements.txt"
    )
    proc = _ssh(target, install, timeout=1800, what="install")
    if proc.returncode != 0 and b"ensurepip" in (proc.stderr or b"") + (proc.stdout or b""):
        raise BoardError(
            f"install failed on {target.host}: no pip for {target.python} and ensurepip is "
            "missing; on Raspberry Pi OS / Ubuntu run `sudo apt install python3-venv python3-pip`"
        )
    _check(proc, target, "install")
    timings["install"] = time.perf_counter() - t
    say("installed neuroplast into the target venv")

    # --- smoke
    t = time.perf_counter()
    smoke_cmd = (
        f"cd {shlex.quote(abs_dir)} && {shlex.quote(venv_py)} -m neuroplast.boards.remote smoke "
        f"{shlex.quote(remote_bundle)} --steps {int(smoke_steps)} --seed {SMOKE_SEED}"
        + "".join(f" --plugin {shlex.quote(m)}" for m in plugins or ())
    )
    out = _check(_ssh(target, smoke_cmd, timeout=600, what="smoke run"), target, "smoke run")
    try:
        remote = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError) as e:
        raise BoardError(f"smoke run on {target.host} printed no result: {out[-300:]!r}") from e
    if not remote.get("ok"):
        raise BoardError(f"smoke run on {target.host} failed: {remote.get('error', remote)}")
    matches = _compare_smoke(remote, local)
    if not matches:
        raise BoardError(
            f"smoke output on {target.host} differs from this host: remote sha256 "
            f"{remote.get('sha256')}, local {local.get('sha256')}"
        )
    timings["smoke"] = time.perf_counter() - t
    say(f"smoke run: {smoke_steps} steps, output {remote.get('shape')} matches this host")

    # --- service
    installed = False
    if service and unit_name:
        t = time.perf_counter()
        sudo = "" if user == "root" else "sudo -n "
        ud = shlex.quote(unit_dir)
        sc = shlex.quote(systemctl)
        svc = (
            f"set -e; cd {shlex.quote(abs_dir)}; "
            f"{sudo}install -m 0644 {shlex.quote(unit_name)} {ud}/{shlex.quote(unit_name)}; "
            f"{sudo}{sc} daemon-reload; {sudo}{sc} enable --now {shlex.quote(unit_name)}"
        )
        proc = _ssh(target, svc, timeout=120, what="service install")
        timings["service"] = time.perf_counter() - t
        if proc.returncode != 0:
            err = (proc.stderr or b"").decode("utf-8", "replace").strip()[-500:]
            raise BoardError(
                f"bundle deployed and smoke-tested, but installing the systemd unit {unit_name} "
                f"on {target.host} failed (exit {proc.returncode}): {err}. The unit file is at "
                f"{abs_dir}/{unit_name}; is systemd running and may {user} use sudo?"
            )
        installed = True
        say(f"systemd unit {unit_name} enabled")
    timings["total"] = time.perf_counter() - t0
    return DeployResult(
        host=target.host,
        board=prof.name,
        remote_dir=abs_dir,
        bundle_path=remote_bundle,
        python=venv_py,
        machine=machine,
        mem_available=mem_avail,
        smoke=remote,
        smoke_matches_host=matches,
        unit_name=unit_name,
        unit_text=unit_text,
        service_installed=installed,
        warnings=tuple(warnings),
        timings=timings,
    )
