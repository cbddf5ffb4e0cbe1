"""Ports that build: every port and every `neuroplast board project` folder compiled and
linked with arm-none-eabi-gcc/g++ against the vendor shims; the headers from C++; the
ESP32 port compiled for Xtensa; a generated project's compiled-in model booted under QEMU."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
import typer
from bridge_models import conv_delay, random_codes
from typer.testing import CliRunner

from neuroplast.firmware_bridge import Board, build_image
from neuroplast.firmware_bridge.cli import register
from neuroplast.firmware_bridge.project import (
    PROJECT_TARGETS,
    build_with_shims,
    write_project,
)
from neuroplast.firmware_bridge.virtual import CORE_SOURCES, WARN, firmware_dir


@pytest.fixture(scope="module")
def image():
    return build_image(conv_delay())


@pytest.mark.parametrize("target", sorted(PROJECT_TARGETS))
def test_project_builds_and_links_for_cortex_m(target, image, tmp_path):
    proj = write_project(image, target, tmp_path / "proj", board="stm32h7")
    assert proj.steps in (proj.root / "FLASHING.md").read_text()
    elf = build_with_shims(proj, tmp_path / "build", cpu="cortex-m7")
    syms = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True).stdout
    assert " np_board_boot" in syms and " np_model_image" in syms and " np_model_step" in syms
    # the model bytes are in the firmware (read-only data), as the image says
    assert str(len(image.data)) in (proj.src / "np_model_image.c").read_text()


def test_ports_speak_the_profiles_baud_rate():
    from neuroplast.boards import load_profile

    ports = firmware_dir() / "ports"
    for f, prof in (("hal_stm32.c", "stm32h7"), ("hal_esp32.c", "esp32s3"),
                    ("hal_arduino.cpp", "nano33ble")):  # fmt: skip
        text = (ports / f).read_text()
        assert f"#define NP_BAUD {load_profile(prof).serial.baud}" in text, f
        assert "921600" not in text


def test_headers_compile_as_cpp(tmp_path):
    """Every public header, included from C++ (extern "C" linkage), links against the C core."""
    src = firmware_dir()
    unit = tmp_path / "user.cpp"
    unit.write_text(
        '#include "np_board.h"\n#include "np_hal.h"\n#include "np_kernels.h"\n#include "np_link.h"\n'
        '#include "np_model.h"\n#include "np_model_image.h"\n#include "np_port.h"\n'
        "static np_board_t b; static uint8_t arena[4096], staging[1024];\n"
        'extern "C" void np_hal_write(const uint8_t *d, size_t n) { (void)d; (void)n; }\n'
        'extern "C" uint32_t np_hal_millis(void) { return 0; }\n'
        'extern "C" uint32_t np_hal_cycles(void) { return 0; }\n'
        'extern "C" const char *np_hal_board_name(void) { return "cpp"; }\n'
        "int main() { return np_board_boot(&b, arena, sizeof arena, staging, sizeof staging,"
        " np_model_image, np_model_image_len); }\n"
    )
    objs = []
    for f in [*CORE_SOURCES, "np_model_image.c"]:
        o = tmp_path / (f + ".o")
        subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", *WARN, "-O2",
                        "-c", str(src / f), "-o", str(o)], check=True)  # fmt: skip
        objs.append(str(o))
    subprocess.run(["arm-none-eabi-g++", "-mcpu=cortex-m4", "-mthumb", "-std=c++11", "-Wall",
                    "-Wextra", "-Werror", f"-I{src}", str(unit), *objs, "--specs=nano.specs",
                    "--specs=nosys.specs", "-o", str(tmp_path / "user.elf")], check=True)  # fmt: skip


def test_esp32_port_compiles_for_xtensa(tmp_path):
    """No ESP32-S3 (LX7) toolchain in Debian: the core and the ESP-IDF port are compiled
    with Debian's Xtensa LX106 gcc (the ESP8266 core, same ISA family) against the shims."""
    gcc = shutil.which("xtensa-lx106-elf-gcc")
    assert gcc, "install gcc-xtensa-lx106 and picolibc-xtensa-lx106-elf (make apt)"
    src = firmware_dir()
    specs = "/usr/lib/xtensa-lx106-elf/picolibc.specs"
    for f in [
        *(src / c for c in CORE_SOURCES),
        src / "np_model_image.c",
        src / "ports" / "hal_esp32.c",
    ]:
        subprocess.run([gcc, *WARN, "-O2", f"--specs={specs}", f"-I{src}",
                        f"-I{src / 'ports' / 'shims'}", "-c", str(f), "-o",
                        str(tmp_path / (f.name + ".o"))], check=True)  # fmt: skip


def test_project_model_boots_under_qemu(image, tmp_path):
    """A generated project's np_model_image.c, built into the Cortex-M4 QEMU firmware: the
    board has the model at boot (no LOAD_BUNDLE) and runs it bit-exactly."""
    from neuroplast.firmware_bridge.qemu import QemuBoard, build_cortex_m

    proj = write_project(image, "pico", tmp_path / "proj")
    elf = build_cortex_m("m4", image_source=proj.src / "np_model_image.c")
    assert elf.exists()

    class Flashed(QemuBoard):
        def command(self):
            cmd = super().command()
            cmd[cmd.index("-kernel") + 1] = str(elf)
            return cmd

    rt = conv_delay()
    with Flashed("m4") as qb, Board.connect(qb.port, timeout=1.0) as b:
        assert b.caps.model_loaded and (b.caps.in_size, b.caps.out_size) == (40, 8)
        b.image = image
        x = random_codes(rt, 25, np.random.default_rng(6))
        rt.reset()
        np.testing.assert_array_equal(b.infer(x), rt.run(x))


def test_project_command(tmp_path):
    from neuroplast.bundle import save_bundle

    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """test root"""

    register(app)
    bundle = save_bundle(tmp_path / "m", conv_delay().graph, mode="int")
    r = CliRunner().invoke(app, ["board", "project", str(bundle), "--out", str(tmp_path / "p"),
                                 "--target", "pio", "--board", "rp2040"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "pio run -e rp2040 -t upload" in r.output
    assert "board = pico" in (tmp_path / "p" / "platformio.ini").read_text()
    r = CliRunner().invoke(app, ["board", "project", str(bundle), "--out", str(tmp_path / "p"),
                                 "--target", "pio"])  # fmt: skip
    assert r.exit_code != 0 and "not empty" in str(r.exception)


def test_measured_firmware_sizes_are_current():
    """fit reads the firmware's flash and RAM from boards/profiles/firmware_measured.json;
    a fresh Cortex-M build stays within 5% of it (else rerun bench/bench_firmware.py)."""
    from neuroplast.boards.profile import firmware_measurements
    from neuroplast.firmware_bridge.qemu import build_cortex_m, elf_size

    for core, m in firmware_measurements().items():
        sz = elf_size(build_cortex_m(core, "-O2", arena=8, staging=8))
        flash, ram = sz["text"] + sz["data"], sz["data"] + sz["bss"] - 16
        assert abs(flash - m["flash_bytes"]) <= 0.05 * m["flash_bytes"], (core, flash)
        assert abs(ram - m["static_ram_bytes"]) <= 0.05 * m["static_ram_bytes"], (core, ram)
