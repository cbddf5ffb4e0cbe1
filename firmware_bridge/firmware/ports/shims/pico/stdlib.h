/* Shim of the pico-sdk's pico/stdlib.h, the calls the neuroplast port uses (CI builds only). */
#ifndef NP_SHIM_PICO_STDLIB_H
#define NP_SHIM_PICO_STDLIB_H
#include <stdbool.h>
#include <stdint.h>
typedef uint64_t absolute_time_t;
bool stdio_init_all(void);
int putchar_raw(int c);
int getchar_timeout_us(uint32_t timeout_us);
absolute_time_t get_absolute_time(void);
uint32_t to_ms_since_boot(absolute_time_t t);
#endif
