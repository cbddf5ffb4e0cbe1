"""The compiled fast path of the Runtime: whole-graph steps in one native call.

``neuroplast._native`` (built at install from ``sdk/_native.c`` and the firmware's
``np_kernels.c``) is optional. :func:`native_module` returns it, or ``None`` when it is
missing, failed to build, or ``NEUROPLAST_BACKEND=numpy`` is set; the numpy kernels are
then used (and they stay the reference every native result is tested against).

A :class:`NativePlan` compiles a Runtime's graph, for one batch size, into a list of ops
over preallocated buffers: int8 Linear/Conv (int32 accumulate, LiteRT single-rounding
requantization: the firmware's arithmetic; convolutions through the host's im2col / u8
quad kernels, their scratch allocated here once), pools, Add, ReLU (folded into the conv
before it where it can be: :func:`_fuse_relu`), integer neurons, and float32
Linear (event-driven on sparse inputs) and LIF/IF/LI. It is built only when *every*
non-input node has a native op and the integer accumulators provably stay inside int32;
otherwise the Runtime steps node by node in numpy. The plan holds views of the runtime's
weight arrays (so plasticity's in-place updates are seen) and of its neuron state arrays
(updated in place); anything else that replaces an array invalidates the plan.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from neuroplast.graph.nodes import (
    IF,
    LI,
    LIF,
    Add,
    AvgPool2d,
    Conv1d,
    Conv2d,
    CubaLIF,
    Delay,
    DelayLinear,
    Flatten,
    Input,
    Linear,
    MaxPool2d,
    ReLU,
    Scale,
    SumPool2d,
    Threshold,
)

__all__ = ["native_module", "finite_f32", "backend_name", "NativePlan", "Unsupported", "OPS"]

#: op kinds of ``_native.op`` / ``_native.Plan`` (sdk/_native.c)
OPS = {
    "linear_i8": 1,
    "conv_i8": 2,
    "pool_i": 3,
    "add_i": 4,
    "relu_i": 5,
    "neuron_i": 6,
    "linear_f": 7,
    "lif_f": 8,
    "relu_f": 9,
    "scale_i": 10,
    "threshold_i": 11,
    "delay": 12,
    "delay_linear_f": 13,
    "delay_linear_i": 14,
    "stdp_event_f32": 20,
    "stdp_event_f64": 21,
    "stdp_run_f32": 22,
    "stdp_run_f64": 23,
    "stdp_step_f32": 24,
    "ring_split": 30,
    "pull_rows": 31,
    "event_scatter": 32,
    "event_scatter_i": 33,
    "pull_int": 34,
}

_I32 = np.iinfo(np.int32)
_CACHE: dict[str, Any] = {}


def native_module() -> ModuleType | None:
    """The compiled kernels, or ``None`` (not built, failed to load, or disabled by
    ``NEUROPLAST_BACKEND=numpy``)."""
    if os.environ.get("NEUROPLAST_BACKEND", "").lower() == "numpy":
        return None
    if "m" not in _CACHE:
        try:
            _native = importlib.import_module("neuroplast._native")
            _CACHE["m"] = _native if getattr(_native, "ABI", 0) == 1 else None
        except ImportError:
            _CACHE["m"] = None
    return _CACHE["m"]


def finite_f32() -> Callable[[Any], bool] | None:
    """The compiled test that a float32 array holds no NaN/Inf (the streaming input check),
    or ``None`` without the extension."""
    lib = native_module()
    return None if lib is None else lib.finite_f32


def backend_name() -> str:
    """``"native"`` when the compiled kernels are in use, else ``"numpy"``."""
    return "native" if native_module() is not None else "numpy"


class Unsupported(Exception):
    """A node (or its parameters) has no native op; the Runtime uses numpy."""


def _i32(a: Any, what: str) -> np.ndarray:
    a = np.asarray(a)
    if a.size and (a.min() < _I32.min or a.max() > _I32.max):
        raise Unsupported(f"{what} outside int32")
    return np.ascontiguousarray(a, dtype=np.int32)


def _per_elem(a: Any, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    return np.array(np.broadcast_to(np.asarray(a), shape), dtype=dtype).ravel()


def _geom(c_in, h, w, c_out, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo, groups) -> tuple:  # noqa: ANN001
    g = (c_in, h, w, c_out, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo, groups)
    if any(not 0 <= int(v) <= 65535 for v in g):
        raise Unsupported("geometry outside uint16")
    return tuple(int(v) for v in g)


def _fuse_relu(
    names: list[str], ops: list[tuple], keep: set[str], users: dict[str, list[str]]
) -> tuple[list[tuple], list[tuple]]:
    """Fold each integer ReLU into the int8 convolution right before it that feeds it:
    ``max(clamp(v, lo, hi), zp) = clamp(v, max(lo, zp), max(hi, zp))``, so the conv op,
    with those bounds, writes the ReLU's buffer and the ReLU op is dropped. The conv's own
    (pre-ReLU) values are then computed only when asked for (``rt.last_outputs``): returns
    the plan's ops and the unfused conv ops that fill those buffers. Only a conv whose one
    consumer (``users``) is that ReLU is folded, and none in ``keep`` (graph outputs)."""
    out: list[tuple] = []
    fill: list[tuple] = []
    prev_name = ""
    for name, op in zip(names, ops):
        prev = out[-1] if out else None
        if (
            op[0] == OPS["relu_i"]
            and prev is not None
            and prev[0] == OPS["conv_i8"]
            and prev_name not in keep
            and users.get(prev_name) == [name]
            and op[2][0] is prev[2][1]
        ):
            zp, ints = op[1][2], prev[1]
            ints = ints[:3] + (max(ints[3], zp), max(ints[4], zp)) + ints[5:]
            out[-1] = (prev[0], ints, prev[2][:1] + (op[2][1],) + prev[2][2:])
            fill.append(prev)
            prev_name = ""
            continue
        out.append(op)
        prev_name = name
    return out, fill


class NativePlan:
    """A Runtime's graph for one batch size as one native call per step (see module doc)."""

    def __init__(self, rt: Any, batch: int) -> None:
        lib = native_module()
        if lib is None:
            raise Unsupported("no compiled kernels")
        self.rt = rt
        self.batch = batch
        self.int_mode = rt.mode == "int"
        self.buf_dtype = np.int32 if self.int_mode else np.float32
        self.values: dict[str, np.ndarray] = {}
        self.inputs: dict[str, np.ndarray] = {}
        self.state_refs: dict[str, tuple] = {}
        self.param_refs: dict[str, Any] = {}
        ops: list[tuple] = []
        names: list[str] = []
        self._keep: list[np.ndarray] = []  # arrays the plan's views point into
        for name in rt.order:
            node = rt.graph.nodes[name]
            k = rt.kernels[name]
            shape = (batch,) + rt.shapes[name]
            if isinstance(node, Input):
                buf = np.zeros(shape, self.buf_dtype)
                self.inputs[name] = buf
                self.values[name] = buf
                continue
            xs = [self.values[p] for p in rt.preds[name]]
            if isinstance(node, Flatten):
                self.values[name] = xs[0].reshape(shape)
                continue
            y = np.zeros(shape, self.buf_dtype)
            ops.append(self._op(name, node, k, xs, y))
            names.append(name)
            self.values[name] = y
        self.last_inputs = {n: [self.values[p] for p in rt.preds[n]] for n in rt.order}
        for n, buf in self.inputs.items():
            self.last_inputs[n] = [buf]
        # outputs as the numpy path returns them: float32, else the output's code dtype
        # (an LI readout: its int64 membrane)
        self._outs = []
        for o in rt.outputs:
            k = rt.kernels[o]
            dt: Any = np.float32
            if self.int_mode:
                q = k.out_quant
                li = getattr(k, "spiking", None) is False
                dt = np.int64 if li or q is None else q.dtype
            self._outs.append((o, self.values[o], dt))
        users: dict[str, list[str]] = {}
        for n in rt.order:
            for p in rt.preds[n]:
                users.setdefault(p, []).append(n)
        fused, fill = _fuse_relu(names, ops, set(rt.outputs), users)
        self.ops = tuple(fused)  # (kind, ints, buffers) per op, in order
        self.plan = lib.Plan(self.ops)
        #: ops that compute the values folded away (a fused ReLU's input), or None
        self.fill = lib.Plan(tuple(fill)) if fill else None

    # ----------------------------------------------------------------- ops
    def _op(self, name: str, node: Any, k: Any, xs: list[np.ndarray], y: np.ndarray) -> tuple:
        B = self.batch
        im = self.int_mode
        if isinstance(node, (Delay, DelayLinear)):
            return self._delay(name, node, k, xs[0], y)
        if isinstance(node, Linear):
            w = k.params["weight"]
            b = k.params.get("bias")
            n_out, n_in = w.shape
            if not im:
                if w.dtype != np.float32 or not w.flags.c_contiguous:
                    raise Unsupported("float weights not float32 C-contiguous")
                if b is not None and (b.dtype != np.float32 or not b.flags.c_contiguous):
                    raise Unsupported("float bias not float32")
                scratch = np.zeros(n_in, np.int32)
                self._keep.append(scratch)
                return (
                    OPS["linear_f"],
                    (B, n_in, n_out, int(b is not None)),
                    (xs[0], y, w, b, scratch),
                )
            return self._affine("linear_i8", k, xs[0], y, n_in, (B, n_in, n_out))
        if isinstance(node, (Conv2d, Conv1d)):
            if not im:
                raise Unsupported("float convolution")
            w = k.params["weight"]
            if isinstance(node, Conv2d):
                c, h, wd = k.ctx.in_shapes[0]
                co, ho, wo = k.ctx.out_shape
                kh, kw = w.shape[2:]
                g = _geom(
                    c,
                    h,
                    wd,
                    co,
                    kh,
                    kw,
                    *node.stride,
                    *node.padding,
                    *node.dilation,
                    ho,
                    wo,
                    node.groups,
                )
            else:
                c, length = k.ctx.in_shapes[0]
                co, lo = k.ctx.out_shape
                g = _geom(
                    c,
                    1,
                    length,
                    co,
                    1,
                    w.shape[2],
                    1,
                    node.stride[0],
                    0,
                    node.padding[0],
                    1,
                    node.dilation[0],
                    1,
                    lo,
                    node.groups,
                )
            fan_in = int(np.prod(w.shape[1:]))
            return self._affine("conv_i8", k, xs[0], y, fan_in, None, g)
        if isinstance(node, (MaxPool2d, AvgPool2d, SumPool2d)):
            if not im:
                raise Unsupported("float pooling")
            c, h, wd = k.ctx.in_shapes[0]
            _, ho, wo = k.ctx.out_shape
            g = _geom(c, h, wd, c, *node.kernel, *node.stride, *node.padding, 1, 1, ho, wo, 1)
            in_q = k.ctx.in_quants[0]
            if isinstance(node, MaxPool2d):
                mode, pad, lo, hi = 0, int(np.iinfo(in_q.dtype).min), 0, 0
            elif isinstance(node, AvgPool2d):  # pad: the unsigned codes' offset (firmware)
                mode, pad, (lo, hi) = 1, int(k.off), (k.qmin, k.qmax)
            else:
                mode, pad, lo, hi = 2, 0, 0, 0
            return (OPS["pool_i"], (B, mode, pad, lo, hi) + g, (xs[0], y))
        if isinstance(node, Add):
            if not im:
                raise Unsupported("float add")
            if k.single:
                mul = (k.ma, k.mb, 0, 0, 0, k.k, 1)
            else:
                mul = (k.ma, k.mb, k.mo, k.sha, k.shb, k.sho, 0)
            ints = (B, int(np.prod(y.shape[1:])), k.za, k.zb, k.zo, k.lo, k.hi) + mul
            return (
                OPS["add_i"],
                tuple(int(np.asarray(v).ravel()[0]) for v in ints),
                (xs[0], xs[1], y),
            )
        if isinstance(node, ReLU):
            n = int(np.prod(y.shape[1:]))
            if im:
                zp = np.asarray(k.out_quant.zero_point).ravel()[0]
                return (OPS["relu_i"], (B, n, int(zp)), (xs[0], y))
            return (OPS["relu_f"], (B, n, 0), (xs[0], y))
        if isinstance(node, (LIF, IF, LI, CubaLIF)):
            return self._neuron(name, node, k, xs[0], y)
        if isinstance(node, Scale) and im:
            shp = k.ctx.out_shape
            n = int(np.prod(shp))
            qm = _i32(_per_elem(k.qm, shp, np.int64), "qm")
            sh = _per_elem(k.sh, shp, np.int8)
            sign = _per_elem(k.sign, shp, np.int8)
            self._keep += [qm, sh, sign]
            ints = (B, n, int(k.zi), int(k.zo), int(k.lo), int(k.hi))
            return (OPS["scale_i"], ints, (xs[0], y, qm, sh, sign))
        if isinstance(node, Threshold) and im:
            th = _per_elem(k.th, k.ctx.out_shape, np.int64)
            self._keep.append(th)
            return (OPS["threshold_i"], (B, th.size), (xs[0], y, th))
        raise Unsupported(f"no native op for {type(node).__name__}")

    def _affine(
        self,
        kind: str,
        k: Any,
        x: np.ndarray,
        y: np.ndarray,
        fan_in: int,
        head: tuple | None,
        geom: tuple = (),
    ) -> tuple:
        w = k.params["weight"]
        if w.dtype != np.int8 or not w.flags.c_contiguous:
            raise Unsupported("weights are not int8 codes")
        n_out = w.shape[0]
        b = k.params.get("bias")
        bias = _i32(np.zeros(n_out) if b is None else b, "bias")
        in_q = k.ctx.in_quants[0]
        lo, hi = in_q.range
        max_x = max(abs(lo - k.zp_in), abs(hi - k.zp_in))
        # the C kernels accumulate modulo 2^32: use them only where the exact sum fits
        if int(np.abs(bias.astype(np.int64)).max(initial=0)) + 128 * fan_in * max_x >= 2**31:
            raise Unsupported("int32 accumulator could overflow")
        qm, shift = _i32(k.qm, "qm"), np.ascontiguousarray(k.shift, dtype=np.int8)
        self._keep += [bias, qm, shift]
        bufs: tuple = (x, y, w, bias, qm, shift)
        if head is not None:  # linear: B n_in n_out zp_in zp_out lo hi
            ints = head + (k.zp_in, k.zp_out, k.out_min, k.out_max)
        else:  # conv: B zp_in zp_out lo hi geom u8 off
            c_in, h, wd, c_out, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo, groups = geom
            fits = (ho - 1) * sh + (kh - 1) * dh < h + 2 * ph and (wo - 1) * sw + (
                kw - 1
            ) * dw < wd + 2 * pw
            # u8 form: codes x + off in [0, 255], padding holds zp_in + off; it pays where
            # the CPU multiplies u8 x s8 quads (VNNI), else the int16 pairs (AVX2 vpmaddwd)
            off = -int(lo)
            u8 = (
                hi - lo <= 255
                and 0 <= k.zp_in + off <= 255
                and native_module().isa() == "avx512vnni"
            )
            ints = (self.batch, k.zp_in, k.zp_out, k.out_min, k.out_max) + geom
            ints += (int(u8), off if u8 else 0)
            if max_x <= 32767 and fits:  # x - zp_in fits int16: padded planes, written
                # inside by the kernel; their border holds the padding value set here
                n_pad = c_in * (h + 2 * ph) * (wd + 2 * pw)
                if u8:  # + 128 bytes the u8 depthwise kernel may read past the planes
                    scratch = [np.full(n_pad + 128, k.zp_in + off, np.uint8)]
                else:
                    scratch = [np.zeros(n_pad, np.int16)]
                if groups == 1:  # im2col int16 pairs / u8 quads (pixels padded to 16)
                    kk = (c_in * kh * kw + 3) // 4 if u8 else (c_in * kh * kw + 1) // 2
                    mp = -(-c_out // 4) * 4
                    scratch.append(np.zeros(kk * -(-ho * wo // 16) * 16, np.int32))
                    scratch.append(np.zeros(kk * mp + (mp if u8 else 0), np.int32))
                self._keep += scratch
                bufs += tuple(scratch)
        return (OPS[kind], tuple(int(v) for v in ints), bufs)

    def _ring(self, name: str, k: Any) -> tuple[np.ndarray, np.ndarray]:
        st = self.rt.state.get(name) or k.init_state(self.batch)
        self.state_refs[name] = st
        buf, ptr = st.buf, st.ptr
        for a in (buf, ptr):
            if not (a.flags.c_contiguous and a.flags.writeable):
                raise Unsupported("ring state not writable")
        if ptr.dtype != np.int64 or ptr.shape != ():
            raise Unsupported("ring pointer not an int64 scalar")
        return buf, ptr

    def _delay(self, name: str, node: Any, k: Any, x: np.ndarray, y: np.ndarray) -> tuple:
        B = self.batch
        buf, ptr = self._ring(name, k)
        if isinstance(node, Delay):
            ok = buf.dtype == np.float32 if not self.int_mode else buf.dtype.kind == "i"
            if not ok:
                raise Unsupported(f"delay ring of {buf.dtype}")
            d = _per_elem(k.delay, k.ctx.out_shape, np.int64)
            self._keep.append(d)
            return (OPS["delay"], (B, d.size, k.depth, buf.itemsize), (x, y, buf, ptr, d))
        w = k.params["weight"]
        n_out, n_in = w.shape
        d = np.ascontiguousarray(k.delay, dtype=np.int64)
        self._keep.append(d)
        b = k.params.get("bias")
        if not self.int_mode:
            if w.dtype != np.float32 or buf.dtype != np.float32 or not w.flags.c_contiguous:
                raise Unsupported("float delay layer not float32")
            ints = (B, n_in, n_out, k.depth, int(b is not None))
            return (OPS["delay_linear_f"], ints, (x, y, buf, ptr, w, d, b))
        if buf.dtype != np.int64:
            raise Unsupported("integer delay ring not int64")
        _, _, _, bias, qm, shift = self._affine("linear_i8", k, x, y, n_in, (B, n_in, n_out))[2]
        ints = (B, n_in, n_out, k.depth, k.zp_in, k.zp_out, k.out_min, k.out_max)
        return (
            OPS["delay_linear_i"],
            tuple(int(v) for v in ints),
            (x, y, buf, ptr, w, d, bias, qm, shift),
        )

    def _neuron(self, name: str, node: Any, k: Any, x: np.ndarray, y: np.ndarray) -> tuple:
        shape = k.ctx.out_shape
        n = int(np.prod(shape))
        B = self.batch
        st = self.rt.state.get(name) or k.init_state(B)  # a probe builds before reset
        self.state_refs[name] = st
        self.param_refs[name] = k.p
        if not self.int_mode:
            if k.cuba:
                raise Unsupported("float CubaLIF")
            p = k.p
            arrs = [
                _per_elem(getattr(p, f), shape, np.float32)
                for f in ("beta", "gain", "v_th", "v_reset", "v_leak")
            ]
            v = st.v
            if v.dtype != np.float32 or not v.flags.c_contiguous or not v.flags.writeable:
                raise Unsupported("state not float32")
            self._keep += arrs
            return (OPS["lif_f"], (B, n, int(p.subtract), int(k.spiking)), (x, y, v, *arrs))
        p = k.p.lif if k.cuba else k.p
        spiking = bool(k.spiking)
        beta = _i32(_per_elem(p.beta_q, shape, np.int64), "beta")
        zeros = np.zeros(n, np.int32)
        th = _i32(_per_elem(p.v_th, shape, np.int64), "v_th") if spiking else zeros
        reset = _i32(_per_elem(p.v_reset, shape, np.int64), "v_reset") if spiking else zeros
        leak = _i32(_per_elem(p.v_leak, shape, np.int64), "v_leak")
        alpha = _i32(_per_elem(k.p.alpha_q, shape, np.int64), "alpha") if k.cuba else None
        for a in (st.v,) + ((st.i,) if k.cuba else ()):
            if a.dtype != np.int64 or not a.flags.c_contiguous or not a.flags.writeable:
                raise Unsupported("state not int64")
        self._keep += [beta, zeros, th, reset, leak] + ([alpha] if k.cuba else [])
        ints = (B, n, int(k.zp_in), int(spiking), int(p.subtract), int(k.cuba))
        return (
            OPS["neuron_i"],
            ints,
            (x, y, st.v, st.i if k.cuba else None, beta, th, reset, leak, alpha),
        )

    # ---------------------------------------------------------------- step
    def valid(self) -> bool:
        """The runtime still holds the state arrays and neuron params the plan views."""
        rt = self.rt
        for n, st in self.state_refs.items():
            if rt.state.get(n) is not st:
                return False
        for n, p in self.param_refs.items():
            if rt.kernels[n].p is not p:
                return False
        return True

    def outputs(self, squeeze: bool) -> dict[str, np.ndarray]:
        """Copies of the graph outputs after :meth:`step` (batch axis dropped if ``squeeze``)."""
        if squeeze:
            return {o: buf[0].astype(dt) for o, buf, dt in self._outs}
        return {o: buf.astype(dt) for o, buf, dt in self._outs}

    def step(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one step on checked, batched inputs; returns the (reused) value buffers."""
        for name, x in feeds.items():
            if self.int_mode:  # quantize float input (the Input kernel's step)
                x, _ = self.rt.kernels[name].step([x], ())
            self.inputs[name][...] = x  # (unsafe) casting copy, a third of np.copyto's call
        self.plan.run()
        return self.values
