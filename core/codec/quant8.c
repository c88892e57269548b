/* The int8 scalar quantiser of the sidecar and of the coarse centroid codes: see
 * quant8.h and docs/FORMAT.md ("The int8 sidecar"). Pure arithmetic on vectors. */
#include <math.h>
#include <string.h>

#include "annpack/cpu.h"
#include "fp16.h"
#include "quant8.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define AP_X86 1
#endif

static inline uint8_t code_of(float x, float vmin, float step)
{
    float c = rintf((x - vmin) / step); /* round half to even (the default mode) */
    /* NaN (only in a pack that fails verify --deep) codes as 0, like anything below 0. */
    return !(c > 0.0f) ? 0 : c >= 255.0f ? 255 : (uint8_t)c;
}

void ap_sq8_encode(const float *vmin, const float *step, uint32_t dim, uint32_t stride,
                   const uint16_t *vec, uint8_t *codes)
{
    for (uint32_t d = 0; d < dim; d++)
        codes[d] = code_of(ap_f16_to_f32(vec[d]), vmin[d], step[d]);
    memset(codes + dim, 0, stride - dim);
}

#ifdef AP_X86
/* code_of on 8 values at once, bit for bit: the same IEEE subtraction and division, the
 * same round-half-to-even (the default mode, as rintf), and max(c, 0) takes 0 for NaN as
 * !(c > 0) does. */
__attribute__((target("avx2"))) static uint32_t
encode_avx2(const float *vmin, const float *step, uint32_t dim, const float *x, uint8_t *codes)
{
    const __m256 zero = _mm256_setzero_ps(), top = _mm256_set1_ps(255.0f);
    uint32_t d = 0;
    for (; d + 8 <= dim; d += 8) {
        __m256 c = _mm256_div_ps(_mm256_sub_ps(_mm256_loadu_ps(x + d), _mm256_loadu_ps(vmin + d)),
                                 _mm256_loadu_ps(step + d));
        c = _mm256_round_ps(c, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        c = _mm256_min_ps(_mm256_max_ps(c, zero), top);
        __m256i i = _mm256_cvttps_epi32(c);
        __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(i), _mm256_extracti128_si256(i, 1));
        _mm_storel_epi64((__m128i *)(void *)(codes + d), _mm_packus_epi16(w, w));
    }
    return d;
}

static int have_avx2(void)
{
    static _Atomic int cached = -1;
    int c = cached;
    if (c < 0) cached = c = ap_cpu_has("avx2");
    return c;
}
#endif

void ap_sq8_encode_f32(const float *vmin, const float *step, uint32_t dim, uint32_t stride,
                       const float *x, uint8_t *codes)
{
    uint32_t d = 0;
#ifdef AP_X86
    if (have_avx2()) d = encode_avx2(vmin, step, dim, x, codes);
#endif
    for (; d < dim; d++)
        codes[d] = code_of(x[d], vmin[d], step[d]);
    memset(codes + dim, 0, stride - dim);
}

/* Per-dimension ranges: vmin/vmax start empty (0 when there are no rows), take every value
 * (NaN never compares, so it is skipped), and end as steps; a constant or non-finite range
 * gets step 1. vmax is stored in step until range_steps. */
static void range_start(float *vmin, float *vmax, uint32_t dim, size_t n)
{
    for (uint32_t d = 0; d < dim; d++) {
        vmin[d] = n ? INFINITY : 0;
        vmax[d] = n ? -INFINITY : 0;
    }
}

static void range_add(float *vmin, float *vmax, const float *x, uint32_t dim)
{
    for (uint32_t d = 0; d < dim; d++) {
        if (x[d] < vmin[d]) vmin[d] = x[d];
        if (x[d] > vmax[d]) vmax[d] = x[d];
    }
}

static void range_steps(const float *vmin, float *step, uint32_t dim)
{
    for (uint32_t d = 0; d < dim; d++) {
        float s = (step[d] - vmin[d]) / 255.0f;
        step[d] = s > 0 && isfinite(s) ? s : 1.0f;
    }
}

void ap_sq8_train_f32(const float *x, size_t n, uint32_t dim, float *vmin, float *step)
{
    range_start(vmin, step, dim, n);
    for (size_t i = 0; i < n; i++)
        range_add(vmin, step, x + i * dim, dim);
    range_steps(vmin, step, dim);
}

/* The same over f16 vectors (their values as f32); row is dim floats of scratch. */
void ap_sq8_train_f16(const uint16_t *vecs, size_t n, uint32_t dim, float *vmin, float *step,
                      float *row)
{
    range_start(vmin, step, dim, n);
    for (size_t i = 0; i < n; i++) {
        ap_f16_to_f32_n(row, vecs + i * dim, dim);
        range_add(vmin, step, row, dim);
    }
    range_steps(vmin, step, dim);
}

void ap_sq8_train_f16_of_f32(const float *x, size_t n, uint32_t dim, float *vmin, float *step,
                             uint16_t *h, float *row)
{
    range_start(vmin, step, dim, n);
    for (size_t i = 0; i < n; i++) {
        ap_f32_to_f16_n(h, x + i * dim, dim);
        ap_f16_to_f32_n(row, h, dim);
        range_add(vmin, step, row, dim);
    }
    range_steps(vmin, step, dim);
}

void ap_sq8_weights(const float *step, uint32_t dim, uint32_t stride, const float *q, int8_t *w)
{
    float amax = 0;
    for (uint32_t d = 0; d < dim; d++) {
        float x = fabsf(q[d] * step[d]);
        if (x > amax) amax = x;
    }
    float scale = amax > 0 ? 127.0f / amax : 0;
    for (uint32_t d = 0; d < dim; d++) {
        float x = rintf(q[d] * step[d] * scale);
        /* NaN only from extreme (unverified) params: weigh that dimension 0. */
        w[d] = (int8_t)(x > 127.0f ? 127 : x < -127.0f ? -127 : x == x ? x : 0);
    }
    memset(w + dim, 0, stride - dim);
}
