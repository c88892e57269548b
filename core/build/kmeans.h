/* Spherical k-means with OpenBLAS (internal to core).
 *
 * Vectors and centroids are unit length; a vector belongs to the centroid with the
 * largest dot product (ties: lowest index), and each new centroid is the normalised mean
 * of its members, so probing by dot product agrees with how vectors were assigned.
 * Deterministic for a given seed, whatever the thread count. */
#ifndef ANNPACK_CORE_KMEANS_H
#define ANNPACK_CORE_KMEANS_H

#include <stddef.h>
#include <stdint.h>

#include "annpack/status.h"

#define AP_KMEANS_SAMPLE_PER_LIST 256u
#define AP_KMEANS_MAX_ITER 20u

typedef void (*ap_kmeans_progress)(void *ud, uint32_t iter, uint32_t iters);

/* Trains k centroids (k <= n) from a deterministic sample of at most
 * AP_KMEANS_SAMPLE_PER_LIST * k rows of x (n x dim, row-major) in at most iters
 * iterations. centroids receives k x dim floats; *passes (may be NULL) the number of
 * assignment passes over the sample (each 2 * sample * k * dim flops). */
ap_status ap_kmeans_train(const float *x, size_t n, uint32_t dim, uint32_t k, uint64_t seed,
                          uint32_t iters, float *centroids, ap_kmeans_progress progress,
                          void *progress_ud, uint32_t *passes, ap_err *err);

/* Assigns every row of x to its best centroid (ties: lowest index), in blocks scored with
 * sgemm on ap_parallel_threads() threads. best_score may be NULL. */
ap_status ap_kmeans_assign(const float *x, size_t n, uint32_t dim, const float *centroids,
                           uint32_t k, uint32_t *assign, float *best_score, ap_err *err);

/* Sets OpenBLAS's own thread count (for BLAS calls outside k-means, which runs each sgemm
 * on one thread) to ap_parallel_threads(), and returns it. */
uint32_t ap_blas_threads_from_env(void);

/* splitmix64: the project's deterministic PRNG step. */
static inline uint64_t ap_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

#endif
