/* hal_stm32.c -- port for STM32 with the CubeMX HAL drivers (e.g. NUCLEO-H743ZI2: USART3 on
 * the ST-LINK virtual COM port), at NP_BAUD 8N1 with the RX interrupt.
 *
 * In the CubeMX project (what `neuroplast board project --target stm32cube` describes):
 * enable USART3 with its global interrupt; call np_port_setup() after MX_USART3_UART_Init()
 * and np_port_poll() from the main loop. The RX interrupt stores bytes in a ring buffer;
 * np_board_rx() runs in thread context (never in the ISR), because INFER can take
 * milliseconds. The DWT cycle counter feeds the board's STEP_CYCLES counter. */
#include "main.h" /* CubeMX: pulls in stm32xxxx_hal.h (and CMSIS: DWT, CoreDebug) */

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
#define NP_BAUD 115200 /* boards/profiles/stm32h7.toml [serial] baud and the CLI default */
#endif
#ifndef NP_ARENA_BYTES
#define NP_ARENA_BYTES (128u * 1024u)
#endif
#ifndef NP_STAGING_BYTES
#define NP_STAGING_BYTES (64u * 1024u)
#endif

extern UART_HandleTypeDef huart3;
static uint8_t arena[NP_ARENA_BYTES] __attribute__((aligned(8)));
static uint8_t staging[NP_STAGING_BYTES] __attribute__((aligned(8)));
static np_board_t board;
static volatile uint8_t ring[1024];
static volatile uint16_t head, tail;
static uint8_t rx_byte;

void np_hal_write(const uint8_t *data, size_t len)
{
    HAL_UART_Transmit(&huart3, (uint8_t *)data, (uint16_t)len, 1000);
}
uint32_t np_hal_millis(void) { return HAL_GetTick(); }
const char *np_hal_board_name(void) { return "stm32"; }
uint32_t np_hal_cycles(void) { return DWT->CYCCNT; }

void HAL_UART_RxCpltCallback(UART_HandleTypeDef *h)
{
    uint16_t next = (uint16_t)((head + 1u) % sizeof ring);
    if (next != tail) { /* full: drop; the CRC catches it */
        ring[head] = rx_byte;
        head = next;
    }
    HAL_UART_Receive_IT(h, &rx_byte, 1);
}

void np_port_setup(void)
{
    huart3.Init.BaudRate = NP_BAUD; /* whatever CubeMX chose, speak the profile's rate */
    HAL_UART_Init(&huart3);
    CoreDebug->DEMCR |= CoreDebug_DEMCR_TRCENA_Msk; /* start the DWT cycle counter */
    DWT->CYCCNT = 0;
    DWT->CTRL |= DWT_CTRL_CYCCNTENA_Msk;
    (void)np_board_boot(&board, arena, sizeof arena, staging, sizeof staging, np_model_image,
                        np_model_image_len);
    HAL_UART_Receive_IT(&huart3, &rx_byte, 1);
}

void np_port_poll(void)
{
    while (tail != head) {
        uint8_t b = ring[tail];
        tail = (uint16_t)((tail + 1u) % sizeof ring);
        np_board_rx(&board, &b, 1);
    }
}
