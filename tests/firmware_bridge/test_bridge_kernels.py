"""Every layer kind of the firmware, bit for bit against the host integer runtime, on the
x86 virtual board and the Cortex-M4 under QEMU: random graphs per kind (shapes, strides,
padding, dilation, depthwise/grouped convolutions, per-channel scales, zero points, reset
modes, per-neuron parameters, delays), random int8 input, and the arena the host predicts
for each image equal to what the board reports."""

from __future__ import annotations

from neuroplast.firmware_bridge.image import FIRMWARE
from neuroplast.firmware_bridge.selftest import KIND_GRAPHS, check_board
from neuroplast.graph.nodes import NODE_KINDS

GRAPHS_PER_KIND = 6


def test_generators_cover_every_kind_the_firmware_claims():
    claimed = {k for k, cls in NODE_KINDS.items()
               if cls.__module__.startswith("neuroplast.") and FIRMWARE.lookup(cls) is not None
               and FIRMWARE.lookup(cls).fn is not None}  # fmt: skip
    assert claimed == set(KIND_GRAPHS), "a kind the firmware claims has no self-test generator"


def test_every_kind_bit_exact_on_the_board(board):
    res = check_board(board, graphs=GRAPHS_PER_KIND, steps=8, seed=2024)
    bad = {k: (r.mismatches, r.arena_mismatches, r.errors[:1]) for k, r in res.items()
           if not r.ok or r.arena_mismatches}  # fmt: skip
    assert not bad, bad
    assert all(r.graphs == GRAPHS_PER_KIND for r in res.values())
