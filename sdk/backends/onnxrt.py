"""onnxruntime backend (CPU execution provider)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from neuroplast.backends.base import check_batch
from neuroplast.errors import DataError, GraphError

__all__ = ["OnnxBackend"]


class OnnxBackend:
    """Run an ``.onnx`` model with onnxruntime.

    Args:
        path: the model file.
        threads: intra-op threads (1 = deterministic, predictable latency on small CPUs).
        optimize: onnxruntime graph optimization (``ORT_ENABLE_ALL`` fuses QDQ patterns
            into integer kernels such as QLinearConv).
        check: reject NaN/Inf inputs (costs one ``isfinite`` pass per call).
    """

    name = "onnxruntime"

    def __init__(
        self, path: str | os.PathLike, threads: int = 1, optimize: bool = True, check: bool = True
    ) -> None:
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise GraphError("onnxruntime is not installed: pip install 'neuroplast[onnx]'") from e
        p = Path(path)
        if not p.is_file():
            raise GraphError(f"ONNX model {str(p)!r} does not exist")
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.graph_optimization_level = (
            ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            if optimize
            else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        )
        try:
            self.session = ort.InferenceSession(str(p), so, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types
            raise GraphError(f"onnxruntime cannot load {str(p)!r}: {e}") from e
        ins = self.session.get_inputs()
        if len(ins) != 1:
            raise GraphError(f"{str(p)!r}: expected one input, got {[i.name for i in ins]}")
        self.input_name = ins[0].name
        self.input_shape = tuple(d if isinstance(d, int) else -1 for d in ins[0].shape[1:])
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.check = check
        self._run = self.session.run
        self._outs = self.output_names[:1]
        self._ndim = len(self.input_shape) + 1
        self.sample_shape = self.input_shape
        self.path = p

    @classmethod
    def from_graph(cls, graph: Any, path: str | os.PathLike, **kw: Any) -> OnnxBackend:
        """Write a quantized Graph as an ONNX QDQ model at ``path`` (needs the ``onnx``
        package) and load it; inputs and outputs are float, channels first."""
        from neuroplast.export.onnx import export_onnx_graph

        return cls(export_onnx_graph(graph, path), **kw)

    def describe(self) -> list[dict[str, Any]]:
        """One row per graph node: ``name``, ``op``, ``shape`` (first output, ``-1`` where
        free), ``dtype``, ``params`` (elements of its initializer inputs). Reads the file
        with the ``onnx`` package (onnxruntime lists no nodes); raises GraphError without
        it."""
        try:
            import onnx
        except ImportError as e:
            raise GraphError(
                "listing an ONNX model's nodes needs the onnx package: pip install onnx"
            ) from e
        m = onnx.shape_inference.infer_shapes(onnx.load(str(self.path)))
        inits = {t.name: int(np.prod(t.dims)) for t in m.graph.initializer}
        infos = {v.name: v for v in (*m.graph.value_info, *m.graph.output, *m.graph.input)}

        def shape_dtype(name: str) -> tuple[tuple[int, ...], str]:
            v = infos.get(name)
            if v is None or not v.type.HasField("tensor_type"):
                return (), ""
            tt = v.type.tensor_type
            dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tt.shape.dim)
            return dims, onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type).name

        rows = []
        for node in m.graph.node:
            out = node.output[0] if node.output else ""
            shape, dtype = shape_dtype(out)
            rows.append(
                {
                    "name": node.name or out,
                    "op": node.op_type,
                    "shape": shape,
                    "dtype": dtype,
                    "params": sum(inits.get(i, 0) for i in node.input),
                }
            )
        return rows

    def run(self, x: Any) -> np.ndarray:
        """``(B, *input_shape)`` float32 -> first output ``(B, ...)``."""
        # hot path: a float32 batch goes straight to the session
        if type(x) is not np.ndarray or x.dtype != np.float32 or x.ndim != self._ndim:
            x = check_batch(x, self.name).astype(np.float32, copy=False)
            if x.ndim == self._ndim - 1:
                x = x[None]
        elif self.check and not np.isfinite(x).all():
            raise DataError(f"{self.name}: input contains NaN or Inf")
        try:
            return self._run(self._outs, {self.input_name: x})[0]
        except Exception as e:  # onnxruntime's own exception types
            raise DataError(f"onnxruntime rejected input of shape {x.shape}: {e}") from e
