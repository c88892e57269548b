/* f16 dot-product kernels: see kernels.h and the summation contract in annpack/search.h.
 *
 * The canonical order, which every version follows exactly (products are rounded, then
 * added: no fused multiply-add):
 *   a[l] (32 lanes) += q[i+l] * v[i+l] for each 32-element chunk of the first dim & ~31;
 *   s[l] = a[l] + a[l+16] (16 lanes); if dim & 16, s[l] += q[m+l] * v[m+l] for the next 16;
 *   r = ((s0+s8)+(s4+s12)) + ((s2+s10)+(s6+s14)) + ... (reduce16); then the last dim & 15
 *   products are added to r in order.
 * Two independent 16-lane chains hide the add latency while the SIMD versions read each
 * vector front to back, one cache line at a time: a single sequential stream with a
 * software prefetch ahead is what reaches the memory bandwidth (interleaving several
 * vectors measured slower). */
#include <string.h>

#include "annpack/search.h"
#include "fp16.h"
#include "kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif
#if defined(__wasm_simd128__)
#include <wasm_simd128.h>
#endif

_Atomic int ap_kernels_portable;

/* Bytes ahead of the current read position that the SIMD kernels prefetch. */
#define PREFETCH_AHEAD 3072

static inline float reduce16(const float s16[16])
{
    float s[8], t[4], u[2];
    for (int l = 0; l < 8; l++)
        s[l] = s16[l] + s16[l + 8];
    for (int l = 0; l < 4; l++)
        t[l] = s[l] + s[l + 4];
    for (int l = 0; l < 2; l++)
        u[l] = t[l] + t[l + 2];
    return u[0] + u[1];
}

static inline float f16_at(const uint8_t *vec, uint32_t i)
{
    uint16_t h;
    memcpy(&h, vec + 2 * i, 2);
    return ap_f16_to_f32(h);
}

static inline float tail(float r, const float *q, const uint8_t *vec, uint32_t from, uint32_t dim)
{
    for (uint32_t i = from; i < dim; i++) {
        float p = q[i] * f16_at(vec, i);
        r = r + p;
    }
    return r;
}

static float dot1_portable(const float *q, const uint8_t *vec, uint32_t dim)
{
    float a[32] = {0}, s[16];
    uint32_t m32 = dim & ~31u;
    for (uint32_t i = 0; i < m32; i += 32)
        for (int l = 0; l < 32; l++) {
            float p = q[i + l] * f16_at(vec, i + l);
            a[l] = a[l] + p;
        }
    for (int l = 0; l < 16; l++)
        s[l] = a[l] + a[l + 16];
    if (dim & 16)
        for (int l = 0; l < 16; l++) {
            float p = q[m32 + l] * f16_at(vec, m32 + l);
            s[l] = s[l] + p;
        }
    return tail(reduce16(s), q, vec, dim & ~15u, dim);
}

static void block_portable(const float *q, const uint8_t *vecs, uint32_t n, uint32_t dim,
                           float *out)
{
    for (uint32_t j = 0; j < n; j++)
        out[j] = dot1_portable(q, vecs + (size_t)j * 2 * dim, dim);
}

#if defined(__x86_64__)
#define T_AVX512 __attribute__((target("avx512f")))
#define T_AVX2 __attribute__((target("avx2,f16c")))

/* reduce16 of the 16 lanes of s, in the canonical order. */
T_AVX512 static inline float hsum512(__m512 s)
{
    __m256 t = _mm256_add_ps(_mm512_castps512_ps256(s),
                             _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(s), 1)));
    __m128 u = _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
    __m128 w = _mm_add_ps(u, _mm_movehl_ps(u, u));
    return _mm_cvtss_f32(_mm_add_ss(w, _mm_shuffle_ps(w, w, 1)));
}

T_AVX512 static void block_avx512(const float *q, const uint8_t *vecs, uint32_t n, uint32_t dim,
                                  float *out)
{
    const size_t stride = 2ull * dim;
    const uint32_t m32 = dim & ~31u;
    for (uint32_t j = 0; j < n; j++) {
        const uint8_t *v = vecs + j * stride;
        const char *pf = (const char *)v + PREFETCH_AHEAD;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0;
        for (uint32_t i = 0; i < m32; i += 32) {
            _mm_prefetch(pf + 2 * i, _MM_HINT_T0);
            __m512i x = _mm512_loadu_si512((const void *)(v + 2 * i));
            __m512 lo = _mm512_cvtph_ps(_mm512_castsi512_si256(x));
            __m512 hi = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(x, 1));
            a0 = _mm512_add_ps(a0, _mm512_mul_ps(_mm512_loadu_ps(q + i), lo));
            a1 = _mm512_add_ps(a1, _mm512_mul_ps(_mm512_loadu_ps(q + i + 16), hi));
        }
        __m512 s = _mm512_add_ps(a0, a1);
        if (dim & 16) {
            __m512 x =
                _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(v + 2 * m32)));
            s = _mm512_add_ps(s, _mm512_mul_ps(_mm512_loadu_ps(q + m32), x));
        }
        out[j] = tail(hsum512(s), q, v, dim & ~15u, dim);
    }
}

/* The 16 lanes as lo (0-7) and hi (8-15): reduce16 in the canonical order. */
T_AVX2 static inline float hsum2x256(__m256 lo, __m256 hi)
{
    __m256 s = _mm256_add_ps(lo, hi);
    __m128 t = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    __m128 u = _mm_add_ps(t, _mm_movehl_ps(t, t));
    return _mm_cvtss_f32(_mm_add_ss(u, _mm_shuffle_ps(u, u, 1)));
}

T_AVX2 static inline __m256 mul8(const float *q, const uint8_t *p)
{
    return _mm256_mul_ps(_mm256_loadu_ps(q),
                         _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)p)));
}

T_AVX2 static void block_avx2(const float *q, const uint8_t *vecs, uint32_t n, uint32_t dim,
                              float *out)
{
    const size_t stride = 2ull * dim;
    const uint32_t m32 = dim & ~31u;
    for (uint32_t j = 0; j < n; j++) {
        const uint8_t *v = vecs + j * stride;
        const char *pf = (const char *)v + PREFETCH_AHEAD;
        /* lanes 0-7, 8-15, 16-23, 24-31 of the canonical 32 */
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (uint32_t i = 0; i < m32; i += 32) {
            _mm_prefetch(pf + 2 * i, _MM_HINT_T0);
            a0 = _mm256_add_ps(a0, mul8(q + i, v + 2 * i));
            a1 = _mm256_add_ps(a1, mul8(q + i + 8, v + 2 * i + 16));
            a2 = _mm256_add_ps(a2, mul8(q + i + 16, v + 2 * i + 32));
            a3 = _mm256_add_ps(a3, mul8(q + i + 24, v + 2 * i + 48));
        }
        __m256 lo = _mm256_add_ps(a0, a2), hi = _mm256_add_ps(a1, a3);
        if (dim & 16) {
            lo = _mm256_add_ps(lo, mul8(q + m32, v + 2 * m32));
            hi = _mm256_add_ps(hi, mul8(q + m32 + 8, v + 2 * m32 + 16));
        }
        out[j] = tail(hsum2x256(lo, hi), q, v, dim & ~15u, dim);
    }
}
#endif

#if defined(__wasm_simd128__)
/* WebAssembly SIMD (the browser's core, web/wasm/): the canonical order in four-lane
 * vectors. f16 -> f32 has no instruction: the magnitude's bits shifted into place and
 * scaled by 2^112 give normals and subnormals exactly; Inf/NaN get the all-ones exponent. */
static inline v128_t cvt4_f16(v128_t h)
{
    v128_t sign = wasm_i32x4_shl(wasm_v128_and(h, wasm_i32x4_splat(0x8000)), 16);
    v128_t bits = wasm_i32x4_shl(wasm_v128_and(h, wasm_i32x4_splat(0x7fff)), 13);
    v128_t f = wasm_f32x4_mul(bits, wasm_f32x4_splat(0x1p112f));
    v128_t special = wasm_i32x4_ge(bits, wasm_i32x4_splat(0x7c00 << 13));
    f = wasm_v128_bitselect(wasm_v128_or(bits, wasm_i32x4_splat(0x7f800000)), f, special);
    return wasm_v128_or(f, sign);
}

/* a[0..1] += q[0..7] * the 8 f16 at v (products rounded, then added). */
static inline void madd8(v128_t *a, const float *q, const uint8_t *v)
{
    v128_t x = wasm_v128_load(v);
    v128_t lo = cvt4_f16(wasm_u32x4_extend_low_u16x8(x));
    v128_t hi = cvt4_f16(wasm_u32x4_extend_high_u16x8(x));
    a[0] = wasm_f32x4_add(a[0], wasm_f32x4_mul(wasm_v128_load(q), lo));
    a[1] = wasm_f32x4_add(a[1], wasm_f32x4_mul(wasm_v128_load(q + 4), hi));
}

static void block_wasm128(const float *q, const uint8_t *vecs, uint32_t n, uint32_t dim, float *out)
{
    const uint32_t m32 = dim & ~31u;
    for (uint32_t j = 0; j < n; j++) {
        const uint8_t *v = vecs + (size_t)j * 2 * dim;
        v128_t a[8]; /* lanes 4k..4k+3 of the 32 */
        for (int k = 0; k < 8; k++)
            a[k] = wasm_f32x4_splat(0.0f);
        for (uint32_t i = 0; i < m32; i += 32)
            for (int k = 0; k < 4; k++)
                madd8(a + 2 * k, q + i + 8 * k, v + 2 * (i + 8 * k));
        v128_t s[4];
        for (int k = 0; k < 4; k++)
            s[k] = wasm_f32x4_add(a[k], a[k + 4]);
        if (dim & 16) {
            madd8(s, q + m32, v + 2 * m32);
            madd8(s + 2, q + m32 + 8, v + 2 * (m32 + 8));
        }
        /* reduce16: lanes l + 8, then l + 4, then l + 2, then l + 1. */
        v128_t t = wasm_f32x4_add(wasm_f32x4_add(s[0], s[2]), wasm_f32x4_add(s[1], s[3]));
        float u0 = wasm_f32x4_extract_lane(t, 0) + wasm_f32x4_extract_lane(t, 2);
        float u1 = wasm_f32x4_extract_lane(t, 1) + wasm_f32x4_extract_lane(t, 3);
        out[j] = tail(u0 + u1, q, v, dim & ~15u, dim);
    }
}
#endif

/* The versions, best first; F16_FN[i] is F16[i]'s. */
static const ap_kernel_info F16[] = {
#if defined(__x86_64__)
    {"avx512", {"avx512f", NULL}},
    {"avx2", {"avx2", "f16c"}},
#endif
#if defined(__wasm_simd128__)
    {"wasm-simd128", {NULL, NULL}}, /* a module built with SIMD runs only where it is there */
#endif
    {"portable", {NULL, NULL}},
};
static const ap_f16_block_fn F16_FN[] = {
#if defined(__x86_64__)
    block_avx512,
    block_avx2,
#endif
#if defined(__wasm_simd128__)
    block_wasm128,
#endif
    block_portable,
};
#define NF16 ((int)(sizeof F16 / sizeof F16[0]))
_Static_assert(sizeof F16 / sizeof F16[0] == sizeof F16_FN / sizeof F16_FN[0],
               "one function per f16 kernel");

ap_f16_block_fn ap_kernel_f16(const char **name)
{
    /* CPU features do not change: choose once. */
    static _Atomic int best = -1;
    int b = best;
    if (b < 0) best = b = ap_kernel_best(F16, NF16);
    if (ap_kernels_portable) b = NF16 - 1;
    if (name) *name = F16[b].name;
    return F16_FN[b];
}

ap_f16_block_fn ap_kernel_f16_for(const char *isa)
{
    int i = ap_kernel_find(F16, NF16, isa);
    return i < 0 ? NULL : F16_FN[i];
}

void ap_prefetch_range(const void *p, uint64_t len)
{
    /* Up to where the kernels' own prefetch starts. */
    const char *c = p;
    uint64_t n = len < PREFETCH_AHEAD ? len : PREFETCH_AHEAD;
    for (uint64_t o = 0; o < n; o += 64)
        __builtin_prefetch(c + o, 0, 3);
}
