/* hal_arduino.c -- port stub for Arduino cores (AVR with >= 16 KiB RAM, SAMD, nRF52840
 * "Nano 33 BLE", Renesas "UNO R4"). Compiled only when ARDUINO is defined; on the host
 * `make ports` checks that the file is well-formed C99.
 *
 * How to port:
 *   1. Copy protocol_gen.h, np_link.[ch], np_model.[ch], np_board.[ch], np_hal.h and this
 *      file into the sketch folder (rename this file .cpp if the core insists).
 *   2. In setup(): Serial.begin(115200); np_port_setup();
 *   3. In loop():  np_port_poll();
 *   4. Size NP_ARENA_BYTES / NP_STAGING_BYTES to the board's RAM (CAPS reports them).
 * Serial.write() blocks when the TX buffer is full, which the stop-and-wait protocol
 * tolerates; no interrupt code is needed. */
#ifdef ARDUINO
#include <Arduino.h>

#include "np_board.h"
#include "np_hal.h"

#ifndef NP_ARENA_BYTES
#define NP_ARENA_BYTES (32u * 1024u)
#endif
#ifndef NP_STAGING_BYTES
#define NP_STAGING_BYTES (16u * 1024u)
#endif

static uint8_t arena[NP_ARENA_BYTES];
static uint8_t staging[NP_STAGING_BYTES];
static np_board_t board;

void np_hal_write(const uint8_t *data, size_t len) { Serial.write(data, len); }
uint32_t np_hal_millis(void) { return (uint32_t)millis(); }
const char *np_hal_board_name(void) { return "arduino"; }

void np_port_setup(void) { np_board_init(&board, arena, sizeof arena, staging, sizeof staging); }

void np_port_poll(void)
{
    uint8_t buf[64];
    size_t n = 0;
    while (Serial.available() > 0 && n < sizeof buf) buf[n++] = (uint8_t)Serial.read();
    if (n) np_board_rx(&board, buf, n);
}
#else
typedef int np_hal_arduino_unused; /* ISO C forbids an empty translation unit */
#endif
