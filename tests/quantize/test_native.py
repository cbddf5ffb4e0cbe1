"""The compiled fast path (neuroplast._native) against the numpy reference runtime.

Integer graphs: bit-exact output codes and neuron states, step by step, on the seeded
random conformance graphs of every family. Float graphs: equal to float32 rounding (the
native dense products sum in another order than BLAS). The fallback: without the
extension the Runtime runs numpy and says so.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from neuroplast.errors import GraphError, NeuroplastError
from neuroplast.graph import LIF, Graph, Input, Linear
from neuroplast.quantize.conformance.engines import _int_codes
from neuroplast.quantize.conformance.generate import random_graph
from neuroplast.runtime import Runtime
from neuroplast.runtime import native as nat

needs_native = pytest.mark.skipif(nat.native_module() is None, reason="extension not built")


def _pair(g: Graph, mode: str) -> tuple[Runtime, Runtime] | None:
    try:
        ref = Runtime(g, mode=mode, backend="numpy")
    except NeuroplastError:
        return None  # the generator's graph is refused in this mode (as by the reference)
    return ref, Runtime(g, mode=mode)


def _states(rt: Runtime) -> dict[str, np.ndarray]:
    return {k: v for k, v in rt.state_dict().items() if k.startswith("state/")}


@needs_native
def test_int_graphs_bit_exact_with_numpy() -> None:
    native = 0
    for seed in range(150):
        case = random_graph(seed)
        pair = _pair(case.int_graph, "int")
        if pair is None:
            continue
        ref, fast = pair
        x = _int_codes(case)
        for t in range(x.shape[0]):
            a, b = np.asarray(ref.step(x[t])), np.asarray(fast.step(x[t]))
            assert a.dtype == b.dtype and np.array_equal(a, b), (seed, case.family, t)
        if fast.backend == "native":
            native += 1
            sa, sb = _states(ref), _states(fast)
            assert sa.keys() == sb.keys()
            for k in sa:
                assert np.array_equal(sa[k], sb[k]), (seed, k)
    assert native >= 80  # most int graphs run as one plan (delays and overflow-risk fall back)


@needs_native
def test_float_graphs_match_numpy() -> None:
    native = 0
    for seed in range(150):
        case = random_graph(seed)
        pair = _pair(case.float_graph, "float")
        if pair is None:
            continue
        ref, fast = pair
        a = np.stack([np.asarray(ref.step(case.x[t])) for t in range(case.x.shape[0])])
        b = np.stack([np.asarray(fast.step(case.x[t])) for t in range(case.x.shape[0])])
        scale = max(1.0, float(np.abs(a).max(initial=0)))
        assert np.allclose(a, b, rtol=0, atol=1e-4 * scale), (seed, case.family)
        native += fast.backend == "native"
    assert native >= 20


def _stream_net(seed: int = 0) -> Graph:
    rng = np.random.default_rng(seed)
    sizes = (700, 256, 256, 20)
    layers = [("in", Input(shape=(sizes[0],)))]
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        w = rng.normal(0, 1.5 / np.sqrt(a), (b, a)).astype(np.float32)
        layers.append((f"fc{i}", Linear(weight=w, bias=rng.normal(0, 0.1, b).astype(np.float32))))
        layers.append((f"lif{i}", LIF(tau_mem=np.full(b, 2e-2), v_th=np.ones(b))))
    return Graph.sequential(layers, dt=1e-3)


@needs_native
@pytest.mark.parametrize("density", [0.05, 1.0])
def test_streaming_lif_spikes_identical(density: float) -> None:
    """Spike input (event-driven path) and dense input (vector path): same spikes."""
    g = _stream_net()
    rng = np.random.default_rng(1)
    x = (rng.random((300, 700)) < density) * rng.uniform(0.5, 1.5, (300, 700))
    ref, fast = Runtime(g, backend="numpy"), Runtime(g)
    assert fast.backend == "native"
    ya = np.stack([ref.step(x[t]) for t in range(300)])
    yb = np.stack([fast.step(x[t]) for t in range(300)])
    assert ya.sum() > 50
    assert np.array_equal(ya, yb)
    assert np.allclose(ref.state["lif0"].v, fast.state["lif0"].v, atol=1e-4)


@needs_native
def test_plan_sees_in_place_weights_and_state_reload() -> None:
    g = _stream_net(3)
    x = (np.random.default_rng(2).random((40, 700)) < 0.1).astype(np.float32)
    ref, fast = Runtime(g, backend="numpy"), Runtime(g)
    for rt in (ref, fast):
        for t in range(20):
            rt.step(x[t])
        rt.params["fc0"]["weight"][:, :50] *= -1.0  # what plasticity and users do
    saved = fast.state_dict()
    for t in range(20, 40):
        assert np.array_equal(ref.step(x[t]), fast.step(x[t]))
    fast.load_state_dict(saved)  # back to step 20: the plan must follow the new arrays
    ref2 = Runtime(g, backend="numpy")
    ref2.load_state_dict(saved)
    for t in range(20, 40):
        assert np.array_equal(ref2.step(x[t]), fast.step(x[t]))


@needs_native
def test_deepcopy_gets_its_own_plan() -> None:
    import copy

    g = _stream_net(4)
    x = (np.random.default_rng(3).random((20, 700)) < 0.1).astype(np.float32)
    rt = Runtime(g)
    for t in range(10):
        rt.step(x[t])
    twin = copy.deepcopy(rt)
    for t in range(10, 20):
        assert np.array_equal(rt.step(x[t]), twin.step(x[t]))
    assert twin._plan is not rt._plan and twin.backend == "native"


@needs_native
def test_native_ops_check_buffer_sizes() -> None:
    lib = nat.native_module()
    w = np.zeros((4, 8), np.int8)
    small = np.zeros(3, np.int32)
    with pytest.raises(ValueError, match="buffer"):
        lib.op(nat.OPS["linear_i8"], (1, 8, 4, 0, 0, -128, 127),
               (small, np.zeros(4, np.int32), w, np.zeros(4, np.int32), np.zeros(4, np.int32),
                np.zeros(4, np.int8)))  # fmt: skip
    with pytest.raises(ValueError, match="unknown op"):
        lib.op(99, (1,), ())


def test_fallback_without_extension(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "neuroplast._native", None)  # import fails
    monkeypatch.setattr(nat, "_CACHE", {})
    assert nat.native_module() is None and nat.backend_name() == "numpy"
    g = _stream_net()
    rt = Runtime(g)
    assert rt.backend == "numpy" and "unavailable" in rt.backend_reason
    x = (np.random.default_rng(0).random((5, 700)) < 0.1).astype(np.float32)
    assert np.array_equal(rt.run(x), Runtime(g, backend="numpy").run(x))
    with pytest.raises(GraphError, match="not available"):
        Runtime(g, backend="native")


def test_info_backend_cli_reports_numpy_when_disabled() -> None:
    env = dict(os.environ, NEUROPLAST_BACKEND="numpy")
    out = subprocess.run(
        [sys.executable, "-m", "neuroplast.cli", "info", "--backend", "--json"],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    assert json.loads(out.stdout)["backend"] == "numpy"
    with pytest.raises(GraphError, match="backend must be"):
        Runtime(_stream_net(), backend="gpu")


@pytest.mark.parametrize("shape", [(1, 1), (15, 3), (16, 4), (17, 5), (33, 9), (700, 256)])
def test_dense_float_linear_same_bits_on_every_isa(shape: tuple[int, int]) -> None:
    """Dense float inputs take the 16-lane row dot products (4 rows per pass; an AVX2
    form on x86): the same bits at every instruction-set level, and equal to a float64
    reference to float32 rounding."""
    from neuroplast import _native

    n_in, n_out = shape
    r = np.random.default_rng(n_in * 7 + n_out)
    w = r.standard_normal((n_out, n_in)).astype(np.float32)
    b = r.standard_normal(n_out).astype(np.float32)
    x = r.standard_normal((3, n_in)).astype(np.float32)  # all non-zero: the dense path
    g = Graph.sequential([("in", Input(shape=(n_in,))), ("fc", Linear(weight=w, bias=b))])
    ref = x.astype(np.float64) @ w.T.astype(np.float64) + b
    before, outs = _native.isa(), []
    try:
        for level in ("portable", "avx2", "avx512vnni"):
            try:
                _native.isa(level)
            except ValueError:  # a level this CPU lacks
                continue
            outs.append(np.asarray(Runtime(g, mode="float", backend="native").step(x)).copy())
    finally:
        _native.isa(before)
    for y in outs:
        np.testing.assert_array_equal(y, outs[0])
    np.testing.assert_allclose(outs[0], ref, rtol=1e-5, atol=1e-5 * np.sqrt(n_in))
