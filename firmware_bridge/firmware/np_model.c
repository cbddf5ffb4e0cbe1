/* np_model.c -- see np_model.h. The image format is in PROTOCOL.md §5; the arithmetic of
 * every layer kind is in np_kernels.[ch]. Every length, count and index read from an
 * image is checked before use; the arena is the only memory a model takes. */
#include "np_model.h"

#include <stdio.h>
#include <string.h>

#include "np_link.h"

#define asr64 np_asr64 /* the STDP rule below shares the kernels' floor shift */

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

/* Every allocation starts on an 8-byte boundary (image.py mirrors this to predict the
 * arena a model needs; a test checks the prediction against the board's ARENA_USED). */
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

static int8_t i8_of(uint8_t b) { return (int8_t)(b < 128 ? (int)b : (int)b - 256); }

/* Arrays: each checks the bytes are present (cursor marked bad if not) before it takes
 * arena space (NULL + *oom if the arena is full). `n` elements of the given width. */
static void *rd_array(np_model_t *m, cur_t *c, size_t n, size_t width, int *oom)
{
    size_t i;
    uint8_t *a;
    if (c->bad || n > (c->len - c->pos) / width) {
        c->bad = 1;
        return NULL;
    }
    a = (uint8_t *)arena_alloc(m, n ? n * width : 1);
    if (!a) {
        *oom = 1;
        return NULL;
    }
    for (i = 0; i < n; i++) {
        const uint8_t *p = c->p + c->pos + i * width;
        if (width == 1) ((int8_t *)a)[i] = i8_of(p[0]);
        else if (width == 2) ((uint16_t *)a)[i] = np_rd_u16(p);
        else if (width == 4) ((int32_t *)a)[i] = np_rd_i32(p);
        else ((int64_t *)a)[i] = (int64_t)(((uint64_t)np_rd_u32(p + 4) << 32) | np_rd_u32(p));
    }
    c->pos += n * width;
    return a;
}

#define RD_I8(n) ((int8_t *)rd_array(m, b, (n), 1, oom))
#define RD_U16(n) ((uint16_t *)rd_array(m, b, (n), 2, oom))
#define RD_I32(n) ((int32_t *)rd_array(m, b, (n), 4, oom))
#define RD_I64(n) ((int64_t *)rd_array(m, b, (n), 8, oom))

static const char *kind_name(uint8_t k)
{
    switch (k) {
    case NP_LAYER_LINEAR: return "LINEAR";
    case NP_LAYER_CONV: return "CONV";
    case NP_LAYER_LIF: return "LIF";
    case NP_LAYER_LI: return "LI";
    case NP_LAYER_DELAY: return "DELAY";
    case NP_LAYER_DELAY_LINEAR: return "DELAY_LINEAR";
    case NP_LAYER_CUBALIF: return "CUBALIF";
    case NP_LAYER_MAXPOOL: return "MAXPOOL";
    case NP_LAYER_AVGPOOL: return "AVGPOOL";
    case NP_LAYER_SUMPOOL: return "SUMPOOL";
    case NP_LAYER_ADD: return "ADD";
    case NP_LAYER_RELU: return "RELU";
    case NP_LAYER_SCALE: return "SCALE";
    case NP_LAYER_THRESHOLD: return "THRESHOLD";
    default: return "?";
    }
}

/* ---- per-kind body parsers ------------------------------------------------------------
 * Each reads its body from `b` into L (arrays into the arena) and returns NULL, or a short
 * reason the body is invalid. Truncation and a full arena are reported by the caller. */

static const char *rd_affine(np_model_t *m, cur_t *b, np_layer_t *L, uint32_t n_w, uint32_t n_o,
                             int *oom)
{
    uint32_t o;
    L->zp_in = rdi32(b);
    L->zp_out = rdi32(b);
    L->out_min = rdi32(b);
    L->out_max = rdi32(b);
    if (b->bad) return NULL;
    if (L->out_min > L->out_max) return "out_min > out_max";
    L->n_w = n_w;
    L->w = RD_I8(n_w);
    L->bias = RD_I32(n_o);
    L->qm = RD_I32(n_o);
    L->shift = RD_I8(n_o);
    if (b->bad || *oom) return NULL;
    for (o = 0; o < n_o; o++)
        if (L->qm[o] < 0 || L->shift[o] < -31 || L->shift[o] > 30) return "qm/shift out of range";
    L->out_bytes = (L->out_min >= -128 && L->out_max <= 127) ? 1 : 4;
    return NULL;
}

static const char *rd_delays(np_model_t *m, cur_t *b, np_layer_t *L, uint32_t n_d, uint32_t ring_n,
                             int *oom)
{
    uint32_t i;
    if (L->depth < 1 || L->depth > NP_MAX_DELAY_DEPTH) return "depth out of range";
    L->delay = RD_U16(n_d);
    if (b->bad || *oom) return NULL;
    for (i = 0; i < n_d; i++)
        if (L->delay[i] >= L->depth) return "delay >= depth";
    if ((uint64_t)L->depth * ring_n > (uint64_t)(m->arena_cap / 4)) {
        *oom = 1;
        return NULL;
    }
    L->ring = (int32_t *)arena_alloc(m, (size_t)L->depth * ring_n * sizeof(int32_t));
    if (!L->ring) *oom = 1;
    return NULL;
}

/* geometry of CONV (16 u16) and pools (12 u16): checks sizes against the source */
static const char *rd_geom(cur_t *b, np_layer_t *L, int conv, uint32_t src_n)
{
    np_geom_t *g = &L->geom;
    uint32_t need_h, need_w, span_h, span_w;
    g->c_in = rd16(b);
    g->h = rd16(b);
    g->w = rd16(b);
    if (conv) g->c_out = rd16(b);
    g->kh = rd16(b);
    g->kw = rd16(b);
    g->sh = rd16(b);
    g->sw = rd16(b);
    g->ph = rd16(b);
    g->pw = rd16(b);
    if (conv) {
        g->dh = rd16(b);
        g->dw = rd16(b);
    } else {
        g->dh = g->dw = 1;
        g->c_out = g->c_in;
    }
    g->ho = rd16(b);
    g->wo = rd16(b);
    g->groups = conv ? rd16(b) : 1;
    (void)rd16(b);
    if (b->bad) return NULL;
    if ((uint32_t)g->c_in * g->h * g->w != src_n) return "input size differs from its source";
    if (g->c_in < 1 || g->c_out < 1 || g->kh < 1 || g->kw < 1 || g->sh < 1 || g->sw < 1 ||
        g->dh < 1 || g->dw < 1 || g->groups < 1 || g->c_in % g->groups || g->c_out % g->groups)
        return "bad geometry";
    span_h = (uint32_t)g->dh * (g->kh - 1u) + 1u;
    span_w = (uint32_t)g->dw * (g->kw - 1u) + 1u;
    need_h = (uint32_t)g->h + 2u * g->ph;
    need_w = (uint32_t)g->w + 2u * g->pw;
    if (span_h > need_h || span_w > need_w || (need_h - span_h) / g->sh + 1u != g->ho ||
        (need_w - span_w) / g->sw + 1u != g->wo)
        return "output size inconsistent with the geometry";
    return NULL;
}

static const char *rd_neuron(np_model_t *m, cur_t *b, np_layer_t *L, uint32_t src_n, int *oom)
{
    uint32_t n = rd32(b), k;
    int spiking = L->kind != NP_LAYER_LI, cuba = L->kind == NP_LAYER_CUBALIF;
    L->reset_mode = rd8(b);
    (void)rd8(b);
    (void)rd16(b);
    L->zp_in = rdi32(b);
    if (b->bad) return NULL;
    if (n != src_n) return "size differs from its source";
    if (L->reset_mode > 1) return "reset mode";
    L->out_n = n;
    if (cuba) L->alpha = RD_I32(n);
    L->beta = RD_I32(n);
    if (spiking) {
        L->v_th = RD_I32(n);
        L->v_reset = RD_I32(n);
    }
    L->v_leak = RD_I32(n);
    if (b->bad || *oom) return NULL;
    L->v = (int64_t *)arena_alloc(m, (size_t)n * sizeof(int64_t));
    if (cuba && L->v) L->i = (int64_t *)arena_alloc(m, (size_t)n * sizeof(int64_t));
    if (!L->v || (cuba && !L->i)) {
        *oom = 1;
        return NULL;
    }
    for (k = 0; k < n; k++)
        if (L->beta[k] < 0 || L->beta[k] > 65536 || (cuba && (L->alpha[k] < 0 || L->alpha[k] > 65536)))
            return "decay not in 0..65536";
    L->out_bytes = spiking ? 1 : 4;
    return NULL;
}

static const char *rd_bcast(cur_t *b, np_layer_t *L, uint32_t src_n)
{
    uint32_t n = rd32(b);
    L->bc.m = rd32(b);
    L->bc.inner = rd32(b);
    if (b->bad) return NULL;
    if (n != src_n) return "size differs from its source";
    if (L->bc.m < 1 || L->bc.inner < 1 ||
        (L->bc.m != 1 && (uint64_t)L->bc.m * L->bc.inner != (uint64_t)n))
        return "bad broadcast (m, inner)";
    L->out_n = n;
    return NULL;
}

static const char *parse_body(np_model_t *m, cur_t *b, np_layer_t *L, uint32_t src_n,
                              uint32_t src1_n, uint8_t src_bytes, int *oom)
{
    const char *why = NULL;
    switch (L->kind) {
    case NP_LAYER_LINEAR:
    case NP_LAYER_DELAY_LINEAR: {
        uint32_t n_in = rd32(b), n_out = rd32(b);
        if (L->kind == NP_LAYER_DELAY_LINEAR) {
            L->depth = rd16(b);
            (void)rd16(b);
        }
        if (b->bad) return NULL;
        if (n_in != src_n || n_out < 1) return "size differs from its source";
        if ((uint64_t)n_in * n_out > (uint64_t)(b->len - b->pos)) {
            b->bad = 1;
            return NULL;
        }
        L->out_n = n_out;
        why = rd_affine(m, b, L, n_in * n_out, n_out, oom);
        if (!why && !b->bad && !*oom && L->kind == NP_LAYER_DELAY_LINEAR) {
            why = rd_delays(m, b, L, L->n_w, n_in, oom);
            L->fill = L->zp_in;
        }
        return why;
    }
    case NP_LAYER_CONV: {
        uint64_t nw;
        why = rd_geom(b, L, 1, src_n);
        if (why || b->bad) return why;
        nw = (uint64_t)L->geom.c_out * (L->geom.c_in / L->geom.groups) * L->geom.kh * L->geom.kw;
        if (nw > (uint64_t)(b->len - b->pos)) { /* 64-bit: c_out * c_in * k can exceed 2^32 */
            b->bad = 1;
            return NULL;
        }
        L->out_n = (uint32_t)L->geom.c_out * L->geom.ho * L->geom.wo;
        return rd_affine(m, b, L, (uint32_t)nw, L->geom.c_out, oom);
    }
    case NP_LAYER_LIF:
    case NP_LAYER_LI:
    case NP_LAYER_CUBALIF:
        return rd_neuron(m, b, L, src_n, oom);
    case NP_LAYER_DELAY: {
        uint32_t n = rd32(b);
        L->depth = rd16(b);
        (void)rd16(b);
        L->fill = rdi32(b);
        if (b->bad) return NULL;
        if (n != src_n) return "size differs from its source";
        L->out_n = n;
        L->out_bytes = src_bytes;
        return rd_delays(m, b, L, n, n, oom);
    }
    case NP_LAYER_MAXPOOL:
    case NP_LAYER_AVGPOOL:
    case NP_LAYER_SUMPOOL:
        why = rd_geom(b, L, 0, src_n);
        L->pad = rdi32(b);
        L->out_min = rdi32(b);
        L->out_max = rdi32(b);
        if (why || b->bad) return why;
        if (L->out_min > L->out_max) return "out_min > out_max";
        L->out_n = (uint32_t)L->geom.c_in * L->geom.ho * L->geom.wo;
        L->out_bytes = L->kind == NP_LAYER_SUMPOOL ? 4 : src_bytes;
        return NULL;
    case NP_LAYER_ADD: {
        np_add_t *a = &L->add;
        uint32_t n = rd32(b);
        a->za = rdi32(b);
        a->zb = rdi32(b);
        a->zo = rdi32(b);
        a->lo = rdi32(b);
        a->hi = rdi32(b);
        a->ma = rdi32(b);
        a->mb = rdi32(b);
        a->mo = rdi32(b);
        a->sa = i8_of(rd8(b));
        a->sb = i8_of(rd8(b));
        a->so = i8_of(rd8(b));
        a->single = rd8(b);
        if (b->bad) return NULL;
        if (L->n_src != 2 || n != src_n || n != src1_n) return "needs two sources of its size";
        if (a->single > 1 || (a->single && (a->so < 1 || a->so > 40 || a->ma < 0 ||
                                            a->ma >= (1 << 22) || a->mb < 0 || a->mb >= (1 << 22))))
            return "bad single-rounding add";
        if (!a->single &&
            (a->lo > a->hi || a->ma < 0 || a->mb < 0 || a->mo < 0 || a->sa < -31 || a->sa > 30 ||
             a->sb < -31 || a->sb > 30 || a->so < -31 || a->so > 30))
            return "bad requantization";
        if (a->lo > a->hi) return "bad requantization";
        L->out_n = n;
        L->out_bytes = (a->lo >= -128 && a->hi <= 127) ? 1 : 4;
        return NULL;
    }
    case NP_LAYER_RELU: {
        uint32_t n = rd32(b);
        L->zp_in = rdi32(b);
        if (b->bad) return NULL;
        if (n != src_n) return "size differs from its source";
        L->out_n = n;
        L->out_bytes = src_bytes;
        return NULL;
    }
    case NP_LAYER_SCALE: {
        uint32_t k;
        why = rd_bcast(b, L, src_n);
        L->zp_in = rdi32(b);
        L->zp_out = rdi32(b);
        L->out_min = rdi32(b);
        L->out_max = rdi32(b);
        if (why || b->bad) return why;
        if (L->out_min > L->out_max) return "out_min > out_max";
        L->qm = RD_I32(L->bc.m);
        L->shift = RD_I8(L->bc.m);
        L->sign = RD_I8(L->bc.m);
        if (b->bad || *oom) return NULL;
        for (k = 0; k < L->bc.m; k++)
            if (L->qm[k] < 0 || L->shift[k] < -31 || L->shift[k] > 30 || L->sign[k] < -1 ||
                L->sign[k] > 1)
                return "qm/shift/sign out of range";
        L->out_bytes = (L->out_min >= -128 && L->out_max <= 127) ? 1 : 4;
        return NULL;
    }
    case NP_LAYER_THRESHOLD:
        why = rd_bcast(b, L, src_n);
        if (why || b->bad) return why;
        L->th = RD_I64(L->bc.m);
        L->out_bytes = 1;
        return NULL;
    default:
        return NULL;
    }
}

#define FAIL(code, ...)                                              \
    do {                                                             \
        snprintf(m->detail, sizeof m->detail, __VA_ARGS__);          \
        m->loaded = 0;                                               \
        return (code);                                               \
    } while (0)

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

static uint32_t src_size(const np_model_t *m, uint8_t s)
{
    return s == 0 ? m->in_size : m->layers[s - 1].out_n;
}

static uint8_t src_bytes(const np_model_t *m, uint8_t s)
{
    return s == 0 ? 1 : m->layers[s - 1].out_bytes;
}

/* Layer outputs share one block by liveness (PROTOCOL.md "Arena"; image.py's
 * plan_outputs mirrors this to predict the arena). Output b (of layer b, 1-based) lives
 * from its layer to its last reader (the last layer's to the end of the step), and one
 * layer longer where it feeds a LINEAR followed by a LIF (the chain np_model_learn
 * accepts): stdp_step reads it right after that LIF. An elementwise layer that is its
 * input's last reader writes in place (one group, one block). Groups are placed largest
 * first (ties: earlier first), each at the lowest 8-byte-aligned offset that overlaps no
 * placed group live at the same time (greedy by size, as TFLM's planner). */
static int learnable_at(const np_model_t *m, uint16_t j)
{
    return j + 1u < m->n_layers && m->layers[j].kind == NP_LAYER_LINEAR &&
           m->layers[j + 1].kind == NP_LAYER_LIF && m->layers[j].src[0] == j &&
           m->layers[j + 1].src[0] == j + 1u;
}

/* Kinds whose kernel reads x[k] before writing y[k] and nothing else of x: their output
 * may overwrite their input in place when they are its last reader. */
static int elementwise(uint8_t kind)
{
    return kind == NP_LAYER_RELU || kind == NP_LAYER_SCALE || kind == NP_LAYER_THRESHOLD ||
           kind == NP_LAYER_LIF || kind == NP_LAYER_LI || kind == NP_LAYER_CUBALIF;
}

static int plan_outputs(np_model_t *m)
{
    uint32_t off[NP_MAX_LAYERS], size[NP_MAX_LAYERS];
    uint16_t end[NP_MAX_LAYERS], root[NP_MAX_LAYERS], order[NP_MAX_LAYERS];
    uint16_t n = m->n_layers, i, j, k, n_roots = 0;
    uint8_t placed[NP_MAX_LAYERS];
    uint32_t pool = 0;
    uint8_t *base;
    for (i = 0; i < n; i++) end[i] = i == n - 1 ? n : i;
    for (j = 0; j < n; j++)
        for (k = 0; k < m->layers[j].n_src; k++) {
            uint8_t s = m->layers[j].src[k];
            uint16_t last = (uint16_t)(j + (k == 0 && learnable_at(m, j) ? 1u : 0u));
            if (s > 0 && end[s - 1] < last) end[s - 1] = last;
        }
    for (i = 0; i < n; i++) { /* in-place groups: root = first layer, end = the group's */
        uint8_t s = m->layers[i].src[0];
        size[i] = (m->layers[i].out_n * (uint32_t)sizeof(int32_t) + 7u) & ~7u;
        placed[i] = 0;
        root[i] = i;
        if (m->layers[i].n_src == 1 && s > 0 && elementwise(m->layers[i].kind) &&
            end[s - 1] == i && m->layers[s - 1].out_n == m->layers[i].out_n) {
            root[i] = root[s - 1];
            if (end[root[i]] < end[i]) end[root[i]] = end[i];
        } else {
            order[n_roots++] = i;
        }
    }
    for (i = 1; i < n_roots; i++) { /* insertion sort: size descending, stable */
        uint16_t r = order[i];
        for (j = i; j > 0 && size[order[j - 1]] < size[r]; j--) order[j] = order[j - 1];
        order[j] = r;
    }
    for (k = 0; k < n_roots; k++) {
        uint16_t r = order[k];
        uint32_t at = 0;
        int moved = 1;
        while (moved) { /* lowest offset past every live overlap: at most k passes */
            moved = 0;
            for (j = 0; j < n; j++)
                if (placed[j] && r <= end[j] && j <= end[r] && at < off[j] + size[j] &&
                    off[j] < at + size[r]) {
                    at = off[j] + size[j];
                    moved = 1;
                }
        }
        off[r] = at;
        placed[r] = 1;
        if (at + size[r] > pool) pool = at + size[r];
    }
    base = (uint8_t *)arena_alloc(m, pool);
    if (!base) return -1;
    for (i = 0; i < n; i++) m->layers[i].out = (int32_t *)(base + off[root[i]]);
    return 0;
}

int np_model_load(np_model_t *m, const uint8_t *img, size_t len)
{
    cur_t c;
    uint16_t version, li;
    int oom = 0;

    np_model_unload(m);
    c.p = img;
    c.len = len;
    c.pos = 0;
    c.bad = 0;
    if (len < 16 || memcmp(img, NP_IMAGE_MAGIC, 4) != 0) FAIL(NP_ERR_MODEL_INVALID, "bad magic");
    c.pos = 4;
    version = rd16(&c);
    if (version != NP_IMAGE_VERSION)
        FAIL(NP_ERR_MODEL_INVALID, "image version %u (this firmware reads %d)", version,
             NP_IMAGE_VERSION);
    m->n_layers = rd16(&c);
    m->in_size = rd16(&c);
    m->out_size = rd16(&c);
    (void)rd32(&c); /* reserved */
    if (m->n_layers < 1 || m->n_layers > NP_MAX_LAYERS)
        FAIL(NP_ERR_TOO_LARGE, "n_layers %u not in 1..%d", m->n_layers, NP_MAX_LAYERS);
    if (m->in_size < 1) FAIL(NP_ERR_MODEL_INVALID, "in_size 0");
    m->input = (int32_t *)arena_alloc(m, (size_t)m->in_size * sizeof(int32_t));
    if (!m->input) FAIL(NP_ERR_TOO_LARGE, "arena full (input)");

    for (li = 0; li < m->n_layers; li++) {
        np_layer_t *L = &m->layers[li];
        uint32_t body_len, k;
        const char *why;
        cur_t b;
        L->kind = rd8(&c);
        L->n_src = rd8(&c);
        L->src[0] = rd8(&c);
        L->src[1] = rd8(&c);
        body_len = rd32(&c);
        if (c.bad) FAIL(NP_ERR_MODEL_INVALID, "layer %u: truncated header", li);
        if (body_len > c.len - c.pos) FAIL(NP_ERR_MODEL_INVALID, "layer %u: body past end", li);
        if (L->kind < 1 || L->kind > NP_LAYER_KIND_MAX)
            FAIL(NP_ERR_UNSUPPORTED, "layer %u: unknown kind %u", li, L->kind);
        if (L->n_src < 1 || L->n_src > 2 || (L->n_src == 1 && L->src[1] != 0))
            FAIL(NP_ERR_MODEL_INVALID, "layer %u %s: %u sources", li, kind_name(L->kind), L->n_src);
        for (k = 0; k < L->n_src; k++)
            if (L->src[k] > li) /* sources come earlier: the image is in topological order */
                FAIL(NP_ERR_MODEL_INVALID, "layer %u %s: source %u is not an earlier layer", li,
                     kind_name(L->kind), L->src[k]);
        b.p = c.p + c.pos;
        b.len = body_len;
        b.pos = 0;
        b.bad = 0;
        L->in_n = src_size(m, L->src[0]);
        if ((L->kind == NP_LAYER_ADD) != (L->n_src == 2))
            FAIL(NP_ERR_MODEL_INVALID, "layer %u %s: %u sources", li, kind_name(L->kind), L->n_src);
        why = parse_body(m, &b, L, L->in_n, L->n_src == 2 ? src_size(m, L->src[1]) : 0,
                         src_bytes(m, L->src[0]), &oom);
        if (oom) FAIL(NP_ERR_TOO_LARGE, "layer %u %s: arena full", li, kind_name(L->kind));
        if (b.bad) FAIL(NP_ERR_MODEL_INVALID, "layer %u %s: truncated", li, kind_name(L->kind));
        if (why) FAIL(NP_ERR_MODEL_INVALID, "layer %u %s: %s", li, kind_name(L->kind), why);
        if (b.pos != b.len)
            FAIL(NP_ERR_MODEL_INVALID, "layer %u %s: %lu trailing bytes", li, kind_name(L->kind),
                 (unsigned long)(b.len - b.pos));
        if (L->out_n < 1 || L->out_n > NP_MAX_LAYER_SIZE)
            FAIL(NP_ERR_TOO_LARGE, "layer %u %s: %lu outputs", li, kind_name(L->kind),
                 (unsigned long)L->out_n);
        c.pos += body_len;
    }
    if (c.pos != c.len) FAIL(NP_ERR_MODEL_INVALID, "%lu bytes after the last layer",
                             (unsigned long)(c.len - c.pos));
    if (plan_outputs(m) != 0) FAIL(NP_ERR_TOO_LARGE, "arena full (layer outputs)");
    if (m->layers[m->n_layers - 1].out_n != m->out_size)
        FAIL(NP_ERR_MODEL_INVALID, "out_size %u != last layer's %lu", m->out_size,
             (unsigned long)m->layers[m->n_layers - 1].out_n);
    m->out_bytes = m->layers[m->n_layers - 1].out_bytes;
    m->loaded = 1;
    m->detail[0] = 0;
    np_model_reset_state(m);
    return NP_ERR_OK;
}

void np_model_reset_state(np_model_t *m)
{
    uint16_t li;
    size_t k;
    if (!m->loaded) return;
    for (li = 0; li < m->n_layers; li++) {
        np_layer_t *L = &m->layers[li];
        if (L->v) memset(L->v, 0, (size_t)L->out_n * sizeof(int64_t));
        if (L->i) memset(L->i, 0, (size_t)L->out_n * sizeof(int64_t));
        if (L->ring) {
            size_t n = (size_t)L->depth * L->in_n;
            for (k = 0; k < n; k++) L->ring[k] = L->fill;
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

static const int32_t *src_ptr(const np_model_t *m, uint8_t s)
{
    return s == 0 ? m->input : m->layers[s - 1].out;
}

static void run_layer(np_model_t *m, np_layer_t *L)
{
    const int32_t *x = src_ptr(m, L->src[0]);
    np_affine_t q;
    np_neuron_t nr;
    q.zp_in = L->zp_in;
    q.zp_out = L->zp_out;
    q.out_min = L->out_min;
    q.out_max = L->out_max;
    q.bias = L->bias;
    q.qm = L->qm;
    q.shift = L->shift;
    switch (L->kind) {
    case NP_LAYER_LINEAR: np_linear(x, L->in_n, L->out_n, L->w, &q, L->out); break;
    case NP_LAYER_CONV: np_conv2d(x, &L->geom, L->w, &q, L->out); break;
    case NP_LAYER_DELAY_LINEAR:
        np_delay_linear_step(x, L->in_n, L->out_n, L->w, L->delay, L->depth, &q, L->ring,
                             &L->head, L->out);
        break;
    case NP_LAYER_LIF:
    case NP_LAYER_LI:
    case NP_LAYER_CUBALIF:
        nr.zp_in = L->zp_in;
        nr.spiking = L->kind != NP_LAYER_LI;
        nr.subtract = L->reset_mode;
        nr.beta = L->beta;
        nr.v_th = L->v_th;
        nr.v_reset = L->v_reset;
        nr.v_leak = L->v_leak;
        nr.alpha = L->alpha;
        np_neuron_step(x, L->out_n, &nr, L->v, L->i, L->out);
        break;
    case NP_LAYER_DELAY:
        np_delay_step(x, L->out_n, L->depth, L->delay, L->ring, &L->head, L->out);
        break;
    case NP_LAYER_MAXPOOL:
        np_pool2d(x, &L->geom, NP_POOL_MAX, L->pad, L->out_min, L->out_max, L->out);
        break;
    case NP_LAYER_AVGPOOL:
        np_pool2d(x, &L->geom, NP_POOL_AVG, L->pad, L->out_min, L->out_max, L->out);
        break;
    case NP_LAYER_SUMPOOL:
        np_pool2d(x, &L->geom, NP_POOL_SUM, L->pad, L->out_min, L->out_max, L->out);
        break;
    case NP_LAYER_ADD: np_add(x, src_ptr(m, L->src[1]), L->out_n, &L->add, L->out); break;
    case NP_LAYER_RELU: np_relu(x, L->out_n, L->zp_in, L->out); break;
    case NP_LAYER_SCALE:
        np_scale(x, L->out_n, &L->bc, L->qm, L->shift, L->sign, L->zp_in, L->zp_out, L->out_min,
                 L->out_max, L->out);
        break;
    case NP_LAYER_THRESHOLD: np_threshold(x, L->out_n, &L->bc, L->th, L->out); break;
    default: break; /* unreachable: np_model_load accepts known kinds only */
    }
}

void np_model_step(np_model_t *m, const int32_t *x)
{
    uint16_t li;
    if (!m->loaded) return;
    if (x != m->input) memcpy(m->input, x, (size_t)m->in_size * sizeof(int32_t));
    for (li = 0; li < m->n_layers; li++) {
        run_layer(m, &m->layers[li]);
        /* right after the rule's LIF: its presynaptic buffer may be reused later */
        if (m->stdp.enabled && li == m->stdp.layer + 1u) stdp_step(m);
    }
}

const int32_t *np_model_output(const np_model_t *m)
{
    return m->layers[m->n_layers - 1].out;
}

int np_model_learn(np_model_t *m, int mode, uint8_t layer, uint32_t seed, uint16_t a_pre,
                   uint16_t a_post, uint16_t decay_pre, uint16_t decay_post, uint16_t eta_plus,
                   uint16_t eta_minus, int8_t w_min, int8_t w_max)
{
    np_stdp_t *s = &m->stdp;
    if (mode == NP_LEARN_OFF) {
        s->enabled = 0;
        return NP_ERR_OK;
    }
    if (mode > NP_LEARN_RESUME) {
        snprintf(m->detail, sizeof m->detail, "learn mode %d is not 0..3", mode);
        return NP_ERR_BAD_ARG;
    }
    if (!m->loaded) {
        snprintf(m->detail, sizeof m->detail, "no model loaded");
        return NP_ERR_NO_MODEL;
    }
    if (mode == NP_LEARN_RESUME) {
        if (!s->x_pre) {
            snprintf(m->detail, sizeof m->detail, "learning is not configured; use START first");
            return NP_ERR_BAD_ARG;
        }
        s->enabled = 1;
        return NP_ERR_OK;
    }
    if ((uint32_t)layer + 1u >= m->n_layers || m->layers[layer].kind != NP_LAYER_LINEAR ||
        m->layers[layer + 1].kind != NP_LAYER_LIF || m->layers[layer].src[0] != layer ||
        m->layers[layer + 1].src[0] != layer + 1u) { /* the rule reads the chain around it */
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
    s->enabled = mode == NP_LEARN_START;
    return NP_ERR_OK;
}

uint32_t np_model_learn_state_size(const np_model_t *m)
{
    const np_stdp_t *s = &m->stdp;
    if (!m->loaded || !s->x_pre) return 0;
    return 4u + 2u * (m->layers[s->layer].in_n + m->layers[s->layer].out_n);
}

/* Byte k of the learning-state object: rng:u32, x_pre:u16[in_n], y_post:u16[out_n] (LE). */
static uint8_t learn_state_byte(const np_model_t *m, uint32_t k)
{
    const np_stdp_t *s = &m->stdp;
    uint32_t n_pre = m->layers[s->layer].in_n, e;
    uint32_t v;
    if (k < 4) return (uint8_t)(s->rng >> (8 * k));
    e = (k - 4) / 2;
    v = (uint32_t)(e < n_pre ? s->x_pre[e] : s->y_post[e - n_pre]);
    return (uint8_t)(v >> (8 * ((k - 4) & 1)));
}

void np_model_learn_state_read(const np_model_t *m, uint32_t off, uint32_t n, uint8_t *out)
{
    uint32_t k;
    for (k = 0; k < n; k++) out[k] = learn_state_byte(m, off + k);
}

int np_model_learn_state_write(np_model_t *m, const uint8_t *obj, uint32_t len)
{
    np_stdp_t *s = &m->stdp;
    uint32_t n_pre, n_post, e, rng;
    if (len != np_model_learn_state_size(m) || len == 0) {
        snprintf(m->detail, sizeof m->detail, "learning state is %lu bytes, not %lu",
                 (unsigned long)np_model_learn_state_size(m), (unsigned long)len);
        return NP_ERR_BAD_ARG;
    }
    n_pre = m->layers[s->layer].in_n;
    n_post = m->layers[s->layer].out_n;
    rng = np_rd_u32(obj);
    if (rng == 0) {
        snprintf(m->detail, sizeof m->detail, "generator state 0 is invalid");
        return NP_ERR_BAD_ARG;
    }
    for (e = 0; e < n_pre + n_post; e++)
        if (np_rd_u16(obj + 4 + 2 * e) > 32767u) {
            snprintf(m->detail, sizeof m->detail, "trace %lu above 32767", (unsigned long)e);
            return NP_ERR_BAD_ARG;
        }
    s->rng = rng;
    for (e = 0; e < n_pre; e++) s->x_pre[e] = (int32_t)np_rd_u16(obj + 4 + 2 * e);
    for (e = 0; e < n_post; e++) s->y_post[e] = (int32_t)np_rd_u16(obj + 4 + 2 * (n_pre + e));
    return NP_ERR_OK;
}
