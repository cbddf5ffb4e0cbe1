/* fuzz_frames.c -- feeds random and mutated frames to the board engine (build with
 * `make asan`: AddressSanitizer + UBSan abort on the first memory error or UB).
 *
 *   np_fuzz_asan [N=100000] [SEED=1] [IMAGE_FILE ...]
 *
 * IMAGE_FILEs (model images written by the host, e.g. one per layer kind) join the two
 * built-in images as seeds that generator (3) mutates.
 * Five generators, round robin: (0) random bytes with random delimiters; (1) a valid
 * request with random bit flips / insertions / truncations (fails CRC or COBS);
 * (2) a valid header with a random payload and a *correct* CRC, so the request reaches
 * the message handlers; (3) a mutated model image sent with correct chunk and object
 * CRCs, so it reaches the image parser; (4) a valid INFER/STREAM/LEARN/GET/SET request
 * against whatever model is loaded. Every byte the board writes back must decode as a
 * well-formed frame with a good CRC; otherwise the fuzzer exits 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "np_board.h"
#include "np_hal.h"

static uint8_t arena[64 * 1024];
static uint8_t staging[16 * 1024];
static np_board_t board;
static uint8_t out_buf[NP_MAX_ENCODED_FRAME + 1];
static size_t out_len;
static unsigned long replies, acks, nacks, logs, bad_replies;
static uint32_t rng = 1;

static uint32_t rnd(void) { return np_xorshift32(&rng); }
static uint32_t rnd_below(uint32_t n) { return n ? rnd() % n : 0; }

static void check_reply(const uint8_t *enc, size_t n)
{
    static uint8_t scratch[NP_MAX_FRAME];
    np_frame_t f;
    if (np_frame_decode(enc, n, scratch, sizeof scratch, &f) != NP_ERR_OK) {
        bad_replies++;
        return;
    }
    replies++;
    if (f.type == NP_MSG_ACK) acks++;
    else if (f.type == NP_MSG_NACK) nacks++;
    else if (f.type == NP_MSG_LOG) logs++;
    else bad_replies++;
}

void np_hal_write(const uint8_t *data, size_t len)
{
    size_t i;
    for (i = 0; i < len; i++) {
        if (data[i] == 0) {
            check_reply(out_buf, out_len);
            out_len = 0;
        } else if (out_len < sizeof out_buf) {
            out_buf[out_len++] = data[i];
        } else {
            bad_replies++;
        }
    }
}

uint32_t np_hal_millis(void) { return 0; }
const char *np_hal_board_name(void) { return "fuzz"; }
uint32_t np_hal_cycles(void) { return 0; }

static uint8_t frame[2 * NP_MAX_ENCODED_FRAME + 64];
static uint8_t payload[NP_MAX_PAYLOAD];
#define MAX_SEEDS 32
#define SEED_CAP (16 * 1024)
static uint8_t seeds[MAX_SEEDS][SEED_CAP];
static size_t seed_len[MAX_SEEDS], n_seeds;
static uint16_t seq;

static void send_req(uint8_t type, uint8_t flags, const uint8_t *p, size_t n)
{
    size_t len = np_frame_encode(type, flags, ++seq, p, n, NULL, 0, frame, sizeof frame);
    if (len) np_board_rx(&board, frame, len);
}

static void put_i32(uint8_t *p, int32_t v) { np_wr_u32(p, (uint32_t)v); }

static size_t put_layer_hdr(uint8_t *p, uint8_t kind, uint8_t src, size_t body)
{
    p[0] = kind;
    p[1] = 1;   /* one source */
    p[2] = src; /* 0 = model input, k = layer k-1 */
    p[3] = 0;
    np_wr_u32(p + 4, (uint32_t)body);
    return 8;
}

static size_t put_header(uint8_t *p, uint16_t n_layers, uint16_t in_size, uint16_t out_size)
{
    memcpy(p, NP_IMAGE_MAGIC, 4);
    np_wr_u16(p + 4, NP_IMAGE_VERSION);
    np_wr_u16(p + 6, n_layers);
    np_wr_u16(p + 8, in_size);
    np_wr_u16(p + 10, out_size);
    np_wr_u32(p + 12, 0);
    return 16;
}

/* A valid image: LINEAR 8->6 (16-bit current), LIF 6, LINEAR 6->3 (int8), DELAY 3. */
static size_t make_image(uint8_t *p)
{
    size_t o, i;
    o = put_header(p, 4, 8, 3);
    o += put_layer_hdr(p + o, NP_LAYER_LINEAR, 0, 8 + 16 + 48 + 6 * 9);
    np_wr_u32(p + o, 8); np_wr_u32(p + o + 4, 6); o += 8;
    put_i32(p + o, 3); put_i32(p + o + 4, 0); put_i32(p + o + 8, -32768); put_i32(p + o + 12, 32767); o += 16;
    for (i = 0; i < 48; i++) p[o++] = (uint8_t)rnd();
    for (i = 0; i < 6; i++) { put_i32(p + o, (int32_t)(rnd() % 2001) - 1000); o += 4; }
    for (i = 0; i < 6; i++) { put_i32(p + o, 1073741824 + (int32_t)(rnd() % 1000000)); o += 4; }
    for (i = 0; i < 6; i++) p[o++] = (uint8_t)(int8_t)-2;
    o += put_layer_hdr(p + o, NP_LAYER_LIF, 1, 12 + 6 * 16);
    np_wr_u32(p + o, 6); p[o + 4] = 1; p[o + 5] = 0; np_wr_u16(p + o + 6, 0); put_i32(p + o + 8, 0); o += 12;
    for (i = 0; i < 6; i++) { put_i32(p + o, 29000); o += 4; }
    for (i = 0; i < 6; i++) { put_i32(p + o, 300); o += 4; }
    for (i = 0; i < 6; i++) { put_i32(p + o, 0); o += 4; }
    for (i = 0; i < 6; i++) { put_i32(p + o, 0); o += 4; }
    o += put_layer_hdr(p + o, NP_LAYER_LINEAR, 2, 8 + 16 + 18 + 3 * 9);
    np_wr_u32(p + o, 6); np_wr_u32(p + o + 4, 3); o += 8;
    put_i32(p + o, 0); put_i32(p + o + 4, -5); put_i32(p + o + 8, -128); put_i32(p + o + 12, 127); o += 16;
    for (i = 0; i < 18; i++) p[o++] = (uint8_t)rnd();
    for (i = 0; i < 3; i++) { put_i32(p + o, 7); o += 4; }
    for (i = 0; i < 3; i++) { put_i32(p + o, 1500000000); o += 4; }
    for (i = 0; i < 3; i++) p[o++] = 0;
    o += put_layer_hdr(p + o, NP_LAYER_DELAY, 3, 12 + 6);
    np_wr_u32(p + o, 3); np_wr_u16(p + o + 4, 4); np_wr_u16(p + o + 6, 0); put_i32(p + o + 8, -5); o += 12;
    for (i = 0; i < 3; i++) { np_wr_u16(p + o, (uint16_t)rnd_below(4)); o += 2; }
    return o;
}

/* A second valid image: CONV (groups 2) [2,1,4] -> [4,1,4], DELAY_LINEAR 16 -> 5, LI 5. */
static size_t make_image2(uint8_t *p)
{
    size_t o, i;
    /* c_in h w c_out kh kw sh sw ph pw dh dw ho wo groups 0 */
    static const uint16_t geo[16] = {2, 1, 4, 4, 1, 3, 1, 1, 0, 1, 1, 1, 1, 4, 2, 0};
    o = put_header(p, 3, 8, 5);
    o += put_layer_hdr(p + o, NP_LAYER_CONV, 0, 32 + 16 + 12 + 36);
    for (i = 0; i < 16; i++, o += 2) np_wr_u16(p + o, geo[i]);
    put_i32(p + o, -3); put_i32(p + o + 4, 2); put_i32(p + o + 8, -128); put_i32(p + o + 12, 127); o += 16;
    for (i = 0; i < 12; i++) p[o++] = (uint8_t)rnd();
    for (i = 0; i < 4; i++, o += 4) put_i32(p + o, (int32_t)(rnd() % 201) - 100);
    for (i = 0; i < 4; i++, o += 4) put_i32(p + o, 1200000000);
    for (i = 0; i < 4; i++) p[o++] = (uint8_t)(int8_t)-3;
    o += put_layer_hdr(p + o, NP_LAYER_DELAY_LINEAR, 1, 12 + 16 + 80 + 45 + 160);
    np_wr_u32(p + o, 16); np_wr_u32(p + o + 4, 5); np_wr_u16(p + o + 8, 7); np_wr_u16(p + o + 10, 0); o += 12;
    put_i32(p + o, 2); put_i32(p + o + 4, 0); put_i32(p + o + 8, -32768); put_i32(p + o + 12, 32767); o += 16;
    for (i = 0; i < 80; i++) p[o++] = (uint8_t)rnd();
    for (i = 0; i < 5; i++, o += 4) put_i32(p + o, 11);
    for (i = 0; i < 5; i++, o += 4) put_i32(p + o, 1500000000);
    for (i = 0; i < 5; i++) p[o++] = 2;
    for (i = 0; i < 80; i++, o += 2) np_wr_u16(p + o, (uint16_t)rnd_below(7));
    o += put_layer_hdr(p + o, NP_LAYER_LI, 2, 12 + 40);
    np_wr_u32(p + o, 5); p[o + 4] = 0; p[o + 5] = 0; np_wr_u16(p + o + 6, 0); put_i32(p + o + 8, 0); o += 12;
    for (i = 0; i < 5; i++, o += 4) put_i32(p + o, 30000);
    for (i = 0; i < 5; i++, o += 4) put_i32(p + o, -7);
    return o;
}

static void send_image(const uint8_t *img, size_t len)
{
    size_t off = 0, chunk = 1 + rnd_below(1500);
    uint32_t total_crc = np_crc32_update(0, img, len);
    do {
        size_t n = len - off < chunk ? len - off : chunk;
        np_wr_u32(payload, (uint32_t)off);
        np_wr_u32(payload + 4, (uint32_t)len);
        np_wr_u32(payload + 8, total_crc);
        np_wr_u32(payload + 12, np_crc32_update(0, img + off, n));
        memcpy(payload + 16, img + off, n);
        send_req(NP_MSG_LOAD_BUNDLE, 0, payload, 16 + n);
        off += n;
    } while (off < len);
}

static void mutate(uint8_t *p, size_t *len, size_t cap)
{
    int k, edits = 1 + (int)rnd_below(8);
    for (k = 0; k < edits; k++) {
        uint32_t op = rnd_below(7);
        if (*len == 0) op = 2;
        if (op == 0) p[rnd_below((uint32_t)*len)] ^= (uint8_t)(1u << rnd_below(8));
        else if (op == 1) p[rnd_below((uint32_t)*len)] = (uint8_t)rnd();
        else if (op == 2 && *len < cap) {
            size_t at = rnd_below((uint32_t)*len + 1);
            memmove(p + at + 1, p + at, *len - at);
            p[at] = (uint8_t)rnd();
            (*len)++;
        } else if (op == 3 && *len > 0) {
            size_t at = rnd_below((uint32_t)*len);
            memmove(p + at, p + at + 1, *len - at - 1);
            (*len)--;
        } else if (op == 4) {
            *len = rnd_below((uint32_t)*len + 1);
        } else if (*len >= 4) { /* an "interesting" 16/32-bit value over a field */
            static const uint32_t vals[] = {0u, 1u, 2u, 0x7Fu, 0x80u, 0xFFu, 0x7FFFu, 0x8000u,
                                            0xFFFFu, 0x7FFFFFFFu, 0x80000000u, 0xFFFFFFFFu};
            size_t at = rnd_below((uint32_t)*len - 3);
            uint32_t v = vals[rnd_below(sizeof vals / sizeof vals[0])];
            if (op == 5) np_wr_u16(p + at, (uint16_t)v);
            else np_wr_u32(p + at, v);
        }
    }
}

static const uint8_t kTypes[] = {NP_MSG_HELLO, NP_MSG_CAPS, NP_MSG_LOAD_BUNDLE, NP_MSG_INFER,
                                 NP_MSG_STREAM, NP_MSG_LEARN_ENABLE, NP_MSG_GET_STATE,
                                 NP_MSG_SET_STATE, NP_MSG_STATS, NP_MSG_RESET, NP_MSG_LOG,
                                 NP_MSG_PING, NP_MSG_ACK, NP_MSG_NACK, 0x00, 0x55, 0xFF};

static void valid_request(void)
{
    uint32_t which = rnd_below(6), i;
    size_t n;
    switch (which) {
    case 0: /* dense INFER / STREAM */
        n = 1 + rnd_below(40);
        np_wr_u16(payload, (uint16_t)n);
        for (i = 0; i < n * board.model.in_size && 2 + i < sizeof payload; i++)
            payload[2 + i] = (uint8_t)rnd();
        send_req(rnd() & 1 ? NP_MSG_INFER : NP_MSG_STREAM, (uint8_t)(rnd() & NP_FLAG_RESET_STATE),
                 payload, 2 + i);
        break;
    case 1: { /* event STREAM, sometimes with bad indices */
        size_t o = 2, s, steps = 1 + rnd_below(10);
        np_wr_u16(payload, (uint16_t)steps);
        for (s = 0; s < steps; s++) {
            uint16_t cnt = (uint16_t)rnd_below(6);
            np_wr_u16(payload + o, cnt);
            o += 2;
            for (i = 0; i < cnt; i++, o += 2) np_wr_u16(payload + o, (uint16_t)rnd_below(10));
        }
        send_req(NP_MSG_STREAM, NP_FLAG_EVENTS, payload, o);
        break;
    }
    case 2: /* LEARN_ENABLE on a random layer */
        for (i = 0; i < 20; i++) payload[i] = (uint8_t)rnd();
        payload[0] = (uint8_t)rnd_below(5); /* modes 0..3 and one invalid */
        payload[1] = (uint8_t)rnd_below(5);
        send_req(NP_MSG_LEARN_ENABLE, 0, payload, 20);
        break;
    case 3: /* GET_STATE of weights or of the learning state (0xFF) */
        payload[0] = rnd_below(4) == 0 ? NP_LEARN_STATE_LAYER : (uint8_t)rnd_below(5);
        np_wr_u32(payload + 1, rnd_below(100));
        np_wr_u16(payload + 5, (uint16_t)rnd());
        send_req(NP_MSG_GET_STATE, 0, payload, 7);
        break;
    case 4: { /* SET_STATE (weights or learning state) with right or wrong CRC */
        uint32_t ls = np_model_learn_state_size(&board.model);
        int learn = rnd_below(3) == 0;
        n = learn && ls && ls <= 60 && rnd() & 1 ? ls : rnd_below(60);
        payload[0] = learn ? NP_LEARN_STATE_LAYER : (uint8_t)rnd_below(5);
        np_wr_u32(payload + 1, rnd() & 1 ? 0 : rnd_below(60));
        np_wr_u32(payload + 5, learn && ls && rnd() & 1 ? ls : rnd() & 1 ? 48 : rnd_below(100));
        for (i = 0; i < n; i++) /* odd bytes: trace high bytes, mostly valid (<= 0x7F) */
            payload[13 + i] = (uint8_t)(learn && (i & 1) && rnd() & 1 ? rnd() & 0x7F : rnd());
        np_wr_u32(payload + 9, rnd() & 1 ? np_crc32_update(0, payload + 13, n) : rnd());
        send_req(NP_MSG_SET_STATE, 0, payload, 13 + n);
        break;
    }
    default: /* RESET */
        payload[0] = (uint8_t)rnd_below(4);
        send_req(NP_MSG_RESET, 0, payload, 1 + rnd_below(2));
        break;
    }
}

int main(int argc, char **argv)
{
    unsigned long n = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000ul, it;
    size_t len, i;
    rng = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 10) : 1u;
    if (!rng) rng = 1;
    np_board_init(&board, arena, sizeof arena, staging, sizeof staging);
    seed_len[1] = make_image2(seeds[1]);
    seed_len[0] = make_image(seeds[0]);
    n_seeds = 2;
    for (i = 3; i < (size_t)argc && n_seeds < MAX_SEEDS; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (!f) {
            fprintf(stderr, "fuzz: cannot open %s\n", argv[i]);
            return 2;
        }
        seed_len[n_seeds] = fread(seeds[n_seeds], 1, SEED_CAP, f);
        fclose(f);
        n_seeds++;
    }
    for (i = n_seeds; i-- > 0;) { /* every seed is valid; the first one stays loaded */
        send_image(seeds[i], seed_len[i]);
        if (!board.model.loaded) {
            fprintf(stderr, "fuzz: seed image %lu did not load: %s\n", (unsigned long)i,
                    board.model.detail);
            return 1;
        }
    }
    for (it = 0; it < n; it++) {
        switch (it % 5) {
        case 0: /* random bytes, random delimiters */
            len = rnd_below(3000);
            for (i = 0; i < len; i++) frame[i] = (uint8_t)(rnd_below(8) == 0 ? 0 : rnd());
            frame[len++] = 0;
            np_board_rx(&board, frame, len);
            break;
        case 1: { /* valid frame, then mutated on the wire */
            size_t pl = rnd_below(64);
            for (i = 0; i < pl; i++) payload[i] = (uint8_t)rnd();
            len = np_frame_encode(kTypes[rnd_below(sizeof kTypes)], (uint8_t)rnd(), (uint16_t)rnd(),
                                  payload, pl, NULL, 0, frame, sizeof frame);
            len--; /* drop the delimiter, mutate, re-add */
            mutate(frame, &len, sizeof frame - 1);
            frame[len++] = 0;
            np_board_rx(&board, frame, len);
            break;
        }
        case 2: { /* random payload, correct CRC: reaches the handlers */
            size_t pl = rnd_below(rnd() & 1 ? 40 : NP_MAX_PAYLOAD + 1);
            for (i = 0; i < pl; i++) payload[i] = (uint8_t)rnd();
            send_req(kTypes[rnd_below(sizeof kTypes)], (uint8_t)rnd(), payload, pl);
            break;
        }
        case 3: { /* mutated model image with correct CRCs: reaches the parser */
            static uint8_t img[SEED_CAP + 64];
            size_t which = rnd_below((uint32_t)n_seeds), il = seed_len[which];
            memcpy(img, seeds[which], il);
            if (rnd_below(4)) mutate(img, &il, sizeof img);
            send_image(img, il);
            if (!board.model.loaded && rnd_below(2) == 0) send_image(seeds[which], seed_len[which]);
            break;
        }
        default:
            valid_request();
            break;
        }
    }
    printf("fuzz: %lu inputs, %lu replies (%lu ACK, %lu NACK, %lu LOG = model loads), %lu malformed replies\n", n,
           replies, acks, nacks, logs, bad_replies);
    printf("fuzz: board stats: rx_frames=%lu crc_errors=%lu framing_errors=%lu overflows=%lu\n",
           (unsigned long)board.stats[NP_STAT_RX_FRAMES],
           (unsigned long)board.stats[NP_STAT_RX_CRC_ERRORS],
           (unsigned long)board.stats[NP_STAT_RX_FRAMING_ERRORS],
           (unsigned long)board.stats[NP_STAT_RX_OVERFLOWS]);
    return bad_replies ? 1 : 0;
}
