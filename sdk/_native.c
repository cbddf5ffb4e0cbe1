/* _native.c -- neuroplast's optional compiled fast path (a CPython extension).
 *
 * The integer kernels are the firmware's own (firmware_bridge/firmware/np_kernels.c, linked
 * into this module unchanged), so host and board agree by construction. This file adds:
 *   - a plan: a list of ops over caller-owned (numpy) buffers, run in one call per step
 *     (no Python per layer), holding buffer views so in-place weight updates are seen;
 *   - float32 kernels the firmware has no use for (dense/event-driven linear, LIF/LI);
 *   - trace STDP (event-driven update, whole-train run) on float32/float64 weights.
 * numpy (sdk/runtime/kernels.py, sdk/neurons.py, sdk/plasticity/stdp.py) stays the
 * reference; tests compare the two. No numpy headers: buffers come by the buffer protocol
 * and the Python side (sdk/runtime/native.py) checks dtypes; this file checks sizes. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "np_kernels.h"

enum {
    OP_LINEAR_I8 = 1,
    OP_CONV_I8 = 2,
    OP_POOL_I = 3,
    OP_ADD_I = 4,
    OP_RELU_I = 5,
    OP_NEURON_I = 6,
    OP_LINEAR_F = 7,
    OP_LIF_F = 8,
    OP_RELU_F = 9,
    OP_SCALE_I = 10,
    OP_THRESHOLD_I = 11,
    OP_DELAY = 12,
    OP_DELAY_LINEAR_F = 13,
    OP_DELAY_LINEAR_I = 14,
    OP_RING_SPLIT = 30,
    OP_PULL_ROWS = 31,
    OP_EVENT_SCATTER = 32,
    OP_EVENT_SCATTER_I = 33,
    OP_PULL_INT = 34,
    OP_STDP_EVENT_F32 = 20,
    OP_STDP_EVENT_F64 = 21,
    OP_STDP_RUN_F32 = 22,
    OP_STDP_RUN_F64 = 23,
    OP_STDP_STEP_F32 = 24,
};

#define MAX_BUFS 16
#define MAX_INTS 26
#define MAX_DBLS 12

typedef struct {
    int kind;
    int nb;
    Py_buffer view[MAX_BUFS];
    void *b[MAX_BUFS];
    Py_ssize_t len[MAX_BUFS]; /* bytes */
    long long i[MAX_INTS];
    double d[MAX_DBLS];
    int ni, nd;
    int status; /* set by op_run: -1 = out of memory */
} op_t;

/* x86-64 with GCC: per-ISA clones of the hot loops (see the integer convolution notes) */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define NP_X86 1
#include <immintrin.h>
#define NP_HOST_CLONE __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#define NP_T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
#define NP_T256 __attribute__((target("avx2")))
/* 8-lane float loops (the event layer's row chunks): AVX-512 halves run no faster on Zen 4 */
#define NP_AVX2_CLONE __attribute__((target_clones("avx2", "default")))
#else
#define NP_HOST_CLONE
#define NP_AVX2_CLONE
#endif

enum { NP_ISA_PORTABLE = 0, NP_ISA_AVX2 = 1, NP_ISA_AVX512VNNI = 2 };
static int isa_level(void); /* the level in use: detected once, _native.isa() sets it */

/* ------------------------------------------------------------------ float kernels */

/* idx[0..k) = the positions of the non-zero values of a[0..n) (NaN counts, -0.0 does not),
 * ascending; returns k. Blocks of 8 zeros are skipped on one OR of their bits; inside a
 * block the compaction is branch-free (spikes are too irregular for the branch predictor). */
#define NP_NONZERO(NAME, T)                                                                \
    static int NAME(const float *a, int n, T *idx)                                         \
    {                                                                                      \
        const uint32_t *u = (const uint32_t *)(const void *)a;                             \
        int j = 0, k = 0, q;                                                               \
        for (; j + 8 <= n; j += 8) {                                                       \
            uint32_t any = 0;                                                              \
            for (q = 0; q < 8; q++) any |= u[j + q] << 1;                                  \
            if (!any) continue;                                                            \
            for (q = 0; q < 8; q++) {                                                      \
                idx[k] = (T)(j + q);                                                       \
                k += (u[j + q] << 1) != 0;                                                 \
            }                                                                              \
        }                                                                                  \
        for (; j < n; j++) {                                                               \
            idx[k] = (T)j;                                                                 \
            k += (u[j] << 1) != 0;                                                         \
        }                                                                                  \
        return k;                                                                          \
    }
NP_NONZERO(nonzero_i32, int)
NP_NONZERO(nonzero_i64, long long)

/* One row's 16 lane sums folded to a float, with the tail sum s (fixed order). */
static inline float fold16(const float *a_in, float s)
{
    float a[16];
    int k;
    for (k = 0; k < 16; k++) a[k] = a_in[k];
    for (k = 0; k < 8; k++) a[k] += a[k + 8];
    for (k = 0; k < 4; k++) a[k] += a[k + 4];
    return s + ((a[0] + a[2]) + (a[1] + a[3]));
}

/* Dense float rows: y[o] = bias[o] + sum_j w[o, j] x[j] as 16 lane sums per row, 4 rows per
 * pass so each x vector is loaded once for four rows (each row's sum in the same order as
 * a row alone); AVX-512 / AVX2 / baseline clones (a 1024 x 1024 step ran ~10x slower as
 * baseline one-row code than numpy's BLAS GEMV). */
#ifdef NP_X86
/* The 4-row pass with the 16 lane sums of each row in two ymm registers (lane k of the
 * pair is a[k] of the portable loop, so the same sums in the same order). */
NP_T256 static int dense_rows4_avx2(const float *xb, int n_in, int n_out, const float *w,
                                    const float *bias, float *yb)
{
    int o = 0, j, r;
    for (; o + 4 <= n_out; o += 4) {
        const float *wr[4];
        __m256 lo[4], hi[4];
        float a[16], t[4] = {0};
        for (r = 0; r < 4; r++) {
            wr[r] = w + (size_t)(o + r) * n_in;
            lo[r] = _mm256_setzero_ps(), hi[r] = _mm256_setzero_ps();
        }
        for (j = 0; j + 16 <= n_in; j += 16) {
            const __m256 x0 = _mm256_loadu_ps(xb + j), x1 = _mm256_loadu_ps(xb + j + 8);
            for (r = 0; r < 4; r++) {
                lo[r] = _mm256_add_ps(lo[r], _mm256_mul_ps(_mm256_loadu_ps(wr[r] + j), x0));
                hi[r] = _mm256_add_ps(hi[r], _mm256_mul_ps(_mm256_loadu_ps(wr[r] + j + 8), x1));
            }
        }
        for (r = 0; r < 4; r++) {
            int jj;
            for (jj = j; jj < n_in; jj++) t[r] += wr[r][jj] * xb[jj];
            _mm256_storeu_ps(a, lo[r]), _mm256_storeu_ps(a + 8, hi[r]);
            t[r] = fold16(a, t[r]);
            yb[o + r] = bias ? t[r] + bias[o + r] : t[r];
        }
    }
    return o;
}
#endif

NP_HOST_CLONE static void dense_rows_f32(const float *xb, int n_in, int n_out, const float *w,
                                         const float *bias, float *yb)
{
    int o = 0, j, k, r;
#ifdef NP_X86
    if (isa_level() >= NP_ISA_AVX2) o = dense_rows4_avx2(xb, n_in, n_out, w, bias, yb);
#endif
    for (; o + 4 <= n_out; o += 4) {
        const float *w0 = w + (size_t)o * n_in, *w1 = w0 + n_in, *w2 = w1 + n_in;
        const float *w3 = w2 + n_in;
        float a0[16] = {0}, a1[16] = {0}, a2[16] = {0}, a3[16] = {0}, t[4] = {0};
        for (j = 0; j + 16 <= n_in; j += 16)
            for (k = 0; k < 16; k++) {
                const float xv = xb[j + k];
                a0[k] += w0[j + k] * xv;
                a1[k] += w1[j + k] * xv;
                a2[k] += w2[j + k] * xv;
                a3[k] += w3[j + k] * xv;
            }
        for (; j < n_in; j++) {
            t[0] += w0[j] * xb[j];
            t[1] += w1[j] * xb[j];
            t[2] += w2[j] * xb[j];
            t[3] += w3[j] * xb[j];
        }
        t[0] = fold16(a0, t[0]), t[1] = fold16(a1, t[1]);
        t[2] = fold16(a2, t[2]), t[3] = fold16(a3, t[3]);
        for (r = 0; r < 4; r++) yb[o + r] = bias ? t[r] + bias[o + r] : t[r];
    }
    for (; o < n_out; o++) {
        const float *wr = w + (size_t)o * n_in;
        float a[16] = {0}, s = 0.0f;
        for (j = 0; j + 16 <= n_in; j += 16)
            for (k = 0; k < 16; k++) a[k] += wr[j + k] * xb[j + k];
        for (; j < n_in; j++) s += wr[j] * xb[j];
        s = fold16(a, s);
        yb[o] = bias ? s + bias[o] : s;
    }
}

/* y[b, o] = bias[o] + sum_j w[o, j] x[b, j]. Inputs with few non-zeros (spikes) take the
 * event-driven path (only the active columns, accumulated in double and rounded once);
 * dense inputs 16-lane float32 dot products (dense_rows_f32; no FMA contraction; summation
 * order differs from BLAS's, so results agree with numpy to float32 rounding, not bit for
 * bit). */
static void linear_f32(const float *x, int batch, int n_in, int n_out, const float *w,
                       const float *bias, float *y, int *idx)
{
    int b, o, k;
    for (b = 0; b < batch; b++) {
        const float *xb = x + (size_t)b * n_in;
        float *yb = y + (size_t)b * n_out;
        const int nnz = nonzero_i32(xb, n_in, idx);
        if (nnz * 8 < n_in) { /* ~the measured break-even of the two paths (1024 x 1024, AVX2) */
            o = 0;
            /* 4 rows at a time: four independent sums (each in the same order as one row
             * alone, so the same bits), not one sum's add latency per active input */
            for (; o + 4 <= n_out; o += 4) {
                const float *w0 = w + (size_t)o * n_in, *w1 = w0 + n_in, *w2 = w1 + n_in;
                const float *w3 = w2 + n_in;
                double a0 = bias ? (double)bias[o] : 0.0, a1 = bias ? (double)bias[o + 1] : 0.0;
                double a2 = bias ? (double)bias[o + 2] : 0.0, a3 = bias ? (double)bias[o + 3] : 0.0;
                for (k = 0; k < nnz; k++) {
                    const int c = idx[k];
                    const double xc = (double)xb[c];
                    a0 += (double)w0[c] * xc;
                    a1 += (double)w1[c] * xc;
                    a2 += (double)w2[c] * xc;
                    a3 += (double)w3[c] * xc;
                }
                yb[o] = (float)a0, yb[o + 1] = (float)a1, yb[o + 2] = (float)a2;
                yb[o + 3] = (float)a3;
            }
            for (; o < n_out; o++) {
                const float *wr = w + (size_t)o * n_in;
                double acc = bias ? (double)bias[o] : 0.0;
                for (k = 0; k < nnz; k++) acc += (double)wr[idx[k]] * (double)xb[idx[k]];
                yb[o] = (float)acc;
            }
        } else {
            dense_rows_f32(xb, n_in, n_out, w, bias, yb);
        }
    }
}

/* ------------------------------------------------------------------ integer convolution
 * Host fast paths of OP_CONV_I8, bit-identical to the firmware's np_conv2d: every output is
 * the exact integer sum bias + sum w*(x - zp_in) (the plan checks it fits int32 and that
 * x - zp_in fits int16, so any summation order gives the same sum) passed through the
 * firmware's requantization y = clamp(((acc*qm + 2^(t-1)) >> t) + zp_out, lo, hi),
 * t = 31 - shift (np_affine_out; its AVX-512 form below computes the same 64-bit products
 * and floor shifts, 16 lanes at a time).
 *
 *  - x - zp_in is written once per call, as int16, into zero-padded planes xs
 *    (c_in x (H + 2 ph) x (W + 2 pw)); padded taps then add exactly 0, as in np_conv2d.
 *    xs comes zeroed from the plan and only its interior is ever written. Inputs whose codes
 *    span <= 256 values may use u8 planes instead (x + off; see the u8 form below).
 *  - dense (groups = 1): im2col into col2[kp][p] = the int16 pair (tap 2kp, tap 2kp+1) of
 *    output pixel p (pixels padded to Pp, a multiple of 16), weights w2[oc][kp] the matching
 *    int16 pairs (repacked from the int8 weights every call, so in-place weight updates are
 *    seen); y[oc][p] = rq(bias + sum_kp pair dot products). AVX-512 VNNI: a 4 x 64
 *    (channels x pixels) register tile accumulates with vpdpwssd (int16 x int16 pairs
 *    summed into int32, not saturating), or vpdpbusd over u8 x s8 quads (the u8 form);
 *    AVX2: 4 x 16 tiles with vpmaddwd; elsewhere portable C loops over the same layouts.
 *  - grouped / depthwise: for each output channel, runs of output pixels accumulate
 *    w * xs[tap offset + j] over the taps (stride 1: a run spans whole padded rows); on
 *    AVX-512 VNNI depthwise layers take two kernel rows per vpdpwssd (int16 row pairs) or
 *    four taps of a row per vpdpbusd (u8).
 * The level in use (isa_level) is detected once; _native.isa() reads or sets it. */

static int np_isa = -1; /* the level the convolution kernels use; -1: not yet detected */

static int isa_detect(void)
{
#ifdef NP_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni"))
        return NP_ISA_AVX512VNNI;
    if (__builtin_cpu_supports("avx2")) return NP_ISA_AVX2;
#endif
    return NP_ISA_PORTABLE;
}

static int isa_level(void)
{
    if (np_isa < 0) np_isa = isa_detect();
    return np_isa;
}

/* y[i] = affine_out(bias + acc[i]) for one output channel: np_affine_out's arithmetic,
 * written so that it vectorises. With a = bias + acc[i] (int32, as np_conv2d's modular
 * sum), p = a*qm (|p| < 2^62) and t = 31 - shift in [1, 62],
 *     floor((p + 2^(t-1)) / 2^t) = ((p + 2^(t-1) + 2^62) >> t) - 2^(62-t),
 * the shifted value being non-negative (a logical shift: no sign branch), then + zp_out
 * and the clamp, as np_requantize and np_affine_out. */
static void rq_row_c(const int32_t *acc, int n, const np_affine_t *q, uint32_t oc, int32_t *y)
{
    const uint32_t bias = (uint32_t)q->bias[oc]; /* modulo 2^32, as np_conv2d's sums */
    const int64_t qm = q->qm[oc], lo = q->out_min, hi = q->out_max;
    const int t = 31 - q->shift[oc];
    const uint64_t add = ((uint64_t)1 << (t - 1)) + ((uint64_t)1 << 62);
    const int64_t sub = ((int64_t)1 << (62 - t)) - (int64_t)q->zp_out;
    int i;
    for (i = 0; i < n; i++) {
        const int64_t a = (int32_t)(bias + (uint32_t)acc[i]);
        int64_t v = (int64_t)(((uint64_t)(a * qm) + add) >> t) - sub;
        v = v < lo ? lo : v;
        y[i] = (int32_t)(v > hi ? hi : v);
    }
}

#ifdef NP_X86
/* 16 lanes of np_affine_out for one channel: even and odd int32 lanes go through 64-bit
 * products (vpmuldq), the rounding add and an arithmetic shift by t (the floor shift of
 * np_asr64), + zp_out, clamped, then interleaved back. |a| < 2^31 and qm < 2^31, so the
 * product and the rounding term stay inside int64 (as in np_requantize). */
NP_T512 static inline __m512i rq16(__m512i a, __m512i qm, __m128i t, __m512i rnd, __m512i zo,
                                   __m512i lo, __m512i hi)
{
    __m512i e = _mm512_mul_epi32(a, qm), o = _mm512_mul_epi32(_mm512_srli_epi64(a, 32), qm);
    e = _mm512_add_epi64(_mm512_sra_epi64(_mm512_add_epi64(e, rnd), t), zo);
    o = _mm512_add_epi64(_mm512_sra_epi64(_mm512_add_epi64(o, rnd), t), zo);
    e = _mm512_min_epi64(_mm512_max_epi64(e, lo), hi);
    o = _mm512_min_epi64(_mm512_max_epi64(o, lo), hi);
    return _mm512_mask_blend_epi32((__mmask16)0xAAAA, e, _mm512_slli_epi64(o, 32));
}

typedef struct {
    __m512i bias, qm, rnd, zo, lo, hi;
    __m128i t;
} rq512_t;

NP_T512 static inline void rq512_init(rq512_t *r, const np_affine_t *q, uint32_t oc)
{
    const int t = 31 - q->shift[oc];
    r->bias = _mm512_set1_epi32(q->bias[oc]);
    r->qm = _mm512_set1_epi64(q->qm[oc]);
    r->rnd = _mm512_set1_epi64((long long)1 << (t - 1));
    r->zo = _mm512_set1_epi64(q->zp_out);
    r->lo = _mm512_set1_epi64(q->out_min);
    r->hi = _mm512_set1_epi64(q->out_max);
    r->t = _mm_cvtsi32_si128(t);
}

NP_T512 static inline void rq512_store(const rq512_t *r, __m512i acc, int32_t *y, int n)
{
    __m512i v = rq16(_mm512_add_epi32(acc, r->bias), r->qm, r->t, r->rnd, r->zo, r->lo, r->hi);
    if (n >= 16) _mm512_storeu_si512((void *)y, v);
    else _mm512_mask_storeu_epi32(y, (__mmask16)((1u << n) - 1u), v);
}

NP_T512 static void rq_row_512(const int32_t *acc, int n, const np_affine_t *q, uint32_t oc,
                               int32_t *y)
{
    rq512_t r;
    int i;
    rq512_init(&r, q, oc);
    for (i = 0; i < n; i += 16) {
        const int m = n - i < 16 ? n - i : 16;
        __m512i a = _mm512_maskz_loadu_epi32((__mmask16)((1u << m) - 1u), acc + i);
        rq512_store(&r, a, y + i, m);
    }
}

/* y[oc][p] for a 4-channel x 64-pixel tile per step (nv = pixel vectors in the tile); DP is
 * vpdpwssd (int16 pairs) or vpdpbusd (u8 x s8 quads: 4 taps per lane, summed exactly into
 * the int32 lane, not saturating) */
#define NP_GEMM_VNNI(NAME, DP)                                                                               \
NP_T512 static void NAME(const int32_t *col2, const int32_t *w2, int Kh, int P, size_t Pp,                   \
                              int c_out, const np_affine_t *q, int32_t *y)                                   \
{                                                                                                            \
    int p0, m0, kp, m, v;                                                                                    \
    for (p0 = 0; p0 < P; p0 += 64) {                                                                         \
        const int nv = P - p0 >= 64 ? 4 : (P - p0 + 15) / 16;                                                \
        const int32_t *cb = col2 + p0;                                                                       \
        for (m0 = 0; m0 < c_out; m0 += 4) {                                                                  \
            const int32_t *w0 = w2 + (size_t)m0 * Kh, *w1 = w0 + Kh, *w2_ = w1 + Kh,                         \
                          *w3 = w2_ + Kh;                                                                    \
            __m512i acc[4][4];                                                                               \
            for (m = 0; m < 4; m++)                                                                          \
                for (v = 0; v < 4; v++) acc[m][v] = _mm512_setzero_si512();                                  \
            if (nv == 4) {                                                                                   \
                for (kp = 0; kp < Kh; kp++) {                                                                \
                    const int32_t *c = cb + (size_t)kp * Pp;                                                 \
                    const __m512i c0 = _mm512_loadu_si512((const void *)c),                                  \
                                  c1 = _mm512_loadu_si512((const void *)(c + 16)),                           \
                                  c2 = _mm512_loadu_si512((const void *)(c + 32)),                           \
                                  c3 = _mm512_loadu_si512((const void *)(c + 48));                           \
                    __m512i wv = _mm512_set1_epi32(w0[kp]);                                                  \
                    acc[0][0] = DP(acc[0][0], c0, wv);                                                       \
                    acc[0][1] = DP(acc[0][1], c1, wv);                                                       \
                    acc[0][2] = DP(acc[0][2], c2, wv);                                                       \
                    acc[0][3] = DP(acc[0][3], c3, wv);                                                       \
                    wv = _mm512_set1_epi32(w1[kp]);                                                          \
                    acc[1][0] = DP(acc[1][0], c0, wv);                                                       \
                    acc[1][1] = DP(acc[1][1], c1, wv);                                                       \
                    acc[1][2] = DP(acc[1][2], c2, wv);                                                       \
                    acc[1][3] = DP(acc[1][3], c3, wv);                                                       \
                    wv = _mm512_set1_epi32(w2_[kp]);                                                         \
                    acc[2][0] = DP(acc[2][0], c0, wv);                                                       \
                    acc[2][1] = DP(acc[2][1], c1, wv);                                                       \
                    acc[2][2] = DP(acc[2][2], c2, wv);                                                       \
                    acc[2][3] = DP(acc[2][3], c3, wv);                                                       \
                    wv = _mm512_set1_epi32(w3[kp]);                                                          \
                    acc[3][0] = DP(acc[3][0], c0, wv);                                                       \
                    acc[3][1] = DP(acc[3][1], c1, wv);                                                       \
                    acc[3][2] = DP(acc[3][2], c2, wv);                                                       \
                    acc[3][3] = DP(acc[3][3], c3, wv);                                                       \
                }                                                                                            \
            } else {                                                                                         \
                for (kp = 0; kp < Kh; kp++) {                                                                \
                    const int32_t *c = cb + (size_t)kp * Pp;                                                 \
                    for (v = 0; v < nv; v++) {                                                               \
                        const __m512i cv = _mm512_loadu_si512((const void *)(c + 16 * v));                   \
                        acc[0][v] = DP(acc[0][v], cv, _mm512_set1_epi32(w0[kp]));                            \
                        acc[1][v] = DP(acc[1][v], cv, _mm512_set1_epi32(w1[kp]));                            \
                        acc[2][v] = DP(acc[2][v], cv, _mm512_set1_epi32(w2_[kp]));                           \
                        acc[3][v] = DP(acc[3][v], cv, _mm512_set1_epi32(w3[kp]));                            \
                    }                                                                                        \
                }                                                                                            \
            }                                                                                                \
            for (m = 0; m < 4 && m0 + m < c_out; m++) {                                                      \
                rq512_t r;                                                                                   \
                int32_t *yo = y + (size_t)(m0 + m) * P + p0;                                                 \
                rq512_init(&r, q, (uint32_t)(m0 + m));                                                       \
                for (v = 0; v < nv; v++) rq512_store(&r, acc[m][v], yo + 16 * v, P - p0 - 16 * v);           \
            }                                                                                                \
        }                                                                                                    \
    }                                                                                                        \
}
NP_GEMM_VNNI(gemm_vnni, _mm512_dpwssd_epi32)
NP_GEMM_VNNI(gemm_vnni_u8, _mm512_dpbusd_epi32)
#endif

#ifdef NP_X86
/* the int16-pair kernel on AVX2 (vpmaddwd: int16 x int16 pairs summed into int32; with
 * |w| <= 128 and |x - zp_in| <= 32767 no pair sum reaches 2^31): 4 channels x 16 pixels
 * in registers, the requantization (rq_row_c, vectorised here) from a small tile */
NP_T256 static void gemm_avx2(const int32_t *col2, const int32_t *w2, int Kh, int P, size_t Pp,
                              int c_out, const np_affine_t *q, int32_t *y)
{
    int p0, m0, kp, m;
    int32_t tile[4][16];
    for (p0 = 0; p0 < P; p0 += 16) {
        const int n = P - p0 < 16 ? P - p0 : 16;
        for (m0 = 0; m0 < c_out; m0 += 4) {
            const int32_t *w0 = w2 + (size_t)m0 * Kh;
            __m256i a00 = _mm256_setzero_si256(), a01 = a00, a10 = a00, a11 = a00, a20 = a00,
                    a21 = a00, a30 = a00, a31 = a00;
            for (kp = 0; kp < Kh; kp++) {
                const int32_t *c = col2 + (size_t)kp * Pp + p0;
                const __m256i c0 = _mm256_loadu_si256((const __m256i *)c),
                              c1 = _mm256_loadu_si256((const __m256i *)(c + 8));
                __m256i wv = _mm256_set1_epi32(w0[kp]);
                a00 = _mm256_add_epi32(a00, _mm256_madd_epi16(c0, wv));
                a01 = _mm256_add_epi32(a01, _mm256_madd_epi16(c1, wv));
                wv = _mm256_set1_epi32(w0[Kh + kp]);
                a10 = _mm256_add_epi32(a10, _mm256_madd_epi16(c0, wv));
                a11 = _mm256_add_epi32(a11, _mm256_madd_epi16(c1, wv));
                wv = _mm256_set1_epi32(w0[2 * (size_t)Kh + kp]);
                a20 = _mm256_add_epi32(a20, _mm256_madd_epi16(c0, wv));
                a21 = _mm256_add_epi32(a21, _mm256_madd_epi16(c1, wv));
                wv = _mm256_set1_epi32(w0[3 * (size_t)Kh + kp]);
                a30 = _mm256_add_epi32(a30, _mm256_madd_epi16(c0, wv));
                a31 = _mm256_add_epi32(a31, _mm256_madd_epi16(c1, wv));
            }
            _mm256_storeu_si256((__m256i *)tile[0], a00);
            _mm256_storeu_si256((__m256i *)(tile[0] + 8), a01);
            _mm256_storeu_si256((__m256i *)tile[1], a10);
            _mm256_storeu_si256((__m256i *)(tile[1] + 8), a11);
            _mm256_storeu_si256((__m256i *)tile[2], a20);
            _mm256_storeu_si256((__m256i *)(tile[2] + 8), a21);
            _mm256_storeu_si256((__m256i *)tile[3], a30);
            _mm256_storeu_si256((__m256i *)(tile[3] + 8), a31);
            for (m = 0; m < 4 && m0 + m < c_out; m++)
                rq_row_c(tile[m], n, q, (uint32_t)(m0 + m), y + (size_t)(m0 + m) * P + p0);
        }
    }
}
#endif

static void rq_row(const int32_t *acc, int n, const np_affine_t *q, uint32_t oc, int32_t *y)
{
#ifdef NP_X86
    if (isa_level() == NP_ISA_AVX512VNNI) {
        rq_row_512(acc, n, q, oc, y);
        return;
    }
#endif
    rq_row_c(acc, n, q, oc, y);
}

/* the portable dense kernel: the same sums as gemm_vnni, 16 pixels of one channel at a time */
NP_HOST_CLONE
static void gemm_c(const int32_t *col2, const int32_t *w2, int Kh, int P, size_t Pp, int c_out,
                   const np_affine_t *q, int32_t *y)
{
    int oc, p0, kp, i;
    for (oc = 0; oc < c_out; oc++) {
        const int32_t *wr = w2 + (size_t)oc * Kh;
        for (p0 = 0; p0 < P; p0 += 16) {
            int32_t acc[16] = {0};
            for (kp = 0; kp < Kh; kp++) {
                const uint32_t wv = (uint32_t)wr[kp];
                const int32_t wl = (int16_t)(uint16_t)(wv & 0xFFFFu);
                const int32_t wh = (int16_t)(uint16_t)(wv >> 16);
                const int32_t *c = col2 + (size_t)kp * Pp + p0;
                for (i = 0; i < 16; i++) {
                    const uint32_t cv = (uint32_t)c[i];
                    acc[i] += wl * (int16_t)(uint16_t)(cv & 0xFFFFu) +
                              wh * (int16_t)(uint16_t)(cv >> 16);
                }
            }
            rq_row_c(acc, P - p0 < 16 ? P - p0 : 16, q, (uint32_t)oc, y + (size_t)oc * P + p0);
        }
    }
}

static uint32_t pair16(int32_t lo, int32_t hi)
{
    return (uint32_t)(uint16_t)(int16_t)lo | ((uint32_t)(uint16_t)(int16_t)hi << 16);
}

/* d = s - zp (int16) and d = s + off (u8) over a row: restrict (the u8 stores could alias
 * anything) and fixed 16-wide chunks (short rows vectorise too) */
static inline void row_i16(const int32_t *restrict s, int16_t *restrict d, int n, int32_t zp)
{
    int i = 0, k;
    for (; i + 16 <= n; i += 16)
        for (k = 0; k < 16; k++) d[i + k] = (int16_t)(s[i + k] - zp);
    for (; i < n; i++) d[i] = (int16_t)(s[i] - zp);
}

static inline void row_u8(const int32_t *restrict s, uint8_t *restrict d, int n, int32_t off)
{
    int i = 0, k;
    for (; i + 16 <= n; i += 16)
        for (k = 0; k < 16; k++) d[i + k] = (uint8_t)(s[i + k] + off);
    for (; i < n; i++) d[i] = (uint8_t)(s[i] + off);
}

/* x - zp_in as int16 into the interior of the zero-padded planes xs */
NP_HOST_CLONE
static void pad_planes(const int32_t *x, const np_geom_t *g, int32_t zp, int16_t *xs)
{
    const int H = g->h, W = g->w, Wp = g->w + 2 * g->pw;
    const size_t pplane = (size_t)(g->h + 2 * g->ph) * Wp;
    int c, iy;
    for (c = 0; c < g->c_in; c++)
        for (iy = 0; iy < H; iy++) {
            const int32_t *xr = x + ((size_t)c * H + iy) * W;
            int16_t *dst = xs + c * pplane + (size_t)(iy + g->ph) * Wp + g->pw;
            row_i16(xr, dst, W, zp);
        }
}

/* col2 (see above) from the padded planes; a 1x1, stride-1, unpadded kernel reads x */
NP_HOST_CLONE
static void im2col_pairs(const int32_t *x, const int16_t *xs, const np_geom_t *g, int32_t zp,
                         int K, int Kh, size_t Pp, int32_t *col2)
{
    const int Wp = g->w + 2 * g->pw, Ho = g->ho, Wo = g->wo, sw = g->sw;
    const size_t pplane = (size_t)(g->h + 2 * g->ph) * Wp;
    const int taps = g->kh * g->kw;
    const int P = Ho * Wo;
    int kp, oy, ox, p;
    if (taps == 1 && g->sh == 1 && sw == 1 && !g->ph && !g->pw && Ho == g->h && Wo == g->w) {
        for (kp = 0; kp < Kh; kp++) {
            const int32_t *x0 = x + (size_t)(2 * kp) * P;
            const int32_t *x1 = x0 + P;
            int32_t *dst = col2 + (size_t)kp * Pp;
            if (2 * kp + 1 < K)
                for (p = 0; p < P; p++) dst[p] = (int32_t)pair16(x0[p] - zp, x1[p] - zp);
            else
                for (p = 0; p < P; p++) dst[p] = (int32_t)pair16(x0[p] - zp, 0);
        }
        return;
    }
    for (kp = 0; kp < Kh; kp++) {
        const int16_t *s[2];
        int h;
        int32_t *dst = col2 + (size_t)kp * Pp;
        for (h = 0; h < 2; h++) {
            const int k = 2 * kp + h < K ? 2 * kp + h : 2 * kp; /* a missing tap: weight 0 */
            const int c = k / taps, ky = (k % taps) / g->kw, kx = k % g->kw;
            s[h] = xs + c * pplane + (size_t)ky * g->dh * Wp + (size_t)kx * g->dw;
        }
        for (oy = 0; oy < Ho; oy++) {
            const int16_t *r0 = s[0] + (size_t)oy * g->sh * Wp, *r1 = s[1] + (size_t)oy * g->sh * Wp;
            int32_t *d = dst + (size_t)oy * Wo;
            if (sw == 1)
                for (ox = 0; ox < Wo; ox++) d[ox] = (int32_t)pair16(r0[ox], r1[ox]);
            else
                for (ox = 0; ox < Wo; ox++) d[ox] = (int32_t)pair16(r0[ox * sw], r1[ox * sw]);
        }
    }
}

/* ---- the u8 form of the dense path (inputs whose codes span at most 256 values): with
 * u = x + off in [0, 255] (off = -lo of the input range),
 *     sum_k w_k (x_k - zp_in) = sum_k w_k u_k - (off + zp_in) sum_k w_k,
 * so col4[kq][p] holds 4 taps' u as bytes, w4[oc][kq] the 4 int8 weights, and the constant
 * term joins the bias (bias4[oc], after w4). Padded taps hold u = zp_in + off (they add 0);
 * the plan fills the padded u8 planes' border with it once, the kernel writes the interior. */
static uint32_t quad8(int32_t a, int32_t b, int32_t c, int32_t d)
{
    return (uint32_t)(uint8_t)a | (uint32_t)(uint8_t)b << 8 | (uint32_t)(uint8_t)c << 16 |
           (uint32_t)(uint8_t)d << 24;
}

NP_HOST_CLONE
static void pad_planes_u8(const int32_t *x, const np_geom_t *g, int32_t off, uint8_t *xs)
{
    const int H = g->h, W = g->w, Wp = g->w + 2 * g->pw;
    const size_t pplane = (size_t)(g->h + 2 * g->ph) * Wp;
    int c, iy;
    for (c = 0; c < g->c_in; c++)
        for (iy = 0; iy < H; iy++) {
            const int32_t *xr = x + ((size_t)c * H + iy) * W;
            uint8_t *dst = xs + c * pplane + (size_t)(iy + g->ph) * Wp + g->pw;
            row_u8(xr, dst, W, off);
        }
}

NP_HOST_CLONE
static void im2col_quads(const int32_t *x, const uint8_t *xs, const np_geom_t *g, int32_t off,
                         int K, int Kq, size_t Pp, int32_t *col4)
{
    const int Wp = g->w + 2 * g->pw, Ho = g->ho, Wo = g->wo, sw = g->sw;
    const size_t pplane = (size_t)(g->h + 2 * g->ph) * Wp;
    const int taps = g->kh * g->kw, P = Ho * Wo;
    int kq, oy, ox, p, h;
    if (taps == 1 && g->sh == 1 && sw == 1 && !g->ph && !g->pw && Ho == g->h && Wo == g->w) {
        for (kq = 0; kq < Kq; kq++) {
            const int32_t *xr[4];
            int32_t *dst = col4 + (size_t)kq * Pp;
            for (h = 0; h < 4; h++) /* a missing channel repeats one (its weight is 0) */
                xr[h] = x + (size_t)(4 * kq + h < K ? 4 * kq + h : 4 * kq) * P;
            for (p = 0; p < P; p++)
                dst[p] = (int32_t)quad8(xr[0][p] + off, xr[1][p] + off, xr[2][p] + off,
                                        xr[3][p] + off);
        }
        return;
    }
    for (kq = 0; kq < Kq; kq++) {
        const uint8_t *s[4];
        int32_t *dst = col4 + (size_t)kq * Pp;
        for (h = 0; h < 4; h++) {
            const int k = 4 * kq + h < K ? 4 * kq + h : 4 * kq; /* a missing tap: weight 0 */
            const int c = k / taps, ky = (k % taps) / g->kw, kx = k % g->kw;
            s[h] = xs + c * pplane + (size_t)ky * g->dh * Wp + (size_t)kx * g->dw;
        }
        for (oy = 0; oy < Ho; oy++) {
            const size_t ro = (size_t)oy * g->sh * Wp;
            const uint8_t *r0 = s[0] + ro, *r1 = s[1] + ro, *r2 = s[2] + ro, *r3 = s[3] + ro;
            int32_t *d = dst + (size_t)oy * Wo;
            if (sw == 1)
                for (ox = 0; ox < Wo; ox++) d[ox] = (int32_t)quad8(r0[ox], r1[ox], r2[ox], r3[ox]);
            else
                for (ox = 0; ox < Wo; ox++)
                    d[ox] = (int32_t)quad8(r0[ox * sw], r1[ox * sw], r2[ox * sw], r3[ox * sw]);
        }
    }
}

/* the portable u8 kernel: the same sums as gemm_vnni_u8, 16 pixels of one channel at a time */
NP_HOST_CLONE
static void gemm_c_u8(const int32_t *col4, const int32_t *w4, int Kq, int P, size_t Pp,
                      int c_out, const np_affine_t *q, int32_t *y)
{
    int oc, p0, kq, i, h;
    for (oc = 0; oc < c_out; oc++) {
        const int32_t *wr = w4 + (size_t)oc * Kq;
        for (p0 = 0; p0 < P; p0 += 16) {
            int32_t acc[16] = {0};
            for (kq = 0; kq < Kq; kq++) {
                const uint32_t wv = (uint32_t)wr[kq];
                const int32_t *c = col4 + (size_t)kq * Pp + p0;
                for (h = 0; h < 4; h++) {
                    const int32_t wh = (int8_t)(uint8_t)(wv >> (8 * h));
                    for (i = 0; i < 16; i++)
                        acc[i] += wh * (int32_t)(((uint32_t)c[i] >> (8 * h)) & 0xFFu);
                }
            }
            rq_row_c(acc, P - p0 < 16 ? P - p0 : 16, q, (uint32_t)oc, y + (size_t)oc * P + p0);
        }
    }
}

/* u8 = 1: the u8 form above with offset off (xs is then uint8, w2 holds w4 and bias4) */
static void conv2d_dense(const int32_t *x, const np_geom_t *g, const int8_t *w,
                         const np_affine_t *q, int32_t *y, void *xs, int32_t *col2,
                         int32_t *w2, int u8, int32_t off)
{
    const int K = g->c_in * g->kh * g->kw, Kh = (K + 1) / 2, Kq = (K + 3) / 4;
    const int P = g->ho * g->wo, direct = g->kh * g->kw == 1 && g->sh == 1 && g->sw == 1 &&
                                          !g->ph && !g->pw && g->ho == g->h && g->wo == g->w;
    const size_t Pp = ((size_t)P + 15) & ~(size_t)15;
    int oc, kp;
    if (u8) {
        const size_t mp = ((size_t)g->c_out + 3) & ~(size_t)3;
        int32_t *bias4 = w2 + mp * Kq;
        np_affine_t q4 = *q;
        for (oc = 0; oc < g->c_out; oc++) { /* weight quads (zero past K), folded bias */
            const int8_t *wr = w + (size_t)oc * K;
            int32_t *dr = w2 + (size_t)oc * Kq;
            uint32_t sum = 0;
            int k;
            for (kp = 0; kp < Kq; kp++) {
                int8_t v[4];
                for (k = 0; k < 4; k++) v[k] = 4 * kp + k < K ? wr[4 * kp + k] : 0;
                dr[kp] = (int32_t)quad8(v[0], v[1], v[2], v[3]);
            }
            for (k = 0; k < K; k++) sum += (uint32_t)(int32_t)wr[k];
            /* modulo 2^32, as the sums: the total is exact where it fits int32 */
            bias4[oc] = (int32_t)((uint32_t)q->bias[oc] - (uint32_t)(off + q->zp_in) * sum);
        }
        q4.bias = bias4;
        if (!direct) pad_planes_u8(x, g, off, (uint8_t *)xs);
        im2col_quads(x, (const uint8_t *)xs, g, off, K, Kq, Pp, col2);
#ifdef NP_X86
        if (isa_level() == NP_ISA_AVX512VNNI) {
            gemm_vnni_u8(col2, w2, Kq, P, Pp, g->c_out, &q4, y);
            return;
        }
#endif
        gemm_c_u8(col2, w2, Kq, P, Pp, g->c_out, &q4, y);
        return;
    }
    for (oc = 0; oc < g->c_out; oc++) { /* weight pairs; the odd K's last pair is (w, 0) */
        const int8_t *wr = w + (size_t)oc * K;
        int32_t *dr = w2 + (size_t)oc * Kh;
        for (kp = 0; kp < K / 2; kp++) dr[kp] = (int32_t)pair16(wr[2 * kp], wr[2 * kp + 1]);
        if (K & 1) dr[Kh - 1] = (int32_t)pair16(wr[K - 1], 0);
    }
    if (!direct) pad_planes(x, g, q->zp_in, (int16_t *)xs);
    im2col_pairs(x, (const int16_t *)xs, g, q->zp_in, K, Kh, Pp, col2);
#ifdef NP_X86
    if (isa_level() == NP_ISA_AVX512VNNI) {
        gemm_vnni(col2, w2, Kh, P, Pp, g->c_out, q, y);
        return;
    }
    if (isa_level() == NP_ISA_AVX2) {
        gemm_avx2(col2, w2, Kh, P, Pp, g->c_out, q, y);
        return;
    }
#endif
    gemm_c(col2, w2, Kh, P, Pp, g->c_out, q, y);
}

#ifdef NP_X86
/* Grouped convolution with one input channel per group (depthwise, any multiplier) on
 * AVX-512 VNNI, stride 1 along rows: the channel's padded plane is re-read as row pairs
 * xp[r][col] = (xs[r][col], xs[r + dh][col]), so one vpdpwssd adds two kernel rows' taps
 * (w[ky][kx], w[ky + 1][kx]) for 16 outputs of a row (a missing last row pairs with weight
 * 0). Returns 0 (nothing done) where it does not apply. */
/* out[j] = rq(sum over tap pairs (a, kx) of pair(src[a * arow + kx * dw + j]) . wp[a kw + kx]),
 * j < n, in tiles of 64 (4 accumulators; the tail's loads are masked) */
NP_T512 static void dw_span(const int32_t *src, const int32_t *wp, int kp, int kw, int arow,
                            int dw, int n, const rq512_t *rq, int32_t *out)
{
    int j0, a, kx, v;
    for (j0 = 0; j0 < n; j0 += 64) {
        __mmask16 m[4];
        __m512i acc0 = _mm512_setzero_si512(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
        for (v = 0; v < 4; v++) {
            const int rem = n - j0 - 16 * v;
            m[v] = (__mmask16)(rem >= 16 ? 0xFFFFu : rem <= 0 ? 0u : (1u << rem) - 1u);
        }
        for (a = 0; a < kp; a++)
            for (kx = 0; kx < kw; kx++) {
                const int32_t *s = src + (size_t)a * arow + (size_t)kx * dw + j0;
                const __m512i wv = _mm512_set1_epi32(wp[a * kw + kx]);
                acc0 = _mm512_dpwssd_epi32(acc0, _mm512_maskz_loadu_epi32(m[0], s), wv);
                acc1 = _mm512_dpwssd_epi32(acc1, _mm512_maskz_loadu_epi32(m[1], s + 16), wv);
                acc2 = _mm512_dpwssd_epi32(acc2, _mm512_maskz_loadu_epi32(m[2], s + 32), wv);
                acc3 = _mm512_dpwssd_epi32(acc3, _mm512_maskz_loadu_epi32(m[3], s + 48), wv);
            }
        rq512_store(rq, acc0, out + j0, n - j0);
        if (n - j0 > 16) rq512_store(rq, acc1, out + j0 + 16, n - j0 - 16);
        if (n - j0 > 32) rq512_store(rq, acc2, out + j0 + 32, n - j0 - 32);
        if (n - j0 > 48) rq512_store(rq, acc3, out + j0 + 48, n - j0 - 48);
    }
}

/* a short row copy in 16-lane (masked) moves: a memcpy call per 16..64-value row costs
 * more than the copy */
NP_T512 static inline void copy_row(const int32_t *s, int32_t *d, int n)
{
    int i;
    for (i = 0; i < n; i += 16) {
        const __mmask16 m = (__mmask16)(n - i >= 16 ? 0xFFFFu : (1u << (n - i)) - 1u);
        _mm512_mask_storeu_epi32(d + i, m, _mm512_maskz_loadu_epi32(m, s + i));
    }
}

#define NP_DW_PLANE 8192
#define NP_DW_TAPS 64
NP_T512 static int dw_vnni(const np_geom_t *g, const int8_t *w, const np_affine_t *q,
                           int32_t *y, const int16_t *xs)
{
    const int ocg = g->c_out / g->groups, Hp = g->h + 2 * g->ph, Wp = g->w + 2 * g->pw;
    const int kh = g->kh, kw = g->kw, dh = g->dh, Ho = g->ho, Wo = g->wo;
    const int kp = (kh + 1) / 2;
    const size_t pplane = (size_t)Hp * Wp;
    int32_t xp[NP_DW_PLANE], ob[NP_DW_PLANE], wp[NP_DW_TAPS];
    int c, o, r, col, a, kx, oy;
    if (g->c_in != g->groups || g->sw != 1 || pplane > NP_DW_PLANE || kp * kw > NP_DW_TAPS)
        return 0;
    for (c = 0; c < g->c_in; c++) {
        const int16_t *xc = xs + c * pplane;
        for (r = 0; r < Hp; r++) { /* (row r, row r + dh); past the plane: (row r, 0) */
            const int16_t *r0 = xc + (size_t)r * Wp, *r1 = r0 + (size_t)dh * Wp;
            int32_t *d = xp + (size_t)r * Wp;
            if (kh > 1 && r + dh < Hp)
                for (col = 0; col < Wp; col++) d[col] = (int32_t)pair16(r0[col], r1[col]);
            else
                for (col = 0; col < Wp; col++) d[col] = (int32_t)pair16(r0[col], 0);
        }
        for (o = c * ocg; o < (c + 1) * ocg; o++) {
            const int8_t *wo = w + (size_t)o * kh * kw;
            int32_t *yo = y + (size_t)o * Ho * Wo;
            rq512_t rq;
            rq512_init(&rq, q, (uint32_t)o);
            for (a = 0; a < kp; a++)
                for (kx = 0; kx < kw; kx++)
                    wp[a * kw + kx] = (int32_t)pair16(
                        wo[2 * a * kw + kx], 2 * a + 1 < kh ? wo[(2 * a + 1) * kw + kx] : 0);
            if (g->sh == 1) { /* one span over whole padded rows, then the rows copied out */
                dw_span(xp, wp, kp, kw, dh * Wp * 2, g->dw, (Ho - 1) * Wp + Wo, &rq, ob);
                for (oy = 0; oy < Ho; oy++)
                    copy_row(ob + (size_t)oy * Wp, yo + (size_t)oy * Wo, Wo);
            } else {
                for (oy = 0; oy < Ho; oy++)
                    dw_span(xp + (size_t)oy * g->sh * Wp, wp, kp, kw, dh * Wp * 2, g->dw, Wo, &rq,
                            yo + (size_t)oy * Wo);
            }
        }
    }
    return 1;
}
#endif

#ifdef NP_X86
/* Depthwise (one input channel per group), stride 1 and dilation 1 along rows, u8 form on
 * AVX-512 VNNI: a 64-byte load of the channel's padded u8 plane at byte j + m holds, in lane
 * i, the 4 consecutive taps of output j + m + 4i, so 4 loads (m = 0..3) and 4 vpdpbusd add
 * one kernel row's 4 taps (w[ky][4qg..4qg+3], zero past kw) to 64 outputs. The 4 x 16
 * lanes are requantized (all one channel) and transposed back to output order. Outputs run
 * over whole padded rows (stride 1 in y: one span; else one row at a time); the plane has
 * 128 bytes of slack after it, so the tail reads stay inside the buffer. */
NP_T512 static void dwu8_span(const uint8_t *src, const int32_t *wq, int kh, int nq, int rstride,
                              int n, const rq512_t *rq, int32_t *out)
{
    int j0, ky, qg;
    for (j0 = 0; j0 < n; j0 += 64) {
        __m512i v0 = _mm512_setzero_si512(), v1 = v0, v2 = v0, v3 = v0;
        __m512i t0, t1, t2, t3, u0, u1, u2, u3;
        for (ky = 0; ky < kh; ky++)
            for (qg = 0; qg < nq; qg++) {
                const uint8_t *s = src + (size_t)ky * rstride + 4 * qg + j0;
                const __m512i wv = _mm512_set1_epi32(wq[ky * nq + qg]);
                v0 = _mm512_dpbusd_epi32(v0, _mm512_loadu_si512((const void *)s), wv);
                v1 = _mm512_dpbusd_epi32(v1, _mm512_loadu_si512((const void *)(s + 1)), wv);
                v2 = _mm512_dpbusd_epi32(v2, _mm512_loadu_si512((const void *)(s + 2)), wv);
                v3 = _mm512_dpbusd_epi32(v3, _mm512_loadu_si512((const void *)(s + 3)), wv);
            }
#define NP_RQ(v) rq16(_mm512_add_epi32(v, rq->bias), rq->qm, rq->t, rq->rnd, rq->zo, rq->lo, rq->hi)
        v0 = NP_RQ(v0), v1 = NP_RQ(v1), v2 = NP_RQ(v2), v3 = NP_RQ(v3);
#undef NP_RQ
        /* vm lane i = output j0 + 4i + m: a 4 x 4 transpose in each 128-bit block, then of
         * the blocks, gives outputs j0 + 16k .. j0 + 16k + 15 in vector k */
        t0 = _mm512_unpacklo_epi32(v0, v1), t1 = _mm512_unpackhi_epi32(v0, v1);
        t2 = _mm512_unpacklo_epi32(v2, v3), t3 = _mm512_unpackhi_epi32(v2, v3);
        u0 = _mm512_unpacklo_epi64(t0, t2), u1 = _mm512_unpackhi_epi64(t0, t2);
        u2 = _mm512_unpacklo_epi64(t1, t3), u3 = _mm512_unpackhi_epi64(t1, t3);
        t0 = _mm512_shuffle_i32x4(u0, u1, 0x44), t1 = _mm512_shuffle_i32x4(u0, u1, 0xEE);
        t2 = _mm512_shuffle_i32x4(u2, u3, 0x44), t3 = _mm512_shuffle_i32x4(u2, u3, 0xEE);
        _mm512_storeu_si512((void *)(out + j0), _mm512_shuffle_i32x4(t0, t2, 0x88));
        _mm512_storeu_si512((void *)(out + j0 + 16), _mm512_shuffle_i32x4(t0, t2, 0xDD));
        _mm512_storeu_si512((void *)(out + j0 + 32), _mm512_shuffle_i32x4(t1, t3, 0x88));
        _mm512_storeu_si512((void *)(out + j0 + 48), _mm512_shuffle_i32x4(t1, t3, 0xDD));
    }
}

NP_T512 static int dwu8_vnni(const np_geom_t *g, const int8_t *w, const np_affine_t *q,
                             int32_t *y, const uint8_t *xs, int32_t off)
{
    const int ocg = g->c_out / g->groups, Hp = g->h + 2 * g->ph, Wp = g->w + 2 * g->pw;
    const int kh = g->kh, kw = g->kw, Ho = g->ho, Wo = g->wo, nq = (kw + 3) / 4;
    const size_t pplane = (size_t)Hp * Wp;
    int32_t ob[NP_DW_PLANE + 64], wq[NP_DW_TAPS];
    int c, o, ky, qg, k, oy;
    if (g->c_in != g->groups || g->sw != 1 || g->dw != 1 || pplane > NP_DW_PLANE ||
        kh * nq > NP_DW_TAPS)
        return 0;
    for (c = 0; c < g->c_in; c++)
        for (o = c * ocg; o < (c + 1) * ocg; o++) {
            const int8_t *wo = w + (size_t)o * kh * kw;
            int32_t *yo = y + (size_t)o * Ho * Wo;
            uint32_t sum = 0;
            int32_t bias4;
            rq512_t rq;
            for (ky = 0; ky < kh; ky++)
                for (qg = 0; qg < nq; qg++) {
                    int8_t v[4];
                    for (k = 0; k < 4; k++) v[k] = 4 * qg + k < kw ? wo[ky * kw + 4 * qg + k] : 0;
                    wq[ky * nq + qg] = (int32_t)quad8(v[0], v[1], v[2], v[3]);
                }
            for (k = 0; k < kh * kw; k++) sum += (uint32_t)(int32_t)wo[k];
            bias4 = (int32_t)((uint32_t)q->bias[o] - (uint32_t)(off + q->zp_in) * sum);
            rq512_init(&rq, q, (uint32_t)o);
            rq.bias = _mm512_set1_epi32(bias4); /* the folded bias, as in the dense u8 form */
            if (g->sh == 1) {
                dwu8_span(xs + c * pplane, wq, kh, nq, g->dh * Wp, (Ho - 1) * Wp + Wo, &rq, ob);
                for (oy = 0; oy < Ho; oy++)
                    copy_row(ob + (size_t)oy * Wp, yo + (size_t)oy * Wo, Wo);
            } else {
                for (oy = 0; oy < Ho; oy++) {
                    dwu8_span(xs + c * pplane + (size_t)oy * g->sh * Wp, wq, kh, nq, g->dh * Wp, Wo,
                              &rq, ob);
                    copy_row(ob, yo + (size_t)oy * Wo, Wo);
                }
            }
        }
    return 1;
}
#endif

/* Grouped (and depthwise) convolution over the padded planes: acc[j] += w * src[j * sw]
 * for runs of up to NP_SPAN outputs; stride 1 runs span whole rows (columns past Wo are
 * computed over the padding and dropped). */
#define NP_SPAN 1024
NP_HOST_CLONE
static void grouped_c(const int32_t *x, const np_geom_t *g, const int8_t *w,
                      const np_affine_t *q, int32_t *y, const void *xs,
                      int u8, int32_t uoff)
{
    const int icg = g->c_in / g->groups, ocg = g->c_out / g->groups;
    const int Wp = g->w + 2 * g->pw, Ho = g->ho, Wo = g->wo, sh = g->sh, sw = g->sw;
    const int kh = g->kh, kw = g->kw, ntap = icg * kh * kw;
    const size_t pplane = (size_t)(g->h + 2 * g->ph) * Wp;
    const int rows = sh == 1 && sw == 1 && Wp <= NP_SPAN ? NP_SPAN / Wp : 1;
    int32_t acc[NP_SPAN];
    int oc, oy0, ox0, t, j, r;
    (void)x;
    for (oc = 0; oc < g->c_out; oc++) {
        const size_t g0 = (size_t)(oc / ocg) * icg * pplane; /* the group's first plane */
        const int8_t *wo = w + (size_t)oc * ntap;
        int32_t *yo = y + (size_t)oc * Ho * Wo;
        for (oy0 = 0; oy0 < Ho; oy0 += rows) {
            const int nr = Ho - oy0 < rows ? Ho - oy0 : rows;
            for (ox0 = 0; ox0 < Wo; ox0 += NP_SPAN) {
                /* rows > 1 only when a row fits the span: then ox0 = 0 and one pass */
                const int n = rows > 1 ? (nr - 1) * Wp + Wo : (Wo - ox0 < NP_SPAN ? Wo - ox0 : NP_SPAN);
                for (j = 0; j < n; j++) acc[j] = 0;
                for (t = 0; t < ntap; t++) {
                    const int32_t wv = wo[t];
                    const int icl = t / (kh * kw), ky = (t / kw) % kh, kx = t % kw;
                    const size_t at = g0 + icl * pplane + (size_t)(oy0 * sh + ky * g->dh) * Wp +
                                      (size_t)ox0 * sw + (size_t)kx * g->dw;
                    if (!wv) continue;
                    if (u8) { /* u8 planes hold x - zp_in + uoff */
                        const uint8_t *src = (const uint8_t *)xs + at;
                        if (sw == 1)
                            for (j = 0; j < n; j++) acc[j] += wv * ((int32_t)src[j] - uoff);
                        else
                            for (j = 0; j < n; j++)
                                acc[j] += wv * ((int32_t)src[(size_t)j * sw] - uoff);
                    } else {
                        const int16_t *src = (const int16_t *)xs + at;
                        if (sw == 1)
                            for (j = 0; j < n; j++) acc[j] += wv * src[j];
                        else
                            for (j = 0; j < n; j++) acc[j] += wv * src[(size_t)j * sw];
                    }
                }
                if (rows > 1)
                    for (r = 0; r < nr; r++)
                        rq_row(acc + (size_t)r * Wp, Wo, q, (uint32_t)oc, yo + (size_t)(oy0 + r) * Wo);
                else
                    rq_row(acc, n, q, (uint32_t)oc, yo + (size_t)oy0 * Wo + ox0);
            }
        }
    }
}


/* u8 = 1: xs is the u8 padded planes (x + off, border zp_in + off, 128 bytes of slack) */
static void conv2d_grouped(const int32_t *x, const np_geom_t *g, const int8_t *w,
                           const np_affine_t *q, int32_t *y, void *xs,
                           int u8, int32_t off)
{
    if (u8) {
        pad_planes_u8(x, g, off, (uint8_t *)xs);
#ifdef NP_X86
        if (isa_level() == NP_ISA_AVX512VNNI && dwu8_vnni(g, w, q, y, xs, off)) return;
#endif
        grouped_c(x, g, w, q, y, xs, 1, q->zp_in + off);
        return;
    }
    pad_planes(x, g, q->zp_in, (int16_t *)xs);
#ifdef NP_X86
    if (isa_level() == NP_ISA_AVX512VNNI && dw_vnni(g, w, q, y, xs)) return;
#endif
    grouped_c(x, g, w, q, y, xs, 0, 0);
}

/* Max pooling over tiling windows (kernel = stride, no padding, every window inside the
 * input): the max of each window, with none of np_pool2d's bounds or padding logic
 * (vectorises); the same values as np_pool2d, which takes every other pooling. */
NP_HOST_CLONE
static int pool_max_tiled(const int32_t *x, const np_geom_t *g, int32_t *y)
{
    uint32_t c, oy, ox, ky, kx;
    const uint32_t kh = g->kh, kw = g->kw;
    if (g->ph || g->pw || g->sh != kh || g->sw != kw || (uint32_t)g->ho * kh > g->h ||
        (uint32_t)g->wo * kw > g->w || kh == 0 || kw == 0)
        return 0;
    for (c = 0; c < g->c_in; c++)
        for (oy = 0; oy < g->ho; oy++) {
            const int32_t *xr = x + ((size_t)c * g->h + (size_t)oy * kh) * g->w;
            int32_t *yr = y + ((size_t)c * g->ho + oy) * g->wo;
            if (kh == 2 && kw == 2) {
                const int32_t *x1 = xr + g->w;
                for (ox = 0; ox < g->wo; ox++) {
                    int32_t a = xr[2 * ox] > xr[2 * ox + 1] ? xr[2 * ox] : xr[2 * ox + 1];
                    int32_t b = x1[2 * ox] > x1[2 * ox + 1] ? x1[2 * ox] : x1[2 * ox + 1];
                    yr[ox] = a > b ? a : b;
                }
                continue;
            }
            for (ox = 0; ox < g->wo; ox++) {
                int32_t best = xr[(size_t)ox * kw];
                for (ky = 0; ky < kh; ky++)
                    for (kx = 0; kx < kw; kx++) {
                        int32_t v = xr[(size_t)ky * g->w + (size_t)ox * kw + kx];
                        best = v > best ? v : best;
                    }
                yr[ox] = best;
            }
        }
    return 1;
}

/* Float LIF/LI as sdk/neurons.py, operation by operation in float32 (bit-exact given x):
 *   v' = v_leak + beta (v - v_leak) + gain x;  s = [v' > v_th];  v = v_reset | v' - v_th s */
static void lif_f32(const float *x, int n, const float *beta, const float *gain,
                    const float *vth, const float *vreset, const float *vleak, int subtract,
                    int spiking, float *v, float *y)
{
    int k;
    for (k = 0; k < n; k++) {
        float t = beta[k] * (v[k] - vleak[k]);
        float vn = (vleak[k] + t) + gain[k] * x[k];
        if (spiking) {
            int s = vn > vth[k];
            if (subtract) vn = vn - vth[k] * (float)s;
            else if (s) vn = vreset[k];
            y[k] = (float)s;
        } else {
            y[k] = vn;
        }
        v[k] = vn;
    }
}

/* ------------------------------------------------------------------ delay lines
 * The runtime's ring state (sdk/runtime/kernels.py _RingState): ring (depth, B, n) holds
 * the inputs, row *ptr the newest; a step writes x at ptr' = (ptr + 1) % depth and reads
 * x[t - d] from row (ptr' - d) mod depth. The ring is the runtime's own array (updated in
 * place), with its own item size (1, 2, 4 or 8 bytes; 4 also carries float32 bits). */
static long long ring_get(const void *ring, int isz, size_t k)
{
    switch (isz) {
    case 1: return ((const int8_t *)ring)[k];
    case 2: return ((const int16_t *)ring)[k];
    case 8: return ((const int64_t *)ring)[k];
    default: return ((const int32_t *)ring)[k];
    }
}

static void ring_put(void *ring, int isz, size_t k, int32_t v)
{
    switch (isz) {
    case 1: ((int8_t *)ring)[k] = (int8_t)v; break;
    case 2: ((int16_t *)ring)[k] = (int16_t)v; break;
    case 8: ((int64_t *)ring)[k] = v; break;
    default: ((int32_t *)ring)[k] = v; break;
    }
}

static long long ring_next(long long *ptr, long long depth)
{
    long long p = (*ptr + 1) % depth;
    *ptr = p;
    return p;
}

static size_t ring_row(long long p, long long d, long long depth)
{
    long long r = p - d;
    return (size_t)(r < 0 ? r + depth : r);
}

/* ------------------------------------------------------------------ trace STDP
 * The engine's event-driven update (sdk/plasticity/stdp.py _event_apply and the numba
 * kernels in sdk/plasticity/_accel.py), element by element in double. */
/* soft bound of one term (multiplicative STDP): potentiation * (hi - w), depression *
 * (w - lo). per_term: a synapse hit by both terms in one step bounds each term apart (the
 * documented rule); else their sum (the older definition). */
static double soft_term(double d, double w, double lo, double hi)
{
    return d > 0 ? d * (hi - w) : d * (w - lo);
}

#define STDP_UPD(T)                                                                        \
    static void upd_##T(T *wij, double d, int mult, double lo, double hi)                  \
    {                                                                                      \
        double v, wv = (double)*wij;                                                       \
        if (mult) d = d > 0 ? d * (hi - wv) : d * (wv - lo);                               \
        v = wv + d;                                                                        \
        if (v < lo) v = lo;                                                                \
        if (v > hi) v = hi;                                                                \
        *wij = (T)v;                                                                       \
    }                                                                                      \
    static void event_apply_##T(T *w, int n_post, int n_pre, const long long *rows,        \
                                int n_rows, const long long *cols, int n_cols,             \
                                const double *gain, const double *x, const double *coef,   \
                                const double *y, int mult, double lo, double hi,           \
                                int use_cols, int per_term, unsigned char *is_row)         \
    {                                                                                      \
        int r, c, i, j;                                                                    \
        memset(is_row, 0, (size_t)n_post);                                                 \
        for (r = 0; r < n_rows; r++) {                                                     \
            T *wr;                                                                         \
            double g, yi;                                                                  \
            i = (int)rows[r];                                                              \
            is_row[i] = 1;                                                                 \
            g = gain[r];                                                                   \
            yi = use_cols ? y[i] : 0.0;                                                    \
            wr = w + (size_t)i * n_pre;                                                    \
            if (mult && per_term) {                                                        \
                for (j = 0; j < n_pre; j++) {                                              \
                    const double wv = (double)wr[j];                                       \
                    double d = soft_term(g * x[j], wv, lo, hi);                            \
                    if (use_cols && coef[j] != 0.0) d += soft_term(yi * coef[j], wv, lo, hi); \
                    upd_##T(wr + j, d, 0, lo, hi);                                         \
                }                                                                          \
            } else if (mult) {                                                             \
                for (j = 0; j < n_pre; j++) {                                              \
                    double d = g * x[j];                                                   \
                    if (use_cols && coef[j] != 0.0) d += yi * coef[j];                     \
                    upd_##T(wr + j, d, 1, lo, hi);                                         \
                }                                                                          \
            } else if (use_cols) {                                                         \
                for (j = 0; j < n_pre; j++) { /* coef[j] == 0 adds an exact 0 */           \
                    double v = (double)wr[j] + (g * x[j] + yi * coef[j]);                  \
                    v = v < lo ? lo : v;                                                   \
                    wr[j] = (T)(v > hi ? hi : v);                                          \
                }                                                                          \
            } else {                                                                       \
                for (j = 0; j < n_pre; j++) {                                              \
                    double v = (double)wr[j] + g * x[j];                                   \
                    v = v < lo ? lo : v;                                                   \
                    wr[j] = (T)(v > hi ? hi : v);                                          \
                }                                                                          \
            }                                                                              \
        }                                                                                  \
        if (!use_cols) return;                                                             \
        for (c = 0; c < n_cols; c++) {                                                     \
            double cj;                                                                     \
            j = (int)cols[c];                                                              \
            cj = coef[j];                                                                  \
            for (i = 0; i < n_post; i++)                                                   \
                if (!is_row[i]) upd_##T(w + (size_t)i * n_pre + j, y[i] * cj, mult, lo, hi); \
        }                                                                                  \
    }
STDP_UPD(float)
STDP_UPD(double)

/* Whole trains (T steps), as _accel.stdp_run; consts = (a_pre, a_post, a_post2, amp_pre,
 * amp_post, g_post, g_pre, lo, hi). Trains are float64, or float32 when f32 (each step's
 * rows are widened into scratch). Scratch (one block): rows, cols (int64), gain, coef, and
 * the widened rows (double), is_row (bytes). */
#define STDP_RUN(T)                                                                        \
    static int stdp_run_##T(T *w, int n_post, int n_pre, int steps, const void *pre_t,     \
                            const void *post_t, int f32, double *x, double *y, double *y2, \
                            const double *cs, int n_cs, int nearest, int mult, int dc,     \
                            int per_term)                                                  \
    {                                                                                      \
        int t, i, j, nr, nc;                                                               \
        const double a_pre = cs[0], a_post = cs[1], a_post2 = cs[2], amp_pre = cs[3];      \
        const double amp_post = cs[4], g_post = cs[5], g_pre = cs[6], lo = cs[7];          \
        const double hi = cs[8], cap = n_cs > 9 ? cs[9] : INFINITY;                        \
        size_t nw = 2 * ((size_t)n_post + n_pre);                                          \
        long long *rows = malloc(nw * 16 + (size_t)n_post + 8);                            \
        long long *cols;                                                                   \
        double *gain, *coef, *prw, *pow_;                                                  \
        unsigned char *is_row;                                                             \
        if (!rows) return -1;                                                              \
        cols = rows + n_post;                                                              \
        gain = (double *)(cols + n_pre);                                                   \
        coef = gain + n_post;                                                              \
        prw = coef + n_pre;                                                                \
        pow_ = prw + n_pre;                                                                \
        is_row = (unsigned char *)(pow_ + n_post);                                         \
        for (t = 0; t < steps; t++) {                                                      \
            const double *pr, *po;                                                         \
            if (f32) {                                                                     \
                const float *a = (const float *)pre_t + (size_t)t * n_pre;                 \
                const float *b = (const float *)post_t + (size_t)t * n_post;               \
                for (j = 0; j < n_pre; j++) prw[j] = a[j];                                 \
                for (i = 0; i < n_post; i++) pow_[i] = b[i];                               \
                pr = prw, po = pow_;                                                       \
            } else {                                                                       \
                pr = (const double *)pre_t + (size_t)t * n_pre;                            \
                po = (const double *)post_t + (size_t)t * n_post;                          \
            }                                                                              \
            for (j = 0; j < n_pre; j++) x[j] *= a_pre;                                     \
            for (i = 0; i < n_post; i++) {                                                 \
                y[i] *= a_post;                                                            \
                if (dc) y2[i] *= a_post2;                                                  \
            }                                                                              \
            if (n_cs > 9) { /* the saturation guard: a step with too many inputs is skipped */ \
                int n_act = 0;                                                             \
                for (j = 0; j < n_pre; j++) n_act += pr[j] != 0;                           \
                if (n_act > 1 && n_act > cap * n_pre) continue;                            \
            }                                                                              \
            nr = 0;                                                                        \
            for (i = 0; i < n_post; i++)                                                   \
                if (po[i] != 0) {                                                          \
                    rows[nr] = i;                                                          \
                    gain[nr++] = (dc ? g_post * y2[i] : g_post) * po[i];                   \
                }                                                                          \
            nc = 0;                                                                        \
            for (j = 0; j < n_pre; j++) {                                                  \
                coef[j] = g_pre * pr[j];                                                   \
                if (pr[j] != 0) cols[nc++] = j;                                            \
            }                                                                              \
            if (nr || nc)                                                                  \
                event_apply_##T(w, n_post, n_pre, rows, nr, cols, nc, gain, x, coef, y,    \
                                mult, lo, hi, g_pre != 0.0, per_term, is_row);             \
            for (j = 0; j < nc; j++) {                                                     \
                int jj = (int)cols[j];                                                     \
                if (!nearest) x[jj] += amp_pre * pr[jj];                                   \
                else if (!per_term || pr[jj] > 0) x[jj] = amp_pre; /* a positive spike sets */ \
            }                                                                              \
            for (i = 0; i < nr; i++) {                                                     \
                int ii = (int)rows[i];                                                     \
                if (nearest && per_term && !(po[ii] > 0)) {                                \
                } else if (nearest) {                                                      \
                    y[ii] = amp_post;                                                      \
                    if (dc) y2[ii] = 1.0;                                                  \
                } else {                                                                   \
                    y[ii] += amp_post * po[ii];                                            \
                    if (dc) y2[ii] += po[ii];                                              \
                }                                                                          \
            }                                                                              \
        }                                                                                  \
        free(rows);                                                                        \
        return 0;                                                                          \
    }
STDP_RUN(float)
STDP_RUN(double)

/* One streaming step of trace STDP on float32 weights from float32 activity rows: what
 * stdp_run_float does for steps = 1 with float32 trains, operation by operation in double
 * (so the result is the same to the bit), plus the engine's post-activity sum
 * (post_sum[i] += post[i]; NULL: none). The engine keeps this op in a plan over its own
 * arrays and calls it once per rt.step (sdk/plasticity/_native_stdp.py step_plan).
 * Differences from stdp_run_float are only in speed: no allocation (scratch is the
 * caller's), the additive (non-soft-bound) updates run in vectorised loops (the row pass
 * contiguous, the column pass row by row over the step's few spiking columns), and the
 * activity is first checked finite: a NaN/Inf anywhere returns 1 with nothing changed
 * (the caller raises). Scratch: rows, cols (int64: n_post, n_pre), gain (n_post), coef
 * (n_pre), compact coef (n_pre) (double), is_row (n_post bytes). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define NP_SIMD_CLONE __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define NP_SIMD_CLONE
#endif
/* 1 when no value is NaN or Inf (exponent bits all ones), tested on the bits */
NP_SIMD_CLONE
static int all_finite_f32(const float *a, Py_ssize_t n)
{
    const uint32_t *u = (const uint32_t *)(const void *)a;
    uint32_t bad = 0;
    Py_ssize_t j;
    for (j = 0; j < n; j++) bad |= (uint32_t)((u[j] & 0x7f800000u) == 0x7f800000u);
    return !bad;
}

/* wr[j] = clip(wr[j] + (g x[j] + yi coef[j])) (use_cols), else clip(wr[j] + g x[j]) */
NP_SIMD_CLONE
static void stdp_row_add(float *wr, int n, double g, const double *x, double yi,
                         const double *coef, int use_cols, double lo, double hi)
{
    int j;
    if (use_cols) {
        for (j = 0; j < n; j++) {
            double v = (double)wr[j] + (g * x[j] + yi * coef[j]);
            v = v < lo ? lo : v;
            wr[j] = (float)(v > hi ? hi : v);
        }
    } else {
        for (j = 0; j < n; j++) {
            double v = (double)wr[j] + g * x[j];
            v = v < lo ? lo : v;
            wr[j] = (float)(v > hi ? hi : v);
        }
    }
}

/* w[i, cols[c]] = clip(w[i, cols[c]] + y[i] cf[c]) for rows i without a post spike; four
 * rows at a time share each column's index and coefficient (cols are distinct) */
#define NP_COL_UPD(wr, yv)                                                                 \
    do {                                                                                   \
        double v_ = (double)(wr)[j] + (yv) * cc;                                           \
        v_ = v_ < lo ? lo : v_;                                                            \
        (wr)[j] = (float)(v_ > hi ? hi : v_);                                              \
    } while (0)
NP_SIMD_CLONE
static void stdp_cols_add(float *w, int n_post, int n_pre, const long long *cols, int nc,
                          const double *cf, const double *y, const unsigned char *is_row,
                          int any_row, double lo, double hi)
{
    int i = 0, c;
    for (; i + 4 <= n_post; i += 4) {
        float *w0 = w + (size_t)i * n_pre, *w1 = w0 + n_pre, *w2 = w1 + n_pre, *w3 = w2 + n_pre;
        const double y0 = y[i], y1 = y[i + 1], y2 = y[i + 2], y3 = y[i + 3];
        if (any_row && (is_row[i] | is_row[i + 1] | is_row[i + 2] | is_row[i + 3])) {
            for (c = 0; c < nc; c++) {
                const long long j = cols[c];
                const double cc = cf[c];
                if (!is_row[i]) NP_COL_UPD(w0, y0);
                if (!is_row[i + 1]) NP_COL_UPD(w1, y1);
                if (!is_row[i + 2]) NP_COL_UPD(w2, y2);
                if (!is_row[i + 3]) NP_COL_UPD(w3, y3);
            }
            continue;
        }
        for (c = 0; c < nc; c++) {
            const long long j = cols[c];
            const double cc = cf[c];
            NP_COL_UPD(w0, y0);
            NP_COL_UPD(w1, y1);
            NP_COL_UPD(w2, y2);
            NP_COL_UPD(w3, y3);
        }
    }
    for (; i < n_post; i++) {
        float *wr = w + (size_t)i * n_pre;
        const double yi = y[i];
        if (any_row && is_row[i]) continue;
        for (c = 0; c < nc; c++) {
            const long long j = cols[c];
            const double cc = cf[c];
            NP_COL_UPD(wr, yi);
        }
    }
}
#undef NP_COL_UPD

NP_SIMD_CLONE
static int stdp_step_f32(float *w, int n_post, int n_pre, const float *pr, const float *po,
                         double *x, double *y, double *y2, const double *cs, int n_cs,
                         int nearest, int mult, int dc, int per_term, double *post_sum,
                         void *scratch)
{
    int i, j, nr = 0, nc = 0, use_cols;
    const double a_pre = cs[0], a_post = cs[1], a_post2 = cs[2], amp_pre = cs[3];
    const double amp_post = cs[4], g_post = cs[5], g_pre = cs[6], lo = cs[7];
    const double hi = cs[8], cap = n_cs > 9 ? cs[9] : INFINITY;
    long long *rows = scratch, *cols = rows + n_post;
    double *gain = (double *)(cols + n_pre), *coef = gain + n_post, *cf = coef + n_pre;
    unsigned char *is_row = (unsigned char *)(cf + n_pre);
    if (!all_finite_f32(pr, n_pre) || !all_finite_f32(po, n_post)) return 1;
    if (post_sum)
        for (i = 0; i < n_post; i++) post_sum[i] += (double)po[i];
    for (j = 0; j < n_pre; j++) x[j] *= a_pre;
    for (i = 0; i < n_post; i++) y[i] *= a_post;
    if (dc)
        for (i = 0; i < n_post; i++) y2[i] *= a_post2;
    nc = nonzero_i64(pr, n_pre, cols);
    if (n_cs > 9 && nc > 1 && nc > cap * n_pre) return 0; /* the saturation guard */
    nr = nonzero_i64(po, n_post, rows);
    for (i = 0; i < nr; i++) {
        const long long ii = rows[i];
        gain[i] = (dc ? g_post * y2[ii] : g_post) * (double)po[ii];
    }
    use_cols = g_pre != 0.0;
    if (mult) {
        if (nr || nc) {
            for (j = 0; j < n_pre; j++) coef[j] = g_pre * (double)pr[j];
            event_apply_float(w, n_post, n_pre, rows, nr, cols, nc, gain, x, coef, y, mult, lo,
                              hi, use_cols, per_term, is_row);
        }
    } else {
        if (nr) {
            for (j = 0; j < n_pre; j++) coef[j] = g_pre * (double)pr[j];
            memset(is_row, 0, (size_t)n_post);
            for (i = 0; i < nr; i++) {
                is_row[rows[i]] = 1;
                stdp_row_add(w + (size_t)rows[i] * n_pre, n_pre, gain[i], x,
                             use_cols ? y[rows[i]] : 0.0, coef, use_cols, lo, hi);
            }
        }
        if (nc && use_cols) {
            for (j = 0; j < nc; j++) cf[j] = g_pre * (double)pr[cols[j]];
            stdp_cols_add(w, n_post, n_pre, cols, nc, cf, y, is_row, nr > 0, lo, hi);
        }
    }
    for (j = 0; j < nc; j++) {
        const int jj = (int)cols[j];
        if (!nearest) x[jj] += amp_pre * (double)pr[jj];
        else if (!per_term || pr[jj] > 0) x[jj] = amp_pre; /* a positive spike sets */
    }
    for (i = 0; i < nr; i++) {
        const int ii = (int)rows[i];
        if (nearest && per_term && !(po[ii] > 0)) {
        } else if (nearest) {
            y[ii] = amp_post;
            if (dc) y2[ii] = 1.0;
        } else {
            y[ii] += amp_post * (double)po[ii];
            if (dc) y2[ii] += (double)po[ii];
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ event HD layer
 * Shared by ring_split and pull_rows (event_layer.py _split_pixel / _split_linear_ms).
 * split_pixel: the events of one pixel (the keys from *e with key / 2 == pix; *e is moved
 * past them) counted per polarity (binary: at most one each), and the pixel's A_s = n_on +
 * n_off added to the linear half: interior pixels (in every window (dy, dx)) to *n_full,
 * others as the 4 corners of their rectangle of offsets in the difference array diff
 * ((ky + 1) x (kx + 1)). Returns A_d = n_off - n_on. */
static inline long long split_pixel(const long long *key, long long n_ev, long long *e,
                                    long long pix, int binary, long long y, long long x,
                                    long long ho, long long wo, long long ky, long long kx,
                                    long long *diff, long long *n_full)
{
    const long long gx = kx + 1;
    long long n_on = 0, n_off = 0, a_s, ylo, yhi, xlo, xhi;
    while (*e < n_ev && key[*e] / 2 == pix) {
        if (key[*e] % 2) n_on++;
        else n_off++;
        (*e)++;
    }
    if (binary) {
        n_on = n_on < 1 ? n_on : 1;
        n_off = n_off < 1 ? n_off : 1;
    }
    a_s = n_on + n_off;
    ylo = y - ho + 1 > 0 ? y - ho + 1 : 0;
    yhi = ky - 1 < y ? ky - 1 : y;
    xlo = x - wo + 1 > 0 ? x - wo + 1 : 0;
    xhi = kx - 1 < x ? kx - 1 : x;
    if (ylo == 0 && yhi == ky - 1 && xlo == 0 && xhi == kx - 1) {
        *n_full += a_s;
    } else {
        diff[ylo * gx + xlo] += a_s;
        diff[ylo * gx + xhi + 1] -= a_s;
        diff[(yhi + 1) * gx + xlo] -= a_s;
        diff[(yhi + 1) * gx + xhi + 1] += a_s;
    }
    return n_off - n_on;
}

/* lin_runs: the ns W_s taps cut into runs that add into one accumulator (same s_d, s_c;
 * run r = taps run[r] .. run[r + 1] - 1, run holds ns + 1), with bi[k] = s_dy kx + s_dx.
 * Returns the number of runs. */
static long long lin_runs(long long ns, const long long *s_d, const long long *s_dy,
                          const long long *s_dx, const long long *s_c, long long kx,
                          long long *run, long long *bi)
{
    long long k, nr = 0;
    for (k = 0; k < ns; k++) {
        if (k == 0 || s_d[k] != s_d[k - 1] || s_c[k] != s_c[k - 1]) run[nr++] = k;
        bi[k] = s_dy[k] * kx + s_dx[k];
    }
    run[nr] = ns;
    return nr;
}

/* split_linear_ms: end of a ms with pixels: Box = n_full + the 2-D prefix sum of diff (then
 * diff is zeroed), and l_acc[sl[s_d] n_c + s_c] += s_w Box(s_dy, s_dx) for the ns W_s taps,
 * in tap order: a run of taps into one accumulator (lin_runs) is summed in a register
 * (the same float64 additions in the same order; ~3x faster than a load/add/store per
 * tap, whose store-to-load latency chained the ~17 taps of a run). */
static inline void split_linear_ms(long long ky, long long kx, long long n_full, long long *diff,
                                   double *box, long long nr, const long long *run,
                                   const long long *bi, const long long *s_d,
                                   const long long *s_c, const float *s_w, const long long *sl,
                                   long long n_c, double *l_acc)
{
    const long long gx = kx + 1;
    long long yy, xx, k, r;
    for (yy = 0; yy < ky; yy++) {
        long long rsum = 0;
        for (xx = 0; xx < kx; xx++) {
            double up;
            rsum += diff[yy * gx + xx];
            up = yy ? box[(yy - 1) * kx + xx] - (double)n_full : 0.0;
            box[yy * kx + xx] = (up + (double)rsum) + (double)n_full;
        }
    }
    memset(diff, 0, (size_t)((ky + 1) * gx) * sizeof(long long));
    for (r = 0; r < nr; r++) {
        double *a = l_acc + sl[s_d[run[r]]] * n_c + s_c[run[r]];
        double v = *a;
        for (k = run[r]; k < run[r + 1]; k++) v += (double)s_w[k] * box[bi[k]];
        *a = v;
    }
}

/* apps/motion/event_layer.py _ring_split_py (the pooled flip-max through the sum/difference
 * split), statement by statement, with the same float32/float64 arithmetic; see its
 * docstring for the algorithm. ints: 1 sw sh binary n_bins kt ho wo ky kx n_ev nb nd ns n_c;
 * bufs: key blk_d blk_dy blk_dx blk_start d_c d_w(f32) s_d s_dy s_dx s_c s_w(f32)
 * vals(f32 kt*ho*wo*n_c) out(f64 n_bins*n_c). Returns -1 when out of memory. */
static int ring_split(const long long *key, long long sw, long long sh, int binary,
                      long long n_bins, long long kt, long long ho, long long wo, long long ky,
                      long long kx, long long n_ev, long long nb, long long nd, long long ns,
                      long long n_c, const long long *blk_d, const long long *blk_dy,
                      const long long *blk_dx, const long long *blk_start,
                      const long long *d_c, const float *d_w, const long long *s_d,
                      const long long *s_dy, const long long *s_dx, const long long *s_c,
                      const float *s_w, float *vals, double *out)
{
    const long long hw = ho * wo, gx = kx + 1;
    long long t, d, k, b, e = 0;
    double *s_acc = calloc((size_t)(kt * n_c), sizeof(double));
    double *l_acc = calloc((size_t)(kt * n_c), sizeof(double));
    long long *diff = calloc((size_t)((ky + 1) * gx), sizeof(long long));
    double *box = calloc((size_t)(ky * kx), sizeof(double));
    long long *sl = calloc((size_t)kt, sizeof(long long));
    long long *t_d = calloc((size_t)nd + 1, sizeof(long long));
    long long *t_off = calloc((size_t)nd + 1, sizeof(long long));
    long long *t_base = calloc((size_t)nd + 1, sizeof(long long));
    double *d_abs = calloc((size_t)nd + 1, sizeof(double));
    long long *row_lo = calloc((size_t)kt, sizeof(long long));
    long long *row_hi = calloc((size_t)kt, sizeof(long long));
    long long *run = malloc((size_t)(ns + 1) * sizeof(long long));
    long long *bi = malloc((size_t)(ns + 1) * sizeof(long long));
    long long nr;
    int rc = -1;
    if (!s_acc || !l_acc || !diff || !box || !sl || !t_d || !t_off || !t_base || !d_abs ||
        !row_lo || !row_hi || !run || !bi)
        goto done;
    nr = lin_runs(ns, s_d, s_dy, s_dx, s_c, kx, run, bi);
    for (b = 0; b < nb; b++)
        for (k = blk_start[b]; k < blk_start[b + 1]; k++) {
            t_d[k] = blk_d[b];
            t_off[k] = (blk_dy[b] * wo + blk_dx[b]) * n_c - d_c[k];
        }
    for (d = 0; d < kt; d++) row_lo[d] = ho, row_hi[d] = -1;
    for (t = 0; t < n_bins; t++) {
        long long n_full = 0, n_pix = 0, y_min = sh, y_max = -1, s0;
        int ready = 0;
        for (d = 0; d < kt; d++) sl[d] = (t + d) % kt;
        while (e < n_ev && key[e] / (2 * sw * sh) == t) {
            const long long pix = key[e] / 2, y = (pix / sw) % sh, x = pix % sw;
            const long long a_d =
                split_pixel(key, n_ev, &e, pix, binary, y, x, ho, wo, ky, kx, diff, &n_full);
            long long epos;
            float fa;
            n_pix++;
            if (a_d == 0) continue;
            fa = (float)a_d;
            epos = (y * wo + x) * n_c;
            if (y < y_min) y_min = y;
            if (y > y_max) y_max = y;
            if (!ready) {
                for (k = 0; k < nd; k++) t_base[k] = sl[t_d[k]] * hw * n_c - t_off[k];
                ready = 1;
            }
            if (y >= ky - 1 && y < ho && x >= kx - 1 && x < wo) {
                for (k = 0; k < nd; k++) {
                    const long long i = epos + t_base[k];
                    const float old = vals[i], nw = old + fa * d_w[k];
                    vals[i] = nw;
                    d_abs[k] += fabs((double)nw) - fabs((double)old);
                }
                continue;
            }
            for (b = 0; b < nb; b++) {
                const long long yo = y - blk_dy[b], xo = x - blk_dx[b];
                long long base;
                if (yo < 0 || yo >= ho || xo < 0 || xo >= wo) continue;
                base = (sl[blk_d[b]] * hw + yo * wo + xo) * n_c;
                for (k = blk_start[b]; k < blk_start[b + 1]; k++) {
                    const long long i = base + d_c[k];
                    const float old = vals[i], nw = old + fa * d_w[k];
                    vals[i] = nw;
                    d_abs[k] += fabs((double)nw) - fabs((double)old);
                }
            }
        }
        if (ready) {
            for (k = 0; k < nd; k++) {
                s_acc[sl[t_d[k]] * n_c + d_c[k]] += d_abs[k];
                d_abs[k] = 0.0;
            }
            if (y_max >= 0)
                for (d = 0; d < kt; d++) {
                    const long long lo = y_min - ky + 1 > 0 ? y_min - ky + 1 : 0;
                    const long long hi = ho - 1 < y_max ? ho - 1 : y_max;
                    if (lo < row_lo[sl[d]]) row_lo[sl[d]] = lo;
                    if (hi > row_hi[sl[d]]) row_hi[sl[d]] = hi;
                }
        }
        if (n_pix)
            split_linear_ms(ky, kx, n_full, diff, box, nr, run, bi, s_d, s_c, s_w, sl, n_c,
                            l_acc);
        s0 = sl[0] * n_c;
        for (k = 0; k < n_c; k++) {
            out[t * n_c + k] = l_acc[s0 + k] + s_acc[s0 + k];
            l_acc[s0 + k] = 0.0;
            s_acc[s0 + k] = 0.0;
        }
        if (row_hi[sl[0]] >= 0) {
            const long long a = (sl[0] * hw + row_lo[sl[0]] * wo) * n_c;
            const long long z = (sl[0] * hw + (row_hi[sl[0]] + 1) * wo) * n_c;
            memset(vals + a, 0, (size_t)(z - a) * sizeof(float));
            row_lo[sl[0]] = ho;
            row_hi[sl[0]] = -1;
        }
    }
    rc = 0;
done:
    free(s_acc), free(l_acc), free(diff), free(box), free(sl), free(t_d), free(t_off);
    free(t_base), free(d_abs), free(row_lo), free(row_hi), free(run), free(bi);
    return rc;
}

/* The output-stationary pass of pull_rows (apps/motion/event_layer.py _pull_rows_py,
 * pass 2): for every step t and group of g consecutive classes, g planes acc ((ho + 1) x rs
 * float32 each, plane floats apart; ~14 kB each on the bench kernel) receive, for
 * d = kt-1 .. 0, the row chunks of (c, d) of each pixel of ms t - d (my picks the rows
 * 0 <= y - dy < ho: pq holds that dy range per pixel); then sum |acc| of each plane over the reachable rows is
 * read in 16 float64 partial sums (lane j = columns xo = j mod 16, rows in order, lanes
 * added 0..15) and those rows are zeroed. A chunk is L = 8 or 16 float32 lanes: acc[a + j]
 * = acc[a + j] + fa * rv[L k + j] (one mul, one add: with -ffp-contract=off the same float32
 * roundings as the numba loop), written with GCC vector types so the AVX2 / AVX-512 clone
 * does one load/mul/add/store per chunk. Per accumulator the additions come in the numba
 * loop's order (ms, then pixel; lanes that hold no tap add fa * 0 = +-0, which leaves every
 * value - never -0 - unchanged), so the result is bit-identical to it for any L and g.
 *
 * Class groups: the chunk table is re-laid out as (group, d, dy, class in the group, dx0),
 * with the plane of class c + i folded into its offsets (mo = off + i plane), so a pixel
 * takes the chunks of all g classes of one delay and its rows dy as one contiguous range
 * my[lo] .. my[hi] (my: the re-laid ystart, per (group, d)): one loop instead of g short
 * ones (~3.5 chunks each at g = 1 on the bench kernel: their loop overhead dominated).
 * Within one (pixel, d) no two chunks touch the same float, so their order is free. */
#if defined(__GNUC__) && !defined(NP_NO_VEC8)
#define NP_VEC8 1
typedef float np_v8f __attribute__((vector_size(32)));
typedef float np_v16f __attribute__((vector_size(64)));
/* the chunk loop of every row add (float here, the integer pull path below), with the
 * coefficient vector f, the plane b, the offsets off and the chunk values rv in scope */
#define NP_ROWS_LOOP(T, VT, L)                                                              \
    for (; k + 3 < k1; k += 4) { /* four chunks per turn: never overlapping (one pixel) */  \
        VT a0, a1, a2, a3, w0, w1, w2, w3;                                                  \
        T *q0 = b + off[k], *q1 = b + off[k + 1], *q2 = b + off[k + 2];                     \
        T *q3 = b + off[k + 3];                                                             \
        memcpy(&a0, q0, sizeof a0), memcpy(&a1, q1, sizeof a1);                             \
        memcpy(&a2, q2, sizeof a2), memcpy(&a3, q3, sizeof a3);                             \
        memcpy(&w0, rv + L * k, sizeof w0), memcpy(&w1, rv + L * k + L, sizeof w1);         \
        memcpy(&w2, rv + L * k + 2 * L, sizeof w2);                                         \
        memcpy(&w3, rv + L * k + 3 * L, sizeof w3);                                         \
        a0 += f * w0, a1 += f * w1, a2 += f * w2, a3 += f * w3;                             \
        memcpy(q0, &a0, sizeof a0), memcpy(q1, &a1, sizeof a1);                             \
        memcpy(q2, &a2, sizeof a2), memcpy(q3, &a3, sizeof a3);                             \
    }                                                                                       \
    for (; k < k1; k++) {                                                                   \
        VT a, w;                                                                            \
        T *q = b + off[k];                                                                  \
        memcpy(&a, q, sizeof a), memcpy(&w, rv + L * k, sizeof w);                          \
        a += f * w;                                                                         \
        memcpy(q, &a, sizeof a);                                                            \
    }
#define NP_ROWS_ADD(NAME, VT, L)                                                              \
    static inline void NAME(float *b, float fa, const long long *off, const float *rv,      \
                            long long k, long long k1)                                      \
    {                                                                                       \
        const VT f = (VT){0} + fa;                                                          \
        NP_ROWS_LOOP(float, VT, L)                                                          \
    }
#else
#define NP_ROWS_ADD(NAME, VT, L)                                                              \
    static inline void NAME(float *b, float fa, const long long *off, const float *rv,      \
                            long long k, long long k1)                                      \
    {                                                                                       \
        int j;                                                                              \
        for (; k < k1; k++) {                                                               \
            float *q = b + off[k];                                                          \
            const float *w = rv + L * k;                                                    \
            for (j = 0; j < L; j++) q[j] = q[j] + fa * w[j];                                \
        }                                                                                   \
    }
#endif
NP_ROWS_ADD(rows_add8, np_v8f, 8)
NP_ROWS_ADD(rows_add16, np_v16f, 16)

#define NP_PULL_PASS(NAME, ADD)                                                               \
    static void NAME(long long n_bins, long long kt, long long ho, long long wo, long long ky, \
                     long long rs, long long padl, long long n_c, long long g, long long plane, \
                     const long long *my, const long long *mo,                              \
                     const float *rv, const long long *fst, const long long *fy0,           \
                     const long long *fy1, const long long *ppos, const long long *pq,      \
                     const float *pa, float *acc, double *out)                              \
    {                                                                                       \
        long long t, d, i, c, yo, x0, h;                                                    \
        int j;                                                                              \
        for (t = 0; t < n_bins; t++) {                                                      \
            long long rlo = ho, rhi = -1;                                                   \
            for (d = 0; d < kt; d++)                                                        \
                if (t - d >= 0 && fy1[t - d] >= 0) {                                        \
                    const long long lo = fy0[t - d] - ky + 1 > 0 ? fy0[t - d] - ky + 1 : 0; \
                    const long long hi = ho - 1 < fy1[t - d] ? ho - 1 : fy1[t - d];         \
                    if (lo < rlo) rlo = lo;                                                 \
                    if (hi > rhi) rhi = hi;                                                 \
                }                                                                           \
            if (rhi < 0) continue;                                                          \
            for (c = 0; c < n_c; c += g) {                                                  \
                const long long ng = c + g <= n_c ? g : n_c - c;                            \
                for (d = kt - 1; d >= 0; d--) {                                             \
                    const long long *yc = my + ((c / g) * kt + d) * (ky + 1);               \
                    if (t - d < 0 || yc[0] == yc[ky]) continue;                             \
                    for (i = fst[t - d]; i < fst[t - d + 1]; i++)                           \
                        ADD(acc + ppos[i], pa[i], mo, rv, yc[pq[i] & 0xffffffff],           \
                            yc[pq[i] >> 32]);                                               \
                }                                                                           \
                for (h = 0; h < ng; h++) {                                                  \
                    double lane[16] = {0.0}, s = 0.0;                                       \
                    float *p = acc + h * plane;                                             \
                    for (yo = rlo; yo <= rhi; yo++) {                                       \
                        const float *r = p + yo * rs + padl;                                \
                        for (x0 = 0; x0 + 16 <= wo; x0 += 16)                               \
                            for (j = 0; j < 16; j++) lane[j] += fabs((double)r[x0 + j]);    \
                        for (j = 0; j < wo - x0; j++) lane[j] += fabs((double)r[x0 + j]);   \
                    }                                                                       \
                    for (j = 0; j < 16; j++) s += lane[j];                                  \
                    out[t * n_c + c + h] += s;                                              \
                    memset(p + rlo * rs, 0, (size_t)((rhi - rlo + 2) * rs) * sizeof(float)); \
                }                                                                           \
            }                                                                               \
        }                                                                                   \
    }
/* 8 lanes: AVX2 (AVX-512 runs 256-bit vectors no faster on Zen 4); 16: AVX-512 */
NP_AVX2_CLONE NP_PULL_PASS(pull_rows_pass8, rows_add8)
NP_HOST_CLONE NP_PULL_PASS(pull_rows_pass16, rows_add16)

/* The chunk table of g classes per pass (see above): my ((groups kt) x (ky + 1)) the
 * first chunk of (group, d) with dy >= q, mo / mv the offsets (plus the plane of the class
 * within its group) and values in the order (group, d, dy, class, dx0). */
static void pull_rows_group(long long n_c, long long kt, long long ky, long long lanes,
                            long long g, long long plane, const long long *ys,
                            const long long *off, const void *rv, long long *my,
                            long long *mo, void *mv, size_t esz)
{
    long long b, d, h, q, k, n = 0;
    for (b = 0; b * g < n_c; b++)
        for (d = 0; d < kt; d++) {
            long long *m = my + (b * kt + d) * (ky + 1);
            for (q = 0; q < ky; q++) {
                m[q] = n;
                for (h = 0; h < g && b * g + h < n_c; h++) {
                    const long long *y = ys + ((b * g + h) * kt + d) * (ky + 1);
                    for (k = y[q]; k < y[q + 1]; k++, n++) {
                        mo[n] = off[k] + h * plane;
                        memcpy((char *)mv + (size_t)(lanes * n) * esz,
                               (const char *)rv + (size_t)(lanes * k) * esz, (size_t)lanes * esz);
                    }
                }
            }
            m[ky] = n;
        }
}

/* apps/motion/event_layer.py _pull_rows_py: pass 1 (per ms: the pixels with A_d != 0 and
 * the linear half, statement by statement as ring_split) here, pass 2 in pull_rows_pass8 /
 * pull_rows_pass16 over g classes at a time.
 * ints: 1 sw sh binary n_bins kt ho wo ky kx rs padl lanes(8|16) n_ev nch ns n_c [g];
 * bufs: key ystart(n_c*kt*(ky+1)) off(nch) rv(f32 nch*lanes) s_d s_dy s_dx s_c s_w(f32)
 * out(f64 n_bins*n_c). Returns -1 when out of memory. */
static int pull_rows(const long long *key, long long sw, long long sh, int binary,
                     long long n_bins, long long kt, long long ho, long long wo, long long ky,
                     long long kx, long long rs, long long padl, long long n_ev, long long ns,
                     long long n_c, long long lanes, long long nch, long long g,
                     const long long *ystart, const long long *off, const float *rv,
                     const long long *s_d, const long long *s_dy, const long long *s_dx,
                     const long long *s_c, const float *s_w, double *out)
{
    const long long gx = kx + 1, plane = ((ho + 1) * rs + lanes + 15) / 16 * 16;
    const long long ny = (n_c + g - 1) / g * kt * (ky + 1);
    long long t, d, k, e = 0, npx = 0;
    double *l_acc = calloc((size_t)(kt * n_c), sizeof(double));
    long long *diff = calloc((size_t)((ky + 1) * gx), sizeof(long long));
    double *box = calloc((size_t)(ky * kx), sizeof(double));
    long long *sl = calloc((size_t)kt, sizeof(long long));
    long long *ppos = malloc((size_t)(n_ev + 1) * sizeof(long long));
    long long *pq = malloc((size_t)(n_ev + 1) * sizeof(long long));
    float *pa = malloc((size_t)(n_ev + 1) * sizeof(float));
    long long *fst = calloc((size_t)(n_bins + 1), sizeof(long long));
    long long *fy0 = malloc((size_t)(n_bins + 1) * sizeof(long long));
    long long *fy1 = malloc((size_t)(n_bins + 1) * sizeof(long long));
    float *acc = calloc((size_t)(g * plane), sizeof(float));
    long long *my = malloc((size_t)(ny + 1) * sizeof(long long));
    long long *mo = malloc((size_t)(nch + 1) * sizeof(long long));
    float *mv = malloc((size_t)(nch * lanes + 1) * sizeof(float));
    long long *run = malloc((size_t)(ns + 1) * sizeof(long long));
    long long *bi = malloc((size_t)(ns + 1) * sizeof(long long));
    long long nr;
    int rc = -1;
    if (!l_acc || !diff || !box || !sl || !ppos || !pq || !pa || !fst || !fy0 || !fy1 || !acc ||
        !my || !mo || !mv || !run || !bi)
        goto done;
    nr = lin_runs(ns, s_d, s_dy, s_dx, s_c, kx, run, bi);
    pull_rows_group(n_c, kt, ky, lanes, g, plane, ystart, off, rv, my, mo, mv, sizeof(float));
    for (t = 0; t < n_bins; t++) {
        long long n_full = 0, n_pix = 0, s0;
        fst[t] = npx;
        fy0[t] = sh, fy1[t] = -1;
        for (d = 0; d < kt; d++) sl[d] = (t + d) % kt;
        while (e < n_ev && key[e] / (2 * sw * sh) == t) {
            const long long pix = key[e] / 2, y = (pix / sw) % sh, x = pix % sw;
            const long long a_d =
                split_pixel(key, n_ev, &e, pix, binary, y, x, ho, wo, ky, kx, diff, &n_full);
            n_pix++;
            if (a_d != 0) {
                ppos[npx] = y * rs + x;
                pq[npx] = (y - ho + 1 > 0 ? y - ho + 1 : 0) | ((ky - 1 < y ? ky : y + 1) << 32);
                pa[npx] = (float)a_d;
                npx++;
                if (y < fy0[t]) fy0[t] = y;
                if (y > fy1[t]) fy1[t] = y;
            }
        }
        if (n_pix)
            split_linear_ms(ky, kx, n_full, diff, box, nr, run, bi, s_d, s_c, s_w, sl, n_c,
                            l_acc);
        s0 = sl[0] * n_c;
        for (k = 0; k < n_c; k++) {
            out[t * n_c + k] = l_acc[s0 + k];
            l_acc[s0 + k] = 0.0;
        }
    }
    fst[n_bins] = npx;
    if (lanes == 16)
        pull_rows_pass16(n_bins, kt, ho, wo, ky, rs, padl, n_c, g, plane, my, mo, mv, fst,
                         fy0, fy1, ppos, pq, pa, acc, out);
    else
        pull_rows_pass8(n_bins, kt, ho, wo, ky, rs, padl, n_c, g, plane, my, mo, mv, fst, fy0,
                        fy1, ppos, pq, pa, acc, out);
    rc = 0;
done:
    free(l_acc), free(diff), free(box), free(sl), free(ppos), free(pq), free(pa), free(fst);
    free(fy0), free(fy1), free(acc), free(my), free(mo), free(mv), free(run), free(bi);
    return rc;
}

/* ------------------------------------------------------------------ integer pull path
 * apps/motion/event_layer.py hd_event_evidence_int (backend "native"): the integer layer's
 * pooled evidence out[t, c] = sum_{valid y, x} clamp(requantize(max(B_0, B_1) + b_q[c],
 * M_c) + zp), computed output-stationary. Per step t and group of g classes, two integer
 * planes per class (split form: S and D, max(B_0, B_1) = (S + |D|) >> 1; direct form: B_0
 * and B_1), (ho + 1) x rs elements each (int16 or int32, padded to `plane`), receive the
 * row chunks (IntRowTaps: L = 8 or 16 int16 lanes, 8 int32 lanes) of every pixel of ms
 * t - d, d = kt - 1 .. 0: source 0 (split: W_s into S; direct: K_off into B_0 and K_on into
 * B_1) times the pixel's a0 (split A_s, direct A_off), source 1 (split: W_d into D; direct:
 * K_on into B_0, K_off into B_1) times a1 (A_d, A_on). The pair layout (split form, int16,
 * `pairs`): S and D of a position interleaved in one plane per class, one table (source 0)
 * whose 16-lane chunks hold (W_s, W_d) for 8 positions, times the pixel's lane vector
 * (A_s, A_d, A_s, ...): one 256-bit read-modify-write updates both halves of 8 positions,
 * where W_s or W_d is non-zero. Integer addition is associative,
 * so any order gives the same sums; the adds run in unsigned arithmetic (wrapping is
 * defined; the caller picks the width from the bound, so valid positions never wrap; pad
 * columns, never read, may). Then the read-out over the rows the step's pixels reach:
 * z = clamp(rq(m + b_q) + zp) with rq as rq_row_c (LiteRT single rounding, the floor
 * shift of neuroplast.quant.requantize; the caller checks |m + b_q| < 2^31), summed as the
 * offset from z0[c] = clamp(rq(b_q) + zp), the value of an untouched position, so out =
 * ho wo z0 + sum (z - z0) over the reached rows; those rows are zeroed. */
#if defined(__GNUC__) && !defined(NP_NO_VEC8)
typedef uint16_t np_v16u16 __attribute__((vector_size(32)));
typedef uint16_t np_v8u16 __attribute__((vector_size(16)));
typedef uint32_t np_v8u32 __attribute__((vector_size(32)));
#define NP_IROWS_ADD(NAME, T, VT, L)                                                        \
    static inline void NAME(T *b, T fa, const long long *off, const T *rv, long long k,     \
                            long long k1)                                                   \
    {                                                                                       \
        const VT f = (VT){0} + fa; /* a broadcast (a lane loop here became 16 inserts) */   \
        NP_ROWS_LOOP(T, VT, L)                                                             \
    }
#define NP_IROWS_ADDV(NAME, T, VT, L)                                                       \
    static inline void NAME(T *b, const T *fl, const long long *off, const T *rv, long long k,\
                            long long k1)                                                   \
    {                                                                                       \
        VT f;                                                                               \
        memcpy(&f, fl, sizeof f);                                                           \
        NP_ROWS_LOOP(T, VT, L)                                                             \
    }
#else
/* portable: F is the lane's coefficient (fa, or fl[j] in the pair layout) */
#define NP_IROWS_SCALAR(T, L, F)                                                            \
    {                                                                                       \
        int j;                                                                              \
        for (; k < k1; k++) {                                                               \
            T *q = b + off[k];                                                              \
            const T *w = rv + L * k;                                                        \
            for (j = 0; j < L; j++) q[j] = (T)(q[j] + (uint32_t)(F) * (uint32_t)w[j]);      \
        }                                                                                   \
    }
#define NP_IROWS_ADD(NAME, T, VT, L)                                                        \
    static inline void NAME(T *b, T fa, const long long *off, const T *rv, long long k,     \
                            long long k1) NP_IROWS_SCALAR(T, L, fa)
#define NP_IROWS_ADDV(NAME, T, VT, L)                                                       \
    static inline void NAME(T *b, const T *fl, const long long *off, const T *rv, long long k,\
                            long long k1) NP_IROWS_SCALAR(T, L, fl[j])
#endif
NP_IROWS_ADD(irows_add16x16, uint16_t, np_v16u16, 16)
NP_IROWS_ADD(irows_add16x8, uint16_t, np_v8u16, 8)
NP_IROWS_ADD(irows_add32x8, uint32_t, np_v8u32, 8)
/* The pair layout (S and D of a position interleaved): a chunk of L lanes covers L / 2
 * positions and each lane has its own coefficient (A_s on even lanes, A_d on odd ones):
 * the coefficient vector fl (L lanes) instead of one broadcast. */
NP_IROWS_ADDV(irows_addv16x16, uint16_t, np_v16u16, 16)
NP_IROWS_ADDV(irows_addv16x8, uint16_t, np_v8u16, 8)
NP_IROWS_ADDV(irows_addv32x8, uint32_t, np_v8u32, 8)

/* clamp(rq(a) + zp, lo, hi) with add = 2^(t-1) + 2^62, sub = 2^(62-t) (see rq_row_c) */
static inline long long irq(long long a, long long qm, int t, uint64_t add, long long sub,
                            long long lo, long long hi)
{
    long long v = (long long)((((uint64_t)a * (uint64_t)qm) + add) >> t) - sub;
    v = v < lo ? lo : v;
    return v > hi ? hi : v;
}

/* the read-out of one class over the reached rows, ES elements per position (constant, so
 * that the loops vectorise): u = the first half (S or B_0), v = the second (D or B_1) */
#define NP_IREAD(ES, T, ST)                                                                 \
    for (yo = rlo; yo <= rhi; yo++) {                                                       \
        const T *r0 = p0 + (yo * rs + padl) * (ES), *r1 = p1 + (yo * rs + padl) * (ES);     \
        if (zc)                                                                             \
            for (xo = 0; xo < wo; xo++) {                                                   \
                const long long u = (ST)r0[(ES) * xo], v = (ST)r1[(ES) * xo];               \
                const long long m = split ? (u + (v < 0 ? -v : v)) >> 1 : (u > v ? u : v); \
                const long long z = irq(m + b, m_, tt, add, sub, lo, hi);                   \
                zc[yo * wo + xo] = (int32_t)z;                                              \
                s += z;                                                                     \
            }                                                                               \
        else                                                                                \
            for (xo = 0; xo < wo; xo++) {                                                   \
                const long long u = (ST)r0[(ES) * xo], v = (ST)r1[(ES) * xo];               \
                const long long m = split ? (u + (v < 0 ? -v : v)) >> 1 : (u > v ? u : v); \
                s += irq(m + b, m_, tt, add, sub, lo, hi);                                  \
            }                                                                               \
    }

/* one pixel J's chunks of the delay whose row ranges y0 / y1 are in scope: both halves at
 * once (pair layout) or the planes its coefficients reach */
#define NP_IPULL_PIXEL(J, T, ADD, ADDV, L)                                                  \
    {                                                                                       \
        const long long qa = pq[J] & 0xffffffff, qb = pq[J] >> 32;                          \
        if (pairs)                                                                          \
            ADDV(acc + ppos[J], pf + L * (J), mo0, mv0, y0[qa], y0[qb]);                    \
        else {                                                                              \
            if (pa0[J]) ADD(acc + ppos[J], (T)pa0[J], mo0, mv0, y0[qa], y0[qb]);            \
            if (pa1[J]) ADD(acc + ppos[J], (T)pa1[J], mo1, mv1, y1[qa], y1[qb]);            \
        }                                                                                   \
    }
#define NP_IPULL_PASS(NAME, T, ST, ADD, ADDV, L)                                              \
    static void NAME(long long n_bins, long long kt, long long ho, long long wo, long long ky, \
                     long long rs, long long padl, long long n_c, long long g, long long plane, \
                     int split, const long long *my0, const long long *mo0, const T *mv0,   \
                     const long long *my1, const long long *mo1, const T *mv1,              \
                     const long long *fst, const long long *fy0, const long long *fy1,      \
                     const long long *ppos, const long long *pq, const long long *pa0,      \
                     const long long *pa1, const long long *bias, const long long *qm,      \
                     const long long *shift, long long zp, long long lo, long long hi,      \
                     T *acc, long long *out, int merge, long long *mi, long long *cnt,      \
                     long long nkey, long long t0, int32_t *zout, int pairs, const T *pf)   \
    {                                                                                       \
        const long long es = pairs ? 2 : 1; /* elements per position */                    \
        long long t, d, i, c, h, yo, xo, ne = 0, e;                                         \
        for (t = t0; t < n_bins; t++) {                                                     \
            long long rlo = ho, rhi = -1;                                                   \
            for (d = 0; d < kt; d++)                                                        \
                if (t - d >= 0 && fy1[t - d] >= 0) {                                        \
                    const long long l_ = fy0[t - d] - ky + 1 > 0 ? fy0[t - d] - ky + 1 : 0; \
                    const long long h_ = ho - 1 < fy1[t - d] ? ho - 1 : fy1[t - d];         \
                    if (l_ < rlo) rlo = l_;                                                 \
                    if (h_ > rhi) rhi = h_;                                                 \
                }                                                                           \
            if (merge && rhi >= 0) { /* the window's pixels by row (1) or pixel (2) */     \
                memset(cnt, 0, (size_t)(nkey + 1) * sizeof(long long));                     \
                for (d = kt - 1; d >= 0; d--)                                               \
                    if (t - d >= 0)                                                         \
                        for (i = fst[t - d]; i < fst[t - d + 1]; i++)                       \
                            cnt[(merge == 1 ? ppos[i] / (rs * es) : ppos[i] / es) + 1]++;   \
                for (e = 0; e < nkey; e++) cnt[e + 1] += cnt[e];                            \
                for (d = kt - 1; d >= 0; d--)                                               \
                    if (t - d >= 0)                                                         \
                        for (i = fst[t - d]; i < fst[t - d + 1]; i++)                       \
                            mi[cnt[merge == 1 ? ppos[i] / (rs * es) : ppos[i] / es]++] =    \
                                i | (d << 40);                                              \
                ne = cnt[nkey - 1];                                                         \
            }                                                                               \
            for (c = 0; c < n_c; c += g) {                                                  \
                const long long ng = c + g <= n_c ? g : n_c - c;                            \
                if (merge && rhi >= 0)                                                      \
                    for (e = 0; e < ne; e++) {                                              \
                        const long long ii_ = mi[e] & (((long long)1 << 40) - 1);           \
                        const long long cell = ((c / g) * kt + (mi[e] >> 40)) * (ky + 1);   \
                        const long long *y0 = my0 + cell, *y1 = my1 + cell;                 \
                        NP_IPULL_PIXEL(ii_, T, ADD, ADDV, L)                                \
                    }                                                                       \
                else if (rhi >= 0)                                                          \
                    for (d = kt - 1; d >= 0; d--) {                                         \
                        const long long cell = ((c / g) * kt + d) * (ky + 1);               \
                        const long long *y0 = my0 + cell, *y1 = my1 + cell;                 \
                        if (t - d < 0) continue;                                            \
                        for (i = fst[t - d]; i < fst[t - d + 1]; i++) {                     \
                            NP_IPULL_PIXEL(i, T, ADD, ADDV, L)                              \
                        }                                                                   \
                    }                                                                       \
                for (h = 0; h < ng; h++) {                                                  \
                    const long long cc = c + h, b = bias[cc], m_ = qm[cc];                  \
                    const int tt = (int)(31 - shift[cc]);                                   \
                    const uint64_t add = ((uint64_t)1 << (tt - 1)) + ((uint64_t)1 << 62);   \
                    const long long sub = ((long long)1 << (62 - tt)) - zp;                 \
                    const long long z0 = irq(b, m_, tt, add, sub, lo, hi);                  \
                    long long s = 0;                                                        \
                    T *p0 = acc + 2 * h * plane, *p1 = pairs ? p0 + 1 : p0 + plane;         \
                    int32_t *zc = zout ? zout + ((t - t0) * n_c + cc) * ho * wo : NULL;     \
                    if (zc) /* per-position codes: untouched rows hold z0 */                \
                        for (yo = 0; yo < ho; yo++)                                         \
                            if (yo < rlo || yo > rhi)                                       \
                                for (xo = 0; xo < wo; xo++) zc[yo * wo + xo] = (int32_t)z0; \
                    if (pairs) NP_IREAD(2, T, ST) else NP_IREAD(1, T, ST)                   \
                    if (rhi >= 0) {                                                         \
                        const size_t nz = (size_t)((rhi - rlo + 2) * rs * es) * sizeof(T);  \
                        s -= (rhi - rlo + 1) * wo * z0;                                     \
                        memset(p0 + rlo * rs * es, 0, nz);                                  \
                        if (!pairs) memset(p1 + rlo * rs, 0, nz);                           \
                    }                                                                       \
                    out[(t - t0) * n_c + cc] = ho * wo * z0 + s;                            \
                }                                                                           \
            }                                                                               \
        }                                                                                   \
    }
NP_AVX2_CLONE NP_IPULL_PASS(ipull_pass16x16, uint16_t, int16_t, irows_add16x16, irows_addv16x16, 16)
NP_AVX2_CLONE NP_IPULL_PASS(ipull_pass16x8, uint16_t, int16_t, irows_add16x8, irows_addv16x8, 8)
NP_AVX2_CLONE NP_IPULL_PASS(ipull_pass32x8, uint32_t, int32_t, irows_add32x8, irows_addv32x8, 8)

/* ints: 1 sw sh n_bins kt ho wo ky kx rs padl lanes acc_bytes n_c g plane n_pix nch0 nch1
 * split zp lo hi sweep [t0]; bufs: fst(n_bins + 1) pix(n_pix: y sw + x, (t, y, x) order) a0
 * a1 ys0(n_c kt (ky + 1)) off0(nch0) v0(int16/int32 nch0 lanes) ys1 off1 v1 bias qm shift
 * (int64 n_c) out(int64 (n_bins - t0) n_c) [z(int32 (n_bins - t0) n_c ho wo)]: steps
 * t0 .. n_bins - 1 only (the ms before t0 are the carried window of the runtime op), and
 * with z the per-position codes as well. The chunk tables are IntRowTaps' (class, d, dy, dx0)
 * order with the second plane of a class folded into the offsets (+ plane); they are
 * re-laid per group of g classes as pull_rows_group does (class h of a group: + 2 h plane).
 * Returns -1 when out of memory. */
static int pull_int(const long long *ii, const long long *fst, const long long *pix,
                    const long long *a0, const long long *a1, const long long *ys0,
                    const long long *off0, const void *v0, const long long *ys1,
                    const long long *off1, const void *v1, const long long *bias,
                    const long long *qm, const long long *shift, long long *out, int32_t *zout,
                    long long t0, int pairs)
{
    const long long sw = ii[1], n_bins = ii[3], kt = ii[4], ho = ii[5], wo = ii[6];
    const long long ky = ii[7], rs = ii[9], padl = ii[10], lanes = ii[11], ab = ii[12];
    const long long n_c = ii[13], g = ii[14], plane = ii[15], n_pix = ii[16];
    const long long nch0 = ii[17], nch1 = ii[18];
    const int split = (int)ii[19];
    const size_t esz = (size_t)ab;
    const long long ny = (n_c + g - 1) / g * kt * (ky + 1);
    long long t, i;
    long long *ppos = malloc((size_t)(n_pix + 1) * sizeof(long long));
    long long *pq = malloc((size_t)(n_pix + 1) * sizeof(long long));
    long long *fy0 = malloc((size_t)(n_bins + 1) * sizeof(long long));
    long long *fy1 = malloc((size_t)(n_bins + 1) * sizeof(long long));
    long long *my0 = malloc((size_t)(ny + 1) * sizeof(long long));
    long long *my1 = malloc((size_t)(ny + 1) * sizeof(long long));
    long long *mo0 = malloc((size_t)(nch0 + 1) * sizeof(long long));
    long long *mo1 = malloc((size_t)(nch1 + 1) * sizeof(long long));
    void *mv0 = malloc((size_t)(nch0 * lanes + 1) * esz);
    void *mv1 = malloc((size_t)(nch1 * lanes + 1) * esz);
    void *acc = calloc((size_t)(2 * g * plane + 16), esz);
    const int merge = (int)ii[23];
    const long long nkey = merge == 1 ? ii[2] : ii[2] * rs; /* rows, or y rs + x */
    long long *mi = malloc((size_t)(n_pix + 1) * sizeof(long long));
    long long *cnt = malloc((size_t)(nkey + 2) * sizeof(long long));
    void *pf = malloc((size_t)((pairs ? n_pix : 0) * lanes + 1) * esz);
    const long long es = pairs ? 2 : 1;
    int rc = -1;
    if (!ppos || !pq || !fy0 || !fy1 || !my0 || !my1 || !mo0 || !mo1 || !mv0 || !mv1 || !acc ||
        !mi || !cnt || !pf)
        goto done;
    for (i = 0; pairs && i < n_pix; i++) { /* lanes (A_s, A_d, A_s, A_d, ...) */
        long long j;
        for (j = 0; j < lanes; j++) {
            const long long a = j % 2 ? a1[i] : a0[i];
            if (esz == 2) ((uint16_t *)pf)[i * lanes + j] = (uint16_t)a;
            else ((uint32_t *)pf)[i * lanes + j] = (uint32_t)a;
        }
    }
    pull_rows_group(n_c, kt, ky, lanes, g, 2 * plane, ys0, off0, v0, my0, mo0, mv0, esz);
    pull_rows_group(n_c, kt, ky, lanes, g, 2 * plane, ys1, off1, v1, my1, mo1, mv1, esz);
    for (t = 0; t < n_bins; t++) {
        fy0[t] = ho + ky, fy1[t] = -1;
        for (i = fst[t]; i < fst[t + 1]; i++) {
            const long long y = pix[i] / sw, x = pix[i] % sw;
            ppos[i] = (y * rs + x) * es;
            pq[i] = (y - ho + 1 > 0 ? y - ho + 1 : 0) | ((ky - 1 < y ? ky : y + 1) << 32);
            if (y < fy0[t]) fy0[t] = y;
            if (y > fy1[t]) fy1[t] = y;
        }
    }
#define NP_IPULL_ARGS                                                                         \
    n_bins, kt, ho, wo, ky, rs, padl, n_c, g, plane, split, my0, mo0, mv0, my1, mo1, mv1, fst, \
        fy0, fy1, ppos, pq, a0, a1, bias, qm, shift, ii[20], ii[21], ii[22], acc, out, merge, mi, \
        cnt, nkey, t0, zout, pairs, pf
    if (ab == 4) ipull_pass32x8(NP_IPULL_ARGS);
    else if (lanes == 16) ipull_pass16x16(NP_IPULL_ARGS);
    else ipull_pass16x8(NP_IPULL_ARGS);
#undef NP_IPULL_ARGS
    rc = 0;
done:
    free(ppos), free(pq), free(fy0), free(fy1), free(my0), free(my1), free(mo0), free(mo1);
    free(mv0), free(mv1), free(acc), free(mi), free(cnt), free(pf);
    return rc;
}

/* apps/motion/event_layer.py _scatter_py (the per-position event layer, hd_event_chunk):
 * each event e adds, in order, w1[k] at buf[base[e] + off1[k]] (pol[e] != 0, ON) or w0[k]
 * at buf[base[e] + off0[k]] (OFF): the same float32 additions in the same order as the
 * numba loop, so bit-identical to it. ints: 1 n_buf n_ev n0 n1; bufs: buf(f32) base
 * pol(u8) off0 w0(f32) off1 w1(f32) (op_check bounds every base + offset). */
static void event_scatter(float *buf, long long n_ev, const long long *base,
                          const unsigned char *pol, const long long *off0, const float *w0,
                          long long n0, const long long *off1, const float *w1, long long n1)
{
    long long e, k;
    for (e = 0; e < n_ev; e++) {
        float *b = buf + base[e];
        if (pol[e])
            for (k = 0; k < n1; k++) b[off1[k]] += w1[k];
        else
            for (k = 0; k < n0; k++) b[off0[k]] += w0[k];
    }
}

/* The integer mode of the same scatter (apps/motion/event_layer.py hd_event_chunk_int):
 * int8 kernel codes added into int16 (acc_bytes 2) or int32 (4) accumulators, in unsigned
 * arithmetic (wraps modulo 2^16 / 2^32, no undefined overflow; the caller picks the width
 * from the bound sum |K_q| x events per voxel, so nothing wraps and the sums are the exact
 * integers). Integer addition is associative, so the result is the same for any event
 * order (the caller sorts a step's events by pixel: one sweep). Portable C only: the taps
 * are scalar scatters, which no vector level here speeds up. ints: 1 n_buf n_ev n0 n1
 * acc_bytes [group [code_bytes]]; bufs: buf(i16/i32) base pol(u8) off0 w0 off1 w1 (codes
 * int8, or int16 with code_bytes 2: the sum/difference kernel's W_s, W_d reach 2 x 127). */
/* Up to `group` (1, 2 or 4) consecutive events of one polarity share the tap loop (one
 * offset and code load for 2 or 4 read-modify-writes); the caller orders a step's events by
 * (bin, polarity, pixel). Any group gives the same integers. */
#define NP_EVENT_SCATTER_I(T, W, NAME)                                                       \
    static void NAME(T *buf, long long n_ev, const long long *base, const unsigned char *pol, \
                     const long long *off0, const W *w0, long long n0,                       \
                     const long long *off1, const W *w1, long long n1, int group)            \
    {                                                                                        \
        long long e = 0, k;                                                                  \
        while (e < n_ev) {                                                                   \
            const int p = pol[e] != 0;                                                       \
            const long long *of = p ? off1 : off0, n = p ? n1 : n0;                          \
            const W *w = p ? w1 : w0;                                                        \
            T *b = buf + base[e];                                                            \
            if (group >= 4 && e + 3 < n_ev && (pol[e + 1] != 0) == p &&                     \
                (pol[e + 2] != 0) == p &&                                                    \
                (pol[e + 3] != 0) == p) {                                                    \
                T *c = buf + base[e + 1], *d = buf + base[e + 2], *f = buf + base[e + 3];    \
                for (k = 0; k < n; k++) {                                                    \
                    const T v = (T)w[k];                                                     \
                    const long long o = of[k];                                               \
                    b[o] = (T)(b[o] + v);                                                    \
                    c[o] = (T)(c[o] + v);                                                    \
                    d[o] = (T)(d[o] + v);                                                    \
                    f[o] = (T)(f[o] + v);                                                    \
                }                                                                            \
                e += 4;                                                                      \
            } else if (group >= 2 && e + 1 < n_ev && (pol[e + 1] != 0) == p) {               \
                T *c = buf + base[e + 1];                                                    \
                for (k = 0; k < n; k++) {                                                    \
                    const T v = (T)w[k];                                                     \
                    b[of[k]] = (T)(b[of[k]] + v);                                            \
                    c[of[k]] = (T)(c[of[k]] + v);                                            \
                }                                                                            \
                e += 2;                                                                      \
            } else {                                                                         \
                for (k = 0; k < n; k++) b[of[k]] = (T)(b[of[k]] + (T)w[k]);                  \
                e += 1;                                                                      \
            }                                                                                \
        }                                                                                    \
    }
NP_EVENT_SCATTER_I(uint16_t, int8_t, event_scatter_i16)
NP_EVENT_SCATTER_I(uint32_t, int8_t, event_scatter_i32)
NP_EVENT_SCATTER_I(uint16_t, int16_t, event_scatter_i16w16)
NP_EVENT_SCATTER_I(uint32_t, int16_t, event_scatter_i32w16)

static int in_range(const long long *a, Py_ssize_t n, long long lo, long long hi)
{
    Py_ssize_t k;
    for (k = 0; k < n; k++)
        if (a[k] < lo || a[k] >= hi) return 0;
    return 1;
}

/* ------------------------------------------------------------------ op parsing */

static void op_release(op_t *op)
{
    int k;
    for (k = 0; k < op->nb; k++) PyBuffer_Release(&op->view[k]);
    op->nb = 0;
}

static int need(const op_t *op, int k, Py_ssize_t bytes, const char *what)
{
    if (k >= op->nb || (op->b[k] == NULL && bytes > 0)) {
        PyErr_Format(PyExc_ValueError, "op %d: buffer %d (%s) missing", op->kind, k, what);
        return -1;
    }
    if (bytes < 0 || op->len[k] < bytes) {
        PyErr_Format(PyExc_ValueError, "op %d: buffer %d (%s) has %zd bytes, needs %zd",
                     op->kind, k, what, op->len[k], bytes);
        return -1;
    }
    return 0;
}

#define I(k) (op->i[k])
#define N(k) ((Py_ssize_t)op->i[k])
#define NEED(k, bytes, what) \
    if (need(op, k, (Py_ssize_t)(bytes), what)) return -1

static int geom_of(const op_t *op, int at, np_geom_t *g)
{
    long long v[15];
    int k;
    for (k = 0; k < 15; k++) {
        v[k] = op->i[at + k];
        if (v[k] < 0 || v[k] > 65535) {
            PyErr_Format(PyExc_ValueError, "op %d: geometry field %d out of range", op->kind, k);
            return -1;
        }
    }
    g->c_in = (uint16_t)v[0], g->h = (uint16_t)v[1], g->w = (uint16_t)v[2];
    g->c_out = (uint16_t)v[3], g->kh = (uint16_t)v[4], g->kw = (uint16_t)v[5];
    g->sh = (uint16_t)v[6], g->sw = (uint16_t)v[7], g->ph = (uint16_t)v[8];
    g->pw = (uint16_t)v[9], g->dh = (uint16_t)v[10], g->dw = (uint16_t)v[11];
    g->ho = (uint16_t)v[12], g->wo = (uint16_t)v[13], g->groups = (uint16_t)v[14];
    if (!g->groups || !g->sh || !g->sw || !g->dh || !g->dw || g->c_in % g->groups ||
        g->c_out % g->groups) {
        PyErr_Format(PyExc_ValueError, "op %d: bad geometry", op->kind);
        return -1;
    }
    return 0;
}

/* Size checks per kind: every buffer an op touches must be at least as large as it reads or
 * writes, so a wrong plan raises ValueError instead of reading out of bounds. */
static int op_check(const op_t *op)
{
    Py_ssize_t B = N(0);
    np_geom_t g;
    if (op->ni < 1 || B < 1) {
        PyErr_Format(PyExc_ValueError, "op %d: batch missing", op->kind);
        return -1;
    }
    switch (op->kind) {
    case OP_LINEAR_I8: /* ints: B n_in n_out zp_in zp_out lo hi; bufs: x y w bias qm shift */
        if (op->ni < 7) break;
        NEED(0, 4 * B * N(1), "x");
        NEED(1, 4 * B * N(2), "y");
        NEED(2, N(1) * N(2), "w");
        NEED(3, 4 * N(2), "bias");
        NEED(4, 4 * N(2), "qm");
        NEED(5, N(2), "shift");
        return 0;
    case OP_CONV_I8: /* ints: B zp_in zp_out lo hi geom[15]; bufs: x y w bias qm shift
                      * [u8 off] [xs: padded planes [col2 w2: im2col, groups = 1]] */
        if (op->ni < 20 || geom_of(op, 5, &g)) break;
        if (op->nb > 8 && op->b[7]) { /* im2col: col2 (K/2 x Pp) and w2 (c_out' x K/2), or
                                         * (u8) col4 (K/4 x Pp) and w4 (c_out' x K/4 + c_out') */
            const int u8 = op->ni > 21 && I(20);
            const Py_ssize_t kk = ((Py_ssize_t)g.c_in * g.kh * g.kw + (u8 ? 3 : 1)) / (u8 ? 4 : 2);
            const Py_ssize_t mp = ((Py_ssize_t)g.c_out + 3) / 4 * 4;
            NEED(7, 4 * kk * (((Py_ssize_t)g.ho * g.wo + 15) / 16 * 16), "col2");
            NEED(8, 4 * (kk * mp + (u8 ? mp : 0)), "w2");
            if (u8 && (I(21) + I(1) < 0 || I(21) + I(1) > 255)) {
                PyErr_SetString(PyExc_ValueError, "conv: u8 path needs 0 <= zp_in + off <= 255");
                return -1;
            }
            if (g.groups != 1) {
                PyErr_SetString(PyExc_ValueError, "conv: im2col path needs groups = 1");
                return -1;
            }
        }
        if (op->nb > 6 && op->b[6]) { /* the padded plane must hold every tap */
            if ((g.ho - 1) * g.sh + (g.kh - 1) * g.dh >= g.h + 2 * g.ph ||
                (g.wo - 1) * g.sw + (g.kw - 1) * g.dw >= g.w + 2 * g.pw) {
                PyErr_SetString(PyExc_ValueError, "conv: output grid exceeds the padded input");
                return -1;
            }
            /* int16, or u8 with 128 bytes of slack (the u8 depthwise kernel reads past) */
            NEED(6, op->ni > 21 && I(20) ? g.c_in * (g.h + 2 * g.ph) * (g.w + 2 * g.pw) + 128
                                         : 2 * g.c_in * (g.h + 2 * g.ph) * (g.w + 2 * g.pw),
                 "xs");
            if (op->ni > 21 && I(20) && (I(21) + I(1) < 0 || I(21) + I(1) > 255)) {
                PyErr_SetString(PyExc_ValueError, "conv: u8 path needs 0 <= zp_in + off <= 255");
                return -1;
            }
        }
        NEED(0, 4 * B * g.c_in * g.h * g.w, "x");
        NEED(1, 4 * B * g.c_out * g.ho * g.wo, "y");
        NEED(2, (Py_ssize_t)g.c_out * (g.c_in / g.groups) * g.kh * g.kw, "w");
        NEED(3, 4 * g.c_out, "bias");
        NEED(4, 4 * g.c_out, "qm");
        NEED(5, g.c_out, "shift");
        return 0;
    case OP_POOL_I: /* ints: B mode pad lo hi geom[15]; bufs: x y */
        if (op->ni < 20 || geom_of(op, 5, &g)) break;
        NEED(0, 4 * B * g.c_in * g.h * g.w, "x");
        NEED(1, 4 * B * g.c_in * g.ho * g.wo, "y");
        return 0;
    case OP_ADD_I: /* ints: B n za zb zo lo hi ma mb mo sa sb so single; bufs: a b y */
        if (op->ni < 14) break;
        NEED(0, 4 * B * N(1), "a");
        NEED(1, 4 * B * N(1), "b");
        NEED(2, 4 * B * N(1), "y");
        return 0;
    case OP_RELU_I: /* ints: B n zp; bufs: x y */
    case OP_RELU_F:
        if (op->ni < 3) break;
        NEED(0, 4 * B * N(1), "x");
        NEED(1, 4 * B * N(1), "y");
        return 0;
    case OP_NEURON_I: /* ints: B n zp_in spiking subtract cuba; bufs: x y v i beta th reset leak alpha */
        if (op->ni < 6) break;
        NEED(0, 4 * B * N(1), "x");
        NEED(1, 4 * B * N(1), "y");
        NEED(2, 8 * B * N(1), "v");
        if (I(5)) NEED(3, 8 * B * N(1), "i");
        NEED(4, 4 * N(1), "beta");
        NEED(5, 4 * N(1), "v_th");
        NEED(6, 4 * N(1), "v_reset");
        NEED(7, 4 * N(1), "v_leak");
        if (I(5)) NEED(8, 4 * N(1), "alpha");
        return 0;
    case OP_SCALE_I: /* ints: B n zi zo lo hi; bufs: x y qm shift sign (per element) */
        if (op->ni < 6) break;
        NEED(0, 4 * B * N(1), "x");
        NEED(1, 4 * B * N(1), "y");
        NEED(2, 4 * N(1), "qm");
        NEED(3, N(1), "shift");
        NEED(4, N(1), "sign");
        return 0;
    case OP_THRESHOLD_I: /* ints: B n; bufs: x y th (int64 per element) */
        if (op->ni < 2) break;
        NEED(0, 4 * B * N(1), "x");
        NEED(1, 4 * B * N(1), "y");
        NEED(2, 8 * N(1), "th");
        return 0;
    case OP_DELAY: /* ints: B n depth itemsize; bufs: x y ring ptr(int64) delay(int64 n) */
        if (op->ni < 4 || I(2) < 1 || (I(3) != 1 && I(3) != 2 && I(3) != 4 && I(3) != 8)) break;
        NEED(0, 4 * B * N(1), "x");
        NEED(1, 4 * B * N(1), "y");
        NEED(2, I(3) * I(2) * B * N(1), "ring");
        NEED(3, 8, "ptr");
        NEED(4, 8 * N(1), "delay");
        goto check_delays;
    case OP_DELAY_LINEAR_F: /* ints: B n_in n_out depth has_bias; bufs: x y ring ptr w delay bias */
    case OP_DELAY_LINEAR_I: /* ints: B n_in n_out depth zp_in zp_out lo hi;
                             * bufs: x y ring(int64) ptr w(int8) delay bias qm shift */
        if (op->ni < (op->kind == OP_DELAY_LINEAR_F ? 5 : 8) || I(3) < 1) break;
        NEED(0, 4 * B * N(1), "x");
        NEED(1, 4 * B * N(2), "y");
        NEED(2, (op->kind == OP_DELAY_LINEAR_F ? 4 : 8) * I(3) * B * N(1), "ring");
        NEED(3, 8, "ptr");
        NEED(4, (op->kind == OP_DELAY_LINEAR_F ? 4 : 1) * N(1) * N(2), "w");
        NEED(5, 8 * N(1) * N(2), "delay");
        if (op->kind == OP_DELAY_LINEAR_I || I(4)) NEED(6, 4 * N(2), "bias");
        if (op->kind == OP_DELAY_LINEAR_I) {
            NEED(7, 4 * N(2), "qm");
            NEED(8, N(2), "shift");
        }
    check_delays: { /* every delay in [0, depth), the pointer in [0, depth) */
        const long long *d = op->b[op->kind == OP_DELAY ? 4 : 5];
        Py_ssize_t k, nd = op->kind == OP_DELAY ? N(1) : N(1) * N(2);
        long long depth = op->kind == OP_DELAY ? I(2) : I(3), ptr = *(long long *)op->b[3];
        if (ptr < 0 || ptr >= depth) {
            PyErr_Format(PyExc_ValueError, "op %d: ring pointer out of range", op->kind);
            return -1;
        }
        for (k = 0; k < nd; k++)
            if (d[k] < 0 || d[k] >= depth) {
                PyErr_Format(PyExc_ValueError, "op %d: delay out of range", op->kind);
                return -1;
            }
        return 0;
    }
    case OP_EVENT_SCATTER:
    case OP_EVENT_SCATTER_I: {
        /* ints: 1 n_buf n_ev n0 n1 [acc_bytes]; bufs: buf base pol off0 w0 off1 w1 (see
         * event_scatter, event_scatter_i32) */
        long long lo[2] = {0, 0}, hi[2] = {-1, -1}, n[2] = {I(3), I(4)};
        const long long *base, *of[2];
        const unsigned char *pol;
        const int integer = op->kind == OP_EVENT_SCATTER_I;
        long long ab = 4, wb = 4;
        Py_ssize_t e, k;
        int p;
        if (op->ni < 5 || I(1) < 0 || I(2) < 0 || n[0] < 0 || n[1] < 0) break;
        if (integer) {
            if (op->ni < 6 || (I(5) != 2 && I(5) != 4)) {
                PyErr_SetString(PyExc_ValueError, "event_scatter_i: acc_bytes must be 2 or 4");
                return -1;
            }
            if (op->ni > 6 && I(6) != 1 && I(6) != 2 && I(6) != 4) {
                PyErr_SetString(PyExc_ValueError, "event_scatter_i: group must be 1, 2 or 4");
                return -1;
            }
            if (op->ni > 7 && I(7) != 1 && I(7) != 2) {
                PyErr_SetString(PyExc_ValueError, "event_scatter_i: code bytes must be 1 or 2");
                return -1;
            }
            ab = I(5), wb = op->ni > 7 ? I(7) : 1;
        }
        NEED(0, ab * I(1), "buf");
        NEED(1, 8 * I(2), "base");
        NEED(2, I(2), "pol");
        NEED(3, 8 * n[0], "off0");
        NEED(4, wb * n[0], "w0");
        NEED(5, 8 * n[1], "off1");
        NEED(6, wb * n[1], "w1");
        base = op->b[1], pol = op->b[2], of[0] = op->b[3], of[1] = op->b[5];
        for (p = 0; p < 2; p++)
            for (k = 0; k < n[p]; k++) {
                if (!k || of[p][k] < lo[p]) lo[p] = of[p][k];
                if (!k || of[p][k] > hi[p]) hi[p] = of[p][k];
            }
        for (e = 0; e < I(2); e++) {
            p = pol[e] != 0;
            if (n[p] && (base[e] + lo[p] < 0 || base[e] + hi[p] >= I(1))) {
                PyErr_SetString(PyExc_ValueError, "event_scatter: tap outside the buffer");
                return -1;
            }
        }
        return 0;
    }
    case OP_PULL_INT: {
        /* ints: 1 sw sh n_bins kt ho wo ky kx rs padl lanes acc_bytes n_c g plane n_pix nch0
         * nch1 split zp lo hi (see pull_int) */
        const long long sw = I(1), sh = I(2), nb = I(3), kt = I(4), ho = I(5), wo = I(6);
        const long long ky = I(7), kx = I(8), rs = I(9), padl = I(10), ln = I(11), ab = I(12);
        const long long nc = I(13), g = I(14), plane = I(15), np_ = I(16);
        const long long nch[2] = {I(17), I(18)};
        const long long *fs = op->b[0], *sh_ = op->b[13], *qm_ = op->b[12];
        const long long es = op->ni > 25 && I(25) ? 2 : 1; /* pair layout: 2 per position */
        const long long lp = ln / es;                       /* positions per chunk */
        long long ny, k, r, q, s;
        if (op->ni < 24 || I(23) < 0 || I(23) > 2 || sw < 1 || sh < 1 || kt < 1 || ky < 1 ||
            kx < 1 || nc < 1 || nb < 0 ||
            ho != sh - ky + 1 || wo != sw - kx + 1 || ho < 1 || wo < 1 || (ab != 2 && ab != 4) ||
            (ln != 8 && ln != 16) || (ab == 4 && ln != 8) || padl != kx + lp - 2 ||
            rs < padl + wo || rs < sw || rs % lp || es * plane < es * (ho + 1) * rs + ln ||
            np_ < 0 ||
            nch[0] < 0 || nch[1] < 0 || g < 1 || g > nc || g > 64 || I(21) > I(22))
            break;
        ny = nc * kt * (ky + 1);
        NEED(0, 8 * (nb + 1), "fst");
        NEED(1, 8 * np_, "pix");
        NEED(2, 8 * np_, "a0");
        NEED(3, 8 * np_, "a1");
        NEED(4, 8 * ny, "ys0");
        NEED(5, 8 * nch[0], "off0");
        NEED(6, ab * ln * nch[0], "v0");
        NEED(7, 8 * ny, "ys1");
        NEED(8, 8 * nch[1], "off1");
        NEED(9, ab * ln * nch[1], "v1");
        NEED(10, 8 * nc, "bias");
        NEED(11, 8 * nc, "qm");
        NEED(12, 8 * nc, "shift");
        if (op->ni > 24 && (I(24) < 0 || I(24) > nb)) break;
        if (op->ni > 25 && (I(25) < 0 || I(25) > 1 || (I(25) && (nch[1] || !I(19))))) break;
        NEED(13, 8 * (nb - (op->ni > 24 ? I(24) : 0)) * nc, "out");
        if (op->nb > 14) NEED(14, 4 * (nb - (op->ni > 24 ? I(24) : 0)) * nc * ho * wo, "z");
        qm_ = op->b[11], sh_ = op->b[12];
        if (!in_range(op->b[1], np_, 0, sw * sh) || !in_range(qm_, nc, 0, 1LL << 31) ||
            !in_range(sh_, nc, -31, 31) || fs[0] != 0 || fs[nb] != np_) {
            PyErr_SetString(PyExc_ValueError, "pull_int: pixel or multiplier table out of range");
            return -1;
        }
        for (k = 0; k < nb; k++)
            if (fs[k] > fs[k + 1]) {
                PyErr_SetString(PyExc_ValueError, "pull_int: fst not sorted");
                return -1;
            }
        /* a chunk of row cell (c, d, dy = q) written by a pixel (y, x), 0 <= y - q < ho,
         * 0 <= x < sw, covers y rs + x + off .. + lanes - 1: inside the class's two planes */
        for (s = 0; s < 2; s++) {
            const long long *ys = op->b[s ? 7 : 4], *of = op->b[s ? 8 : 5];
            if (!in_range(ys, ny, 0, nch[s] + 1)) {
                PyErr_SetString(PyExc_ValueError, "pull_int: ystart out of range");
                return -1;
            }
            for (r = 0; r < nc * kt; r++)
                for (q = 0; q < ky; q++) {
                    const long long *row = ys + r * (ky + 1);
                    if (row[q] > row[q + 1]) {
                        PyErr_SetString(PyExc_ValueError, "pull_int: ystart not sorted");
                        return -1;
                    }
                    for (k = row[q]; k < row[q + 1]; k++)
                        if (q * rs * es + of[k] < 0 ||
                            ((q + ho - 1) * rs + sw - 1) * es + of[k] + ln > 2 * plane) {
                            PyErr_SetString(PyExc_ValueError,
                                            "pull_int: chunk offset out of range");
                            return -1;
                        }
                }
        }
        return 0;
    }
    case OP_RING_SPLIT: {
        /* ints: 1 sw sh binary n_bins kt ho wo ky kx n_ev nb nd ns n_c (see ring_split) */
        long long sw = I(1), sh = I(2), kt = I(5), ho = I(6), wo = I(7), ky = I(8), kx = I(9);
        long long nb = I(11), nd = I(12), ns = I(13), nc = I(14);
        const long long *bs;
        if (op->ni < 15 || sw < 1 || sh < 1 || kt < 1 || ky < 1 || kx < 1 || nc < 1 ||
            ho != sh - ky + 1 || wo != sw - kx + 1 || ho < 1 || wo < 1 || I(4) < 0)
            break;
        NEED(0, 8 * N(10), "key");
        NEED(1, 8 * nb, "blk_d");
        NEED(2, 8 * nb, "blk_dy");
        NEED(3, 8 * nb, "blk_dx");
        NEED(4, 8 * (nb + 1), "blk_start");
        NEED(5, 8 * nd, "d_c");
        NEED(6, 4 * nd, "d_w");
        NEED(7, 8 * ns, "s_d");
        NEED(8, 8 * ns, "s_dy");
        NEED(9, 8 * ns, "s_dx");
        NEED(10, 8 * ns, "s_c");
        NEED(11, 4 * ns, "s_w");
        NEED(12, 4 * kt * ho * wo * nc, "vals");
        NEED(13, 8 * I(4) * nc, "out");
        bs = op->b[4];
        if (!in_range(op->b[0], N(10), 0, 2 * sw * sh * (I(4) + 1)) ||
            !in_range(op->b[1], nb, 0, kt) || !in_range(op->b[2], nb, 0, ky) ||
            !in_range(op->b[3], nb, 0, kx) || !in_range(bs, nb + 1, 0, nd + 1) ||
            (nb && (bs[0] != 0 || bs[nb] != nd)) || !in_range(op->b[5], nd, 0, nc) ||
            !in_range(op->b[7], ns, 0, kt) || !in_range(op->b[8], ns, 0, ky) ||
            !in_range(op->b[9], ns, 0, kx) || !in_range(op->b[10], ns, 0, nc)) {
            PyErr_SetString(PyExc_ValueError, "ring_split: index table out of range");
            return -1;
        }
        {
            Py_ssize_t k;
            for (k = 0; k < nb; k++)
                if (bs[k] > bs[k + 1]) {
                    PyErr_SetString(PyExc_ValueError, "ring_split: blk_start not sorted");
                    return -1;
                }
            for (k = 1; k < N(10); k++)
                if (((const long long *)op->b[0])[k] < ((const long long *)op->b[0])[k - 1]) {
                    PyErr_SetString(PyExc_ValueError, "ring_split: keys not sorted");
                    return -1;
                }
        }
        return 0;
    }
    case OP_PULL_ROWS: {
        /* ints: 1 sw sh binary n_bins kt ho wo ky kx rs padl lanes n_ev nch ns n_c [g] */
        long long sw = I(1), sh = I(2), kt = I(5), ho = I(6), wo = I(7), ky = I(8), kx = I(9);
        long long rs = I(10), padl = I(11), ln = I(12), nch = I(14), ns = I(15), nc = I(16), ny;
        long long g = op->ni > 17 ? I(17) : 1;
        const long long *ys, *of;
        Py_ssize_t k, r, q;
        if (op->ni < 17 || sw < 1 || sh < 1 || kt < 1 || ky < 1 || kx < 1 || nc < 1 ||
            ho != sh - ky + 1 || wo != sw - kx + 1 || ho < 1 || wo < 1 || I(4) < 0 ||
            (ln != 8 && ln != 16) || padl != kx + ln - 2 || rs < padl + wo || rs < sw ||
            rs % ln || nch < 0 || ns < 0 || I(13) < 0 || g < 1 || g > nc || g > 64)
            break;
        ny = nc * kt * (ky + 1);
        NEED(0, 8 * N(13), "key");
        NEED(1, 8 * ny, "ystart");
        NEED(2, 8 * nch, "off");
        NEED(3, 4 * ln * nch, "rv");
        NEED(4, 8 * ns, "s_d");
        NEED(5, 8 * ns, "s_dy");
        NEED(6, 8 * ns, "s_dx");
        NEED(7, 8 * ns, "s_c");
        NEED(8, 4 * ns, "s_w");
        NEED(9, 8 * I(4) * nc, "out");
        ys = op->b[1], of = op->b[2];
        if (!in_range(op->b[0], N(13), 0, 2 * sw * sh * (I(4) + 1)) ||
            !in_range(op->b[4], ns, 0, kt) || !in_range(op->b[5], ns, 0, ky) ||
            !in_range(op->b[6], ns, 0, kx) || !in_range(op->b[7], ns, 0, nc) ||
            !in_range(ys, ny, 0, nch + 1)) {
            PyErr_SetString(PyExc_ValueError, "pull_rows: index table out of range");
            return -1;
        }
        /* every chunk of row cell (c, d, dy = q) has offset padl - q rs - dx0 - (lanes - 1)
         * with 0 <= dx0 < kx: an event (y, x) with 0 <= y - q < ho then writes inside the
         * (ho + 1) x rs plane (columns up to padl + sw - 1 < 2 rs of row y - q) */
        for (r = 0; r < nc * kt; r++) {
            const long long *row = ys + r * (ky + 1);
            for (q = 0; q < ky; q++) {
                if (row[q] > row[q + 1]) {
                    PyErr_SetString(PyExc_ValueError, "pull_rows: ystart not sorted");
                    return -1;
                }
                for (k = row[q]; k < row[q + 1]; k++) {
                    const long long dx0 = padl - q * rs - (ln - 1) - of[k];
                    if (dx0 < 0 || dx0 >= kx) {
                        PyErr_SetString(PyExc_ValueError, "pull_rows: chunk offset out of range");
                        return -1;
                    }
                }
            }
        }
        for (k = 1; k < N(13); k++)
            if (((const long long *)op->b[0])[k] < ((const long long *)op->b[0])[k - 1]) {
                PyErr_SetString(PyExc_ValueError, "pull_rows: keys not sorted");
                return -1;
            }
        return 0;
    }
    case OP_LINEAR_F: /* ints: B n_in n_out has_bias; bufs: x y w bias scratch(int32 n_in) */
        if (op->ni < 4) break;
        NEED(0, 4 * B * N(1), "x");
        NEED(1, 4 * B * N(2), "y");
        NEED(2, 4 * N(1) * N(2), "w");
        if (I(3)) NEED(3, 4 * N(2), "bias");
        NEED(4, 4 * N(1), "scratch");
        return 0;
    case OP_LIF_F: /* ints: B n subtract spiking; bufs: x y v beta gain th reset leak */
        if (op->ni < 4) break;
        NEED(0, 4 * B * N(1), "x");
        NEED(1, 4 * B * N(1), "y");
        NEED(2, 4 * B * N(1), "v");
        NEED(3, 4 * N(1), "beta");
        NEED(4, 4 * N(1), "gain");
        NEED(5, 4 * N(1), "v_th");
        NEED(6, 4 * N(1), "v_reset");
        NEED(7, 4 * N(1), "v_leak");
        return 0;
    case OP_STDP_EVENT_F32:
    case OP_STDP_EVENT_F64: {
        /* ints: 1 n_post n_pre n_rows n_cols mult use_cols [per_term]; dbls: lo hi;
         * bufs: w rows cols gain x coef y is_row */
        Py_ssize_t ws = op->kind == OP_STDP_EVENT_F32 ? 4 : 8;
        if (op->ni < 7 || op->nd < 2) break;
        NEED(0, ws * N(1) * N(2), "w");
        NEED(1, 8 * N(3), "rows");
        NEED(2, 8 * N(4), "cols");
        NEED(3, 8 * N(3), "gain");
        NEED(4, 8 * N(2), "x");
        NEED(5, 8 * N(2), "coef");
        NEED(6, 8 * N(1), "y");
        NEED(7, N(1), "is_row");
        {
            Py_ssize_t k;
            const long long *r = op->b[1], *c = op->b[2];
            for (k = 0; k < N(3); k++)
                if (r[k] < 0 || r[k] >= I(1)) goto bad_index;
            for (k = 0; k < N(4); k++)
                if (c[k] < 0 || c[k] >= I(2)) goto bad_index;
        }
        return 0;
    }
    case OP_STDP_RUN_F32:
    case OP_STDP_RUN_F64: {
        /* ints: 1 n_post n_pre steps nearest mult dc trains_f32 [per_term];
         * bufs: w pre_t post_t x y y2 consts (9 values, or 10: + rate_cap) */
        Py_ssize_t ws = op->kind == OP_STDP_RUN_F32 ? 4 : 8, ts;
        if (op->ni < 8) break;
        ts = I(7) ? 4 : 8;
        NEED(0, ws * N(1) * N(2), "w");
        NEED(1, ts * N(3) * N(2), "pre_t");
        NEED(2, ts * N(3) * N(1), "post_t");
        NEED(3, 8 * N(2), "x");
        NEED(4, 8 * N(1), "y");
        NEED(5, 8 * N(1), "y2");
        NEED(6, 8 * 9, "consts");
        return 0;
    }
    case OP_STDP_STEP_F32:
        /* ints: 1 n_post n_pre nearest mult dc per_term; bufs: w(f32) pre(f32) post(f32)
         * x y y2 consts (9 or 10 values) scratch [post_sum] */
        if (op->ni < 7) break;
        NEED(0, 4 * N(1) * N(2), "w");
        NEED(1, 4 * N(2), "pre");
        NEED(2, 4 * N(1), "post");
        NEED(3, 8 * N(2), "x");
        NEED(4, 8 * N(1), "y");
        NEED(5, 8 * N(1), "y2");
        NEED(6, 8 * 9, "consts");
        NEED(7, 17 * N(1) + 24 * N(2), "scratch");
        if (op->nb > 8 && op->b[8]) NEED(8, 8 * N(1), "post_sum");
        return 0;
    default:
        PyErr_Format(PyExc_ValueError, "unknown op kind %d", op->kind);
        return -1;
    }
    if (!PyErr_Occurred())
        PyErr_Format(PyExc_ValueError, "op %d: too few integer arguments", op->kind);
    return -1;
bad_index:
    PyErr_Format(PyExc_ValueError, "op %d: row/column index out of range", op->kind);
    return -1;
}

/* (kind, ints, bufs[, dbls]) -> op; buffers are held until op_release. */
static int op_parse(PyObject *t, op_t *op)
{
    PyObject *ints, *bufs, *dbls = NULL;
    Py_ssize_t k, n;
    memset(op, 0, sizeof *op);
    if (!PyTuple_Check(t) || !PyArg_ParseTuple(t, "iO!O!|O!", &op->kind, &PyTuple_Type, &ints,
                                               &PyTuple_Type, &bufs, &PyTuple_Type, &dbls))
        return -1;
    n = PyTuple_GET_SIZE(ints);
    if (n > MAX_INTS || PyTuple_GET_SIZE(bufs) > MAX_BUFS ||
        (dbls && PyTuple_GET_SIZE(dbls) > MAX_DBLS)) {
        PyErr_SetString(PyExc_ValueError, "op: too many arguments");
        return -1;
    }
    for (k = 0; k < n; k++) {
        op->i[k] = PyLong_AsLongLong(PyTuple_GET_ITEM(ints, k));
        if (op->i[k] == -1 && PyErr_Occurred()) return -1;
    }
    op->ni = (int)n;
    if (dbls) {
        for (k = 0; k < PyTuple_GET_SIZE(dbls); k++) {
            op->d[k] = PyFloat_AsDouble(PyTuple_GET_ITEM(dbls, k));
            if (op->d[k] == -1.0 && PyErr_Occurred()) return -1;
        }
        op->nd = (int)PyTuple_GET_SIZE(dbls);
    }
    for (k = 0; k < PyTuple_GET_SIZE(bufs); k++) {
        PyObject *o = PyTuple_GET_ITEM(bufs, k);
        if (o == Py_None) {
            op->b[op->nb] = NULL;
            op->len[op->nb] = 0;
            memset(&op->view[op->nb], 0, sizeof(Py_buffer));
            op->nb++;
            continue;
        }
        if (PyObject_GetBuffer(o, &op->view[op->nb], PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) {
            op_release(op);
            return -1;
        }
        op->b[op->nb] = op->view[op->nb].buf;
        op->len[op->nb] = op->view[op->nb].len;
        op->nb++;
    }
    if (op_check(op) < 0) {
        op_release(op);
        return -1;
    }
    return 0;
}

static void op_run(op_t *op)
{
    int B = (int)I(0), b;
    switch (op->kind) {
    case OP_LINEAR_I8: {
        np_affine_t q = {(int32_t)I(3), (int32_t)I(4), (int32_t)I(5), (int32_t)I(6),
                         op->b[3], op->b[4], op->b[5]};
        for (b = 0; b < B; b++)
            np_linear((const int32_t *)op->b[0] + (size_t)b * I(1), (uint32_t)I(1),
                      (uint32_t)I(2), op->b[2], &q, (int32_t *)op->b[1] + (size_t)b * I(2));
        break;
    }
    case OP_CONV_I8: {
        np_affine_t q = {(int32_t)I(1), (int32_t)I(2), (int32_t)I(3), (int32_t)I(4),
                         op->b[3], op->b[4], op->b[5]};
        np_geom_t g;
        size_t nx, ny;
        geom_of(op, 5, &g);
        nx = (size_t)g.c_in * g.h * g.w, ny = (size_t)g.c_out * g.ho * g.wo;
        const int u8 = op->ni > 21 && I(20);
        for (b = 0; b < B; b++) {
            int32_t *yb = (int32_t *)op->b[1] + b * ny;
            if (op->nb > 8 && op->b[7])
                conv2d_dense((const int32_t *)op->b[0] + b * nx, &g, op->b[2], &q, yb, op->b[6],
                             op->b[7], op->b[8], u8, (int32_t)I(21));
            else if (op->nb > 6 && op->b[6])
                conv2d_grouped((const int32_t *)op->b[0] + b * nx, &g, op->b[2], &q, yb,
                               op->b[6], u8, (int32_t)I(21));
            else
                np_conv2d((const int32_t *)op->b[0] + b * nx, &g, op->b[2], &q, yb);
        }
        break;
    }
    case OP_POOL_I: {
        np_geom_t g;
        size_t nx, ny;
        geom_of(op, 5, &g);
        nx = (size_t)g.c_in * g.h * g.w, ny = (size_t)g.c_in * g.ho * g.wo;
        for (b = 0; b < B; b++)
            if (I(1) != NP_POOL_MAX ||
                !pool_max_tiled((const int32_t *)op->b[0] + b * nx, &g, (int32_t *)op->b[1] + b * ny))
                np_pool2d((const int32_t *)op->b[0] + b * nx, &g, (int)I(1), (int32_t)I(2),
                          (int32_t)I(3), (int32_t)I(4), (int32_t *)op->b[1] + b * ny);
        break;
    }
    case OP_ADD_I: {
        np_add_t p;
        p.za = (int32_t)I(2), p.zb = (int32_t)I(3), p.zo = (int32_t)I(4);
        p.lo = (int32_t)I(5), p.hi = (int32_t)I(6);
        p.ma = (int32_t)I(7), p.mb = (int32_t)I(8), p.mo = (int32_t)I(9);
        p.sa = (int8_t)I(10), p.sb = (int8_t)I(11), p.so = (int8_t)I(12);
        p.single = (uint8_t)I(13);
        np_add(op->b[0], op->b[1], (uint32_t)(B * I(1)), &p, op->b[2]);
        break;
    }
    case OP_SCALE_I: {
        np_bcast_t bc = {(uint32_t)I(1), 1};
        np_scale(op->b[0], (uint32_t)(B * I(1)), &bc, op->b[2], op->b[3], op->b[4],
                 (int32_t)I(2), (int32_t)I(3), (int32_t)I(4), (int32_t)I(5), op->b[1]);
        break;
    }
    case OP_THRESHOLD_I: {
        np_bcast_t bc = {(uint32_t)I(1), 1};
        np_threshold(op->b[0], (uint32_t)(B * I(1)), &bc, op->b[2], op->b[1]);
        break;
    }
    case OP_RELU_I: np_relu(op->b[0], (uint32_t)(B * I(1)), (int32_t)I(2), op->b[1]); break;
    case OP_RELU_F: {
        const float *x = op->b[0];
        float *y = op->b[1];
        Py_ssize_t k, n = B * N(1);
        for (k = 0; k < n; k++) y[k] = x[k] > 0.0f ? x[k] : 0.0f;
        break;
    }
    case OP_NEURON_I: {
        np_neuron_t p;
        size_t n = (size_t)I(1);
        p.zp_in = (int32_t)I(2), p.spiking = (uint8_t)I(3), p.subtract = (uint8_t)I(4);
        p.beta = op->b[4], p.v_th = op->b[5], p.v_reset = op->b[6], p.v_leak = op->b[7];
        p.alpha = I(5) ? op->b[8] : NULL;
        for (b = 0; b < B; b++)
            np_neuron_step((const int32_t *)op->b[0] + b * n, (uint32_t)n, &p,
                           (int64_t *)op->b[2] + b * n,
                           I(5) ? (int64_t *)op->b[3] + b * n : NULL,
                           (int32_t *)op->b[1] + b * n);
        break;
    }
    case OP_DELAY: {
        const size_t n = (size_t)I(1);
        const long long depth = I(2);
        const int isz = (int)I(3);
        const int32_t *x = op->b[0];
        int32_t *y = op->b[1];
        const long long *d = op->b[4];
        const long long p = ring_next(op->b[3], depth);
        size_t k;
        for (k = 0; k < (size_t)B * n; k++) ring_put(op->b[2], isz, (size_t)p * B * n + k, x[k]);
        for (b = 0; b < B; b++)
            for (k = 0; k < n; k++)
                y[b * n + k] = (int32_t)ring_get(op->b[2], isz,
                                                 (ring_row(p, d[k], depth) * B + b) * n + k);
        break;
    }
    case OP_DELAY_LINEAR_F:
    case OP_DELAY_LINEAR_I: {
        const size_t ni = (size_t)I(1), no = (size_t)I(2);
        const long long depth = I(3);
        const long long *d = op->b[5];
        const long long p = ring_next(op->b[3], depth);
        size_t o, j;
        if (op->kind == OP_DELAY_LINEAR_F) {
            float *ring = op->b[2];
            const float *x = op->b[0], *w = op->b[4], *bias = I(4) ? op->b[6] : NULL;
            float *y = op->b[1];
            memcpy(ring + (size_t)p * B * ni, x, (size_t)B * ni * sizeof(float));
            for (b = 0; b < B; b++)
                for (o = 0; o < no; o++) {
                    double acc = bias ? (double)bias[o] : 0.0;
                    for (j = 0; j < ni; j++)
                        acc += (double)w[o * ni + j] *
                               (double)ring[(ring_row(p, d[o * ni + j], depth) * B + b) * ni + j];
                    y[b * no + o] = (float)acc;
                }
        } else {
            int64_t *ring = op->b[2];
            const int32_t *x = op->b[0];
            const int8_t *w = op->b[4];
            int32_t *y = op->b[1];
            np_affine_t q = {(int32_t)I(4), (int32_t)I(5), (int32_t)I(6), (int32_t)I(7),
                             op->b[6], op->b[7], op->b[8]};
            for (j = 0; j < (size_t)B * ni; j++) ring[(size_t)p * B * ni + j] = x[j];
            for (b = 0; b < B; b++)
                for (o = 0; o < no; o++) {
                    int64_t acc = q.bias[o];
                    for (j = 0; j < ni; j++)
                        acc += (int64_t)w[o * ni + j] *
                               (ring[(ring_row(p, d[o * ni + j], depth) * B + b) * ni + j] - q.zp_in);
                    y[b * no + o] = np_affine_out(&q, (uint32_t)o, acc);
                }
        }
        break;
    }
    case OP_LINEAR_F:
        linear_f32(op->b[0], B, (int)I(1), (int)I(2), op->b[2], I(3) ? op->b[3] : NULL,
                   op->b[1], op->b[4]);
        break;
    case OP_LIF_F: {
        size_t n = (size_t)I(1);
        for (b = 0; b < B; b++)
            lif_f32((const float *)op->b[0] + b * n, (int)n, op->b[3], op->b[4], op->b[5],
                    op->b[6], op->b[7], (int)I(2), (int)I(3), (float *)op->b[2] + b * n,
                    (float *)op->b[1] + b * n);
        break;
    }
    case OP_STDP_EVENT_F32:
    case OP_STDP_EVENT_F64:
        if (op->kind == OP_STDP_EVENT_F32)
            event_apply_float(op->b[0], (int)I(1), (int)I(2), op->b[1], (int)I(3), op->b[2],
                              (int)I(4), op->b[3], op->b[4], op->b[5], op->b[6], (int)I(5),
                              op->d[0], op->d[1], (int)I(6), op->ni > 7 && I(7), op->b[7]);
        else
            event_apply_double(op->b[0], (int)I(1), (int)I(2), op->b[1], (int)I(3), op->b[2],
                               (int)I(4), op->b[3], op->b[4], op->b[5], op->b[6], (int)I(5),
                               op->d[0], op->d[1], (int)I(6), op->ni > 7 && I(7), op->b[7]);
        break;
    case OP_RING_SPLIT:
        op->status = ring_split(op->b[0], I(1), I(2), (int)I(3), I(4), I(5), I(6), I(7), I(8),
                                I(9), I(10), I(11), I(12), I(13), I(14), op->b[1], op->b[2],
                                op->b[3], op->b[4], op->b[5], op->b[6], op->b[7], op->b[8],
                                op->b[9], op->b[10], op->b[11], op->b[12], op->b[13]);
        break;
    case OP_EVENT_SCATTER:
        event_scatter(op->b[0], I(2), op->b[1], op->b[2], op->b[3], op->b[4], I(3), op->b[5],
                      op->b[6], I(4));
        break;
    case OP_EVENT_SCATTER_I:
        if (op->ni > 7 && I(7) == 2) {
            if (I(5) == 2)
                event_scatter_i16w16(op->b[0], I(2), op->b[1], op->b[2], op->b[3], op->b[4],
                                     I(3), op->b[5], op->b[6], I(4), op->ni > 6 ? (int)I(6) : 4);
            else
                event_scatter_i32w16(op->b[0], I(2), op->b[1], op->b[2], op->b[3], op->b[4],
                                     I(3), op->b[5], op->b[6], I(4), op->ni > 6 ? (int)I(6) : 4);
        } else if (I(5) == 2)
            event_scatter_i16(op->b[0], I(2), op->b[1], op->b[2], op->b[3], op->b[4], I(3),
                              op->b[5], op->b[6], I(4), op->ni > 6 ? (int)I(6) : 4);
        else
            event_scatter_i32(op->b[0], I(2), op->b[1], op->b[2], op->b[3], op->b[4], I(3),
                              op->b[5], op->b[6], I(4), op->ni > 6 ? (int)I(6) : 4);
        break;
    case OP_PULL_INT:
        op->status = pull_int(op->i, op->b[0], op->b[1], op->b[2], op->b[3], op->b[4], op->b[5],
                              op->b[6], op->b[7], op->b[8], op->b[9], op->b[10], op->b[11],
                              op->b[12], op->b[13], op->nb > 14 ? op->b[14] : NULL,
                              op->ni > 24 ? I(24) : 0, op->ni > 25 ? (int)I(25) : 0);
        break;
    case OP_PULL_ROWS:
        op->status = pull_rows(op->b[0], I(1), I(2), (int)I(3), I(4), I(5), I(6), I(7), I(8),
                               I(9), I(10), I(11), I(13), I(15), I(16), I(12), I(14),
                               op->ni > 17 ? I(17) : 1, op->b[1], op->b[2],
                               op->b[3], op->b[4], op->b[5], op->b[6], op->b[7], op->b[8],
                               op->b[9]);
        break;
    case OP_STDP_RUN_F32:
        op->status = stdp_run_float(op->b[0], (int)I(1), (int)I(2), (int)I(3), op->b[1],
                                    op->b[2], (int)I(7), op->b[3], op->b[4], op->b[5],
                                    op->b[6], (int)(op->len[6] / 8), (int)I(4), (int)I(5),
                                    (int)I(6), op->ni > 8 && I(8));
        break;
    case OP_STDP_RUN_F64:
        op->status = stdp_run_double(op->b[0], (int)I(1), (int)I(2), (int)I(3), op->b[1],
                                     op->b[2], (int)I(7), op->b[3], op->b[4], op->b[5],
                                     op->b[6], (int)(op->len[6] / 8), (int)I(4), (int)I(5),
                                    (int)I(6), op->ni > 8 && I(8));
        break;
    case OP_STDP_STEP_F32:
        op->status = stdp_step_f32(op->b[0], (int)I(1), (int)I(2), op->b[1], op->b[2],
                                   op->b[3], op->b[4], op->b[5], op->b[6],
                                   (int)(op->len[6] / 8), (int)I(3), (int)I(4), (int)I(5),
                                   (int)I(6), op->nb > 8 ? op->b[8] : NULL, op->b[7]);
        break;
    default: break;
    }
}

/* ------------------------------------------------------------------ Python API */

/* None, or the error an op reported: -1 out of memory, 1 non-finite input (nothing
 * changed). */
static PyObject *op_status(const op_t *op)
{
    if (op->status < 0) return PyErr_NoMemory();
    if (op->status > 0) {
        PyErr_Format(PyExc_FloatingPointError, "op %d: input contains NaN or Inf", op->kind);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *py_op(PyObject *self, PyObject *args)
{
    op_t op;
    (void)self;
    if (op_parse(args, &op) < 0) return NULL;
    Py_BEGIN_ALLOW_THREADS op_run(&op);
    Py_END_ALLOW_THREADS op_release(&op);
    return op_status(&op);
}

typedef struct {
    PyObject_HEAD
    int n;
    op_t *ops;
} PlanObject;

static void plan_dealloc(PlanObject *p)
{
    int k;
    for (k = 0; k < p->n; k++) op_release(&p->ops[k]);
    PyMem_Free(p->ops);
    Py_TYPE(p)->tp_free((PyObject *)p);
}

static PyObject *plan_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    PyObject *ops;
    PlanObject *p;
    Py_ssize_t k;
    (void)kw;
    if (!PyArg_ParseTuple(args, "O!", &PyTuple_Type, &ops)) return NULL;
    p = (PlanObject *)type->tp_alloc(type, 0);
    if (!p) return NULL;
    p->ops = PyMem_Calloc((size_t)PyTuple_GET_SIZE(ops) + 1, sizeof(op_t));
    if (!p->ops) {
        Py_DECREF(p);
        return PyErr_NoMemory();
    }
    for (k = 0; k < PyTuple_GET_SIZE(ops); k++) {
        if (op_parse(PyTuple_GET_ITEM(ops, k), &p->ops[k]) < 0) {
            Py_DECREF(p);
            return NULL;
        }
        p->n++;
    }
    return (PyObject *)p;
}

static PyObject *plan_run(PlanObject *p, PyObject *unused)
{
    int k;
    (void)unused;
    for (k = 0; k < p->n; k++) {
        op_run(&p->ops[k]);
        if (p->ops[k].status) return op_status(&p->ops[k]);
    }
    Py_RETURN_NONE;
}

static PyMethodDef plan_methods[] = {
    {"run", (PyCFunction)plan_run, METH_NOARGS, "Run every op once, in order."},
    {NULL, NULL, 0, NULL}};

static PyTypeObject PlanType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "neuroplast._native.Plan",
    .tp_basicsize = sizeof(PlanObject),
    .tp_dealloc = (destructor)plan_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Plan(ops): ops run in order by run(); buffers are held (views) for its life.",
    .tp_methods = plan_methods,
    .tp_new = plan_new,
};

/* finite_f32(buffer) -> bool: no float32 value is NaN or Inf (the input check of a
 * streaming step, without numpy's reduction overhead) */
static PyObject *py_finite_f32(PyObject *self, PyObject *arg)
{
    Py_buffer v;
    int ok;
    (void)self;
    if (PyObject_GetBuffer(arg, &v, PyBUF_C_CONTIGUOUS) < 0) return NULL;
    ok = all_finite_f32(v.buf, v.len / 4);
    PyBuffer_Release(&v);
    return PyBool_FromLong(ok);
}

/* ------------------------------------------------------------------ RMW peak (bench)
 * The event layer's limit, measured in C (bench/bench_speed.py): the row chunk's
 * read-modify-write p[j] = p[j] + f w[j] (load a weight vector, load a plane vector, mul,
 * add, store the plane vector; no index arithmetic) over an n-float plane and an n-float
 * weight table (n = 2048: 8 kB each, both L1-resident), four independent vectors per turn,
 * at one instruction-set level: 0 portable C (what the compiler makes of the plain loop for
 * the baseline x86-64 target), 1 AVX2 (8 lanes), 2 AVX-512 (16 lanes). shift > 0 offsets
 * the plane by that many floats (unaligned vectors, as the row chunks' are). */
static void rmw_portable(float *p, const float *w, long long n, long long reps, float f)
{
    long long r, j;
    for (r = 0; r < reps; r++) {
        for (j = 0; j < n; j++) p[j] = p[j] + f * w[j];
        __asm__ volatile("" ::: "memory");
    }
}
#ifdef NP_X86
NP_T256 static void rmw_avx2(float *p, const float *w, long long n, long long reps, float f)
{
    const __m256 fv = _mm256_set1_ps(f);
    long long r, j;
    for (r = 0; r < reps; r++) {
        for (j = 0; j + 32 <= n; j += 32) {
            __m256 a0 = _mm256_loadu_ps(p + j), a1 = _mm256_loadu_ps(p + j + 8);
            __m256 a2 = _mm256_loadu_ps(p + j + 16), a3 = _mm256_loadu_ps(p + j + 24);
            a0 = _mm256_add_ps(a0, _mm256_mul_ps(fv, _mm256_loadu_ps(w + j)));
            a1 = _mm256_add_ps(a1, _mm256_mul_ps(fv, _mm256_loadu_ps(w + j + 8)));
            a2 = _mm256_add_ps(a2, _mm256_mul_ps(fv, _mm256_loadu_ps(w + j + 16)));
            a3 = _mm256_add_ps(a3, _mm256_mul_ps(fv, _mm256_loadu_ps(w + j + 24)));
            _mm256_storeu_ps(p + j, a0), _mm256_storeu_ps(p + j + 8, a1);
            _mm256_storeu_ps(p + j + 16, a2), _mm256_storeu_ps(p + j + 24, a3);
        }
        __asm__ volatile("" ::: "memory");
    }
}
NP_T512 static void rmw_avx512(float *p, const float *w, long long n, long long reps, float f)
{
    const __m512 fv = _mm512_set1_ps(f);
    long long r, j;
    for (r = 0; r < reps; r++) {
        for (j = 0; j + 64 <= n; j += 64) {
            __m512 a0 = _mm512_loadu_ps(p + j), a1 = _mm512_loadu_ps(p + j + 16);
            __m512 a2 = _mm512_loadu_ps(p + j + 32), a3 = _mm512_loadu_ps(p + j + 48);
            a0 = _mm512_add_ps(a0, _mm512_mul_ps(fv, _mm512_loadu_ps(w + j)));
            a1 = _mm512_add_ps(a1, _mm512_mul_ps(fv, _mm512_loadu_ps(w + j + 16)));
            a2 = _mm512_add_ps(a2, _mm512_mul_ps(fv, _mm512_loadu_ps(w + j + 32)));
            a3 = _mm512_add_ps(a3, _mm512_mul_ps(fv, _mm512_loadu_ps(w + j + 48)));
            _mm512_storeu_ps(p + j, a0), _mm512_storeu_ps(p + j + 16, a1);
            _mm512_storeu_ps(p + j + 32, a2), _mm512_storeu_ps(p + j + 48, a3);
        }
        __asm__ volatile("" ::: "memory");
    }
}
#endif

/* rmw_peak(level, reps[, shift[, plane]]) -> (float32 lanes/s, checksum): lanes = plane reps
 * (plane: floats of the plane, default 2048 = 8 kB, L1-resident; larger ones, e.g. the pull
 * pass's g class planes, swept in 2048-float blocks against the same 8 kB of weights), over
 * the thread CPU time (CLOCK_THREAD_CPUTIME_ID); a level the CPU lacks raises ValueError. */
static PyObject *py_rmw_peak(PyObject *self, PyObject *args)
{
    const long long n = 2048;
    long long reps, j, b, np_ = 2048;
    int level, shift = 0;
    float *buf, *p;
    double sum = 0.0, dt;
    struct timespec t0, t1;
    (void)self;
    if (!PyArg_ParseTuple(args, "iL|iL", &level, &reps, &shift, &np_)) return NULL;
    if (level < 0 || level > isa_detect() || reps < 1 || shift < 0 || shift > 15)
        return PyErr_Format(PyExc_ValueError, "rmw_peak: level %d not available here", level);
    if (np_ < n || np_ > (1LL << 26))
        return PyErr_Format(PyExc_ValueError, "rmw_peak: plane of %lld floats, need 2048..2^26",
                            np_);
    np_ = (np_ + n - 1) / n * n;
    buf = aligned_alloc(64, (size_t)(np_ + n + 64) * sizeof(float));
    if (!buf) return PyErr_NoMemory();
    for (j = 0; j < np_ + n + 64; j++) buf[j] = (float)(j % 7) * 0.125f;
    p = buf + n + 32 + shift; /* the weights (n floats, L1) first, then the plane */
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
    for (j = 0; j < reps; j++)
        for (b = 0; b < np_; b += n) {
#ifdef NP_X86
            if (level == 2) rmw_avx512(p + b, buf, n, 1, 1e-7f);
            else if (level == 1) rmw_avx2(p + b, buf, n, 1, 1e-7f);
            else
#endif
                rmw_portable(p + b, buf, n, 1, 1e-7f);
        }
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
    for (j = 0; j < np_; j++) sum += p[j];
    free(buf);
    dt = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    return Py_BuildValue("dd", dt > 0 ? (double)np_ * (double)reps / dt : 0.0, sum);
}

/* The integer event scatter's limit, measured in C (bench/bench_speed.py events): the
 * same instruction stream as event_scatter_i16 / _i32 (load an int64 offset, load an int8
 * code, load the accumulator, add, store) over n = 2048 taps at consecutive offsets of an
 * L1-resident accumulator array (4 or 8 kB) and weight table, i.e. the bare scalar
 * read-modify-write without cache misses. The portable C loop is the only level (the
 * kernel is scalar). scatter_peak(reps, acc_bytes[, group]) -> (taps/s, checksum), thread CPU
 * time; group 1, 2 or 4: events of one polarity per pass (the kernel's grouped form, each
 * on its own L1-resident array). */
static PyObject *py_scatter_peak(PyObject *self, PyObject *args)
{
    const long long n = 2048;
    long long reps, r, j, *off;
    const long long base4[4] = {0, 2048 + 32, 2 * (2048 + 32), 3 * (2048 + 32)};
    const unsigned char pol4[4] = {0, 0, 0, 0};
    int ab, group = 1;
    int8_t *w;
    void *acc;
    double sum = 0.0, dt;
    struct timespec t0, t1;
    (void)self;
    if (!PyArg_ParseTuple(args, "Li|i", &reps, &ab, &group)) return NULL;
    if (reps < 1 || (ab != 2 && ab != 4) || (group != 1 && group != 2 && group != 4))
        return PyErr_Format(PyExc_ValueError,
                            "scatter_peak: reps >= 1, acc_bytes 2 or 4, group 1, 2 or 4");
    off = malloc((size_t)n * sizeof *off);
    w = malloc((size_t)n);
    acc = calloc((size_t)4 * (n + 32), (size_t)ab);
    if (!off || !w || !acc) {
        free(off), free(w), free(acc);
        return PyErr_NoMemory();
    }
    for (j = 0; j < n; j++) off[j] = j, w[j] = (int8_t)(j % 7 - 3);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
    for (r = 0; r < reps; r++) {
        if (ab == 2)
            event_scatter_i16(acc, group, base4, pol4, off, w, n, off, w, n, group);
        else
            event_scatter_i32(acc, group, base4, pol4, off, w, n, off, w, n, group);
        __asm__ volatile("" ::: "memory");
    }
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
    for (j = 0; j < n; j++)
        sum += ab == 2 ? (double)(int16_t)((uint16_t *)acc)[j]
                       : (double)(int32_t)((uint32_t *)acc)[j];
    free(off), free(w), free(acc);
    dt = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    return Py_BuildValue("dd", dt > 0 ? (double)n * group * (double)reps / dt : 0.0, sum);
}

/* The integer pull path's limit, measured in C (bench/bench_speed.py events): the row
 * chunk's read-modify-write p = p + f w of irows_add* (load a weight vector, load a plane
 * vector, multiply by the pixel's coefficient, add, store; unsigned integer lanes) over an
 * 8 kB plane and an 8 kB weight table (L1-resident), four independent vectors per turn,
 * consecutive vectors (no index arithmetic): acc_bytes 2 with 16 lanes (256-bit) or 8
 * (128-bit), acc_bytes 4 with 8 lanes (256-bit); AVX2 where the CPU has it (the clone the
 * pull pass runs), else portable C. shift > 0 offsets the plane by that many elements
 * (unaligned vectors, as the chunks' are). irmw_peak(reps, acc_bytes, lanes[, shift]) ->
 * (lanes/s, checksum), thread CPU time. */
#ifdef NP_VEC8
#define NP_IRMW(NAME, T, VT, L)                                                               \
    NP_AVX2_CLONE static void NAME(T *p, const T *w, long long n, long long reps, T fa)     \
    {                                                                                       \
        const VT f = (VT){0} + fa;                                                          \
        long long r, k;                                                                     \
        for (r = 0; r < reps; r++) {                                                        \
            for (k = 0; k + 4 * L <= n; k += 4 * L) {                                       \
                VT a0, a1, a2, a3, w0, w1, w2, w3;                                          \
                memcpy(&a0, p + k, sizeof a0), memcpy(&a1, p + k + L, sizeof a1);           \
                memcpy(&a2, p + k + 2 * L, sizeof a2), memcpy(&a3, p + k + 3 * L, sizeof a3); \
                memcpy(&w0, w + k, sizeof w0), memcpy(&w1, w + k + L, sizeof w1);           \
                memcpy(&w2, w + k + 2 * L, sizeof w2), memcpy(&w3, w + k + 3 * L, sizeof w3); \
                a0 += f * w0, a1 += f * w1, a2 += f * w2, a3 += f * w3;                     \
                memcpy(p + k, &a0, sizeof a0), memcpy(p + k + L, &a1, sizeof a1);           \
                memcpy(p + k + 2 * L, &a2, sizeof a2), memcpy(p + k + 3 * L, &a3, sizeof a3); \
            }                                                                               \
            __asm__ volatile("" ::: "memory");                                              \
        }                                                                                   \
    }
#else
#define NP_IRMW(NAME, T, VT, L)                                                               \
    static void NAME(T *p, const T *w, long long n, long long reps, T fa)                   \
    {                                                                                       \
        long long r, k;                                                                     \
        for (r = 0; r < reps; r++) {                                                        \
            for (k = 0; k < n; k++) p[k] = (T)(p[k] + (uint32_t)fa * (uint32_t)w[k]);       \
            __asm__ volatile("" ::: "memory");                                              \
        }                                                                                   \
    }
#endif
NP_IRMW(irmw16x16, uint16_t, np_v16u16, 16)
NP_IRMW(irmw16x8, uint16_t, np_v8u16, 8)
NP_IRMW(irmw32x8, uint32_t, np_v8u32, 8)

static PyObject *py_irmw_peak(PyObject *self, PyObject *args)
{
    long long reps, n, j;
    int ab, lanes, shift = 0;
    void *buf;
    double sum = 0.0, dt;
    struct timespec t0, t1;
    (void)self;
    if (!PyArg_ParseTuple(args, "Lii|i", &reps, &ab, &lanes, &shift)) return NULL;
    if (reps < 1 || !((ab == 2 && (lanes == 8 || lanes == 16)) || (ab == 4 && lanes == 8)) ||
        shift < 0 || shift > 15)
        return PyErr_Format(PyExc_ValueError,
                            "irmw_peak: reps >= 1, acc_bytes 2 (8 or 16 lanes) or 4 (8 lanes)");
    n = 8192 / ab;
    buf = aligned_alloc(64, (size_t)(2 * n + 64) * (size_t)ab);
    if (!buf) return PyErr_NoMemory();
    for (j = 0; j < 2 * n + 64; j++) {
        if (ab == 2) ((uint16_t *)buf)[j] = (uint16_t)(j % 7);
        else ((uint32_t *)buf)[j] = (uint32_t)(j % 7);
    }
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
    if (ab == 4) irmw32x8((uint32_t *)buf + shift, (uint32_t *)buf + n + 32, n, reps, 1);
    else if (lanes == 16) irmw16x16((uint16_t *)buf + shift, (uint16_t *)buf + n + 32, n, reps, 1);
    else irmw16x8((uint16_t *)buf + shift, (uint16_t *)buf + n + 32, n, reps, 1);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
    for (j = 0; j < n; j++)
        sum += ab == 2 ? (double)((uint16_t *)buf)[shift + j] : (double)((uint32_t *)buf)[shift + j];
    free(buf);
    dt = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    return Py_BuildValue("dd", dt > 0 ? (double)n * (double)reps / dt : 0.0, sum);
}

/* isa([name]) -> the instruction set the convolution kernels use ("avx512vnni", "avx2" or
 * "portable"); a name selects it ("portable" always works, "auto" detects again; a level the
 * CPU lacks raises ValueError). Tests run both levels against the numpy reference. */
static PyObject *py_isa(PyObject *self, PyObject *args)
{
    const char *name = NULL;
    (void)self;
    if (!PyArg_ParseTuple(args, "|s", &name)) return NULL;
    if (name) {
        if (!strcmp(name, "portable")) np_isa = NP_ISA_PORTABLE;
        else if (!strcmp(name, "auto")) np_isa = isa_detect();
        else if (!strcmp(name, "avx512vnni") && isa_detect() == NP_ISA_AVX512VNNI)
            np_isa = NP_ISA_AVX512VNNI;
        else if (!strcmp(name, "avx2") && isa_detect() >= NP_ISA_AVX2)
            np_isa = NP_ISA_AVX2;
        else return PyErr_Format(PyExc_ValueError, "isa %s is not available here", name);
    }
    return PyUnicode_FromString(isa_level() == NP_ISA_AVX512VNNI ? "avx512vnni"
                                : isa_level() == NP_ISA_AVX2     ? "avx2"
                                                                 : "portable");
}

static PyMethodDef methods[] = {
    {"op", py_op, METH_VARARGS, "op(kind, ints, bufs[, dbls]): run one op now."},
    {"finite_f32", py_finite_f32, METH_O, "finite_f32(buffer): no float32 NaN/Inf in it."},
    {"isa", py_isa, METH_VARARGS, "isa([name]): the conv kernels' instruction set (or set it)."},
    {"rmw_peak", py_rmw_peak, METH_VARARGS,
     "rmw_peak(level, reps[, shift[, plane]]): (float32 lanes/s, checksum) of the p += f w loop."},
    {"scatter_peak", py_scatter_peak, METH_VARARGS,
     "scatter_peak(reps, acc_bytes[, group]): (taps/s, checksum) of the L1 integer scatter."},
    {"irmw_peak", py_irmw_peak, METH_VARARGS,
     "irmw_peak(reps, acc_bytes, lanes[, shift]): (lanes/s, checksum) of the L1 integer p += f w."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_native",
                                    "neuroplast compiled kernels (optional).", -1, methods};

PyMODINIT_FUNC PyInit__native(void)
{
    PyObject *m;
    if (PyType_Ready(&PlanType) < 0) return NULL;
    m = PyModule_Create(&module);
    if (!m) return NULL;
    Py_INCREF(&PlanType);
    if (PyModule_AddObject(m, "Plan", (PyObject *)&PlanType) < 0) {
        Py_DECREF(&PlanType);
        Py_DECREF(m);
        return NULL;
    }
    PyModule_AddIntConstant(m, "ABI", 1);
    return m;
}
