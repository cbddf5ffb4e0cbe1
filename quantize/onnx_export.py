"""ONNX export: Brevitas QCDQ (QuantizeLinear / Clip / DequantizeLinear) graphs.

The Brevitas model is exported through the TorchScript path (``dynamo=False``; the
dynamo path rejects quantized biases and leaves initializers as graph inputs), then
cleaned: initializers are removed from the graph inputs, the input/output get stable
names (``input``/``output``), the batch dimension is symbolic, and the model passes
``onnx.checker``. onnxruntime runs the result in float and matches the Brevitas model
(it fuses the QDQ pattern into ``QLinearConv``/``QGemm`` at ``ORT_ENABLE_EXTENDED``).
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

from neuroplast.errors import ExportError

__all__ = ["export_onnx", "clean_onnx", "export_float_onnx", "CLEANUP_PASSES"]

OPSET = 17
# structure-only onnxoptimizer passes: they never change a value, only drop dead weight
CLEANUP_PASSES = [
    "eliminate_identity",
    "eliminate_deadend",
    "eliminate_unused_initializer",
    "eliminate_duplicate_initializer",
    "eliminate_nop_dropout",
]


def clean_onnx(model: Any) -> Any:
    """Drop initializers from ``graph.input``, run :data:`CLEANUP_PASSES` (onnxoptimizer,
    when installed), rename the single input/output to ``input``/``output`` and check
    the model. Returns the cleaned ``ModelProto``."""
    import onnx

    g = model.graph
    inits = {i.name for i in g.initializer}
    keep = [i for i in g.input if i.name not in inits]
    del g.input[:]
    g.input.extend(keep)
    try:
        import onnxoptimizer
    except ImportError:  # optional: the export is valid without the cleanup
        onnxoptimizer = None
    if onnxoptimizer is not None:
        model = onnxoptimizer.optimize(model, CLEANUP_PASSES)
        g = model.graph
    renames: dict[str, str] = {}
    if len(g.input) == 1:
        renames[g.input[0].name] = "input"
    if len(g.output) == 1:
        renames[g.output[0].name] = "output"
    for old, new in renames.items():
        if old == new:
            continue
        for v in list(g.input) + list(g.output):
            if v.name == old:
                v.name = new
        for n in g.node:
            for k, name in enumerate(n.input):
                if name == old:
                    n.input[k] = new
            for k, name in enumerate(n.output):
                if name == old:
                    n.output[k] = new
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as e:
        raise ExportError(f"exported ONNX model failed onnx.checker: {e}") from e
    return model


def _dynamic_batch(model: Any) -> None:
    for v in list(model.graph.input) + list(model.graph.output):
        dims = v.type.tensor_type.shape.dim
        if len(dims):
            dims[0].ClearField("dim_value")
            dims[0].dim_param = "batch"


def export_onnx(qat_model: Any, example_input: Any, path: str | os.PathLike) -> Path:
    """Export a Brevitas QAT model as a QCDQ ONNX file.

    Args:
        qat_model: a model from :func:`neuroplast.quantize.prepare` (or any Brevitas
            model whose layers export to QCDQ).
        example_input: a tensor with the model's input shape (batch first).
        path: output ``.onnx`` file.

    Returns:
        the written path.

    Raises:
        ExportError: if Brevitas/torch cannot trace the model or the result is invalid.
    """
    import onnx
    import torch
    from brevitas.export import export_onnx_qcdq

    path = Path(path)
    was_training = qat_model.training
    qat_model.eval()
    try:
        with tempfile.TemporaryDirectory() as td, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tmp = Path(td) / "model.onnx"
            with torch.no_grad():
                export_onnx_qcdq(
                    qat_model,
                    torch.as_tensor(example_input),
                    export_path=str(tmp),
                    opset_version=OPSET,
                    dynamo=False,
                )
            model = onnx.load(str(tmp))
    except ExportError:
        raise
    except Exception as e:  # torch/brevitas raise many types while tracing
        raise ExportError(f"Brevitas QCDQ export failed: {type(e).__name__}: {e}") from e
    finally:
        qat_model.train(was_training)
    _dynamic_batch(model)
    model = clean_onnx(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def export_float_onnx(model: Any, example_input: Any, path: str | os.PathLike) -> Path:
    """Export a plain float torch model (the fp32 baseline for size comparisons)."""
    import onnx
    import torch

    path = Path(path)
    model.eval()
    with tempfile.TemporaryDirectory() as td, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tmp = Path(td) / "model.onnx"
        with torch.no_grad():
            torch.onnx.export(
                model,
                (torch.as_tensor(example_input),),
                str(tmp),
                opset_version=OPSET,
                dynamo=False,
            )
        m = clean_onnx(onnx.load(str(tmp)))
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(m, str(path))
    return path
