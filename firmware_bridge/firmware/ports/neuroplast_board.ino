// neuroplast_board.ino -- the Arduino sketch of the neuroplast firmware: the board serves
// the neuroplast protocol on its USB serial port (hal_arduino.cpp).
#include <Arduino.h>

#include "np_port.h"

void setup() { np_port_setup(); }

void loop() { np_port_poll(); }
