"""The HD layer as a neuroplast Graph IR node (``HDDelayConv``) and its runtime op.

Importing this module (``neuroplast.apps.motion`` does) registers the node kind with
:func:`neuroplast.graph.nodes.register_node` and the event-driven kernel with
:func:`neuroplast.runtime.kernels.register_op`, so graphs holding the layer
validate, round-trip through bundles and run in :class:`neuroplast.runtime.Runtime`.
Both registrations are idempotent (a re-import keeps one entry).

Input: the event raster of one step, shape ``(2, H, W)`` (polarity, row, column),
either dense or as :class:`~neuroplast.runtime.SparseInput` with flat indices
``(p * H + y) * W + x``. Output: flip-max logits ``(C, H - ky + 1, W - kx + 1)``
(see :mod:`neuroplast.apps.motion.event_layer`).

Integer mode (``weight_q``, ``out_q`` set; events are 0/1 codes of scale 1)::

    K_q = round(K / s_w[c])                      int8, symmetric (narrow) per class or tensor
    B_p(c, t, y, x) = sum K_q A_p                int16 / int32 (exact), p = direct / flipped input
    acc = max(B_0, B_1) + round(b_c / s_w[c])    int32 bias on the accumulator grid
    z_q = clamp(requantize(acc, M_c) + zp_out)   M_c = s_w[c] / s_out, LiteRT single rounding

:func:`neuroplast.quant.requantize` is the one fixed-point rule; the QAT model of
:mod:`neuroplast.apps.motion.qat` computes the same codes with a dense conv3d.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from neuroplast.apps.motion.event_layer import (
    INT32_MAX,
    EventLayerState,
    SlotWindow,
    compile_int_taps,
    compile_taps,
    fast_backend,
    hd_event_chunk,
    hd_event_chunk_int,
    hd_event_chunk_int_pull,
    hd_pull_step_cost,
    hd_step_cost,
    init_event_state,
    init_int_pull_state,
    init_int_state,
    warm_int_pull,
)
from neuroplast.errors import DataError, GraphError
from neuroplast.graph.cost import COST
from neuroplast.graph.nodes import Node, array_field, quant_field, register_node
from neuroplast.quant import QuantSpec, quantize, quantize_multiplier, requantize
from neuroplast.runtime.kernels import BuildContext, Kernel, SparseInput, register_op

__all__ = ["HDDelayConv", "HDDelayConvKernel", "hd_graph", "int_pull_path", "EVENT_Q"]

#: Events in integer mode: 0/1 codes of scale 1.
EVENT_Q = QuantSpec(bits=8, scale=1.0, zero_point=0)


def int_pull_path(mode: str, backend: str) -> bool:
    """Whether the runtime op runs the integer pull path
    (:func:`~neuroplast.apps.motion.event_layer.hd_event_chunk_int_pull`) in ``mode``
    (``"int"`` / ``"float"``) on the op's ``backend`` (``"native"``, ``"numba"``,
    ``"numpy"``): integer mode with the compiled extension; every other case scatters."""
    return mode != "float" and backend == "native"


@register_node
@dataclass(frozen=True, eq=False)
class HDDelayConv(Node):
    """Heterogeneous-delay layer: causal conv over (polarity, delay, y, x) with flip-max.

    ``z(c, t) = max(B[A], B[A_flipped]) + b_c``, ``B = sum W[c, p, k, dy, dx]
    A(p, t - (K_T - 1 - k), y + dy, x + dx)``. ``weight`` (C, 2, K_T, K_Y, K_X),
    ``bias`` (C,). Zero weights cost nothing at run time (events x nnz taps).
    ``weight_q`` / ``out_q``: integer mode (module docstring).
    """

    kind: ClassVar[str] = "HDDelayConv"
    stateful: ClassVar[bool] = True
    weight: np.ndarray = array_field()
    bias: np.ndarray = array_field()
    weight_q: QuantSpec | None = quant_field()
    out_q: QuantSpec | None = quant_field()

    def check(self) -> None:
        if self.weight.ndim != 5 or self.weight.shape[1] != 2:
            raise GraphError(
                f"HDDelayConv: weight must be (C, 2, K_T, K_Y, K_X), got {self.weight.shape}"
            )
        if self.bias.shape != (self.weight.shape[0],):
            raise GraphError(
                f"HDDelayConv: bias must be ({self.weight.shape[0]},), got {self.bias.shape}"
            )

    def out_shape(self, in_shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
        s = in_shapes[0]
        _, _, _, ky, kx = self.weight.shape
        if len(s) != 3 or s[0] != 2 or s[1] < ky or s[2] < kx:
            raise GraphError(f"HDDelayConv needs input (2, H>={ky}, W>={kx}), got {s}")
        return (self.weight.shape[0], s[1] - ky + 1, s[2] - kx + 1)


@register_op(HDDelayConv)
class HDDelayConvKernel(Kernel):
    """Event-driven runtime op: state = per-batch carried delay accumulators.

    Float mode: ``params`` = float weight and bias. Integer mode: int8 weight codes
    and int32 bias codes (what plasticity would update); the accumulators are integer
    sums (:func:`~neuroplast.apps.motion.event_layer.hd_event_chunk_int`: int16 when the
    kernel's bound ``max_c sum |K_q[c]|`` times the events per voxel stays below 2^15,
    else int32; a kernel whose bound exceeds 2^31 - 1 is refused at build), by the same
    backend as float mode (``fast_backend()``; numpy when the runtime was built with
    ``backend="numpy"``): ``"native"`` takes the integer pull path
    (:func:`~neuroplast.apps.motion.event_layer.hd_event_chunk_int_pull`, state = the
    pixels of the last ``K_T - 1`` ms), numba / numpy the scatter; the same integers."""

    stateful = True

    def __init__(self, node: HDDelayConv, ctx: BuildContext) -> None:
        super().__init__(node, ctx)
        _, h, w = ctx.in_shapes[0]
        self.hw = (h, w)
        # the runtime's backend="numpy" asks for the reference loops everywhere
        self.backend = "numpy" if ctx.backend == "numpy" else fast_backend()
        self._taps_key = None
        self._taps = None
        if ctx.mode == "float":
            self.params = {"weight": np.array(node.weight), "bias": np.array(node.bias)}
            self.out_quant = None
            return
        wq, oq, iq = node.weight_q, node.out_q, ctx.in_quants[0]
        if wq is None or oq is None:
            raise GraphError(
                f"node {ctx.name!r}: HDDelayConv in integer mode needs weight_q and out_q "
                "(quantize the kernel with neuroplast.apps.motion.qat)"
            )
        if iq is None or float(np.ravel(iq.scale)[0]) != 1.0 or np.any(np.ravel(iq.zero_point)):
            raise GraphError(f"node {ctx.name!r}: HDDelayConv takes 0/1 events (scale 1, zp 0)")
        if np.any(np.ravel(wq.zero_point)) or (wq.per_channel and wq.axis != 0):
            raise GraphError(f"node {ctx.name!r}: weights must be symmetric, per class (axis 0)")
        if oq.per_channel:
            raise GraphError(f"node {ctx.name!r}: out_q must be per tensor")
        c = node.weight.shape[0]
        s_w = np.broadcast_to(np.asarray(wq.scale, np.float32).ravel(), (c,))
        codes = quantize(node.weight, wq)
        reach = np.abs(codes.astype(np.int64)).reshape(c, -1).sum(axis=1).max()
        if reach > INT32_MAX:
            raise GraphError(f"node {ctx.name!r}: accumulators may reach {reach} > 2^31 - 1")
        bias_q = QuantSpec(bits=32, scale=tuple(float(v) for v in s_w), axis=0)
        self.params = {
            "weight": codes,
            "bias": quantize(node.bias, bias_q).astype(np.int64),
        }
        s_out = np.float64(np.float32(np.ravel(oq.scale)[0]))
        qm, shift = quantize_multiplier(s_w.astype(np.float64) / s_out)
        # int64 (C,): what the pull path takes, built once instead of every step
        self.qm, self.shift = (np.ascontiguousarray(v, np.int64).reshape(c) for v in (qm, shift))
        self.zp_out = int(np.ravel(oq.zero_point)[0])
        self.out_min, self.out_max = oq.range
        self.out_quant = oq

    def taps(self):
        """The compiled tap tables of the current parameters, recompiled only when they
        changed: plasticity, pruning and ``load_state`` write ``params`` in place, a
        caller may also replace an array. The tables hold the arrays they were built
        from and a byte snapshot of the weight (float mode: and of the bias, which
        :func:`compile_taps` folds in); each step checks the live arrays' identity and
        compares their bytes with the snapshot (``memcmp``, exact: no hash that could
        collide; ~20 us for the 437 kB int8 codes of the bench kernel against ~0.15 ms
        for hashing them)."""
        p = self.params
        wt = p["weight"]
        bias = p["bias"] if self.ctx.mode == "float" else None
        src = self._taps_key
        if (src is None or src[0] is not wt or src[1] is not bias or wt.tobytes() != src[2]
                or (bias is not None and bias.tobytes() != src[3])):  # fmt: skip
            h, w = self.hw
            if self.ctx.mode == "float":
                self._taps = compile_taps(wt.astype(np.float32), bias, (w, h))
            else:
                self._taps = compile_int_taps(wt.astype(np.int8), (w, h))
            self._taps_key = (wt, bias, wt.tobytes(), None if bias is None else bias.tobytes())
        return self._taps

    def _pull(self) -> bool:
        """Integer mode through the integer pull path (``backend == "native"``): each step's
        codes from the pixels of its last ``K_T`` ms (the same integers as the scatter)."""
        return int_pull_path(self.ctx.mode, self.backend)

    def init_state(self, batch: int) -> tuple:
        if self._pull():  # compile the tables now, as the scatter's state does
            warm_int_pull(self.taps())
            return tuple(init_int_pull_state() for _ in range(batch))
        init = init_event_state if self.ctx.mode == "float" else init_int_state
        # the scatter's slots, reused step to step (a state the windows did not hand out
        # is copied in): the carried state is updated in place, as the native plan's
        # neuron states are; copy it to keep it
        self._windows = [SlotWindow() for _ in range(batch)]
        return tuple(init(self.taps()) for _ in range(batch))

    def _window(self, b: int) -> SlotWindow:
        ws = self.__dict__.setdefault("_windows", [])
        while len(ws) <= b:
            ws.append(SlotWindow())
        return ws[b]

    def _columns(self, x: Any, b: int):
        h, w = self.hw
        if isinstance(x, SparseInput):
            idx = np.asarray(x.indices, dtype=np.int64)
            if x.values is not None and np.any(np.asarray(x.values) != 1):
                raise DataError("HDDelayConv takes binary events: sparse values must be 1")
        else:
            idx = np.flatnonzero(np.asarray(x[b]) != 0)
        return idx // (h * w), idx // w % h, idx % w

    def _requant(self, acc: np.ndarray) -> np.ndarray:
        """Integer accumulators ``max(B_0, B_1)`` (C, Ho, Wo) + bias -> output codes."""
        acc = acc.astype(np.int64) + self.params["bias"][:, None, None]
        y = requantize(acc, self.qm[:, None, None], self.shift[:, None, None]) + self.zp_out
        return np.clip(y, self.out_min, self.out_max).astype(self.out_quant.dtype)

    def step(self, inputs: list[Any], state: tuple) -> tuple[np.ndarray, tuple]:
        taps = self.taps()
        x = inputs[0]
        outs, new = [], []
        pull = self._pull()
        for b, st in enumerate(state):
            p, y, xx = self._columns(x, b)
            tb = np.full(p.shape, st.t_next, dtype=np.int64)
            if self.ctx.mode == "float":
                z, st2 = hd_event_chunk(taps, st, p, tb, y, xx, 1, self.backend,
                                        window=self._window(b))  # fmt: skip
                outs.append(z[0])
            elif pull:
                z, _, st2 = hd_event_chunk_int_pull(
                    taps, st, p, tb, y, xx, 1, self.params["bias"], self.qm, self.shift,
                    self.zp_out, (self.out_min, self.out_max),
                )  # fmt: skip
                outs.append(z[0].astype(self.out_quant.dtype, copy=False))
            else:
                z, st2 = hd_event_chunk_int(taps, st, p, tb, y, xx, 1, self.backend,
                                            window=self._window(b))  # fmt: skip
                outs.append(self._requant(z[0]))
            new.append(st2)
        out = outs[0][None] if len(outs) == 1 else np.stack(outs)
        if self.ctx.mode == "float":
            out = out.astype(np.float32, copy=False)
        return out, tuple(new)

    def run(self, inputs: list[np.ndarray], state: tuple) -> tuple[np.ndarray, tuple]:
        ys = []
        for t in range(inputs[0].shape[0]):
            y, state = self.step([inputs[0][t]], state)
            ys.append(y)
        return np.stack(ys), state


@COST.register(HDDelayConv)
def _hd_cost(node: HDDelayConv, in_shapes: list, out_shape: tuple) -> dict:
    """Per 1 ms step, split as the runtime op (:class:`HDDelayConvKernel`) does the work.

    The scatter (float mode on every backend; integer mode on numba / numpy;
    :func:`~neuroplast.apps.motion.event_layer.hd_step_cost`), the top-level figures:

    - ``event_macs = taps x 2 H W`` tap updates: every event scatters ``taps`` updates
      (float: ``nnz(W)``, both flip branches; integer, when ``weight_q`` is set: the taps of
      the int form the kernel compiles), at 100% activity ``2 H W`` events (both polarities
      of every pixel); :func:`neuroplast.graph.cost.cost` scales it by the input rate.
    - ``macs`` (dense, every step): the readout over the ``C Ho Wo`` outputs, ``max(B_0,
      B_1)`` and the bias (2 per output), plus the requantization's multiply-shift and
      clamp in integer mode (4 per output).
    - ``step_bytes``: the time-slot buffer zeroed and the carried slots copied each step.
    - state: the carried ``K_T - 1`` slots of the padded accumulator buffer (float32, or
      the integer accumulators' width).

    The integer pull path (integer mode on the native backend, :func:`int_pull_path`;
    :func:`~neuroplast.apps.motion.event_layer.hd_pull_step_cost`), the ``"native"``
    figures (``cost(graph, backend="native")`` takes them over the ones above), with
    ``event_unit = "chunks"`` (charged at the profile's ``int_event_chunks_per_s``):

    - ``event_macs = chunks x H W`` row-chunk updates: ``chunks`` those of one OFF and
      one ON event over their ``K_T`` steps in the window (each delay's chunks once; an
      interior event alone in its pixel and ms: the upper bound, border events reach
      fewer rows), at 100% activity ``H W`` such pairs per step.
    - ``macs = 4 C Ho Wo``: the requantizing read-out (max of the halves, bias,
      multiply-shift, clamp), upper bound: every output row reached.
    - ``step_bytes``: the chunk tables re-laid per call and the planes zeroed (all rows).
    - ``state_bytes = pixel_bytes x (K_T - 1) H W``: the carried pixels of the last
      ``K_T - 1`` ms, at most ``H W`` per ms (both polarities of a pixel share one entry;
      ``pixel_bytes`` = 40: five int64).
    """
    _, h, w = in_shapes[0]
    outs = int(np.prod(out_shape))
    codes = quantize(node.weight, node.weight_q) if node.weight_q is not None else None
    work = hd_step_cost(node.weight, (w, h), codes)
    out = {
        "params": int(node.weight.size + node.bias.size),
        "event_macs": work["taps"] * 2 * h * w,
        "macs": (2 if codes is None else 4) * outs,
        "step_bytes": work["step_bytes"],
        "param_bytes": 4 * (node.weight.size + node.bias.size),
        "state_bytes": work["state_bytes"],
    }
    if int_pull_path("float" if codes is None else "int", "native"):

        def native() -> dict:  # compiles the pull tables: only when the backend is asked for
            pull = hd_pull_step_cost(compile_int_taps(codes.astype(np.int8), (w, h)))
            return {
                "event_macs": pull["chunks"] * h * w,
                "event_unit": "chunks",
                "macs": 4 * pull["readout"],
                "step_bytes": pull["step_bytes"],
                "state_bytes": pull["pixel_bytes"] * (node.weight.shape[2] - 1) * h * w,
            }

        out["native"] = native
    return out


def hd_graph(
    weight: np.ndarray,
    bias: np.ndarray,
    sensor_size: tuple[int, int],
    weight_q: QuantSpec | None = None,
    out_q: QuantSpec | None = None,
    pooled: bool = False,
):
    """The graph ``events (2, H, W) -> hd (C, Ho, Wo)`` with dt = 1 ms; ``pooled`` adds
    the per-step class evidence ``evidence (C,)``: the sum of ``z`` over the output grid
    (``SumPool2d`` + ``Flatten``; integer mode keeps int32 at the scale of ``out_q``).
    ``weight_q`` / ``out_q`` make it runnable in integer mode (events quantized with
    :data:`EVENT_Q`)."""
    from neuroplast.graph import Graph
    from neuroplast.graph.nodes import Flatten, Input, SumPool2d

    w, h = sensor_size
    nodes = [
        ("events", Input(shape=(2, h, w), quant=EVENT_Q if weight_q is not None else None)),
        ("hd", HDDelayConv(weight=weight, bias=bias, weight_q=weight_q, out_q=out_q)),
    ]
    if pooled:
        ho, wo = h - weight.shape[3] + 1, w - weight.shape[4] + 1
        nodes += [
            ("pool", SumPool2d(kernel=(ho, wo), stride=(ho, wo))),
            ("evidence", Flatten()),
        ]
    return Graph.sequential(nodes, dt=1e-3)


_ = EventLayerState  # re-exported type of the per-batch state
