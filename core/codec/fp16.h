/* IEEE 754 half precision conversion (internal to core).
 *
 * The portable and the F16C paths give identical bits (round to nearest, ties to even;
 * NaN stays NaN), so packs are byte-identical whichever CPU built them. */
#ifndef ANNPACK_CORE_FP16_H
#define ANNPACK_CORE_FP16_H

#include <stddef.h>
#include <stdint.h>

uint16_t ap_f32_to_f16(float f);
float ap_f16_to_f32(uint16_t h);

/* Bulk conversions; dst/src need no alignment. Uses F16C when the CPU has it. */
void ap_f32_to_f16_n(uint16_t *dst, const float *src, size_t n);
void ap_f16_to_f32_n(float *dst, const uint16_t *src, size_t n);

/* The sum of the squares of n half-precision values, in float: 8 running sums (lane i
 * takes the values at i mod 8), added pairwise. Each square is exact and finite in a
 * float (65504^2 < FLT_MAX), so the sum is finite exactly when every value is; the two
 * paths give the same bits. */
float ap_f16_sumsq(const uint16_t *src, size_t n);

/* Forces the portable path (tests compare the two). */
void ap_fp16_force_portable(int on);

#endif
