/* Scan kernels and their runtime dispatch (internal to core).
 *
 * Each family has a portable C version and SIMD versions chosen once per process from the
 * CPU's features; all versions of a family return bit-identical results (the summation
 * order is part of the contract, see annpack/search.h and annpack/sq8.h). */
#ifndef ANNPACK_CORE_KERNELS_H
#define ANNPACK_CORE_KERNELS_H

#include <stdint.h>

/* Scores n consecutive f16 vectors (2*dim bytes each) against q into out. */
typedef void (*ap_f16_block_fn)(const float *q, const uint8_t *vecs, uint32_t n, uint32_t dim,
                                float *out);
/* Integer scores of n consecutive code rows (stride bytes, a multiple of 64) with weights
 * w (stride entries). */
typedef void (*ap_sq8_block_fn)(const int8_t *w, const uint8_t *codes, uint32_t n, uint32_t stride,
                                int32_t *out);

ap_f16_block_fn ap_kernel_f16(const char **name);
ap_sq8_block_fn ap_kernel_sq8(const char **name);

/* Set by ap_search_force_portable (tests compare the paths). */
extern _Atomic int ap_kernels_portable;

/* Hint that [p, p + len) will be read soon (first lines only; the hardware prefetcher
 * follows a sequential stream once it has started). */
void ap_prefetch_range(const void *p, uint64_t len);

#endif
