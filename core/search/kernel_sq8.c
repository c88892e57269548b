/* int8 sidecar kernels: sum over d of w[d] * code[d] in int32 — exact, so every version
 * gives the same integers. code is unsigned (0..255), w signed (-127..127): a sum over
 * 4096 dims stays far inside int32. */
#include <string.h>

#include "annpack/search.h"
#include "kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

static void block_portable(const int8_t *w, const uint8_t *codes, uint32_t n, uint32_t stride,
                           int32_t *out)
{
    for (uint32_t j = 0; j < n; j++) {
        const uint8_t *c = codes + (size_t)j * stride;
        int32_t s = 0;
        for (uint32_t i = 0; i < stride; i++)
            s += (int32_t)w[i] * (int32_t)c[i];
        out[j] = s;
    }
}

#if defined(__x86_64__)
#define T_VNNI __attribute__((target("avx512f,avx512bw,avx512vnni")))
#define T_BW __attribute__((target("avx512f,avx512bw")))
#define T_AVX2 __attribute__((target("avx2")))
#define PREFETCH_AHEAD 1024

/* u8 x s8 products summed four at a time into int32 lanes (vpdpbusd); each row read front
 * to back (a single sequential stream prefetched ahead reaches the memory bandwidth). */
T_VNNI static void block_vnni(const int8_t *w, const uint8_t *codes, uint32_t n, uint32_t stride,
                              int32_t *out)
{
    const uint32_t m128 = stride & ~127u;
    for (uint32_t j = 0; j < n; j++) {
        const uint8_t *c = codes + (size_t)j * stride;
        const char *pf = (const char *)c + PREFETCH_AHEAD;
        __m512i a = _mm512_setzero_si512(), b = a;
        for (uint32_t i = 0; i < m128; i += 128) {
            _mm_prefetch(pf + i, _MM_HINT_T0);
            _mm_prefetch(pf + i + 64, _MM_HINT_T0);
            a = _mm512_dpbusd_epi32(a, _mm512_loadu_si512((const void *)(c + i)),
                                    _mm512_loadu_si512((const void *)(w + i)));
            b = _mm512_dpbusd_epi32(b, _mm512_loadu_si512((const void *)(c + i + 64)),
                                    _mm512_loadu_si512((const void *)(w + i + 64)));
        }
        if (stride & 64) {
            _mm_prefetch(pf + m128, _MM_HINT_T0);
            a = _mm512_dpbusd_epi32(a, _mm512_loadu_si512((const void *)(c + m128)),
                                    _mm512_loadu_si512((const void *)(w + m128)));
        }
        out[j] = _mm512_reduce_add_epi32(_mm512_add_epi32(a, b));
    }
}

#define WIDE_MAX 4096

/* The weights as int16, once per call, for the kernels that multiply-add int16 pairs;
 * 0 when stride is too large (only with ANNPACK_MAX_DIM raised past its default). */
static int widen(const int8_t *w, uint32_t stride, int16_t *w16)
{
    if (stride > WIDE_MAX) return 0;
    /* NOLINTNEXTLINE(bugprone-signed-char-misuse,cert-str34-c): the weights are signed by design */
    for (uint32_t i = 0; i < stride; i++)
        w16[i] = (int16_t)w[i];
    return 1;
}

/* Without VNNI: widen codes to int16 and multiply-add pairs (vpmaddwd) against the
 * weights widened once per call. */
T_BW static void block_bw(const int8_t *w, const uint8_t *codes, uint32_t n, uint32_t stride,
                          int32_t *out)
{
    int16_t w16[WIDE_MAX];
    if (!widen(w, stride, w16)) {
        block_portable(w, codes, n, stride, out);
        return;
    }
    for (uint32_t j = 0; j < n; j++) {
        const uint8_t *c = codes + (size_t)j * stride;
        __m512i a = _mm512_setzero_si512();
        _mm_prefetch((const char *)c + PREFETCH_AHEAD, _MM_HINT_T0);
        for (uint32_t i = 0; i < stride; i += 32) {
            __m512i cc =
                _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(const void *)(c + i)));
            a = _mm512_add_epi32(
                a, _mm512_madd_epi16(cc, _mm512_loadu_si512((const void *)(w16 + i))));
        }
        out[j] = _mm512_reduce_add_epi32(a);
    }
}

T_AVX2 static void block_avx2(const int8_t *w, const uint8_t *codes, uint32_t n, uint32_t stride,
                              int32_t *out)
{
    int16_t w16[WIDE_MAX];
    if (!widen(w, stride, w16)) {
        block_portable(w, codes, n, stride, out);
        return;
    }
    for (uint32_t j = 0; j < n; j++) {
        const uint8_t *c = codes + (size_t)j * stride;
        __m256i a = _mm256_setzero_si256();
        _mm_prefetch((const char *)c + PREFETCH_AHEAD, _MM_HINT_T0);
        for (uint32_t i = 0; i < stride; i += 16) {
            __m256i cc =
                _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(c + i)));
            a = _mm256_add_epi32(
                a, _mm256_madd_epi16(cc,
                                     _mm256_loadu_si256((const __m256i *)(const void *)(w16 + i))));
        }
        __m128i s = _mm_add_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
        s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
        s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
        out[j] = _mm_cvtsi128_si32(s);
    }
}
#endif

/* The versions, best first; SQ8_FN[i] is SQ8[i]'s. */
static const ap_kernel_info SQ8[] = {
#if defined(__x86_64__)
    {"avx512vnni", {"avx512bw", "avx512vnni"}},
    {"avx512bw", {"avx512bw", NULL}},
    {"avx2", {"avx2", NULL}},
#endif
    {"portable", {NULL, NULL}},
};
static const ap_sq8_block_fn SQ8_FN[] = {
#if defined(__x86_64__)
    block_vnni,
    block_bw,
    block_avx2,
#endif
    block_portable,
};
#define NSQ8 ((int)(sizeof SQ8 / sizeof SQ8[0]))
_Static_assert(sizeof SQ8 / sizeof SQ8[0] == sizeof SQ8_FN / sizeof SQ8_FN[0],
               "one function per sq8 kernel");

ap_sq8_block_fn ap_kernel_sq8(const char **name)
{
    /* CPU features do not change: choose once. */
    static _Atomic int best = -1;
    int b = best;
    if (b < 0) best = b = ap_kernel_best(SQ8, NSQ8);
    if (ap_kernels_portable) b = NSQ8 - 1;
    if (name) *name = SQ8[b].name;
    return SQ8_FN[b];
}

ap_sq8_block_fn ap_kernel_sq8_for(const char *isa)
{
    int i = ap_kernel_find(SQ8, NSQ8, isa);
    return i < 0 ? NULL : SQ8_FN[i];
}
