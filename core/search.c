/* IVF search primitives: see include/annpack/search.h. */
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "annpack/search.h"
#include "fp16.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

/* --- top-k ------------------------------------------------------------------------- */

/* a is worse than b: lower score, or same score and higher id. */
static inline int worse(const ap_hit *a, const ap_hit *b)
{
    return a->score < b->score || (a->score == b->score && a->id > b->id);
}

void ap_topk_init(ap_topk *t, ap_hit *buf, uint32_t k)
{
    t->h = buf;
    t->k = k;
    t->n = 0;
}

static void sift_down(ap_hit *h, uint32_t n, uint32_t i)
{
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && worse(&h[l], &h[w])) w = l;
        if (r < n && worse(&h[r], &h[w])) w = r;
        if (w == i) return;
        ap_hit t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

void ap_topk_push(ap_topk *t, uint64_t id, float score, uint32_t layer)
{
    ap_hit x = {.id = id, .score = score, .layer = layer};
    if (t->n < t->k) {
        uint32_t i = t->n++;
        t->h[i] = x;
        while (i > 0) {
            uint32_t p = (i - 1) / 2;
            if (!worse(&t->h[i], &t->h[p])) break;
            ap_hit tmp = t->h[i];
            t->h[i] = t->h[p];
            t->h[p] = tmp;
            i = p;
        }
    } else if (t->k > 0 && worse(&t->h[0], &x)) {
        t->h[0] = x;
        sift_down(t->h, t->n, 0);
    }
}

static int cmp_best_first(const void *a, const void *b)
{
    const ap_hit *x = a, *y = b;
    if (worse(y, x)) return -1;
    if (worse(x, y)) return 1;
    return 0;
}

uint32_t ap_topk_finish(ap_topk *t)
{
    qsort(t->h, t->n, sizeof *t->h, cmp_best_first);
    return t->n;
}

/* --- kernels -------------------------------------------------------------------------- */

/* The canonical summation: 16 lane accumulators over the first dim & ~15 elements (lane l
 * sums elements l, l+16, ...), reduced as ((s0+s8)+(s4+s12))+... by reduce16, then the
 * tail added in order. Every kernel must follow it exactly. */
static inline float reduce16(const float a[16])
{
    float s[8], t[4], u[2];
    for (int l = 0; l < 8; l++) s[l] = a[l] + a[l + 8];
    for (int l = 0; l < 4; l++) t[l] = s[l] + s[l + 4];
    for (int l = 0; l < 2; l++) u[l] = t[l] + t[l + 2];
    return u[0] + u[1];
}

static float dot_portable(const float *q, const uint8_t *vec, uint32_t dim)
{
    float acc[16] = {0};
    uint32_t main = dim & ~15u, i = 0;
    for (; i < main; i += 16)
        for (int l = 0; l < 16; l++) {
            uint16_t h;
            memcpy(&h, vec + 2 * (i + l), 2);
            acc[l] += q[i + l] * ap_f16_to_f32(h);
        }
    float r = reduce16(acc);
    for (; i < dim; i++) {
        uint16_t h;
        memcpy(&h, vec + 2 * i, 2);
        r += q[i] * ap_f16_to_f32(h);
    }
    return r;
}

#if defined(__x86_64__)
__attribute__((target("avx2,f16c"))) static float dot_avx2(const float *q, const uint8_t *vec,
                                                            uint32_t dim)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    uint32_t main = dim & ~15u, i = 0;
    for (; i < main; i += 16) {
        __m256 v0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(vec + 2 * i)));
        __m256 v1 =
            _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(vec + 2 * i + 16)));
        a0 = _mm256_add_ps(a0, _mm256_mul_ps(_mm256_loadu_ps(q + i), v0));
        a1 = _mm256_add_ps(a1, _mm256_mul_ps(_mm256_loadu_ps(q + i + 8), v1));
    }
    float acc[16];
    _mm256_storeu_ps(acc, a0);
    _mm256_storeu_ps(acc + 8, a1);
    float r = reduce16(acc);
    for (; i < dim; i++) {
        uint16_t h;
        memcpy(&h, vec + 2 * i, 2);
        r += q[i] * ap_f16_to_f32(h);
    }
    return r;
}

__attribute__((target("avx512f"))) static float dot_avx512(const float *q, const uint8_t *vec,
                                                           uint32_t dim)
{
    __m512 a = _mm512_setzero_ps();
    uint32_t main = dim & ~15u, i = 0;
    for (; i < main; i += 16) {
        __m512 v = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(vec + 2 * i)));
        a = _mm512_add_ps(a, _mm512_mul_ps(_mm512_loadu_ps(q + i), v));
    }
    float acc[16];
    _mm512_storeu_ps(acc, a);
    float r = reduce16(acc);
    for (; i < dim; i++) {
        uint16_t h;
        memcpy(&h, vec + 2 * i, 2);
        r += q[i] * ap_f16_to_f32(h);
    }
    return r;
}
#endif

typedef float (*dot_fn)(const float *, const uint8_t *, uint32_t);
static int g_force_portable;

static dot_fn pick_uncached(const char **name)
{
#if defined(__x86_64__)
    if (!g_force_portable) {
        if (ap_cpu_has("avx512f")) {
            *name = "avx512";
            return dot_avx512;
        }
        if (ap_cpu_has("avx2") && ap_cpu_has("f16c")) {
            *name = "avx2";
            return dot_avx2;
        }
    }
#endif
    *name = "portable";
    return dot_portable;
}

/* The choice is made once per process (and again when forced): CPU features do not
 * change, and the hot loop must not re-detect them. */
static dot_fn pick(const char **name)
{
    static _Atomic(dot_fn) cached;
    static const char *_Atomic cached_name;
    static int cached_force = -1;
    dot_fn f = cached;
    if (f && cached_force == g_force_portable) {
        *name = cached_name;
        return f;
    }
    f = pick_uncached(name);
    cached_name = *name;
    cached_force = g_force_portable;
    cached = f;
    return f;
}

void ap_search_force_portable(int on)
{
    g_force_portable = on;
}

const char *ap_search_kernel(void)
{
    const char *name;
    pick(&name);
    return name;
}

float ap_dot_f16(const float *q, const uint8_t *vec, uint32_t dim)
{
    const char *name;
    return pick(&name)(q, vec, dim);
}

/* --- probe and scan ------------------------------------------------------------------ */

uint32_t ap_probe_lists(const float *centroids, uint32_t n_lists, uint32_t dim, const float *q,
                        uint32_t probe, uint32_t *lists)
{
    if (probe > n_lists) probe = n_lists;
    float sbuf[4096];
    float *s = n_lists <= 4096 ? sbuf : malloc(n_lists * sizeof *s);
    if (!s) return 0;
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)n_lists, (int)dim, 1.0f, centroids, (int)dim, q,
                1, 0.0f, s, 1);
    /* A top-probe selection through the same heap, with the list index as the id. */
    ap_hit hb[256];
    ap_hit *h = probe <= 256 ? hb : malloc(probe * sizeof *h);
    if (!h) {
        if (s != sbuf) free(s);
        return 0;
    }
    ap_topk t;
    ap_topk_init(&t, h, probe);
    for (uint32_t i = 0; i < n_lists; i++) ap_topk_push(&t, i, s[i], 0);
    uint32_t n = ap_topk_finish(&t);
    for (uint32_t i = 0; i < n; i++) lists[i] = (uint32_t)h[i].id;
    if (h != hb) free(h);
    if (s != sbuf) free(s);
    return n;
}

void ap_scan_list(ap_topk *t, const float *q, uint32_t dim, const ap_annp_list *list,
                  const uint8_t *dead, uint64_t dead_base, uint32_t layer)
{
    const char *name;
    dot_fn dot = pick(&name);
    size_t stride = 2ull * dim;
    for (uint32_t j = 0; j < list->count; j++) {
        if (dead) {
            uint64_t b = dead_base + j;
            if (dead[b >> 3] & (1u << (b & 7))) continue;
        }
        float s = dot(q, list->vecs + j * stride, dim);
        ap_topk_push(t, ap_annp_list_id(list, j), s, layer);
    }
}

ap_status ap_annp_search(const ap_annp *a, const float *q, uint32_t k, uint32_t probe,
                         ap_hit *out, uint32_t *n_out, ap_err *err)
{
    const ap_annp_header *h = ap_annp_get_header(a);
    if (k == 0 || k > AP_MAX_K)
        return ap_err_set(err, AP_ERR_ARG, "k = %u outside [1, %u]", k, AP_MAX_K);
    if (probe == 0) return ap_err_set(err, AP_ERR_ARG, "probe must be at least 1");
    if (probe > h->n_lists) probe = h->n_lists;
    uint32_t lbuf[1024];
    uint32_t *lists = probe <= 1024 ? lbuf : malloc(probe * sizeof *lists);
    if (!lists) return ap_err_set(err, AP_ERR_NOMEM, "search: out of memory");
    uint32_t np = ap_probe_lists(ap_annp_centroids(a), h->n_lists, h->dim, q, probe, lists);
    ap_topk t;
    ap_topk_init(&t, out, k);
    for (uint32_t i = 0; i < np; i++) {
        ap_annp_list l;
        ap_annp_list_get(a, lists[i], &l);
        ap_scan_list(&t, q, h->dim, &l, NULL, 0, 0);
    }
    *n_out = ap_topk_finish(&t);
    if (lists != lbuf) free(lists);
    if (np < probe) return ap_err_set(err, AP_ERR_NOMEM, "search: out of memory");
    return AP_OK;
}
