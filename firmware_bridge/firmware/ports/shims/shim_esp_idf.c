/* Link stubs for the ESP-IDF shim (CI builds only); IDF's startup calls app_main. */
#include "driver/uart.h"
#include "esp_cpu.h"
#include "esp_timer.h"

void app_main(void);

esp_err_t uart_driver_install(uart_port_t uart_num, int rx_buffer_size, int tx_buffer_size,
                              int queue_size, QueueHandle_t *uart_queue, int intr_alloc_flags)
{
    (void)uart_num, (void)rx_buffer_size, (void)tx_buffer_size, (void)queue_size;
    (void)uart_queue, (void)intr_alloc_flags;
    return 0;
}
esp_err_t uart_param_config(uart_port_t uart_num, const uart_config_t *uart_config)
{
    (void)uart_num;
    return uart_config->baud_rate > 0 ? 0 : -1;
}
int uart_write_bytes(uart_port_t uart_num, const void *src, size_t size)
{
    (void)uart_num, (void)src;
    return (int)size;
}
int uart_read_bytes(uart_port_t uart_num, void *buf, uint32_t length, TickType_t ticks_to_wait)
{
    (void)uart_num, (void)buf, (void)length, (void)ticks_to_wait;
    return 0;
}
int64_t esp_timer_get_time(void) { return 0; }
esp_cpu_cycle_count_t esp_cpu_get_cycle_count(void) { return 0; }

int main(void)
{
    app_main();
    return 0;
}
