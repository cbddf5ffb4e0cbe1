/* Link stubs for the STM32 HAL shim and a CubeMX-style main() (CI builds only). */
#include "main.h"
#include "np_port.h"

UART_HandleTypeDef huart3;

HAL_StatusTypeDef HAL_UART_Init(UART_HandleTypeDef *huart) { return huart ? HAL_OK : HAL_ERROR; }
HAL_StatusTypeDef HAL_UART_Transmit(UART_HandleTypeDef *huart, const uint8_t *pData, uint16_t Size,
                                    uint32_t Timeout)
{
    (void)huart, (void)pData, (void)Size, (void)Timeout;
    return HAL_OK;
}
HAL_StatusTypeDef HAL_UART_Receive_IT(UART_HandleTypeDef *huart, uint8_t *pData, uint16_t Size)
{
    (void)huart, (void)pData, (void)Size;
    return HAL_OK;
}
uint32_t HAL_GetTick(void) { return 0; }

int main(void)
{
    /* CubeMX: HAL_Init(); SystemClock_Config(); MX_USART3_UART_Init(); then */
    np_port_setup();
    np_port_poll();
    return 0;
}
