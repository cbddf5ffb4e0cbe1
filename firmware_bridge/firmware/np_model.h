/* np_model.h -- a model image's layer graph: parse, step, reset, on-device STDP.
 *
 * The image (PROTOCOL.md §5) is a list of layers in topological order; each names its one
 * or two sources (0 = the model input, k = the output of layer k-1), so it carries any
 * DAG the host graph has (residual Adds, branches). The last layer is the model output.
 * Each layer's arithmetic is a pure kernel of np_kernels.h; this file validates images,
 * owns the arena, keeps the state and dispatches. */
#ifndef NP_MODEL_H
#define NP_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "np_kernels.h"
#include "protocol_gen.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifndef NP_DETAIL_LEN
#define NP_DETAIL_LEN 96
#endif

typedef struct {
    uint8_t kind;
    uint8_t n_src;
    uint8_t src[2];         /* 0 = model input, k = output of layer k-1 (k - 1 < own index) */
    uint32_t in_n, out_n;   /* in_n: elements of the first source */
    /* affine layers (LINEAR, CONV, DELAY_LINEAR); out_min/out_max also clamp pools/scale */
    int32_t zp_in, zp_out, out_min, out_max;
    int8_t *w;
    int32_t *bias, *qm;
    int8_t *shift;
    uint32_t n_w;
    np_geom_t geom;         /* CONV and pools */
    int32_t pad;            /* MAXPOOL: value of padded cells */
    /* neurons (LIF, IF, LI, CUBALIF) */
    uint8_t reset_mode;
    int32_t *beta, *v_th, *v_reset, *v_leak, *alpha;
    int64_t *v, *i;
    /* delays */
    uint16_t depth, head;
    uint16_t *delay;
    int32_t fill;
    int32_t *ring;
    /* ADD, SCALE, THRESHOLD */
    np_add_t add;
    np_bcast_t bc;
    int8_t *sign;
    int64_t *th;
    /* output */
    int32_t *out;
    uint8_t out_bytes;
} np_layer_t;

typedef struct {
    uint8_t enabled;
    uint8_t layer;
    uint32_t rng;
    uint16_t a_pre, a_post, decay_pre, decay_post, eta_plus, eta_minus;
    int8_t w_min, w_max;
    int32_t *x_pre, *y_post;
} np_stdp_t;

typedef struct {
    uint8_t *arena;
    size_t arena_cap, arena_used;
    int loaded;
    uint16_t n_layers, in_size, out_size;
    uint8_t out_bytes;
    np_layer_t layers[NP_MAX_LAYERS];
    int32_t *input;
    np_stdp_t stdp;
    uint32_t learn_updates;
    char detail[NP_DETAIL_LEN]; /* why the last parse failed */
} np_model_t;

/* Bind a model to its arena (static storage owned by the caller). */
void np_model_init(np_model_t *m, uint8_t *arena, size_t arena_cap);

/* Validate and load a model image; returns NP_ERR_OK or NP_ERR_MODEL_INVALID /
 * NP_ERR_TOO_LARGE / NP_ERR_UNSUPPORTED with m->detail set. Bounds-checks every field.
 * The image is copied into the arena: `img` may be freed or overwritten afterwards. */
int np_model_load(np_model_t *m, const uint8_t *img, size_t len);

void np_model_unload(np_model_t *m);

/* Zero membranes, fill delay lines, clear STDP traces (weights are kept). */
void np_model_reset_state(np_model_t *m);

/* One time step: `x` holds in_size int8 codes (as int32). Output in m->layers[last].out. */
void np_model_step(np_model_t *m, const int32_t *x);

const int32_t *np_model_output(const np_model_t *m);

/* STDP control (mode: NP_LEARN_OFF/START/CONFIGURE/RESUME, PROTOCOL.md §4.5); returns
 * NP_ERR_OK, NP_ERR_NO_MODEL or NP_ERR_BAD_ARG (with m->detail). */
int np_model_learn(np_model_t *m, int mode, uint8_t layer, uint32_t seed, uint16_t a_pre,
                   uint16_t a_post, uint16_t decay_pre, uint16_t decay_post, uint16_t eta_plus,
                   uint16_t eta_minus, int8_t w_min, int8_t w_max);

/* Learning state object (PROTOCOL.md §4.6): its size (0 = not configured), a byte range of
 * it, and a whole-object write (validated first: NP_ERR_BAD_ARG leaves the state as it was). */
uint32_t np_model_learn_state_size(const np_model_t *m);
void np_model_learn_state_read(const np_model_t *m, uint32_t off, uint32_t n, uint8_t *out);
int np_model_learn_state_write(np_model_t *m, const uint8_t *obj, uint32_t len);

/* xorshift32 used by stochastic rounding, and the seed scrambler (murmur3 fmix32). */
uint32_t np_xorshift32(uint32_t *state);
uint32_t np_seed_mix(uint32_t seed);

#ifdef __cplusplus
}
#endif

#endif /* NP_MODEL_H */
