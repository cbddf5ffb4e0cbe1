"""The graph-only writers (neuroplast.export): what the tflite / onnx tables claim runs
bit-exact in the real engines on random graphs, and what they refuse is refused up front
in one line, with nothing written."""

from __future__ import annotations

import numpy as np
import pytest

from neuroplast.errors import GraphError, UnsupportedError
from neuroplast.graph import (
    LIF,
    Add,
    AvgPool2d,
    Conv1d,
    Conv2d,
    Flatten,
    Graph,
    Input,
    Linear,
    MaxPool2d,
    QuantSpec,
    ReLU,
    Scale,
    SumPool2d,
)
from neuroplast.quant import dequantize
from neuroplast.runtime import Runtime

litert = pytest.importorskip("ai_edge_litert.interpreter")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from neuroplast.export.onnx import ONNX, export_onnx_graph, graph_to_onnx  # noqa: E402
from neuroplast.export.tflite import TFLITE, export_tflite, tflite_bytes  # noqa: E402

R = litert.OpResolverType


# ------------------------------------------------------------------ random graphs
def _act(rng, unsigned=False) -> QuantSpec:
    s = float(rng.uniform(0.01, 0.2))  # irregular scales: few exact rounding ties
    if unsigned:
        return QuantSpec(8, s, int(rng.integers(0, 40)), signed=False)
    return QuantSpec(8, s, int(rng.integers(-20, 20)))


def _weights(rng, shape, bits):
    lim = 2 ** (bits - 1) - 1
    q = rng.integers(-lim, lim + 1, size=shape)
    n = shape[0] if rng.random() < 0.7 else 1
    s = rng.uniform(0.002, 0.03, size=n).astype(np.float32)
    spec = (
        QuantSpec(bits, tuple(map(float, s)), axis=0, narrow=True)
        if n > 1
        else QuantSpec(bits, float(s[0]), narrow=True)
    )
    return (q * s.reshape((-1,) + (1,) * (len(shape) - 1))).astype(np.float32), spec


def random_graph(seed: int, conv: bool = True, add: bool = True, scale: bool = False) -> Graph:
    """A chain (with residual Adds) over Input / Conv1d / Conv2d (groups, depthwise with
    multiplier, strides, dilation, padding) / pools (padded) / ReLU / Flatten / Linear /
    Scale, with signed and unsigned 8-bit activations and 8- or 4-bit weights."""
    rng = np.random.default_rng(seed)
    rank = int(rng.choice([1, 2, 3], p=[0.2, 0.3, 0.5]))
    shape = {
        1: (int(rng.integers(3, 40)),),
        2: (int(rng.integers(1, 6)), int(rng.integers(6, 20))),
        3: (int(rng.integers(1, 5)), int(rng.integers(6, 14)), int(rng.integers(6, 14))),
    }[rank]
    nodes = {"input": Input(shape=shape, quant=_act(rng, rng.random() < 0.3))}
    edges: list[tuple[str, str]] = []
    cur = "input"

    def put(node, *srcs):
        name = f"{node.kind.lower()}{len(nodes)}"
        nodes[name] = node
        edges.extend((s, name) for s in srcs)
        return name

    def bias(n):
        return rng.normal(0, 0.1, n).astype(np.float32) if rng.random() < 0.8 else None

    for _ in range(int(rng.integers(1, 6))):
        shp = Graph(dict(nodes), list(edges), outputs=(cur,)).shapes()[cur]
        before = (dict(nodes), list(edges), cur)
        c, r, bits = shp[0], rng.random(), int(rng.choice([8, 4]))
        k, st = int(rng.integers(1, 4)), int(rng.integers(1, 3))
        d = int(rng.integers(1, 3)) if k > 1 else 1
        p = int(rng.integers(0, k // 2 + 1)) * d if rng.random() < 0.7 else 0
        co, g = int(rng.integers(1, 7)), 1
        if c > 1 and rng.random() < 0.35:
            g, co = c, c * int(rng.integers(1, 3))
        if conv and len(shp) == 3 and r < 0.3:
            w, q = _weights(rng, (co, c // g, k, k), bits)
            cur = put(Conv2d(weight=w, bias=bias(co), stride=(st, st), padding=(p, p),
                             dilation=(d, d), groups=g, weight_q=q,
                             out_q=_act(rng, rng.random() < 0.3)), cur)  # fmt: skip
        elif len(shp) == 3 and r < 0.6:
            pool = MaxPool2d if rng.random() < 0.5 else AvgPool2d
            pp = min(p // d, k // 2)
            cur = put(pool(kernel=(k, k), stride=(st, st), padding=(pp, pp)), cur)
        elif conv and len(shp) == 2 and r < 0.5:
            w, q = _weights(rng, (co, c // g, k), bits)
            cur = put(Conv1d(weight=w, bias=bias(co), stride=(st,), padding=(p,), dilation=(d,),
                             groups=g, weight_q=q, out_q=_act(rng)), cur)  # fmt: skip
        elif r < 0.7:
            cur = put(ReLU(), cur)
        elif scale and r < 0.76:
            n = int(rng.choice([1, c, int(np.prod(shp))]))
            s = rng.uniform(-2, 2, n).astype(np.float32)
            cur = put(Scale(scale=s, out_q=_act(rng)), cur)
        elif add and r < 0.9:  # a residual branch that keeps the shape
            if conv and len(shp) == 3:
                w, q = _weights(rng, (c, c, 3, 3), 8)
                br = put(Conv2d(weight=w, padding=(1, 1), weight_q=q, out_q=_act(rng)), cur)
            elif len(shp) == 1:
                w, q = _weights(rng, (c, c), 8)
                br = put(Linear(weight=w, weight_q=q, out_q=_act(rng)), cur)
            else:
                br = put(ReLU(), cur)
            cur = put(Add(out_q=_act(rng)), cur, br)
        elif len(shp) > 1:
            cur = put(Flatten(), cur)
        else:
            n = int(rng.integers(2, 20))
            w, q = _weights(rng, (n, c), bits)
            cur = put(Linear(weight=w, bias=bias(n), weight_q=q,
                             out_q=_act(rng, rng.random() < 0.2)), cur)  # fmt: skip
        try:
            Graph(dict(nodes), list(edges), outputs=(cur,))
        except GraphError:  # an empty output (a window larger than the input): undo
            nodes, edges, cur = before
    if len(Graph(dict(nodes), list(edges), outputs=(cur,)).shapes()[cur]) > 1:
        cur = put(Flatten(), cur)
    n_in = Graph(dict(nodes), list(edges), outputs=(cur,)).shapes()[cur][0]
    w, q = _weights(rng, (int(rng.integers(2, 12)), n_in), 8)
    cur = put(Linear(weight=w, bias=bias(w.shape[0]), weight_q=q, out_q=_act(rng)), cur)
    return Graph(nodes, edges)


def _codes(g: Graph, seed: int, n: int = 16) -> np.ndarray:
    q = g.nodes[g.inputs[0]].quant
    rng = np.random.default_rng(seed)
    return rng.integers(q.range[0], q.range[1] + 1, size=(n,) + g.shapes()[g.inputs[0]]).astype(
        q.dtype
    )


def _litert(g: Graph, xq: np.ndarray, resolver) -> np.ndarray:
    """LiteRT's int8 output codes in the runtime's code space (channels first)."""
    iq, oq = g.nodes[g.inputs[0]].quant, Runtime(g, mode="int").kernels[g.outputs[0]].out_quant
    x = xq.astype(np.int64) - (0 if iq.signed else 128)
    if x.ndim == 4:
        x = x.transpose(0, 2, 3, 1)
    elif x.ndim == 3:
        x = x.transpose(0, 2, 1)[:, None]
    it = litert.Interpreter(
        model_content=tflite_bytes(g, io="int8"), experimental_op_resolver_type=resolver
    )
    it.allocate_tensors()
    i, o = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]
    out = []
    for xi in x.astype(np.int8):
        it.set_tensor(i, xi[None])
        it.invoke()
        out.append(it.get_tensor(o))
    y = np.concatenate(out).astype(np.int64) + (0 if oq.signed else 128)
    return y.transpose(0, 3, 1, 2) if y.ndim == 4 else y


def _onnxrt(g: Graph, xq: np.ndarray) -> np.ndarray:
    """onnxruntime's float output mapped back to the runtime's output codes."""
    iq, oq = g.nodes[g.inputs[0]].quant, Runtime(g, mode="int").kernels[g.outputs[0]].out_quant
    s = ort.InferenceSession(
        graph_to_onnx(g).SerializeToString(), providers=["CPUExecutionProvider"]
    )
    y = s.run(None, {"input": dequantize(xq, iq).astype(np.float32)})[0]
    return np.rint(y / np.float32(oq.scale)).astype(np.int64) + int(oq.zero_point)


# the parameter values the tflite table refuses by design (all else must run)
TFLITE_REFUSED = ("is not TFLite SAME padding", "a scale per element of a")


def test_random_graphs_run_bit_exact_in_litert_and_onnxruntime():
    """LiteRT's default kernels give the integer runtime's codes exactly; onnxruntime too
    except at rounding ties (it requantizes Conv/Gemm/Scale in float)."""
    ran = exact_onnx = 0
    for seed in range(64):
        g = random_graph(seed, scale=True)
        xq = _codes(g, seed)
        ref = Runtime(g, mode="int").step(xq).astype(np.int64)
        d = np.abs(_onnxrt(g, xq).reshape(ref.shape) - ref).max()
        assert d <= 1, seed
        exact_onnx += d == 0
        found = TFLITE.refusals(g)
        if found:
            assert all(any(t in r.reason for t in TFLITE_REFUSED) for r in found), found
            continue
        got = _litert(g, xq, R.AUTO)
        assert np.array_equal(got.reshape(ref.shape), ref), seed
        ran += 1
    assert ran >= 40 and exact_onnx >= 60


def test_reference_kernels_bit_exact_without_convolution_and_add():
    """LiteRT's reference kernels round CONV twice and ADD three times; FULLY_CONNECTED,
    pools, RELU and RESHAPE exactly as the runtime."""
    for seed in range(100, 124):
        g = random_graph(seed, conv=False, add=False)
        if TFLITE.refusals(g):
            continue
        xq = _codes(g, seed)
        ref = Runtime(g, mode="int").step(xq).astype(np.int64)
        assert np.array_equal(_litert(g, xq, R.BUILTIN_REF).reshape(ref.shape), ref), seed


def test_padded_pools_bit_exact():
    """MaxPool2d (PADV2 with the lowest code) and AvgPool2d (SAME, or count_include_pad=0
    in ONNX) over random kernels, strides and paddings, signed and unsigned."""
    same = 0
    for seed in range(32):
        rng = np.random.default_rng(seed)
        k = tuple(int(v) for v in rng.integers(1, 4, 2))
        st = tuple(int(v) for v in rng.integers(1, 4, 2))
        pad = tuple(int(rng.integers(0, kk // 2 + 1)) for kk in k)
        pool = (MaxPool2d if seed % 2 else AvgPool2d)(kernel=k, stride=st, padding=pad)
        hw = tuple(int(v) for v in rng.integers(max(k), 12, 2))
        g = _chain(("pool", pool), shape=(3, *hw), quant=_act(rng, seed % 4 < 2))
        xq = _codes(g, seed, 8)
        ref = Runtime(g, mode="int").step(xq).astype(np.int64)
        assert np.array_equal(_onnxrt(g, xq).reshape(ref.shape), ref), seed
        if TFLITE.refusals(g):
            assert seed % 2 == 0  # only AvgPool2d padding other than SAME is refused
            continue
        same += seed % 2 == 0 and any(pad)
        for resolver in (R.AUTO, R.BUILTIN_REF):
            assert np.array_equal(_litert(g, xq, resolver).reshape(ref.shape), ref), seed
    assert same >= 2


def test_add_is_litert_add_over_the_scale_ratios():
    """ADD with input/output scale ratios from 1e-4 to 200 (XNNPACK's one-rounding ADD
    within [2^-10, 2^8), TFLite's builtin ADD below): LiteRT's default kernels and
    onnxruntime give the runtime's codes; from 256 on LiteRT overflows and it is refused."""
    kinds = set()
    for seed in range(40):
        rng = np.random.default_rng(seed)
        qi = _act(rng, seed % 3 == 0)
        q1 = QuantSpec(8, qi.scale * float(rng.uniform(0.5, 6)), int(rng.integers(-30, 30)))
        q2 = QuantSpec(8, qi.scale * 10 ** float(rng.uniform(-2.3, 4)), int(rng.integers(-9, 9)))
        g = Graph(
            {"in": Input(shape=(64,), quant=qi), "a1": Add(out_q=q1), "a2": Add(out_q=q2)},
            [("in", "a1"), ("in", "a1"), ("a1", "a2"), ("in", "a2")],
        )
        rt = Runtime(g, mode="int")
        if TFLITE.refusals(g):
            continue
        kinds.add(rt.kernels["a2"].single)
        xq = _codes(g, seed, 32)
        ref = rt.step(xq).astype(np.int64)
        assert np.array_equal(_litert(g, xq, R.AUTO), ref), seed
        assert np.array_equal(_onnxrt(g, xq), ref), seed
    assert kinds == {True, False}


@pytest.mark.parametrize("signed", [False, True])
def test_average_pool_ties_round_as_tflite(signed):
    """Every tie of a 2x2 average over the whole code range: the runtime, LiteRT (both
    kernel sets) and onnxruntime agree (an unsigned tensor averages its int8 codes)."""
    q = QuantSpec(8, 0.05, 3 if signed else 7, signed=signed)
    g = Graph.sequential(
        [("in", Input(shape=(1, 2, 2), quant=q)), ("p", AvgPool2d(kernel=(2, 2), stride=(2, 2)))]
    )
    lo, hi = q.range
    a = np.arange(lo, hi)
    xq = np.stack([a, a, a + 1, a + 1], 1).reshape(-1, 1, 2, 2).astype(q.dtype)
    ref = Runtime(g, mode="int").step(xq).astype(np.int64).reshape(-1)
    for resolver in (R.AUTO, R.BUILTIN_REF):
        assert np.array_equal(_litert(g, xq, resolver).reshape(-1), ref)
    assert np.array_equal(_onnxrt(g, xq).reshape(-1), ref)


# ---------------------------------------------------------------------- refusals
Q8, WQ = QuantSpec(8, 0.05, 0), QuantSpec(8, 0.01)


def _conv(groups=1, cin=4, wq=WQ, out_q=Q8):
    w = np.ones((4, cin // groups, 3, 3), np.float32) * 0.01
    return Conv2d(weight=w, groups=groups, weight_q=wq, out_q=out_q)


def _chain(*layers, shape=(4, 6, 6), quant=Q8) -> Graph:
    return Graph.sequential([("in", Input(shape=shape, quant=quant)), *layers])


CASES = [
    # (graph, target, expected one line)
    (
        _chain(("conv", _conv(groups=2))),
        TFLITE,
        (
            "node 'conv' (Conv2d) cannot run on tflite: grouped convolution (groups=2, 4 input "
            "channels) has no TFLite op; use groups=1 or depthwise (groups=4)"
        ),
    ),
    (
        _chain(("conv", _conv(wq=QuantSpec(16, 0.001)))),
        TFLITE,
        (
            "node 'conv' (Conv2d) cannot run on tflite: its weights are 16-bit; int8 TFLite takes "
            "weights of at most 8 bits"
        ),
    ),
    (
        _chain(("conv", _conv(wq=QuantSpec(16, 0.001)))),
        ONNX,
        (
            "node 'conv' (Conv2d) cannot run on onnx: its weights are 16-bit; the QDQ writer takes "
            "weights of at most 8 bits"
        ),
    ),
    (
        _chain(("conv", _conv(out_q=QuantSpec(8, (0.1, 0.1, 0.1, 0.1), 0, axis=0)))),
        ONNX,
        (
            "node 'conv' (Conv2d) cannot run on onnx: its output is quantized per channel; "
            "activations must be quantized per tensor"
        ),
    ),
    (
        _chain(("conv", _conv(out_q=QuantSpec(16, 0.001)))),
        ONNX,
        (
            "node 'conv' (Conv2d) cannot run on onnx: its output is 16-bit (-32768..32767); the "
            "ONNX QDQ writer carries activations of at most 8 bits: quantize it to 8 bits"
        ),
    ),
    (
        _chain(("pool", AvgPool2d(kernel=(3, 3), stride=(2, 2), padding=(1, 1)))),
        TFLITE,
        (
            "node 'pool' (AvgPool2d) cannot run on tflite: padding (1, 1) is not TFLite SAME "
            "padding for this input, the only padding AVERAGE_POOL_2D leaves out of the "
            "average; pad with a Conv2d instead"
        ),
    ),
    (
        _chain(("pool", SumPool2d())),
        TFLITE,
        (
            "node 'pool' (SumPool2d) cannot run on tflite: int8 TFLite has no sum pooling (the sums "
            "are 32-bit); use AvgPool2d (the sum over the window size), or run it in the neuroplast "
            "runtime"
        ),
    ),
    (
        _chain(("s", Scale(scale=np.full(144, 0.5, np.float32), out_q=Q8))),
        TFLITE,
        (
            "node 's' (Scale) cannot run on tflite: a scale per element of a (4, 6, 6) tensor; "
            "TFLite multiplies per channel at most (scalar or one per channel): fold it into the "
            "neighbouring layer, or export ONNX"
        ),
    ),
    (
        _chain(
            ("fc", Linear(weight=np.eye(4, dtype=np.float32), weight_q=WQ, out_q=Q8)),
            ("lif", LIF(tau_mem=np.float32(0.01), v_th=np.float32(1.0))),
            shape=(4,),
        ),  # fmt: skip
        ONNX,
        (
            "node 'lif' (LIF) cannot run on onnx: ONNX has no stateful spiking neuron op; export "
            "NIR for neuromorphic runtimes, or run it in the neuroplast runtime"
        ),
    ),
    (
        Graph(
            {
                "a": Input(shape=(4,), quant=Q8),
                "b": Input(shape=(4,), quant=Q8),
                "add": Add(out_q=Q8),
            },
            [("a", "add"), ("b", "add")],
        ),  # fmt: skip
        TFLITE,
        (
            "the graph cannot run on tflite: it has 2 inputs ['a', 'b']; the tflite writer takes "
            "exactly one"
        ),
    ),
    (
        _chain(("relu", ReLU()), shape=(4,), quant=None),
        ONNX,
        (
            "node 'in' (Input) cannot run on onnx: integer mode needs Input.quant (the input's "
            "scale and zero point)"
        ),
    ),
    (
        Graph(
            {"in": Input(shape=(4,), quant=Q8), "a": Add(out_q=QuantSpec(8, 1e-4))},
            [("in", "a"), ("in", "a")],
        ),
        TFLITE,
        (
            "node 'a' (Add) cannot run on tflite: an input scale is 500x its output scale (>= 256), "
            "where LiteRT's ADD overflows; give the sum a coarser output scale"
        ),
    ),
]


@pytest.mark.parametrize(
    "graph,target,line", CASES, ids=[f"{i}-{c[1].name}" for i, c in enumerate(CASES)]
)
def test_refused_up_front_in_one_line_and_nothing_written(tmp_path, graph, target, line):
    with pytest.raises(UnsupportedError) as ei:
        target.require(graph)
    assert str(ei.value) == line
    write = export_tflite if target is TFLITE else export_onnx_graph
    with pytest.raises(UnsupportedError, match="cannot run on"):
        write(graph, tmp_path / "m")
    assert not list(tmp_path.iterdir())


def test_wide_current_into_a_spiking_layer_names_the_spiking_layer():
    """act_bits was 8: the Linear's 16-bit output is the LIF's current, not an activation."""
    i16 = QuantSpec(16, 0.001)
    g = _chain(("fc", Linear(weight=np.eye(4, dtype=np.float32), weight_q=WQ, out_q=i16)),
               ("lif", LIF(tau_mem=np.float32(0.01), v_th=np.float32(1.0), v_q=i16)),
               shape=(4,))  # fmt: skip
    for target in (TFLITE, ONNX):
        found = target.refusals(g)
        assert [(r.node, r.kind) for r in found] == [("lif", "LIF")]
