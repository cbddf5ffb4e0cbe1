"""The C STDP kernels of ``neuroplast._native`` behind :func:`_accel.kernels`' signatures.

``native_kernels()`` returns ``(event_apply, stdp_run)`` with exactly the numba kernels'
arguments (``sdk/plasticity/_accel.py``), or ``None`` without the extension. The C code
(``sdk/_native.c``: trace STDP) carries both definitions the project has used, chosen by
:data:`SOFT_PER_TERM`:

* summed: a synapse hit by the post- and the pre-spike term in one step has the soft
  (multiplicative) bound applied to their sum; any non-zero spike sets a nearest trace;
* per term (the documented rule): each term is bounded apart; only positive spikes set
  nearest traces; a 10th constant ``rate_cap`` skips saturated steps (more than one and
  more than ``rate_cap * n_pre`` active inputs: no update, no trace increment).

``SOFT_PER_TERM = None`` (default) takes the definition from the caller: per term when it
passes the 10-constant form (``stdp_run``); ``event_apply`` then uses the summed one.

:func:`step_plan` is the engine's streaming form: one ``stdp_run`` step (float32 weights and
activity) bound once to fixed arrays and run in place by a zero-argument call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["native_kernels", "step_plan", "SOFT_PER_TERM"]

#: None: per term iff ``stdp_run`` gets 10 constants; True / False force a definition.
SOFT_PER_TERM: bool | None = None


def native_kernels() -> tuple[Any, Any] | None:
    """``(event_apply, stdp_run)`` over the compiled kernels, or ``None``."""
    from neuroplast.runtime.native import native_module

    lib = native_module()
    return None if lib is None else _wrap(lib)


def _f64(a: Any) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64)


def _wrap(lib: Any) -> tuple[Any, Any]:
    """The numba kernels' signatures over ``neuroplast._native`` (sdk/_native.c)."""
    from neuroplast.runtime.native import OPS

    scratch: dict[tuple[int, int], tuple[np.ndarray, ...]] = {}

    def _scratch(n_post: int, n_pre: int) -> tuple[np.ndarray, ...]:
        s = scratch.get((n_post, n_pre))
        if s is None:
            s = scratch[(n_post, n_pre)] = (
                np.zeros(n_post, np.int64),
                np.zeros(n_pre, np.int64),
                np.zeros(n_post),
                np.zeros(n_pre),
                np.zeros(n_post, np.uint8),
            )
        return s

    def _kind(w: np.ndarray, f32: str, f64: str) -> int:
        if w.dtype == np.float32:
            return OPS[f32]
        if w.dtype == np.float64:
            return OPS[f64]
        raise TypeError(f"STDP weights must be float32 or float64, not {w.dtype}")

    def event_apply(w, rows, cols, gain_rows, x, coef_full, y, mult, lo, hi, use_cols):  # noqa: ANN001, ANN202
        """In place on ``w`` (float32/float64, C order); as the numba kernel."""
        n_post, n_pre = w.shape
        rows = np.ascontiguousarray(rows, np.int64)
        cols = np.ascontiguousarray(cols, np.int64)
        ints = (1, n_post, n_pre, rows.size, cols.size, int(bool(mult)), int(bool(use_cols)),
                int(bool(SOFT_PER_TERM)))  # fmt: skip
        bufs = (w, rows, cols, _f64(gain_rows), _f64(x), _f64(coef_full), _f64(y))
        lib.op(_kind(w, "stdp_event_f32", "stdp_event_f64"), ints,
               bufs + (_scratch(n_post, n_pre)[4],), (float(lo), float(hi)))  # fmt: skip

    def stdp_run(w, pre_t, post_t, x, y, y2, consts, nearest, mult, dc):  # noqa: ANN001, ANN202
        """Whole trains, in place on ``w`` and the float64 traces ``x``, ``y``, ``y2``.
        Trains may be float32 or float64 (float32 ones are widened in C, no copy here)."""
        n_post, n_pre = w.shape
        # the 10-constant definition (with rate_cap) bounds soft terms apart
        per_term = len(consts) > 9 if SOFT_PER_TERM is None else SOFT_PER_TERM
        f32 = pre_t.dtype == np.float32 and post_t.dtype == np.float32
        dt = np.float32 if f32 else np.float64
        pre_t = np.ascontiguousarray(pre_t, dtype=dt)
        post_t = np.ascontiguousarray(post_t, dtype=dt)
        ints = (1, n_post, n_pre, pre_t.shape[0], int(bool(nearest)), int(bool(mult)),
                int(bool(dc)), int(f32), int(per_term))  # fmt: skip
        lib.op(
            _kind(w, "stdp_run_f32", "stdp_run_f64"),
            ints,
            (w, pre_t, post_t, x, y, y2, _f64(consts)),
        )

    return event_apply, stdp_run


def _f64_vec(a: Any, n: int) -> bool:
    return (
        type(a) is np.ndarray and a.dtype == np.float64 and a.shape == (n,)
        and a.flags.c_contiguous and a.flags.writeable
    )  # fmt: skip


def step_plan(
    w: np.ndarray,
    pre: np.ndarray,
    post: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    y2: np.ndarray,
    consts: np.ndarray,
    nearest: bool,
    mult: bool,
    dc: bool,
    post_sum: np.ndarray | None = None,
) -> Callable[[], None] | None:
    """One step of ``stdp_run`` on one (pre, post) sample, bound to these very arrays: the
    returned callable does, in place, what ``stdp_run(w, pre[None], post[None], x, y, y2,
    consts, ...)`` does (the same arithmetic, so the same bits) and adds ``post`` to
    ``post_sum`` (float64, ``n_post``; ``None``: no sum). Each call reads the arrays' current
    contents: the caller refills ``pre`` / ``post`` between calls. It raises
    ``FloatingPointError`` with nothing changed when ``pre`` or ``post`` holds NaN/Inf.

    ``w``: float32 ``(n_post, n_pre)``; ``pre`` / ``post``: float32 with ``n_pre`` /
    ``n_post`` values; traces float64; all C-contiguous and writable. ``None`` when the
    extension is missing or an array does not qualify (callers then use ``stdp_run``)."""
    from neuroplast.runtime.native import OPS, native_module

    lib = native_module()
    if lib is None or type(w) is not np.ndarray or w.ndim != 2:
        return None
    n_post, n_pre = w.shape
    for a, n in ((w, n_post * n_pre), (pre, n_pre), (post, n_post)):
        if not (
            type(a) is np.ndarray and a.dtype == np.float32 and a.size == n
            and a.flags.c_contiguous and a.flags.writeable
        ):  # fmt: skip
            return None
    if not all(_f64_vec(a, n) for a, n in ((x, n_pre), (y, n_post), (y2, n_post))):
        return None
    if post_sum is not None and not _f64_vec(post_sum, n_post):
        return None
    cs = np.array(consts, np.float64)  # the plan's own copy
    if cs.shape not in ((9,), (10,)):
        return None
    per_term = cs.size > 9 if SOFT_PER_TERM is None else SOFT_PER_TERM
    # rows, cols (int64), gain, coef, compact coef (float64), is_row (bytes): see _native.c
    scratch = np.zeros((17 * n_post + 24 * n_pre) // 8 + 1)
    ints = (1, n_post, n_pre, int(bool(nearest)), int(bool(mult)), int(bool(dc)), int(per_term))
    bufs = (w, pre, post, x, y, y2, cs, scratch, post_sum)
    return lib.Plan(((OPS["stdp_step_f32"], ints, bufs),)).run
