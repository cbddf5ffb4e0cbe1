"""Seeded random graphs over every node kind NIR expresses (test helper): conv1d/conv2d
front ends with pools, dense / delayed (DelayLinear) / residual (Add) synapses, every
neuron kind with shared or per-neuron parameters, Delay and Scale nodes."""

from __future__ import annotations

import numpy as np

from neuroplast.graph import (
    IF,
    LI,
    LIF,
    Add,
    AvgPool2d,
    Conv1d,
    Conv2d,
    CubaLIF,
    Delay,
    DelayLinear,
    Flatten,
    Graph,
    Input,
    Linear,
    Scale,
    SumPool2d,
    Threshold,
)

NEURONS = ("LIF", "CubaLIF", "IF", "LI", "Threshold")


def _neuron(rng: np.random.Generator, kind: str, n: int, dt: float) -> object:
    per = rng.random() < 0.5  # per-neuron (per-channel for conv layers) or shared

    def v(lo: float, hi: float) -> object:
        a = rng.uniform(lo, hi, n if per else 1).astype(np.float32)
        return a if per else np.float32(a[0])

    if kind == "LIF":
        return LIF(tau_mem=v(2 * dt, 20 * dt), v_th=v(0.5, 1.5))
    if kind == "CubaLIF":
        return CubaLIF(tau_syn=v(2 * dt, 10 * dt), tau_mem=v(2 * dt, 20 * dt), v_th=v(0.3, 1.0))
    if kind == "IF":
        return IF(v_th=v(0.5, 2.0))
    if kind == "LI":
        return LI(tau_mem=v(2 * dt, 20 * dt))
    return Threshold(v_th=v(0.0, 0.5))


def _w(rng: np.random.Generator, *shape: int, s: float = 2.0) -> np.ndarray:
    return (rng.normal(0, s / np.sqrt(np.prod(shape[1:])), shape)).astype(np.float32)


def random_graph(seed: int, kinds: tuple[str, ...] = NEURONS) -> Graph:
    """A random valid graph whose every node NIR can express (see module docstring)."""
    rng = np.random.default_rng(seed)
    dt = float(rng.choice([1e-4, 1e-3]))
    nodes: dict[str, object] = {}
    edges: list[tuple[str, str]] = []

    def add(name: str, node: object, *src: str) -> str:
        nodes[name] = node
        edges.extend((s, name) for s in src)
        return name

    def bias(n: int) -> np.ndarray | None:
        return _w(rng, n, s=0.1) if rng.random() < 0.5 else None

    def kind() -> str:
        return str(rng.choice(kinds))

    front = int(rng.integers(0, 3))
    if front == 0:  # Conv2d -> neuron -> pool -> Flatten
        c, h, co = int(rng.integers(1, 3)), int(rng.integers(4, 7)), int(rng.integers(2, 4))
        x = add("x", Input(shape=(c, h, h)))
        x = add("conv", Conv2d(weight=_w(rng, co, c, 3, 3), bias=bias(co), padding=(1, 1)), x)
        x = add("n0", _neuron(rng, kind(), co, dt), x)
        x = add("pool", (SumPool2d if rng.random() < 0.5 else AvgPool2d)(kernel=(2, 2)), x)
        x = add("flat", Flatten(), x)
        n_in = co * (h // 2) ** 2
    elif front == 1:  # Conv1d (strided) -> neuron -> Flatten
        c, length, co = int(rng.integers(1, 3)), int(rng.integers(6, 10)), int(rng.integers(2, 4))
        stride = int(rng.integers(1, 3))
        x = add("x", Input(shape=(c, length)))
        x = add("conv", Conv1d(weight=_w(rng, co, c, 3), bias=bias(co), stride=(stride,)), x)
        x = add("n0", _neuron(rng, kind(), co, dt), x)
        x = add("flat", Flatten(), x)
        n_in = co * ((length - 3) // stride + 1)
    else:
        n_in = int(rng.integers(4, 12))
        x = add("x", Input(shape=(n_in,)))
    nh = int(rng.integers(4, 12))
    r = rng.random()
    if r < 0.35:  # two branches summed
        a = add("fa", Linear(weight=_w(rng, nh, n_in), bias=bias(nh)), x)
        b = add("fb", Linear(weight=_w(rng, nh, n_in)), x)
        x = add("sum", Add(), a, b)
    elif r < 0.65:
        d = rng.integers(0, 4, (nh, n_in)).astype(np.int32)
        x = add("fc1", DelayLinear(weight=_w(rng, nh, n_in), delay=d, bias=bias(nh)), x)
    else:
        x = add("fc1", Linear(weight=_w(rng, nh, n_in), bias=bias(nh)), x)
    x = add("n1", _neuron(rng, kind(), nh, dt), x)
    if rng.random() < 0.3:
        x = add("dly", Delay(delay=rng.integers(0, 3, nh).astype(np.int32)), x)
    if rng.random() < 0.3:
        x = add("sc", Scale(scale=rng.uniform(0.5, 1.5, nh).astype(np.float32)), x)
    no = int(rng.integers(2, 6))
    x = add("fc2", Linear(weight=_w(rng, no, nh), bias=bias(no)), x)
    add("n2", _neuron(rng, kind(), no, dt), x)
    return Graph(nodes, edges, dt=dt)


def spike_input(g: Graph, steps: int, batch: int, seed: int) -> np.ndarray:
    """30 % Bernoulli spikes ``(steps, batch, *input shape)``."""
    shape = g.nodes[g.inputs[0]].shape
    return (np.random.default_rng(seed).random((steps, batch, *shape)) < 0.3).astype(np.float32)
