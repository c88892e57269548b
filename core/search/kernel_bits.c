/* 1-bit code kernels (pack.bits): for each code, s = sum over the AP_RBQ_QBITS query planes
 * k of 2^k popcount(code & plane_k) and pop = popcount(code). Integers only, so every
 * version gives the same numbers; the float estimate is formed afterwards by one shared
 * function (rabitq.h). */
#include <string.h>

#include "annpack/bits.h"
#include "annpack/search.h"
#include "kernels.h"
#include "rabitq.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

_Static_assert(AP_RBQ_QBITS == 4, "the kernels combine four planes");

static inline uint64_t word_at(const uint8_t *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
    return w; /* little-endian hosts only (as the rest of core) */
}

#define BODY(POPCOUNT)                                                                             \
    for (uint32_t j = 0; j < n; j++) {                                                             \
        const uint8_t *c = codes + (size_t)j * words * 8;                                          \
        uint32_t a = 0, p = 0;                                                                     \
        for (uint32_t i = 0; i < words; i++) {                                                     \
            uint64_t x = word_at(c + 8ull * i);                                                    \
            a += (uint32_t)POPCOUNT(x & planes[i]) +                                               \
                 2u * (uint32_t)POPCOUNT(x & planes[words + i]) +                                  \
                 4u * (uint32_t)POPCOUNT(x & planes[2 * words + i]) +                              \
                 8u * (uint32_t)POPCOUNT(x & planes[3 * words + i]);                               \
            p += (uint32_t)POPCOUNT(x);                                                            \
        }                                                                                          \
        s[j] = a;                                                                                  \
        pop[j] = p;                                                                                \
    }

static void bits_portable(const uint64_t *planes, const uint8_t *codes, uint32_t n, uint32_t words,
                          uint32_t *s, uint32_t *pop){BODY(__builtin_popcountll)}

#if defined(__x86_64__)
#define T_POPCNT __attribute__((target("popcnt")))
#define T_AVX2 __attribute__((target("avx2")))
#define T_VPOP __attribute__((target("avx512f,avx512vpopcntdq")))

T_POPCNT
    static void bits_popcnt(const uint64_t *planes, const uint8_t *codes, uint32_t n,
                            uint32_t words, uint32_t *s, uint32_t *pop){BODY(__builtin_popcountll)}

/* One code's per-lane sums: the weighted plane counts, and its own count << 32. */
T_VPOP static inline __m512i lanes(__m512i c, __m512i q0, __m512i q1, __m512i q2, __m512i q3)
{
    __m512i a = _mm512_popcnt_epi64(_mm512_and_si512(c, q0));
    a = _mm512_add_epi64(a, _mm512_slli_epi64(_mm512_popcnt_epi64(_mm512_and_si512(c, q1)), 1));
    a = _mm512_add_epi64(a, _mm512_slli_epi64(_mm512_popcnt_epi64(_mm512_and_si512(c, q2)), 2));
    a = _mm512_add_epi64(a, _mm512_slli_epi64(_mm512_popcnt_epi64(_mm512_and_si512(c, q3)), 3));
    return _mm512_add_epi64(a, _mm512_slli_epi64(_mm512_popcnt_epi64(c), 32));
}

/* Eight words at a time; the plane sum and the code's own count share one reduction (pop
 * in the high 32 bits of each lane). */
T_VPOP static void bits_vpop(const uint64_t *planes, const uint8_t *codes, uint32_t n,
                             uint32_t words, uint32_t *s, uint32_t *pop)
{
    if (words <= 8) {
        const __mmask8 m = (__mmask8)((1u << words) - 1);
        const __m512i q0 = _mm512_maskz_loadu_epi64(m, planes),
                      q1 = _mm512_maskz_loadu_epi64(m, planes + words),
                      q2 = _mm512_maskz_loadu_epi64(m, planes + 2 * words),
                      q3 = _mm512_maskz_loadu_epi64(m, planes + 3 * words);
        uint32_t j = 0;
        /* Eight codes at a time, their lane sums reduced together (a transpose). */
        for (; j + 8 <= n; j += 8) {
            const char *pf = (const char *)codes + (size_t)(j + 16) * words * 8;
            for (uint32_t o = 0; o < 8 * words * 8; o += 64)
                _mm_prefetch(pf + o, _MM_HINT_T0);
            __m512i v[8];
            for (int u = 0; u < 8; u++)
                v[u] = lanes(_mm512_maskz_loadu_epi64(m, codes + (size_t)(j + u) * words * 8), q0,
                             q1, q2, q3);
            __m512i a[4];
            for (int u = 0; u < 4; u++)
                a[u] = _mm512_add_epi64(_mm512_unpacklo_epi64(v[2 * u], v[2 * u + 1]),
                                        _mm512_unpackhi_epi64(v[2 * u], v[2 * u + 1]));
            __m512i b0 = _mm512_add_epi64(_mm512_shuffle_i64x2(a[0], a[1], 0x88),
                                          _mm512_shuffle_i64x2(a[0], a[1], 0xDD));
            __m512i b1 = _mm512_add_epi64(_mm512_shuffle_i64x2(a[2], a[3], 0x88),
                                          _mm512_shuffle_i64x2(a[2], a[3], 0xDD));
            __m512i r = _mm512_add_epi64(_mm512_shuffle_i64x2(b0, b1, 0x88),
                                         _mm512_shuffle_i64x2(b0, b1, 0xDD));
            _mm256_storeu_si256((__m256i *)(void *)(s + j), _mm512_cvtepi64_epi32(r));
            _mm256_storeu_si256((__m256i *)(void *)(pop + j),
                                _mm512_cvtepi64_epi32(_mm512_srli_epi64(r, 32)));
        }
        for (; j < n; j++) {
            __m512i a =
                lanes(_mm512_maskz_loadu_epi64(m, codes + (size_t)j * words * 8), q0, q1, q2, q3);
            uint64_t r = (uint64_t)_mm512_reduce_add_epi64(a);
            s[j] = (uint32_t)r;
            pop[j] = (uint32_t)(r >> 32);
        }
        return;
    }
    for (uint32_t j = 0; j < n; j++) {
        const uint8_t *c8 = codes + (size_t)j * words * 8;
        __m512i a = _mm512_setzero_si512();
        for (uint32_t i = 0; i < words; i += 8) {
            const __mmask8 m = (__mmask8)(words - i >= 8 ? 0xffu : (1u << (words - i)) - 1);
            __m512i c = _mm512_maskz_loadu_epi64(m, c8 + 8ull * i);
            for (uint32_t k = 0; k < 4; k++) {
                __m512i q = _mm512_maskz_loadu_epi64(m, planes + (size_t)k * words + i);
                a = _mm512_add_epi64(a,
                                     _mm512_sll_epi64(_mm512_popcnt_epi64(_mm512_and_si512(c, q)),
                                                      _mm_cvtsi32_si128((int)k)));
            }
            a = _mm512_add_epi64(a, _mm512_slli_epi64(_mm512_popcnt_epi64(c), 32));
        }
        uint64_t r = (uint64_t)_mm512_reduce_add_epi64(a);
        s[j] = (uint32_t)r;
        pop[j] = (uint32_t)(r >> 32);
    }
}

/* Byte popcounts by nibble lookup; the four planes weighted per byte (at most 8 * 15) and
 * summed per 64-bit lane with vpsadbw. */
T_AVX2 static inline __m256i pop8(__m256i x, __m256i lut, __m256i low)
{
    __m256i lo = _mm256_shuffle_epi8(lut, _mm256_and_si256(x, low));
    __m256i hi = _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(x, 4), low));
    return _mm256_add_epi8(lo, hi);
}

T_AVX2 static void bits_avx2(const uint64_t *planes, const uint8_t *codes, uint32_t n,
                             uint32_t words, uint32_t *s, uint32_t *pop)
{
    const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2,
                                         1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    const __m256i low = _mm256_set1_epi8(0x0f), zero = _mm256_setzero_si256();
    for (uint32_t j = 0; j < n; j++) {
        const uint8_t *c8 = codes + (size_t)j * words * 8;
        __m256i a = zero, p = zero;
        for (uint32_t i = 0; i < words; i += 4) {
            uint32_t left = words - i;
            __m256i m =
                _mm256_setr_epi64x(-1, left > 1 ? -1 : 0, left > 2 ? -1 : 0, left > 3 ? -1 : 0);
            __m256i c = _mm256_maskload_epi64((const long long *)(const void *)(c8 + 8ull * i), m);
            const long long *q = (const long long *)(const void *)(planes + i);
            __m256i t0 = pop8(_mm256_and_si256(c, _mm256_maskload_epi64(q, m)), lut, low);
            __m256i t1 = pop8(_mm256_and_si256(c, _mm256_maskload_epi64(q + words, m)), lut, low);
            __m256i t2 =
                pop8(_mm256_and_si256(c, _mm256_maskload_epi64(q + 2 * words, m)), lut, low);
            __m256i t3 =
                pop8(_mm256_and_si256(c, _mm256_maskload_epi64(q + 3 * words, m)), lut, low);
            t1 = _mm256_add_epi8(t1, t1);
            t2 = _mm256_add_epi8(t2, t2);
            t2 = _mm256_add_epi8(t2, t2);
            t3 = _mm256_add_epi8(t3, t3);
            t3 = _mm256_add_epi8(t3, t3);
            t3 = _mm256_add_epi8(t3, t3);
            __m256i w = _mm256_add_epi8(_mm256_add_epi8(t0, t1), _mm256_add_epi8(t2, t3));
            a = _mm256_add_epi64(a, _mm256_sad_epu8(w, zero));
            p = _mm256_add_epi64(p, _mm256_sad_epu8(pop8(c, lut, low), zero));
        }
        a = _mm256_add_epi64(a, _mm256_slli_epi64(p, 32));
        __m128i r = _mm_add_epi64(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
        r = _mm_add_epi64(r, _mm_unpackhi_epi64(r, r));
        uint64_t v = (uint64_t)_mm_cvtsi128_si64(r);
        s[j] = (uint32_t)v;
        pop[j] = (uint32_t)(v >> 32);
    }
}
#endif

/* The int8 row check of the bits re-rank: qs . code (dim floats and bytes) in one order on
 * every CPU: 16 partial sums (sum i takes the terms k = i mod 16, in order, each product
 * rounded then added), then halved pairwise (i + 8, i + 4, i + 2, i + 1). */
static float codes_portable(const float *qs, const uint8_t *c, uint32_t dim)
{
    float p[16] = {0};
    uint32_t k = 0;
    for (; k + 16 <= dim; k += 16)
        for (uint32_t i = 0; i < 16; i++)
            p[i] += qs[k + i] * (float)c[k + i];
    for (uint32_t i = 0; k < dim; k++, i++)
        p[i] += qs[k] * (float)c[k];
    for (uint32_t w = 8; w > 0; w /= 2)
        for (uint32_t i = 0; i < w; i++)
            p[i] += p[i + w];
    return p[0];
}

#if defined(__x86_64__)
#define T_AVX512F __attribute__((target("avx512f")))

/* The last partial sums (four lanes) halved as codes_portable does. */
static inline float reduce4(__m128 x)
{
    x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    x = _mm_add_ss(x, _mm_shuffle_ps(x, x, 1));
    return _mm_cvtss_f32(x);
}

T_AVX512F static float codes_avx512(const float *qs, const uint8_t *c, uint32_t dim)
{
    __m512 a = _mm512_setzero_ps();
    uint32_t k = 0;
    for (; k + 16 <= dim; k += 16) {
        __m512 x = _mm512_cvtepi32_ps(
            _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(c + k))));
        a = _mm512_add_ps(a, _mm512_mul_ps(_mm512_loadu_ps(qs + k), x));
    }
    if (k < dim) {
        uint8_t t[16] = {0};
        memcpy(t, c + k, dim - k);
        const __mmask16 m = (__mmask16)((1u << (dim - k)) - 1);
        __m512 x = _mm512_cvtepi32_ps(
            _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(const void *)t)));
        a = _mm512_mask_add_ps(a, m, a, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, qs + k), x));
    }
    __m256 h = _mm256_add_ps(_mm512_castps512_ps256(a),
                             _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1)));
    return reduce4(_mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
}

/* Eight bytes at p as eight floats. */
T_AVX2 static inline __m256 bytes8(const uint8_t *p)
{
    return _mm256_cvtepi32_ps(
        _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)p)));
}

T_AVX2 static float codes_avx2(const float *qs, const uint8_t *c, uint32_t dim)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = a0; /* partial sums 0-7 and 8-15 */
    uint32_t k = 0;
    for (; k + 16 <= dim; k += 16) {
        a0 = _mm256_add_ps(a0, _mm256_mul_ps(_mm256_loadu_ps(qs + k), bytes8(c + k)));
        a1 = _mm256_add_ps(a1, _mm256_mul_ps(_mm256_loadu_ps(qs + k + 8), bytes8(c + k + 8)));
    }
    if (k < dim) {
        uint8_t t[16] = {0};
        float tq[16] = {0};
        memcpy(t, c + k, dim - k);
        memcpy(tq, qs + k, (dim - k) * sizeof *qs);
        const int left = (int)(dim - k);
        const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        __m256 m0 = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(left), lane));
        __m256 m1 = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(left - 8), lane));
        a0 = _mm256_blendv_ps(a0, _mm256_add_ps(a0, _mm256_mul_ps(_mm256_loadu_ps(tq), bytes8(t))),
                              m0);
        a1 = _mm256_blendv_ps(
            a1, _mm256_add_ps(a1, _mm256_mul_ps(_mm256_loadu_ps(tq + 8), bytes8(t + 8))), m1);
    }
    __m256 h = _mm256_add_ps(a0, a1);
    return reduce4(_mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
}
#endif

static const ap_kernel_info CODES[] = {
#if defined(__x86_64__)
    {"avx512f", {"avx512f", NULL}},
    {"avx2", {"avx2", NULL}},
#endif
    {"portable", {NULL, NULL}},
};
static const ap_codes_dot_fn CODES_FN[] = {
#if defined(__x86_64__)
    codes_avx512,
    codes_avx2,
#endif
    codes_portable,
};
#define NCODES ((int)(sizeof CODES / sizeof CODES[0]))
_Static_assert(sizeof CODES / sizeof CODES[0] == sizeof CODES_FN / sizeof CODES_FN[0],
               "one function per codes kernel");

ap_codes_dot_fn ap_kernel_codes(void)
{
    static _Atomic int best = -1;
    int b = best;
    if (b < 0) best = b = ap_kernel_best(CODES, NCODES);
    if (ap_kernels_portable) b = NCODES - 1;
    return CODES_FN[b];
}

ap_codes_dot_fn ap_kernel_codes_for(const char *isa)
{
    int i = ap_kernel_find(CODES, NCODES, isa);
    return i < 0 ? NULL : CODES_FN[i];
}

/* The versions, best first; BITS_FN[i] is BITS[i]'s. */
static const ap_kernel_info BITS[] = {
#if defined(__x86_64__)
    {"avx512vpopcntdq", {"avx512vpopcntdq", NULL}},
    {"avx2", {"avx2", NULL}},
    {"popcnt", {"popcnt", NULL}},
#endif
    {"portable", {NULL, NULL}},
};
static const ap_bits_block_fn BITS_FN[] = {
#if defined(__x86_64__)
    bits_vpop,
    bits_avx2,
    bits_popcnt,
#endif
    bits_portable,
};
#define NBITS ((int)(sizeof BITS / sizeof BITS[0]))
_Static_assert(sizeof BITS / sizeof BITS[0] == sizeof BITS_FN / sizeof BITS_FN[0],
               "one function per bits kernel");

ap_bits_block_fn ap_kernel_bits(const char **name)
{
    static _Atomic int best = -1;
    int b = best;
    if (b < 0) best = b = ap_kernel_best(BITS, NBITS);
    if (ap_kernels_portable) b = NBITS - 1;
    if (name) *name = BITS[b].name;
    return BITS_FN[b];
}

ap_bits_block_fn ap_kernel_bits_for(const char *isa)
{
    int i = ap_kernel_find(BITS, NBITS, isa);
    return i < 0 ? NULL : BITS_FN[i];
}

const char *ap_search_kernel_bits(void)
{
    const char *name;
    ap_kernel_bits(&name);
    return name;
}

ap_bits_score_fn ap_bits_kernel_for(const char *isa)
{
    return ap_kernel_bits_for(isa);
}
