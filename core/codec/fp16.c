/* Half precision conversion: see fp16.h. */
#include <string.h>

#include "annpack/cpu.h"
#include "fp16.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define AP_X86 1
#endif

static int g_force_portable;

void ap_fp16_force_portable(int on)
{
    g_force_portable = on;
}

uint16_t ap_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t exp = (x >> 23) & 0xffu;
    uint32_t man = x & 0x7fffffu;
    if (exp == 0xff) /* Inf or NaN; keep NaN quiet and non-zero */
        return (uint16_t)(sign | 0x7c00u | (man ? (0x200u | (man >> 13)) : 0));
    int32_t e = (int32_t)exp - 127 + 15;
    if (e >= 31) return (uint16_t)(sign | 0x7c00u); /* overflow to Inf */
    if (e <= 0) {
        /* Subnormal half (or zero): shift the mantissa with its implicit bit. */
        if (e < -10) return (uint16_t)sign;
        uint32_t m = man | 0x800000u;
        uint32_t shift = (uint32_t)(14 - e);
        uint32_t half = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1);
        uint32_t mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = ((uint32_t)e << 10) | (man >> 13);
    uint32_t rem = man & 0x1fffu;
    /* A carry out of the mantissa correctly bumps the exponent (up to Inf). */
    if (rem > 0x1000u || (rem == 0x1000u && (half & 1))) half++;
    return (uint16_t)(sign | half);
}

float ap_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    uint32_t x;
    if (exp == 0) {
        if (man == 0) {
            x = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400u));
            x = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
        }
    } else if (exp == 31) {
        x = sign | 0x7f800000u | (man << 13);
    } else {
        x = sign | ((exp - 15 + 127) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &x, 4);
    return f;
}

#ifdef AP_X86
__attribute__((target("f16c,avx"))) static void to_f16_f16c(uint16_t *dst, const float *src,
                                                            size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT);
        _mm_storeu_si128((__m128i *)(void *)(dst + i), h);
    }
    for (; i < n; i++)
        dst[i] = ap_f32_to_f16(src[i]);
}

__attribute__((target("f16c,avx"))) static void to_f32_f16c(float *dst, const uint16_t *src,
                                                            size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm_loadu_si128((const __m128i *)(const void *)(src + i));
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
    }
    for (; i < n; i++)
        dst[i] = ap_f16_to_f32(src[i]);
}

/* ap_f16_sumsq's 8 running sums, one per lane. */
__attribute__((target("f16c,avx"))) static float sumsq_f16c(const uint16_t *src, size_t n)
{
    __m256 acc = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 x = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(src + i)));
        acc = _mm256_add_ps(acc, _mm256_mul_ps(x, x));
    }
    float s8[8];
    _mm256_storeu_ps(s8, acc);
    for (; i < n; i++) {
        float x = ap_f16_to_f32(src[i]);
        s8[0] += x * x;
    }
    return ((s8[0] + s8[1]) + (s8[2] + s8[3])) + ((s8[4] + s8[5]) + (s8[6] + s8[7]));
}

static int have_f16c(void)
{
    static _Atomic int cached = -1;
    int c = cached;
    if (c < 0) cached = c = ap_cpu_has("f16c");
    return c;
}
#endif

void ap_f32_to_f16_n(uint16_t *dst, const float *src, size_t n)
{
#ifdef AP_X86
    if (!g_force_portable && have_f16c()) {
        to_f16_f16c(dst, src, n);
        return;
    }
#endif
    for (size_t i = 0; i < n; i++)
        dst[i] = ap_f32_to_f16(src[i]);
}

void ap_f16_to_f32_n(float *dst, const uint16_t *src, size_t n)
{
#ifdef AP_X86
    if (!g_force_portable && have_f16c()) {
        to_f32_f16c(dst, src, n);
        return;
    }
#endif
    for (size_t i = 0; i < n; i++)
        dst[i] = ap_f16_to_f32(src[i]);
}

float ap_f16_sumsq(const uint16_t *src, size_t n)
{
#ifdef AP_X86
    if (!g_force_portable && have_f16c()) return sumsq_f16c(src, n);
#endif
    float s8[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int u = 0; u < 8; u++) {
            float x = ap_f16_to_f32(src[i + u]);
            s8[u] += x * x;
        }
    for (; i < n; i++) {
        float x = ap_f16_to_f32(src[i]);
        s8[0] += x * x;
    }
    return ((s8[0] + s8[1]) + (s8[2] + s8[3])) + ((s8[4] + s8[5]) + (s8[6] + s8[7]));
}
