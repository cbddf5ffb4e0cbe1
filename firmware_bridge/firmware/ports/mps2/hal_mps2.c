/* hal_mps2.c -- the reference firmware on an Arm MPS2 image (AN385 Cortex-M3, AN386 M4,
 * AN500 M7) as QEMU emulates it: `neuroplast board qemu` runs it with UART0 on a pty.
 *
 * UART0 is a CMSDK APB UART at 0x40004000 (DATA +0, STATE +4 bit0 TX full / bit1 RX full,
 * CTRL +8 bit0 TX enable / bit1 RX enable / bit3 RX interrupt, INTSTATUS +0xC, BAUDDIV
 * +0x10). Its RX interrupt (IRQ 0) moves each byte into a ring buffer and the main loop
 * sleeps (WFI) while the ring is empty: a core busy-polling the UART would starve QEMU's
 * I/O thread (one byte per poll round) and be ~40x slower. Transmission is polled.
 * SysTick at SYSCLK = 25 MHz ticks every millisecond. The board sends nothing until the
 * host speaks (bytes sent before the host opens the pty would be lost), so the host's
 * HELLO is the handshake.
 *
 * np_hal_cycles() counts SYSCLK ticks x 40 = virtual nanoseconds; under
 * `qemu-system-arm -icount shift=0` one instruction takes one virtual nanosecond, so the
 * board's STEP_CYCLES counter is then the number of instructions the model steps executed
 * (to within 40). QEMU is not cycle accurate: real cycles = instructions x the core's CPI. */
#include <stdint.h>

#include "np_board.h"
#include "np_hal.h"
#include "np_model_image.h"

#ifndef NP_ARENA_BYTES
#define NP_ARENA_BYTES (256u * 1024u)
#endif
#ifndef NP_STAGING_BYTES
#define NP_STAGING_BYTES (128u * 1024u)
#endif
#ifndef NP_BOARD_NAME
#define NP_BOARD_NAME "qemu-mps2"
#endif

#define REG(a) (*(volatile uint32_t *)(a))
#define UART0 0x40004000u
#define UART_DATA REG(UART0 + 0x00u)
#define UART_STATE REG(UART0 + 0x04u)
#define UART_CTRL REG(UART0 + 0x08u)
#define UART_INTSTATUS REG(UART0 + 0x0Cu)
#define UART_BAUDDIV REG(UART0 + 0x10u)
#define NVIC_ISER0 REG(0xE000E100u)
#define RING 4096u /* > one encoded frame: the host has one request in flight */
#define SYST_CSR REG(0xE000E010u)
#define SYST_RVR REG(0xE000E014u)
#define SYST_CVR REG(0xE000E018u)
#define SYSCLK_HZ 25000000u
#define TICKS_PER_MS (SYSCLK_HZ / 1000u)
#define NS_PER_TICK (1000000000u / SYSCLK_HZ)

static uint8_t arena[NP_ARENA_BYTES] __attribute__((aligned(8)));
static uint8_t staging[NP_STAGING_BYTES] __attribute__((aligned(8)));
static np_board_t board;
static volatile uint32_t g_ms;
static volatile uint8_t ring[RING];
static volatile uint32_t head, tail; /* written by the ISR / by the main loop only */

void SysTick_Handler(void);
void UART0_RX_Handler(void);
void mps2_fault(const char *what);
int main(void);

void SysTick_Handler(void) { g_ms++; }

void UART0_RX_Handler(void)
{
    UART_INTSTATUS = 2u; /* clear first: a byte arriving after the loop raises it again */
    while (UART_STATE & 2u) {
        uint8_t c = (uint8_t)UART_DATA;
        uint32_t next = (head + 1u) % RING;
        if (next != tail) { /* full: drop the byte, as a UART overrun; the CRC catches it */
            ring[head] = c;
            head = next;
        }
    }
}

static void uart_put(uint8_t c)
{
    while (UART_STATE & 1u) {
    }
    UART_DATA = c;
}

void np_hal_write(const uint8_t *data, size_t len)
{
    size_t i;
    for (i = 0; i < len; i++) uart_put(data[i]);
}

uint32_t np_hal_millis(void) { return g_ms; }

const char *np_hal_board_name(void) { return NP_BOARD_NAME; }

uint32_t np_hal_cycles(void)
{
    uint32_t ms, val;
    do { /* a consistent (ms, counter) pair: retry if the millisecond ticked meanwhile */
        ms = g_ms;
        val = SYST_CVR;
    } while (ms != g_ms);
    return (ms * TICKS_PER_MS + (TICKS_PER_MS - 1u - val)) * NS_PER_TICK;
}

/* A fault is reported as raw text (it breaks the framing, which the host survives) and
 * the core stops: the host then times out instead of getting wrong answers. */
void mps2_fault(const char *what)
{
    const char *p = "\n[neuroplast firmware] ";
    while (*p) uart_put((uint8_t)*p++);
    while (*what) uart_put((uint8_t)*what++);
    uart_put('\n');
    for (;;) {
    }
}

int main(void)
{
    uint8_t buf[64];
    SYST_RVR = TICKS_PER_MS - 1u;
    SYST_CVR = 0;
    SYST_CSR = 7u; /* processor clock, interrupt, enable */
    UART_BAUDDIV = 16u;
    UART_CTRL = 0x0Bu; /* TX, RX, RX interrupt */
    NVIC_ISER0 = 1u;   /* IRQ 0: UART0 RX */
    /* a compiled-in model that does not load leaves the board without one (CAPS says so) */
    (void)np_board_boot(&board, arena, sizeof arena, staging, sizeof staging, np_model_image,
                        np_model_image_len);
    for (;;) {
        size_t n = 0;
        __asm volatile("cpsid i" ::: "memory"); /* no RX interrupt between test and sleep */
        if (tail == head) __asm volatile("wfi");
        __asm volatile("cpsie i" ::: "memory");
        while (n < sizeof buf && tail != head) {
            buf[n++] = ring[tail];
            tail = (tail + 1u) % RING;
        }
        if (n) np_board_rx(&board, buf, n);
    }
}
