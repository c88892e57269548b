/* The int8 scalar quantiser (internal to core; also declared in annpack/sq8.h for the
 * experimental API): per-dimension ranges trained over a set of vectors, codes
 * round((x - vmin) / step) clamped to [0, 255], and query weights scaled to int8 so a dot
 * product of weights and codes ranks like the float dot product. Pure functions. */
#ifndef ANNPACK_CORE_QUANT8_H
#define ANNPACK_CORE_QUANT8_H

#include <stddef.h>
#include <stdint.h>

#include "annpack/status.h"

/* Codes of one f16 vector (dim values, then stride - dim zero bytes). */
void ap_sq8_encode(const float *vmin, const float *step, uint32_t dim, uint32_t stride,
                   const uint16_t *vec, uint8_t *codes);
/* The same from float32 values. */
void ap_sq8_encode_f32(const float *vmin, const float *step, uint32_t dim, uint32_t stride,
                       const float *x, uint8_t *codes);
/* Trains vmin and step (dim each) over n row-major float32 / f16 vectors; row is dim floats
 * of scratch. */
void ap_sq8_train_f32(const float *x, size_t n, uint32_t dim, float *vmin, float *step);
void ap_sq8_train_f16(const uint16_t *vecs, size_t n, uint32_t dim, float *vmin, float *step,
                      float *row);
/* The same params as ap_sq8_train_f16 over the f16 roundings of the float32 rows x (the
 * builder trains on the values pack.annpack will hold without keeping them all); h is dim
 * f16 of scratch. */
void ap_sq8_train_f16_of_f32(const float *x, size_t n, uint32_t dim, float *vmin, float *step,
                             uint16_t *h, float *row);
/* Query weights (stride entries, zero past dim) for a unit query q. */
void ap_sq8_weights(const float *step, uint32_t dim, uint32_t stride, const float *q, int8_t *w);

#endif
