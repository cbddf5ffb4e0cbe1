"""Compiled kernels for event-driven trace STDP (same arithmetic as the numpy path).

:func:`kernels` returns ``(event_apply, stdp_run)``: the C kernels of the optional
``neuroplast._native`` extension (built at install, so the device install has them), else
numba's (numba is only in the ``dev`` extra; ``NEUROPLAST_NO_NUMBA=1`` skips it), else
``None`` and callers fall back to numpy. Both do exactly what ``stdp._event_apply`` /
``stdp.stdp_run`` do, element by element in double, so results agree with the numpy path
to rounding (tested). This is the engine's hook: ``PlasticityEngine`` calls
``kernels()[1]`` once per ``rt.step`` (decay, update, bounds and trace increments in one
call, in place on the layer's weights and the engine's trace arrays). :func:`which` names
the kernels in use.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

__all__ = ["kernels", "which", "SOFT_PER_TERM"]

_CACHE: dict[str, Any] = {}

#: The definition the compiled kernels follow, as the numpy reference in ``stdp.py`` does:
#: False = soft bounds scale the summed update of a synapse hit by both terms in one step
#: (and a nearest trace is set by any non-zero spike); True = each term is bounded apart
#: (the documented rule) and only positive spikes set nearest traces. A 10th ``consts``
#: value (``rate_cap``) turns on the saturation guard (steps with too many inputs skipped).
SOFT_PER_TERM = False


def which() -> str:
    """``"native"``, ``"numba"`` or ``"numpy"``: the STDP kernels :func:`kernels` gives."""
    kernels()
    return _CACHE["which"]


def kernels() -> Any | None:
    """``(event_apply, stdp_run)``: the C extension's, else numba's, else ``None``."""
    if "k" in _CACHE:
        return _CACHE["k"]
    from neuroplast.runtime.native import native_module

    lib = native_module()
    if lib is not None:
        _CACHE["k"], _CACHE["which"] = _native_kernels(lib), "native"
        return _CACHE["k"]
    _CACHE["which"] = "numpy"
    if os.environ.get("NEUROPLAST_NO_NUMBA", "") not in ("", "0"):
        _CACHE["k"] = None
        return None
    try:
        import numba  # heavy: imported only when an accelerated path is first used
    except ImportError:
        _CACHE["k"] = None
        return None
    from neuroplast.paths import use_user_numba_cache

    use_user_numba_cache(numba)  # compiled kernels go to the user cache, not the source tree
    _CACHE["k"], _CACHE["which"] = _build(numba), "numba"
    return _CACHE["k"]


def _f64(a: Any) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64)


def _native_kernels(lib: Any) -> tuple[Any, Any]:
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
                int(SOFT_PER_TERM))  # fmt: skip
        bufs = (w, rows, cols, _f64(gain_rows), _f64(x), _f64(coef_full), _f64(y))
        lib.op(_kind(w, "stdp_event_f32", "stdp_event_f64"), ints,
               bufs + (_scratch(n_post, n_pre)[4],), (float(lo), float(hi)))  # fmt: skip

    def stdp_run(w, pre_t, post_t, x, y, y2, consts, nearest, mult, dc):  # noqa: ANN001, ANN202
        """Whole trains, in place on ``w`` and the float64 traces ``x``, ``y``, ``y2``.
        Trains may be float32 or float64 (float32 ones are widened in C, no copy here)."""
        n_post, n_pre = w.shape
        f32 = pre_t.dtype == np.float32 and post_t.dtype == np.float32
        dt = np.float32 if f32 else np.float64
        pre_t = np.ascontiguousarray(pre_t, dtype=dt)
        post_t = np.ascontiguousarray(post_t, dtype=dt)
        ints = (1, n_post, n_pre, pre_t.shape[0], int(bool(nearest)), int(bool(mult)),
                int(bool(dc)), int(f32), int(SOFT_PER_TERM))  # fmt: skip
        lib.op(
            _kind(w, "stdp_run_f32", "stdp_run_f64"),
            ints,
            (w, pre_t, post_t, x, y, y2, _f64(consts)),
        )

    return event_apply, stdp_run


def _build(numba: Any) -> tuple[Any, Any]:
    njit = numba.njit(cache=True, nogil=True)

    @njit
    def _upd(w, i, j, d, mult, lo, hi):
        if mult:
            if d > 0:
                d = d * (hi - w[i, j])
            else:
                d = d * (w[i, j] - lo)
        v = w[i, j] + d
        if v < lo:
            v = lo
        if v > hi:
            v = hi
        w[i, j] = v

    @njit
    def event_apply(w, rows, cols, gain_rows, x, coef_full, y, mult, lo, hi, use_cols):
        """In place; ``coef_full`` (n_pre,) is the pre-spike coefficient per column
        (0 where no pre spike); ``rows``/``cols`` index the spiking neurons."""
        n_post, n_pre = w.shape
        is_row = np.zeros(n_post, np.bool_)
        for r in range(rows.shape[0]):
            i = rows[r]
            is_row[i] = True
            g = gain_rows[r]
            for j in range(n_pre):
                d = g * x[j]
                if use_cols and coef_full[j] != 0.0:
                    d += y[i] * coef_full[j]
                _upd(w, i, j, d, mult, lo, hi)
        if use_cols:
            for c in range(cols.shape[0]):
                j = cols[c]
                cj = coef_full[j]
                for i in range(n_post):
                    if not is_row[i]:
                        _upd(w, i, j, y[i] * cj, mult, lo, hi)

    @njit
    def stdp_run(w, pre_t, post_t, x, y, y2, consts, nearest, mult, dc):
        """Whole spike trains; ``consts`` = (a_pre, a_post, a_post2, amp_pre, amp_post,
        g_post, g_pre, lo, hi). Traces decay every step (as the step function)."""
        a_pre, a_post, a_post2 = consts[0], consts[1], consts[2]
        amp_pre, amp_post, g_post, g_pre = consts[3], consts[4], consts[5], consts[6]
        lo, hi = consts[7], consts[8]
        n_post, n_pre = w.shape
        coef = np.zeros(n_pre)
        use_cols = g_pre != 0.0
        for t in range(pre_t.shape[0]):
            for j in range(n_pre):
                x[j] *= a_pre
            for i in range(n_post):
                y[i] *= a_post
                if dc:
                    y2[i] *= a_post2
            n_rows = 0
            for i in range(n_post):
                if post_t[t, i] != 0:
                    n_rows += 1
            rows = np.empty(n_rows, np.int64)
            gain = np.empty(n_rows)
            k = 0
            for i in range(n_post):
                if post_t[t, i] != 0:
                    rows[k] = i
                    gain[k] = (g_post * y2[i] if dc else g_post) * post_t[t, i]
                    k += 1
            n_cols = 0
            for j in range(n_pre):
                coef[j] = g_pre * pre_t[t, j]
                if pre_t[t, j] != 0:
                    n_cols += 1
            cols = np.empty(n_cols, np.int64)
            k = 0
            for j in range(n_pre):
                if pre_t[t, j] != 0:
                    cols[k] = j
                    k += 1
            if n_rows or n_cols:
                event_apply(w, rows, cols, gain, x, coef, y, mult, lo, hi, use_cols)
            for c in range(n_cols):
                j = cols[c]
                if nearest:
                    x[j] = amp_pre
                else:
                    x[j] += amp_pre * pre_t[t, j]
            for r in range(n_rows):
                i = rows[r]
                if nearest:
                    y[i] = amp_post
                    if dc:
                        y2[i] = 1.0
                else:
                    y[i] += amp_post * post_t[t, i]
                    if dc:
                        y2[i] += post_t[t, i]

    return event_apply, stdp_run
