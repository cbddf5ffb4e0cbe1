/* np_model.c -- see np_model.h for the arithmetic. The image format is in PROTOCOL.md §5.
 * Every length, count and index read from an image is checked before use. */
#include "np_model.h"

#include <stdio.h>
#include <string.h>

#include "np_link.h"

/* ---- fixed-point helpers ------------------------------------------------------------ */

/* floor(x / 2^s) without relying on implementation-defined >> of negatives */
static int64_t asr64(int64_t x, int s)
{
    if (x >= 0) return x >> s;
    return -(((-x) - 1) >> s) - 1;
}

static int32_t sat32(int64_t x)
{
    if (x > INT32_MAX) return INT32_MAX;
    if (x < INT32_MIN) return INT32_MIN;
    return (int32_t)x;
}

/* LiteRT single-rounding requantization: (acc*qm + 2^(t-1)) >> t, t = 31 - shift */
static int64_t requantize(int32_t acc, int32_t qm, int8_t shift)
{
    int t = 31 - (int)shift; /* validated: shift in [-31, 30] -> t in [1, 62] */
    return asr64((int64_t)acc * (int64_t)qm + ((int64_t)1 << (t - 1)), t);
}

static int32_t affine_out(const np_layer_t *L, uint32_t o, int64_t acc)
{
    int64_t y = requantize(sat32(acc), L->qm[o], L->shift[o]) + (int64_t)L->zp_out;
    if (y < L->out_min) y = L->out_min;
    if (y > L->out_max) y = L->out_max;
    return (int32_t)y;
}

/* Membranes are int64 like the host runtime; this guard only keeps pathological inputs
 * from overflowing (|v| never reaches 2^62 with int32 currents and beta <= 2^16). */
#define V_LIMIT ((int64_t)1 << 62)
static int64_t clamp_v(int64_t v)
{
    if (v > V_LIMIT) return V_LIMIT;
    if (v < -V_LIMIT) return -V_LIMIT;
    return v;
}

/* Leak toward v_leak: v_leak + round((v - v_leak) * beta / 2^15), beta in Q15 */
static int64_t leak(int64_t v, int32_t v_leak, int32_t beta)
{
    int64_t dv = v - (int64_t)v_leak;
    /* |dv| < 2^63 but dv*beta must not overflow: split for large |dv| */
    if (dv > ((int64_t)1 << 46) || dv < -((int64_t)1 << 46)) {
        int64_t hi = asr64(dv, 16), lo = dv - hi * 65536;
        return (int64_t)v_leak + hi * beta * 2 + asr64(lo * (int64_t)beta + ((int64_t)1 << 14), 15);
    }
    return (int64_t)v_leak + asr64(dv * (int64_t)beta + ((int64_t)1 << 14), 15);
}

uint32_t np_seed_mix(uint32_t seed)
{
    /* murmur3 fmix32: neighbouring seeds (1, 2, 3...) give unrelated generator states;
     * xorshift32's first outputs from a small raw seed are small and would bias rounding */
    uint32_t h = seed;
    h ^= h >> 16;
    h *= 0x85EBCA6Bu;
    h ^= h >> 13;
    h *= 0xC2B2AE35u;
    h ^= h >> 16;
    return h ? h : 0x9E3779B9u; /* xorshift32 must not start at 0 */
}

uint32_t np_xorshift32(uint32_t *state)
{
    uint32_t x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    return x;
}

/* ---- arena and image cursor --------------------------------------------------------- */

static void *arena_alloc(np_model_t *m, size_t bytes)
{
    size_t start = (m->arena_used + 7u) & ~(size_t)7u;
    if (start > m->arena_cap || bytes > m->arena_cap - start) return NULL;
    m->arena_used = start + bytes;
    return m->arena + start;
}

typedef struct {
    const uint8_t *p;
    size_t len, pos;
    int bad;
} cur_t;

static int cur_need(cur_t *c, size_t n)
{
    if (c->bad || n > c->len - c->pos) {
        c->bad = 1;
        return 0;
    }
    return 1;
}

static uint8_t rd8(cur_t *c)
{
    if (!cur_need(c, 1)) return 0;
    return c->p[c->pos++];
}

static uint16_t rd16(cur_t *c)
{
    uint16_t v;
    if (!cur_need(c, 2)) return 0;
    v = np_rd_u16(c->p + c->pos);
    c->pos += 2;
    return v;
}

static int32_t rdi32(cur_t *c)
{
    int32_t v;
    if (!cur_need(c, 4)) return 0;
    v = np_rd_i32(c->p + c->pos);
    c->pos += 4;
    return v;
}

static uint32_t rd32(cur_t *c)
{
    uint32_t v;
    if (!cur_need(c, 4)) return 0;
    v = np_rd_u32(c->p + c->pos);
    c->pos += 4;
    return v;
}

#define FAIL(code, ...)                                              \
    do {                                                             \
        snprintf(m->detail, sizeof m->detail, __VA_ARGS__);          \
        m->loaded = 0;                                               \
        return (code);                                               \
    } while (0)

/* Read `n` int32 values into a fresh arena array. */
static int32_t *rd_i32_array(np_model_t *m, cur_t *c, size_t n, int *oom)
{
    size_t i;
    int32_t *a;
    if (n > (c->len - c->pos) / 4) {
        c->bad = 1;
        return NULL;
    }
    a = (int32_t *)arena_alloc(m, n * sizeof(int32_t));
    if (!a) {
        *oom = 1;
        return NULL;
    }
    for (i = 0; i < n; i++) a[i] = rdi32(c);
    return a;
}

static uint16_t *rd_u16_array(np_model_t *m, cur_t *c, size_t n, int *oom)
{
    size_t i;
    uint16_t *a;
    if (n > (c->len - c->pos) / 2) {
        c->bad = 1;
        return NULL;
    }
    a = (uint16_t *)arena_alloc(m, n * sizeof(uint16_t));
    if (!a) {
        *oom = 1;
        return NULL;
    }
    for (i = 0; i < n; i++) a[i] = rd16(c);
    return a;
}

static int8_t *rd_i8_array(np_model_t *m, cur_t *c, size_t n, int *oom)
{
    int8_t *a;
    size_t i;
    if (n > c->len - c->pos) {
        c->bad = 1;
        return NULL;
    }
    a = (int8_t *)arena_alloc(m, n ? n : 1);
    if (!a) {
        *oom = 1;
        return NULL;
    }
    for (i = 0; i < n; i++) {
        uint8_t b = c->p[c->pos + i];
        a[i] = (int8_t)(b < 128 ? (int)b : (int)b - 256);
    }
    c->pos += n;
    return a;
}

static const char *kind_name(uint8_t k)
{
    switch (k) {
    case NP_LAYER_LINEAR: return "LINEAR";
    case NP_LAYER_CONV1D: return "CONV1D";
    case NP_LAYER_LIF: return "LIF";
    case NP_LAYER_LI: return "LI";
    case NP_LAYER_DELAY: return "DELAY";
    case NP_LAYER_DELAY_LINEAR: return "DELAY_LINEAR";
    default: return "?";
    }
}

/* affine tail shared by LINEAR, CONV1D, DELAY_LINEAR: w, bias, qm, shift */
static int rd_affine_arrays(np_model_t *m, cur_t *c, np_layer_t *L, uint32_t n_w, uint32_t n_o,
                            int *oom)
{
    uint32_t o;
    L->n_w = n_w;
    L->w = rd_i8_array(m, c, n_w, oom);
    L->bias = rd_i32_array(m, c, n_o, oom);
    L->qm = rd_i32_array(m, c, n_o, oom);
    L->shift = rd_i8_array(m, c, n_o, oom);
    if (c->bad || *oom) return 0;
    for (o = 0; o < n_o; o++) {
        if (L->qm[o] < 0 || L->shift[o] < -31 || L->shift[o] > 30) return 0;
    }
    return 1;
}

void np_model_init(np_model_t *m, uint8_t *arena, size_t arena_cap)
{
    memset(m, 0, sizeof *m);
    m->arena = arena;
    m->arena_cap = arena_cap;
}

void np_model_unload(np_model_t *m)
{
    uint8_t *arena = m->arena;
    size_t cap = m->arena_cap;
    np_model_init(m, arena, cap);
}

int np_model_load(np_model_t *m, const uint8_t *img, size_t len)
{
    cur_t c;
    uint16_t version, li, prev_n;
    uint8_t prev_bytes = 1;
    int oom = 0;

    np_model_unload(m);
    c.p = img;
    c.len = len;
    c.pos = 0;
    c.bad = 0;
    if (len < 16 || memcmp(img, NP_IMAGE_MAGIC, 4) != 0) FAIL(NP_ERR_MODEL_INVALID, "bad magic");
    c.pos = 4;
    version = rd16(&c);
    if (version != NP_IMAGE_VERSION) FAIL(NP_ERR_MODEL_INVALID, "image version %u", version);
    m->n_layers = rd16(&c);
    m->in_size = rd16(&c);
    m->out_size = rd16(&c);
    (void)rd32(&c); /* reserved */
    if (m->n_layers < 1 || m->n_layers > NP_MAX_LAYERS)
        FAIL(NP_ERR_TOO_LARGE, "n_layers %u not in 1..%d", m->n_layers, NP_MAX_LAYERS);
    if (m->in_size < 1) FAIL(NP_ERR_MODEL_INVALID, "in_size 0");
    m->input = (int32_t *)arena_alloc(m, (size_t)m->in_size * sizeof(int32_t));
    if (!m->input) FAIL(NP_ERR_TOO_LARGE, "arena full (input)");
    prev_n = m->in_size;

    for (li = 0; li < m->n_layers; li++) {
        np_layer_t *L = &m->layers[li];
        uint32_t body_len, n_w, i;
        size_t end;
        cur_t b;
        L->kind = rd8(&c);
        (void)rd8(&c);
        (void)rd16(&c);
        body_len = rd32(&c);
        if (c.bad) FAIL(NP_ERR_MODEL_INVALID, "layer %u: truncated header", li);
        if (body_len > c.len - c.pos) FAIL(NP_ERR_MODEL_INVALID, "layer %u: body past end", li);
        b.p = c.p + c.pos;
        b.len = body_len;
        b.pos = 0;
        b.bad = 0;
        end = c.pos + body_len;
        L->in_n = prev_n;
        switch (L->kind) {
        case NP_LAYER_LINEAR:
        case NP_LAYER_DELAY_LINEAR: {
            uint16_t in_n = rd16(&b), out_n = rd16(&b);
            if (L->kind == NP_LAYER_DELAY_LINEAR) {
                L->depth = rd16(&b);
                (void)rd16(&b);
            }
            L->zp_in = rdi32(&b);
            L->zp_out = rdi32(&b);
            L->out_min = rdi32(&b);
            L->out_max = rdi32(&b);
            if (b.bad) FAIL(NP_ERR_MODEL_INVALID, "layer %u %s: truncated", li, kind_name(L->kind));
            if (in_n != prev_n || out_n < 1)
                FAIL(NP_ERR_MODEL_INVALID, "layer %u %s: in %u (expected %u), out %u", li,
                     kind_name(L->kind), in_n, prev_n, out_n);
            if (L->out_min > L->out_max) FAIL(NP_ERR_MODEL_INVALID, "layer %u: out_min > out_max", li);
            L->out_n = out_n;
            n_w = (uint32_t)in_n * out_n;
            if (!rd_affine_arrays(m, &b, L, n_w, out_n, &oom)) {
                if (oom) FAIL(NP_ERR_TOO_LARGE, "layer %u: arena full", li);
                FAIL(NP_ERR_MODEL_INVALID, "layer %u %s: arrays truncated or qm/shift out of range",
                     li, kind_name(L->kind));
            }
            if (L->kind == NP_LAYER_DELAY_LINEAR) {
                if (L->depth < 1 || L->depth > 4096)
                    FAIL(NP_ERR_MODEL_INVALID, "layer %u: depth %u not in 1..4096", li, L->depth);
                L->delay = rd_u16_array(m, &b, n_w, &oom);
                if (oom) FAIL(NP_ERR_TOO_LARGE, "layer %u: arena full", li);
                if (b.bad) FAIL(NP_ERR_MODEL_INVALID, "layer %u: delays truncated", li);
                for (i = 0; i < n_w; i++)
                    if (L->delay[i] >= L->depth)
                        FAIL(NP_ERR_MODEL_INVALID, "layer %u: delay %u >= depth", li, L->delay[i]);
                L->ring = (int32_t *)arena_alloc(m, (size_t)L->depth * in_n * sizeof(int32_t));
                if (!L->ring) FAIL(NP_ERR_TOO_LARGE, "layer %u: arena full (ring)", li);
                L->fill = L->zp_in;
            }
            L->out_bytes = (L->out_min >= -128 && L->out_max <= 127) ? 1 : 4;
            break;
        }
        case NP_LAYER_CONV1D: {
            uint32_t span, need;
            L->in_ch = rd16(&b);
            L->in_len = rd16(&b);
            L->out_ch = rd16(&b);
            L->kernel = rd16(&b);
            L->stride = rd16(&b);
            L->padding = rd16(&b);
            L->dilation = rd16(&b);
            L->out_len = rd16(&b);
            L->groups = rd16(&b);
            (void)rd16(&b);
            L->zp_in = rdi32(&b);
            L->zp_out = rdi32(&b);
            L->out_min = rdi32(&b);
            L->out_max = rdi32(&b);
            if (b.bad) FAIL(NP_ERR_MODEL_INVALID, "layer %u CONV1D: truncated", li);
            if ((uint32_t)L->in_ch * L->in_len != prev_n || L->out_ch < 1 || L->kernel < 1 ||
                L->stride < 1 || L->dilation < 1 || L->groups < 1 || L->in_ch % L->groups != 0 ||
                L->out_ch % L->groups != 0)
                FAIL(NP_ERR_MODEL_INVALID, "layer %u CONV1D: bad geometry", li);
            span = (uint32_t)L->dilation * (L->kernel - 1u) + 1u;
            need = (uint32_t)L->in_len + 2u * L->padding;
            if (span > need || (need - span) / L->stride + 1u != L->out_len)
                FAIL(NP_ERR_MODEL_INVALID, "layer %u CONV1D: out_len %u inconsistent", li,
                     L->out_len);
            if ((uint32_t)L->out_ch * L->out_len > 65535u)
                FAIL(NP_ERR_TOO_LARGE, "layer %u CONV1D: output too large", li);
            if (L->out_min > L->out_max) FAIL(NP_ERR_MODEL_INVALID, "layer %u: out_min > out_max", li);
            L->out_n = (uint16_t)(L->out_ch * L->out_len);
            {
                /* 64-bit: out_ch * in_ch * k can exceed 2^32 in a hostile image */
                uint64_t nw64 = (uint64_t)L->out_ch * (uint64_t)(L->in_ch / L->groups) * L->kernel;
                if (nw64 > (uint64_t)(b.len - b.pos))
                    FAIL(NP_ERR_MODEL_INVALID, "layer %u CONV1D: weights truncated", li);
                n_w = (uint32_t)nw64;
            }
            if (!rd_affine_arrays(m, &b, L, n_w, L->out_ch, &oom)) {
                if (oom) FAIL(NP_ERR_TOO_LARGE, "layer %u: arena full", li);
                FAIL(NP_ERR_MODEL_INVALID, "layer %u CONV1D: arrays truncated or qm/shift bad", li);
            }
            L->out_bytes = (L->out_min >= -128 && L->out_max <= 127) ? 1 : 4;
            break;
        }
        case NP_LAYER_LIF:
        case NP_LAYER_LI: {
            uint16_t n = rd16(&b);
            L->reset_mode = rd8(&b);
            (void)rd8(&b);
            L->zp_in = rdi32(&b);
            if (b.bad || n != prev_n) FAIL(NP_ERR_MODEL_INVALID, "layer %u %s: n %u != %u", li,
                                           kind_name(L->kind), n, prev_n);
            if (L->kind == NP_LAYER_LIF && L->reset_mode > 1)
                FAIL(NP_ERR_MODEL_INVALID, "layer %u LIF: reset mode %u", li, L->reset_mode);
            L->out_n = n;
            L->beta = rd_i32_array(m, &b, n, &oom);
            if (L->kind == NP_LAYER_LIF) {
                L->v_th = rd_i32_array(m, &b, n, &oom);
                L->v_reset = rd_i32_array(m, &b, n, &oom);
            }
            L->v_leak = rd_i32_array(m, &b, n, &oom);
            L->v = (int64_t *)arena_alloc(m, (size_t)n * sizeof(int64_t));
            if (oom || !L->v) FAIL(NP_ERR_TOO_LARGE, "layer %u: arena full", li);
            if (b.bad) FAIL(NP_ERR_MODEL_INVALID, "layer %u %s: truncated", li, kind_name(L->kind));
            for (i = 0; i < n; i++)
                if (L->beta[i] < 0 || L->beta[i] > 65536)
                    FAIL(NP_ERR_MODEL_INVALID, "layer %u: beta_q %ld not in 0..65536", li,
                         (long)L->beta[i]);
            L->out_bytes = L->kind == NP_LAYER_LIF ? 1 : 4;
            break;
        }
        case NP_LAYER_DELAY: {
            uint16_t n = rd16(&b);
            L->depth = rd16(&b);
            L->fill = rdi32(&b);
            if (b.bad || n != prev_n) FAIL(NP_ERR_MODEL_INVALID, "layer %u DELAY: n %u != %u", li,
                                           n, prev_n);
            if (L->depth < 1 || L->depth > 4096)
                FAIL(NP_ERR_MODEL_INVALID, "layer %u: depth %u not in 1..4096", li, L->depth);
            L->out_n = n;
            L->delay = rd_u16_array(m, &b, n, &oom);
            if (oom) FAIL(NP_ERR_TOO_LARGE, "layer %u: arena full", li);
            if (b.bad) FAIL(NP_ERR_MODEL_INVALID, "layer %u DELAY: truncated", li);
            for (i = 0; i < n; i++)
                if (L->delay[i] >= L->depth)
                    FAIL(NP_ERR_MODEL_INVALID, "layer %u: delay %u >= depth", li, L->delay[i]);
            L->ring = (int32_t *)arena_alloc(m, (size_t)L->depth * n * sizeof(int32_t));
            if (!L->ring) FAIL(NP_ERR_TOO_LARGE, "layer %u: arena full (ring)", li);
            L->out_bytes = prev_bytes;
            break;
        }
        default:
            FAIL(NP_ERR_UNSUPPORTED, "layer %u: unknown kind %u", li, L->kind);
        }
        if (b.pos != b.len)
            FAIL(NP_ERR_MODEL_INVALID, "layer %u %s: %lu trailing bytes", li, kind_name(L->kind),
                 (unsigned long)(b.len - b.pos));
        L->out = (int32_t *)arena_alloc(m, (size_t)L->out_n * sizeof(int32_t));
        if (!L->out) FAIL(NP_ERR_TOO_LARGE, "layer %u: arena full (output)", li);
        c.pos = end;
        prev_n = L->out_n;
        prev_bytes = L->out_bytes;
    }
    if (c.pos != c.len) FAIL(NP_ERR_MODEL_INVALID, "%lu bytes after the last layer",
                             (unsigned long)(c.len - c.pos));
    if (prev_n != m->out_size)
        FAIL(NP_ERR_MODEL_INVALID, "out_size %u != last layer's %u", m->out_size, prev_n);
    m->out_bytes = prev_bytes;
    m->loaded = 1;
    m->detail[0] = 0;
    np_model_reset_state(m);
    return NP_ERR_OK;
}

void np_model_reset_state(np_model_t *m)
{
    uint16_t li;
    size_t i;
    if (!m->loaded) return;
    for (li = 0; li < m->n_layers; li++) {
        np_layer_t *L = &m->layers[li];
        if (L->v)
            for (i = 0; i < L->out_n; i++) L->v[i] = 0;
        if (L->ring) {
            size_t n = (size_t)L->depth * L->in_n;
            for (i = 0; i < n; i++) L->ring[i] = L->fill;
            L->head = 0;
        }
        memset(L->out, 0, (size_t)L->out_n * sizeof(int32_t));
    }
    if (m->stdp.x_pre) {
        const np_layer_t *P = &m->layers[m->stdp.layer];
        memset(m->stdp.x_pre, 0, (size_t)P->in_n * sizeof(int32_t));
        memset(m->stdp.y_post, 0, (size_t)P->out_n * sizeof(int32_t));
    }
}

static void run_linear(np_layer_t *L, const int32_t *x)
{
    uint32_t o, j;
    for (o = 0; o < L->out_n; o++) {
        const int8_t *w = L->w + (size_t)o * L->in_n;
        int64_t acc = L->bias[o];
        for (j = 0; j < L->in_n; j++) acc += (int64_t)w[j] * ((int64_t)x[j] - L->zp_in);
        L->out[o] = affine_out(L, o, acc);
    }
}

static void run_conv1d(np_layer_t *L, const int32_t *x)
{
    uint32_t oc, t, ic, k;
    uint32_t icg = L->in_ch / L->groups, ocg = L->out_ch / L->groups;
    for (oc = 0; oc < L->out_ch; oc++) {
        uint32_t ic0 = (oc / ocg) * icg; /* first input channel of this group */
        for (t = 0; t < L->out_len; t++) {
            int64_t acc = L->bias[oc];
            for (ic = 0; ic < icg; ic++) {
                const int8_t *w = L->w + ((size_t)oc * icg + ic) * L->kernel;
                const int32_t *xc = x + (size_t)(ic0 + ic) * L->in_len;
                for (k = 0; k < L->kernel; k++) {
                    /* position in the unpadded input; outside means x == zp_in (adds 0) */
                    long pos = (long)t * L->stride - (long)L->padding + (long)k * L->dilation;
                    if (pos < 0 || pos >= (long)L->in_len) continue;
                    acc += (int64_t)w[k] * ((int64_t)xc[pos] - L->zp_in);
                }
            }
            L->out[(size_t)oc * L->out_len + t] = affine_out(L, oc, acc);
        }
    }
}

static void run_neuron(np_layer_t *L, const int32_t *x)
{
    uint32_t i;
    for (i = 0; i < L->out_n; i++) {
        int64_t v = clamp_v(leak(L->v[i], L->v_leak[i], L->beta[i]) + ((int64_t)x[i] - L->zp_in));
        if (L->kind == NP_LAYER_LIF) {
            int spike = v > L->v_th[i];
            if (spike) v = L->reset_mode == 0 ? (int64_t)L->v_reset[i] : clamp_v(v - L->v_th[i]);
            L->out[i] = spike;
        } else {
            L->out[i] = sat32(v);
        }
        L->v[i] = v;
    }
}

static void run_delay(np_layer_t *L, const int32_t *x)
{
    uint32_t i;
    int32_t *slot = L->ring + (size_t)L->head * L->in_n;
    for (i = 0; i < L->in_n; i++) slot[i] = x[i];
    for (i = 0; i < L->out_n; i++) {
        uint32_t r = (L->head + L->depth - L->delay[i]) % L->depth;
        L->out[i] = L->ring[(size_t)r * L->in_n + i];
    }
    L->head = (uint16_t)((L->head + 1u) % L->depth);
}

static void run_delay_linear(np_layer_t *L, const int32_t *x)
{
    uint32_t o, j;
    int32_t *slot = L->ring + (size_t)L->head * L->in_n;
    for (j = 0; j < L->in_n; j++) slot[j] = x[j];
    for (o = 0; o < L->out_n; o++) {
        const int8_t *w = L->w + (size_t)o * L->in_n;
        const uint16_t *d = L->delay + (size_t)o * L->in_n;
        int64_t acc = L->bias[o];
        for (j = 0; j < L->in_n; j++) {
            uint32_t r = (L->head + L->depth - d[j]) % L->depth;
            acc += (int64_t)w[j] * ((int64_t)L->ring[(size_t)r * L->in_n + j] - L->zp_in);
        }
        L->out[o] = affine_out(L, o, acc);
    }
    L->head = (uint16_t)((L->head + 1u) % L->depth);
}

/* Integer pair-STDP with traces and stochastic rounding (PROTOCOL.md §8). */
static void stdp_step(np_model_t *m)
{
    np_stdp_t *s = &m->stdp;
    np_layer_t *P = &m->layers[s->layer];
    const np_layer_t *N = &m->layers[s->layer + 1];
    const int32_t *pre_in = s->layer == 0 ? m->input : m->layers[s->layer - 1].out;
    uint32_t i, j;
    for (j = 0; j < P->in_n; j++)
        s->x_pre[j] = (int32_t)asr64((int64_t)s->x_pre[j] * s->decay_pre + (1 << 14), 15);
    for (i = 0; i < P->out_n; i++)
        s->y_post[i] = (int32_t)asr64((int64_t)s->y_post[i] * s->decay_post + (1 << 14), 15);
    for (i = 0; i < P->out_n; i++) {
        int post = N->out[i] != 0;
        int8_t *w = P->w + (size_t)i * P->in_n;
        for (j = 0; j < P->in_n; j++) {
            int pre = ((int64_t)pre_in[j] - P->zp_in) > 0;
            int64_t d = 0, q;
            int32_t nw;
            if (post) d += (int64_t)s->eta_plus * s->x_pre[j];
            if (pre) d -= (int64_t)s->eta_minus * s->y_post[i];
            if (d == 0) continue;
            q = asr64(d, 16);
            if ((int64_t)(np_xorshift32(&s->rng) >> 16) < d - q * 65536) q += 1;
            nw = (int32_t)w[j] + (int32_t)q;
            if (nw < s->w_min) nw = s->w_min;
            if (nw > s->w_max) nw = s->w_max;
            if (nw != w[j]) {
                w[j] = (int8_t)nw;
                m->learn_updates++;
            }
        }
    }
    for (j = 0; j < P->in_n; j++)
        if (((int64_t)pre_in[j] - P->zp_in) > 0) {
            int32_t v = s->x_pre[j] + s->a_pre;
            s->x_pre[j] = v > 32767 ? 32767 : v;
        }
    for (i = 0; i < P->out_n; i++)
        if (N->out[i] != 0) {
            int32_t v = s->y_post[i] + s->a_post;
            s->y_post[i] = v > 32767 ? 32767 : v;
        }
}

void np_model_step(np_model_t *m, const int32_t *x)
{
    uint16_t li;
    const int32_t *cur = x;
    if (!m->loaded) return;
    if (x != m->input) memcpy(m->input, x, (size_t)m->in_size * sizeof(int32_t));
    cur = m->input;
    for (li = 0; li < m->n_layers; li++) {
        np_layer_t *L = &m->layers[li];
        switch (L->kind) {
        case NP_LAYER_LINEAR: run_linear(L, cur); break;
        case NP_LAYER_CONV1D: run_conv1d(L, cur); break;
        case NP_LAYER_LIF:
        case NP_LAYER_LI: run_neuron(L, cur); break;
        case NP_LAYER_DELAY: run_delay(L, cur); break;
        case NP_LAYER_DELAY_LINEAR: run_delay_linear(L, cur); break;
        default: return;
        }
        cur = L->out;
    }
    if (m->stdp.enabled) stdp_step(m);
}

const int32_t *np_model_output(const np_model_t *m)
{
    return m->layers[m->n_layers - 1].out;
}

int np_model_learn(np_model_t *m, int enable, uint8_t layer, uint32_t seed, uint16_t a_pre,
                   uint16_t a_post, uint16_t decay_pre, uint16_t decay_post, uint16_t eta_plus,
                   uint16_t eta_minus, int8_t w_min, int8_t w_max)
{
    np_stdp_t *s = &m->stdp;
    if (!enable) {
        s->enabled = 0;
        return NP_ERR_OK;
    }
    if (!m->loaded) {
        snprintf(m->detail, sizeof m->detail, "no model loaded");
        return NP_ERR_NO_MODEL;
    }
    if ((uint32_t)layer + 1u >= m->n_layers || m->layers[layer].kind != NP_LAYER_LINEAR ||
        m->layers[layer + 1].kind != NP_LAYER_LIF) {
        snprintf(m->detail, sizeof m->detail, "layer %u is not a LINEAR followed by a LIF", layer);
        return NP_ERR_BAD_ARG;
    }
    if (w_min > w_max || decay_pre > 32768u || decay_post > 32768u) {
        snprintf(m->detail, sizeof m->detail, "w_min > w_max or decay > 32768");
        return NP_ERR_BAD_ARG;
    }
    /* traces live at the arena's end of the model; reuse them if the layer is the same */
    if (!s->x_pre || s->layer != layer) {
        s->x_pre = (int32_t *)arena_alloc(m, (size_t)m->layers[layer].in_n * sizeof(int32_t));
        s->y_post = (int32_t *)arena_alloc(m, (size_t)m->layers[layer].out_n * sizeof(int32_t));
        if (!s->x_pre || !s->y_post) {
            s->x_pre = s->y_post = NULL;
            snprintf(m->detail, sizeof m->detail, "arena full (traces)");
            return NP_ERR_TOO_LARGE;
        }
    }
    s->layer = layer;
    memset(s->x_pre, 0, (size_t)m->layers[layer].in_n * sizeof(int32_t));
    memset(s->y_post, 0, (size_t)m->layers[layer].out_n * sizeof(int32_t));
    s->rng = np_seed_mix(seed);
    s->a_pre = a_pre;
    s->a_post = a_post;
    s->decay_pre = decay_pre;
    s->decay_post = decay_post;
    s->eta_plus = eta_plus;
    s->eta_minus = eta_minus;
    s->w_min = w_min;
    s->w_max = w_max;
    s->enabled = 1;
    return NP_ERR_OK;
}
