/* The 1-bit RaBitQ-style quantiser of pack.bits (internal to core; docs/FORMAT.md,
 * "pack.bits"). A vector's residual to its list centroid, padded with zeros to dpad (dim
 * rounded up to 64) and rotated by a seeded orthogonal transform, is stored as its sign
 * bits plus two scalars: F, which turns the bit code's inner product with a rotated query
 * into an unbiased estimate of q . residual, and G, the estimator's error scale. A query
 * is rotated the same way and quantised to 4 bits per dimension, so a code's inner
 * product is sum_k 2^k popcount(code & plane_k): integers, the same on every CPU.
 * Pure functions: every float step runs in a fixed order (no fused multiply-add), so
 * codes and estimates are bit-reproducible and independent of threads. */
#ifndef ANNPACK_CORE_RABITQ_H
#define ANNPACK_CORE_RABITQ_H

#include <math.h>
#include <stdint.h>

#define AP_RBQ_ROUNDS 4u /* sign flip + Walsh-Hadamard block rounds of the rotation */
#define AP_RBQ_QBITS 4u  /* query bit planes */

/* Bits (dims after padding) for dim: dim rounded up to a multiple of 64. */
static inline uint32_t ap_rbq_dpad(uint32_t dim)
{
    return (dim + 63u) & ~63u;
}

/* The rotation: AP_RBQ_ROUNDS rounds of (flip the signs where a seeded bit is set, then an
 * orthonormal Walsh-Hadamard transform of the block [0, B) in even rounds, [dpad - B, dpad)
 * in odd ones; B the largest power of two <= dpad). signs: AP_RBQ_ROUNDS x dpad/64 words,
 * word i of round r the splitmix64 output number r * dpad/64 + i of the seed. */
typedef struct ap_rbq_rot {
    uint32_t dpad, block;
    float scale; /* 1/sqrt(block), rounded to f32 */
    uint64_t *signs;
} ap_rbq_rot;

/* 0 on success, -1 out of memory. dpad a positive multiple of 64. */
int ap_rbq_rot_init(ap_rbq_rot *r, uint64_t seed, uint32_t dpad);
void ap_rbq_rot_free(ap_rbq_rot *r);
/* Rotates x (dpad floats) in place. */
void ap_rbq_rotate(const ap_rbq_rot *r, float *x);

/* The code of vector x (dim floats) in a list of centroid c: code (dpad/8 bytes, bit i of
 * byte i/8 set when the rotated residual's dimension i is > 0), *F and *G. work holds dpad
 * floats. A vector equal to its centroid gets zero bits and F = G = 0. */
void ap_rbq_encode(const ap_rbq_rot *r, uint32_t dim, const float *x, const float *c, float *work,
                   uint8_t *code, float *F, float *G);

/* The list's reference point is alpha * c: alpha the mean over its n f16 vectors (2*dim
 * bytes each, possibly unaligned, as in an ANNP list) of their dot product with the unit
 * centroid c, summed in binary64 in order and rounded to f32 (0 for an empty list). The
 * residuals to it are smaller than to c itself, so the codes' errors are. h and x: dim
 * u16 and dim floats of scratch. */
float ap_rbq_alpha(const uint8_t *vecs, uint32_t n, uint32_t dim, const float *c, uint16_t *h,
                   float *x);
/* ref[i] = alpha * c[i] (f32). */
void ap_rbq_scale(const float *c, float alpha, uint32_t dim, float *ref);

/* A query quantised for a scan. */
typedef struct ap_rbq_query {
    float lo, delta; /* rotated value of dim i ~ lo + delta * u_i, u_i in 0..15 */
    uint32_t usum;   /* sum of u_i */
    float qerr;      /* the error scale the query's rounding adds, per unit of F */
} ap_rbq_query;

/* Rotates and quantises unit query q (dim floats): planes holds AP_RBQ_QBITS x dpad/64
 * words (bit i of plane k = bit k of u_i); work dpad floats. */
void ap_rbq_query_make(const ap_rbq_rot *r, uint32_t dim, const float *q, float *work,
                       uint64_t *planes, ap_rbq_query *out);

/* The estimate of q . x for a vector of the list whose centroid scores qc, from the
 * kernel's integers s = sum_k 2^k popcount(code & plane_k) and pop = popcount(code). */
static inline float ap_rbq_estimate(const ap_rbq_query *qq, uint32_t dpad, float qc, float F,
                                    uint32_t s, uint32_t pop)
{
    float a = qq->lo * (float)(2 * (int32_t)pop - (int32_t)dpad);
    /* In i32 (exact: s <= 15 dpad), so the loop over a block vectorises. */
    float b = qq->delta * (float)(2 * (int32_t)s - (int32_t)qq->usum);
    return qc + F * (a + b);
}

/* How far above the estimate q . x may be: eps0 standard errors of the estimate, the code's
 * (G) and the query rounding's (F * qerr) combined as independent errors. */
static inline float ap_rbq_bound(const ap_rbq_query *qq, float eps0, float F, float G)
{
    float e = F * qq->qerr;
    return eps0 * sqrtf(G * G + e * e);
}

#endif
