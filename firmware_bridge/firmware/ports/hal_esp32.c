/* hal_esp32.c -- port stub for ESP32 / ESP32-S3 with ESP-IDF (UART0 or USB-Serial-JTAG).
 * Compiled only when ESP_PLATFORM is defined.
 *
 * main/CMakeLists.txt: idf_component_register(SRCS "hal_esp32.c" "np_link.c" "np_model.c"
 *                      "np_board.c" INCLUDE_DIRS ".")
 * Disable the console on UART0 (CONFIG_ESP_CONSOLE_NONE) so logs do not interleave with
 * frames; the firmware's own LOG messages go through the protocol instead.
 * With PSRAM (ESP32-S3 R8) the arena may be placed there: EXT_RAM_BSS_ATTR. */
#ifdef ESP_PLATFORM
#include "driver/uart.h"
#include "esp_timer.h"
#include "freertos/FreeRTOS.h"

#include "np_board.h"
#include "np_hal.h"

#define NP_UART UART_NUM_0
static uint8_t arena[128u * 1024u];
static uint8_t staging[64u * 1024u];
static np_board_t board;

void np_hal_write(const uint8_t *data, size_t len) { uart_write_bytes(NP_UART, (const char *)data, len); }
uint32_t np_hal_millis(void) { return (uint32_t)(esp_timer_get_time() / 1000); }
const char *np_hal_board_name(void) { return "esp32"; }

void app_main(void)
{
    uint8_t buf[256];
    uart_config_t cfg = {.baud_rate = 921600, .data_bits = UART_DATA_8_BITS, .parity = UART_PARITY_DISABLE,
                         .stop_bits = UART_STOP_BITS_1, .flow_ctrl = UART_HW_FLOWCTRL_DISABLE};
    uart_driver_install(NP_UART, 4096, 4096, 0, NULL, 0);
    uart_param_config(NP_UART, &cfg);
    np_board_init(&board, arena, sizeof arena, staging, sizeof staging);
    for (;;) {
        int n = uart_read_bytes(NP_UART, buf, sizeof buf, pdMS_TO_TICKS(10));
        if (n > 0) np_board_rx(&board, buf, (size_t)n);
    }
}
#else
typedef int np_hal_esp32_unused;
#endif
