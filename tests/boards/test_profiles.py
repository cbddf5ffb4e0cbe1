"""Board profiles: every shipped file loads, numbers cite sources, bad profiles fail clearly."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import tomllib

from neuroplast.boards import list_profiles, load_profile, parse_profile
from neuroplast.boards.profile import PROFILE_DIR
from neuroplast.errors import BoardError

EXPECTED = {
    "rpi4", "rpi5", "jetson-nano", "jetson-orin-nano", "esp32s3", "rp2040", "stm32h7",
    "nano33ble", "xylo", "speck", "loihi2", "sfq", "host", "virtual",
}  # fmt: skip


def test_all_boards_of_the_issue_are_shipped_and_valid():
    assert set(list_profiles()) == EXPECTED
    for name in EXPECTED:
        p = load_profile(name)
        assert p.name == name
        with pytest.raises(dataclasses.FrozenInstanceError):
            p.name = "x"  # type: ignore[misc]


def test_profile_values_match_the_toml_files():
    # independent reference: the raw TOML parsed by tomllib
    raw = tomllib.loads((PROFILE_DIR / "rpi5.toml").read_text())
    p = load_profile("rpi5")
    assert p.cpu.cores == raw["cpu"]["cores"] == 4
    assert p.cpu.clock_hz == 2.4e9
    assert p.memory.ram_bytes == 8 * 2**30
    assert (
        p.memory.usable_ram_bytes
        == raw["memory"]["ram_bytes"] - raw["memory"]["reserved_ram_bytes"]
    )
    x = load_profile("xylo").neuromorphic
    assert (x.neurons_per_core, x.weight_bits, x.max_inputs, x.max_outputs) == (1000, 8, 16, 8)
    assert not x.on_chip_learning
    s = load_profile("speck").neuromorphic
    assert s.max_neurons == 327680 == 3 * 65536 + 2 * 32768 + 4 * 16384
    lo = load_profile("loihi2").neuromorphic
    assert lo.max_neurons == 128 * 8192 and lo.on_chip_learning and lo.synaptic_delays
    assert (0x2E8A, 0x000A) in load_profile("rp2040").serial.usb_ids


def test_host_profile_reads_this_machine():
    import os

    p = load_profile("host")
    assert p.cpu.cores == os.cpu_count()
    with open("/proc/meminfo") as f:
        kb = int(next(ln for ln in f if ln.startswith("MemTotal:")).split()[1])
    assert p.memory.ram_bytes == kb * 1024


_NUM_LINE = re.compile(r"^\s*([a-z_]+)\s*=\s*(\[\[0x|[-+]?\d)")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_number_carries_a_source_comment(name):
    """Each numeric key line in a profile has a comment (datasheet figure or stated assumption),
    either on the line or in the block comment right above it."""
    lines = (PROFILE_DIR / f"{name}.toml").read_text().splitlines()
    for i, line in enumerate(lines):
        if _NUM_LINE.match(line) and "#" not in line:
            prev = lines[i - 1].strip() if i else ""
            assert prev.startswith("#"), f"{name}.toml line {i + 1} has no source comment: {line}"


def _good() -> str:
    return (PROFILE_DIR / "rp2040.toml").read_text()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda t: t.replace('kind = "mcu"', 'kind = "toaster"'),
            r"'kind' = 'toaster' must be one of",
        ),
        (
            lambda t: t.replace("cores = 2 ", 'cores = "two" '),
            r"'cpu.cores' must be a integer, got str",
        ),
        (lambda t: t.replace("cores = 2 ", "cores = 0 "), r"'cpu.cores' = 0 must be > 0"),
        (lambda t: t + "\nvoltage = 3.3\n", r"unknown key 'cost.voltage'"),
        (lambda t: t.replace("ram_bytes = 270336", "# gone"), r"missing key 'memory.ram_bytes'"),
        (
            lambda t: t.replace('backends = ["firmware"]', 'backends = ["cuda"]'),
            r"'backends' .* unknown entries \['cuda'\]",
        ),
        (
            lambda t: t.replace("[[0x2E8A, 0x000A],", "[[0x2E8A, 0x1000A],"),
            r"'serial.usb_ids' .* 0..0xFFFF",
        ),
        (
            lambda t: t.replace("reserved_ram_bytes = 32768", "reserved_ram_bytes = 999999"),
            r"reserved_ram_bytes' must be < ",
        ),
        (
            lambda t: t.replace("python_runtime = false", "python_runtime = 0"),
            r"'python_runtime' must be a boolean",
        ),
        (lambda t: t.replace("[serial]", "[serial_port]"), r"unknown key 'serial_port'"),
        (lambda t: t.replace('name = "rp2040"', 'name = "rp2040'), r"not valid TOML"),
    ],
)
def test_bad_profiles_raise_board_error_naming_the_key(edit, message):
    text = edit(_good())
    with pytest.raises(BoardError, match=message):
        parse_profile(text, "bad.toml")


def test_missing_tables_for_kind():
    t = _good()
    start, end = t.index("[serial]"), t.index("[cost]")
    with pytest.raises(BoardError, match="kind 'mcu' needs a \\[serial\\] table"):
        parse_profile(t[:start] + t[end:], "bad.toml")
    x = (PROFILE_DIR / "xylo.toml").read_text()
    start, end = x.index("[neuromorphic]"), x.index("[cost]")
    with pytest.raises(BoardError, match="needs a \\[neuromorphic\\] table"):
        parse_profile(x[:start] + x[end:], "bad.toml")


def test_unknown_board_and_profile_paths(tmp_path: Path):
    with pytest.raises(BoardError, match="unknown board 'rpi9'; known boards: .*rpi5"):
        load_profile("rpi9")
    p = tmp_path / "myboard.toml"
    p.write_text(_good().replace('name = "rp2040"', 'name = "myboard"'))
    assert load_profile(str(p)).name == "myboard"
    q = tmp_path / "other.toml"
    q.write_text(_good())
    with pytest.raises(BoardError, match="must match the file name 'other'"):
        load_profile(str(q))
    with pytest.raises(BoardError, match="cannot read board profile"):
        load_profile(str(tmp_path / "missing.toml"))
