/* np_link.c -- see np_link.h. Every index is checked against its buffer's capacity. */
#include "np_link.h"

#include <string.h>

uint16_t np_rd_u16(const uint8_t *p) { return (uint16_t)(p[0] | ((uint16_t)p[1] << 8)); }

uint32_t np_rd_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

int32_t np_rd_i32(const uint8_t *p)
{
    uint32_t u = np_rd_u32(p);
    /* two's complement without implementation-defined conversion */
    if (u <= 0x7FFFFFFFu) return (int32_t)u;
    return -(int32_t)(0xFFFFFFFFu - u) - 1;
}

void np_wr_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v & 0xFF);
    p[1] = (uint8_t)(v >> 8);
}

void np_wr_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v & 0xFF);
    p[1] = (uint8_t)((v >> 8) & 0xFF);
    p[2] = (uint8_t)((v >> 16) & 0xFF);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t crc_table[256];
static int crc_ready = 0;

static void crc_init(void)
{
    uint32_t i, k, c;
    for (i = 0; i < 256; i++) {
        c = i;
        for (k = 0; k < 8; k++) c = (c & 1u) ? (0xEDB88320u ^ (c >> 1)) : (c >> 1);
        crc_table[i] = c;
    }
    crc_ready = 1;
}

uint32_t np_crc32_update(uint32_t crc, const uint8_t *data, size_t len)
{
    size_t i;
    if (!crc_ready) crc_init();
    crc = ~crc;
    for (i = 0; i < len; i++) crc = crc_table[(crc ^ data[i]) & 0xFFu] ^ (crc >> 8);
    return ~crc;
}

size_t np_cobs_encode(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
    /* canonical COBS: a full block (code 0xFF) is closed only when more input follows */
    size_t o = 1, code_idx = 0, i;
    uint8_t code = 1;
    if (cap < 1) return 0;
    for (i = 0; i < len; i++) {
        if (code == 0xFF) {
            out[code_idx] = code;
            if (o >= cap) return 0;
            code_idx = o++;
            code = 1;
        }
        if (in[i] == 0) {
            out[code_idx] = code;
            if (o >= cap) return 0;
            code_idx = o++;
            code = 1;
        } else {
            if (o >= cap) return 0;
            out[o++] = in[i];
            code++;
        }
    }
    out[code_idx] = code;
    return o;
}

long np_cobs_decode(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
    size_t i = 0, o = 0, k;
    while (i < len) {
        uint8_t code = in[i];
        if (code == 0) return -1;
        if ((size_t)code - 1 > len - i - 1) return -1; /* block runs past the end */
        for (k = 1; k < code; k++) {
            uint8_t b = in[i + k];
            if (b == 0 || o >= cap) return -1;
            out[o++] = b;
        }
        i += code;
        if (code != 0xFF && i < len) {
            if (o >= cap) return -1;
            out[o++] = 0;
        }
    }
    return (long)o;
}

int np_frame_decode(const uint8_t *enc, size_t enc_len, uint8_t *scratch, size_t scratch_cap,
                    np_frame_t *frame)
{
    long n;
    size_t body;
    uint32_t crc;
    if (enc_len > NP_MAX_ENCODED_FRAME) return NP_ERR_FRAMING;
    n = np_cobs_decode(enc, enc_len, scratch, scratch_cap);
    if (n < (long)(NP_HEADER_SIZE + NP_CRC_SIZE)) return NP_ERR_FRAMING;
    body = (size_t)n - NP_CRC_SIZE;
    frame->version = scratch[0];
    frame->type = scratch[1];
    frame->flags = scratch[2];
    frame->seq = np_rd_u16(scratch + 3);
    frame->length = np_rd_u16(scratch + 5);
    if ((size_t)frame->length != body - NP_HEADER_SIZE) return NP_ERR_FRAMING;
    if (frame->length > NP_MAX_PAYLOAD) return NP_ERR_FRAMING;
    crc = np_rd_u32(scratch + body);
    if (crc != np_crc32_update(0, scratch, body)) return NP_ERR_CRC;
    frame->payload = scratch + NP_HEADER_SIZE;
    return NP_ERR_OK;
}

/* Streaming COBS encoder state: lets np_frame_encode stuff header, two payload parts
 * and the CRC without first copying them into one buffer. */
typedef struct {
    uint8_t *out;
    size_t cap, o, code_idx;
    uint8_t code;
    int overflow;
} cobs_stream_t;

static void cs_put(cobs_stream_t *s, uint8_t b)
{
    if (s->overflow) return;
    if (s->code == 0xFF) { /* full block and more input: open the next one */
        s->out[s->code_idx] = s->code;
        if (s->o >= s->cap) { s->overflow = 1; return; }
        s->code_idx = s->o++;
        s->code = 1;
    }
    if (b == 0) {
        s->out[s->code_idx] = s->code;
        if (s->o >= s->cap) { s->overflow = 1; return; }
        s->code_idx = s->o++;
        s->code = 1;
        return;
    }
    if (s->o >= s->cap) { s->overflow = 1; return; }
    s->out[s->o++] = b;
    s->code++;
}

static void cs_write(cobs_stream_t *s, const uint8_t *p, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) cs_put(s, p[i]);
}

size_t np_frame_encode(uint8_t type, uint8_t flags, uint16_t seq, const uint8_t *pa, size_t la,
                       const uint8_t *pb, size_t lb, uint8_t *out, size_t cap)
{
    uint8_t hdr[NP_HEADER_SIZE], crcb[NP_CRC_SIZE];
    uint32_t crc;
    cobs_stream_t s;
    if (la > NP_MAX_PAYLOAD || lb > NP_MAX_PAYLOAD - la || cap < 2) return 0;
    hdr[0] = NP_PROTOCOL_VERSION;
    hdr[1] = type;
    hdr[2] = flags;
    np_wr_u16(hdr + 3, seq);
    np_wr_u16(hdr + 5, (uint16_t)(la + lb));
    crc = np_crc32_update(0, hdr, sizeof hdr);
    if (la) crc = np_crc32_update(crc, pa, la);
    if (lb) crc = np_crc32_update(crc, pb, lb);
    np_wr_u32(crcb, crc);
    s.out = out;
    s.cap = cap - 1; /* keep room for the delimiter */
    s.o = 1;
    s.code_idx = 0;
    s.code = 1;
    s.overflow = 0;
    cs_write(&s, hdr, sizeof hdr);
    if (la) cs_write(&s, pa, la);
    if (lb) cs_write(&s, pb, lb);
    cs_write(&s, crcb, sizeof crcb);
    if (s.overflow) return 0;
    out[s.code_idx] = s.code;
    out[s.o++] = 0;
    return s.o;
}
