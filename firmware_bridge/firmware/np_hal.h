/* np_hal.h -- the hardware abstraction the board core needs. A port provides these four
 * functions and calls np_board_rx() with every byte it receives. See ports/ for stubs
 * (Arduino, RP2040, ESP32, STM32) and hal_posix.c for the pty virtual board. */
#ifndef NP_HAL_H
#define NP_HAL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Write all `len` bytes to the link (blocking is fine; the protocol is stop-and-wait). */
void np_hal_write(const uint8_t *data, size_t len);

/* Milliseconds since start (wraps at 2^32). */
uint32_t np_hal_millis(void);

/* Short board name reported in CAPS (<= 15 chars). */
const char *np_hal_board_name(void);

/* A free-running CPU cycle counter (wraps at 2^32), or 0 where the port has none. The
 * board adds the cycles of every model step to the STEP_CYCLES counter. */
uint32_t np_hal_cycles(void);

#ifdef __cplusplus
}
#endif

#endif /* NP_HAL_H */
