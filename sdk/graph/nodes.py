"""Typed, frozen node specs of the neuroplast Graph IR.

Nodes are parameter records, not engines (as in NIR): the runtime, the exporters and
the C firmware read them. Shapes exclude the batch and time axes. Time constants are
in seconds; the graph's ``dt`` (seconds) turns them into per-step factors. Neuron
dynamics are forward-Euler, the convention of NIR and of snnTorch/Norse's NIR import::

    beta = 1 - dt / tau          (membrane decay per step)
    gain = r * dt / tau          (input gain; the default r = tau / dt makes it 1)

Spike reset is immediate (the step's output spike resets the same step's membrane).
New node kinds (e.g. an app's event-driven layer) register with :func:`register_node`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import numpy as np

from neuroplast.errors import GraphError
from neuroplast.quant import QuantSpec

__all__ = [
    "Node",
    "NODE_KINDS",
    "register_node",
    "spiking_kinds",
    "neuron_kinds",
    "Input",
    "Linear",
    "Conv1d",
    "Conv2d",
    "AvgPool2d",
    "MaxPool2d",
    "SumPool2d",
    "Flatten",
    "Add",
    "ReLU",
    "Scale",
    "LIF",
    "CubaLIF",
    "IF",
    "LI",
    "Threshold",
    "Delay",
    "DelayLinear",
    "array_field",
    "quant_field",
    "tuple_field",
]

NODE_KINDS: dict[str, type[Node]] = {}
MAX_WINDOW_ELEMENTS = 1 << 28  # values in one padded conv/pool input (1 GiB of float32)


def _same_definition(a: type, b: type) -> bool:
    """The same class statement: ``b`` is ``a`` re-created by re-importing its module."""
    return (a.__module__, a.__qualname__) == (b.__module__, b.__qualname__)


def register_node(cls: type[Node]) -> type[Node]:
    """Class decorator: make a node kind known to (de)serialization and validation.

    Idempotent: registering the same class again, or its re-creation by a module
    reload, keeps one entry (the newest class); another class claiming a registered
    kind raises :class:`GraphError`.
    """
    kind = cls.kind
    old = NODE_KINDS.get(kind)
    if not kind or (old is not None and not _same_definition(old, cls)):
        raise GraphError(f"node kind {kind!r} is empty or already registered")
    NODE_KINDS[kind] = cls
    return cls


def spiking_kinds() -> tuple[str, ...]:
    """Names of the registered node kinds whose output is spikes (``Node.spiking``)."""
    return tuple(k for k, cls in NODE_KINDS.items() if cls.spiking)


def neuron_kinds() -> tuple[str, ...]:
    """Names of the registered neuron kinds (``Node.neuron``: spiking or integrating)."""
    return tuple(k for k, cls in NODE_KINDS.items() if cls.neuron)


def array_field(dtype: Any = np.float32, optional: bool = False) -> Any:
    """A numpy-array parameter (stored in weights.npz in a bundle)."""
    return field(
        default=None if optional else None,
        metadata={"kind": "array", "dtype": np.dtype(dtype).str, "optional": optional},
    )


def quant_field() -> Any:
    """An optional :class:`QuantSpec`."""
    return field(default=None, metadata={"kind": "quant"})


def tuple_field(default: tuple) -> Any:
    return field(default=default, metadata={"kind": "tuple"})


def _as_array(node: str, name: str, value: Any, dtype: str) -> np.ndarray:
    try:
        arr = np.array(value, dtype=np.dtype(dtype), copy=True)
    except (TypeError, ValueError, OverflowError) as e:
        raise GraphError(f"node {node!r}: field {name!r} is not a numeric array: {e}") from e
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise GraphError(f"node {node!r}: field {name!r} contains NaN or Inf")
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class Node:
    """Base of every node. ``name`` is set by the graph (the key in ``Graph.nodes``)."""

    kind: ClassVar[str] = ""
    n_inputs: ClassVar[int] = 1
    stateful: ClassVar[bool] = False
    #: The node's output is spikes (0/1 events). The one definition every consumer reads
    #: (cost model synops, neuromorphic mapping, plasticity post-synaptic defaults).
    spiking: ClassVar[bool] = False
    #: The node is a neuron model (occupies neurons on a neuromorphic core): the spiking
    #: kinds plus non-spiking integrators such as LI.
    neuron: ClassVar[bool] = False

    def __post_init__(self) -> None:
        for f in fields(self):
            kind = f.metadata.get("kind")
            value = getattr(self, f.name)
            if kind == "array":
                if value is None:
                    if not f.metadata.get("optional"):
                        raise GraphError(f"{self.kind}: array field {f.name!r} is required")
                    continue
                object.__setattr__(
                    self, f.name, _as_array(self.kind, f.name, value, f.metadata["dtype"])
                )
            elif kind == "quant" and value is not None and not isinstance(value, QuantSpec):
                raise GraphError(f"{self.kind}: field {f.name!r} must be a QuantSpec")
            elif kind == "tuple":
                try:
                    object.__setattr__(self, f.name, tuple(int(v) for v in np.atleast_1d(value)))
                except (TypeError, ValueError) as e:
                    raise GraphError(f"{self.kind}: field {f.name!r} must be integers") from e
        self.check()

    def check(self) -> None:
        """Node-local validation; raise GraphError."""

    def out_shape(self, in_shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
        """Output shape from input shapes (without batch/time axes)."""
        return in_shapes[0]

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.metadata.get("kind") == "array" and getattr(self, f.name) is not None
        }


def _need(cond: bool, node: Node, msg: str) -> None:
    if not cond:
        raise GraphError(f"{node.kind}: {msg}")


def _per_neuron(node: Node, names: list[str]) -> int:
    """All neuron parameter arrays must be scalars or share one 1-D length; return it."""
    sizes = {getattr(node, n).size for n in names if getattr(node, n) is not None}
    sizes.discard(1)
    _need(len(sizes) <= 1, node, f"parameters {names} have different sizes {sorted(sizes)}")
    return sizes.pop() if sizes else 1


def _check_neuron_shape(node: Node, names: list[str], in_shape: tuple[int, ...]) -> None:
    n = _per_neuron(node, names)
    total = int(np.prod(in_shape))
    if n != 1 and n != total and n != in_shape[0]:
        raise GraphError(f"{node.kind}: {n} neuron parameters do not match input shape {in_shape}")


@register_node
@dataclass(frozen=True, eq=False)
class Input(Node):
    """Graph input of shape ``shape``; ``quant`` quantizes float input in integer mode."""

    kind: ClassVar[str] = "Input"
    n_inputs: ClassVar[int] = 0
    shape: tuple = tuple_field(())
    quant: QuantSpec | None = quant_field()

    def check(self) -> None:
        _need(
            len(self.shape) >= 1 and all(s > 0 for s in self.shape), self, f"bad shape {self.shape}"
        )

    def out_shape(self, in_shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
        return self.shape


@dataclass(frozen=True, eq=False)
class _Weighted(Node):
    """Common quantization metadata of weighted layers.

    ``weight_q``: int weights (symmetric, per channel along axis 0 allowed);
    ``out_q``: the output activation (8 bits) or current (16/32 bits) quantization.
    The bias is kept in float; the integer runtime quantizes it with scale s_in*s_w
    to int32 (exact for Brevitas-trained biases).
    """

    weight_q: QuantSpec | None = quant_field()
    out_q: QuantSpec | None = quant_field()


@register_node
@dataclass(frozen=True, eq=False)
class Linear(_Weighted):
    """``y = W x + b``; W: (out, in), b: (out,)."""

    kind: ClassVar[str] = "Linear"
    weight: np.ndarray = array_field()
    bias: np.ndarray | None = array_field(optional=True)

    def check(self) -> None:
        _need(self.weight.ndim == 2, self, f"weight must be 2-D (out, in), got {self.weight.shape}")
        if self.bias is not None:
            _need(self.bias.shape == (self.weight.shape[0],), self, "bias shape must be (out,)")

    def out_shape(self, in_shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
        if in_shapes[0] != (self.weight.shape[1],):
            raise GraphError(f"Linear expects input ({self.weight.shape[1]},), got {in_shapes[0]}")
        return (self.weight.shape[0],)


def _conv_out(n: int, k: int, s: int, p: int, d: int) -> int:
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def _check_window(node: Node, dims: int, kernel: tuple, max_pad: tuple | None = None) -> None:
    """Geometry of a sliding window (conv or pool) before any input is known: one entry
    per spatial axis, ``stride >= 1``, ``dilation >= 1``, ``padding >= 0`` (and at most
    ``max_pad`` where the kind defines one, as pools do)."""
    dil = getattr(node, "dilation", (1,) * dims)
    for n in ("stride", "padding", "dilation"):
        v = getattr(node, n, dil)
        _need(
            len(v) == dims, node, f"{n} must have {dims} entr{'y' if dims == 1 else 'ies'}, got {v}"
        )
    _need(len(kernel) == dims and min(kernel) >= 1, node, f"kernel {kernel} must be >= 1 per axis")
    _need(min(node.stride) >= 1, node, f"stride {node.stride} must be >= 1")
    _need(min(dil) >= 1, node, f"dilation {dil} must be >= 1")
    _need(min(node.padding) >= 0, node, f"padding {node.padding} must be >= 0")
    if max_pad is not None:
        _need(
            all(p <= m for p, m in zip(node.padding, max_pad)),
            node,
            f"padding {node.padding} is larger than {max_pad} (half the window)",
        )


def _window_out(node: Node, sizes: tuple, kernel: tuple, in_shape: tuple) -> tuple[int, ...]:
    """Output sizes of a sliding window over ``sizes``. Per axis, padding may exceed neither
    both the input size and the dilated kernel's reach (beyond, outputs see only padding) and
    the dilated kernel must fit the padded input; the padded input the kernels build may hold
    at most ``MAX_WINDOW_ELEMENTS`` values (a 1 KB bundle cannot ask for 37 GiB)."""
    dil = getattr(node, "dilation", (1,) * len(sizes))
    out, padded = [], int(np.prod(in_shape[: len(in_shape) - len(sizes)]))
    for n, k, s, p, d in zip(sizes, kernel, node.stride, node.padding, dil):
        reach = d * (k - 1)
        if p > max(n, reach):
            raise GraphError(
                f"{node.kind}: padding {p} is larger than the input size {n} and the kernel's "
                f"reach {reach}"
            )
        if reach + 1 > n + 2 * p:
            raise GraphError(
                f"{node.kind}: kernel {k} (dilation {d}) spans {reach + 1}, more than the "
                f"padded input {n + 2 * p} of input {in_shape}"
            )
        padded *= n + 2 * p
        out.append(_conv_out(n, k, s, p, d))
    if padded > MAX_WINDOW_ELEMENTS:
        raise GraphError(
            f"{node.kind}: the padded input of {in_shape} holds {padded} values, over the limit "
            f"of {MAX_WINDOW_ELEMENTS}"
        )
    return tuple(out)


@dataclass(frozen=True, eq=False)
class _ConvNd(_Weighted):
    """Checks and shape rule shared by the convolutions (``spatial`` = 1 or 2 dims)."""

    spatial: ClassVar[int]
    _layout: ClassVar[tuple[str, str]]  # (weight's window dims, input layout), for messages

    def check(self) -> None:
        w = self.weight
        _need(
            w.ndim == 2 + self.spatial and min(w.shape) >= 1,
            self,
            f"weight must be (out, in/groups, {self._layout[0]}), got {w.shape}",
        )
        _need(
            self.groups >= 1 and w.shape[0] % self.groups == 0,
            self,
            f"groups {self.groups} must be >= 1 and divide the {w.shape[0]} outputs",
        )
        _check_window(self, self.spatial, w.shape[2:])

    def out_shape(self, in_shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
        if len(in_shapes[0]) != 1 + self.spatial:
            raise GraphError(f"{self.kind} expects a {self._layout[1]} input, got {in_shapes[0]}")
        c, *size = in_shapes[0]
        need = self.weight.shape[1] * self.groups
        if c != need:
            raise GraphError(f"{self.kind} expects {need} channels, got {c}")
        out = _window_out(self, tuple(size), self.weight.shape[2:], in_shapes[0])
        return (self.weight.shape[0], *out)


@register_node
@dataclass(frozen=True, eq=False)
class Conv1d(_ConvNd):
    """1-D convolution (cross-correlation, PyTorch layout): W: (out, in/groups, k); x: (C, L)."""

    kind: ClassVar[str] = "Conv1d"
    spatial: ClassVar[int] = 1
    _layout: ClassVar[tuple[str, str]] = ("k", "(C, L)")
    weight: np.ndarray = array_field()
    bias: np.ndarray | None = array_field(optional=True)
    stride: tuple = tuple_field((1,))
    padding: tuple = tuple_field((0,))
    dilation: tuple = tuple_field((1,))
    groups: int = 1


@register_node
@dataclass(frozen=True, eq=False)
class Conv2d(_ConvNd):
    """2-D convolution, PyTorch layout: W: (out, in/groups, kh, kw); x: (C, H, W)."""

    kind: ClassVar[str] = "Conv2d"
    spatial: ClassVar[int] = 2
    _layout: ClassVar[tuple[str, str]] = ("kh, kw", "(C, H, W)")
    weight: np.ndarray = array_field()
    bias: np.ndarray | None = array_field(optional=True)
    stride: tuple = tuple_field((1, 1))
    padding: tuple = tuple_field((0, 0))
    dilation: tuple = tuple_field((1, 1))
    groups: int = 1


@dataclass(frozen=True, eq=False)
class _Pool2d(Node):
    kernel: tuple = tuple_field((2, 2))
    stride: tuple = tuple_field((2, 2))
    padding: tuple = tuple_field((0, 0))

    def check(self) -> None:
        # PyTorch's rule: padding at most half the window
        _check_window(self, 2, self.kernel, tuple(k // 2 for k in self.kernel))

    def out_shape(self, in_shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
        if len(in_shapes[0]) != 3:
            raise GraphError(f"{self.kind} expects a (C, H, W) input, got {in_shapes[0]}")
        c, h, w = in_shapes[0]
        ho, wo = _window_out(self, (h, w), self.kernel, in_shapes[0])
        return (c, ho, wo)


@register_node
@dataclass(frozen=True, eq=False)
class AvgPool2d(_Pool2d):
    """Average over each window (padding excluded from the count, as TFLite)."""

    kind: ClassVar[str] = "AvgPool2d"


@register_node
@dataclass(frozen=True, eq=False)
class MaxPool2d(_Pool2d):
    """Maximum over each window."""

    kind: ClassVar[str] = "MaxPool2d"


@register_node
@dataclass(frozen=True, eq=False)
class SumPool2d(_Pool2d):
    """Sum over each window (NIR SumPool2d)."""

    kind: ClassVar[str] = "SumPool2d"


@register_node
@dataclass(frozen=True, eq=False)
class Flatten(Node):
    """Flatten to 1-D in C order (channel-major, as PyTorch)."""

    kind: ClassVar[str] = "Flatten"

    def out_shape(self, in_shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
        return (int(np.prod(in_shapes[0])),)


@register_node
@dataclass(frozen=True, eq=False)
class Add(Node):
    """Element-wise sum of two inputs of the same shape."""

    kind: ClassVar[str] = "Add"
    n_inputs: ClassVar[int] = 2
    out_q: QuantSpec | None = quant_field()

    def out_shape(self, in_shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
        if in_shapes[0] != in_shapes[1]:
            raise GraphError(f"Add inputs differ in shape: {in_shapes[0]} vs {in_shapes[1]}")
        return in_shapes[0]


@register_node
@dataclass(frozen=True, eq=False)
class ReLU(Node):
    """``y = max(x, 0)``."""

    kind: ClassVar[str] = "ReLU"


@register_node
@dataclass(frozen=True, eq=False)
class Scale(Node):
    """``y = s * x`` with a per-element (or scalar) scale ``s`` (NIR Scale)."""

    kind: ClassVar[str] = "Scale"
    scale: np.ndarray = array_field()
    out_q: QuantSpec | None = quant_field()


@register_node
@dataclass(frozen=True, eq=False)
class LIF(Node):
    """Leaky integrate-and-fire neuron (current input), per step::

        v' = v_leak + beta * (v - v_leak) + gain * I         beta = 1 - dt/tau_mem
        s  = [v' > v_th]                                       gain = r * dt / tau_mem
        v  = v_reset where s (reset="zero")  |  v' - v_th * s (reset="subtract")

    Units: ``tau_mem`` in s, voltages in the (dimensionless) units of the input current.
    ``r`` defaults to ``tau_mem / dt`` (unit gain). ``v_q`` is the membrane quantization
    in integer mode (the preceding layer's ``out_q`` must have the same scale).
    """

    kind: ClassVar[str] = "LIF"
    stateful: ClassVar[bool] = True
    spiking: ClassVar[bool] = True
    neuron: ClassVar[bool] = True
    tau_mem: np.ndarray = array_field()
    v_th: np.ndarray = array_field()
    v_reset: np.ndarray | None = array_field(optional=True)
    v_leak: np.ndarray | None = array_field(optional=True)
    r: np.ndarray | None = array_field(optional=True)
    reset: str = "zero"
    v_q: QuantSpec | None = quant_field()

    _params: ClassVar[list[str]] = ["tau_mem", "v_th", "v_reset", "v_leak", "r"]

    def check(self) -> None:
        _need(
            self.reset in ("zero", "subtract"),
            self,
            f"reset must be 'zero' or 'subtract', not {self.reset!r}",
        )
        _need(bool(np.all(self.tau_mem > 0)), self, "tau_mem must be > 0")
        _per_neuron(self, self._params)

    def out_shape(self, in_shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
        _check_neuron_shape(self, self._params, in_shapes[0])
        return in_shapes[0]


@register_node
@dataclass(frozen=True, eq=False)
class CubaLIF(Node):
    """Current-based LIF with a synaptic current state, per step::

    i' = alpha * i + w_in * I                  alpha = 1 - dt/tau_syn
    v' = v_leak + beta * (v - v_leak) + gain * i'
    s, reset as :class:`LIF`.
    """

    kind: ClassVar[str] = "CubaLIF"
    stateful: ClassVar[bool] = True
    spiking: ClassVar[bool] = True
    neuron: ClassVar[bool] = True
    tau_syn: np.ndarray = array_field()
    tau_mem: np.ndarray = array_field()
    v_th: np.ndarray = array_field()
    v_reset: np.ndarray | None = array_field(optional=True)
    v_leak: np.ndarray | None = array_field(optional=True)
    r: np.ndarray | None = array_field(optional=True)
    w_in: np.ndarray | None = array_field(optional=True)
    reset: str = "zero"
    v_q: QuantSpec | None = quant_field()

    _params: ClassVar[list[str]] = ["tau_syn", "tau_mem", "v_th", "v_reset", "v_leak", "r", "w_in"]

    def check(self) -> None:
        _need(
            self.reset in ("zero", "subtract"),
            self,
            f"reset must be 'zero' or 'subtract', not {self.reset!r}",
        )
        _need(
            bool(np.all(self.tau_mem > 0) and np.all(self.tau_syn > 0)),
            self,
            "time constants must be > 0",
        )
        _per_neuron(self, self._params)

    def out_shape(self, in_shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
        _check_neuron_shape(self, self._params, in_shapes[0])
        return in_shapes[0]


@register_node
@dataclass(frozen=True, eq=False)
class IF(Node):
    """Integrate-and-fire: ``v' = v + r * I``; spike and reset as :class:`LIF`."""

    kind: ClassVar[str] = "IF"
    stateful: ClassVar[bool] = True
    spiking: ClassVar[bool] = True
    neuron: ClassVar[bool] = True
    v_th: np.ndarray = array_field()
    v_reset: np.ndarray | None = array_field(optional=True)
    r: np.ndarray | None = array_field(optional=True)
    reset: str = "zero"
    v_q: QuantSpec | None = quant_field()

    _params: ClassVar[list[str]] = ["v_th", "v_reset", "r"]

    def check(self) -> None:
        _need(
            self.reset in ("zero", "subtract"),
            self,
            f"reset must be 'zero' or 'subtract', not {self.reset!r}",
        )
        _per_neuron(self, self._params)

    def out_shape(self, in_shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
        _check_neuron_shape(self, self._params, in_shapes[0])
        return in_shapes[0]


@register_node
@dataclass(frozen=True, eq=False)
class LI(Node):
    """Leaky integrator readout (non-spiking): ``v' = v_leak + beta (v - v_leak) + gain I``;
    the output is the membrane ``v'``."""

    kind: ClassVar[str] = "LI"
    stateful: ClassVar[bool] = True
    neuron: ClassVar[bool] = True
    tau_mem: np.ndarray = array_field()
    v_leak: np.ndarray | None = array_field(optional=True)
    r: np.ndarray | None = array_field(optional=True)
    v_q: QuantSpec | None = quant_field()

    _params: ClassVar[list[str]] = ["tau_mem", "v_leak", "r"]

    def check(self) -> None:
        _need(bool(np.all(self.tau_mem > 0)), self, "tau_mem must be > 0")
        _per_neuron(self, self._params)

    def out_shape(self, in_shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
        _check_neuron_shape(self, self._params, in_shapes[0])
        return in_shapes[0]


@register_node
@dataclass(frozen=True, eq=False)
class Threshold(Node):
    """Stateless spike: ``s = [x > v_th]``."""

    kind: ClassVar[str] = "Threshold"
    spiking: ClassVar[bool] = True
    neuron: ClassVar[bool] = True
    v_th: np.ndarray = array_field()


@register_node
@dataclass(frozen=True, eq=False)
class Delay(Node):
    """Per-neuron integer delay in steps: ``y[t] = x[t - d]`` (NIR Delay with d = delay/dt).

    Implemented with a ring buffer of depth ``max(d) + 1``.
    """

    kind: ClassVar[str] = "Delay"
    stateful: ClassVar[bool] = True
    delay: np.ndarray = array_field(np.int32)

    def check(self) -> None:
        _need(bool(np.all(self.delay >= 0)), self, "delays must be >= 0 steps")
        _need(int(self.delay.max(initial=0)) <= 65535, self, "delays above 65535 steps")

    def out_shape(self, in_shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
        if self.delay.size not in (1, int(np.prod(in_shapes[0]))):
            raise GraphError(f"Delay has {self.delay.size} delays for input {in_shapes[0]}")
        return in_shapes[0]


@register_node
@dataclass(frozen=True, eq=False)
class DelayLinear(_Weighted):
    """Linear layer with one integer delay per synapse (DCLS at deployment)::

        y_i[t] = b_i + sum_j W_ij * x_j[t - D_ij]

    W, D: (out, in). The input history is a ring buffer of depth ``max(D) + 1``.
    """

    kind: ClassVar[str] = "DelayLinear"
    stateful: ClassVar[bool] = True
    weight: np.ndarray = array_field()
    delay: np.ndarray = array_field(np.int32)
    bias: np.ndarray | None = array_field(optional=True)

    def check(self) -> None:
        _need(self.weight.ndim == 2, self, f"weight must be (out, in), got {self.weight.shape}")
        _need(self.delay.shape == self.weight.shape, self, "delay must have the weight's shape")
        _need(bool(np.all(self.delay >= 0)), self, "delays must be >= 0 steps")
        _need(int(self.delay.max(initial=0)) <= 65535, self, "delays above 65535 steps")
        if self.bias is not None:
            _need(self.bias.shape == (self.weight.shape[0],), self, "bias shape must be (out,)")

    def out_shape(self, in_shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
        if in_shapes[0] != (self.weight.shape[1],):
            raise GraphError(
                f"DelayLinear expects input ({self.weight.shape[1]},), got {in_shapes[0]}"
            )
        return (self.weight.shape[0],)
