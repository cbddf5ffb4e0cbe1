/* Shim of ESP-IDF's esp_timer.h (CI builds only). */
#ifndef NP_SHIM_ESP_TIMER_H
#define NP_SHIM_ESP_TIMER_H
#include <stdint.h>
int64_t esp_timer_get_time(void);
#endif
