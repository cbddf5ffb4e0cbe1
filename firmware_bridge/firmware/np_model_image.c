/* np_model_image.c -- no model compiled in: the host sends one with LOAD_BUNDLE.
 * `neuroplast board project` replaces this file with the bundle's image. */
#include "np_model_image.h"

const uint8_t np_model_image[1] = {0};
const uint32_t np_model_image_len = 0;
