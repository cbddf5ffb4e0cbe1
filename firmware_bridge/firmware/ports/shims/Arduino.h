/* Shim of the Arduino core API the neuroplast port uses (CI builds only). */
#ifndef NP_SHIM_ARDUINO_H
#define NP_SHIM_ARDUINO_H
#include <stddef.h>
#include <stdint.h>

class HardwareSerial {
public:
    void begin(unsigned long baud);
    size_t write(const uint8_t *data, size_t len);
    int available(void);
    int read(void);
};
extern HardwareSerial Serial;
unsigned long millis(void);
void setup(void);
void loop(void);
#endif
