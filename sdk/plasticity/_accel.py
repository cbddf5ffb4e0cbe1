"""Compiled kernels for event-driven trace STDP (same arithmetic as the numpy path).

:func:`kernels` returns ``(event_apply, stdp_run)``: the C kernels of the optional
``neuroplast._native`` extension (built at install, so the device install has them), else
numba's (numba is only in the ``dev`` extra; ``NEUROPLAST_NO_NUMBA=1`` skips it), else
``None`` and callers fall back to numpy. Both do exactly what ``stdp._event_apply`` /
``stdp.stdp_run`` do, element by element in double, so results agree with the numpy path
to rounding (tested). This is the engine's hook: ``PlasticityEngine`` calls
``kernels()[1]`` once per ``rt.step`` (decay, update, bounds and trace increments in one
call, in place on the layer's weights and the engine's trace arrays) -- or, with the C
kernels and a runtime that hands it the same activity buffers every step (the native plan),
the same step bound once to those arrays (``_native_stdp.step_plan``). :func:`which` names
the kernels in use.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

__all__ = ["kernels", "which"]

_CACHE: dict[str, Any] = {}


def which() -> str:
    """``"native"``, ``"numba"`` or ``"numpy"``: the STDP kernels :func:`kernels` gives."""
    kernels()
    return _CACHE["which"]


def kernels() -> Any | None:
    """``(event_apply, stdp_run)``: the C extension's, else numba's, else ``None``."""
    if "k" in _CACHE:
        return _CACHE["k"]
    from neuroplast.plasticity._native_stdp import native_kernels

    k = native_kernels()  # the C extension's (sdk/plasticity/_native_stdp.py)
    if k is not None:
        _CACHE["k"], _CACHE["which"] = k, "native"
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


def _build(numba: Any) -> tuple[Any, Any]:
    njit = numba.njit(cache=True, nogil=True)

    @njit
    def _soft(d, w, mult, lo, hi):
        # soft bounds per term: potentiation * (hi - w), depression * (w - lo)
        if not mult:
            return d
        if d > 0:
            return d * (hi - w)
        return d * (w - lo)

    @njit
    def _upd(w, i, j, d, lo, hi):
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
                wij = w[i, j]
                d = _soft(g * x[j], wij, mult, lo, hi)
                if use_cols and coef_full[j] != 0.0:
                    d += _soft(y[i] * coef_full[j], wij, mult, lo, hi)
                _upd(w, i, j, d, lo, hi)
        if use_cols:
            for c in range(cols.shape[0]):
                j = cols[c]
                cj = coef_full[j]
                for i in range(n_post):
                    if not is_row[i]:
                        _upd(w, i, j, _soft(y[i] * cj, w[i, j], mult, lo, hi), lo, hi)

    @njit
    def stdp_run(w, pre_t, post_t, x, y, y2, consts, nearest, mult, dc):
        """Whole spike trains; ``consts`` = (a_pre, a_post, a_post2, amp_pre, amp_post,
        g_post, g_pre, lo, hi, rate_cap). Traces decay every step (as the step function);
        a step with more than ``rate_cap * n_pre`` (and more than one) active inputs is
        ignored (no update, no trace increment)."""
        a_pre, a_post, a_post2 = consts[0], consts[1], consts[2]
        amp_pre, amp_post, g_post, g_pre = consts[3], consts[4], consts[5], consts[6]
        lo, hi, cap = consts[7], consts[8], consts[9]
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
            n_active = 0
            for j in range(n_pre):
                if pre_t[t, j] != 0:
                    n_active += 1
            if n_active > 1 and n_active > cap * n_pre:
                continue
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
                    if pre_t[t, j] > 0:  # as the step function: a positive spike sets
                        x[j] = amp_pre
                else:
                    x[j] += amp_pre * pre_t[t, j]
            for r in range(n_rows):
                i = rows[r]
                if nearest:
                    if post_t[t, i] > 0:
                        y[i] = amp_post
                        if dc:
                            y2[i] = 1.0
                else:
                    y[i] += amp_post * post_t[t, i]
                    if dc:
                        y2[i] += post_t[t, i]

    return event_apply, stdp_run
