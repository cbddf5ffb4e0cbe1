"""`fit` never says "fits" for a model the firmware cannot run, and "fits" means it runs:
for every firmware board profile and random models of every kind (and ones sized to cross
the small boards' RAM), a virtual board given exactly the memory `fit` counted for the
model (arena = usable RAM - the firmware's own RAM - the staging buffer for the image)
loads the image and runs it bit-exactly when `fit` says it fits, and refuses it (arena
full) when `fit` says RAM does not suffice."""

from __future__ import annotations

import numpy as np
import pytest

from neuroplast.boards import list_profiles, load_profile
from neuroplast.boards.estimate import fit_graph
from neuroplast.firmware_bridge import Board, DeviceError, VirtualBoard, build_image
from neuroplast.firmware_bridge.selftest import KIND_GRAPHS, random_graph
from neuroplast.graph import LIF, Graph, Input, Linear, QuantSpec
from neuroplast.runtime import Runtime

FIRMWARE_BOARDS = [n for n in list_profiles() if "firmware" in load_profile(n).backends
                   and not load_profile(n).python_runtime]  # fmt: skip
ARENA_MAX, STAGING_MAX = 1024 * 1024, 256 * 1024  # the virtual board's build limits


def _wide(n: int) -> Graph:
    rng = np.random.default_rng(n)
    w = rng.normal(0, 0.1, (n, n))
    return Graph.sequential([
        ("x", Input(shape=(n,), quant=QuantSpec(8, 0.05, 0))),
        ("fc", Linear(weight=w, weight_q=QuantSpec(8, 0.004, 0, narrow=True), out_q=QuantSpec(16, 0.01, 0))),
        ("lif", LIF(tau_mem=np.full(n, 0.01), v_th=np.full(n, 0.5))),
    ])  # fmt: skip


def _models() -> list[Graph]:
    rng = np.random.default_rng(15)
    return [random_graph(k, rng) for k in KIND_GRAPHS] + [_wide(n) for n in (96, 200, 330, 420)]


def test_firmware_boards_are_the_mcu_profiles():
    assert {"rp2040", "stm32h7", "nano33ble", "esp32s3", "virtual"} <= set(FIRMWARE_BOARDS)


@pytest.mark.parametrize("board", FIRMWARE_BOARDS)
def test_fits_means_the_image_runs_in_the_memory_fit_counted(board, firmware):
    prof = load_profile(board)
    seen = {"fits": 0, "ram": 0}
    for g in _models():
        rep = fit_graph(g, prof)
        assert not any("cannot run on" in r for r in rep.reasons), rep.reasons
        img = build_image(Runtime(g, mode="int"))
        m = rep.memory
        assert (m.arena, m.staging) == (img.arena_bytes, len(img.data))
        arena = prof.memory.usable_ram_bytes - m.runtime - m.staging - m.plasticity
        ram_short = any(r.startswith("RAM") for r in rep.reasons)
        if rep.fits:
            seen["fits"] += 1
            assert arena >= img.arena_bytes
        if not 0 < arena <= ARENA_MAX or len(img.data) > STAGING_MAX:
            assert ram_short  # cannot emulate a board this small or this large; fit said so
            continue
        with VirtualBoard(arena=arena, staging=len(img.data)) as vb, \
                Board.connect(vb.port, timeout=1.0) as b:  # fmt: skip
            if rep.fits:
                rt = Runtime(g, mode="int")
                b.load(rt)
                x = (
                    np.random.default_rng(0)
                    .integers(-128, 128, (6,) + img.in_shape)
                    .astype(np.int8)
                )
                rt.reset()
                ref = np.asarray(rt.run(x)).reshape((6,) + img.out_shape)
                np.testing.assert_array_equal(b.infer(x), ref)
            elif ram_short:
                seen["ram"] += 1
                with pytest.raises(DeviceError, match="TOO_LARGE"):
                    b.load(img)
    assert seen["fits"] >= len(KIND_GRAPHS)
    if board in ("rp2040", "nano33ble", "virtual"):  # the wide models cross these boards' RAM
        assert seen["ram"] >= 1, seen
