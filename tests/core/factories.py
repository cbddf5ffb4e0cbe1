"""Small graphs shared by the core tests."""

import numpy as np

from neuroplast.graph import LI, LIF, DelayLinear, Graph, Input, Linear, QuantSpec


def snn_graph(n_in=20, n_hidden=16, n_out=4, seed=0, quantized=False, delays=False):
    rng = np.random.default_rng(seed)
    w1 = rng.normal(0, 0.5, (n_hidden, n_in)).astype(np.float32)
    w2 = rng.normal(0, 0.5, (n_out, n_hidden)).astype(np.float32)
    q = (
        (lambda w: QuantSpec(scale=tuple(np.abs(w).max(1) / 127), axis=0, narrow=True))
        if quantized
        else (lambda w: None)
    )
    cur = QuantSpec(bits=16, scale=1 / 512) if quantized else None
    if delays:
        d = rng.integers(0, 6, w1.shape)
        l1 = DelayLinear(weight=w1, delay=d, weight_q=q(w1), out_q=cur)
    else:
        l1 = Linear(weight=w1, bias=np.zeros(n_hidden, np.float32), weight_q=q(w1), out_q=cur)
    return Graph.sequential(
        [
            ("in", Input(shape=(n_in,), quant=QuantSpec(scale=1.0) if quantized else None)),
            ("fc1", l1),
            ("lif1", LIF(tau_mem=np.full(n_hidden, 5e-3), v_th=np.ones(n_hidden))),
            (
                "fc2",
                Linear(
                    weight=w2,
                    weight_q=q(w2),
                    out_q=QuantSpec(bits=32, scale=1 / 512) if quantized else None,
                ),
            ),
            ("out", LI(tau_mem=np.full(n_out, 1e-2))),
        ]
    )


def spikes(t=40, n=20, p=0.3, seed=1):
    return (np.random.default_rng(seed).random((t, n)) < p).astype(np.float32)
