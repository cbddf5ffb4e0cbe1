/* np_port.h -- the two calls a port built into someone else's main loop exposes
 * (Arduino setup()/loop(), an STM32CubeMX main()). Ports that own main() (ESP-IDF
 * app_main, pico-sdk main, the QEMU MPS2 port) call them themselves. */
#ifndef NP_PORT_H
#define NP_PORT_H

#ifdef __cplusplus
extern "C" {
#endif

/* Initialise the link and the board engine (and load a compiled-in model, if any). */
void np_port_setup(void);

/* Serve received bytes; call it as often as possible (it never blocks for long, except
 * while a request runs). */
void np_port_poll(void);

#ifdef __cplusplus
}
#endif

#endif /* NP_PORT_H */
