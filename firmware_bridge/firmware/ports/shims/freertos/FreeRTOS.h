/* Shim of FreeRTOS/FreeRTOS.h as ESP-IDF ships it (CI builds only). */
#ifndef NP_SHIM_FREERTOS_H
#define NP_SHIM_FREERTOS_H
#include <stdint.h>
typedef uint32_t TickType_t;
#define pdMS_TO_TICKS(ms) ((TickType_t)(ms))
#endif
