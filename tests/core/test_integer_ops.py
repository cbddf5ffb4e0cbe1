"""Integer-mode Linear/Conv/pool/add against independent references.

The reference recomputes every output with Python integers (arbitrary precision),
applying LiteRT's single-rounding requantization literally:
``(acc * qm + 2^(30 - shift)) >> (31 - shift)``, then clamps.
"""

import math

import numpy as np
import pytest
import torch

from neuroplast.graph import (
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
)
from neuroplast.quant import quantize_multiplier, requantize
from neuroplast.runtime import Runtime


def _tflite_multiplier(m: float):
    """QuantizeMultiplier from TFLite, in plain Python."""
    if m == 0:
        return 0, 0
    q, e = math.frexp(m)
    qf = round(q * (1 << 31)) if q * (1 << 31) % 1 != 0.5 else math.floor(q * (1 << 31)) + 1
    if qf == 1 << 31:
        qf //= 2
        e += 1
    return qf, e


def _ref_requant(acc: int, m: float, zp: int, lo: int, hi: int) -> int:
    qm, shift = _tflite_multiplier(m)
    total = 31 - shift
    y = (acc * qm + (1 << (total - 1))) >> total
    return max(lo, min(hi, y + zp))


def test_quantize_multiplier_matches_python():
    rng = np.random.default_rng(0)
    ms = np.concatenate([rng.uniform(1e-6, 0.99, 200), [0.5, 0.25, 1e-3, 3.7, 0.0]])
    qm, sh = quantize_multiplier(ms)
    for m, a, b in zip(ms, qm, sh):
        assert (int(a), int(b)) == _tflite_multiplier(float(m))
        if m:
            assert abs(a * 2.0 ** (int(b) - 31) - m) <= m * 2**-30


def test_requantize_rounding_half_up():
    # M = 0.5 exactly: qm = 2^30, shift = 0 -> acc * 0.5 rounded half toward +inf
    qm, sh = quantize_multiplier(0.5)
    acc = np.array([1, 3, -1, -3, 2, -2])
    np.testing.assert_array_equal(requantize(acc, qm, sh), [1, 2, 0, -1, 1, -1])


def test_linear_int_matches_python_reference():
    rng = np.random.default_rng(3)
    n_in, n_out = 37, 11
    w = rng.normal(0, 0.4, (n_out, n_in)).astype(np.float32)
    b = rng.normal(0, 0.3, n_out).astype(np.float32)
    s_w = np.abs(w).max(1) / 127
    in_q = QuantSpec(scale=0.0371, zero_point=-7)
    w_q = QuantSpec(scale=tuple(s_w), axis=0, narrow=True)
    out_q = QuantSpec(scale=0.0913, zero_point=5)
    g = Graph.sequential(
        [
            ("in", Input(shape=(n_in,), quant=in_q)),
            ("fc", Linear(weight=w, bias=b, weight_q=w_q, out_q=out_q)),
        ]
    )
    rt = Runtime(g, mode="int")
    x = rng.integers(-128, 128, (20, n_in)).astype(np.int8)
    y = rt.run(x)
    wq = np.clip(np.round(w / s_w[:, None]), -127, 127).astype(int)
    for t in range(20):
        for o in range(n_out):
            m = float(np.float32(0.0371)) * float(np.float32(s_w[o])) / float(np.float32(0.0913))
            bq = round(float(b[o]) / (float(np.float32(0.0371)) * float(np.float32(s_w[o]))))
            acc = bq + sum(int(wq[o, i]) * (int(x[t, i]) + 7) for i in range(n_in))
            assert int(y[t, o]) == _ref_requant(acc, m, 5, -128, 127)


@pytest.mark.parametrize(
    "groups,stride,padding", [(1, (1, 1), (1, 1)), (4, (2, 2), (1, 0)), (8, (1, 2), (0, 1))]
)
def test_conv2d_int_matches_int64_reference(groups, stride, padding):
    rng = np.random.default_rng(groups)
    cin, cout = 8, 8
    w = rng.normal(0, 0.3, (cout, cin // groups, 3, 3)).astype(np.float32)
    s_w = np.abs(w).reshape(cout, -1).max(1) / 127
    in_q, out_q = QuantSpec(scale=0.0213, zero_point=3), QuantSpec(scale=0.0417, zero_point=-2)
    node = Conv2d(
        weight=w,
        stride=stride,
        padding=padding,
        groups=groups,
        weight_q=QuantSpec(scale=tuple(s_w), axis=0, narrow=True),
        out_q=out_q,
    )
    g = Graph.sequential([("in", Input(shape=(cin, 9, 10), quant=in_q)), ("c", node)])
    x = rng.integers(-128, 128, (2, cin, 9, 10)).astype(np.int8)
    y = Runtime(g, mode="int").step(x)
    # independent reference: explicit int64 loops
    wq = np.clip(np.round(w / s_w[:, None, None, None]), -127, 127).astype(np.int64)
    xc = np.pad(x.astype(np.int64) - 3, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
    og = cout // groups
    for b in range(2):
        for o in range(cout):
            gi = o // og
            m = float(np.float32(0.0213)) * float(np.float32(s_w[o])) / float(np.float32(0.0417))
            for i in range(y.shape[2]):
                for j in range(y.shape[3]):
                    patch = xc[
                        b,
                        gi * (cin // groups) : (gi + 1) * (cin // groups),
                        i * stride[0] : i * stride[0] + 3,
                        j * stride[1] : j * stride[1] + 3,
                    ]
                    acc = int((patch * wq[o]).sum())
                    assert int(y[b, o, i, j]) == _ref_requant(acc, m, -2, -128, 127)


def test_conv1d_int_and_float_vs_torch():
    rng = np.random.default_rng(5)
    w = rng.normal(0, 0.3, (6, 4, 5)).astype(np.float32)
    b = rng.normal(0, 0.1, 6).astype(np.float32)
    g = Graph.sequential(
        [
            ("in", Input(shape=(4, 30))),
            ("c", Conv1d(weight=w, bias=b, stride=(2,), padding=(2,), dilation=(2,))),
        ]
    )
    x = rng.normal(size=(3, 4, 30)).astype(np.float32)
    ref = torch.nn.functional.conv1d(
        torch.from_numpy(x),
        torch.from_numpy(w),
        torch.from_numpy(b),
        stride=2,
        padding=2,
        dilation=2,
    ).numpy()
    np.testing.assert_allclose(Runtime(g).step(x), ref, atol=1e-5)


def test_float_conv_pool_vs_torch():
    rng = np.random.default_rng(6)
    w = rng.normal(0, 0.3, (6, 3, 3, 3)).astype(np.float32)
    dw = rng.normal(0, 0.3, (6, 1, 3, 3)).astype(np.float32)
    g = Graph.sequential(
        [
            ("in", Input(shape=(3, 12, 12))),
            ("c", Conv2d(weight=w, padding=(1, 1))),
            ("r", ReLU()),
            ("dw", Conv2d(weight=dw, padding=(1, 1), groups=6, stride=(2, 2))),
            ("mp", MaxPool2d(kernel=(2, 2), stride=(2, 2))),
            ("ap", AvgPool2d(kernel=(3, 3), stride=(1, 1), padding=(1, 1))),
            ("f", Flatten()),
        ]
    )
    x = rng.normal(size=(2, 3, 12, 12)).astype(np.float32)
    F = torch.nn.functional
    t = torch.from_numpy(x)
    t = F.relu(F.conv2d(t, torch.from_numpy(w), padding=1))
    t = F.conv2d(t, torch.from_numpy(dw), padding=1, groups=6, stride=2)
    t = F.avg_pool2d(F.max_pool2d(t, 2), 3, 1, 1, count_include_pad=False).flatten(1)
    np.testing.assert_allclose(Runtime(g).step(x), t.numpy(), atol=1e-5)


def test_int_add_and_avgpool_close_to_float():
    rng = np.random.default_rng(7)
    qa, qb, qo = (
        QuantSpec(scale=0.0123, zero_point=4),
        QuantSpec(scale=0.0311, zero_point=-9),
        QuantSpec(scale=0.0377, zero_point=1),
    )
    g = Graph(
        {
            "a": Input(shape=(2, 6, 6), quant=qa),
            "b": Input(shape=(2, 6, 6), quant=qb),
            "add": Add(out_q=qo),
            "ap": AvgPool2d(kernel=(2, 2), stride=(2, 2)),
        },
        [("a", "add"), ("b", "add"), ("add", "ap")],
    )
    xa = rng.integers(-128, 128, (1, 2, 6, 6))
    xb = rng.integers(-128, 128, (1, 2, 6, 6))
    y = Runtime(g, mode="int").step({"a": xa.astype(np.int8), "b": xb.astype(np.int8)})
    real = 0.0123 * (xa - 4) + 0.0311 * (xb + 9)
    real = real.reshape(1, 2, 3, 2, 3, 2).mean(axis=(3, 5))
    deq = 0.0377 * (y.astype(float) - 1)
    assert np.abs(deq - np.clip(real, 0.0377 * (-129), 0.0377 * 126)).max() <= 1.01 * 0.0377
