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

/* The 1-bit code kernels (kernel_bits.c, pack.bits): s[j] = sum_k 2^k popcount(code_j &
 * plane_k) over 4 query planes of words 64-bit words each (planes: 4 x words), pop[j] =
 * popcount(code_j); codes words * 8 bytes apart. */
typedef void (*ap_bits_block_fn)(const uint64_t *planes, const uint8_t *codes, uint32_t n,
                                 uint32_t words, uint32_t *s, uint32_t *pop);

/* The int8 row check of the bits re-rank (kernel_bits.c): qs . code over dim floats and
 * bytes, in one fixed order (16 partial sums, then pairwise) on every version. */
typedef float (*ap_codes_dot_fn)(const float *qs, const uint8_t *c, uint32_t dim);

/* The version searches use: the best one this CPU runs (the portable one while
 * ap_kernels_portable is set); *name (may be NULL) receives its name. */
ap_f16_block_fn ap_kernel_f16(const char **name);
ap_sq8_block_fn ap_kernel_sq8(const char **name);
ap_bits_block_fn ap_kernel_bits(const char **name);
ap_codes_dot_fn ap_kernel_codes(void);

/* Experimental, for tests that check every version: the version named isa, or NULL when
 * this CPU lacks the features it needs or there is no such version here. f16: "avx512",
 * "avx2" (x86-64), "portable"; sq8: "avx512vnni", "avx512bw", "avx2" (x86-64), "portable"
 * (the names ap_search_kernel and ap_search_kernel_sq8 report). Ignores
 * ap_kernels_portable. */
ap_f16_block_fn ap_kernel_f16_for(const char *isa);
ap_sq8_block_fn ap_kernel_sq8_for(const char *isa);
/* bits: "avx512vpopcntdq", "avx2", "popcnt" (x86-64), "portable". */
ap_bits_block_fn ap_kernel_bits_for(const char *isa);
/* codes: "avx512f", "avx2" (x86-64), "portable". */
ap_codes_dot_fn ap_kernel_codes_for(const char *isa);

/* One version of a kernel family, in a table of them best first (the last is the portable
 * one, which needs nothing): what it is called and the CPU features it needs. */
typedef struct ap_kernel_info {
    const char *name;
    const char *needs[2]; /* ap_cpu_has names; NULL when fewer */
} ap_kernel_info;

/* The index in kinfo[0..n) of the version named isa that this CPU runs, else -1. */
int ap_kernel_find(const ap_kernel_info *kinfo, int n, const char *isa);

/* The index of the first (best) version in kinfo[0..n) that this CPU runs; n - 1 at the
 * worst (the portable version). */
int ap_kernel_best(const ap_kernel_info *kinfo, int n);

/* Set by ap_search_force_portable (tests compare the paths). */
extern _Atomic int ap_kernels_portable;

/* Hint that [p, p + len) will be read soon (first lines only; the hardware prefetcher
 * follows a sequential stream once it has started). */
void ap_prefetch_range(const void *p, uint64_t len);

#endif
