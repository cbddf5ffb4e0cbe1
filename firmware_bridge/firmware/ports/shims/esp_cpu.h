/* Shim of ESP-IDF v5's esp_cpu.h (CI builds only). */
#ifndef NP_SHIM_ESP_CPU_H
#define NP_SHIM_ESP_CPU_H
#include <stdint.h>
typedef uint32_t esp_cpu_cycle_count_t;
esp_cpu_cycle_count_t esp_cpu_get_cycle_count(void);
#endif
