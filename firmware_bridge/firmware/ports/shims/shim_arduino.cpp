/* Link stubs for the Arduino shim (CI builds only): the core's main() and Serial. */
#include "Arduino.h"

HardwareSerial Serial;
static unsigned long g_baud;
void HardwareSerial::begin(unsigned long baud) { g_baud = baud; }
size_t HardwareSerial::write(const uint8_t *data, size_t len) { (void)data; return len; }
int HardwareSerial::available(void) { return 0; }
int HardwareSerial::read(void) { return -1; }
unsigned long millis(void) { return 0; }

int main(void)
{
    setup();
    loop();
    return g_baud == 0;
}
