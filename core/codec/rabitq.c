/* The 1-bit quantiser of pack.bits: see rabitq.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fp16.h"
#include "rabitq.h"

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

int ap_rbq_rot_init(ap_rbq_rot *r, uint64_t seed, uint32_t dpad)
{
    uint32_t w = dpad / 64;
    r->dpad = dpad;
    r->block = 1;
    while (r->block * 2 <= dpad)
        r->block *= 2;
    r->scale = (float)(1.0 / sqrt((double)r->block));
    r->signs = malloc((size_t)AP_RBQ_ROUNDS * w * sizeof *r->signs);
    if (!r->signs) return -1;
    uint64_t s = seed;
    for (uint32_t i = 0; i < AP_RBQ_ROUNDS * w; i++)
        r->signs[i] = splitmix64(&s);
    return 0;
}

void ap_rbq_rot_free(ap_rbq_rot *r)
{
    free(r->signs);
    r->signs = NULL;
}

/* In-place orthonormal fast Walsh-Hadamard transform of n (a power of two) floats. */
static void fwht(float *x, uint32_t n, float scale)
{
    for (uint32_t h = 1; h < n; h *= 2)
        for (uint32_t i = 0; i < n; i += 2 * h)
            for (uint32_t j = i; j < i + h; j++) {
                float a = x[j], b = x[j + h];
                x[j] = a + b;
                x[j + h] = a - b;
            }
    for (uint32_t i = 0; i < n; i++)
        x[i] *= scale;
}

void ap_rbq_rotate(const ap_rbq_rot *r, float *x)
{
    uint32_t w = r->dpad / 64;
    for (uint32_t round = 0; round < AP_RBQ_ROUNDS; round++) {
        const uint64_t *sg = r->signs + (size_t)round * w;
        for (uint32_t i = 0; i < r->dpad; i++)
            if ((sg[i / 64] >> (i % 64)) & 1) x[i] = -x[i];
        fwht(x + (round & 1 ? r->dpad - r->block : 0), r->block, r->scale);
    }
}

void ap_rbq_encode(const ap_rbq_rot *r, uint32_t dim, const float *x, const float *c, float *work,
                   uint8_t *code, float *F, float *G)
{
    const uint32_t dpad = r->dpad;
    double nn = 0;
    for (uint32_t i = 0; i < dim; i++) {
        work[i] = x[i] - c[i];
        nn += (double)work[i] * work[i];
    }
    memset(work + dim, 0, (dpad - dim) * sizeof *work);
    memset(code, 0, dpad / 8);
    if (nn == 0) {
        *F = *G = 0;
        return;
    }
    ap_rbq_rotate(r, work);
    double l1 = 0;
    for (uint32_t i = 0; i < dpad; i++) {
        if (work[i] > 0) code[i / 8] |= (uint8_t)(1u << (i % 8));
        l1 += fabs((double)work[i]);
    }
    double norm = sqrt(nn);
    /* o = <xbar, residual / norm> with xbar = (2b - 1) / sqrt(dpad): the code's alignment. */
    double o = l1 / (sqrt((double)dpad) * norm);
    if (!(o > 0) || l1 == 0) {
        *F = *G = 0;
        return;
    }
    if (o > 1) o = 1;
    *F = (float)(nn / l1); /* norm / (o sqrt(dpad)) */
    *G = (float)(norm * sqrt(1 - o * o) / o / sqrt((double)(dpad > 1 ? dpad - 1 : 1)));
}

void ap_rbq_query_make(const ap_rbq_rot *r, uint32_t dim, const float *q, float *work,
                       uint64_t *planes, ap_rbq_query *out)
{
    const uint32_t dpad = r->dpad, w = dpad / 64;
    memcpy(work, q, dim * sizeof *q);
    memset(work + dim, 0, (dpad - dim) * sizeof *work);
    ap_rbq_rotate(r, work);
    float lo = work[0], hi = work[0];
    for (uint32_t i = 1; i < dpad; i++) {
        if (work[i] < lo) lo = work[i];
        if (work[i] > hi) hi = work[i];
    }
    const float top = (float)((1u << AP_RBQ_QBITS) - 1);
    float delta = (hi - lo) / top;
    if (!(delta > 0)) delta = 1; /* a constant query: every u_i is 0 */
    memset(planes, 0, (size_t)AP_RBQ_QBITS * w * sizeof *planes);
    uint32_t usum = 0;
    for (uint32_t i = 0; i < dpad; i++) {
        float u = rintf((work[i] - lo) / delta);
        uint32_t v = u < 0 ? 0 : u > top ? (uint32_t)top : (uint32_t)u;
        usum += v;
        for (uint32_t k = 0; k < AP_RBQ_QBITS; k++)
            if ((v >> k) & 1) planes[(size_t)k * w + i / 64] |= 1ull << (i % 64);
    }
    out->lo = lo;
    out->delta = delta;
    out->usum = usum;
    /* Rounding errors uniform in +-delta/2, summed with signs over dpad dims: standard
     * deviation delta * sqrt(dpad / 12), times the 1 of (2b - 1). */
    out->qerr = (float)((double)delta * sqrt((double)dpad / 12.0));
}

float ap_rbq_alpha(const uint8_t *vecs, uint32_t n, uint32_t dim, const float *c, uint16_t *h,
                   float *x)
{
    if (n == 0) return 0;
    double s = 0;
    for (uint32_t j = 0; j < n; j++) {
        memcpy(h, vecs + (size_t)j * 2 * dim, 2ull * dim);
        ap_f16_to_f32_n(x, h, dim);
        for (uint32_t i = 0; i < dim; i++)
            s += (double)x[i] * c[i];
    }
    return (float)(s / n);
}

void ap_rbq_scale(const float *c, float alpha, uint32_t dim, float *ref)
{
    for (uint32_t i = 0; i < dim; i++)
        ref[i] = alpha * c[i];
}
