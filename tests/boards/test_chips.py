"""The one chip-constraint table: ``fit`` and ``neuroplast check --board`` refuse the same
nodes for the same reasons, on random graphs against every spiking profile."""

from __future__ import annotations

import numpy as np

from neuroplast.boards import load_profile
from neuroplast.boards.chips import CHIP, check_graph
from neuroplast.boards.estimate import fit_graph
from neuroplast.graph import nodes as N
from neuroplast.graph.graph import Graph
from neuroplast.quant import QuantSpec

PROFILES = ("xylo", "speck", "loihi2", "sfq")


def _neuron(rng: np.random.Generator, kind: str, n: int) -> N.Node:
    v = np.float32(rng.uniform(0.5, 1.5))
    vq = QuantSpec(bits=int(rng.choice([8, 16, 32])), scale=0.01) if rng.random() < 0.5 else None
    return {
        "LIF": lambda: N.LIF(tau_mem=np.float32(5e-3), v_th=v, v_q=vq),
        "CubaLIF": lambda: N.CubaLIF(tau_syn=np.float32(3e-3), tau_mem=np.float32(5e-3), v_th=v),
        "IF": lambda: N.IF(v_th=v, v_q=vq),
        "LI": lambda: N.LI(tau_mem=np.float32(5e-3), v_q=vq),
        "Threshold": lambda: N.Threshold(v_th=v),
        "ReLU": lambda: N.ReLU(),
    }[kind]()


def _random_graph(seed: int) -> Graph:
    """A random chain (with an optional Add branch) over every shipped kind the chip table
    knows or refuses: conv/pool front end, dense or delayed synapses, neurons, Scale, Delay."""
    rng = np.random.default_rng(seed)
    neurons = ("LIF", "CubaLIF", "IF", "LI", "Threshold", "ReLU")
    nodes: dict[str, N.Node] = {}
    edges: list[tuple[str, str]] = []

    def wq() -> QuantSpec | None:
        return (
            QuantSpec(bits=int(rng.choice([4, 8, 12])), scale=0.01) if rng.random() < 0.7 else None
        )

    def add(name: str, node: N.Node, *src: str) -> str:
        nodes[name] = node
        edges.extend((s, name) for s in src)
        return name

    if rng.random() < 0.4:
        c, h = int(rng.integers(1, 3)), int(rng.integers(4, 40))
        x = add("x", N.Input(shape=(c, h, h)))
        co = int(rng.integers(2, 8))
        x = add("conv", N.Conv2d(weight=rng.normal(0, 1, (co, c, 3, 3)).astype(np.float32),
                                 padding=(1, 1), weight_q=wq()), x)  # fmt: skip
        x = add("n0", _neuron(rng, str(rng.choice(neurons)), co * h * h), x)
        pool = [N.SumPool2d, N.AvgPool2d, N.MaxPool2d][int(rng.integers(0, 3))]
        x = add("pool", pool(kernel=(2, 2), stride=(2, 2)), x)
        x = add("flat", N.Flatten(), x)
        n_in = co * (h // 2) ** 2
    else:
        n_in = int(rng.integers(4, 3000))
        x = add("x", N.Input(shape=(n_in,)))
    for i in range(int(rng.integers(1, 4))):
        nh = int(rng.integers(2, 1500))
        w = rng.normal(0, 1, (nh, n_in)).astype(np.float32)
        w[rng.random(w.shape) < rng.uniform(0, 0.99)] = 0  # sparse rows: fan-in counts non-zeros
        if rng.random() < 0.2:
            a = add(f"fa{i}", N.Linear(weight=w, weight_q=wq()), x)
            b = add(f"fb{i}", N.Linear(weight=w[:, ::-1].copy(), weight_q=wq()), x)
            x = add(f"sum{i}", N.Add(), a, b)
        elif rng.random() < 0.3:
            d = rng.integers(0, 4, w.shape).astype(np.int32)
            x = add(f"fc{i}", N.DelayLinear(weight=w, delay=d, weight_q=wq()), x)
        else:
            x = add(f"fc{i}", N.Linear(weight=w, weight_q=wq()), x)
        x = add(f"n{i + 1}", _neuron(rng, str(rng.choice(neurons)), nh), x)
        if rng.random() < 0.15:
            x = add(f"d{i}", N.Delay(delay=np.int32(2)), x)
        if rng.random() < 0.1:
            x = add(f"s{i}", N.Scale(scale=np.float32(0.5)), x)
        n_in = nh
    return Graph(nodes, edges, dt=1e-3)


def _fit_chip_reasons(rep: object) -> set[str]:
    # fit's own memory verdict is not a chip constraint
    return {r for r in rep.reasons if not r.startswith("synaptic memory:")}


def test_fit_and_check_refuse_the_same_nodes_for_the_same_reasons():
    rules: set[str] = set()
    for seed in range(40):
        g = _random_graph(seed)
        for board in PROFILES:
            chip = check_graph(g, board)
            fit = fit_graph(g, board)
            assert {str(v) for v in chip.errors} == _fit_chip_reasons(fit), (seed, board)
            assert {str(v) for v in chip.warnings} <= set(fit.warnings), (seed, board)
            assert chip.ok or fit.verdict == "does-not-fit", (seed, board)
            rules |= {v.rule for v in chip.violations}
    # the equivalence means something only if the graphs hit every rule
    assert rules >= {"target", "kind", "neuron-type", "delays", "fan-in", "fan-out",
                     "weight-bits", "state-bits", "cores", "neurons", "inputs", "outputs"}  # fmt: skip


def _chain(n_in: int, sizes: list[int], kind: str = "LIF", bits: int = 8) -> Graph:
    layers: list[tuple[str, N.Node]] = [("x", N.Input(shape=(n_in,)))]
    for i, n in enumerate(sizes):
        w = np.ones((n, n_in), np.float32)
        layers += [(f"fc{i}", N.Linear(weight=w, weight_q=QuantSpec(bits=bits, scale=0.01))),
                   (f"n{i}", N.LIF(tau_mem=np.float32(5e-3), v_th=np.float32(1)) if kind == "LIF"
                    else N.IF(v_th=np.float32(1)))]  # fmt: skip
        n_in = n
    return Graph.sequential(layers)


def test_one_core_chips_share_their_core_and_others_take_one_per_layer():
    """Xylo (1 core of 1000) holds 3 x 300 neurons; Loihi 2 spends a core per layer."""
    g = _chain(16, [300, 300, 300], bits=8)
    rep = check_graph(g, "xylo")
    assert rep.totals["cores"] == 1 and not [v for v in rep.errors if v.rule == "cores"]
    assert check_graph(g, "loihi2").totals["cores"] == 3
    rules = [v.rule for v in check_graph(_chain(16, [600, 600]), "xylo").errors]
    assert {"cores", "neurons"} <= set(rules)


def test_rules_against_hand_computed_limits():
    lim = load_profile("xylo").neuromorphic
    g = _chain(16, [40, 8])  # each of the 40 hidden neurons drives 8 synapses: fine
    assert check_graph(g, "xylo").ok
    g = _chain(16, [40, 40, 8])  # ... 40 synapses > fan-out 32
    (v,) = check_graph(g, "xylo").errors
    assert (v.rule, v.node) == ("fan-out", "fc1") and f"limit {lim.fan_out}" in v.detail
    speck = check_graph(_chain(8, [4, 4], kind="IF", bits=8), "speck")
    assert speck.ok and speck.totals["cores"] == 2
    bad = check_graph(_chain(8, [4, 4], kind="IF", bits=4), "sfq")
    assert bad.ok  # 4-bit weights fit the SFQ synapse bias levels
    bad = check_graph(_chain(8, [4, 4], kind="IF", bits=8), "sfq")
    assert {(v.rule, v.node) for v in bad.errors} == {
        ("weight-bits", "fc0"),
        ("weight-bits", "fc1"),
    }


def test_the_chip_table_is_a_target_of_the_capability_matrix():
    assert CHIP.support(N.MaxPool2d) == (
        False,
        "spiking chips have no max pooling; use AvgPool2d/SumPool2d",
    )
    assert CHIP.support(N.LIF)[0] and CHIP.support(N.DelayLinear)[0]
