"""Case study of the SFQ paper: a deep XOR network, trained, exported to SFQ, simulated.

Training is hardware-aware: the network is the mean-field rate model of the mapped
circuit (analytic.py, theta = 1 neurons)::

    E_j = 1 - (1 - b_j^+) prod_i (1 - w_ij^+ r_i),  I_j = 1 - (1 - b_j^-) prod_i (1 - w_ij^- r_i)
    r_j = E_j (1 - I_j)

with weights and biases kept in [-1, 1] by a tanh parameterisation, trained with Adam
on the four patterns (input "1" = one pulse per clock period, "0" = none) to push the
output rate to 1 for XOR = 1 and to 0 otherwise. The weights are stored in a neuroplast
Graph (``Input -> Linear -> ReLU -> ...``), exported with :func:`export_sfq` and run
pattern by pattern in the pulse-level simulator. Classification: output rate > 0.5.
Margin (output-rate separation): ``min(rate | XOR=1) - max(rate | XOR=0)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neuroplast.errors import ExportError

__all__ = ["PATTERNS", "train_xor", "xor_graph", "run_xor_case_study"]

PATTERNS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
TARGETS = np.array([0, 1, 1, 0], dtype=np.float64)


def _mean_field_torch(params: list, x: Any) -> Any:
    import torch

    r = x
    for raw_w, raw_b in params:
        w = torch.tanh(raw_w)
        b = torch.tanh(raw_b)
        wp, wn = w.clamp(min=0), (-w).clamp(min=0)
        e = 1 - (1 - b.clamp(min=0)) * torch.prod(1 - wp[None] * r[:, None, :], dim=2)
        i = 1 - (1 - (-b).clamp(min=0)) * torch.prod(1 - wn[None] * r[:, None, :], dim=2)
        r = e * (1 - i)
    return r


def train_xor(
    hidden: tuple[int, ...] = (4, 4), *, seed: int = 0, steps: int = 1500, restarts: int = 4
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Train the mean-field model; returns ``[(W, b), ...]`` per layer (values in [-1, 1]).

    Among ``restarts`` initialisations the one with the widest mean-field margin wins.
    """
    import torch

    torch.set_num_threads(1)
    sizes = [2, *hidden, 1]
    x = torch.tensor(PATTERNS, dtype=torch.float64)
    y = torch.tensor(TARGETS, dtype=torch.float64)[:, None]
    best: tuple[float, list] | None = None
    for r in range(restarts):
        g = torch.Generator().manual_seed(seed * 1000 + r)
        params = [
            (
                (torch.randn(o, i, generator=g, dtype=torch.float64) * 1.0).requires_grad_(),
                (torch.randn(o, generator=g, dtype=torch.float64) * 0.3).requires_grad_(),
            )
            for i, o in zip(sizes[:-1], sizes[1:], strict=False)
        ]
        opt = torch.optim.Adam([t for p in params for t in p], lr=0.05)
        for _ in range(steps):
            opt.zero_grad()
            out = _mean_field_torch(params, x)
            loss = torch.mean((out - y) ** 2)
            loss.backward()
            opt.step()
        with torch.no_grad():
            out = _mean_field_torch(params, x)[:, 0].numpy()
        margin = float(out[TARGETS == 1].min() - out[TARGETS == 0].max())
        if best is None or margin > best[0]:
            best = (margin, [(torch.tanh(w).detach().numpy(), torch.tanh(b).detach().numpy())
                             for w, b in params])  # fmt: skip
    assert best is not None
    return best[1]


def xor_graph(layers: list[tuple[np.ndarray, np.ndarray]]) -> Any:
    """Wrap trained ``[(W, b), ...]`` as ``Input -> (Linear -> ReLU)*`` neuroplast Graph."""
    from neuroplast.graph import Graph, Input, Linear, ReLU

    seq: list = [("x", Input(shape=(layers[0][0].shape[1],)))]
    for k, (w, b) in enumerate(layers):
        seq.append((f"fc{k}", Linear(weight=w.astype(np.float32), bias=b.astype(np.float32))))
        seq.append((f"act{k}", ReLU()))
    return Graph.sequential(seq, dt=1e-3)


def run_xor_case_study(
    *,
    hidden: tuple[int, ...] = (4, 4),
    seed: int = 0,
    steps: int = 1500,
    restarts: int = 4,
    n_cycles: int = 1000,
    clock_ghz: float = 20.0,
    netlist_path: str | None = None,
) -> dict[str, Any]:
    """Train, export, simulate; return the report dict (bench/bench_sfq.py saves it as its results JSON)."""
    from neuroplast.quantize.sfq.analytic import network_rates
    from neuroplast.quantize.sfq.export import check_timing, layers_from_graph, to_netlist
    from neuroplast.quantize.sfq.netlist import save_netlist
    from neuroplast.quantize.sfq.simulate import simulate

    trained = train_xor(hidden, seed=seed, steps=steps, restarts=restarts)
    graph = xor_graph(trained)
    nl = to_netlist(graph, clock_ghz=clock_ghz)
    if netlist_path is not None:
        save_netlist(nl, netlist_path)
    _, sfq_layers, _ = layers_from_graph(graph)
    timing = check_timing(nl)
    rows = []
    for k, (pat, tgt) in enumerate(zip(PATTERNS, TARGETS, strict=False)):
        res = simulate(nl, {"in0": float(pat[0]), "in1": float(pat[1])}, n_cycles, seed=seed + k)
        rate = res.output_rates[nl.outputs[0]]
        mf = float(network_rates(sfq_layers, pat)[-1][0])
        rows.append(
            {
                "input": pat.astype(int).tolist(),
                "target": int(tgt),
                "rate": rate,
                "mean_field_rate": mf,
                "predicted": int(rate > 0.5),
                "correct": bool(int(rate > 0.5) == int(tgt)),
                "energy_j": res.energy_j,
                "switch_events": res.switch_events,
                "latency_ps": res.latency_ps,
            }
        )
    ones = [r["rate"] for r in rows if r["target"] == 1]
    zeros = [r["rate"] for r in rows if r["target"] == 0]
    if not rows:
        raise ExportError("no XOR patterns simulated")
    period = 1000.0 / clock_ghz
    energy = float(np.mean([r["energy_j"] for r in rows]))
    return {
        "network": f"2-{'-'.join(map(str, hidden))}-1 rate-coded, theta=1 clocked SFQ neurons",
        "clock_ghz": clock_ghz,
        "n_cycles_per_inference": n_cycles,
        "patterns": rows,
        "all_correct": all(r["correct"] for r in rows),
        "margin": float(min(ones) - max(zeros)),
        "jj_count": nl.totals()["jj"],
        "cells": nl.totals()["cells"],
        "bias_current_ma": nl.totals()["bias_ua"] / 1000.0,
        "energy_per_inference_j": energy,
        "energy_note": "sum over junction switching events of Ic*Phi0 (Phi0 = 2.07e-15 Wb), "
        "clock tree included, static bias power excluded",
        "pipeline_latency_ps": rows[0]["latency_ps"],
        "inference_time_ps": n_cycles * period + rows[0]["latency_ps"],
        "timing": timing,
        "weights": [[w.tolist(), b.tolist()] for w, b in trained],
    }
