/* np_model_image.h -- a model image compiled into the firmware (flash). The default
 * np_model_image.c holds an empty one (the host loads models over the link);
 * `neuroplast board project` writes one holding the bundle's image, which the port loads
 * at boot (np_board_boot). */
#ifndef NP_MODEL_IMAGE_H
#define NP_MODEL_IMAGE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

extern const uint8_t np_model_image[];
extern const uint32_t np_model_image_len;

#ifdef __cplusplus
}
#endif

#endif /* NP_MODEL_IMAGE_H */
