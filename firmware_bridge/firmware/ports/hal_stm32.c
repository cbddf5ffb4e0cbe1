/* hal_stm32.c -- port stub for STM32 (HAL drivers from STM32CubeMX; e.g. STM32H7 /
 * STM32L4 with USART3 on the ST-LINK virtual COM port). Compiled only when USE_HAL_DRIVER
 * is defined (CubeMX sets it).
 *
 * In CubeMX: enable the USART at 921600 8N1 with its RX interrupt; call np_port_setup()
 * after MX_USARTx_UART_Init() and np_port_poll() from the main loop. The RX interrupt
 * stores bytes in a ring buffer; np_board_rx() runs in thread context (never in the ISR),
 * because INFER can take milliseconds. */
#ifdef USE_HAL_DRIVER
#include "main.h" /* CubeMX: pulls in stm32xxxx_hal.h and huart3 */

#include "np_board.h"
#include "np_hal.h"

extern UART_HandleTypeDef huart3;
static uint8_t arena[128u * 1024u];
static uint8_t staging[64u * 1024u];
static np_board_t board;
static volatile uint8_t ring[1024];
static volatile uint16_t head, tail;
static uint8_t rx_byte;

void np_hal_write(const uint8_t *data, size_t len) { HAL_UART_Transmit(&huart3, (uint8_t *)data, (uint16_t)len, 1000); }
uint32_t np_hal_millis(void) { return HAL_GetTick(); }
const char *np_hal_board_name(void) { return "stm32"; }

void HAL_UART_RxCpltCallback(UART_HandleTypeDef *h)
{
    uint16_t next = (uint16_t)((head + 1u) % sizeof ring);
    if (next != tail) { ring[head] = rx_byte; head = next; } /* full: drop; CRC will catch it */
    HAL_UART_Receive_IT(h, &rx_byte, 1);
}

void np_port_setup(void)
{
    np_board_init(&board, arena, sizeof arena, staging, sizeof staging);
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
#else
typedef int np_hal_stm32_unused;
#endif
