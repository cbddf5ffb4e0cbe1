"""Bring your own model: any ``nn.Module`` lowers through ``torch.fx``.

* seeded random module trees (residual and branch blocks, nested user modules, spiking
  nets with delays): the lowered float graph reproduces the torch module within 1e-5;
* a user residual CNN (int8) and a user SNN with delays, prepared for QAT, lowered and run
  in every target the capability matrix claims for them, each in its own engine
  (LiteRT, onnxruntime, the C firmware on the virtual board, the NIR interpreter,
  snnTorch / Norse where they import), refused in one line by the others; the QAT
  model in torch is the independent reference of the lowering;
* the same from the command line on the saved user model file (no recipe);
* unsupported layers and bad saves fail in one line naming the module and the fix.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("brevitas")

from byom_models import DelaySNN, ResidualCNN, SynapticDelaySNN, random_tree, scaled  # noqa: E402
from torch import nn  # noqa: E402

from neuroplast.errors import ExportError, NeuroplastError  # noqa: E402
from neuroplast.quant import dequantize, quantize  # noqa: E402
from neuroplast.quantize import calibrate, lower, prepare, save_model  # noqa: E402
from neuroplast.quantize.conformance.generate import GraphCase  # noqa: E402
from neuroplast.quantize.recipes import load_model, open_checkpoint  # noqa: E402
from neuroplast.runtime import Runtime  # noqa: E402


def _float_run(g, x: torch.Tensor) -> np.ndarray:
    time = x.dim() == len(g.shapes()[g.inputs[0]]) + 2
    out = Runtime(g, mode="float").run(x.numpy() if time else x.numpy()[None])
    return np.asarray(out if time else out[0])


@pytest.mark.parametrize("seed", range(24))
def test_random_module_trees_lower_to_the_same_function(seed):
    model, x = random_tree(seed)
    g = lower(model, x)
    with torch.no_grad():
        ref = model(x).numpy()
    got = _float_run(g, x)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-5)
    if seed % 3 == 2:
        assert ref.any(), "the spiking net must fire for the comparison to mean something"


def _prepared_tree(seed: int) -> tuple:
    model, x = random_tree(seed)
    time = seed % 3 == 2
    gen = torch.Generator().manual_seed(seed)
    cal = [(torch.rand(x.shape, generator=gen) < 0.4).float() if time
           else torch.randn(x.shape, generator=gen) for _ in range(2)]  # fmt: skip
    return model, calibrate(prepare(model), cal).eval(), x


@pytest.mark.parametrize("seed", range(12))
def test_random_module_trees_prepared_for_qat_lower_to_the_integer_model(seed):
    """prepare() on any tree, then the integer runtime against the QAT model in torch:
    spikes identical, activations within 1 LSB (an int8 ADD rounds once more)."""
    _, q, x = _prepared_tree(seed)
    g = lower(q, x)
    rt = Runtime(g, mode="int")
    time = seed % 3 == 2
    codes = quantize(x.numpy() if time else x.numpy()[None], g.nodes["input"].quant)
    out = rt.run(codes) if time else rt.run(codes)[0]
    with torch.no_grad():
        ref = q(x).numpy()
    if time:
        assert np.array_equal(out.astype(np.float32), ref)
    else:
        oq = rt.kernels[g.outputs[0]].out_quant
        assert np.abs(dequantize(out, oq) - ref).max() / oq.scale <= 1.0 + 1e-3


@pytest.mark.parametrize("seed", range(6))
def test_random_module_trees_run_on_every_target_that_claims_them(seed):
    model, q, x = _prepared_tree(seed)
    time = seed % 3 == 2
    xs = x.numpy() if time else x.numpy()[None]
    claimed, _ = _all_engines(GraphCase(9100 + seed, "tree", lower(model, x), lower(q, x), xs))
    assert {"runtime", "runtime-int"} <= claimed


# ------------------------------------------------------------------------ user models
@pytest.fixture(scope="module")
def cnn():
    torch.manual_seed(0)
    net = ResidualCNN().eval()
    x = torch.rand(24, 1, 8, 8)
    q = calibrate(prepare(net), [torch.rand(64, 1, 8, 8)])
    q.eval()
    return net, q, x


def _snn(cls: type, gain: float) -> tuple:
    torch.manual_seed(1)
    net = scaled(cls(), gain).eval()
    x = (torch.rand(12, 6, 12) < 0.4).float()
    q = calibrate(prepare(net), [(torch.rand(12, 32, 12) < 0.4).float()])
    q.eval()
    return net, q, x


@pytest.fixture(scope="module")
def snn():
    return _snn(DelaySNN, 1.5)


@pytest.fixture(scope="module")
def syn_snn():
    return _snn(SynapticDelaySNN, 2.0)


def test_user_cnn_quantizes_as_the_contract_says(cnn):
    net, q, x = cnn
    g = lower(q, x)
    kinds = [n.kind for n in g.nodes.values()]
    assert kinds.count("Add") == 1 and kinds.count("Conv2d") == 3
    # the QAT model in torch is the reference of the lowering: integer runtime within
    # 1 output LSB (the int8 ADD rounds once more than the float sum), mostly exact
    rt = Runtime(g, mode="int")
    oq = rt.kernels[g.outputs[0]].out_quant
    got = dequantize(rt.run(quantize(x.numpy(), g.nodes["input"].quant)[None])[0], oq)
    with torch.no_grad():
        ref = q(x).numpy()
    lsb = np.abs(got - ref) / oq.scale
    assert lsb.max() <= 1.0 + 1e-3 and np.mean(lsb < 0.5) > 0.95
    np.testing.assert_allclose(_float_run(lower(net, x), x), net(x).detach().numpy(), atol=1e-5)


@pytest.mark.parametrize("which, kinds", [("snn", {"Delay", "Add", "LIF"}),
                                          ("syn_snn", {"DelayLinear", "LIF"})])  # fmt: skip
def test_user_snn_spikes_exactly_as_the_qat_model(which, kinds, request):
    net, q, x = request.getfixturevalue(which)
    g = lower(q, x)
    assert kinds <= {n.kind for n in g.nodes.values()}
    with torch.no_grad():
        ref = q(x).numpy()
    got = Runtime(g, mode="int").run(x.numpy().astype(np.int8))
    assert ref.sum() > 0 and np.array_equal(got.astype(np.float32), ref)


def _case(seed: int, family: str, net, q, x: torch.Tensor) -> GraphCase:
    time = family == "snn"
    xs = x.numpy() if time else x.numpy()[None]  # (T, B, *shape)
    return GraphCase(seed, family, lower(net, x), lower(q, x), xs.astype(np.float32))


def _all_engines(case: GraphCase) -> tuple[set[str], set[str]]:
    """Every target here: claimed -> run in its engine and agree; refused -> one line."""
    from neuroplast.quantize.conformance.engines import (
        ENGINES,
        PEER_ENGINES,
        Session,
        check_refusal,
    )
    from neuroplast.quantize.conformance.suite import targets_here
    from neuroplast.targets import TARGETS

    claimed, refused = set(), set()
    with Session() as s:
        for t in targets_here():
            which, runner, _ = ENGINES[t]
            g = case.int_graph if which == "int" else case.float_graph
            why = TARGETS[t].refusals(g)
            o = check_refusal(t, g, why[0]) if why else runner(case, s)
            assert o.status == ("refused" if why else "agree"), o
            (refused if why else claimed).add(t)
        for p, (base, runner) in PEER_ENGINES.items():
            if base in claimed:
                pytest.importorskip(p.split(":")[1])
                o = runner(case, s)
                assert o.status in ("agree", "skipped"), o
                claimed |= {p} if o.status == "agree" else set()
    return claimed, refused


def test_user_cnn_runs_on_every_target_that_claims_it(cnn):
    from neuroplast.quantize.conformance.suite import targets_here

    claimed, refused = _all_engines(_case(9001, "cnn", *cnn))
    here = set(targets_here())
    assert {"runtime", "runtime-int", "tflite", "onnx", "firmware"} & here <= claimed
    assert {"nir"} & here <= refused  # NIR has no ReLU


@pytest.mark.parametrize("which", ["snn", "syn_snn"])
def test_user_snn_with_delays_runs_on_every_target_that_claims_it(which, request):
    from neuroplast.quantize.conformance.suite import targets_here

    seed = 9002 if which == "snn" else 9003
    claimed, refused = _all_engines(_case(seed, "snn", *request.getfixturevalue(which)))
    here = set(targets_here())
    assert {"runtime", "runtime-int", "firmware", "nir"} & here <= claimed
    assert {"tflite", "onnx"} & here <= refused  # no spiking neurons in either


# ------------------------------------------------------------------ the command line
def _cli(args, capsys) -> tuple[int, str, str]:
    from neuroplast.cli import main

    capsys.readouterr()
    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_cli_exports_compares_and_describes_a_user_model(cnn, snn, tmp_path, capsys):
    pytest.importorskip("typer")
    _, q, x = cnn
    save_model(tmp_path / "cnn.pt", q, example_input=x)
    np.save(tmp_path / "x.npy", x.numpy())
    for fmt in ("tflite", "onnx", "zip"):
        to = "bundle" if fmt == "zip" else fmt
        rc, out, err = _cli(["export", tmp_path / "cnn.pt", "--to", to, "-o",
                             tmp_path / f"cnn.{fmt}"], capsys)  # fmt: skip
        assert rc == 0 and "user model" in out, err
        rc, out, err = _cli(["compare", tmp_path / "cnn.pt", tmp_path / f"cnn.{fmt}", "-i",
                             tmp_path / "x.npy", "--min", "1", "--json"], capsys)  # fmt: skip
        r = json.loads(out)
        assert rc == 0 and r["max_lsb"] == 0 and r["argmax_agree"] == 1.0 and r["n"] == 24, err
    rc, out, err = _cli(["info", tmp_path / "cnn.pt", "--json"], capsys)
    assert rc == 0, err
    assert {"Add", "Conv2d", "MaxPool2d", "Linear"} <= {
        row["kind"] for row in json.loads(out)["rows"]
    }
    # a kind the target lacks: refused before any work, one line naming node and target
    rc, out, err = _cli(
        ["export", tmp_path / "cnn.pt", "--to", "nir", "-o", tmp_path / "c.nir"], capsys
    )
    assert rc == 2 and "'relu1' (ReLU) cannot run on nir" in err and err.count("\n") == 1
    assert not (tmp_path / "c.nir").exists()

    _, qs, xs = snn
    save_model(tmp_path / "snn.pt", qs, example_input=xs)
    for fmt in ("nir", "zip"):
        to = "bundle" if fmt == "zip" else fmt
        rc, out, err = _cli(["export", tmp_path / "snn.pt", "--to", to, "-o",
                             tmp_path / f"snn.{fmt}"], capsys)  # fmt: skip
        assert rc == 0 and "time step" not in err, err  # NIR at the step snnTorch assumes
    rc, out, err = _cli(
        ["export", tmp_path / "snn.pt", "--to", "tflite", "-o", tmp_path / "s.tflite"], capsys
    )
    assert rc == 2 and "cannot run on tflite" in err and err.count("\n") == 1
    # the files hold the stored graph: the bundle runs it step by step, NIR from the file
    g = open_checkpoint(tmp_path / "snn.pt").graph
    codes = xs.numpy().astype(np.int8)
    ref = Runtime(g, mode="int").run(codes)
    from neuroplast.bundle import load_runtime
    from neuroplast.quantize.nir import read

    assert np.array_equal(load_runtime(tmp_path / "snn.zip").run(codes), ref)
    nir_g = read(tmp_path / "snn.nir")
    np.testing.assert_allclose(Runtime(nir_g, mode="float").run(xs.numpy()),
                               Runtime(g, mode="float").run(xs.numpy()), atol=1e-5)  # fmt: skip
    rc, out, err = _cli(["info", tmp_path / "snn.pt", "--json"], capsys)
    assert rc == 0 and "Delay" in {row["kind"] for row in json.loads(out)["rows"]}


# --------------------------------------------------------------------------- errors
class _WithBN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.block = nn.Sequential(nn.Conv2d(2, 2, 3), nn.BatchNorm2d(2))

    def forward(self, x):
        return self.block(self.conv(x))


class _WithSigmoid(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc, self.act = nn.Linear(4, 4), nn.Sigmoid()

    def forward(self, x):
        return self.act(self.fc(x))


class _WithCat(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(4, 2), nn.Linear(4, 2)

    def forward(self, x):
        return torch.cat([self.a(x), self.b(x)], 1)


class _Branchy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(x) if x.sum() > 0 else x


@pytest.mark.parametrize(
    "model, want",
    [
        (_WithBN(), r"module 'block\.1' \(BatchNorm2d\) .*fold BatchNorm into the preceding conv"),
        (_WithSigmoid(), r"module 'act' \(Sigmoid\) .*replace it with ReLU"),
        (_WithCat(), r"function cat at 'cat' .*merge branches with \+"),
        (_Branchy(), r"torch\.fx cannot trace _Branchy: .*control flow"),
    ],
)
def test_unsupported_layers_are_named_with_the_fix(model, want):
    x = torch.zeros(1, 1, 6, 6) if isinstance(model, _WithBN) else torch.zeros(1, 4)
    for fn in (lambda: prepare(model), lambda: lower(model, x)):
        with pytest.raises(NeuroplastError, match=want) as e:
            fn()
        assert "\n" not in str(e.value)


def test_bad_saves_fail_in_one_line(cnn, tmp_path):
    _, q, x = cnn
    cases = [
        (dict(recipe="mine"), r"unknown recipe 'mine' .*leave recipe out"),
        (dict(recipe="cnn"), r"not the QAT model of recipe 'cnn' \((Missing|Unexpected|size)"),
        ({}, "needs example_input"),
    ]
    for kw, want in cases:
        with pytest.raises(NeuroplastError, match=want) as e:
            save_model(tmp_path / "m.pt", q, **kw)
        assert "\n" not in str(e.value)
    assert not (tmp_path / "m.pt").exists()
    save_model(tmp_path / "m.pt", q, example_input=x)
    with pytest.raises(ExportError, match="holds a user model: pass into="):
        load_model(tmp_path / "m.pt")
    # a file written wrongly by hand (recipe name, foreign state): one line, no key dump
    ck = torch.load(tmp_path / "m.pt", weights_only=True)
    torch.save({**ck, "recipe": "cnn"}, tmp_path / "forged.pt")
    with pytest.raises(
        ExportError, match=r"does not fit recipe 'cnn' \((Missing|Unexpected|size)"
    ) as e:
        load_model(tmp_path / "forged.pt")
    assert "\n" not in str(e.value)
    # the state goes back into the user's own prepared model
    mine = prepare(ResidualCNN())
    back, recipe = load_model(tmp_path / "m.pt", into=mine)
    assert recipe is None
    with torch.no_grad():
        np.testing.assert_array_equal(back(x).numpy(), q(x).numpy())
