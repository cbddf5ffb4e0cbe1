/* hal_rp2040.c -- port for the Raspberry Pi Pico / RP2040 with the pico-sdk, over USB CDC
 * (pico_stdio_usb; the baud rate is ignored on USB).
 *
 * CMakeLists.txt (what `neuroplast board project --target pico` writes):
 *     add_executable(np_board hal_rp2040.c np_link.c np_kernels.c np_model.c np_board.c
 *                    np_model_image.c)
 *     target_link_libraries(np_board pico_stdlib)
 *     pico_enable_stdio_usb(np_board 1)  pico_enable_stdio_uart(np_board 0)
 * stdio must be binary-clean: PICO_STDIO_ENABLE_CRLF_SUPPORT=0. 264 KiB SRAM: the defaults
 * below leave > 100 KiB for the stack and USB. */
#include "pico/stdlib.h"

#if defined(__has_include)
#if __has_include("np_config.h")
#include "np_config.h" /* buffer sizes of a generated project (neuroplast board project) */
#endif
#endif
#include "np_board.h"
#include "np_hal.h"
#include "np_model_image.h"

#ifndef NP_ARENA_BYTES
#define NP_ARENA_BYTES (96u * 1024u)
#endif
#ifndef NP_STAGING_BYTES
#define NP_STAGING_BYTES (48u * 1024u)
#endif

static uint8_t arena[NP_ARENA_BYTES] __attribute__((aligned(8)));
static uint8_t staging[NP_STAGING_BYTES] __attribute__((aligned(8)));
static np_board_t board;

void np_hal_write(const uint8_t *data, size_t len)
{
    size_t i;
    for (i = 0; i < len; i++) putchar_raw(data[i]);
}
uint32_t np_hal_millis(void) { return to_ms_since_boot(get_absolute_time()); }
const char *np_hal_board_name(void) { return "rp2040"; }
uint32_t np_hal_cycles(void) { return 0; } /* Cortex-M0+: no DWT cycle counter */

int main(void)
{
    stdio_init_all();
    (void)np_board_boot(&board, arena, sizeof arena, staging, sizeof staging, np_model_image,
                        np_model_image_len);
    for (;;) {
        int c = getchar_timeout_us(1000);
        if (c >= 0) {
            uint8_t b = (uint8_t)c;
            np_board_rx(&board, &b, 1);
        }
    }
}
