"""LiteRT (TFLite) backend: ``ai_edge_litert`` first, ``tflite_runtime`` as fallback."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from neuroplast.backends.base import check_batch, from_native, to_native
from neuroplast.errors import DataError, GraphError

__all__ = ["LiteRTBackend", "interpreter_class"]

# LiteRT's C++ runtime prints this on stderr every time a model is loaded: noise in a CLI
_XNNPACK_INFO = b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU."


@contextlib.contextmanager
def _without_native_line(noise: bytes) -> Iterator[None]:
    """Run the block with file descriptor 2 captured, then pass every captured line but
    ``noise`` on to stderr (native code writes to the descriptor, not to ``sys.stderr``)."""
    import sys
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            rest = b"".join(ln for ln in tmp.read().splitlines(keepends=True) if noise not in ln)
            if rest:
                os.write(2, rest)


def interpreter_class() -> tuple[Any, Any]:
    """``(Interpreter, OpResolverType or None)`` from ai_edge_litert or tflite_runtime."""
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        return Interpreter, OpResolverType
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter, OpResolverType

        return Interpreter, OpResolverType
    except ImportError as e:
        raise GraphError(
            "no TFLite runtime: pip install 'neuroplast[tflite]' (ai-edge-litert)"
        ) from e


class LiteRTBackend:
    """Run a ``.tflite`` model (or bytes) with the LiteRT interpreter.

    Args:
        model: a path or the flatbuffer bytes.
        threads: interpreter threads.
        reference: use the reference kernels (bit-exact fixed point, slower).
        layout: ``"native"`` (the model's own channels-last layout) or ``"neuroplast"``
            (channels-first batches in and out, like :class:`neuroplast.runtime.Runtime`).
        check: reject NaN/Inf float inputs (costs one ``isfinite`` pass per call).

    Batches are run one sample at a time through the interpreter's fixed batch-1
    tensors (what an edge device does).
    """

    name = "litert"

    def __init__(
        self,
        model: str | os.PathLike | bytes,
        threads: int = 1,
        reference: bool = False,
        layout: str = "native",
        check: bool = True,
    ) -> None:
        if layout not in ("native", "neuroplast"):
            raise GraphError(f"layout must be 'native' or 'neuroplast', got {layout!r}")
        Interpreter, Resolver = interpreter_class()
        kw: dict[str, Any] = {"num_threads": threads}
        if reference and Resolver is not None:
            kw["experimental_op_resolver_type"] = Resolver.BUILTIN_REF
        try:
            if isinstance(model, (bytes, bytearray)):
                self.interpreter = Interpreter(model_content=bytes(model), **kw)
            else:
                p = Path(model)
                if not p.is_file():
                    raise GraphError(f"TFLite model {str(p)!r} does not exist")
                self.interpreter = Interpreter(model_path=str(p), **kw)
            with _without_native_line(_XNNPACK_INFO):
                self.interpreter.allocate_tensors()
        except GraphError:
            raise
        except (ValueError, RuntimeError) as e:
            raise GraphError(f"LiteRT cannot load the model: {e}") from e
        ins = self.interpreter.get_input_details()
        if len(ins) != 1:
            raise GraphError(f"expected one model input, got {len(ins)}")
        self.layout = layout
        self._in = ins[0]
        self._out = self.interpreter.get_output_details()[0]
        self.native_shape = tuple(int(s) for s in self._in["shape"])
        self.input_dtype = np.dtype(self._in["dtype"])
        self.input_shape = self.native_shape[1:]
        self.output_quant = self._out.get("quantization", (0.0, 0))
        self._set = self.interpreter.set_tensor
        self._get = self.interpreter.get_tensor
        self._invoke = self.interpreter.invoke
        self._iidx, self._oidx = self._in["index"], self._out["index"]
        self._check = check and self.input_dtype.kind == "f"
        ns = self.native_shape
        # the batch-1 shape a neuroplast-layout caller passes (channels first)
        if len(ns) == 4 and ns[1] == 1:
            self._np_shape: tuple[int, ...] = (1, ns[3], ns[2])
        elif len(ns) == 4:
            self._np_shape = (1, ns[3], ns[1], ns[2])
        else:
            self._np_shape = ns
        self._np_perm = (0, 2, 3, 1) if len(self._np_shape) == 4 else None
        #: one sample in the caller's layout (channels first for ``layout="neuroplast"``)
        self.sample_shape = self._np_shape[1:] if layout == "neuroplast" else self.native_shape[1:]

    @classmethod
    def from_graph(cls, graph: Any, io: str = "float", **kw: Any) -> LiteRTBackend:
        """Build an int8 TFLite model from a quantized Graph in memory and load it."""
        from neuroplast.export.tflite import tflite_bytes

        kw.setdefault("layout", "neuroplast")
        return cls(tflite_bytes(graph, io=io), **kw)

    def describe(self) -> list[dict[str, Any]]:
        """One row per operator: ``name`` (its first output tensor), ``op``, ``shape``
        (output), ``dtype``, ``params`` (elements of its constant inputs: weights, biases)."""
        it = self.interpreter
        tensors = {t["index"]: t for t in it.get_tensor_details()}
        ops = it._get_ops_details()  # LiteRT's only per-operator listing
        produced = {o for op in ops for o in op["outputs"]}
        model_inputs = {t["index"] for t in it.get_input_details()}
        rows = []
        for op in ops:
            if op["op_name"] == "DELEGATE":  # the interpreter's XNNPACK partition, not the model's
                continue
            out = tensors.get(int(op["outputs"][0])) if len(op["outputs"]) else None
            consts = [
                tensors[int(i)]
                for i in op["inputs"]
                if int(i) >= 0 and int(i) not in produced and int(i) not in model_inputs
            ]
            rows.append(
                {
                    "name": out["name"] if out else op["op_name"],
                    "op": op["op_name"],
                    "shape": tuple(int(d) for d in out["shape"]) if out else (),
                    "dtype": np.dtype(out["dtype"]).name if out else "",
                    "params": int(sum(np.prod(t["shape"]) for t in consts)),
                }
            )
        return rows

    def run(self, x: Any) -> np.ndarray:
        """Run a batch ``(B, ...)`` (or one sample); returns ``(B, ...)``."""
        if (
            self.layout == "native"
            and type(x) is np.ndarray
            and x.shape == self.native_shape
            and x.dtype == self.input_dtype
        ):
            # hot path: one native sample, straight into the interpreter
            if self._check and not np.isfinite(x).all():
                raise DataError(f"{self.name}: input contains NaN or Inf")
            self._set(self._iidx, x)
            self._invoke()
            return self._get(self._oidx)
        if (
            self.layout == "neuroplast"
            and type(x) is np.ndarray
            and x.shape == self._np_shape
            and x.dtype == self.input_dtype
            and self._np_perm is not None
        ):
            # hot path: one channels-first (1, C, H, W) sample
            if self._check and not np.isfinite(x).all():
                raise DataError(f"{self.name}: input contains NaN or Inf")
            self._set(self._iidx, np.ascontiguousarray(x.transpose(self._np_perm)))
            self._invoke()
            return from_native(self._get(self._oidx))
        x = check_batch(x, self.name)
        if self.layout == "neuroplast":
            x = to_native(x if x.ndim > 1 else x[None], len(self.native_shape))
        if x.shape == self.native_shape[1:]:
            x = x[None]
        if x.shape[1:] != self.native_shape[1:]:
            raise DataError(
                f"LiteRT input has shape {x.shape}; the model takes (B, "
                f"{', '.join(map(str, self.native_shape[1:]))})"
            )
        x = x.astype(self.input_dtype, copy=False)
        outs = []
        for i in range(x.shape[0]):
            self._set(self._iidx, x[i : i + 1])
            self._invoke()
            outs.append(self._get(self._oidx))
        y = np.concatenate(outs)
        return from_native(y) if self.layout == "neuroplast" else y
