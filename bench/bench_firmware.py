"""Footprint and cost of the C firmware on Cortex-M, measured; kernel coverage of the boards.

Measured in one run (nothing here is typed in by hand):

* **size**: the firmware cross-built with Debian's arm-none-eabi-gcc for Cortex-M4F, M7 and
  M0+ (-O2 and -Os), ``arm-none-eabi-size`` of the ELF with the model arena and staging
  buffer set to 8 bytes, so ``data + bss`` is the firmware's own RAM (frame buffers, the
  board and model structs);
* **models**: the KWS network (the shape of ``apps/kws``: 80 -> 128 -> 128 -> 12 delayed
  synapses, delays 0..15, random int8 weights) and the ``cnn`` QAT recipe (calibrated on
  random data): image bytes, the arena the board reports (``ARENA_USED``), MACs per step,
  and instructions per step under ``qemu-system-arm -icount shift=0`` (the board's
  STEP_CYCLES counter) on each core;
* **cost model**: instructions per work unit (MAC for weighted layers and pools, element
  otherwise) and per layer for every kind, least squares over random graphs of every
  kind (``firmware_bridge.selftest``) run on each core; checked against the two models;
* **TFLM**: the same CNN as int8 TFLite in the TensorFlow Lite Micro interpreter (PyPI
  ``tflite-micro``): its arena (RecordingMicroAllocator) and flatbuffer size, beside
  published TFLM figures (cited in the JSON);
* **coverage**: random graphs of every kind on the x86 virtual board and the Cortex-M4
  under QEMU, outputs compared with the host integer runtime.

Writes bench/results/firmware.json, boards/profiles/firmware_measured.json (what ``fit``
reads for MCU profiles) and the two generated tables of docs/boards.md.

    nice -n 10 .venv/bin/python bench/bench_firmware.py [--graphs 8] [--coverage-graphs 20]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from neuroplast.firmware_bridge import Board, VirtualBoard, build_image  # noqa: E402
from neuroplast.firmware_bridge.qemu import CORES, QemuBoard, build_cortex_m, elf_size  # noqa: E402
from neuroplast.firmware_bridge.selftest import KIND_GRAPHS, check_board, random_graph  # noqa: E402
from neuroplast.graph.cost import cost as graph_cost  # noqa: E402
from neuroplast.runtime import Runtime  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "firmware.json"
MEASURED = ROOT / "boards" / "profiles" / "firmware_measured.json"
DOC = ROOT / "docs" / "boards.md"
MEASURE_CORES = ("m4", "m7", "m0plus")
CORE_TITLES = {"m4": "Cortex-M4F", "m7": "Cortex-M7", "m0plus": "Cortex-M0+"}

#: Published TensorFlow Lite Micro figures (not measured here).
TFLM_PUBLISHED = [
    {
        "figure": "core runtime (interpreter) code",
        "value": "16 KB on an Arm Cortex-M3",
        "source": "TFLM overview, https://ai.google.dev/edge/litert/microcontrollers/overview "
        "('The core runtime just fits in 16 KB on an Arm Cortex M3')",
    },
    {
        "figure": "core runtime + the operators of the micro_speech keyword model",
        "value": "22 KB",
        "source": "TensorFlow Lite for Microcontrollers overview (tensorflow.org/lite/microcontrollers, 2019-2020 edition)",
    },
    {
        "figure": "smallest configuration",
        "value": "as little as 20 KB of flash and 4 KB of SRAM",
        "source": "P. Warden, D. Situnayake, TinyML (O'Reilly 2019), ch. 17 'Optimizing Model and Binary Size'",
    },
]


# ------------------------------------------------------------------------ models
def kws_graph(seed: int = 0):
    """The KWS network's shape with random int8 weights and delays (apps/kws/lower.py)."""
    from neuroplast.apps.kws.lower import DeployLayer, KwsDeployment, to_graph
    from neuroplast.apps.kws.model import KwsNetConfig

    cfg = KwsNetConfig()
    rng = np.random.default_rng(seed)
    sizes = [cfg.n_in, *cfg.hidden, cfg.n_classes]
    layers = tuple(
        DeployLayer(
            weight_q=rng.integers(-40, 41, (sizes[i + 1], sizes[i])),
            scale=float(rng.uniform(0.01, 0.03)),
            delay=rng.integers(0, cfg.max_delay + 1, (sizes[i + 1], sizes[i])),
            bits=8,
        )
        for i in range(len(sizes) - 1)
    )
    dep = KwsDeployment(layers, beta=cfg.beta, beta_out=cfg.beta_out, v_th=cfg.v_th, dt=cfg.dt)
    return to_graph(dep)


def cnn_graph():
    """The ``cnn`` QAT recipe, calibrated on random data, lowered to the Graph IR."""
    import torch

    from neuroplast.quantize import calibrate, lower
    from neuroplast.quantize.recipes import build

    torch.manual_seed(1234)
    torch.set_num_threads(1)
    model, recipe = build("cnn", 8, 8)
    gen = torch.Generator().manual_seed(7)
    calibrate(model, [torch.rand((64,) + recipe.input_shape, generator=gen) for _ in range(4)])
    model.eval()
    return lower(model, recipe.example_input())


def model_inputs(name: str, graph, rng: np.random.Generator, steps: int) -> np.ndarray:
    shape = graph.shapes()[graph.inputs[0]]
    if name == "kws":  # spike input, ~10% active
        return (rng.random((steps,) + shape) < 0.1).astype(np.int8)
    return rng.integers(-128, 128, (steps,) + shape).astype(np.int8)


# ------------------------------------------------------------------------ measurement
def layer_units(graph) -> list[tuple[str, int, int]]:
    """(kind, MACs, output elements) of every layer the firmware runs; MACs of a pool are its
    window cells. Input and Flatten cost nothing."""
    return [(r.kind, r.macs, int(np.prod(r.out_shape))) for r in graph_cost(graph)
            if r.kind not in ("Input", "Flatten")]  # fmt: skip


def weighted_macs(graph) -> int:
    return sum(
        m for k, m, _ in layer_units(graph) if k in ("Linear", "Conv1d", "Conv2d", "DelayLinear")
    )


def instructions_per_step(board: Board, graph, x: np.ndarray) -> tuple[float, int]:
    """Load ``graph``, run ``x`` and return (instructions per step, arena bytes)."""
    img = board.load(Runtime(graph, mode="int"))
    board.reset("stats")
    board.infer(x)
    st = board.stats()
    assert st["arena_used"] == img.arena_bytes, (st["arena_used"], img.arena_bytes)
    return st["step_cycles"] / len(x), st["arena_used"]


def stdp_cost(board: Board, rng: np.random.Generator, n_in: int = 64, n_out: int = 48) -> float:
    """Instructions per synapse per step of on-board STDP: a Linear -> LIF layer stepped
    with learning on and off (same input)."""
    from neuroplast.graph import LIF, Graph, Input, Linear, QuantSpec
    from neuroplast.plasticity import IntSTDPParams

    w = rng.normal(0.1, 0.3, (n_out, n_in))
    g = Graph.sequential([
        ("x", Input(shape=(n_in,), quant=QuantSpec(8, 1.0, 0))),
        ("fc", Linear(weight=w, weight_q=QuantSpec(8, 0.01, 0, narrow=True), out_q=QuantSpec(16, 0.01, 0))),
        ("lif", LIF(tau_mem=np.full(n_out, 0.01), v_th=np.full(n_out, 0.5))),
    ])  # fmt: skip
    x = (rng.random((40, n_in)) < 0.2).astype(np.int8)
    off, _ = instructions_per_step(board, g, x)
    board.learn(True, layer="fc", params=IntSTDPParams(eta_plus=300, eta_minus=200))
    board.reset("stats")
    list(board.stream(x, reset=True))
    on = board.stats()["step_cycles"] / len(x)
    board.learn(False)
    return (on - off) / (n_in * n_out)


def fit_coefficients(samples: list[tuple[list[tuple[str, int, int]], float]]) -> dict:
    """Least squares: instructions per step = per_step + sum over layers of
    (mac * MACs + out * outputs + layer) with one (mac, out, layer) triple per kind."""
    kinds = sorted({k for layers, _ in samples for k, _, _ in layers})
    col = {k: i for i, k in enumerate(kinds)}
    a = np.zeros((len(samples), 1 + 3 * len(kinds)))
    y = np.zeros(len(samples))
    for r, (layers, instr) in enumerate(samples):
        a[r, 0] = 1.0
        for k, macs, outs in layers:
            a[r, 1 + 3 * col[k] : 4 + 3 * col[k]] += (macs, outs, 1.0)
        y[r] = instr
    w = 1.0 / np.maximum(y, 1.0)  # relative error: small graphs matter as much as big ones
    coef, *_ = np.linalg.lstsq(a * w[:, None], y * w, rcond=None)
    coef = np.maximum(coef, 0.0)
    rel = np.abs(a @ coef - y) / np.maximum(y, 1.0)
    per_kind = {k: {"mac": round(float(coef[1 + 3 * i]), 3), "out": round(float(coef[2 + 3 * i]), 2),
                    "layer": round(float(coef[3 + 3 * i]), 1)} for k, i in col.items()}  # fmt: skip
    return {"per_step": round(float(coef[0]), 1), "per_kind": per_kind,
            "fit_median_rel_error": round(float(np.median(rel)), 4),
            "fit_p90_rel_error": round(float(np.quantile(rel, 0.9)), 4), "graphs": len(samples)}  # fmt: skip


def predict(coeffs: dict, layers: list[tuple[str, int, int]]) -> float:
    pk = coeffs["per_kind"]
    return coeffs["per_step"] + sum(
        pk[k]["mac"] * m + pk[k]["out"] * o + pk[k]["layer"] for k, m, o in layers
    )


def measure_core(core: str, models: dict, n_graphs: int, seed: int) -> dict:
    """Instructions per step of the models and of random graphs of every kind on ``core``."""
    out: dict = {"models": {}}
    rng = np.random.default_rng(seed)
    with QemuBoard(core, icount=True, arena=512 * 1024, staging=256 * 1024) as qb, \
            Board.connect(qb.port, timeout=5.0) as b:  # fmt: skip
        for name, (graph, x) in models.items():
            instr, arena = instructions_per_step(b, graph, x)
            out["models"][name] = {"instructions_per_step": instr, "arena_bytes": arena}
        out["stdp_per_synapse"] = stdp_cost(b, rng)
        samples = []
        for kind in KIND_GRAPHS:
            for _ in range(n_graphs):
                g = random_graph(kind, rng)
                x = rng.integers(-128, 128, (16,) + g.shapes()[g.inputs[0]]).astype(np.int8)
                instr, _ = instructions_per_step(b, g, x)
                samples.append((layer_units(g), instr))
    out["coefficients"] = fit_coefficients(samples)
    out["coefficients"]["stdp_per_synapse"] = round(out["stdp_per_synapse"], 2)
    for name, (graph, _) in models.items():
        m = out["models"][name]
        m["predicted_instructions_per_step"] = predict(out["coefficients"], layer_units(graph))
        m["instructions_per_mac"] = m["instructions_per_step"] / max(weighted_macs(graph), 1)
    return out


# ------------------------------------------------------------------------ TFLM
def tflm_footprint(graph, x: np.ndarray) -> dict:
    """The graph as int8 TFLite in the TFLM interpreter: flatbuffer size, arena use, and
    its outputs vs the neuroplast integer runtime."""
    from tflite_micro.python.tflite_micro import runtime as tflm

    from neuroplast.export.tflite import tflite_bytes

    model = tflite_bytes(graph, io="int8")
    it = tflm.Interpreter.from_bytes(model, arena_size=1 << 20)
    got = []
    for k in range(len(x)):
        xt = x[k : k + 1]
        it.set_input(xt.transpose(0, 2, 3, 1) if xt.ndim == 4 else xt, 0)
        it.invoke()
        got.append(it.get_output(0))
    text = _c_output(it.print_allocations)
    ref = Runtime(graph, mode="int").step(x)
    out_q = graph.nodes[graph.outputs[0]].out_q
    d = np.concatenate(got).reshape(ref.shape).astype(np.int64) - (
        ref.astype(np.int64) - (0 if out_q.signed else 128)
    )
    m = re.search(r"Arena allocation total (\d+) bytes", text)
    return {"tflite_bytes": len(model), "arena_bytes": int(m.group(1)) if m else None,
            "outputs": int(d.size), "differing_1_lsb": int(np.count_nonzero(d)),
            "max_abs_diff": int(np.abs(d).max())}  # fmt: skip


def _c_output(fn) -> str:
    """What ``fn`` prints from C/C++ (file descriptors 1 and 2), as text."""
    import ctypes

    libc = ctypes.CDLL(None)
    sys.stdout.flush()
    sys.stderr.flush()
    with tempfile.TemporaryFile() as f:
        saved = [os.dup(1), os.dup(2)]
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
        try:
            fn()
        finally:
            libc.fflush(None)
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
        f.seek(0)
        return f.read().decode(errors="replace")


# ------------------------------------------------------------------------ docs
def write_block(name: str, text: str) -> None:
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    doc = DOC.read_text()
    if start not in doc or end not in doc:
        raise SystemExit(f"{DOC}: no {start} ... {end} markers")
    head, rest = doc.split(start, 1)
    _, tail = rest.split(end, 1)
    DOC.write_text(f"{head}{start}\n{text}{end}{tail}")


def _kb(n: float) -> str:
    return f"{n / 1024:.1f} KiB"


def footprint_table(res: dict) -> str:
    s, m = res["size"], res["models"]
    lines = ["| | " + " | ".join(CORE_TITLES[c] for c in MEASURE_CORES) + " | TFLM |",
             "|---|" + "---|" * (len(MEASURE_CORES) + 1)]  # fmt: skip
    lines.append(
        "| firmware code, -O2 / -Os (text + data) | "
        + " | ".join(
            f"{_kb(s[c]['-O2']['flash'])} / {_kb(s[c]['-Os']['flash'])}" for c in MEASURE_CORES
        )
        + " | 16 KB core runtime on Cortex-M3 [1]; 22 KB with the micro_speech operators [2] |"
    )
    lines.append(
        "| firmware RAM without the model (data + bss) | "
        + " | ".join(_kb(s[c]["-O2"]["static_ram"]) for c in MEASURE_CORES)
        + " | 4 KB SRAM minimum [3] |"
    )
    t = res.get("tflm", {})
    for name, title in (
        ("kws", "KWS (80-128-128-12, delays 0..15)"),
        ("cnn", "CNN recipe (1x8x8)"),
    ):
        mm = m[name]
        cores = res["cores"]
        lines.append(
            f"| {title}: image / arena | "
            + " | ".join(
                f"{_kb(mm['image_bytes'])} / {_kb(cores[c]['models'][name]['arena_bytes'])}"
                for c in MEASURE_CORES
            )
            + (
                f" | flatbuffer {_kb(t['tflite_bytes'])} / arena {_kb(t['arena_bytes'])} (measured here) |"
                if name == "cnn" and t
                else " | no TFLite form (DelayLinear, LIF) |"
            )
        )
        lines.append(
            f"| {title}: instructions per step ({mm['macs_per_step']:,} MACs) | "
            + " | ".join(
                f"{cores[c]['models'][name]['instructions_per_step']:,.0f} "
                f"({cores[c]['models'][name]['instructions_per_mac']:.1f}/MAC)"
                for c in MEASURE_CORES
            )
            + " | - |"
        )
    lines.append("")
    for i, p in enumerate(TFLM_PUBLISHED, 1):
        lines.append(f"[{i}] {p['figure']}: {p['value']} ({p['source']})")
    lines.append("")
    return "\n".join(lines) + "\n"


def coverage_table(cov: dict) -> str:
    lines = ["| kind | x86 virtual board | Cortex-M4 (QEMU mps2-an386) |", "|---|---|---|"]
    for kind in KIND_GRAPHS:
        cells = []
        for board in ("virtual", "qemu-m4"):
            r = cov[board][kind]
            ok = r["mismatches"] == 0 and not r["errors"] and r["arena_mismatches"] == 0
            cells.append(f"{'bit-exact' if ok else 'DIFFERS'}: {r['graphs']} graphs, "
                         f"{r['values']:,} values, {r['mismatches']} differ")  # fmt: skip
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------ main
def sizes() -> dict:
    out: dict = {}
    for core in MEASURE_CORES:
        out[core] = {}
        for opt in ("-O2", "-Os"):
            sz = elf_size(build_cortex_m(core, opt, arena=8, staging=8))
            out[core][opt] = {**sz, "flash": sz["text"] + sz["data"],
                              "static_ram": sz["data"] + sz["bss"] - 16}  # fmt: skip
    return out


def coverage(n: int, seed: int) -> dict:
    out = {}
    for board, make in (("virtual", VirtualBoard), ("qemu-m4", lambda: QemuBoard("m4"))):
        with make() as p, Board.connect(p.port, timeout=2.0) as b:
            res = check_board(b, graphs=n, steps=8, seed=seed)
        out[board] = {k: {"graphs": r.graphs, "values": r.values, "mismatches": r.mismatches,
                          "arena_mismatches": r.arena_mismatches, "errors": r.errors[:3]}
                      for k, r in res.items()}  # fmt: skip
    return out


def _version(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.splitlines()[0]
    except (OSError, IndexError):
        return "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--graphs", type=int, default=8, help="random graphs per kind per core")
    ap.add_argument("--coverage-graphs", type=int, default=20)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    t0 = time.time()
    rng = np.random.default_rng(args.seed)
    graphs = {"kws": kws_graph(args.seed), "cnn": cnn_graph()}
    models = {n: (g, model_inputs(n, g, rng, args.steps)) for n, g in graphs.items()}
    res: dict = {
        "machine": platform.platform(),
        "gcc": _version(["arm-none-eabi-gcc", "--version"]),
        "qemu": _version(["qemu-system-arm", "--version"]),
        "cpi_note": "QEMU counts instructions (-icount shift=0), not cycles; time = "
        "instructions x CPI / clock, CPI assumed 1 in fit",
        "size": sizes(),
        "models": {},
        "cores": {},
    }
    for name, (g, _) in models.items():
        img = build_image(Runtime(g, mode="int"))
        res["models"][name] = {"image_bytes": len(img.data), "arena_bytes": img.arena_bytes,
                               "layers": len(img.layers), "macs_per_step": weighted_macs(g)}  # fmt: skip
    for core in MEASURE_CORES:
        print(f"measuring {core} ...", flush=True)
        res["cores"][core] = measure_core(core, models, args.graphs, args.seed + 1)
        res["cores"][core]["machine"] = CORES[core].machine
    g, x = models["cnn"]
    res["tflm"] = tflm_footprint(g, x)
    res["tflm_published"] = TFLM_PUBLISHED
    print("coverage ...", flush=True)
    res["coverage"] = coverage(args.coverage_graphs, args.seed + 2)
    res["seconds"] = time.time() - t0
    RESULTS.write_text(json.dumps(res, indent=1))
    measured = {
        "source": "bench/bench_firmware.py (regenerate there); sizes from arm-none-eabi-size, "
        "instructions from qemu-system-arm -icount shift=0",
        "gcc": res["gcc"], "qemu": res["qemu"],
        "cores": {c: {"flash_bytes": res["size"][c]["-O2"]["flash"],
                      "static_ram_bytes": res["size"][c]["-O2"]["static_ram"],
                      **res["cores"][c]["coefficients"]} for c in MEASURE_CORES},
    }  # fmt: skip
    MEASURED.write_text(json.dumps(measured, indent=1) + "\n")
    write_block("firmware-footprint", footprint_table(res))
    write_block("kernel-coverage", coverage_table(res["coverage"]))
    print(json.dumps({k: res[k] for k in ("size", "models", "tflm")}, indent=1))
    for c in MEASURE_CORES:
        print(c, {n: round(v["instructions_per_step"]) for n, v in res["cores"][c]["models"].items()},
              res["cores"][c]["coefficients"]["fit_median_rel_error"])  # fmt: skip
    print(f"wrote {RESULTS}, {MEASURED}, {DOC} ({res['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
