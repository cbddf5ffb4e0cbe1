/* hal_rp2040.c -- port stub for the Raspberry Pi Pico / RP2040 with the pico-sdk
 * (USB CDC via pico_stdio_usb). Compiled only when PICO_BOARD is defined.
 *
 * CMakeLists.txt:
 *   add_executable(np_board hal_rp2040.c ../np_link.c ../np_model.c ../np_board.c)
 *   target_link_libraries(np_board pico_stdlib)
 *   pico_enable_stdio_usb(np_board 1)  pico_enable_stdio_uart(np_board 0)
 * stdio must be binary-clean: disable CRLF translation (PICO_STDIO_ENABLE_CRLF_SUPPORT=0).
 * 264 KiB SRAM: the defaults below leave > 100 KiB for the stack and USB. */
#ifdef PICO_BOARD
#include "pico/stdlib.h"

#include "np_board.h"
#include "np_hal.h"

static uint8_t arena[96u * 1024u];
static uint8_t staging[48u * 1024u];
static np_board_t board;

void np_hal_write(const uint8_t *data, size_t len)
{
    size_t i;
    for (i = 0; i < len; i++) putchar_raw(data[i]);
}
uint32_t np_hal_millis(void) { return to_ms_since_boot(get_absolute_time()); }
const char *np_hal_board_name(void) { return "rp2040"; }

int main(void)
{
    stdio_init_all();
    np_board_init(&board, arena, sizeof arena, staging, sizeof staging);
    for (;;) {
        int c = getchar_timeout_us(1000);
        if (c >= 0) {
            uint8_t b = (uint8_t)c;
            np_board_rx(&board, &b, 1);
        }
    }
}
#else
typedef int np_hal_rp2040_unused;
#endif
