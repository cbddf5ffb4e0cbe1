/* startup.c -- minimal Cortex-M start-up for the MPS2 images (no CMSIS needed): the vector
 * table, a reset handler that copies .data and zeroes .bss, enables the FPU when the build
 * uses it, and calls main(); SysTick and UART0 RX interrupts are served in hal_mps2.c. */
#include <stdint.h>

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
int main(void);
void Reset_Handler(void);
void Default_Handler(void);
void SysTick_Handler(void);
void UART0_RX_Handler(void);
void mps2_fault(const char *what);

void Reset_Handler(void)
{
    uint32_t *src = &_sidata, *dst = &_sdata;
    while (dst < &_edata) *dst++ = *src++;
    for (dst = &_sbss; dst < &_ebss;) *dst++ = 0;
#if defined(__ARM_FP)
    /* CPACR: full access to CP10/CP11 (the FPU) before any floating-point instruction */
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20;
    __asm volatile("dsb\n\tisb");
#endif
    (void)main();
    for (;;) {
    }
}

void Default_Handler(void) { mps2_fault("unexpected exception"); }
static void HardFault_Handler(void) { mps2_fault("hard fault"); }

typedef void (*vector_t)(void);

__attribute__((section(".isr_vector"), used)) const vector_t np_vectors[16 + 2] = {
    (vector_t)(uintptr_t)&_estack, /* initial stack pointer */
    Reset_Handler,
    Default_Handler,   /* NMI */
    HardFault_Handler, /* HardFault */
    Default_Handler,   /* MemManage */
    Default_Handler,   /* BusFault */
    Default_Handler,   /* UsageFault */
    0, 0, 0, 0,        /* reserved */
    Default_Handler,   /* SVCall */
    Default_Handler,   /* DebugMonitor */
    0,                 /* reserved */
    Default_Handler,   /* PendSV */
    SysTick_Handler,
    UART0_RX_Handler, /* IRQ 0: UART0 RX */
    Default_Handler,  /* IRQ 1: UART0 TX (not enabled) */
};
