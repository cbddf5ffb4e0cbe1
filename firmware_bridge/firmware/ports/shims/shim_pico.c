/* Link stubs for the pico-sdk shim (CI builds only). */
#include "pico/stdlib.h"

bool stdio_init_all(void) { return true; }
int putchar_raw(int c) { return c; }
int getchar_timeout_us(uint32_t timeout_us)
{
    (void)timeout_us;
    return -1;
}
absolute_time_t get_absolute_time(void) { return 0; }
uint32_t to_ms_since_boot(absolute_time_t t) { return (uint32_t)(t / 1000u); }
