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
from neuroplast.targets import CheckContext, Refusal, Target, register_target

__all__ = ["FIRMWARE", "ModelImage", "LayerInfo", "image_from_bundle", "build_image"]

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


FIRMWARE = register_target(
    Target(
        "firmware",
        "board firmware image (C99 integer engine)",
        engine="C firmware on the virtual board",
        hint="run it on a Linux board (numpy runtime), or export TFLite for TensorFlow Lite Micro",
        builds_on=("runtime-int",),
    )
)


@FIRMWARE.graph_check
def _chain(ctx: CheckContext) -> list[Refusal]:
    """The firmware runs one chain from one int8 input to one output."""
    g = ctx.graph
    out = []
    if len(g.inputs) != 1 or len(g.outputs) != 1:
        out.append(
            Refusal(
                "*",
                "",
                "firmware",
                f"needs one input and one output, has {list(g.inputs)} -> {list(g.outputs)}",
                FIRMWARE.hint,
            )  # fmt: skip
        )
    for name in g.topo_order():
        if len(g.predecessors(name)) > 1 or len(g.successors(name)) > 1:
            out.append(
                Refusal(
                    name,
                    g.nodes[name].kind,
                    "firmware",
                    "the firmware runs chains only (no branches)",
                    FIRMWARE.hint,
                )  # fmt: skip
            )
    return out


@dataclass
class _Enc:
    """What a firmware handler gets: the node, its int kernel, shapes and input quant."""

    name: str
    node: Any
    kernel: Any
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    in_q: Any

    @property
    def out_n(self) -> int:
        return int(np.prod(self.out_shape))

    @property
    def in_n(self) -> int:
        return int(np.prod(self.in_shape))


def _out_bytes(k: Any) -> int:
    return 1 if (k.out_min >= -128 and k.out_max <= 127) else 4


@FIRMWARE.register(Flatten, note="free: C-order memory is already flat")
def _enc_flatten(e: _Enc) -> None:
    return None


@FIRMWARE.register(Linear)
@FIRMWARE.register(DelayLinear, note="delays <= 4095 steps")
def _enc_linear(e: _Enc) -> tuple[int, bytes, LayerInfo, int]:
    k, name = e.kernel, e.name
    w = np.asarray(k.params["weight"])
    n_out, n_in = w.shape
    dl = isinstance(e.node, DelayLinear)
    head = struct.pack("<HH", n_in, n_out)
    if dl:
        if k.depth > 4096:
            raise ModelImageError(f"node {name!r}: delays above 4095 steps")
        head += struct.pack("<HH", k.depth, 0)
    body = head + _affine_head(name, k, e.in_q, n_in) + _affine_arrays(name, k, n_out)
    if dl:
        body += np.asarray(k.delay, np.int64).astype("<u2").tobytes()
    kind = spec.LayerKind.DELAY_LINEAR if dl else spec.LayerKind.LINEAR
    return kind, body, LayerInfo(name, int(kind), n_in, n_out, tuple(w.shape)), _out_bytes(k)


@FIRMWARE.register(Conv1d)
def _enc_conv1d(e: _Enc) -> tuple[int, bytes, LayerInfo, int]:
    k, node, name = e.kernel, e.node, e.name
    w = np.asarray(k.params["weight"])
    c_in, length = e.in_shape
    c_out, l_out = e.out_shape
    geo = struct.pack("<10H", c_in, length, c_out, w.shape[2], node.stride[0], node.padding[0],
                      node.dilation[0], l_out, node.groups, 0)  # fmt: skip
    fan_in = w.shape[1] * w.shape[2]
    body = geo + _affine_head(name, k, e.in_q, fan_in) + _affine_arrays(name, k, c_out)
    kind = spec.LayerKind.CONV1D
    return kind, body, LayerInfo(name, int(kind), e.in_n, e.out_n, tuple(w.shape)), _out_bytes(k)


@FIRMWARE.register(LIF, IF, LI)
def _enc_neuron(e: _Enc) -> tuple[int, bytes, LayerInfo, int]:
    p, name, out_n = e.kernel.p, e.name, e.out_n
    spiking = e.node.spiking
    kind = spec.LayerKind.LIF if spiking else spec.LayerKind.LI
    body = struct.pack("<HBBi", out_n, 1 if p.subtract else 0, 0, e.kernel.zp_in)
    beta = _full(p.beta_q, e.out_shape)
    if beta.min() < 0 or beta.max() > 65536:
        raise ModelImageError(f"node {name!r}: decay beta_q outside 0..65536")
    body += _i32_array(name, "beta_q", beta, out_n).tobytes()
    if spiking:
        body += _i32_array(
            name, "v_th (membrane units)", _full(p.v_th, e.out_shape), out_n
        ).tobytes()
        body += _i32_array(name, "v_reset", _full(p.v_reset, e.out_shape), out_n).tobytes()
    body += _i32_array(name, "v_leak", _full(p.v_leak, e.out_shape), out_n).tobytes()
    return kind, body, LayerInfo(name, int(kind), e.in_n, out_n), 1 if spiking else 4


@FIRMWARE.register(Delay, note="delays <= 4095 steps")
def _enc_delay(e: _Enc) -> tuple[int, bytes, LayerInfo, int | None]:
    k = e.kernel
    d = _full(k.delay, e.out_shape)
    if k.depth > 4096:
        raise ModelImageError(f"node {e.name!r}: delays above 4095 steps")
    fill = 0 if k.out_quant is None else int(np.ravel(k.out_quant.zero_point)[0])
    body = struct.pack("<HHi", e.out_n, k.depth, fill) + d.astype("<u2").tobytes()
    kind = spec.LayerKind.DELAY
    return kind, body, LayerInfo(e.name, int(kind), e.in_n, e.out_n), None


FIRMWARE.refuse(CubaLIF, "the firmware has no CubaLIF (synaptic current) neuron yet")


def _int8_input(name: str, node: Any, ctx: CheckContext) -> str | None:
    q = ctx.quant(name)
    if q is not None and (q.range[0] < -128 or q.range[1] > 127):
        return (f"board inputs are int8 codes, but the input is quantized to "
                f"{q.range[0]}..{q.range[1]}; use a signed 8-bit input QuantSpec")  # fmt: skip
    return None


FIRMWARE.register(InputNode, check=_int8_input, note="signed 8-bit codes")(None)


def build_image(rt: Any) -> ModelImage:
    """Encode an integer-mode Runtime's graph as a board image (see module docstring).

    The graph is checked against the firmware's capability table first
    (:data:`FIRMWARE`), so an unsupported node is refused in one line before encoding.
    """
    if getattr(rt, "mode", None) != "int":
        raise ModelImageError("a board runs the integer runtime: build the image from mode='int'")
    g = rt.graph
    FIRMWARE.require(g)
    order = rt.order
    in_shape = tuple(rt.shapes[order[0]])
    bodies: list[bytes] = []
    layers: list[LayerInfo] = []
    prev_n = int(np.prod(in_shape))
    out_bytes = 1
    for name in order[1:]:
        pred = rt.preds[name][0]
        e = _Enc(name, g.nodes[name], rt.kernels[name], tuple(rt.shapes[pred]),
                 tuple(rt.shapes[name]), rt.kernels[pred].out_quant)  # fmt: skip
        if e.out_n > 65535 or prev_n > 65535:
            raise ModelImageError(f"node {name!r}: more than 65535 elements per step")
        enc = FIRMWARE.handler(name, e.node)(e)
        if enc is None:
            continue
        kind, body, info, ob = enc
        bodies.append(_layer(kind, body))
        layers.append(info)
        out_bytes = out_bytes if ob is None else ob
        prev_n = e.out_n
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
        input_quant=g.nodes[order[0]].quant,
        meta={"graph": g.fingerprint()},
    )


def image_from_bundle(path: str | Path) -> ModelImage:
    """Load a bundle (folder or zip) in integer mode and encode it."""
    import neuroplast

    return build_image(neuroplast.load(path, mode="int"))
