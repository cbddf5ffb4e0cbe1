/* hal_arduino.cpp -- port for Arduino cores (Nano 33 BLE / nRF52840, SAMD, RP2040, UNO R4,
 * ESP32 Arduino; AVR needs >= 16 KiB RAM). C++ because Arduino's Serial is a C++ object;
 * the firmware core is C99 with extern "C" headers.
 *
 * Sketch (what `neuroplast board project --target arduino` writes):
 *     #include "np_port.h"
 *     void setup() { np_port_setup(); }
 *     void loop()  { np_port_poll(); }
 * with the firmware sources, this file and np_model_image.c (a model compiled in, or empty)
 * in the sketch folder. Size NP_ARENA_BYTES / NP_STAGING_BYTES to the board's RAM (CAPS
 * reports them). Serial.write() blocks when the TX buffer is full, which the stop-and-wait
 * protocol tolerates; no interrupt code is needed. */
#include <Arduino.h>

#if defined(__has_include)
#if __has_include("np_config.h")
#include "np_config.h" /* buffer sizes of a generated project (neuroplast board project) */
#endif
#endif
#include "np_board.h"
#include "np_hal.h"
#include "np_model_image.h"
#include "np_port.h"

#ifndef NP_BAUD
#define NP_BAUD 115200 /* boards/profiles/<board>.toml [serial] baud and the CLI default */
#endif
#ifndef NP_ARENA_BYTES
#define NP_ARENA_BYTES (96u * 1024u)
#endif
#ifndef NP_STAGING_BYTES
#define NP_STAGING_BYTES (48u * 1024u)
#endif

static uint8_t arena[NP_ARENA_BYTES] __attribute__((aligned(8)));
static uint8_t staging[NP_STAGING_BYTES] __attribute__((aligned(8)));
static np_board_t board;

void np_hal_write(const uint8_t *data, size_t len) { Serial.write(data, len); }
uint32_t np_hal_millis(void) { return (uint32_t)millis(); }
const char *np_hal_board_name(void) { return "arduino"; }
uint32_t np_hal_cycles(void) { return 0; } /* no portable cycle counter across cores */

void np_port_setup(void)
{
    Serial.begin(NP_BAUD);
    (void)np_board_boot(&board, arena, sizeof arena, staging, sizeof staging, np_model_image,
                        np_model_image_len);
}

void np_port_poll(void)
{
    uint8_t buf[64];
    size_t n = 0;
    while (Serial.available() > 0 && n < sizeof buf) buf[n++] = (uint8_t)Serial.read();
    if (n) np_board_rx(&board, buf, n);
}
