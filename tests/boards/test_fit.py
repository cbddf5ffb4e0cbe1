"""fit(): memory, ops, latency and energy against hand-computed values; verdicts with reasons."""

from __future__ import annotations

import numpy as np
import pytest

from neuroplast.boards import load_profile
from neuroplast.boards.estimate import PYTHON_RUNTIME_BYTES, fit, fit_graph
from neuroplast.errors import BoardError

from .conftest import make_graph


def _spiking(n_in: int, n_out: int, bits: int | None = 8, neuron: str = "LIF", seed: int = 0):
    from neuroplast.graph import IF, LIF, Graph, Input, Linear
    from neuroplast.quant import QuantSpec

    rng = np.random.default_rng(seed)
    wq = QuantSpec(bits=bits, scale=0.01) if bits else None
    w = (rng.standard_normal((n_out, n_in)) * 0.1).astype(np.float32)
    if neuron == "LIF":
        nrn = LIF(tau_mem=np.full(n_out, 0.02, np.float32), v_th=np.ones(n_out, np.float32))
    else:
        nrn = IF(v_th=np.ones(n_out, np.float32))
    # a complete integer model: input codes, int8 weights, a 16-bit membrane current
    iq = QuantSpec(bits=8, scale=1 / 127) if bits else None
    oq = QuantSpec(bits=16, scale=1e-3) if bits else None
    return Graph.sequential(
        [
            ("in", Input(shape=(n_in,), quant=iq)),
            ("fc", Linear(weight=w, weight_q=wq, out_q=oq)),
            ("n", nrn),
        ]
    )


def test_numpy_board_memory_ops_latency_energy_match_hand_calculation():
    g = make_graph()  # 16 -> Linear(32x16 + bias) -> LIF(32), float32
    rep = fit_graph(g, "rpi5", plasticity={"fc": {"kind": "hebbian"}})
    m = rep.memory
    assert m.weights == 512 * 4 + 32 * 4 + 2 * 32 * 4  # fc weight + bias, LIF tau_mem + v_th
    assert m.state == 32 * 4  # one membrane per neuron
    assert m.activations == (16 + 32 + 32) * 4  # every node output kept by the numpy runtime
    assert m.plasticity == 4 * (16 + 32) + 8 * 32 * 16  # traces + float64 update buffer
    assert m.runtime == PYTHON_RUNTIME_BYTES
    assert m.graph_copy == 4 * (512 + 32 + 64)  # the Graph's float32 arrays stay loaded
    assert m.ram_needed == (
        m.weights + m.state + m.activations + m.plasticity + m.runtime + m.graph_copy
    )
    o = rep.ops
    assert (o.n_nodes, o.macs, o.updates, o.neurons) == (3, 512, 512, 32)
    c = load_profile("rpi5").cost
    lat = 3 * c.op_overhead_s + 512 / c.macs_per_s + 512 / c.updates_per_s
    assert rep.latency_s == pytest.approx(lat, rel=1e-12)
    assert rep.energy_j == pytest.approx(lat * c.active_power_w, rel=1e-12)
    assert rep.verdict == "fits" and rep.fits
    # learning off: no updates, no plasticity buffers
    off = fit_graph(g, "rpi5", plasticity={"fc": {"kind": "hebbian"}}, learning=False)
    assert off.ops.updates == 0 and off.memory.plasticity == 0
    assert off.latency_s == pytest.approx(3 * c.op_overhead_s + 512 / c.macs_per_s)


def test_mcu_flash_and_ram_limits():
    big = _spiking(1024, 1024, bits=8)  # 1 MiB of int8 weights
    rep = fit_graph(big, "rp2040")  # 2 MiB flash: fits in flash, weights stay in flash
    assert rep.runtime == "firmware" and rep.mode == "int"
    assert rep.memory.flash_needed == load_profile("rp2040").firmware_bytes + rep.memory.weights
    assert rep.memory.workspace == 0  # firmware accumulates in int32, no float64 copy
    on_pi = fit_graph(big, "rpi4")  # numpy int kernels: float64 copy of the largest weight matrix
    assert on_pi.memory.workspace == 8 * 1024 * 1024
    assert on_pi.memory.weights == 1024 * 1024 + 2 * 1024 * 4  # int8 weights + LIF params
    assert rep.fits and not rep.reasons
    assert rep.warnings and rep.warnings[0].startswith(
        "real time: estimated 47."
    )  # 1 M MACs at 22 M/s
    # with learning the plastic weights move to RAM (and need an update buffer): 264 KB is too small
    learn = fit_graph(big, "rp2040", plasticity={"fc": {"kind": "oja"}})
    assert learn.verdict == "does-not-fit"
    assert any(
        r.startswith("RAM: needs") and "rp2040 has 232.0 KiB usable" in r for r in learn.reasons
    )
    huge = _spiking(2048, 2048, bits=8)  # 4 MiB weights > 1 MB flash of the nRF52840
    rep = fit_graph(huge, "nano33ble")
    assert rep.verdict == "does-not-fit"
    assert any(r.startswith("flash: needs 4.1 MiB") for r in rep.reasons)


def test_firmware_counts_spike_inputs_as_synops_at_the_given_rate():
    from neuroplast.graph import LIF, Graph, Input, Linear
    from neuroplast.quant import QuantSpec

    w1 = np.ones((64, 32), np.float32) * 0.1
    w2 = np.ones((10, 64), np.float32) * 0.1
    lif = dict(tau_mem=np.full(64, 0.02, np.float32), v_th=np.ones(64, np.float32))
    q8, wq, cur = QuantSpec(8, 1 / 127), QuantSpec(8, 0.01), QuantSpec(16, 1e-3)
    g = Graph.sequential(
        [("in", Input(shape=(32,), quant=q8)), ("fc1", Linear(weight=w1, weight_q=wq, out_q=cur)),
         ("l1", LIF(**lif)), ("fc2", Linear(weight=w2, weight_q=wq, out_q=q8))]
    )  # fmt: skip
    rep = fit_graph(g, "stm32h7", input_rate=0.25)
    c = load_profile("stm32h7").cost
    # fc1 sees dense input (2048 MACs); fc2 sees spikes: 0.25 * 640 synops
    assert rep.ops.synops == 160
    lat = 4 * c.op_overhead_s + 2048 / c.macs_per_s + 160 / c.synops_per_s
    assert rep.latency_s == pytest.approx(lat, rel=1e-12)
    with pytest.raises(BoardError, match="input_rate must be in"):
        fit_graph(g, "stm32h7", input_rate=1.5)


def test_xylo_limits():
    ok = fit_graph(_spiking(16, 8), "xylo")
    assert ok.verdict == "fits", ok.reasons + ok.warnings
    c = load_profile("xylo").cost
    assert ok.ops.synops == 128 and ok.latency_s == pytest.approx(128 / c.synops_per_s)
    bad = fit_graph(_spiking(2000, 1001, bits=16), "xylo", plasticity={"fc": {"kind": "stdp"}})
    assert bad.verdict == "does-not-fit"
    text = "\n".join(bad.reasons)
    assert "node 'fc' (Linear): a neuron receives 2000 synapses, limit 1016" in text
    assert "node 'fc' (Linear): 16-bit weights, chip supports 8" in text
    assert "the graph: 1001 neurons, chip holds 1000" in text
    assert "the graph: 2000 input channels, chip has 16" in text
    assert "the graph: 1001 outputs, chip has 8" in text
    assert any("no on-chip learning" in w for w in bad.warnings)


def test_speck_and_loihi_neuron_types_and_energy():
    rep = fit_graph(_spiking(64, 10, neuron="LIF"), "speck")
    assert rep.verdict == "does-not-fit"
    assert "node 'n' (LIF): LIF is not a neuron of this chip (it has IF)" in rep.reasons
    assert fit_graph(_spiking(64, 10, neuron="IF"), "speck").verdict == "fits"
    lo = fit_graph(_spiking(64, 10), "loihi2", input_rate=0.5)
    c = load_profile("loihi2").cost
    syn = 0.5 * 640
    assert lo.ops.synops == 320
    assert lo.energy_j == pytest.approx(syn * c.energy_per_synop_j + lo.latency_s * c.idle_power_w)
    fl = fit_graph(_spiking(64, 10, bits=None), "loihi2")
    assert fl.verdict == "fits-with-warnings"
    assert any(
        "float weights without quantization metadata; quantize to <= 8" in w for w in fl.warnings
    )


def test_fit_reads_a_bundle_and_rejects_bad_input(tmp_path):
    from neuroplast.bundle import save_bundle

    g = make_graph()
    path = save_bundle(
        tmp_path / "b", g, plasticity={"rules": [{"layer": "fc", "rule": {"kind": "oja"}}]}
    )
    rep = fit(path, "jetson-nano")
    assert rep.ops.updates == 512 and rep.memory.plasticity > 0
    size = sum(f.stat().st_size for f in path.iterdir())
    assert rep.memory.flash_needed == size
    d = rep.to_dict()
    assert d["verdict"] == "fits" and d["layers"][1]["plastic"] is True
    with pytest.raises(BoardError, match="bundle not found"):
        fit(tmp_path / "nope", "rpi4")
    with pytest.raises(BoardError, match="plasticity names layers not in the graph: fc9"):
        fit_graph(g, "rpi4", plasticity={"fc9": {"kind": "oja"}})
    with pytest.raises(BoardError, match="unknown board"):
        fit(path, "pdp11")
    with pytest.raises(BoardError, match="expected a bundle or a Graph"):
        fit(42, "rpi4")


def test_real_time_warning_when_a_step_is_slower_than_dt():
    g = _spiking(2048, 2048, bits=8)  # 4.2 M MACs per 1 ms step at 60 M MAC/s
    rep = fit_graph(g, "esp32s3")
    assert any(w.startswith("real time: estimated") for w in rep.warnings)


def test_plugins_are_imported_before_loading(tmp_path):
    import sys

    from neuroplast.boards.plugins import import_plugins
    from neuroplast.boards.ssh_deploy import systemd_unit

    sys.modules.pop("neuroplast.boards.detect", None)
    assert import_plugins(["neuroplast.boards.detect"]) == ["neuroplast.boards.detect"]
    assert "neuroplast.boards.detect" in sys.modules
    with pytest.raises(BoardError, match="cannot import plugin module 'neuroplast.apps.nope'"):
        fit(make_graph(), "rpi4", plugins=["neuroplast.apps.nope"])
    with pytest.raises(BoardError, match="bad plugin module name"):
        import_plugins(["os; rm -rf /"])
    unit = systemd_unit(
        bundle_path="/b", venv_python="/v/python", work_dir="/w", state_dir="/s", user=None,
        plugins=["neuroplast.apps.motion.runtime_node"],
    )  # fmt: skip
    assert "--plugin neuroplast.apps.motion.runtime_node" in unit and "User=" not in unit


def test_integer_path_uses_the_int_coefficients():
    g = _spiking(64, 32, bits=8)
    c = load_profile("rpi5").cost
    assert c.int_macs_per_s < c.macs_per_s  # the float64-copy integer path is slower
    rep = fit_graph(g, "rpi5")
    assert rep.mode == "int"
    assert rep.latency_s == pytest.approx(3 * c.int_op_overhead_s + 2048 / c.int_macs_per_s)
    fl = fit_graph(g, "rpi5", mode="float")
    assert fl.latency_s == pytest.approx(3 * c.op_overhead_s + 2048 / c.macs_per_s)
    # a board without int figures falls back to the float ones
    esp = load_profile("esp32s3").cost
    assert esp.macs_rate("int") == esp.macs_per_s and esp.overhead("int") == esp.op_overhead_s


def test_delay_linear_uses_the_gather_rate_and_its_tables():
    from neuroplast.graph import LIF, DelayLinear, Graph, Input
    from neuroplast.quant import QuantSpec

    rng = np.random.default_rng(0)
    g = Graph.sequential(
        [
            ("in", Input(shape=(20,), quant=QuantSpec(8, 1 / 127))),
            (
                "fc",
                DelayLinear(
                    weight=rng.standard_normal((30, 20)).astype(np.float32),
                    delay=rng.integers(0, 8, (30, 20)).astype(np.float32),
                    weight_q=QuantSpec(8, 0.01),
                    out_q=QuantSpec(16, 1e-3),
                ),
            ),
            ("lif", LIF(tau_mem=np.full(30, 0.02, np.float32), v_th=np.ones(30, np.float32))),
        ]
    )
    c = load_profile("rpi4").cost
    rep = fit_graph(g, "rpi4")
    assert rep.mode == "int"
    assert rep.latency_s == pytest.approx(3 * c.int_op_overhead_s + 600 / c.delay_macs_per_s)
    depth = int(g.nodes["fc"].delay.max()) + 1
    m = rep.memory
    assert m.state == depth * 20 * 4 + 30 * 4  # ring buffer (cost: 4 B) + membranes
    assert m.tables == 8 * 600 + depth * 20 * 4  # int64 delays + the ring's second half (int64)
    assert m.workspace == 32 * 600


def test_large_dense_layers_are_bandwidth_bound():
    c = load_profile("rpi4").cost
    g = make_graph(n_in=2048, n_hidden=2048)  # 16 MiB of float32 weights per step
    rep = fit_graph(g, "rpi4")
    traffic = (2048 * 2048 + 2048) * 4
    assert traffic / c.mem_bandwidth_Bps > 2048 * 2048 / c.macs_per_s  # memory bound here
    assert rep.latency_s == pytest.approx(3 * c.op_overhead_s + traffic / c.mem_bandwidth_Bps)
