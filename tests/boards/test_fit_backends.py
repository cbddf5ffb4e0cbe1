"""Per-backend cost tables of Python-runtime boards: ``[cost.native]`` over ``[cost]``.

Expected latencies are computed here by hand from the coefficients written in the test's own
profile (never from a timing); which backend the runtime uses is asked of the Runtime itself.
"""

from __future__ import annotations

import numpy as np
import pytest

from neuroplast.boards import load_profile, parse_profile
from neuroplast.boards.estimate import fit_graph, runtime_backend
from neuroplast.errors import BoardError
from neuroplast.runtime import Runtime
from neuroplast.runtime.native import native_module

from .conftest import make_graph

HAS_NATIVE = native_module() is not None
needs_native = pytest.mark.skipif(not HAS_NATIVE, reason="neuroplast._native not built")

# [cost] and [cost.native] with different numbers everywhere; [cost.native] omits
# int_op_overhead_s, updates_per_s and the energy keys (they fall back to [cost]); it has a
# per-step time (step_overhead_s, which int mode falls back to: no int_step_overhead_s) that
# [cost] lacks (0 there).
_PROFILE = """
name = "twin"
title = "two-backend test board"
kind = "{kind}"
python_runtime = true
firmware_bytes = 0
accelerators = []
backends = ["numpy"]
{extra}

[cpu]
arch = "x86_64"
core = "test"
cores = 1
clock_hz = 1.0e9
macs_per_cycle = 1

[memory]
ram_bytes = 1073741824
flash_bytes = 0
reserved_ram_bytes = 0
cache_bytes = 1073741824

[cost]
macs_per_s = 1.0e9
synops_per_s = 1.0e9
updates_per_s = 1.0e9
op_overhead_s = 1.0e-5
active_power_w = 2.0
idle_power_w = 1.0
energy_per_synop_j = 0.0
int_macs_per_s = 5.0e8
int_op_overhead_s = 2.0e-5
delay_macs_per_s = 1.0e8

[cost.native]
macs_per_s = 4.0e9
op_overhead_s = 1.0e-6
int_macs_per_s = 2.0e9
delay_macs_per_s = 8.0e8
active_power_w = 3.0
step_overhead_s = 5.0e-6
"""


def _profile(kind: str = "linux", extra: str = "", native: bool = True):
    text = _PROFILE.format(kind=kind, extra=extra)
    if not native:
        text = text[: text.index("[cost.native]")]
    return parse_profile(text, "twin.toml")


def _delay_graph(n: int = 24, seed: int = 0):
    """Input (int8 codes) -> DelayLinear(n x n, delays 0..7) -> LIF(n), integer mode."""
    from neuroplast.graph import LIF, DelayLinear, Graph, Input
    from neuroplast.quant import QuantSpec

    rng = np.random.default_rng(seed)
    return Graph.sequential(
        [
            ("in", Input(shape=(n,), quant=QuantSpec(8, 1 / 255, -128))),
            (
                "fc",
                DelayLinear(
                    weight=(rng.standard_normal((n, n)) * 0.1).astype(np.float32),
                    delay=rng.integers(0, 8, (n, n)).astype(np.float32),
                    weight_q=QuantSpec(8, 0.01),
                    out_q=QuantSpec(32, 0.001),
                ),
            ),
            ("lif", LIF(tau_mem=np.full(n, 0.02, np.float32), v_th=np.ones(n, np.float32))),
        ]
    )


def test_native_table_merges_over_cost():
    p = _profile()
    nat, base = p.cost_for("native"), p.cost_for("numpy")
    assert base is p.cost
    assert (nat.macs_per_s, nat.op_overhead_s, nat.int_macs_per_s) == (4e9, 1e-6, 2e9)
    assert (nat.delay_macs_per_s, nat.active_power_w) == (8e8, 3.0)
    # omitted keys come from [cost]
    assert (nat.int_op_overhead_s, nat.updates_per_s, nat.idle_power_w) == (2e-5, 1e9, 1.0)
    assert (nat.step_overhead("float"), nat.step_overhead("int")) == (5e-6, 5e-6)
    assert (base.step_overhead("float"), base.step_overhead("int")) == (0.0, 0.0)
    # without the table, [cost] serves both backends
    plain = _profile(native=False)
    assert plain.cost_native is None and plain.cost_for("native") is plain.cost
    with pytest.raises(BoardError, match="backend must be one of numpy, native"):
        p.cost_for("cuda")


def test_float_latency_and_energy_per_backend_by_hand():
    g = make_graph()  # Input(16) -> Linear(32 x 16 + bias) -> LIF(32): 3 nodes, 512 MACs
    p = _profile()
    num = fit_graph(g, p, backend="numpy")
    nat = fit_graph(g, p, backend="native")
    t_num = 3 * 1e-5 + 512 / 1e9
    t_nat = 5e-6 + 3 * 1e-6 + 512 / 4e9
    assert num.latency_s == pytest.approx(t_num, rel=1e-12)
    assert nat.latency_s == pytest.approx(t_nat, rel=1e-12)
    assert num.energy_j == pytest.approx(t_num * 2.0, rel=1e-12)
    assert nat.energy_j == pytest.approx(t_nat * 3.0, rel=1e-12)
    assert (num.backend, num.cost_table) == ("numpy", "cost")
    assert (nat.backend, nat.cost_table) == ("native", "cost.native")
    d = nat.to_dict()
    assert (d["backend"], d["cost_table"]) == ("native", "cost.native")
    # memory does not depend on the backend's coefficients
    assert nat.memory == num.memory


def test_int_delay_latency_falls_back_to_cost_for_missing_keys():
    n = 24
    g = _delay_graph(n)
    p = _profile()
    num = fit_graph(g, p, mode="int", backend="numpy")
    nat = fit_graph(g, p, mode="int", backend="native")
    # int_op_overhead_s is not in [cost.native]: 2e-5 from [cost] on both backends
    assert num.latency_s == pytest.approx(3 * 2e-5 + n * n / 1e8, rel=1e-12)
    assert nat.latency_s == pytest.approx(5e-6 + 3 * 2e-5 + n * n / 8e8, rel=1e-12)
    # a board without [cost.native]: "native" is costed with [cost]
    plain = fit_graph(g, _profile(native=False), mode="int", backend="native")
    assert plain.latency_s == pytest.approx(num.latency_s, rel=1e-12)
    assert (plain.backend, plain.cost_table) == ("native", "cost")


def test_linux_board_without_the_extension_is_costed_as_numpy():
    g = make_graph()
    p = _profile("linux")
    assert runtime_backend(g, p, "float") == "numpy"
    rep = fit_graph(g, p)
    assert (rep.backend, rep.cost_table) == ("numpy", "cost")
    assert rep.latency_s == pytest.approx(3 * 1e-5 + 512 / 1e9, rel=1e-12)


def test_host_board_follows_the_disabled_extension(monkeypatch):
    monkeypatch.setenv("NEUROPLAST_BACKEND", "numpy")
    g = make_graph()
    rep = fit_graph(g, _profile("host"))
    assert (rep.backend, rep.cost_table) == ("numpy", "cost")
    assert rep.latency_s == pytest.approx(3 * 1e-5 + 512 / 1e9, rel=1e-12)


@needs_native
@pytest.mark.parametrize("kind,extra", [("host", ""), ("linux", "native_extension = true")])
def test_backend_is_what_the_runtime_reports(kind, extra):
    p = _profile(kind, extra)
    for g, mode, t_nat in (
        (make_graph(), "float", 5e-6 + 3 * 1e-6 + 512 / 4e9),
        (_delay_graph(24), "int", 5e-6 + 3 * 2e-5 + 24 * 24 / 8e8),
    ):
        be = Runtime(g, mode=mode).backend
        assert be == "native"  # both graphs are covered by the compiled plan
        rep = fit_graph(g, p, mode=mode)
        assert (rep.backend, rep.cost_table) == ("native", "cost.native")
        assert rep.latency_s == pytest.approx(t_nat, rel=1e-12)


@needs_native
def test_host_graph_without_a_native_plan_is_costed_as_numpy():
    # a float convolution has no native op: the Runtime steps it node by node in numpy
    from neuroplast.graph import Conv2d, Graph, Input, ReLU

    rng = np.random.default_rng(0)
    g = Graph.sequential(
        [
            ("in", Input(shape=(1, 6, 6))),
            ("conv", Conv2d(weight=rng.standard_normal((2, 1, 3, 3)).astype(np.float32))),
            ("relu", ReLU()),
        ]
    )
    rt = Runtime(g, mode="float")
    assert rt.backend == "numpy" and rt.backend_reason
    rep = fit_graph(g, _profile("host"), mode="float")
    assert (rep.backend, rep.cost_table) == ("numpy", "cost")


def test_shipped_python_boards_state_their_backend_tables():
    host = load_profile("host")
    assert host.cost_native is not None  # measured by bench/fit_table.py calibrate_host
    for name in ("rpi4", "rpi5", "jetson-nano", "jetson-orin-nano"):
        p = load_profile(name)
        assert not p.native_extension and p.cost_native is None


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda t: t.replace("[cost.native]\n", "[cost.native]\nvoltage = 3.3\n"),
            r"twin.toml: unknown key 'cost.native.voltage'",
        ),
        (
            lambda t: t.replace("macs_per_s = 4.0e9", "macs_per_s = -4.0e9"),
            r"'cost.native.macs_per_s' = -4000000000.0 must be > 0",
        ),
        (
            lambda t: t.replace("op_overhead_s = 1.0e-6", 'op_overhead_s = "fast"'),
            r"'cost.native.op_overhead_s' must be a number, got str",
        ),
        (
            lambda t: t.replace("step_overhead_s = 5.0e-6", "step_overhead_s = -1.0"),
            r"'cost.native.step_overhead_s' = -1.0 must be >= 0",
        ),
        (
            lambda t: t.replace("[cost.native]", "[cost.native.extra]"),
            r"unknown key 'cost.native.extra'",
        ),
        (
            lambda t: t.replace("python_runtime = true", "python_runtime = false"),
            r"'\[cost.native\]' is for boards that run the Python runtime",
        ),
        (
            lambda t: t.replace(
                'backends = ["numpy"]', 'backends = ["numpy"]\nnative_extension = 1'
            ),
            r"'native_extension' must be a boolean",
        ),
    ],
)
def test_bad_native_tables_raise_one_line_board_errors(edit, message):
    text = edit(_PROFILE.format(kind="linux", extra=""))
    with pytest.raises(BoardError, match=message) as e:
        parse_profile(text, "twin.toml")
    assert "\n" not in str(e.value)


def test_native_extension_needs_the_python_runtime():
    text = _PROFILE.format(kind="linux", extra="native_extension = true")
    text = text[: text.index("[cost.native]")].replace(
        "python_runtime = true", "python_runtime = false"
    )
    with pytest.raises(BoardError, match="'native_extension' needs python_runtime = true"):
        parse_profile(text, "twin.toml")


def test_fit_rejects_an_unknown_backend():
    with pytest.raises(BoardError, match="backend must be 'numpy' or 'native'"):
        fit_graph(make_graph(), _profile(), backend="cuda")


def test_cli_fit_names_and_overrides_the_backend(small_bundle, tmp_path):
    """`neuroplast fit --backend` picks the table; JSON and the table title name it."""
    import json

    from typer.testing import CliRunner

    from neuroplast.cli import build_app

    prof = tmp_path / "twin.toml"
    prof.write_text(_PROFILE.format(kind="linux", extra=""))
    app = build_app()
    r = CliRunner().invoke(app, ["fit", str(small_bundle), "-b", str(prof), "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert (d["backend"], d["cost_table"]) == ("numpy", "cost")
    assert d["latency_s"] == pytest.approx(3 * 1e-5 + 512 / 1e9, rel=1e-12)
    r = CliRunner().invoke(
        app, ["fit", str(small_bundle), "-b", str(prof), "--kernels", "native"], terminal_width=200
    )
    assert r.exit_code == 0, r.output
    assert "native kernels, cost.native table" in " ".join(r.output.split())
    r = CliRunner().invoke(app, ["fit", str(small_bundle), "-b", str(prof), "--kernels", "gpu"])
    assert r.exit_code != 0 and "backend must be 'numpy' or 'native'" in r.output
