"""NIR export/import verified against real peers: snnTorch and Norse run our files, we run
theirs, with 100 % identical spikes wherever the conventions of docs/nir.md are met."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nir = pytest.importorskip("nir")
pytest.importorskip("nirtorch")  # snnTorch's and Norse's NIR importers need it
pytest.importorskip("snntorch.import_nir")
pytest.importorskip("norse.torch")

from neuroplast.graph import IF, LIF, CubaLIF, Graph, Input, Linear  # noqa: E402
from neuroplast.quantize.nir import NIRPeerWarning, export_nir, read  # noqa: E402
from neuroplast.runtime import Runtime  # noqa: E402

DT = 1e-4  # snnTorch's import hard-codes dt = 1e-4
T = 300


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
    logging.getLogger().setLevel(logging.ERROR)  # Norse logs r warnings via root


def _net(neuron: str, seed: int = 0, dt: float = DT) -> Graph:
    """A fixed-random 10-24-5 SNN that spikes a fair amount on 30 % input rates."""
    rng = np.random.default_rng(seed)
    nin, nh, no = 10, 24, 5

    def cell(tau_mem: float) -> object:
        if neuron == "lif":
            return LIF(tau_mem=np.float32(tau_mem), v_th=np.float32(1.0))
        if neuron == "if":
            return IF(v_th=np.float32(2.0))
        return CubaLIF(tau_syn=np.float32(1e-3), tau_mem=np.float32(tau_mem), v_th=np.float32(1.0))

    gain = {"lif": 0.9, "cubalif": 0.25, "if": 0.5}[neuron]
    return Graph.sequential(
        [
            ("x", Input(shape=(nin,))),
            (
                "fc1",
                Linear(
                    weight=rng.normal(0, gain, (nh, nin)).astype(np.float32),
                    bias=rng.normal(0, 0.05, nh).astype(np.float32),
                ),
            ),  # fmt: skip
            ("n1", cell(2e-3)),
            (
                "fc2",
                Linear(
                    weight=rng.normal(0, gain, (no, nh)).astype(np.float32),
                    bias=np.zeros(no, np.float32),
                ),
            ),  # fmt: skip
            ("n2", cell(4e-3)),
        ],
        dt=dt,
    )


def _inputs(seed: int = 1, n: int = 10) -> np.ndarray:
    return (np.random.default_rng(seed).random((T, n)) < 0.3).astype(np.float32)


def _ours(g: Graph, x: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Spikes of the last layer and membranes of both layers, step by step."""
    rt = Runtime(g)
    spikes, mem = [], {"n1": [], "n2": []}
    for t in range(len(x)):
        spikes.append(np.asarray(rt.step(x[t])).ravel())
        for k in mem:
            mem[k].append(np.array(rt.state[k].v).ravel())  # a copy: state updates in place
    return np.array(spikes), {k: np.array(v) for k, v in mem.items()}


def _norse_v(s: object) -> object:
    """Membrane from Norse state: (LIFBoxState,) or ((LIBoxState, LIFBoxState),)."""
    while not hasattr(s, "v") and isinstance(s, tuple) and len(s) == 1:
        s = s[0]
    return s.v if hasattr(s, "v") else s[1].v


def _mem_close(a: list, b: np.ndarray) -> bool:
    """Membranes within 1e-4, relative to max(1, |v|) (float32 op order differs)."""
    a = np.asarray(a, dtype=np.float64)
    return bool(np.all(np.abs(a - b) <= 1e-4 * np.maximum(1.0, np.abs(b))))


def _agree(a: np.ndarray, b: np.ndarray) -> float:
    return float((a == b).mean())


@pytest.mark.parametrize("neuron", ["lif", "cubalif"])
def test_snntorch_runs_our_export(tmp_path, neuron):
    from snntorch.import_nir import import_from_nir

    g = _net(neuron)
    x = _inputs()
    ref, ref_mem = _ours(g, x)
    assert ref.sum() > 20  # the comparison means something only if there are spikes
    path = export_nir(g, tmp_path / "net.nir")
    net = import_from_nir(nir.read(str(path)))
    got, mem = [], {"n1": [], "n2": []}
    with torch.no_grad():
        for t in range(T):
            out = net(torch.tensor(x[t : t + 1]))
            out = out[0] if isinstance(out, tuple) else out
            got.append(out.numpy().ravel())
            for k in mem:
                mem[k].append(getattr(net, k).mem.numpy().ravel())
    got = np.array(got)
    assert _agree(got, ref) == 1.0
    for k in mem:  # same convention (r = tau/dt, dt = 1e-4): membranes agree directly
        assert _mem_close(mem[k], ref_mem[k]), k


@pytest.mark.parametrize("neuron,r_mode", [("lif", "fold"), ("cubalif", "spec"), ("if", "spec")])
def test_norse_runs_our_export(tmp_path, neuron, r_mode):
    import norse.torch as nt

    g = _net(neuron, seed=2)
    x = _inputs(3)
    ref, ref_mem = _ours(g, x)
    assert ref.sum() > 20
    path = export_nir(g, tmp_path / "net.nir", r_mode=r_mode)
    mod = nt.from_nir(nir.read(str(path)), dt=DT)
    state, got, mem = None, [], {"n1": [], "n2": []}
    with torch.no_grad():
        for t in range(T):
            out, state = mod(torch.tensor(x[t : t + 1]), state)
            got.append(out.numpy().ravel())
            for k in mem:
                mem[k].append(_norse_v(state.state[k]).numpy().ravel())
    got = np.array(got)
    assert _agree(got, ref) == 1.0
    for k in mem:
        assert _mem_close(mem[k], ref_mem[k]), k


def test_norse_ignores_r_so_spec_mode_lif_does_not_match(tmp_path):
    """Documents the known convention gap that r_mode='fold' exists for."""
    import norse.torch as nt

    g = _net("lif", seed=2)
    x = _inputs(3)
    ref, _ = _ours(g, x)
    mod = nt.from_nir(nir.read(str(export_nir(g, tmp_path / "s.nir"))), dt=DT)
    state, n = None, 0.0
    with torch.no_grad():
        for t in range(T):
            out, state = mod(torch.tensor(x[t : t + 1]), state)
            n += float(out.sum())
    assert n < 0.2 * ref.sum()


def test_we_run_a_graph_exported_by_snntorch(tmp_path):
    import snntorch as snn
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(0)
    nin, nh, no = 10, 16, 4
    lif = dict(init_hidden=True, reset_mechanism="zero", reset_delay=False)
    net = torch.nn.Sequential(
        torch.nn.Linear(nin, nh),
        snn.Leaky(beta=torch.full((nh,), 0.9), threshold=torch.ones(nh), **lif),
        torch.nn.Linear(nh, no),
        snn.Leaky(beta=torch.full((no,), 0.8), threshold=torch.ones(no), output=True, **lif),
    )
    with torch.no_grad():
        net[0].weight.mul_(3.0)
        net[2].weight.mul_(3.0)
    ng = export_to_nir(net, torch.zeros(1, nin), ignore_dims=[0])
    from snntorch import utils as snn_utils

    snn_utils.reset(net)  # export_to_nir traced the net: its hidden membranes are not at 0
    nir.write(str(tmp_path / "snn.nir"), ng)
    x = _inputs(5, nin)
    ref = []
    with torch.no_grad():
        for t in range(T):
            out = net(torch.tensor(x[t : t + 1]))
            ref.append((out[0] if isinstance(out, tuple) else out).numpy().ravel())
    ref = np.array(ref)
    assert ref.sum() > 20
    g = read(tmp_path / "snn.nir")
    assert g.dt == pytest.approx(1e-4, rel=1e-4)  # inferred from r = tau/dt
    got = np.asarray(Runtime(g).run(x)).reshape(ref.shape)
    assert _agree(got, ref) == 1.0


def _conv_net(neuron: str) -> Graph:
    from neuroplast.graph import AvgPool2d, Conv2d, Flatten, SumPool2d

    rng = np.random.default_rng(0)
    if neuron == "if":  # Norse: IF + SumPool2d
        cell, pool, dt, gain = (lambda: IF(v_th=np.float32(1.0))), SumPool2d(), 1e-3, 0.4
    else:  # snnTorch: LIF + AvgPool2d, dt = 1e-4
        cell = lambda: LIF(tau_mem=np.float32(2e-3), v_th=np.float32(1.0))  # noqa: E731
        pool, dt, gain = AvgPool2d(), DT, 1.0
    return Graph.sequential(
        [
            ("x", Input(shape=(2, 8, 8))),
            (
                "conv",
                Conv2d(
                    weight=rng.normal(0, 0.6, (4, 2, 3, 3)).astype(np.float32),
                    bias=np.zeros(4, np.float32),
                    padding=(1, 1),
                ),
            ),  # fmt: skip
            ("n1", cell()),
            ("pool", pool),
            ("flat", Flatten()),
            (
                "fc",
                Linear(
                    weight=rng.normal(0, gain, (5, 64)).astype(np.float32),
                    bias=np.zeros(5, np.float32),
                ),
            ),  # fmt: skip
            ("n2", cell()),
        ],
        dt=dt,
    )


@pytest.mark.parametrize("peer", ["norse", "snntorch"])
def test_peers_run_our_conv_export(tmp_path, peer):
    """Conv2d + pooling + Flatten semantics (NCHW, batch-free NIR shapes) agree with peers."""
    g = _conv_net("if" if peer == "norse" else "lif")
    x = (np.random.default_rng(1).random((100, 2, 8, 8)) < 0.3).astype(np.float32)
    ref = np.asarray(Runtime(g).run(x)).reshape(100, -1)
    assert ref.sum() > 10
    ng = nir.read(str(export_nir(g, tmp_path / "c.nir")))
    if peer == "norse":
        import norse.torch as nt

        mod, state = nt.from_nir(ng, dt=g.dt), None
    else:
        from snntorch.import_nir import import_from_nir

        mod = import_from_nir(ng)
    got = []
    with torch.no_grad():
        for t in range(100):
            if peer == "norse":
                out, state = mod(torch.tensor(x[t : t + 1]), state)
            else:
                out = mod(torch.tensor(x[t : t + 1]))
                out = out[0] if isinstance(out, tuple) else out
            got.append(out.numpy().reshape(-1))
    assert _agree(np.array(got), ref) == 1.0


def test_we_run_a_graph_exported_by_norse(tmp_path):
    """Norse 1.1's to_nir writes tau = dt / tau_mem_inv (= dt * tau): read with
    convention='norse'; plain reading refuses the sub-dt time constant with a hint."""
    import norse.torch as nt
    from norse.torch.module.lif_box import LIFBoxCell, LIFBoxParameters

    from neuroplast.errors import GraphError

    dt = 1e-3
    torch.manual_seed(0)
    p1 = LIFBoxParameters(tau_mem_inv=torch.tensor(200.0), v_th=torch.tensor(0.3))
    p2 = LIFBoxParameters(tau_mem_inv=torch.tensor(100.0), v_th=torch.tensor(0.2))
    model = nt.SequentialState(
        torch.nn.Linear(10, 16),
        LIFBoxCell(p1, dt=dt),
        torch.nn.Linear(16, 4),
        LIFBoxCell(p2, dt=dt),
    )
    with torch.no_grad():
        model[0].weight.mul_(4.0)
        model[2].weight.mul_(4.0)
    # Norse leaves 0-d torch tensors in the graph; gzip cannot filter scalar datasets
    nir.write(
        str(tmp_path / "norse.nir"), nt.to_nir(model, torch.zeros(1, 10), dt=dt), compression=None
    )
    x = _inputs(6)
    state, ref = None, []
    with torch.no_grad():
        for t in range(T):
            out, state = model(torch.tensor(x[t : t + 1]), state)
            ref.append(out.numpy().ravel())
    ref = np.array(ref)
    assert ref.sum() > 20
    with pytest.raises(GraphError, match="convention='norse'"):
        read(tmp_path / "norse.nir", dt=dt)
    g = read(tmp_path / "norse.nir", dt=dt, convention="norse")
    assert float(g.nodes["1"].tau_mem[0]) == pytest.approx(5e-3)
    got = np.asarray(Runtime(g).run(x)).reshape(ref.shape)
    assert _agree(got, ref) == 1.0


def _snntorch_spikes(path, x: np.ndarray) -> np.ndarray:
    from snntorch.import_nir import import_from_nir

    net, out = import_from_nir(nir.read(str(path))), []
    with torch.no_grad():
        for t in range(len(x)):
            o = net(torch.tensor(x[t]))
            out.append((o[0] if isinstance(o, tuple) else o).numpy())
    return np.array(out)


def _norse_spikes(path, x: np.ndarray, dt: float) -> np.ndarray:
    import norse.torch as nt

    mod, state, out = nt.from_nir(nir.read(str(path)), dt=dt), None, []
    with torch.no_grad():
        for t in range(len(x)):
            o, state = mod(torch.tensor(x[t]), state)
            out.append(o.numpy())
    return np.array(out)


def test_time_step_the_peers_misread_warns_and_time_step_fixes_it(tmp_path):
    """The issue's case: a dt = 1 ms SNN read by snnTorch (which steps at 0.1 ms) scores
    far off and nothing warned. Now export warns, and ``time_step=1e-4`` (time constants
    rescaled, same per-step dynamics) runs identically in snnTorch; Norse needs the gain
    folded and the file's time step."""
    g = _net("lif", seed=4, dt=1e-3)
    x = _inputs(7)[:, None]
    ref = np.asarray(Runtime(g).run(x))
    assert ref.sum() > 20
    with pytest.warns(NIRPeerWarning) as rec:
        path = export_nir(g, tmp_path / "ms.nir")
    msgs = [str(w.message) for w in rec]
    assert any(
        "snnTorch's import_from_nir steps at 0.0001 s but this file's time step is 0.001 s" in m
        for m in msgs
    )
    assert any("Norse's from_nir ignores r" in m for m in msgs)
    assert _agree(_snntorch_spikes(path, x), ref) < 0.9  # what went unnoticed before
    path = export_nir(g, tmp_path / "ts.nir", time_step=1e-4)
    g2 = read(path)
    assert g2.dt == pytest.approx(1e-3)
    np.testing.assert_allclose(
        np.ravel(g2.nodes["n1"].tau_mem), np.ravel(g.nodes["n1"].tau_mem), rtol=1e-6
    )
    assert _agree(_snntorch_spikes(path, x), ref) == 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error", NIRPeerWarning)  # no peer misreads this one
        both = export_nir(g, tmp_path / "both.nir", time_step=1e-4, r_mode="fold")
    assert _agree(_snntorch_spikes(both, x), ref) == 1.0
    assert _agree(_norse_spikes(both, x, 1e-4), ref) == 1.0
    folded = export_nir(g, tmp_path / "fold.nir", r_mode="fold")  # physical time: Norse at 1 ms
    assert _agree(_norse_spikes(folded, x, 1e-3), ref) == 1.0


def test_qat_snn_exported_for_nir_runs_identically_in_snntorch_and_norse(tmp_path):
    """A per-step (beta) QAT SNN is lowered at the step snnTorch assumes (1e-4 s) when
    exported to NIR, so the default file runs identically in snnTorch; with
    ``r_mode="fold"`` also in Norse at that step. The CLI prints what a peer would misread."""
    from typer.testing import CliRunner

    from neuroplast.quantize import calibrate, export
    from neuroplast.quantize.cli import register
    from neuroplast.quantize.recipes import build, save_model

    torch.manual_seed(0)
    model, recipe = build("snn")
    with torch.no_grad():
        for m in model.modules():
            if getattr(m, "weight", None) is not None:
                m.weight.mul_(3.0)
    calibrate(model, [(torch.rand(30, 16, 64) < 0.3).float()])
    model.eval()
    save_model(tmp_path / "snn.pt", model, "snn", 8, 8)
    import typer

    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)
    r = CliRunner().invoke(
        app, ["export", str(tmp_path / "snn.pt"), "--to", "nir", "-o", str(tmp_path / "cli.nir")]
    )
    assert r.exit_code == 0, r.output
    text = " ".join(r.output.split())
    assert "snnTorch's import_from_nir steps" not in text
    assert read(tmp_path / "cli.nir").dt == pytest.approx(1e-4)
    x = (np.random.default_rng(1).random((100, 1, 64)) < 0.3).astype(np.float32)
    ex = recipe.example_input()
    with pytest.warns(NIRPeerWarning, match="Norse's from_nir ignores r"):
        spec = export(model, tmp_path / "spec.nir", to="nir", example_input=ex)
    ref = np.asarray(Runtime(read(spec)).run(x))
    assert ref.sum() > 20
    assert _agree(_snntorch_spikes(spec, x), ref) == 1.0
    fold = export(model, tmp_path / "fold.nir", to="nir", example_input=ex, r_mode="fold")
    assert _agree(_norse_spikes(fold, x, 1e-4), ref) == 1.0
