/* np_board.c -- see np_board.h; payload layouts are specified in PROTOCOL.md §4. */
#include "np_board.h"

#include <stdio.h>
#include <string.h>

#include "np_hal.h"

void np_board_init(np_board_t *b, uint8_t *arena, size_t arena_cap, uint8_t *staging,
                   size_t staging_cap)
{
    memset(b, 0, sizeof *b);
    np_model_init(&b->model, arena, arena_cap);
    b->staging = staging;
    b->staging_cap = staging_cap;
}

static void send_aux(np_board_t *b, uint8_t type, uint8_t flags, uint16_t seq, const uint8_t *p,
                     size_t n)
{
    size_t len = np_frame_encode(type, flags, seq, p, n, NULL, 0, b->aux, sizeof b->aux);
    if (len) {
        np_hal_write(b->aux, len);
        b->stats[NP_STAT_TX_FRAMES]++;
    }
}

void np_board_log(np_board_t *b, uint8_t level, const char *text)
{
    uint8_t p[1 + 100];
    size_t n = strlen(text);
    if (n > sizeof p - 1) n = sizeof p - 1;
    p[0] = level;
    memcpy(p + 1, text, n);
    send_aux(b, NP_MSG_LOG, NP_FLAG_UNSOLICITED, 0, p, n + 1);
}

/* NACK for a frame that could not be trusted (bad CRC/COBS/version): not cached. */
static void nack_untrusted(np_board_t *b, uint16_t seq, uint8_t req, uint8_t err, const char *msg)
{
    uint8_t p[2 + 64];
    size_t n = strlen(msg);
    if (n > sizeof p - 2) n = sizeof p - 2;
    p[0] = req;
    p[1] = err;
    memcpy(p + 2, msg, n);
    b->stats[NP_STAT_NACKS]++;
    send_aux(b, NP_MSG_NACK, 0, seq, p, n + 2);
}

#define DETAIL(...) snprintf(b->detail, sizeof b->detail, __VA_ARGS__)

static uint32_t weights_crc(const np_layer_t *L)
{
    return np_crc32_update(0, (const uint8_t *)L->w, L->n_w);
}

static size_t put_caps(np_board_t *b, uint8_t *p)
{
    const np_model_t *m = &b->model;
    const char *name = np_hal_board_name();
    uint32_t ops = 0;
    size_t n;
    int k;
    for (k = 1; k <= NP_LAYER_KIND_MAX; k++) ops |= 1u << k;
    p[0] = NP_PROTOCOL_VERSION;
    p[1] = NP_FW_VERSION_MAJOR;
    p[2] = NP_FW_VERSION_MINOR;
    p[3] = NP_FW_VERSION_PATCH;
    np_wr_u32(p + 4, (uint32_t)(m->arena_cap + b->staging_cap + sizeof *b));
    np_wr_u32(p + 8, (uint32_t)b->staging_cap);
    np_wr_u16(p + 12, NP_MAX_PAYLOAD);
    np_wr_u16(p + 14, m->loaded ? m->n_layers : 0);
    np_wr_u32(p + 16, ops);
    p[20] = (uint8_t)m->loaded;
    p[21] = m->stdp.enabled;
    np_wr_u16(p + 22, m->loaded ? m->in_size : 0);
    np_wr_u16(p + 24, m->loaded ? m->out_size : 0);
    p[26] = m->loaded ? m->out_bytes : 0;
    p[27] = 0;
    memset(p + 28, 0, 16);
    n = strlen(name);
    memcpy(p + 28, name, n > 15 ? 15 : n);
    return 44;
}

/* Validate a dense or event payload for `n_steps` steps; returns 0 if well-formed. */
static int check_steps(np_board_t *b, const uint8_t *d, size_t len, uint16_t n_steps, int events)
{
    const np_model_t *m = &b->model;
    size_t pos = 0, s, k;
    if (!events) {
        if (len != (size_t)n_steps * m->in_size) {
            DETAIL("dense input: %lu bytes for %u steps x %u", (unsigned long)len, n_steps,
                   m->in_size);
            return NP_ERR_BAD_LENGTH;
        }
        return NP_ERR_OK;
    }
    for (s = 0; s < n_steps; s++) {
        uint16_t cnt;
        if (len - pos < 2) {
            DETAIL("events: step %lu truncated", (unsigned long)s);
            return NP_ERR_BAD_LENGTH;
        }
        cnt = np_rd_u16(d + pos);
        pos += 2;
        if ((size_t)cnt > (len - pos) / 2) {
            DETAIL("events: step %lu count %u past end", (unsigned long)s, cnt);
            return NP_ERR_BAD_LENGTH;
        }
        for (k = 0; k < cnt; k++) {
            uint16_t idx = np_rd_u16(d + pos + 2 * k);
            if (idx >= m->in_size) {
                DETAIL("events: index %u >= in_size %u", idx, m->in_size);
                return NP_ERR_BAD_ARG;
            }
        }
        pos += 2u * cnt;
    }
    if (pos != len) {
        DETAIL("events: %lu trailing bytes", (unsigned long)(len - pos));
        return NP_ERR_BAD_LENGTH;
    }
    return NP_ERR_OK;
}

static int h_run(np_board_t *b, const np_frame_t *f, size_t *out_len)
{
    np_model_t *m = &b->model;
    uint16_t n_steps, s;
    int events = (f->flags & NP_FLAG_EVENTS) != 0, err;
    const uint8_t *d;
    size_t len, pos = 0, o = 4, i;
    uint64_t need;
    if (!m->loaded) {
        DETAIL("load a model first");
        return NP_ERR_NO_MODEL;
    }
    if (f->length < 2) {
        DETAIL("missing n_steps");
        return NP_ERR_BAD_LENGTH;
    }
    n_steps = np_rd_u16(f->payload);
    d = f->payload + 2;
    len = (size_t)f->length - 2;
    need = 4 + (uint64_t)n_steps * m->out_size * m->out_bytes; /* no 32-bit size_t wrap */
    if (need > NP_MAX_PAYLOAD) {
        DETAIL("reply of %lu bytes > %d: send fewer steps", (unsigned long)need, NP_MAX_PAYLOAD);
        return NP_ERR_TOO_LARGE;
    }
    err = check_steps(b, d, len, n_steps, events);
    if (err) return err;
    if (f->type == NP_MSG_INFER || (f->flags & NP_FLAG_RESET_STATE)) np_model_reset_state(m);
    for (s = 0; s < n_steps; s++) {
        const int32_t *y;
        uint32_t t0;
        if (!events) {
            for (i = 0; i < m->in_size; i++) {
                uint8_t u = d[pos + i];
                m->input[i] = u < 128 ? (int32_t)u : (int32_t)u - 256;
            }
            pos += m->in_size;
        } else {
            uint16_t cnt = np_rd_u16(d + pos);
            memset(m->input, 0, (size_t)m->in_size * sizeof(int32_t));
            pos += 2;
            for (i = 0; i < cnt; i++) {
                /* repeated indices add up, like the host's SparseInput */
                int32_t *e = &m->input[np_rd_u16(d + pos + 2 * i)];
                if (*e < 127) *e += 1;
            }
            pos += 2u * cnt;
        }
        t0 = np_hal_cycles();
        np_model_step(m, m->input);
        b->stats[NP_STAT_STEP_CYCLES] += np_hal_cycles() - t0;
        y = np_model_output(m);
        for (i = 0; i < m->out_size; i++) {
            if (m->out_bytes == 1) {
                b->reply[o++] = (uint8_t)((uint32_t)y[i] & 0xFFu);
            } else {
                np_wr_u32(b->reply + o, (uint32_t)y[i]);
                o += 4;
            }
        }
    }
    b->stats[NP_STAT_INFER_STEPS] += n_steps;
    b->stats[NP_STAT_LEARN_UPDATES] = m->learn_updates;
    np_wr_u16(b->reply + 1, n_steps);
    b->reply[3] = m->out_bytes;
    *out_len = o;
    return NP_ERR_OK;
}

static int h_load(np_board_t *b, const np_frame_t *f, size_t *out_len)
{
    uint32_t off, total, tcrc, ccrc, n;
    const uint8_t *d;
    int err;
    if (f->length < 16) {
        DETAIL("LOAD_BUNDLE header is 16 bytes");
        return NP_ERR_BAD_LENGTH;
    }
    off = np_rd_u32(f->payload);
    total = np_rd_u32(f->payload + 4);
    tcrc = np_rd_u32(f->payload + 8);
    ccrc = np_rd_u32(f->payload + 12);
    d = f->payload + 16;
    n = (uint32_t)f->length - 16;
    if (np_crc32_update(0, d, n) != ccrc) {
        DETAIL("chunk at %lu: chunk CRC mismatch", (unsigned long)off);
        return NP_ERR_CRC;
    }
    if (off == 0) {
        if (total > b->staging_cap) {
            DETAIL("model image of %lu bytes > max %lu", (unsigned long)total,
                   (unsigned long)b->staging_cap);
            return NP_ERR_TOO_LARGE;
        }
        np_model_unload(&b->model);
        b->xfer = NP_MSG_LOAD_BUNDLE;
        b->xfer_total = total;
        b->xfer_crc = tcrc;
        b->xfer_received = 0;
    } else if (b->xfer != NP_MSG_LOAD_BUNDLE || off != b->xfer_received ||
               total != b->xfer_total || tcrc != b->xfer_crc) {
        DETAIL("chunk at %lu does not continue the transfer (have %lu)", (unsigned long)off,
               (unsigned long)b->xfer_received);
        return NP_ERR_CHUNK_ORDER;
    }
    if (n > b->xfer_total - b->xfer_received) {
        DETAIL("chunk runs past total %lu", (unsigned long)b->xfer_total);
        return NP_ERR_BAD_LENGTH;
    }
    memcpy(b->staging + b->xfer_received, d, n);
    b->xfer_received += n;
    b->reply[5] = 0;
    if (b->xfer_received == b->xfer_total) {
        b->xfer = 0;
        if (np_crc32_update(0, b->staging, b->xfer_total) != b->xfer_crc) {
            DETAIL("whole-image CRC mismatch");
            return NP_ERR_OBJECT_CRC;
        }
        err = np_model_load(&b->model, b->staging, b->xfer_total);
        if (err) {
            DETAIL("%s", b->model.detail);
            return err;
        }
        b->stats[NP_STAT_MODEL_LOADS]++;
        b->reply[5] = 1;
    }
    np_wr_u32(b->reply + 1, b->reply[5] ? b->xfer_total : b->xfer_received);
    *out_len = 6;
    return NP_ERR_OK;
}

static np_layer_t *weight_layer(np_board_t *b, uint8_t layer)
{
    np_model_t *m = &b->model;
    if (!m->loaded || layer >= m->n_layers || m->layers[layer].w == NULL) {
        DETAIL("layer %u has no weights", layer);
        return NULL;
    }
    return &m->layers[layer];
}

/* Size of the GET/SET_STATE object `layer` (weights, or the learning state), 0 with a
 * detail when there is none. */
static uint32_t state_size(np_board_t *b, uint8_t layer)
{
    np_layer_t *L;
    if (layer == NP_LEARN_STATE_LAYER) {
        uint32_t n = np_model_learn_state_size(&b->model);
        if (!n) DETAIL("learning is not configured (LEARN_ENABLE first)");
        return n;
    }
    L = weight_layer(b, layer);
    return L ? L->n_w : 0;
}

static uint32_t learn_state_crc(const np_model_t *m, uint32_t total)
{
    uint8_t tmp[64];
    uint32_t off, n, crc = 0;
    for (off = 0; off < total; off += n) {
        n = total - off < sizeof tmp ? total - off : (uint32_t)sizeof tmp;
        np_model_learn_state_read(m, off, n, tmp);
        crc = np_crc32_update(crc, tmp, n);
    }
    return crc;
}

static int h_get_state(np_board_t *b, const np_frame_t *f, size_t *out_len)
{
    uint32_t off, n, maxn, total;
    uint8_t layer;
    if (f->length != 7) {
        DETAIL("GET_STATE payload is 7 bytes");
        return NP_ERR_BAD_LENGTH;
    }
    if (!b->model.loaded) {
        DETAIL("load a model first");
        return NP_ERR_NO_MODEL;
    }
    layer = f->payload[0];
    total = state_size(b, layer);
    if (!total) return NP_ERR_BAD_ARG;
    off = np_rd_u32(f->payload + 1);
    maxn = np_rd_u16(f->payload + 5);
    if (off > total) {
        DETAIL("offset %lu > %lu bytes", (unsigned long)off, (unsigned long)total);
        return NP_ERR_BAD_ARG;
    }
    n = total - off;
    if (n > maxn) n = maxn;
    if (n > NP_MAX_PAYLOAD - 13) n = NP_MAX_PAYLOAD - 13;
    np_wr_u32(b->reply + 1, total);
    np_wr_u32(b->reply + 9, off);
    if (layer == NP_LEARN_STATE_LAYER) {
        np_wr_u32(b->reply + 5, learn_state_crc(&b->model, total));
        np_model_learn_state_read(&b->model, off, n, b->reply + 13);
    } else {
        const np_layer_t *L = &b->model.layers[layer];
        np_wr_u32(b->reply + 5, weights_crc(L));
        memcpy(b->reply + 13, (const uint8_t *)L->w + off, n);
    }
    *out_len = 13 + n;
    return NP_ERR_OK;
}

static int h_set_state(np_board_t *b, const np_frame_t *f, size_t *out_len)
{
    uint32_t off, total, tcrc, n, want;
    uint8_t layer;
    if (f->length < 13) {
        DETAIL("SET_STATE header is 13 bytes");
        return NP_ERR_BAD_LENGTH;
    }
    if (!b->model.loaded) {
        DETAIL("load a model first");
        return NP_ERR_NO_MODEL;
    }
    layer = f->payload[0];
    want = state_size(b, layer);
    if (!want) return NP_ERR_BAD_ARG;
    off = np_rd_u32(f->payload + 1);
    total = np_rd_u32(f->payload + 5);
    tcrc = np_rd_u32(f->payload + 9);
    n = (uint32_t)f->length - 13;
    if (total != want) {
        DETAIL("state %u is %lu bytes, not %lu", layer, (unsigned long)want,
               (unsigned long)total);
        return NP_ERR_BAD_ARG;
    }
    if (total > b->staging_cap) {
        DETAIL("state of %lu bytes > staging %lu", (unsigned long)total,
               (unsigned long)b->staging_cap);
        return NP_ERR_TOO_LARGE;
    }
    if (off == 0) {
        b->xfer = NP_MSG_SET_STATE;
        b->xfer_total = total;
        b->xfer_crc = tcrc;
        b->xfer_received = 0;
        b->xfer_layer = layer;
    } else if (b->xfer != NP_MSG_SET_STATE || off != b->xfer_received || layer != b->xfer_layer ||
               tcrc != b->xfer_crc) {
        DETAIL("chunk at %lu does not continue the transfer", (unsigned long)off);
        return NP_ERR_CHUNK_ORDER;
    }
    if (n > b->xfer_total - b->xfer_received) {
        DETAIL("chunk runs past total");
        return NP_ERR_BAD_LENGTH;
    }
    memcpy(b->staging + b->xfer_received, f->payload + 13, n);
    b->xfer_received += n;
    b->reply[5] = 0;
    if (b->xfer_received == b->xfer_total) {
        b->xfer = 0;
        if (np_crc32_update(0, b->staging, total) != tcrc) {
            DETAIL("whole-state CRC mismatch; state unchanged");
            return NP_ERR_OBJECT_CRC;
        }
        if (layer == NP_LEARN_STATE_LAYER) {
            int err = np_model_learn_state_write(&b->model, b->staging, total);
            if (err) {
                DETAIL("%s", b->model.detail);
                return err;
            }
        } else {
            memcpy(b->model.layers[layer].w, b->staging, total);
        }
        b->reply[5] = 1;
    }
    np_wr_u32(b->reply + 1, b->xfer_received);
    *out_len = 6;
    return NP_ERR_OK;
}

static int h_learn(np_board_t *b, const np_frame_t *f)
{
    const uint8_t *p = f->payload;
    int err;
    if (f->length != 20) {
        DETAIL("LEARN_ENABLE payload is 20 bytes");
        return NP_ERR_BAD_LENGTH;
    }
    err = np_model_learn(&b->model, p[0], p[1], np_rd_u32(p + 2), np_rd_u16(p + 6),
                         np_rd_u16(p + 8), np_rd_u16(p + 10), np_rd_u16(p + 12),
                         np_rd_u16(p + 14), np_rd_u16(p + 16), (int8_t)(p[18] < 128 ? p[18] : p[18] - 256),
                         (int8_t)(p[19] < 128 ? p[19] : p[19] - 256));
    if (err) DETAIL("%s", b->model.detail);
    return err;
}

static int dispatch(np_board_t *b, const np_frame_t *f, size_t *out_len)
{
    size_t i;
    *out_len = 1;
    switch (f->type) {
    case NP_MSG_HELLO:
    case NP_MSG_CAPS:
        *out_len = 1 + put_caps(b, b->reply + 1);
        return NP_ERR_OK;
    case NP_MSG_LOAD_BUNDLE: return h_load(b, f, out_len);
    case NP_MSG_INFER:
    case NP_MSG_STREAM: return h_run(b, f, out_len);
    case NP_MSG_LEARN_ENABLE: return h_learn(b, f);
    case NP_MSG_GET_STATE: return h_get_state(b, f, out_len);
    case NP_MSG_SET_STATE: return h_set_state(b, f, out_len);
    case NP_MSG_STATS:
        b->stats[NP_STAT_UPTIME_MS] = np_hal_millis();
        b->stats[NP_STAT_LEARN_UPDATES] = b->model.learn_updates;
        b->stats[NP_STAT_ARENA_USED] = b->model.loaded ? (uint32_t)b->model.arena_used : 0;
        for (i = 0; i < NP_STATS_COUNT; i++) np_wr_u32(b->reply + 1 + 4 * i, b->stats[i]);
        *out_len = 1 + 4 * NP_STATS_COUNT;
        return NP_ERR_OK;
    case NP_MSG_RESET:
        if (f->length != 1 || f->payload[0] > 2) {
            DETAIL("RESET takes one byte: 0 state, 1 unload, 2 counters");
            return NP_ERR_BAD_ARG;
        }
        if (f->payload[0] == 0) np_model_reset_state(&b->model);
        if (f->payload[0] == 1) np_model_unload(&b->model);
        if (f->payload[0] == 2) memset(b->stats, 0, sizeof b->stats);
        return NP_ERR_OK;
    case NP_MSG_PING:
        if (f->length > NP_MAX_PAYLOAD - 1) {
            DETAIL("PING payload too long to echo");
            return NP_ERR_TOO_LARGE;
        }
        memcpy(b->reply + 1, f->payload, f->length);
        *out_len = 1 + (size_t)f->length;
        b->stats[NP_STAT_PINGS]++;
        return NP_ERR_OK;
    default:
        DETAIL("unknown message type 0x%02x", f->type);
        return NP_ERR_UNKNOWN_TYPE;
    }
}

static uint32_t request_key(const np_frame_t *f)
{
    uint8_t h[3];
    h[0] = f->type;
    np_wr_u16(h + 1, f->seq);
    return np_crc32_update(np_crc32_update(0, h, 3), f->payload, f->length);
}

static void handle_frame(np_board_t *b, const uint8_t *enc, size_t enc_len)
{
    np_frame_t f;
    int err;
    size_t n = 0;
    uint32_t key;
    memset(&f, 0, sizeof f);
    err = np_frame_decode(enc, enc_len, b->scratch, sizeof b->scratch, &f);
    if (err == NP_ERR_CRC) {
        b->stats[NP_STAT_RX_CRC_ERRORS]++;
        nack_untrusted(b, f.seq, f.type, NP_ERR_CRC, "frame CRC mismatch");
        return;
    }
    if (err) {
        b->stats[NP_STAT_RX_FRAMING_ERRORS]++;
        nack_untrusted(b, 0, 0, NP_ERR_FRAMING, "undecodable frame");
        return;
    }
    b->stats[NP_STAT_RX_FRAMES]++;
    if (f.version != NP_PROTOCOL_VERSION) {
        char msg[48];
        snprintf(msg, sizeof msg, "board speaks protocol version %d", NP_PROTOCOL_VERSION);
        nack_untrusted(b, f.seq, f.type, NP_ERR_VERSION, msg);
        return;
    }
    if (f.flags & NP_FLAG_UNSOLICITED || f.type == NP_MSG_ACK || f.type == NP_MSG_NACK ||
        f.type == NP_MSG_LOG)
        return; /* replies travel board -> host only; ignore echoes */
    key = request_key(&f);
    if (f.type != NP_MSG_HELLO && b->have_last && f.seq == b->last_seq &&
        f.type == b->last_type && key == b->last_crc) {
        /* a retransmit or duplicate: answer again, never execute twice */
        b->stats[NP_STAT_RX_DUPLICATES]++;
        np_hal_write(b->tx, b->tx_len);
        b->stats[NP_STAT_TX_FRAMES]++;
        return;
    }
    b->detail[0] = 0;
    b->reply[0] = f.type;
    err = dispatch(b, &f, &n);
    b->stats[NP_STAT_EXECUTED]++;
    if (err == NP_ERR_OK) {
        b->tx_len = np_frame_encode(NP_MSG_ACK, 0, f.seq, b->reply, n, NULL, 0, b->tx, sizeof b->tx);
    } else {
        size_t dl = strlen(b->detail);
        b->reply[1] = (uint8_t)err;
        b->stats[NP_STAT_NACKS]++;
        b->tx_len = np_frame_encode(NP_MSG_NACK, 0, f.seq, b->reply, 2, (const uint8_t *)b->detail,
                                    dl, b->tx, sizeof b->tx);
    }
    b->have_last = b->tx_len != 0;
    b->last_seq = f.seq;
    b->last_type = f.type;
    b->last_crc = key;
    if (b->tx_len) {
        np_hal_write(b->tx, b->tx_len);
        b->stats[NP_STAT_TX_FRAMES]++;
    }
    if (f.type == NP_MSG_LOAD_BUNDLE && err == NP_ERR_OK && b->model.loaded) {
        char msg[64];
        snprintf(msg, sizeof msg, "model loaded: %u layers, %u -> %u", b->model.n_layers,
                 b->model.in_size, b->model.out_size);
        np_board_log(b, 1, msg);
    }
}

int np_board_boot(np_board_t *b, uint8_t *arena, size_t arena_cap, uint8_t *staging,
                  size_t staging_cap, const uint8_t *image, size_t image_len)
{
    np_board_init(b, arena, arena_cap, staging, staging_cap);
    return image_len ? np_board_load_image(b, image, image_len) : NP_ERR_OK;
}

int np_board_load_image(np_board_t *b, const uint8_t *img, size_t len)
{
    int err = np_model_load(&b->model, img, len);
    if (err == NP_ERR_OK) b->stats[NP_STAT_MODEL_LOADS]++;
    return err;
}

void np_board_rx(np_board_t *b, const uint8_t *data, size_t len)
{
    size_t i;
    b->stats[NP_STAT_RX_BYTES] += (uint32_t)len;
    for (i = 0; i < len; i++) {
        uint8_t c = data[i];
        if (c == 0) {
            if (!b->rx_discard && b->rx_len > 0) handle_frame(b, b->rx, b->rx_len);
            b->rx_len = 0;
            b->rx_discard = 0;
            continue;
        }
        if (b->rx_discard) continue;
        if (b->rx_len >= sizeof b->rx) {
            /* longer than any valid frame: drop until the next delimiter (resync) */
            b->rx_discard = 1;
            b->rx_len = 0;
            b->stats[NP_STAT_RX_OVERFLOWS]++;
            continue;
        }
        b->rx[b->rx_len++] = c;
    }
}
