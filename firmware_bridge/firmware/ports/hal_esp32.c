/* hal_esp32.c -- port for ESP32 / ESP32-S3 with ESP-IDF (v5): UART0 (the USB-UART bridge of
 * the devkits) at NP_BAUD, 8N1.
 *
 * main/CMakeLists.txt (what `neuroplast board project --target idf` writes):
 *     idf_component_register(SRCS "hal_esp32.c" "np_link.c" "np_kernels.c" "np_model.c"
 *                            "np_board.c" "np_model_image.c" INCLUDE_DIRS ".")
 * Disable the console on UART0 (CONFIG_ESP_CONSOLE_NONE, or move it to USB-Serial-JTAG) so
 * logs do not interleave with frames; the firmware's own LOG messages use the protocol.
 * With PSRAM (ESP32-S3 R8) the arena may go there: EXT_RAM_BSS_ATTR. */
#include "driver/uart.h"
#include "esp_cpu.h"
#include "esp_timer.h"
#include "freertos/FreeRTOS.h"

#if defined(__has_include)
#if __has_include("np_config.h")
#include "np_config.h" /* buffer sizes of a generated project (neuroplast board project) */
#endif
#endif
#include "np_board.h"
#include "np_hal.h"
#include "np_model_image.h"

#ifndef NP_BAUD
#define NP_BAUD 115200 /* boards/profiles/esp32s3.toml [serial] baud and the CLI default */
#endif
#ifndef NP_ARENA_BYTES
#define NP_ARENA_BYTES (128u * 1024u)
#endif
#ifndef NP_STAGING_BYTES
#define NP_STAGING_BYTES (64u * 1024u)
#endif
#define NP_UART UART_NUM_0

static uint8_t arena[NP_ARENA_BYTES] __attribute__((aligned(8)));
static uint8_t staging[NP_STAGING_BYTES] __attribute__((aligned(8)));
static np_board_t board;

void app_main(void);

void np_hal_write(const uint8_t *data, size_t len) { uart_write_bytes(NP_UART, (const char *)data, len); }
uint32_t np_hal_millis(void) { return (uint32_t)(esp_timer_get_time() / 1000); }
const char *np_hal_board_name(void) { return "esp32"; }
uint32_t np_hal_cycles(void) { return (uint32_t)esp_cpu_get_cycle_count(); }

void app_main(void)
{
    uint8_t buf[256];
    uart_config_t cfg = {0};
    cfg.baud_rate = NP_BAUD;
    cfg.data_bits = UART_DATA_8_BITS;
    cfg.parity = UART_PARITY_DISABLE;
    cfg.stop_bits = UART_STOP_BITS_1;
    cfg.flow_ctrl = UART_HW_FLOWCTRL_DISABLE;
    uart_driver_install(NP_UART, 4096, 4096, 0, NULL, 0);
    uart_param_config(NP_UART, &cfg);
    (void)np_board_boot(&board, arena, sizeof arena, staging, sizeof staging, np_model_image,
                        np_model_image_len);
    for (;;) {
        int n = uart_read_bytes(NP_UART, buf, sizeof buf, pdMS_TO_TICKS(10));
        if (n > 0) np_board_rx(&board, buf, (size_t)n);
    }
}
