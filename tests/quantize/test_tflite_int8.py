"""int8 TFLite written from the IR, run by the LiteRT interpreter, checked against the
neuroplast integer runtime (<= 1 LSB) and against the Brevitas model (<= 1e-2)."""

from __future__ import annotations

import numpy as np
import pytest
from tlc_models import SHAPES, calibrated, random_inputs, to_nhwc

litert = pytest.importorskip("ai_edge_litert.interpreter")
S = pytest.importorskip("ai_edge_litert.schema_py_generated")

from neuroplast.errors import ExportError, UnsupportedError  # noqa: E402
from neuroplast.export.tflite import export_tflite, tflite_bytes  # noqa: E402
from neuroplast.graph import (  # noqa: E402
    LIF,
    Add,
    AvgPool2d,
    Conv2d,
    Flatten,
    Graph,
    Input,
    Linear,
    MaxPool2d,
    QuantSpec,
    ReLU,
)
from neuroplast.quant import dequantize, quantize  # noqa: E402
from neuroplast.runtime import Runtime  # noqa: E402

RESOLVERS = [litert.OpResolverType.AUTO, litert.OpResolverType.BUILTIN_REF]


def run_litert(model: bytes, x: np.ndarray, resolver=litert.OpResolverType.AUTO) -> np.ndarray:
    it = litert.Interpreter(model_content=model, experimental_op_resolver_type=resolver)
    it.allocate_tensors()
    i, o = it.get_input_details()[0], it.get_output_details()[0]
    out = []
    for k in range(len(x)):
        it.set_tensor(i["index"], x[k : k + 1])
        it.invoke()
        out.append(it.get_tensor(o["index"]))
    return np.concatenate(out)


def as_int8(y: np.ndarray, spec: QuantSpec) -> np.ndarray:
    """neuroplast code -> TFLite int8 code (unsigned 8-bit specs shift by 128)."""
    return y.astype(np.int64) - (0 if spec.signed else 128)


def builtin_ops(model: bytes) -> set[str]:
    m = S.Model.GetRootAs(model, 0)
    names = {v: k for k, v in vars(S.BuiltinOperator).items() if not k.startswith("_")}
    return {names[m.OperatorCodes(i).BuiltinCode()] for i in range(m.OperatorCodesLength())}


def _w(rng, shape, bits=8):
    lim = 2 ** (bits - 1) - 1
    q = rng.integers(-lim, lim + 1, size=shape)
    s = rng.uniform(0.003, 0.011, size=shape[0]).astype(np.float32)
    spec = QuantSpec(bits=bits, scale=tuple(float(v) for v in s), axis=0, narrow=True)
    return (q * s.reshape((-1,) + (1,) * (len(shape) - 1))).astype(np.float32), spec


def all_ops_graph(seed: int = 3) -> Graph:
    """Every exported op: conv (SAME, fused ReLU), depthwise stride 2, standalone ReLU on
    an asymmetric tensor, ADD, max/avg pool, conv needing PAD, flatten, linear."""
    rng = np.random.default_rng(seed)
    w1, q1 = _w(rng, (6, 3, 3, 3))
    w2, q2 = _w(rng, (6, 1, 3, 3))
    w3, q3 = _w(rng, (4, 6, 3, 3), bits=4)
    w4, q4 = _w(rng, (7, 64))
    b = lambda n: rng.normal(0, 0.05, n).astype(np.float32)  # noqa: E731
    nodes = {
        "input": Input(shape=(3, 9, 9), quant=QuantSpec(8, 0.0213, 0)),
        "conv": Conv2d(
            weight=w1,
            bias=b(6),
            padding=(1, 1),
            weight_q=q1,
            out_q=QuantSpec(8, 0.0173, 0, signed=False),
        ),
        "relu": ReLU(),
        "dw": Conv2d(
            weight=w2,
            bias=b(6),
            stride=(2, 2),
            padding=(1, 1),
            groups=6,
            weight_q=q2,
            out_q=QuantSpec(8, 0.0131, 3),
        ),
        "relu_s": ReLU(),
        "add": Add(out_q=QuantSpec(8, 0.0237, -5)),
        "maxpool": MaxPool2d(kernel=(2, 2), stride=(1, 1)),
        "avgpool": AvgPool2d(kernel=(2, 2), stride=(2, 2)),
        "conv_pad": Conv2d(
            weight=w3, bias=b(4), padding=(2, 2), weight_q=q3, out_q=QuantSpec(8, 0.0191, -2)
        ),
        "flatten": Flatten(),
        "fc": Linear(weight=w4, bias=b(7), weight_q=q4, out_q=QuantSpec(8, 0.0433, 1)),
    }
    edges = [
        ("input", "conv"),
        ("conv", "relu"),
        ("relu", "dw"),
        ("dw", "relu_s"),
        ("dw", "add"),
        ("relu_s", "add"),
        ("add", "maxpool"),
        ("maxpool", "avgpool"),
        ("avgpool", "conv_pad"),
        ("conv_pad", "flatten"),
        ("flatten", "fc"),
    ]
    return Graph(nodes, edges)


@pytest.mark.parametrize("resolver", RESOLVERS)
def test_every_op_matches_int_runtime(resolver):
    g = all_ops_graph()
    model = tflite_bytes(g, io="int8")
    assert {
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
        "PAD",
        "RELU",
        "ADD",
        "MAX_POOL_2D",
        "AVERAGE_POOL_2D",
        "RESHAPE",
        "FULLY_CONNECTED",
    } <= builtin_ops(model)
    x = quantize(random_inputs((3, 9, 9), n=100, seed=5), g.nodes["input"].quant)
    ref = Runtime(g, mode="int").step(x)
    got = run_litert(model, to_nhwc(x), resolver)
    d = np.abs(got.astype(np.int64) - as_int8(ref, g.nodes["fc"].out_q))
    if resolver == litert.OpResolverType.AUTO:
        assert d.max() == 0  # the default kernels compute what the runtime computes
    else:  # the reference kernels round CONV twice and ADD three times
        assert d.max() <= 1


def test_float_io_and_softmax():
    g = all_ops_graph(seed=11)
    model = tflite_bytes(g, io="float", softmax=True)
    assert {"QUANTIZE", "DEQUANTIZE", "SOFTMAX"} <= builtin_ops(model)
    xf = random_inputs((3, 9, 9), n=50, seed=2)
    logits = dequantize(Runtime(g, mode="int").step(xf), g.nodes["fc"].out_q)
    e = np.exp(logits - logits.max(1, keepdims=True))
    probs = e / e.sum(1, keepdims=True)
    got = run_litert(model, to_nhwc(xf))
    assert got.dtype == np.float32
    assert np.abs(got - probs).max() <= 3 / 256  # int8 softmax output has 1/256 steps


@pytest.mark.parametrize("name,bits", [("cnn", 8), ("mlp", 8), ("audio1d", 8), ("cnn", 4)])
def test_qat_models_in_litert(tmp_path, name, bits):
    import torch

    from neuroplast.quantize import lower

    model, recipe = calibrated(name, bits)
    g = lower(model, recipe.example_input())
    x = random_inputs(SHAPES[name], n=100, seed=9)
    # int8 I/O: LiteRT vs the neuroplast integer runtime, <= 1 LSB
    p8 = export_tflite(g, tmp_path / "m8.tflite", io="int8")
    xq = quantize(x, g.nodes["input"].quant)
    ref = Runtime(g, mode="int").step(xq)
    out_q = g.nodes[g.outputs[0]].out_q
    for resolver in RESOLVERS:
        got = run_litert(p8.read_bytes(), to_nhwc(xq), resolver)
        d = np.abs(got.astype(np.int64) - as_int8(ref, out_q)).max()
        assert d == 0 if resolver == litert.OpResolverType.AUTO else d <= 1
    # float I/O: dequantized LiteRT output vs the Brevitas model, <= 1e-2
    pf = export_tflite(g, tmp_path / "mf.tflite", io="float")
    with torch.no_grad():
        qat = model(torch.from_numpy(x)).numpy()
    got = run_litert(pf.read_bytes(), to_nhwc(x))
    assert np.abs(got.reshape(qat.shape) - qat).max() <= 1e-2


def test_file_layout():
    g = all_ops_graph()
    buf = tflite_bytes(g)
    assert buf[4:8] == b"TFL3" and S.Model.ModelBufferHasIdentifier(buf, 0)
    m = S.Model.GetRootAs(buf, 0)
    assert m.Buffers(0).DataLength() == 0  # the empty sentinel
    for i in range(1, m.BuffersLength()):
        b = m.Buffers(i)
        if b.DataLength():
            start = b._tab.Vector(b._tab.Offset(4))
            assert start % 16 == 0, f"buffer {i} data at {start} is not 16-byte aligned"
    for i in range(m.OperatorCodesLength()):
        c = m.OperatorCodes(i)
        assert c.DeprecatedBuiltinCode() == min(c.BuiltinCode(), 127)


def test_refusals_name_the_node_and_the_real_cause():
    spec16 = QuantSpec(16, 0.001, 0)
    rng = np.random.default_rng(0)
    w, q = _w(rng, (4, 8))
    inp = ("input", Input(shape=(8,), quant=QuantSpec(8, 1.0, 0)))
    snn = Graph.sequential(
        [
            inp,
            ("fc", Linear(weight=w, weight_q=q, out_q=spec16)),
            ("lif1", LIF(tau_mem=np.float32(0.01), v_th=np.float32(1.0), v_q=spec16)),
        ]
    )
    # the Linear's 16-bit current is not the cause (act_bits was 8): the LIF is
    with pytest.raises(UnsupportedError) as ei:
        tflite_bytes(snn)
    assert str(ei.value) == (
        "node 'lif1' (LIF) cannot run on tflite: TFLite has no stateful spiking neuron op; "
        "export NIR for neuromorphic runtimes, or run it in the neuroplast runtime"
    )
    wide = Graph.sequential([inp, ("fc", Linear(weight=w, weight_q=q, out_q=spec16))])
    with pytest.raises(UnsupportedError, match="'fc' \\(Linear\\).*16-bit \\(-32768..32767\\)"):
        tflite_bytes(wide)
    four = Graph.sequential([inp, ("fc", Linear(weight=w, weight_q=q, out_q=QuantSpec(4, 0.1)))])
    with pytest.raises(UnsupportedError, match="4-bit.*act_bits=8"):
        tflite_bytes(four)
    with pytest.raises(ExportError, match="io"):
        tflite_bytes(wide, io="int16")


def test_int8_tflite_is_under_0_3x_fp32_onnx(tmp_path):
    import torch

    from neuroplast.quantize import calibrate, lower, prepare
    from neuroplast.quantize.onnx_export import export_float_onnx

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(64, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, 10),
    )
    f32 = export_float_onnx(net, torch.zeros(1, 64), tmp_path / "fp32.onnx")
    q = prepare(net)
    calibrate(q, [torch.rand(64, 64)])
    t8 = export_tflite(lower(q, torch.zeros(1, 64)), tmp_path / "int8.tflite")
    ratio = t8.stat().st_size / f32.stat().st_size
    assert ratio <= 0.3, ratio


def test_per_tensor_weights(tmp_path):
    import torch

    from neuroplast.quantize import calibrate, lower, prepare

    torch.manual_seed(5)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(4 * 4 * 4, 3)
    )
    q = prepare(net, per_channel=False)
    calibrate(q, [torch.rand(64, 2, 6, 6)])
    g = lower(q, torch.zeros(1, 2, 6, 6))
    assert not g.nodes["conv2d1"].weight_q.per_channel
    xq = quantize(random_inputs((2, 6, 6), n=100), g.nodes["input"].quant)
    ref = Runtime(g, mode="int").step(xq)
    got = run_litert(tflite_bytes(g, io="int8"), to_nhwc(xq))
    assert np.abs(got.astype(np.int64) - ref.astype(np.int64)).max() <= 1
