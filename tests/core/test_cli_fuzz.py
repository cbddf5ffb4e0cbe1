"""Bad input across the whole command tree and the parameter objects behind it.

* every command that takes a file refuses a damaged one (random bytes under the names a
  user might give it, an empty file, a folder) in one line with exit 2 (or 1: a check
  that ran and failed), never exit 70 or a traceback: walked from the real command tree,
  so a command added later is covered without a new test;
* every integer and real field of the parameter dataclasses behind the commands refuses an
  absurd value (NaN, infinity, 10**20, -1 where a count is meant, a bool) with a
  :class:`~neuroplast.errors.NeuroplastError` naming the field, at construction;
* the cases found by fuzzing the CLI once, each as a command line (they were exit 70).
"""

from __future__ import annotations

import dataclasses
import math
import typing

import numpy as np
import pytest

typer = pytest.importorskip("typer")

from neuroplast.checks import MAX_SEED, require_int, require_real, require_seed  # noqa: E402
from neuroplast.cli import build_app, main  # noqa: E402
from neuroplast.errors import DataError, NeuroplastError  # noqa: E402

from .test_cli_conventions import _walk  # noqa: E402

# values for the required options of each command (the first positional path is fuzzed)
REQUIRED = {
    "--board": "rpi4",
    "--host": "pi@h",
    "--to": "onnx",
    "--word": "hello",
}
KINDS = ("bytes.zip", "bytes.npz", "bytes.npy", "bytes.json", "bytes.toml", "bytes.pt",
         "empty.npz", "folder")  # fmt: skip


@pytest.fixture(scope="module")
def damaged(tmp_path_factory):
    d = tmp_path_factory.mktemp("damaged")
    rng = np.random.default_rng(7)
    out = {}
    for kind in KINDS:
        p = d / kind
        if kind == "folder":
            p.mkdir()
        else:
            p.write_bytes(b"" if kind.startswith("empty") else rng.bytes(300))
        out[kind] = p
    return out


def _file_commands():
    root = typer.main.get_command(build_app())
    for path, cmd in _walk(root):
        args = [p for p in cmd.params if p.param_type_name == "argument"]
        if args and "Path" in type(args[0].type).__name__ and args[0].name != "out":
            yield path, cmd


def _line(path, cmd, bad, tmp):
    line = [*path]
    line += [str(bad) for p in cmd.params if p.param_type_name == "argument"]
    for o in (p for p in cmd.params if p.param_type_name == "option" and p.required):
        name = o.opts[0] if o.opts[0].startswith("--") else o.opts[-1]
        if "Path" in type(o.type).__name__:
            line += [name, str(bad) if name in ("--input", "--samples") else str(tmp / "out.x")]
        else:
            assert name in REQUIRED, f"{' '.join(path)}: give {name} a value in REQUIRED"
            line += [name, REQUIRED[name]]
    if path == ("deploy",):
        line.append("--dry-run")  # never reach for a host
    return line


def test_every_file_command_refuses_damaged_files_in_one_line(damaged, tmp_path, capsys):
    cmds = list(_file_commands())
    assert len(cmds) >= 20  # the walk found the tree
    bad = []
    for path, cmd in cmds:
        for p in damaged.values():
            line = _line(path, cmd, p, tmp_path)
            capsys.readouterr()
            rc = main(line)
            err = capsys.readouterr().err.strip()
            if rc not in (1, 2) or "Traceback" in err or len(err.splitlines()) != 1:
                bad.append(f"{' '.join(line)} -> {rc}: {err[-200:]}")
    assert not bad, "\n".join(bad)


# ------------------------------------------------------------------ parameter objects
def _params():
    from neuroplast.apps.kws.data import SynthConfig
    from neuroplast.apps.kws.model import KwsNetConfig
    from neuroplast.apps.kws.train import TrainConfig
    from neuroplast.apps.motion.model import HDParams, TrainParams
    from neuroplast.apps.motion.simulate import DVSParams, SceneParams
    from neuroplast.apps.place.module import PlaceParams
    from neuroplast.apps.place.synth import RouteParams

    return [SceneParams, DVSParams, HDParams, TrainParams, RouteParams, PlaceParams,
            SynthConfig, TrainConfig, KwsNetConfig]  # fmt: skip


# fields whose domain is not a plain range: checked by their own tests
NOT_RANGES = {("PlaceParams", "steps"), ("KwsNetConfig", "weight_bits")}


def _numeric_fields(cls):
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        t = hints[f.name]
        if t in (int, float) and (cls.__name__, f.name) not in NOT_RANGES:
            yield f.name, t


@pytest.mark.parametrize("cls", _params(), ids=lambda c: c.__name__)
def test_parameter_objects_refuse_absurd_numbers(cls):
    fields = list(_numeric_fields(cls))
    assert fields
    cls()  # the defaults are valid
    for name, t in fields:
        bad = [True, 10**20, -(10**20)] if t is int else [math.nan, math.inf, -math.inf]
        for v in bad:
            with pytest.raises(NeuroplastError, match=name):
                cls(**{name: v})


def test_checks_name_the_field_and_the_range():
    with pytest.raises(DataError, match=r"^P\.n must be an integer in \[1, 5\], got 0$"):
        require_int(DataError, "P", 1, 5, n=0)
    with pytest.raises(DataError, match="got 2.0"):
        require_int(DataError, "P", 1, 5, n=2.0)  # an integer, not a whole float
    require_int(DataError, "P", 1, 5, n=np.int64(5))
    with pytest.raises(DataError, match=r"P\.lr must be a finite number > 0, got 0$"):
        require_real(DataError, "P", 0.0, open_lo=True, lr=0)
    require_real(DataError, "P", 0.0, 1.0, p=np.float32(1.0))
    with pytest.raises(DataError, match="got 'a'"):
        require_real(DataError, "P", lr="a")
    require_seed(DataError, "P", MAX_SEED)
    with pytest.raises(DataError, match="seed"):
        require_seed(DataError, "P", MAX_SEED + 1)


# ------------------------------------------------------------------ found by fuzzing once
@pytest.mark.parametrize(
    "line",
    [
        ["motion", "simulate", "{d}/m.npz", "--size", "0"],
        ["motion", "simulate", "{d}/m.npz", "--seed", "-1"],
        ["motion", "simulate", "{d}/m.npz", "--steps", "99999999999999999999"],
        ["motion", "train", "--seed", "-1", "--movies", "2"],
        ["motion", "train", "--kernel-size", "0", "--movies", "2"],
        ["motion", "train", "--threshold", "nan", "--movies", "2"],
        ["motion", "eval", "--kernel", "{d}/empty.npz"],
        ["place", "synth", "{d}/route", "--places", "99999999999999999999"],
        ["place", "synth", "{d}/empty.npz", "--places", "2"],  # a file where a folder goes
        ["kws", "data", "--seed", "-1"],
        ["kws", "train", "--threads", "99999999999999999999"],
        ["kws", "train", "--max-delay", "99999999999"],
        ["board", "show", "{d}/bytes.toml"],
        ["export", "{d}", "--to", "onnx", "--out", "{d}/m.onnx"],
    ],
    ids=lambda a: " ".join(a[:2] + a[-2:-1]),
)
def test_cli_lines_once_exit_70(line, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("NEUROPLAST_OUT", str(tmp_path / "out"))
    monkeypatch.setenv("NEUROPLAST_CACHE", str(tmp_path / "cache"))
    (tmp_path / "empty.npz").write_bytes(b"")
    (tmp_path / "bytes.toml").write_bytes(np.random.default_rng(1).bytes(64) + b"\xff")
    capsys.readouterr()
    rc = main([a.format(d=tmp_path) for a in line])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: "), (rc, err)
    assert "internal error" not in err[0]


def test_a_path_the_file_system_refuses_is_bad_input_not_a_bug(tmp_path, capsys):
    """OSErrors of the user's paths met deep inside a command (a name too long, a file
    where a folder goes) exit 2 naming the path; any other exception stays exit 70."""
    from neuroplast.cli import exit_status

    for e in (OSError(36, "File name too long", "r/" + "a" * 5000),
              NotADirectoryError(20, "Not a directory", str(tmp_path / "f" / "x"))):  # fmt: skip
        capsys.readouterr()
        assert exit_status(e) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"error: {e.strerror}: ") and len(err[0]) < 200
    assert exit_status(OSError(5, "Input/output error")) == 70  # not the user's path
    capsys.readouterr()
    rc = main(["place", "train", str(tmp_path), "--refs", "a" * 5000])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
