"""One runner per target: run a generated graph in the target's real engine and compare
with the neuroplast reference, or check that the refusal is the target's one line.

Comparisons (the reference is the numpy runtime in the same mode):

* ``runtime`` / ``runtime-int``: the streaming ``step()`` loop against the time-vectorised
  ``run()`` (float within 1e-5, integers bit-exact) — internal consistency only; the other
  targets are the independent references of the runtime.
* ``tflite``: LiteRT's default kernels (XNNPACK) on the int8 flatbuffer: integer codes
  bit-exact (its reference kernels round CONV twice and ADD three times: not the
  runtime's arithmetic, see neuroplast.export.tflite).
* ``onnx``: onnxruntime on the QDQ model: integer codes bit-exact (it requantizes
  Conv/Gemm/Scale in float, so a rounding tie could flip 1 LSB; none seen so far).
* ``firmware``: the C firmware on the virtual board (a real process on a pty): integer
  codes bit-exact, every step of every sample from reset.
* ``nir``: the ``.nir`` file written, read back by ``nir``, imported and run by the
  runtime: float outputs within 1e-5.
* ``cost``: the cost model evaluates without error.

A runner returns an :class:`Outcome`. Where a target refuses the graph, the runner calls
the same export path a user would and checks that it raises
:class:`~neuroplast.errors.UnsupportedError` with the matrix's first refusal, nothing else.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neuroplast.errors import NeuroplastError, UnsupportedError
from neuroplast.quant import dequantize, quantize
from neuroplast.quantize.conformance.generate import GraphCase

__all__ = ["Outcome", "ENGINES", "PEER_ENGINES", "Session", "check_refusal"]

FLOAT_TOL = 1e-5


@dataclass(frozen=True)
class Outcome:
    """``status``: ``agree`` | ``disagree`` | ``refused`` (cleanly) | ``error`` (a crash, a
    refusal of the wrong kind, or a claimed target that failed) | ``skipped`` (engine or
    its precondition missing here). ``diff``: max |difference| (LSB for integer targets)."""

    target: str
    status: str
    detail: str = ""
    diff: float = 0.0


class Session:
    """Shared, lazily started engines for a run of many graphs (one virtual board)."""

    def __init__(self) -> None:
        self._board: Any = None
        self._vb: Any = None
        self.tmp = Path(tempfile.mkdtemp(prefix="np-conformance-"))

    @property
    def board(self) -> Any:
        if self._board is None:
            from neuroplast.firmware_bridge import Board, VirtualBoard

            self._vb = VirtualBoard().start()
            self._board = Board.connect(self._vb.port, timeout=2.0)
        return self._board

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self._board is not None:
                self._board.close()
        with contextlib.suppress(Exception):
            if self._vb is not None:
                self._vb.stop()
        import shutil

        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _int_codes(case: GraphCase) -> np.ndarray:
    """The input as integer codes of the int graph's Input spec, ``(T, B, *shape)``."""
    inp = case.int_graph.nodes[case.int_graph.inputs[0]]
    return quantize(case.x, inp.quant).astype(np.int64)


def _reference(case: GraphCase, mode: str) -> np.ndarray:
    from neuroplast.runtime import Runtime

    g = case.int_graph if mode == "int" else case.float_graph
    x = _int_codes(case) if mode == "int" else case.x
    return np.asarray(Runtime(g, mode=mode).run(x))


def _compare(target: str, ref: np.ndarray, got: np.ndarray, tol: float) -> Outcome:
    if ref.shape != got.shape:
        return Outcome(target, "disagree", f"shape {got.shape} vs reference {ref.shape}")
    diff = float(np.max(np.abs(ref.astype(np.float64) - got.astype(np.float64)), initial=0.0))
    if diff <= tol:
        return Outcome(target, "agree", diff=diff)
    n = int(np.sum(np.abs(ref.astype(np.float64) - got.astype(np.float64)) > tol))
    return Outcome(target, "disagree", f"{n} of {ref.size} values differ", diff)


def _runtime(mode: str) -> Callable[[GraphCase, Session], Outcome]:
    target = "runtime-int" if mode == "int" else "runtime"

    def run(case: GraphCase, s: Session) -> Outcome:
        from neuroplast.runtime import Runtime

        g = case.int_graph if mode == "int" else case.float_graph
        x = _int_codes(case) if mode == "int" else case.x
        rt = Runtime(g, mode=mode)  # a refused graph raises here (GraphError)
        whole = np.asarray(rt.run(x))
        rt.reset()
        stepped = np.stack([np.asarray(rt.step(x[t])) for t in range(x.shape[0])])
        return _compare(target, whole, stepped, 0 if mode == "int" else FLOAT_TOL)

    return run


def _stateless_steps(case: GraphCase) -> np.ndarray:
    """Stateless graphs: every (t, b) sample is one independent input."""
    return _int_codes(case).reshape((-1,) + case.x.shape[2:])


def _tflite(case: GraphCase, s: Session) -> Outcome:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from neuroplast.export.tflite import tflite_bytes

    g = case.int_graph
    model = tflite_bytes(g, io="int8")
    it = Interpreter(model_content=model, experimental_op_resolver_type=OpResolverType.AUTO)
    it.allocate_tensors()
    i_det, o_det = it.get_input_details()[0], it.get_output_details()[0]
    in_spec = g.nodes[g.inputs[0]].quant
    out_spec = _out_spec(g)
    codes = _stateless_steps(case)
    outs = []
    for xc in codes:
        x8 = xc - (0 if in_spec.signed else 128)
        it.set_tensor(i_det["index"], _to_native(x8, len(i_det["shape"])).astype(np.int8)[None])
        it.invoke()
        y = it.get_tensor(o_det["index"])[0].astype(np.int64) + (0 if out_spec.signed else 128)
        outs.append(_from_native(y, _out_shape(g)))
    got = np.stack(outs).reshape(_reference(case, "int").shape)
    return _compare("tflite", _reference(case, "int"), got, 0)


def _onnx(case: GraphCase, s: Session) -> Outcome:
    import onnxruntime as ort

    from neuroplast.export.onnx import graph_to_onnx

    g = case.int_graph
    model = graph_to_onnx(g)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    in_spec = g.nodes[g.inputs[0]].quant
    xf = dequantize(_stateless_steps(case), in_spec)
    y = sess.run(None, {"input": xf})[0]
    got = quantize(y, _out_spec(g)).astype(np.int64)
    ref = _reference(case, "int")
    return _compare("onnx", ref, got.reshape(ref.shape), 0)


def _firmware(case: GraphCase, s: Session) -> Outcome:
    from neuroplast.firmware_bridge.image import build_image
    from neuroplast.runtime import Runtime

    rt = Runtime(case.int_graph, mode="int")
    image = build_image(rt)
    ref = _reference(case, "int")  # (T, B, *out)
    if image.in_size and len(image.data) > s.board.caps.max_model_bytes:
        return Outcome("firmware", "skipped", "image larger than the virtual board's staging")
    s.board.load(image)
    codes = _int_codes(case)
    got = np.stack([s.board.infer(codes[:, b]) for b in range(codes.shape[1])], axis=1)
    return _compare("firmware", ref, got.reshape(ref.shape), 0)


def _nir_file(case: GraphCase, s: Session) -> tuple[Any, Path]:
    """Export the float graph and read the file back with ``nir`` itself (cached per case)."""
    import nir

    from neuroplast.quantize.nir import export_nir

    path = s.tmp / f"g{case.seed}.nir"
    if not path.exists():
        export_nir(case.float_graph, path)
    return nir.read(str(path)), path


def _nir(case: GraphCase, s: Session) -> Outcome:
    """The file as any reader sees it: the plain NIR interpreter (spec semantics, no
    neuroplast metadata) on ``nir.read``'s graph, and our own importer's round trip."""
    from neuroplast.quantize.nir import read
    from neuroplast.quantize.nir_run import run_nir
    from neuroplast.runtime import Runtime

    ng, path = _nir_file(case, s)
    ref = _reference(case, "float")
    out = case.float_graph.outputs[0]
    spec = run_nir(ng, case.x, case.float_graph.dt)[out]
    o1 = _compare("nir", ref, spec.astype(np.float32), FLOAT_TOL)
    back = np.asarray(Runtime(read(path), mode="float").run(case.x))
    o2 = _compare("nir", ref, back, FLOAT_TOL)
    if o1.status != "agree":
        return Outcome("nir", o1.status, f"NIR interpreter: {o1.detail}", o1.diff)
    return o2 if o2.status != "agree" else Outcome("nir", "agree", diff=max(o1.diff, o2.diff))


def _peer(peer: str) -> Callable[[GraphCase, Session], Outcome]:
    """snnTorch / Norse importing our NIR file (delay-free version, as neither runs
    ``Delay``): identical spikes and LI membranes within 1e-5 of the NIR interpreter."""
    name = f"nir:{peer}"

    def run(case: GraphCase, s: Session) -> Outcome:
        from neuroplast.quantize.nir_run import peer_refusals, run_nir, run_peer, strip_delays

        ng, _ = _nir_file(case, s)
        g0 = strip_delays(ng)
        why = peer_refusals(g0, peer)
        if why:
            return Outcome(name, "skipped", why[0])
        dt = case.float_graph.dt
        ref = run_nir(g0, case.x, dt)
        try:
            got = run_peer(g0, case.x, dt, peer)
        except UnsupportedError as e:  # a limit of the peer's importer found while rewriting
            return Outcome(name, "skipped", str(e))
        worst = Outcome(name, "agree")
        for k, v in got.items():
            spiking = type(g0.nodes[k]).__name__ != "LI"
            o = _compare(name, ref[k], v, 0 if spiking else FLOAT_TOL)
            if o.status != "agree":
                return Outcome(name, o.status, f"node {k!r}: {o.detail}", o.diff)
            worst = Outcome(name, "agree", diff=max(worst.diff, o.diff))
        return worst

    return run


def _cost(case: GraphCase, s: Session) -> Outcome:
    from neuroplast.graph.cost import cost

    rows = cost(case.float_graph)
    return Outcome("cost", "agree", f"{sum(r.macs for r in rows)} MACs/step")


def _out_spec(g: Any) -> Any:
    from neuroplast.runtime import Runtime

    return Runtime(g, mode="int").kernels[g.outputs[0]].out_quant


def _out_shape(g: Any) -> tuple[int, ...]:
    return tuple(g.shapes()[g.outputs[0]])


def _to_native(x: np.ndarray, ndim: int) -> np.ndarray:
    """IR layout (C,H,W) / (C,L) -> TFLite's channels-last (H,W,C) / (1,L,C)."""
    if x.ndim == 3:
        return x.transpose(1, 2, 0)
    if x.ndim == 2 and ndim == 4:
        return x.T[None]
    return x


def _from_native(y: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if len(shape) == 3:
        return y.reshape(shape[1], shape[2], shape[0]).transpose(2, 0, 1)
    if len(shape) == 2:
        return y.reshape(shape[1], shape[0]).T
    return y.reshape(shape)


#: target -> (graph the target consumes: "int" | "float", runner, the user's export path
#: used to check refusals)
ENGINES: dict[str, tuple[str, Callable[[GraphCase, Session], Outcome], Callable[[Any], Any]]] = {
    "runtime": ("float", _runtime("float"), lambda g: _build(g, "float")),
    "runtime-int": ("int", _runtime("int"), lambda g: _build(g, "int")),
    "cost": ("float", _cost, lambda g: None),
    "tflite": ("int", _tflite, lambda g: _export("tflite", g)),
    "onnx": ("int", _onnx, lambda g: _export("onnx", g)),
    "firmware": ("int", _firmware, lambda g: _export_firmware(g)),
    "nir": ("float", _nir, lambda g: _export("nir", g)),
}


def _build(graph: Any, mode: str) -> Any:
    from neuroplast.runtime import Runtime

    return Runtime(graph, mode=mode)


#: Third-party peers reached through a target's output: peer -> (target that must claim
#: the graph, runner). A peer's own limits make a graph "skipped" (with the reason), not
#: a failure: the peer is not our target.
PEER_ENGINES: dict[str, tuple[str, Callable[[GraphCase, Session], Outcome]]] = {
    "nir:snntorch": ("nir", _peer("snntorch")),
    "nir:norse": ("nir", _peer("norse")),
}


def _export(fmt: str, graph: Any) -> Any:
    from neuroplast.quantize.export import export

    with tempfile.TemporaryDirectory() as d:
        return export(graph, Path(d) / f"model.{fmt}", to=fmt)


def _export_firmware(graph: Any) -> Any:
    from neuroplast.firmware_bridge.image import build_image
    from neuroplast.runtime import Runtime

    return build_image(Runtime(graph, mode="int"))


def check_refusal(target: str, graph: Any, first: Any) -> Outcome:
    """The user's path for ``target`` must fail with one line naming the refused node:
    :class:`UnsupportedError` (exporters, firmware), or the runtime's own ``GraphError``
    for the runtime targets (whose refusals come from building the kernels)."""
    _, _, path = ENGINES[target]
    want = str(first)
    try:
        path(graph)
    except NeuroplastError as e:
        msg = str(e)
        clean = "\n" not in msg and (first.node == "*" or repr(first.node) in msg)
        if isinstance(e, UnsupportedError) and not msg.startswith(want):
            clean = False
        if clean:
            return Outcome(target, "refused", msg)
        return Outcome(target, "error", f"refused with another reason: {msg} (matrix: {want})")
    except Exception as e:  # noqa: BLE001 - any other exception is the failure we report
        return Outcome(target, "error", f"{type(e).__name__} instead of a refusal: {e}")
    return Outcome(target, "error", f"the export succeeded although the matrix refuses: {want}")
