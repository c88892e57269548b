/* Coarse probing with int8 centroid codes: see coarse.h. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "annpack/sq8.h"
#include "coarse.h"
#include "kernels.h"

#define MAX_CODE_BYTES (64u << 20)

struct ap_coarse {
    uint32_t n_lists, dim, stride;
    float *vmin, *step;
    uint8_t *codes; /* n_lists x stride */
};

ap_coarse *ap_coarse_build(const float *centroids, uint32_t n_lists, uint32_t dim)
{
    uint32_t stride = ap_sq8_stride_for(dim);
    if (n_lists < AP_COARSE_MIN_LISTS || (uint64_t)n_lists * stride > MAX_CODE_BYTES) return NULL;
    ap_coarse *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->n_lists = n_lists;
    c->dim = dim;
    c->stride = stride;
    c->vmin = malloc(2ull * dim * sizeof *c->vmin);
    c->codes = aligned_alloc(64, (size_t)n_lists * stride);
    if (!c->vmin || !c->codes) {
        ap_coarse_free(c);
        return NULL;
    }
    c->step = c->vmin + dim;
    ap_sq8_train_f32(centroids, n_lists, dim, c->vmin, c->step);
    for (uint32_t i = 0; i < n_lists; i++)
        ap_sq8_encode_f32(c->vmin, c->step, dim, stride, centroids + (size_t)i * dim,
                          c->codes + (size_t)i * stride);
    return c;
}

void ap_coarse_cache_init(ap_coarse_cache *cc)
{
    atomic_init(&cc->built, 0);
    pthread_mutex_init(&cc->lock, NULL);
    cc->c = NULL;
}

void ap_coarse_cache_free(ap_coarse_cache *cc)
{
    ap_coarse_free(cc->c);
    cc->c = NULL;
    pthread_mutex_destroy(&cc->lock);
}

const ap_coarse *ap_coarse_cache_get(ap_coarse_cache *cc, const ap_annp *a)
{
    if (atomic_load_explicit(&cc->built, memory_order_acquire)) return cc->c;
    pthread_mutex_lock(&cc->lock);
    if (!atomic_load_explicit(&cc->built, memory_order_relaxed)) {
        const ap_annp_header *h = ap_annp_get_header(a);
        cc->c = ap_coarse_build(ap_annp_centroids(a), h->n_lists, h->dim);
        atomic_store_explicit(&cc->built, 1, memory_order_release);
    }
    pthread_mutex_unlock(&cc->lock);
    return cc->c;
}

void ap_coarse_free(ap_coarse *c)
{
    if (!c) return;
    free(c->vmin);
    free(c->codes);
    free(c);
}

uint32_t ap_coarse_stride(const ap_coarse *c)
{
    return c->stride;
}

/* The m-th largest of s[0..n) (1 <= m <= n), by quickselect on tmp (n entries). */
static int32_t mth_largest(const int32_t *s, uint32_t n, uint32_t m, int32_t *tmp)
{
    assert(m >= 1 && m <= n);
    memcpy(tmp, s, n * sizeof *tmp);
    int64_t lo = 0, hi = (int64_t)n - 1, k = (int64_t)m - 1;
    while (lo < hi) {
        int32_t a = tmp[lo], b = tmp[(lo + hi) / 2], c = tmp[hi];
        int32_t pivot = a < b ? (b < c ? b : (a < c ? c : a)) : (a < c ? a : (b < c ? c : b));
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (tmp[i] > pivot)
                i++;
            while (tmp[j] < pivot)
                j--;
            if (i <= j) {
                int32_t t = tmp[i];
                tmp[i++] = tmp[j];
                tmp[j--] = t;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            break; /* tmp[k] == pivot */
    }
    return tmp[k];
}

uint32_t ap_coarse_probe(const ap_coarse *c, const float *centroids, const float *q, uint32_t probe,
                         ap_coarse_work *wk, uint32_t *lists)
{
    const uint32_t n = c->n_lists, m = AP_COARSE_SHORTLIST(probe);
    assert(probe >= 1 && m < n); /* documented precondition (coarse.h) */
    ap_sq8_weights(c->step, c->dim, c->stride, q, wk->w);
    ap_kernel_sq8(NULL)(wk->w, c->codes, n, c->stride, wk->is);
    /* The shortlist: the m best integer scores (exact integers, the same on every kernel),
     * ties to the lower index. */
    const int32_t *is = wk->is;
    /* Branch-light: the maxima of groups of 8 first; their m-th largest g has at least m
     * scores at or above it, so only those few are candidates for the exact selection. */
    uint32_t ng = 0;
    for (uint32_t i0 = 0; i0 < n; i0 += 8) {
        int32_t mx = is[i0];
        for (uint32_t i = i0 + 1; i < i0 + 8 && i < n; i++)
            mx = is[i] > mx ? is[i] : mx;
        wk->tmp[ng++] = mx;
    }
    int32_t g = ng >= m ? mth_largest(wk->tmp, ng, m, wk->tmp + ng) : INT32_MIN;
    uint32_t nc = 0;
    for (uint32_t i = 0; i < n; i++)
        if (is[i] >= g) wk->tmp[nc++] = (int32_t)i;
    int32_t *cs = wk->tmp + nc;
    for (uint32_t i = 0; i < nc; i++)
        cs[i] = is[wk->tmp[i]];
    int32_t floor = mth_largest(cs, nc, m < nc ? m : nc, cs + nc);
    uint32_t ns = 0;
    for (uint32_t i = 0; i < nc; i++)
        if (cs[i] > floor) lists[ns++] = (uint32_t)wk->tmp[i];
    for (uint32_t i = 0; i < nc && ns < m; i++)
        if (cs[i] == floor) lists[ns++] = (uint32_t)wk->tmp[i];
    assert(ns == m); /* nc >= m candidates are at or above g, and m of them are kept */
    /* Re-score the shortlist exactly (rows fetched first) and keep the probe best. */
    for (uint32_t i = 0; i < ns; i++) {
        const char *row = (const char *)(centroids + (size_t)lists[i] * c->dim);
        for (uint32_t o = 0; o < c->dim * 4; o += 64)
            __builtin_prefetch(row + o, 0, 3);
    }
    ap_topk t;
    ap_topk_init(&t, wk->heap, probe);
    for (uint32_t i = 0; i < ns; i++) {
        float sc = cblas_sdot((int)c->dim, centroids + (size_t)lists[i] * c->dim, 1, q, 1);
        ap_topk_push(&t, lists[i], sc, 0);
    }
    uint32_t np = ap_topk_finish(&t);
    assert(np == probe);
    for (uint32_t i = 0; i < np; i++)
        lists[i] = (uint32_t)wk->heap[i].id;
    return np;
}
