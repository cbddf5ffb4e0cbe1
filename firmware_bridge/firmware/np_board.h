/* np_board.h -- the board's protocol engine: receive state machine, duplicate detection,
 * request dispatch, chunked transfers, replies. Port-independent; talks to np_hal.h. */
#ifndef NP_BOARD_H
#define NP_BOARD_H

#include <stddef.h>
#include <stdint.h>

#include "np_link.h"
#include "np_model.h"
#include "protocol_gen.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NP_AUX_CAP 160 /* encoded NACK for an undecodable frame, or a LOG line */

typedef struct {
    np_model_t model;
    uint8_t *staging; /* receives model images / SET_STATE objects before they are checked */
    size_t staging_cap;
    /* LOAD_BUNDLE / SET_STATE transfer in progress */
    int xfer; /* 0 none, NP_MSG_LOAD_BUNDLE or NP_MSG_SET_STATE */
    uint32_t xfer_total, xfer_crc, xfer_received;
    uint8_t xfer_layer;
    /* receive state */
    uint8_t rx[NP_MAX_ENCODED_FRAME];
    size_t rx_len;
    int rx_discard;
    uint8_t scratch[NP_MAX_FRAME];
    /* reply being built and the cached encoded reply to the last request */
    uint8_t reply[NP_MAX_PAYLOAD];
    uint8_t tx[NP_MAX_ENCODED_FRAME + 1];
    size_t tx_len;
    uint8_t aux[NP_AUX_CAP];
    int have_last;
    uint16_t last_seq;
    uint8_t last_type;
    uint32_t last_crc;
    uint32_t stats[NP_STATS_COUNT];
    char detail[NP_DETAIL_LEN];
} np_board_t;

void np_board_init(np_board_t *b, uint8_t *arena, size_t arena_cap, uint8_t *staging,
                   size_t staging_cap);

/* Feed received bytes; complete frames are handled and answered via np_hal_write. */
void np_board_rx(np_board_t *b, const uint8_t *data, size_t len);

/* Send an unsolicited LOG frame (level 0 debug .. 3 error). */
void np_board_log(np_board_t *b, uint8_t level, const char *text);

/* Load a model image held in memory (e.g. compiled into flash by `neuroplast board
 * project`); the image is copied into the arena. Returns NP_ERR_OK or the parse error
 * (reason in b->model.detail). */
int np_board_load_image(np_board_t *b, const uint8_t *img, size_t len);

/* What a port calls at start: np_board_init, then load `image` if it is not empty (a model
 * compiled into flash; ports pass np_model_image / np_model_image_len). */
int np_board_boot(np_board_t *b, uint8_t *arena, size_t arena_cap, uint8_t *staging,
                  size_t staging_cap, const uint8_t *image, size_t image_len);

#ifdef __cplusplus
}
#endif

#endif /* NP_BOARD_H */
