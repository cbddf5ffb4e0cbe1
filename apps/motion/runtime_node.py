"""The HD layer as a neuroplast Graph IR node (``HDDelayConv``) and its runtime op.

Importing this module registers the node kind with
:func:`neuroplast.graph.nodes.register_node` and the event-driven kernel with
:func:`neuroplast.runtime.kernels.register_op`, so graphs holding the layer
validate, round-trip through bundles and run in :class:`neuroplast.runtime.Runtime`.

Input: the event raster of one step, shape ``(2, H, W)`` (polarity, row, column),
either dense or as :class:`~neuroplast.runtime.SparseInput` with flat indices
``(p * H + y) * W + x``. Output: flip-max logits ``(C, H - ky + 1, W - kx + 1)``
(see :mod:`neuroplast.apps.motion.event_layer`). Float mode only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from neuroplast.apps.motion.event_layer import (
    EventLayerState,
    compile_taps,
    hd_event_chunk,
    init_event_state,
)
from neuroplast.errors import DataError, GraphError
from neuroplast.graph.cost import COST
from neuroplast.graph.nodes import NODE_KINDS, Node, array_field, register_node
from neuroplast.runtime.kernels import OPS, BuildContext, Kernel, SparseInput, register_op

__all__ = ["HDDelayConv", "HDDelayConvKernel", "hd_graph"]


def _register(cls):
    # idempotent: a module reload must not trip the duplicate-kind guard
    existing = NODE_KINDS.get(cls.kind)
    if existing is not None and existing.__qualname__ == cls.__qualname__:
        NODE_KINDS[cls.kind] = cls
        return cls
    return register_node(cls)


@_register
@dataclass(frozen=True, eq=False)
class HDDelayConv(Node):
    """Heterogeneous-delay layer: causal conv over (polarity, delay, y, x) with flip-max.

    ``z(c, t) = max(B[A], B[A_flipped]) + b_c``, ``B = sum W[c, p, k, dy, dx]
    A(p, t - (K_T - 1 - k), y + dy, x + dx)``. ``weight`` (C, 2, K_T, K_Y, K_X),
    ``bias`` (C,). Zero weights cost nothing at run time (events x nnz taps).
    """

    kind: ClassVar[str] = "HDDelayConv"
    stateful: ClassVar[bool] = True
    weight: np.ndarray = array_field()
    bias: np.ndarray = array_field()

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


class HDDelayConvKernel(Kernel):
    """Event-driven runtime op: state = per-batch carried delay accumulators."""

    stateful = True

    def __init__(self, node: HDDelayConv, ctx: BuildContext) -> None:
        super().__init__(node, ctx)
        if ctx.mode != "float":
            raise GraphError(f"node {ctx.name!r}: HDDelayConv runs in float mode only")
        _, h, w = ctx.in_shapes[0]
        self.hw = (h, w)
        self.params = {"weight": np.array(node.weight), "bias": np.array(node.bias)}
        self._taps_key = None
        self._taps = None

    def taps(self):
        # recompile only when plasticity or pruning changed the weights
        key = (id(self.params["weight"]), self.params["weight"].tobytes().__hash__())
        if key != self._taps_key:
            h, w = self.hw
            self._taps = compile_taps(self.params["weight"], self.params["bias"], (w, h))
            self._taps_key = key
        return self._taps

    def init_state(self, batch: int) -> tuple:
        return tuple(init_event_state(self.taps()) for _ in range(batch))

    def _columns(self, x: Any, b: int):
        h, w = self.hw
        if isinstance(x, SparseInput):
            idx = np.asarray(x.indices, dtype=np.int64)
            if x.values is not None and np.any(np.asarray(x.values) != 1):
                raise DataError("HDDelayConv takes binary events: sparse values must be 1")
        else:
            idx = np.flatnonzero(np.asarray(x[b]) != 0)
        return idx // (h * w), idx // w % h, idx % w

    def step(self, inputs: list[Any], state: tuple) -> tuple[np.ndarray, tuple]:
        taps = self.taps()
        x = inputs[0]
        outs, new = [], []
        for b, st in enumerate(state):
            p, y, xx = self._columns(x, b)
            tb = np.full(p.shape, st.t_next, dtype=np.int64)
            z, st2 = hd_event_chunk(taps, st, p, tb, y, xx, 1)
            outs.append(z[0])
            new.append(st2)
        return np.stack(outs).astype(np.float32), tuple(new)

    def run(self, inputs: list[np.ndarray], state: tuple) -> tuple[np.ndarray, tuple]:
        ys = []
        for t in range(inputs[0].shape[0]):
            y, state = self.step([inputs[0][t]], state)
            ys.append(y)
        return np.stack(ys), state


def _hd_cost(node: HDDelayConv, in_shapes: list, out_shape: tuple) -> dict:
    """Per 1 ms step with every pixel active (an upper bound; cost scales with the
    event count): each event scatters into the non-zero taps of both polarity
    orientations (flip-max), plus the readout over all output neurons. State: the
    delayed accumulators, (C, K_T, Ho, Wo) per orientation, float32."""
    c, _, kt, _, _ = node.weight.shape
    nnz = int(np.count_nonzero(node.weight))
    pixels = int(np.prod(in_shapes[0][1:]))
    outs = int(np.prod(out_shape))
    return {
        "params": int(node.weight.size + node.bias.size),
        "macs": nnz * 2 * pixels + 2 * outs,  # 2 polarities/pixel x (nnz/2 taps x 2 orientations)
        "param_bytes": 4 * (node.weight.size + node.bias.size),
        "state_bytes": 2 * 4 * kt * outs,
    }


if HDDelayConv not in OPS:
    register_op(HDDelayConv)(HDDelayConvKernel)
    COST.register(HDDelayConv)(_hd_cost)


def hd_graph(weight: np.ndarray, bias: np.ndarray, sensor_size: tuple[int, int]):
    """A two-node graph ``events (2, H, W) -> hd (C, Ho, Wo)`` with dt = 1 ms."""
    from neuroplast.graph import Graph
    from neuroplast.graph.nodes import Input

    w, h = sensor_size
    return Graph.sequential(
        [("events", Input(shape=(2, h, w))), ("hd", HDDelayConv(weight=weight, bias=bias))],
        dt=1e-3,
    )


_ = EventLayerState  # re-exported type of the per-batch state
