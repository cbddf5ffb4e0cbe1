/* np_link.h -- frame layer: CRC-32, COBS, header encode/decode, receive state machine.
 * Portable C99, no allocation, no libc beyond <stddef.h>/<stdint.h>/<string.h>. */
#ifndef NP_LINK_H
#define NP_LINK_H

#include <stddef.h>
#include <stdint.h>

#include "protocol_gen.h"

#ifdef __cplusplus
extern "C" {
#endif

/* CRC-32/ISO-HDLC (zlib): poly 0xEDB88320 reflected, init/xorout 0xFFFFFFFF.
 * np_crc32_update(0, ...) starts a new CRC; chain calls to extend it. */
uint32_t np_crc32_update(uint32_t crc, const uint8_t *data, size_t len);

/* COBS encode `len` bytes into `out` (capacity `cap`); returns the encoded length
 * (no delimiter) or 0 if `out` is too small. */
size_t np_cobs_encode(const uint8_t *in, size_t len, uint8_t *out, size_t cap);

/* COBS decode; returns the decoded length or -1 on malformed input / overflow. */
long np_cobs_decode(const uint8_t *in, size_t len, uint8_t *out, size_t cap);

typedef struct {
    uint8_t version;
    uint8_t type;
    uint8_t flags;
    uint16_t seq;
    uint16_t length;
    const uint8_t *payload; /* points into the caller's decode buffer */
} np_frame_t;

/* Result codes of np_frame_decode (match the NP_ERR_* numbering). */
#define NP_DECODE_OK 0

/* Decode a COBS body (no delimiter) into `frame`, using `scratch` (>= NP_MAX_FRAME).
 * Returns NP_ERR_OK, NP_ERR_FRAMING or NP_ERR_CRC. The version is NOT checked here. */
int np_frame_decode(const uint8_t *enc, size_t enc_len, uint8_t *scratch, size_t scratch_cap,
                    np_frame_t *frame);

/* Encode header+payload+crc, COBS-stuff into `out` and append the 0x00 delimiter.
 * `payload` may be split in two parts (a, b) to avoid copies. Returns bytes written
 * or 0 if the payload is too long or `out` too small. */
size_t np_frame_encode(uint8_t type, uint8_t flags, uint16_t seq, const uint8_t *pa, size_t la,
                       const uint8_t *pb, size_t lb, uint8_t *out, size_t cap);

/* Little-endian helpers (unaligned, endian-independent). */
uint16_t np_rd_u16(const uint8_t *p);
uint32_t np_rd_u32(const uint8_t *p);
int32_t np_rd_i32(const uint8_t *p);
void np_wr_u16(uint8_t *p, uint16_t v);
void np_wr_u32(uint8_t *p, uint32_t v);

#ifdef __cplusplus
}
#endif

#endif /* NP_LINK_H */
