"""Model image: the compact little-endian binary a board loads (PROTOCOL.md §5).

A microcontroller cannot read npz or JSON, so the host flattens an integer-mode
:class:`neuroplast.runtime.Runtime` into a chain of layer records whose numbers are
taken *from the runtime's own kernels* (int8 weights, int32 bias, per-channel
requantization multiplier/shift, zero points, Q15 decays, thresholds in membrane
units). The firmware therefore computes with exactly the integers the host runtime
computes with, and its outputs are bit-identical.

Supported chain: ``Input -> {Linear, Conv1d, DelayLinear, LIF, IF, LI, Delay, Flatten}*``.
``Flatten`` is free (C-order memory is already flat). Anything else raises
:class:`ModelImageError` naming the node.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from neuroplast.firmware_bridge import spec
from neuroplast.firmware_bridge.errors import ModelImageError

__all__ = ["ModelImage", "LayerInfo", "image_from_runtime", "image_from_bundle", "build_image"]

_I32 = (-(1 << 31), (1 << 31) - 1)


@dataclass(frozen=True)
class LayerInfo:
    """One layer of an image: its node name in the graph, kind, sizes, weight shape."""

    name: str
    kind: int
    in_n: int
    out_n: int
    weight_shape: tuple[int, ...] | None = None


@dataclass(frozen=True)
class ModelImage:
    """An encoded model image plus what the host needs to talk about it.

    ``data``: the bytes sent with LOAD_BUNDLE; ``in_shape``/``out_shape``: per-step
    tensor shapes; ``out_bytes``: 1 (int8 codes/spikes) or 4 (int32) per output
    element on the wire; ``input_quant``: the Input node's QuantSpec (to quantize float
    input on the host); ``layers``: the layer list (index = board layer number).
    """

    data: bytes
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    out_bytes: int
    layers: tuple[LayerInfo, ...]
    input_quant: Any = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def in_size(self) -> int:
        return int(np.prod(self.in_shape))

    @property
    def out_size(self) -> int:
        return int(np.prod(self.out_shape))

    def layer_index(self, layer: int | str) -> int:
        """Board layer number of ``layer`` (an index or a graph node name)."""
        if isinstance(layer, (int, np.integer)):
            if not 0 <= int(layer) < len(self.layers):
                raise ModelImageError(f"layer {layer} outside 0..{len(self.layers) - 1}")
            return int(layer)
        for i, info in enumerate(self.layers):
            if info.name == layer:
                return i
        names = [info.name for info in self.layers]
        raise ModelImageError(f"no layer named {layer!r} in the image (layers: {names})")


def _i32_array(name: str, what: str, a: Any, n: int) -> np.ndarray:
    arr = np.broadcast_to(np.asarray(a, dtype=np.int64).ravel() if np.size(a) > 1 else a, (n,))
    arr = np.asarray(arr, dtype=np.int64)
    if arr.size and (arr.min() < _I32[0] or arr.max() > _I32[1]):
        raise ModelImageError(f"node {name!r}: {what} does not fit in int32 (firmware limit)")
    return arr.astype("<i4")


def _full(a: Any, shape: tuple[int, ...]) -> np.ndarray:
    """Per-neuron / per-channel / scalar parameter -> one value per element (C order)."""
    a = np.asarray(a)
    if a.size == 1:
        return np.full(int(np.prod(shape)), a.reshape(()).item(), dtype=np.int64)
    if a.size == int(np.prod(shape)):
        return a.reshape(-1).astype(np.int64)
    # per-channel (C,) against (C, ...): repeat along the remaining axes
    return np.broadcast_to(a.reshape((a.size,) + (1,) * (len(shape) - 1)), shape).reshape(-1)


def _affine_head(name: str, k: Any, in_q: Any, fan_in: int) -> bytes:
    """zp_in, zp_out, out_min, out_max; also checks the accumulator stays in int32."""
    lo, hi = in_q.range
    dev = max(hi - k.zp_in, k.zp_in - lo)
    bias = k.params.get("bias")
    bmax = 0 if bias is None else int(np.abs(np.asarray(bias, np.int64)).max(initial=0))
    # worst case over any int8 weights (learning may move them anywhere in range)
    if bmax + 128 * fan_in * dev > _I32[1]:
        raise ModelImageError(
            f"node {name!r}: the accumulator could exceed int32 (fan-in {fan_in}, input "
            f"range {lo}..{hi}); the firmware saturates there, so the image is refused"
        )
    return struct.pack("<iiii", k.zp_in, k.zp_out, k.out_min, k.out_max)


def _affine_arrays(name: str, k: Any, n_out: int) -> bytes:
    w = np.asarray(k.params["weight"])
    if w.dtype.kind not in "iu" or w.min(initial=0) < -128 or w.max(initial=0) > 127:
        raise ModelImageError(f"node {name!r}: weights must be int8 codes (got {w.dtype})")
    bias = k.params.get("bias")
    b = np.zeros(n_out, np.int64) if bias is None else bias
    return (
        w.astype("<i1").tobytes()
        + _i32_array(name, "bias", b, n_out).tobytes()
        + _i32_array(name, "requantization multiplier", k.qm, n_out).tobytes()
        + np.asarray(k.shift, np.int64).astype("<i1").tobytes()
    )


def _layer(kind: int, body: bytes) -> bytes:
    return struct.pack("<BBHI", kind, 0, 0, len(body)) + body


def build_image(rt: Any) -> ModelImage:
    """Encode an integer-mode Runtime's graph as a board image (see module docstring)."""
    from neuroplast.graph.nodes import (
        IF,
        LI,
        LIF,
        Conv1d,
        CubaLIF,
        Delay,
        DelayLinear,
        Flatten,
        Linear,
    )
    from neuroplast.graph.nodes import Input as InputNode

    if getattr(rt, "mode", None) != "int":
        raise ModelImageError("a board runs the integer runtime: build the image from mode='int'")
    g = rt.graph
    if len(g.inputs) != 1 or len(g.outputs) != 1:
        raise ModelImageError(
            f"a board model needs one input and one output (has {list(g.inputs)} -> {list(g.outputs)})"
        )
    order = rt.order
    for name in order:
        succ = g.successors(name)
        if len(rt.preds[name]) > 1 or len(succ) > 1:
            raise ModelImageError(f"node {name!r}: the firmware runs chains only (no branches)")
    if order[0] != g.inputs[0] or order[-1] != g.outputs[0]:
        raise ModelImageError("graph is not a single chain from its input to its output")
    inp = g.nodes[order[0]]
    in_shape = tuple(rt.shapes[order[0]])
    in_q = rt.kernels[order[0]].out_quant
    if in_q is not None and (in_q.range[0] < -128 or in_q.range[1] > 127):
        raise ModelImageError(
            f"input {order[0]!r}: board inputs are int8 codes, but the input is quantized to "
            f"{in_q.range[0]}..{in_q.range[1]}; use a signed 8-bit input QuantSpec"
        )
    bodies: list[bytes] = []
    layers: list[LayerInfo] = []
    prev_n = int(np.prod(in_shape))
    out_bytes = 1
    for name in order[1:]:
        node = g.nodes[name]
        k = rt.kernels[name]
        in_shape_l = rt.shapes[rt.preds[name][0]]
        out_shape_l = rt.shapes[name]
        out_n = int(np.prod(out_shape_l))
        if out_n > 65535 or prev_n > 65535:
            raise ModelImageError(f"node {name!r}: more than 65535 elements per step")
        in_q = rt.kernels[rt.preds[name][0]].out_quant
        if isinstance(node, Flatten):
            continue
        if isinstance(node, (Linear, DelayLinear)):
            w = np.asarray(k.params["weight"])
            n_out, n_in = w.shape
            dl = isinstance(node, DelayLinear)
            head = struct.pack("<HH", n_in, n_out)
            if dl:
                if k.depth > 4096:
                    raise ModelImageError(f"node {name!r}: delays above 4095 steps")
                head += struct.pack("<HH", k.depth, 0)
            body = head + _affine_head(name, k, in_q, n_in) + _affine_arrays(name, k, n_out)
            if dl:
                body += np.asarray(k.delay, np.int64).astype("<u2").tobytes()
            kind = spec.LayerKind.DELAY_LINEAR if dl else spec.LayerKind.LINEAR
            bodies.append(_layer(kind, body))
            layers.append(LayerInfo(name, int(kind), n_in, n_out, tuple(w.shape)))
            out_bytes = 1 if (k.out_min >= -128 and k.out_max <= 127) else 4
        elif isinstance(node, Conv1d):
            w = np.asarray(k.params["weight"])
            c_in, length = in_shape_l
            c_out, l_out = out_shape_l
            geo = struct.pack(
                "<10H",
                c_in,
                length,
                c_out,
                w.shape[2],
                node.stride[0],
                node.padding[0],
                node.dilation[0],
                l_out,
                node.groups,
                0,
            )
            fan_in = w.shape[1] * w.shape[2]
            body = geo + _affine_head(name, k, in_q, fan_in) + _affine_arrays(name, k, c_out)
            bodies.append(_layer(spec.LayerKind.CONV1D, body))
            layers.append(
                LayerInfo(name, int(spec.LayerKind.CONV1D), prev_n, out_n, tuple(w.shape))
            )
            out_bytes = 1 if (k.out_min >= -128 and k.out_max <= 127) else 4
        elif isinstance(node, (LIF, IF, LI)) and not isinstance(node, CubaLIF):
            p = k.p
            spiking = not isinstance(node, LI)
            kind = spec.LayerKind.LIF if spiking else spec.LayerKind.LI
            body = struct.pack("<HBBi", out_n, 1 if p.subtract else 0, 0, k.zp_in)
            beta = _full(p.beta_q, out_shape_l)
            if beta.min() < 0 or beta.max() > 65536:
                raise ModelImageError(f"node {name!r}: decay beta_q outside 0..65536")
            body += _i32_array(name, "beta_q", beta, out_n).tobytes()
            if spiking:
                body += _i32_array(
                    name, "v_th (membrane units)", _full(p.v_th, out_shape_l), out_n
                ).tobytes()
                body += _i32_array(name, "v_reset", _full(p.v_reset, out_shape_l), out_n).tobytes()
            body += _i32_array(name, "v_leak", _full(p.v_leak, out_shape_l), out_n).tobytes()
            bodies.append(_layer(kind, body))
            layers.append(LayerInfo(name, int(kind), prev_n, out_n))
            out_bytes = 1 if spiking else 4
        elif isinstance(node, Delay):
            d = _full(k.delay, out_shape_l)
            if k.depth > 4096:
                raise ModelImageError(f"node {name!r}: delays above 4095 steps")
            fill = 0 if k.out_quant is None else int(np.ravel(k.out_quant.zero_point)[0])
            body = struct.pack("<HHi", out_n, k.depth, fill) + d.astype("<u2").tobytes()
            bodies.append(_layer(spec.LayerKind.DELAY, body))
            layers.append(LayerInfo(name, int(spec.LayerKind.DELAY), prev_n, out_n))
        elif isinstance(node, InputNode):
            raise ModelImageError(f"node {name!r}: a second Input")
        else:
            raise ModelImageError(
                f"node {name!r}: kind {node.kind} is not supported by the board firmware "
                f"(supported: Linear, Conv1d, DelayLinear, LIF, IF, LI, Delay, Flatten)"
            )
        prev_n = out_n
    if not bodies:
        raise ModelImageError("the graph has no layers the board could run")
    if len(bodies) > 16:
        raise ModelImageError(f"{len(bodies)} layers; the firmware holds at most 16")
    out_shape = tuple(rt.shapes[order[-1]])
    header = spec.IMAGE_MAGIC + struct.pack(
        "<HHHHI", spec.IMAGE_VERSION, len(bodies), int(np.prod(in_shape)), prev_n, 0
    )
    return ModelImage(
        data=header + b"".join(bodies),
        in_shape=in_shape,
        out_shape=out_shape,
        out_bytes=out_bytes,
        layers=tuple(layers),
        input_quant=inp.quant,
        meta={"graph": g.fingerprint()},
    )


def image_from_runtime(rt: Any) -> ModelImage:
    """Alias of :func:`build_image` (an integer-mode Runtime)."""
    return build_image(rt)


def image_from_bundle(path: str | Path) -> ModelImage:
    """Load a bundle (folder or zip) in integer mode and encode it."""
    import neuroplast

    return build_image(neuroplast.load(path, mode="int"))
