"""The whole ``neuroplast`` command tree keeps one convention (docs/cli.md), walked from the
real app with every registered package's commands:

* a short flag means the same everywhere (``SHORT_FLAGS``, the table in docs/cli.md);
* a long flag is a flag everywhere or takes the same kind of value everywhere; ``--json``
  is always a flag (JSON on stdout);
* help shows no ``<bool>``/``{path}`` metavars, every command has examples, and every
  example (in ``--help`` and in the docs' shell blocks) names a real command and real flags;
* the device CLI (no typer/rich) has a subset of the full commands' flags;
* the exit-code table in docs/cli.md is ``EXIT_CODES``, and the codes hold across commands.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

typer = pytest.importorskip("typer")

from typer.testing import CliRunner  # noqa: E402

from neuroplast.bundle import save_bundle  # noqa: E402
from neuroplast.cli import EXIT_CODES, SHORT_FLAGS, build_app, main  # noqa: E402

from .factories import snn_graph  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "cli.md"


def _walk(cmd, path=()):
    """(path, command) for every visible leaf command."""
    for name, sub in sorted(getattr(cmd, "commands", {}).items()):
        if getattr(sub, "hidden", False):
            continue
        if hasattr(sub, "commands"):
            yield from _walk(sub, (*path, name))
        else:
            yield (*path, name), sub


@pytest.fixture(scope="module")
def app():
    return build_app()


@pytest.fixture(scope="module")
def tree(app):
    root = typer.main.get_command(app)
    return root, dict(_walk(root))


def _options(cmd):
    return [p for p in cmd.params if p.param_type_name == "option"]


def _kind(p) -> str:
    return "flag" if getattr(p, "is_flag", False) else p.metavar


def test_tree_has_every_package(tree):
    _, cmds = tree
    tops = {path[0] for path in cmds}
    for want in ("info", "run", "targets", "export", "compare", "check", "fit", "deploy",
                 "serve", "learn", "board", "kws", "motion", "place", "sfq-sim"):  # fmt: skip
        assert want in tops
    assert ("board", "detect") in cmds and ("board", "ping") in cmds  # one merged group
    assert len(cmds) > 30


def test_short_flags_mean_one_thing(tree):
    _, cmds = tree
    seen: dict[str, set[str]] = {}
    for path, cmd in cmds.items():
        for p in _options(cmd):
            shorts = [o for o in p.opts if not o.startswith("--")]
            longs = [o for o in p.opts if o.startswith("--")]
            for s in shorts:
                seen.setdefault(s, set()).update(longs)
                assert SHORT_FLAGS.get(s) in longs, (
                    f"{' '.join(path)}: {s} is {longs}, but {s} means {SHORT_FLAGS.get(s)}"
                )
    assert set(seen) <= set(SHORT_FLAGS)


def test_long_flags_keep_one_kind_and_json_is_a_flag(tree):
    _, cmds = tree
    kinds: dict[str, dict[str, list[str]]] = {}
    for path, cmd in cmds.items():
        for p in _options(cmd):
            for o in p.opts:
                if o.startswith("--"):
                    kinds.setdefault(o, {}).setdefault(_kind(p), []).append(" ".join(path))
    # --input: a file everywhere, NAME=RATE pairs for sfq-sim (docs/cli.md says so)
    mixed = {o: k for o, k in kinds.items() if len(k) > 1 and o != "--input"}
    assert not mixed, f"long flags with two kinds of value: {mixed}"
    assert set(kinds["--json"]) == {"flag"}
    assert set(kinds["--out"]) == {"PATH"} and set(kinds["--input"]) <= {"PATH", "TEXT"}


def test_short_flag_table_in_the_docs_is_the_code():
    rows = re.findall(r"^\| `(-\w)` \| `(--[\w-]+)` \|", DOC.read_text(), flags=re.M)
    assert dict(rows) == SHORT_FLAGS


def test_exit_code_table_in_the_docs_is_the_code():
    rows = re.findall(r"^\| (\d+) \| (.+?) \|$", DOC.read_text(), flags=re.M)
    assert {int(k): v for k, v in rows} == EXIT_CODES


def _examples(help_text: str) -> list[str]:
    return [ln.strip() for ln in help_text.splitlines() if ln.strip().startswith("neuroplast ")]


def _check_example(root, line: str, visible: bool = False) -> None:
    """``line`` names a real command (``visible``: not a hidden old spelling) and only flags
    it has."""
    words = shlex.split(line.split(" #")[0].rstrip("\\"))[1:]
    cmd, path = root, []
    while words and hasattr(cmd, "commands") and words[0] in cmd.commands:
        path.append(words[0])
        cmd = cmd.commands[words.pop(0)]
        assert not (visible and getattr(cmd, "hidden", False)), f"{line!r}: old spelling"
    assert not hasattr(cmd, "commands") or not words or words[0].startswith("-"), (
        f"{line!r}: {words[0]!r} is not a command of `neuroplast {' '.join(path)}`"
    )
    flags = {o for p in cmd.params for o in (*p.opts, *getattr(p, "secondary_opts", []))}
    flags |= {"-h", "--help", "--debug", "--version"}
    for w in words:
        if w.startswith("-") and w != "-":
            assert w.split("=")[0] in flags, f"{line!r}: `neuroplast {' '.join(path)}` has no {w}"


def test_every_command_has_examples_and_clean_metavars(app, tree):
    root, cmds = tree
    for path, cmd in cmds.items():  # the command list shows the first paragraph: one line
        first = cmd.help.strip().split("\n\n")[0]
        assert "\n" not in first and len(first) <= 100, f"{' '.join(path)}: {first!r}"
    runner = CliRunner()
    for path in cmds:
        r = runner.invoke(app, [*path, "--help"], terminal_width=120)
        assert r.exit_code == 0, (path, r.output)
        out = r.output
        for bad in ("<bool>", "<path>", "<str>", "<int>", "{"):
            assert bad not in out, f"`neuroplast {' '.join(path)} --help` shows {bad!r}"
        examples = _examples(out)
        assert examples, f"`neuroplast {' '.join(path)} --help` has no example"
        for line in examples:
            assert line.startswith("neuroplast " + " ".join(path)), (path, line)
            _check_example(root, line)


def test_commands_in_the_docs_exist(tree):
    """Every `neuroplast ...` command in a code block or code span of the README or
    docs/*.md is a real, current command with real flags (docs cannot drift from the tree)."""
    root, _ = tree
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    checked = 0
    for doc in docs:
        text = doc.read_text()
        shell, lang = [], None  # lines of fenced shell/plain blocks
        for ln in text.splitlines():
            if ln.lstrip().startswith("```"):
                lang = ln.strip()[3:] if lang is None else None
            elif lang in ("", "bash", "sh", "console", "text"):
                shell.append(ln)
        spans = re.findall(r"`(neuroplast [^`]+)`", text)
        for line in shell + spans:
            line = line.strip().removeprefix("$ ")
            if line.startswith("neuroplast ") and "..." not in line:
                _check_example(root, line.replace("[", "").replace("]", ""), visible=True)
                checked += 1
    assert checked > 40


def test_device_cli_flags_are_a_subset_of_the_full_cli(tree):
    from neuroplast.boards.stream import main as stream_main  # noqa: F401
    from neuroplast.devicecli import build_parser, device_commands

    _, cmds = tree
    ap = build_parser()
    sub = next(a for a in ap._actions if a.__class__.__name__ == "_SubParsersAction")
    assert {"run", "info", "serve"} <= set(sub.choices)
    for name in ("run", "info"):
        full = {o for p in cmds[(name,)].params for o in p.opts}
        dev = {o for a in sub.choices[name]._actions for o in a.option_strings} - {"-h", "--help"}
        assert dev <= full, f"device `{name}` flags not in the full CLI: {dev - full}"
    # serve is boards.stream's argparse main: its flags must be the full command's
    import argparse

    from neuroplast.boards import stream

    seen: list[str] = []
    orig = argparse.ArgumentParser.parse_args

    def spy(self, args=None, namespace=None):
        seen.extend(o for a in self._actions for o in a.option_strings)
        raise SystemExit(0)

    argparse.ArgumentParser.parse_args = spy
    try:
        with pytest.raises(SystemExit):
            stream.main(["x"])
    finally:
        argparse.ArgumentParser.parse_args = orig
    full = {o for p in cmds[("serve",)].params for o in (*p.opts, *p.secondary_opts)}
    assert set(seen) - {"-h", "--help"} <= full
    assert "serve" in device_commands()


# ------------------------------------------------------------------ exit codes in practice
@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    save_bundle(d / "float.zip", snn_graph())
    save_bundle(d / "int.zip", snn_graph(quantized=True), mode="int")
    np.save(d / "x.npy", (np.random.default_rng(0).random((6, 20)) < 0.3).astype(np.float32))
    np.save(d / "wrong.npy", np.zeros((6, 7), np.float32))
    (d / "bad.npy").write_bytes(b"not an array")
    return d


def _code(args, capsys) -> tuple[int, str]:
    capsys.readouterr()
    rc = main([str(a) for a in args])
    err = capsys.readouterr().err
    return rc, err


def test_exit_0_1_2_across_commands(files, capsys):
    d = files
    assert _code(["run", d / "int.zip", "-i", d / "x.npy", "--json"], capsys)[0] == 0
    assert _code(["info", d / "int.zip"], capsys)[0] == 0
    # 1: a check that ran and failed (fit exits like check)
    rc, err = _code(["fit", d / "float.zip", "-b", "esp32s3"], capsys)
    assert rc == 1 and err.strip().startswith("check failed:")
    assert _code(["fit", d / "float.zip", "-b", "esp32s3", "--json"], capsys)[0] == 1
    assert _code(["fit", d / "int.zip", "-b", "rpi4"], capsys)[0] == 0
    rc, err = _code(["compare", d / "int.zip", d / "float.zip", "-i", d / "x.npy", "--min", "1.01"],
                    capsys)  # fmt: skip
    assert rc == 1 and "below --min" in err
    assert _code(["compare", d / "int.zip", d / "int.zip", "-i", d / "x.npy", "--min", "1"],
                 capsys)[0] == 0  # fmt: skip
    # 2: bad usage or bad input, one line, no traceback
    for args in (
        ["run", d / "int.zip", "-i", d / "bad.npy"],
        ["run", d / "int.zip", "-i", d / "wrong.npy"],
        ["run", d / "nothing.zip", "-i", d / "x.npy"],
        ["info", d / "x.npy"],
        ["fit", d / "int.zip", "-b", "rpi9"],
        ["compare", d / "int.zip", d / "x.npy", "-i", d / "x.npy"],
        ["check", d / "int.zip", "-b", "nochip"],
        ["learn", d / "int.zip", d / "x.npy"],
        ["sfq-sim", d / "x.npy"],
        ["deploy", d / "int.zip", "-b", "esp32s3", "--host", "pi@h", "--dry-run"],
    ):
        rc, err = _code(args, capsys)
        assert rc == 2, (args, rc, err)
        assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, (args, err)
    rc, err = _code(["run", d / "int.zip", "--no-such-flag"], capsys)
    assert rc == 2 and "Traceback" not in err


def test_exit_70_is_a_bug_in_one_line_and_debug_shows_the_traceback(files, capsys, monkeypatch):
    import neuroplast.cli as cli

    def boom(*a, **k):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(cli, "run_model", boom)
    rc, err = _code(["run", files / "int.zip", "-i", files / "x.npy"], capsys)
    assert rc == 70 and len(err.strip().splitlines()) == 1 and "--debug" in err
    rc, err = _code(["--debug", "run", files / "int.zip", "-i", files / "x.npy"], capsys)
    assert rc == 70 and "Traceback" in err and "ZeroDivisionError" in err


def test_the_test_runner_sees_the_same_codes(app, files):
    # errors become exit codes inside the app, so typer's runner agrees with the shell
    r = CliRunner().invoke(app, ["run", str(files / "int.zip"), "-i", str(files / "bad.npy")])
    assert r.exit_code == 2
    r = CliRunner().invoke(app, ["fit", str(files / "float.zip"), "-b", "esp32s3"])
    assert r.exit_code == 1


def test_device_cli_without_typer_or_rich(files):
    """`pip install neuroplast` (numpy only): the command still runs, plain text."""
    d = files
    code = (
        "import sys; sys.modules['typer'] = None; sys.modules['rich'] = None\n"
        "from neuroplast.cli import main; sys.exit(main(sys.argv[1:]))\n"
    )

    def run(*args):
        return subprocess.run([sys.executable, "-c", code, *map(str, args)],
                              capture_output=True, text=True, timeout=120)  # fmt: skip

    r = run("--help")
    assert r.returncode == 0 and "run" in r.stdout and "serve" in r.stdout, r.stderr
    r = run("run", d / "int.zip", "-i", d / "x.npy", "--rows", "2")
    assert r.returncode == 0 and "showing 2 of 6 steps" in r.stdout, r.stderr
    ref = main(["run", str(d / "int.zip"), "-i", str(d / "x.npy"), "--json"])
    assert ref == 0
    r = run("run", d / "int.zip", "-i", d / "x.npy", "--json")
    import json

    got = json.loads(r.stdout)
    import neuroplast

    rt = neuroplast.load(d / "int.zip")
    np.testing.assert_array_equal(np.asarray(got["output"]), rt.run(np.load(d / "x.npy")))
    r = run("info", d / "int.zip")
    assert r.returncode == 0 and "total" in r.stdout
    r = run("run", d / "int.zip", "-i", d / "bad.npy")
    assert r.returncode == 2 and r.stderr.startswith("error: DataError")
    r = run("serve", d / "int.zip", "--source", d / "x.npy", "--max-steps", "2", "--no-learn",
            "--emit", "argmax")  # fmt: skip
    assert r.returncode == 0 and r.stdout.count('"argmax"') == 2, r.stdout + r.stderr
    r = run("fit", d / "int.zip", "-b", "rpi4")
    assert r.returncode == 2
