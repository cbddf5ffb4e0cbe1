"""Non-spiking reference model, the vehicle for the ONNX and TFLite exports.

Standard runtimes (onnxruntime, LiteRT) have no spiking neurons or per-synapse delay
ring buffers, so the KWS app exports a non-spiking reference variant to them: an int8
MLP on the same spike rasters pooled into ``n_bins`` time bins::

    z = counts of each input channel in each of n_bins bins   (n_bins * C features)
    y = W2 relu(W1 z + b1) + b2                               (class logits)

It is built as a float ``torch.nn.Sequential`` and turned into a Brevitas QAT model
with :func:`neuroplast.quantize.prepare` (8-bit weights and activations), lowered with
:func:`neuroplast.quantize.lower`, and exported with the toolchain's
``export_onnx`` / ``export_tflite``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neuroplast.errors import DataError

__all__ = ["RefConfig", "pool_counts", "train_reference", "export_reference"]


@dataclass(frozen=True)
class RefConfig:
    """Reference MLP shape and training settings."""

    n_bins: int = 10
    hidden: int = 128
    epochs: int = 15
    lr: float = 2e-3
    batch_size: int = 64
    seed: int = 0


def pool_counts(X: np.ndarray, n_bins: int) -> np.ndarray:
    """``(N, T, C)`` spikes -> ``(N, n_bins * C)`` float32 counts per time bin."""
    X = np.asarray(X, np.float32)
    if X.ndim != 3 or X.shape[1] < n_bins:
        raise DataError(f"need (N, T >= {n_bins}, C) spike rasters, got {X.shape}")
    edges = np.linspace(0, X.shape[1], n_bins + 1).astype(int)
    return np.concatenate([X[:, a:b].sum(1) for a, b in zip(edges[:-1], edges[1:])], axis=1)


def train_reference(Xtr, ytr, Xva, yva, cfg: RefConfig = RefConfig(), n_classes: int = 12):  # noqa: ANN001, ANN201
    """Train the QAT reference MLP; returns ``(qat_model, val_acc)`` at the best val epoch."""
    import copy

    import torch

    from neuroplast.quantize.qat import prepare

    torch.manual_seed(cfg.seed)
    Ztr = torch.from_numpy(pool_counts(Xtr, cfg.n_bins))
    Zva = torch.from_numpy(pool_counts(Xva, cfg.n_bins))
    ytr_t = torch.from_numpy(np.asarray(ytr, np.int64))
    float_model = torch.nn.Sequential(
        torch.nn.Linear(Ztr.shape[1], cfg.hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(cfg.hidden, n_classes),
    )
    qat = prepare(float_model, weight_bits=8, act_bits=8, per_channel=True, spike_input=False)
    opt = torch.optim.Adam(qat.parameters(), lr=cfg.lr, weight_decay=1e-4)
    loss_fn = torch.nn.CrossEntropyLoss()
    rng = np.random.default_rng(cfg.seed)
    best, best_acc = None, -1.0
    for _ in range(cfg.epochs):
        qat.train()
        order = rng.permutation(len(Ztr))
        for i in range(0, len(order), cfg.batch_size):
            idx = torch.from_numpy(order[i : i + cfg.batch_size])
            loss = loss_fn(qat(Ztr[idx]), ytr_t[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        qat.eval()
        with torch.no_grad():
            acc = float((qat(Zva).argmax(1).numpy() == np.asarray(yva)).mean())
        if acc > best_acc:
            best, best_acc = copy.deepcopy(qat.state_dict()), acc
    qat.load_state_dict(best)
    qat.eval()
    return qat, best_acc


def export_reference(qat, Z_example: np.ndarray, out_dir: str | Path) -> dict:  # noqa: ANN001
    """Export the reference model to ONNX (QCDQ) and TFLite (int8) and verify both.

    ONNX is checked against the Brevitas model in onnxruntime, TFLite against the
    neuroplast integer runtime in LiteRT. Returns paths and the agreement numbers.
    Formats whose runtime is not installed are reported as skipped.
    """
    import torch

    from neuroplast.export.tflite import export_tflite
    from neuroplast.quantize.lower import lower
    from neuroplast.quantize.onnx_export import export_onnx
    from neuroplast.runtime import Runtime

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    Z = np.asarray(Z_example, np.float32)
    res: dict = {}
    with torch.no_grad():
        ref = qat(torch.from_numpy(Z)).numpy()
    graph = lower(qat, torch.from_numpy(Z[:1]))
    rt = Runtime(graph, mode="int")
    q_in = graph.nodes["input"].quant
    from neuroplast.quant import dequantize, quantize

    y_int = rt.run(quantize(Z, q_in)[None])[0]  # one time step, batch N
    y_np = np.asarray(dequantize(y_int, rt.kernels[graph.outputs[0]].out_quant), np.float32)
    res["runtime_int_vs_brevitas_max_abs"] = float(np.abs(y_np - ref).max())
    res["runtime_int_argmax_agree"] = float((y_np.argmax(1) == ref.argmax(1)).mean())
    onnx_path = export_onnx(qat, torch.from_numpy(Z[:1]), out_dir / "kws_reference.onnx")
    res["onnx"] = str(onnx_path)
    try:
        import onnxruntime as ort

        sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        y_ort = sess.run(None, {sess.get_inputs()[0].name: Z})[0]
        res["onnx_vs_brevitas_max_abs"] = float(np.abs(y_ort - ref).max())
        res["onnx_argmax_agree"] = float((y_ort.argmax(1) == ref.argmax(1)).mean())
    except ImportError:
        res["onnx_check"] = "skipped: onnxruntime not installed"
    tfl_path = export_tflite(graph, out_dir / "kws_reference.tflite", io="int8")
    res["tflite"] = str(tfl_path)
    try:
        from ai_edge_litert.interpreter import Interpreter

        it = Interpreter(model_path=str(tfl_path))
        inp, outp = it.get_input_details()[0], it.get_output_details()[0]
        it.resize_tensor_input(inp["index"], [len(Z), Z.shape[1]])
        it.allocate_tensors()
        it.set_tensor(inp["index"], quantize(Z, q_in).astype(np.int8))
        it.invoke()
        y_tfl = it.get_tensor(outp["index"]).astype(np.int64)
        diff = np.abs(y_tfl - np.asarray(y_int, np.int64))
        res["tflite_vs_runtime_max_lsb"] = int(diff.max())
        res["tflite_argmax_agree"] = float((y_tfl.argmax(1) == np.asarray(y_int).argmax(1)).mean())
    except ImportError:
        res["tflite_check"] = "skipped: ai-edge-litert not installed"
    return res
