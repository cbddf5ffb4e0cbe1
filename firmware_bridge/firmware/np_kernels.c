/* np_kernels.c -- see np_kernels.h for the arithmetic of every kernel.
 *
 * Accumulators of the weighted kernels are 32-bit and computed modulo 2^32 (unsigned
 * arithmetic, so no overflow is undefined): the host refuses any image whose worst-case
 * accumulator |bias| + 128 * fan_in * max|x - zp_in| could leave int32, so for every image it
 * builds the modular sum *is* the exact sum (and it is what a 32-bit MAC does fastest). */
#include "np_kernels.h"

#define NP_V_LIMIT ((int64_t)1 << 62)

int32_t np_sat32(int64_t x)
{
    if (x > INT32_MAX) return INT32_MAX;
    if (x < INT32_MIN) return INT32_MIN;
    return (int32_t)x;
}

/* floor(x / 2^s) for 0 <= s <= 62, without implementation-defined >> of negatives */
int64_t np_asr64(int64_t x, int s)
{
    if (x >= 0) return x >> s;
    return -(((-(x + 1)) >> s)) - 1;
}

int64_t np_requantize(int64_t acc, int32_t qm, int shift)
{
    const int64_t lim = (int64_t)1 << 31; /* |a| <= 2^31: |a*qm| + 2^61 < 2^63, no overflow */
    int t = 31 - shift; /* images are validated: shift in [-31, 30], so t in [1, 62] */
    int64_t a = acc > lim ? lim : (acc < -lim ? -lim : acc);
    return np_asr64(a * (int64_t)qm + ((int64_t)1 << (t - 1)), t);
}

int32_t np_affine_out(const np_affine_t *q, uint32_t ch, int64_t acc)
{
    int64_t y = np_requantize(acc, q->qm[ch], q->shift[ch]) + (int64_t)q->zp_out;
    if (y < q->out_min) y = q->out_min;
    if (y > q->out_max) y = q->out_max;
    return (int32_t)y;
}

uint32_t np_bcast_index(const np_bcast_t *b, uint32_t i)
{
    return b->m == 1 ? 0u : (i / b->inner) % b->m;
}

/* w*(x - zp) modulo 2^32 */
#define MAC(acc, wv, xv, zp) ((acc) += (uint32_t)(int32_t)(wv) * ((uint32_t)(xv) - (uint32_t)(zp)))

NP_CLONES
void np_linear(const int32_t *x, uint32_t n_in, uint32_t n_out, const int8_t *w,
               const np_affine_t *q, int32_t *y)
{
    uint32_t o, j;
    const uint32_t zp = (uint32_t)q->zp_in;
    for (o = 0; o < n_out; o++) {
        const int8_t *wr = w + (size_t)o * n_in;
        uint32_t acc = (uint32_t)q->bias[o];
        for (j = 0; j + 4 <= n_in; j += 4) {
            MAC(acc, wr[j], x[j], zp);
            MAC(acc, wr[j + 1], x[j + 1], zp);
            MAC(acc, wr[j + 2], x[j + 2], zp);
            MAC(acc, wr[j + 3], x[j + 3], zp);
        }
        for (; j < n_in; j++) MAC(acc, wr[j], x[j], zp);
        y[o] = np_affine_out(q, o, (int32_t)acc);
    }
}

/* First k in [0, n) with 0 <= base + k*step < limit, and one past the last (step >= 1).
 * The common case (the whole window inside the input) takes no division. */
static void valid_taps(long base, uint32_t step, uint32_t n, uint32_t limit, uint32_t *k0,
                       uint32_t *k1)
{
    long lo = 0, hi = (long)n;
    if (base >= 0 && base + (hi - 1) * (long)step < (long)limit) {
        *k0 = 0;
        *k1 = n;
        return;
    }
    if (base < 0) lo = (-base + (long)step - 1) / (long)step;
    if (base + (hi - 1) * (long)step >= (long)limit) {
        long last = ((long)limit - 1 - base); /* largest k with base + k*step < limit */
        hi = last < 0 ? 0 : last / (long)step + 1;
    }
    if (hi < lo) hi = lo;
    *k0 = (uint32_t)lo;
    *k1 = (uint32_t)hi;
}

/* One output of a convolution: the window's taps in the order with the longer inner loop
 * (input channels innermost for pointwise-like layers, the kernel row otherwise). */
static uint32_t conv_window(const int32_t *xg, const int8_t *wo, const np_geom_t *g, uint32_t icg,
                            size_t plane, long by, long bx, uint32_t ky0, uint32_t ky1,
                            uint32_t kx0, uint32_t kx1, uint32_t acc, uint32_t zp)
{
    uint32_t ic, ky, kx;
    const size_t ktaps = (size_t)g->kh * g->kw;
    if (icg > kx1 - kx0) {
        for (ky = ky0; ky < ky1; ky++) {
            const int32_t *xr = xg + (size_t)(by + (long)ky * g->dh) * g->w;
            for (kx = kx0; kx < kx1; kx++) {
                const int32_t *xp = xr + (bx + (long)kx * g->dw);
                const int8_t *wp = wo + (size_t)ky * g->kw + kx;
                for (ic = 0; ic < icg; ic++) MAC(acc, wp[ic * ktaps], xp[ic * plane], zp);
            }
        }
        return acc;
    }
    for (ic = 0; ic < icg; ic++) {
        const int32_t *xc = xg + (size_t)ic * plane;
        const int8_t *wc = wo + (size_t)ic * ktaps;
        for (ky = ky0; ky < ky1; ky++) {
            const int32_t *xr = xc + (size_t)(by + (long)ky * g->dh) * g->w;
            const int8_t *wr = wc + (size_t)ky * g->kw;
            for (kx = kx0; kx < kx1; kx++) MAC(acc, wr[kx], xr[bx + (long)kx * g->dw], zp);
        }
    }
    return acc;
}

void np_conv2d(const int32_t *x, const np_geom_t *g, const int8_t *w, const np_affine_t *q,
               int32_t *y)
{
    uint32_t icg = g->c_in / g->groups, ocg = g->c_out / g->groups;
    uint32_t oc, oy, ox, ky0, ky1, kx0, kx1;
    const uint32_t zp = (uint32_t)q->zp_in;
    const size_t plane = (size_t)g->h * g->w;
    for (oc = 0; oc < g->c_out; oc++) {
        const int32_t *xg = x + (size_t)(oc / ocg) * icg * plane; /* this group's inputs */
        const int8_t *wo = w + (size_t)oc * icg * g->kh * g->kw;
        int32_t *yo = y + (size_t)oc * g->ho * g->wo;
        for (oy = 0; oy < g->ho; oy++) {
            long by = (long)oy * g->sh - (long)g->ph;
            valid_taps(by, g->dh, g->kh, g->h, &ky0, &ky1);
            for (ox = 0; ox < g->wo; ox++) {
                long bx = (long)ox * g->sw - (long)g->pw;
                uint32_t acc;
                valid_taps(bx, g->dw, g->kw, g->w, &kx0, &kx1);
                acc = conv_window(xg, wo, g, icg, plane, by, bx, ky0, ky1, kx0, kx1,
                                  (uint32_t)q->bias[oc], zp);
                yo[(size_t)oy * g->wo + ox] = np_affine_out(q, oc, (int32_t)acc);
            }
        }
    }
}

NP_CLONES
void np_pool2d(const int32_t *x, const np_geom_t *g, int mode, int32_t pad, int32_t lo,
               int32_t hi, int32_t *y)
{
    uint32_t c, oy, ox, ky, kx, ky0, ky1, kx0, kx1;
    const size_t plane = (size_t)g->h * g->w;
    for (c = 0; c < g->c_in; c++) {
        const int32_t *xc = x + (size_t)c * plane;
        for (oy = 0; oy < g->ho; oy++) {
            long by = (long)oy * g->sh - (long)g->ph;
            valid_taps(by, 1, g->kh, g->h, &ky0, &ky1);
            for (ox = 0; ox < g->wo; ox++) {
                long bx = (long)ox * g->sw - (long)g->pw;
                int64_t s = 0, best = INT64_MIN, cnt;
                valid_taps(bx, 1, g->kw, g->w, &kx0, &kx1);
                cnt = (int64_t)(ky1 - ky0) * (int64_t)(kx1 - kx0);
                for (ky = ky0; ky < ky1; ky++) {
                    const int32_t *xr = xc + (size_t)(by + (long)ky) * g->w;
                    for (kx = kx0; kx < kx1; kx++) {
                        int32_t v = xr[bx + (long)kx];
                        s += v;
                        if (v > best) best = v;
                    }
                }
                if (mode == NP_POOL_MAX) {
                    /* padded cells hold `pad`; they are in the window unless it lies inside */
                    if (cnt < (int64_t)g->kh * g->kw && pad > best) best = pad;
                    s = best;
                } else if (mode == NP_POOL_AVG) {
                    /* `pad` is the code offset here: unsigned codes are averaged as the int8
                       codes of the same values, so ties round as TFLite's (and the host's) */
                    int64_t half = cnt / 2;
                    s -= cnt * (int64_t)pad;
                    if (cnt == 0) s = 0; /* a window of padding only (the host refuses it) */
                    else s = s >= 0 ? (s + half) / cnt : -((-s + half) / cnt);
                    s += pad;
                    if (s < lo) s = lo;
                    if (s > hi) s = hi;
                }
                y[((size_t)c * g->ho + oy) * g->wo + ox] = np_sat32(s);
            }
        }
    }
}

void np_add(const int32_t *a, const int32_t *b, uint32_t n, const np_add_t *p, int32_t *y)
{
    uint32_t i;
    for (i = 0; i < n; i++) {
        int64_t da = (int64_t)a[i] - p->za, db = (int64_t)b[i] - p->zb, v;
        if (p->single) {
            v = np_asr64(((int64_t)1 << (p->so - 1)) + p->ma * da + p->mb * db, p->so) + p->zo;
        } else {
            int64_t s = np_requantize(da * ((int64_t)1 << 20), p->ma, p->sa) +
                        np_requantize(db * ((int64_t)1 << 20), p->mb, p->sb);
            v = np_requantize(s, p->mo, p->so) + p->zo;
        }
        if (v < p->lo) v = p->lo;
        if (v > p->hi) v = p->hi;
        y[i] = (int32_t)v;
    }
}

void np_scale(const int32_t *x, uint32_t n, const np_bcast_t *bc, const int32_t *qm,
              const int8_t *shift, const int8_t *sign, int32_t zi, int32_t zo, int32_t lo,
              int32_t hi, int32_t *y)
{
    uint32_t i;
    for (i = 0; i < n; i++) {
        uint32_t k = np_bcast_index(bc, i);
        int64_t v = np_requantize((int64_t)sign[k] * ((int64_t)x[i] - zi), qm[k], shift[k]) + zo;
        if (v < lo) v = lo;
        if (v > hi) v = hi;
        y[i] = (int32_t)v;
    }
}

NP_CLONES
void np_relu(const int32_t *x, uint32_t n, int32_t zp, int32_t *y)
{
    uint32_t i;
    for (i = 0; i < n; i++) y[i] = x[i] > zp ? x[i] : zp;
}

void np_threshold(const int32_t *x, uint32_t n, const np_bcast_t *bc, const int64_t *th,
                  int32_t *y)
{
    uint32_t i;
    for (i = 0; i < n; i++) y[i] = (int64_t)x[i] > th[np_bcast_index(bc, i)];
}

static int64_t clamp_v(int64_t v)
{
    if (v > NP_V_LIMIT) return NP_V_LIMIT;
    if (v < -NP_V_LIMIT) return -NP_V_LIMIT;
    return v;
}

/* v_leak + round((v - v_leak) * beta / 2^15), beta in 0..2^16; |v| <= 2^62 */
static int64_t leak(int64_t v, int32_t v_leak, int32_t beta)
{
    int64_t dv = v - (int64_t)v_leak;
    if (dv > ((int64_t)1 << 46) || dv < -((int64_t)1 << 46)) {
        /* dv*beta would overflow: split dv = hi*2^16 + lo (exact: 2^16 = 2 * 2^15) */
        int64_t hi = np_asr64(dv, 16), lo = dv - hi * 65536;
        return (int64_t)v_leak + hi * beta * 2 + np_asr64(lo * (int64_t)beta + ((int64_t)1 << 14), 15);
    }
    return (int64_t)v_leak + np_asr64(dv * (int64_t)beta + ((int64_t)1 << 14), 15);
}

void np_neuron_step(const int32_t *x, uint32_t n, const np_neuron_t *p, int64_t *v, int64_t *i,
                    int32_t *y)
{
    uint32_t k;
    for (k = 0; k < n; k++) {
        int64_t in = (int64_t)x[k] - p->zp_in, vk;
        if (p->alpha) {
            i[k] = clamp_v(leak(i[k], 0, p->alpha[k]) + in);
            in = i[k];
        }
        vk = clamp_v(leak(v[k], p->v_leak[k], p->beta[k]) + in);
        if (p->spiking) {
            int s = vk > p->v_th[k];
            if (s) vk = p->subtract ? clamp_v(vk - p->v_th[k]) : (int64_t)p->v_reset[k];
            y[k] = s;
        } else {
            y[k] = np_sat32(vk);
        }
        v[k] = vk;
    }
}

static uint32_t ring_row(uint16_t head, uint16_t d, uint16_t depth)
{
    return head >= d ? (uint32_t)(head - d) : (uint32_t)head + depth - d; /* no division */
}

void np_delay_step(const int32_t *x, uint32_t n, uint16_t depth, const uint16_t *delay,
                   int32_t *ring, uint16_t *head, int32_t *y)
{
    uint32_t k;
    int32_t *slot = ring + (size_t)(*head) * n;
    for (k = 0; k < n; k++) slot[k] = x[k];
    for (k = 0; k < n; k++) y[k] = ring[(size_t)ring_row(*head, delay[k], depth) * n + k];
    *head = (uint16_t)(*head + 1u == depth ? 0u : *head + 1u);
}

void np_delay_linear_step(const int32_t *x, uint32_t n_in, uint32_t n_out, const int8_t *w,
                          const uint16_t *delay, uint16_t depth, const np_affine_t *q,
                          int32_t *ring, uint16_t *head, int32_t *y)
{
    uint32_t o, j;
    const uint32_t zp = (uint32_t)q->zp_in;
    int32_t *slot = ring + (size_t)(*head) * n_in;
    for (j = 0; j < n_in; j++) slot[j] = x[j];
    for (o = 0; o < n_out; o++) {
        const int8_t *wr = w + (size_t)o * n_in;
        const uint16_t *d = delay + (size_t)o * n_in;
        uint32_t acc = (uint32_t)q->bias[o];
        for (j = 0; j < n_in; j++)
            MAC(acc, wr[j], ring[(size_t)ring_row(*head, d[j], depth) * n_in + j], zp);
        y[o] = np_affine_out(q, o, (int32_t)acc);
    }
    *head = (uint16_t)(*head + 1u == depth ? 0u : *head + 1u);
}
