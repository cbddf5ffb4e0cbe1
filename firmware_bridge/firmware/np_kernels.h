/* np_kernels.h -- the integer layer kernels of neuroplast, as pure C99 functions.
 *
 * Every kernel reads explicit input buffers and parameters and writes an explicit output
 * buffer (plus, for stateful kinds, an explicit state buffer the caller owns). No globals,
 * no allocation, no libc: the same sources build the board firmware and (issue 23) the
 * host's compiled fast path. Activations are int32 codes; the arithmetic is the neuroplast
 * integer runtime's (sdk/runtime/kernels.py, sdk/quant.py, sdk/neurons.py), bit for bit:
 *
 *   requantize  rq(a, qm, s) = (a*qm + 2^(t-1)) >> t,  t = 31 - s      (LiteRT single rounding)
 *   affine      acc = sat32(bias + sum w*(x - zp_in));  y = clamp(rq(acc) + zp_out, lo, hi)
 *   conv        as affine over the window; padded positions add 0 (x = zp_in)
 *   max pool    max over the window; padded cells hold `pad` (the input dtype's minimum)
 *   avg pool    s = sum of the window's real cells, c = their count:
 *               y = clamp(s >= 0 ? (s + c/2) / c : -((-s + c/2) / c), lo, hi)
 *   sum pool    y = sum of the window's real cells (int32)
 *   add         single: y = clamp(((2^(so-1) + ma (a - za) + mb (b - zb)) >> so) + zo, lo, hi)
 *               (LiteRT's default XNNPACK ADD); else y = clamp(rq(rq(a') + rq(b'), mo, so) + zo),
 *               a' = (a - za) * 2^20 (ma, sa), b' = (b - zb) * 2^20 (mb, sb)   (TFLite ADD)
 *   scale       y = clamp(rq(sign * (x - zi), qm, s) + zo, lo, hi)
 *   relu        y = max(x, zp)
 *   threshold   y = [x > th]
 *   LIF/IF      v = v_leak + (((v - v_leak)*beta + 2^14) >> 15) + (x - zp_in);  s = [v > v_th];
 *               v = v_reset where s (reset zero) | v - v_th where s (subtract)
 *   LI          v as LIF, no spike; y = sat32(v)
 *   CubaLIF     i = ((i*alpha + 2^14) >> 15) + (x - zp_in);  then LIF driven by i
 *   delay       y_i[t] = x_i[t - d_i] over a ring buffer
 *   delay linear acc_o = bias_o + sum_j w_oj*(x_j[t - d_oj] - zp_in)
 *
 * `>>` is a floor shift, written without implementation-defined behaviour. Values that a
 * valid model never reaches (|acc| >= 2^31, |v| >= 2^62) saturate instead of overflowing,
 * so a hostile image can give wrong numbers but never undefined behaviour. */
#ifndef NP_KERNELS_H
#define NP_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Per-output-channel requantization of an affine layer. */
typedef struct {
    int32_t zp_in, zp_out, out_min, out_max;
    const int32_t *bias; /* [n_out] */
    const int32_t *qm;   /* [n_out], >= 0 */
    const int8_t *shift; /* [n_out], -31..30 */
} np_affine_t;

/* Convolution / pooling geometry over [C][H][W] (channel-major, PyTorch layout).
 * A 1-D convolution over [C][L] is H = 1, kh = 1. */
typedef struct {
    uint16_t c_in, h, w, c_out, kh, kw, sh, sw, ph, pw, dh, dw, ho, wo, groups;
} np_geom_t;

/* A parameter broadcast over n elements: value index (i / inner) % m (m = 1: one value,
 * m = n, inner = 1: one per element, m = C, inner = H*W: one per channel). */
typedef struct {
    uint32_t m, inner;
} np_bcast_t;

typedef struct {
    int32_t za, zb, zo, lo, hi;
    int32_t ma, mb, mo;
    int8_t sa, sb, so;
    uint8_t single; /* LiteRT's default (XNNPACK) ADD: y = (2^(so-1) + ma a' + mb b') >> so */
} np_add_t;

/* LIF, IF (beta = 2^15), LI (spiking = 0) and CubaLIF (alpha != NULL) parameters, per neuron. */
typedef struct {
    int32_t zp_in;
    uint8_t spiking, subtract;
    const int32_t *beta, *v_th, *v_reset, *v_leak; /* v_th, v_reset unused when !spiking */
    const int32_t *alpha;                          /* CubaLIF synaptic decay, else NULL */
} np_neuron_t;

enum { NP_POOL_MAX = 0, NP_POOL_AVG = 1, NP_POOL_SUM = 2 };

/* A host build (setup.py defines NP_HOST_CLONES) compiles the loop kernels once per x86-64
 * level (AVX-512, AVX2, baseline; chosen at load time by GCC's ifunc), so the same source
 * vectorises on the host; the board builds see no attribute. */
#if defined(NP_HOST_CLONES) && defined(__GNUC__) && !defined(__clang__) && \
    defined(__x86_64__) && defined(__linux__)
#define NP_CLONES __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#else
#define NP_CLONES
#endif

int32_t np_sat32(int64_t x);
int64_t np_asr64(int64_t x, int s);
int64_t np_requantize(int64_t acc, int32_t qm, int shift);
int32_t np_affine_out(const np_affine_t *q, uint32_t ch, int64_t acc);
uint32_t np_bcast_index(const np_bcast_t *b, uint32_t i);

void np_linear(const int32_t *x, uint32_t n_in, uint32_t n_out, const int8_t *w,
               const np_affine_t *q, int32_t *y);
void np_conv2d(const int32_t *x, const np_geom_t *g, const int8_t *w, const np_affine_t *q,
               int32_t *y);
void np_pool2d(const int32_t *x, const np_geom_t *g, int mode, int32_t pad, int32_t lo,
               int32_t hi, int32_t *y);
void np_add(const int32_t *a, const int32_t *b, uint32_t n, const np_add_t *p, int32_t *y);
void np_scale(const int32_t *x, uint32_t n, const np_bcast_t *bc, const int32_t *qm,
              const int8_t *shift, const int8_t *sign, int32_t zi, int32_t zo, int32_t lo,
              int32_t hi, int32_t *y);
void np_relu(const int32_t *x, uint32_t n, int32_t zp, int32_t *y);
void np_threshold(const int32_t *x, uint32_t n, const np_bcast_t *bc, const int64_t *th,
                  int32_t *y);

/* Neurons: `v` (and `i` for CubaLIF) are the caller's int64 state, n elements each. */
void np_neuron_step(const int32_t *x, uint32_t n, const np_neuron_t *p, int64_t *v, int64_t *i,
                    int32_t *y);

/* Delays: `ring` holds depth x n values, `*head` the slot the next input goes to. */
void np_delay_step(const int32_t *x, uint32_t n, uint16_t depth, const uint16_t *delay,
                   int32_t *ring, uint16_t *head, int32_t *y);
void np_delay_linear_step(const int32_t *x, uint32_t n_in, uint32_t n_out, const int8_t *w,
                          const uint16_t *delay, uint16_t depth, const np_affine_t *q,
                          int32_t *ring, uint16_t *head, int32_t *y);

#ifdef __cplusplus
}
#endif

#endif /* NP_KERNELS_H */
