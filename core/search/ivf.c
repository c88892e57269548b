/* IVF search: see include/annpack/search.h and ivf.h.
 *
 * One query: score the centroids (OpenBLAS sgemv), keep the probe best lists, scan each
 * list in blocks with the dispatched kernel into a small score buffer, and push only the
 * scores that reach the current top-k floor. With the int8 sidecar the scan keeps the best
 * `rerank` integer scores instead, and those candidates are re-scored with the f16 kernel.
 * Buffers live in per-thread scratch that grows once, so the hot path does not allocate. */
#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>

#include "annpack/search.h"
#include "bits_layout.h"
#include "coarse.h"
#include "ivf.h"
#include "kernels.h"
#include "rabitq.h"
#include "scan.h"

#define BLOCK AP_SCAN_BLOCK
#define BATCH_QUERIES 64u /* queries per centroid sgemm in a batch */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* --- per-thread scratch ------------------------------------------------------------------ */

/* An sq8 candidate: its integer score, and what re-ranking needs. */
typedef struct cand {
    int32_t s;
    uint32_t layer;
    uint64_t id;
    const uint8_t *vec;
} cand;

/* A bits candidate: the upper bound of its score and its position in the list. */
struct bcand {
    float ub;
    uint32_t j, i; /* position in the list, slot of the list in the probe */
};

typedef struct scratch {
    float *cs; /* centroid scores */
    size_t cs_cap;
    uint32_t *lists;
    size_t lists_cap;
    ap_hit *sel; /* list selection heap */
    size_t sel_cap;
    int8_t *w; /* sq8 weights */
    size_t w_cap;
    cand *cand; /* sq8 candidate heap */
    size_t cand_cap;
    int8_t *cw; /* coarse probe: query weights, integer scores */
    size_t cw_cap;
    int32_t *cis;
    size_t cis_cap;
    uint64_t *ids; /* duplicate check of the final hits */
    size_t ids_cap;
    float *bq; /* bits: the rotated query */
    size_t bq_cap;
    uint64_t *planes; /* bits: the query's bit planes */
    size_t planes_cap;
    float fs[BLOCK], fs2[BLOCK];
    int32_t is[BLOCK];
    uint32_t us[BLOCK], up[BLOCK];
    struct bcand *bc; /* bits: the candidates */
    size_t bc_cap;
    float *lbh; /* bits: the k best lower bounds so far (a min-heap) */
    size_t lbh_cap;
    struct bcand *bc2; /* bits: the candidates best bound first */
    size_t bc2_cap;
    uint32_t *bcnt; /* bits: bucket ends of the candidates' order */
    size_t bcnt_cap;
    float *bub, *blb; /* bits: every probed code's upper and lower bound */
    size_t bub_cap, blb_cap;
    ap_annp_list *bl; /* bits: the probed lists */
    size_t bl_cap;
    uint64_t *bbase; /* bits: their first vector's position in the pack */
    size_t bbase_cap;
    const uint8_t **bl8; /* bits: their int8 codes */
    size_t bl8_cap;
    float *bqs; /* bits: q[d] * step[d] of the int8 params */
    size_t bqs_cap;
} scratch;

static pthread_key_t g_key;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *p)
{
    scratch *s = p;
    if (!s) return;
    free(s->cs);
    free(s->lists);
    free(s->sel);
    free(s->w);
    free(s->cand);
    free(s->cw);
    free(s->cis);
    free(s->ids);
    free(s->bq);
    free(s->planes);
    free(s->bc);
    free(s->lbh);
    free(s->bc2);
    free(s->bcnt);
    free(s->bub);
    free(s->blb);
    free(s->bl);
    free(s->bbase);
    free((void *)s->bl8);
    free(s->bqs);
    free(s);
}

static void make_key(void)
{
    pthread_key_create(&g_key, scratch_free);
}

static scratch *get_scratch(void)
{
    pthread_once(&g_once, make_key);
    scratch *s = pthread_getspecific(g_key);
    if (!s && (s = calloc(1, sizeof *s)) && pthread_setspecific(g_key, s) != 0) {
        free(s);
        s = NULL;
    }
    return s;
}

/* Ensures *p holds n elements of size sz. */
static int grow(void **p, size_t *cap, size_t n, size_t sz)
{
    if (n <= *cap) return 1;
    size_t c = *cap ? *cap : 64;
    while (c < n)
        c *= 2;
    void *q = realloc(*p, c * sz);
    if (!q) return 0;
    *p = q;
    *cap = c;
    return 1;
}
#define GROW(s, f, n) grow((void **)&(s)->f, &(s)->f##_cap, (n), sizeof *(s)->f)

static int cmp_id(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Ids are unique in a verified index (verify --deep checks it); one stored twice in an
 * unverified pack would give the same document twice: refuse the answer instead. */
static ap_status check_unique(scratch *s, const ap_hit *hits, uint32_t n, ap_err *err)
{
    if (n < 2) return AP_OK;
    if (!GROW(s, ids, n)) return ap_err_set(err, AP_ERR_NOMEM, "search: out of memory");
    for (uint32_t i = 0; i < n; i++)
        s->ids[i] = hits[i].id;
    qsort(s->ids, n, sizeof *s->ids, cmp_id);
    for (uint32_t i = 1; i < n; i++)
        if (s->ids[i] == s->ids[i - 1])
            return ap_err_set(err, AP_ERR_VERIFY,
                              "search: id %llu is stored twice in the index (run verify --deep)",
                              (unsigned long long)s->ids[i]);
    return AP_OK;
}

/* --- kernels, public wrappers ------------------------------------------------------------ */

void ap_search_force_portable(int on)
{
    ap_kernels_portable = on;
}

const char *ap_search_kernel(void)
{
    const char *name;
    ap_kernel_f16(&name);
    return name;
}

const char *ap_search_kernel_sq8(void)
{
    const char *name;
    ap_kernel_sq8(&name);
    return name;
}

void ap_dot_f16_block(const float *q, const uint8_t *vecs, uint32_t n, uint32_t dim, float *out)
{
    ap_kernel_f16(NULL)(q, vecs, n, dim, out);
}

float ap_dot_f16(const float *q, const uint8_t *vec, uint32_t dim)
{
    float s;
    ap_kernel_f16(NULL)(q, vec, 1, dim, &s);
    return s;
}

/* --- probing ----------------------------------------------------------------------------- */

uint32_t ap_probe_lists(const float *centroids, uint32_t n_lists, uint32_t dim, const float *q,
                        uint32_t probe, uint32_t *lists)
{
    if (probe > n_lists) probe = n_lists;
    float *s = malloc((n_lists ? n_lists : 1) * sizeof *s);
    ap_hit *h = malloc((probe ? probe : 1) * sizeof *h);
    uint32_t n = 0;
    if (s && h) {
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)n_lists, (int)dim, 1.0f, centroids, (int)dim,
                    q, 1, 0.0f, s, 1);
        n = ap_select_lists(s, n_lists, probe, h, lists);
    }
    free(s);
    free(h);
    return n;
}

/* --- scanning ---------------------------------------------------------------------------- */

/* The candidate heap of the sq8 scan: a min-heap by (score, then the higher id worse), so
 * the candidates depend on the live vectors only, not on where they are stored. */
static inline int cand_worse(const cand *a, const cand *b)
{
    return a->s < b->s || (a->s == b->s && a->id > b->id);
}

typedef struct cheap {
    cand *h;
    uint32_t n, cap;
} cheap;

static void cheap_push(cheap *c, cand x)
{
    assert(c->n <= c->cap && c->cap > 0);
    if (c->n < c->cap) {
        uint32_t i = c->n++;
        c->h[i] = x;
        while (i > 0) {
            uint32_t p = (i - 1) / 2;
            if (!cand_worse(&c->h[i], &c->h[p])) break;
            cand t = c->h[i];
            c->h[i] = c->h[p];
            c->h[p] = t;
            i = p;
        }
        return;
    }
    if (!cand_worse(&c->h[0], &x)) return;
    c->h[0] = x;
    for (uint32_t i = 0;;) {
        uint32_t l = 2 * i + 1, r = l + 1, w = i;
        if (l < c->n && cand_worse(&c->h[l], &c->h[w])) w = l;
        if (r < c->n && cand_worse(&c->h[r], &c->h[w])) w = r;
        if (w == i) break;
        cand t = c->h[i];
        c->h[i] = c->h[w];
        c->h[w] = t;
        i = w;
    }
}

static inline int32_t cheap_floor(const cheap *c)
{
    return c->n < c->cap ? INT32_MIN : c->h[0].s;
}

/* Integer scores of one stored list's codes into the candidate heap. */
static void scan_sq8(cheap *c, ap_sq8_block_fn fn, int32_t *buf, const int8_t *w,
                     const uint8_t *codes, uint32_t stride, const ap_annp_list *l, uint32_t dim,
                     const uint8_t *dead, uint64_t dead_base, const ap_keep *keep)
{
    for (uint32_t j0 = 0; j0 < l->count; j0 += BLOCK) {
        uint32_t m = l->count - j0 < BLOCK ? l->count - j0 : BLOCK;
        fn(w, codes + (size_t)j0 * stride, m, stride, buf);
        int32_t floor = cheap_floor(c);
        for (uint32_t j = 0; j < m; j++) {
            if (buf[j] < floor || ap_is_dead(dead, dead_base + j0 + j)) continue;
            uint64_t id = ap_annp_list_id(l, j0 + j);
            if (keep && !keep->fn(keep->ctx, 0, id)) continue;
            cheap_push(c, (cand){buf[j], 0, id, l->vecs + (size_t)(j0 + j) * 2 * dim});
            floor = cheap_floor(c);
        }
    }
}

/* The same for extra vectors x[0..n) with their codes. */
static void scan_sq8_extra(cheap *c, ap_sq8_block_fn fn, int32_t *buf, const int8_t *w,
                           const uint8_t *codes, uint32_t stride, const ap_item *x, size_t n,
                           const uint64_t *layer_seq, const ap_keep *keep)
{
    for (size_t j0 = 0; j0 < n; j0 += BLOCK) {
        uint32_t m = n - j0 < BLOCK ? (uint32_t)(n - j0) : BLOCK;
        fn(w, codes + j0 * stride, m, stride, buf);
        for (uint32_t j = 0; j < m; j++) {
            if (buf[j] < cheap_floor(c)) continue;
            const ap_item *it = &x[j0 + j];
            uint64_t id = ap_item_id(it);
            if (keep && !keep->fn(keep->ctx, it->layer, id)) continue;
            cheap_push(c, (cand){buf[j], (uint32_t)layer_seq[it->layer], id, it->vec});
        }
    }
}

/* --- the engine -------------------------------------------------------------------------- */

ap_status ap_ivf_check(const ap_ivf *ix, ap_search_params *p, ap_err *err)
{
    const ap_annp_header *h = ap_annp_get_header(ix->annp);
    if (p->k == 0 || p->k > AP_MAX_K)
        return ap_err_set(err, AP_ERR_ARG, "k = %u outside [1, %u]", p->k, AP_MAX_K);
    if (p->probe == 0) return ap_err_set(err, AP_ERR_ARG, "probe must be at least 1");
    if (p->probe > h->n_lists) p->probe = h->n_lists;
    /* auto: the int8 codes when the pack has them, else the exact scan. The 1-bit codes are
     * asked for (AP_SCAN_BITS): on the harness's data they are slower than the int8 scan
     * at every probe and than f16 below probe 16, and their bound lets recall slip by up to
     * ~0.0005 (docs/BENCHMARKS.md, "1-bit codes"). */
    if (p->scan == AP_SCAN_AUTO) p->scan = ix->sq8 ? AP_SCAN_SQ8 : AP_SCAN_F16;
    if (p->scan == AP_SCAN_SQ8 && !ix->sq8)
        return ap_err_set(err, AP_ERR_ARG,
                          "int8 scan requested but %s has no int8 sidecar (%s): build with --sq8",
                          ap_annp_path(ix->annp), AP_SQ8);
    if (p->scan == AP_SCAN_BITS && !ix->bits)
        return ap_err_set(err, AP_ERR_ARG,
                          "bits scan requested but %s has no 1-bit code sidecar (%s): build with "
                          "--bits",
                          ap_annp_path(ix->annp), AP_BITS);
    if (p->scan != AP_SCAN_F16 && p->scan != AP_SCAN_SQ8 && p->scan != AP_SCAN_BITS)
        return ap_err_set(err, AP_ERR_ARG, "unknown scan mode %d", (int)p->scan);
    if (p->rerank == 0) p->rerank = ap_default_rerank(p->k);
    if (p->rerank < p->k) p->rerank = p->k;
    if (p->rerank > AP_MAX_RERANK)
        return ap_err_set(err, AP_ERR_ARG, "rerank %u exceeds %u", p->rerank, AP_MAX_RERANK);
    return AP_OK;
}

/* What a scan read, for the stats. */
typedef struct scan_counts {
    uint64_t vectors, bytes, reranked;
} scan_counts;

/* int8 scan of the np lists in s->lists (and their extra vectors) into p->rerank
 * candidates, then those re-scored exactly (f16) into t. */
static ap_status scan_lists_sq8(const ap_ivf *ix, scratch *s, const float *q, uint32_t np,
                                const ap_search_params *p, ap_f16_block_fn f16, ap_topk *t,
                                scan_counts *sc, const char **kname, ap_err *err)
{
    const ap_annp *a = ix->annp;
    const uint32_t dim = ap_annp_get_header(a)->dim;
    if (!GROW(s, w, ap_sq8_stride(ix->sq8)) || !GROW(s, cand, p->rerank))
        return ap_err_set(err, AP_ERR_NOMEM, "search: out of memory");
    ap_sq8_query(ix->sq8, q, s->w);
    ap_sq8_block_fn fn = ap_kernel_sq8(kname);
    cheap c = {.h = s->cand, .n = 0, .cap = p->rerank};
    const uint32_t stride = ap_sq8_stride(ix->sq8);
    for (uint32_t i = 0; i < np; i++) {
        uint32_t li = s->lists[i];
        ap_annp_list l;
        ap_annp_list_get(a, li, &l);
        if (i + 1 < np) ap_prefetch_range(ap_sq8_list_codes(ix->sq8, s->lists[i + 1]), 1024);
        scan_sq8(&c, fn, s->is, s->w, ap_sq8_list_codes(ix->sq8, li), stride, &l, dim, ix->dead,
                 ap_annp_list_start(a, li), ix->keep);
        sc->vectors += l.count;
        sc->bytes += (uint64_t)l.count * stride;
        if (ix->xstart && ix->xstart[li + 1] > ix->xstart[li]) {
            size_t x0 = ix->xstart[li], nx = ix->xstart[li + 1] - x0;
            scan_sq8_extra(&c, fn, s->is, s->w, ix->xcodes + x0 * stride, stride, ix->x + x0, nx,
                           ix->layer_seq, ix->keep);
            sc->vectors += nx;
            sc->bytes += nx * stride;
        }
    }
    /* Re-score the candidates exactly: fetch them all first, then score. */
    for (uint32_t i = 0; i < c.n; i++)
        for (uint32_t o = 0; o < 2 * dim; o += 64)
            __builtin_prefetch(c.h[i].vec + o, 0, 3);
    for (uint32_t i = 0; i < c.n; i++) {
        float score;
        f16(q, c.h[i].vec, 1, dim, &score);
        ap_topk_push(t, c.h[i].id, score, c.h[i].layer);
    }
    sc->reranked = c.n;
    return AP_OK;
}

/* The candidates as a max-heap by bound (ties: lower position first, a total order; NaN
 * bounds never get here), so they come out best bound first while only the ones re-scored
 * are ordered: the first list of a query has every vector as a candidate. */
static inline int bc_before(const struct bcand *x, const struct bcand *y)
{
    return x->ub > y->ub || (x->ub == y->ub && (x->i < y->i || (x->i == y->i && x->j < y->j)));
}

static void bc_sift(struct bcand *c, uint32_t n, uint32_t i)
{
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && bc_before(&c[l], &c[w])) w = l;
        if (r < n && bc_before(&c[r], &c[w])) w = r;
        if (w == i) return;
        struct bcand t = c[i];
        c[i] = c[w];
        c[w] = t;
        i = w;
    }
}

static void bc_heapify(struct bcand *c, uint32_t n)
{
    for (uint32_t i = n / 2; i-- > 0;)
        bc_sift(c, n, i);
}

/* Removes and returns the best candidate of the heap c[0..*n), *n > 0. */
static struct bcand bc_pop(struct bcand *c, uint32_t *n)
{
    struct bcand top = c[0];
    c[0] = c[--*n];
    bc_sift(c, *n, 0);
    return top;
}

/* Adds lower bound x to the min-heap h of the cap best (*n of them so far). */
static void lb_push(float *h, uint32_t *n, uint32_t cap, float x)
{
    uint32_t i;
    if (*n < cap) {
        i = (*n)++;
        while (i > 0 && h[(i - 1) / 2] > x) {
            h[i] = h[(i - 1) / 2];
            i = (i - 1) / 2;
        }
        h[i] = x;
        return;
    }
    if (!(x > h[0])) return;
    for (i = 0;;) {
        uint32_t l = 2 * i + 1, r = l + 1, w = i;
        float best = x;
        if (l < *n && h[l] < best) w = l, best = h[l];
        if (r < *n && h[r] < best) w = r;
        if (w == i) break;
        h[i] = h[w];
        i = w;
    }
    h[i] = x;
}

#define BITS_AHEAD 8u /* re-scored rows prefetched ahead */
#define BITS_DEFER 4u /* f16 re-scores waiting for their rows */

/* q . c in one fixed order on every CPU (16 partial sums, then pairwise): independent
 * chains, so it does not wait on one add at a time. */
static float dot_fixed(const float *q, const float *c, uint32_t dim)
{
    float p[16] = {0};
    uint32_t k = 0;
    for (; k + 16 <= dim; k += 16)
        for (uint32_t i = 0; i < 16; i++)
            p[i] += q[k + i] * c[k + i];
    for (uint32_t i = 0; k < dim; k++, i++)
        p[i] += q[k] * c[k];
    for (uint32_t w = 8; w > 0; w /= 2)
        for (uint32_t i = 0; i < w; i++)
            p[i] += p[i + w];
    return p[0];
}

/* The exact score of the f16 vector at v, pushed when it reaches the floor. */
static inline void push_exact(ap_topk *t, ap_f16_block_fn f16, const float *q, uint32_t dim,
                              const uint8_t *v, uint64_t id, uint32_t layer)
{
    float score;
    f16(q, v, 1, dim, &score);
    if (score >= ap_topk_floor(t)) ap_topk_push(t, id, score, layer);
}

/* The bucket of bound ub of [lo, hi]: 0 holds the highest bounds. */
static inline uint32_t bc_bucket(float ub, float hi, float scale, uint32_t nb)
{
    float f = (hi - ub) * scale;
    uint32_t b = f < (float)nb ? (uint32_t)f : nb - 1;
    return b < nb ? b : nb - 1;
}

/* Starts fetching candidate c's int8 row (stride > 0) or else its f16 row and id. */
static inline void prefetch_cand(const scratch *s, const struct bcand *c, uint32_t dim,
                                 uint32_t stride)
{
    if (stride) {
        const uint8_t *v = s->bl8[c->i] + (size_t)c->j * stride;
        for (uint32_t o = 0; o < dim; o += 64)
            __builtin_prefetch(v + o, 0, 3);
        return;
    }
    const ap_annp_list *l = &s->bl[c->i];
    const uint8_t *v = l->vecs + (size_t)c->j * 2 * dim;
    for (uint32_t o = 0; o < 2 * dim; o += 64)
        __builtin_prefetch(v + o, 0, 3);
    __builtin_prefetch(l->ids + 8ull * c->j, 0, 3);
}

/* An int8 survivor of the bits re-rank: its int8 upper bound, list slot and position. */
struct bdefer {
    float hi;
    uint32_t i, j;
};

/* Scores survivor d exactly when its bound still reaches the floor; 1 if it did. */
static int defer_score(const scratch *s, ap_topk *t, ap_f16_block_fn f16, const float *q,
                       uint32_t dim, float lbf, const struct bdefer *d)
{
    float fl = ap_topk_floor(t) > lbf ? ap_topk_floor(t) : lbf;
    if (d->hi < fl) return 0;
    const ap_annp_list *l = &s->bl[d->i];
    push_exact(t, f16, q, dim, l->vecs + (size_t)d->j * 2 * dim, ap_annp_list_id(l, d->j), 0);
    return 1;
}

/* For the int8 stage of the bits re-rank: qs[d] = q[d] * step[d], *c0 = q . vmin, and *e8 a
 * bound on |q . x - (c0 + qs . code)| for every stored f16 vector x. A code rounds
 * (x[d] - vmin[d]) / step[d] to the nearest integer in [0, 255] (vmin, vmax the dimension's
 * extremes), so it is off by at most step[d] / 2: the bound is sum |qs[d]| / 2, widened by
 * 1e-4 of it for the codes' own f32 rounding and by the f32 rounding of both dot products
 * (2 dim 2^-24 of the sums of their terms' magnitudes, at most those below). */
static void sq8_bound_query(const ap_sq8 *q8, const float *q, uint32_t dim, float *qs, float *c0,
                            float *e8)
{
    const float *vmin = ap_sq8_vmin(q8), *step = ap_sq8_step(q8);
    double aq = 0, mag = 1; /* mag: 1 bounds sum |q[d] x[d]| of the f16 score */
    for (uint32_t d = 0; d < dim; d++) {
        qs[d] = q[d] * step[d];
        aq += fabs((double)qs[d]);
        mag += fabs((double)q[d] * vmin[d]) + 255.0 * fabs((double)qs[d]);
    }
    *c0 = dot_fixed(q, vmin, dim);
    *e8 = (float)(0.5 * aq * (1 + 1e-4) + 2.0 * dim * 0x1p-24 * mag * 1.01 + 1e-7);
}

/* Upper and lower bounds of the scores of m codes from the kernel's integers and their F
 * and G (unaligned f32): a loop of its own, on restrict pointers, that the compiler
 * vectorises (core has no math errno, so sqrtf is one instruction). */
#if defined(__GNUC__) && !defined(__clang__)
/* GCC's -O2 cost model ("very cheap") leaves a loop that needs an epilogue scalar;
 * vectorising never reorders float operations here (no -ffast-math), so scores are
 * unchanged. */
__attribute__((optimize("vect-cost-model=dynamic")))
#endif
static void
bits_bounds(const ap_rbq_query *qq, uint32_t dpad, float qc, float eps0, const uint8_t *restrict Fp,
            const uint8_t *restrict Gp, const uint32_t *restrict us, const uint32_t *restrict up,
            uint32_t m, float *restrict ub, float *restrict lb)
{
    const ap_rbq_query qv = *qq;
    for (uint32_t j = 0; j < m; j++) {
        float F, G;
        memcpy(&F, Fp + 4ull * j, 4);
        memcpy(&G, Gp + 4ull * j, 4);
        float e = ap_rbq_estimate(&qv, dpad, qc, F, us[j], up[j]);
        float bd = ap_rbq_bound(&qv, eps0, F, G);
        ub[j] = e + bd;
        lb[j] = e - bd;
    }
}

/* The candidates c[0..n) into out grouped by bound, best first: a counting sort into nb
 * buckets of equal width of [lo, hi] (every ub lies in it); cnt[b] is then the end of
 * bucket b. Each bucket is sorted (bc_sort) only when the re-rank reaches it, and most
 * are never reached: linear, where a heap paid a log factor per pop. */
static void bc_bucketize(const struct bcand *c, uint32_t n, float lo, float hi, uint32_t *cnt,
                         uint32_t nb, struct bcand *out)
{
    const float scale = (float)nb / (hi - lo);
    memset(cnt, 0, (nb + 1) * sizeof *cnt);
    for (uint32_t x = 0; x < n; x++)
        cnt[bc_bucket(c[x].ub, hi, scale, nb) + 1]++;
    for (uint32_t b = 0; b < nb; b++)
        cnt[b + 1] += cnt[b];
    for (uint32_t x = 0; x < n; x++)
        out[cnt[bc_bucket(c[x].ub, hi, scale, nb)]++] = c[x];
}

/* Sorts c[start, end) best bound first (ub descending, then list slot and position
 * ascending: a total order); a bucket holds a few, so an insertion sort. */
static void bc_sort(struct bcand *c, uint32_t start, uint32_t end)
{
    for (uint32_t x = start + 1; x < end; x++) {
        struct bcand v = c[x];
        uint32_t y = x;
        for (; y > start && bc_before(&v, &c[y - 1]); y--)
            c[y] = c[y - 1];
        c[y] = v;
    }
}

/* 1-bit scan of the np lists in s->lists, in two passes. First every probed code's
 * estimate and error bound (upper and lower bound of its score), keeping the k best lower
 * bounds: k live vectors score at least the k-th of them, so no vector whose upper bound
 * is below it can enter the top k. Then the vectors whose upper bound reaches that floor
 * are re-scored exactly (f16) best bound first, their rows prefetched ahead, until the
 * next bound is below the k-th exact score. Extra vectors are few: scored exactly. */
static ap_status scan_lists_bits(const ap_ivf *ix, scratch *s, const float *q, uint32_t np,
                                 ap_f16_block_fn f16, ap_topk *t, scan_counts *sc,
                                 const char **kname, ap_err *err)
{
    const ap_annp *a = ix->annp;
    const ap_bits *b = ix->bits;
    const uint32_t dim = ap_annp_get_header(a)->dim, dpad = ap_bits_dpad(b), words = dpad / 64,
                   cb = dpad / 8;
    if (!GROW(s, bq, dpad) || !GROW(s, planes, 4ull * words) || !GROW(s, lbh, t->k) ||
        !GROW(s, bl, np) || !GROW(s, bbase, np) || !GROW(s, bl8, np))
        return ap_err_set(err, AP_ERR_NOMEM, "search: out of memory");
    ap_rbq_query qq;
    ap_rbq_query_make(ap_bits_rot(b), dim, q, s->bq, s->planes, &qq);
    const float eps0 = ap_bits_eps0(b);
    ap_bits_block_fn fn = ap_kernel_bits(kname);
    const float *cent = ap_annp_centroids(a);
    uint32_t nlb = 0;
    size_t tot = 0;
    for (uint32_t i = 0; i < np; i++) {
        const uint32_t li = s->lists[i];
        ap_annp_list_get(a, li, &s->bl[i]);
        uint32_t n;
        const uint8_t *d = ap_bits_list(b, li, &n);
        if (i + 1 < np) {
            uint32_t nn;
            ap_prefetch_range(ap_bits_list(b, s->lists[i + 1], &nn), 1024);
        }
        s->bbase[i] = ap_annp_list_start(a, li);
        if (!GROW(s, bub, tot + n) || !GROW(s, blb, tot + n))
            return ap_err_set(err, AP_ERR_NOMEM, "search: out of memory");
        if (n == 0) continue;
        const float *c = cent + (size_t)li * dim;
        const uint8_t *Fp = d + (size_t)n * cb, *Gp = Fp + 4ull * n;
        float alpha;
        memcpy(&alpha, Gp + 4ull * n, 4);
        const float qc = alpha * dot_fixed(q, c, dim);
        float *ub = s->bub + tot, *lb = s->blb + tot;
        for (uint32_t j0 = 0; j0 < n; j0 += BLOCK) {
            uint32_t m = n - j0 < BLOCK ? n - j0 : BLOCK;
            fn(s->planes, d + (size_t)j0 * cb, m, words, s->us, s->up);
            bits_bounds(&qq, dpad, qc, eps0, Fp + 4ull * j0, Gp + 4ull * j0, s->us, s->up, m,
                        ub + j0, lb + j0);
        }
        for (uint32_t j = 0; j < n; j++)
            if ((nlb < t->k || lb[j] > s->lbh[0]) && !ap_is_dead(ix->dead, s->bbase[i] + j))
                lb_push(s->lbh, &nlb, t->k, lb[j]);
        tot += n;
        sc->vectors += n;
        sc->bytes += (uint64_t)n * (cb + 8);
    }
    const float lbf = nlb == t->k ? s->lbh[0] : -INFINITY;
    float fl = ap_topk_floor(t) > lbf ? ap_topk_floor(t) : lbf;
    /* The candidates: live vectors whose upper bound reaches the floor (written always,
     * kept by advancing: about half pass, so a branch would mispredict). */
    if (!GROW(s, bc, tot + 1)) return ap_err_set(err, AP_ERR_NOMEM, "search: out of memory");
    uint32_t nc = 0;
    float hi = -INFINITY;
    for (uint32_t i = 0, pos = 0; i < np; pos += s->bl[i].count, i++) {
        const float *ub = s->bub + pos;
        struct bcand *bc = s->bc;
        for (uint32_t j = 0; j < s->bl[i].count; j++) {
            bc[nc] = (struct bcand){ub[j], j, i};
            const int keep = ub[j] >= fl && !ap_is_dead(ix->dead, s->bbase[i] + j);
            nc += (uint32_t)keep;
            hi = keep && ub[j] > hi ? ub[j] : hi;
        }
    }
    uint32_t sorted = nc, bk = 0; /* ord[0, sorted) in order; bucket bk ends at bcnt[bk] */
    if (nc > 1 && fl > -INFINITY && hi > fl && isfinite(hi - fl)) {
        uint32_t nb = 1;
        while (nb < nc && nb < 65536)
            nb *= 2;
        if (!GROW(s, bc2, nc) || !GROW(s, bcnt, nb + 1))
            return ap_err_set(err, AP_ERR_NOMEM, "search: out of memory");
        bc_bucketize(s->bc, nc, fl, hi, s->bcnt, nb, s->bc2);
        sorted = 0;
    } else {
        /* No finite floor yet (fewer than k vectors scanned) or equal bounds: a heap. */
        if (!GROW(s, bc2, nc)) return ap_err_set(err, AP_ERR_NOMEM, "search: out of memory");
        bc_heapify(s->bc, nc);
        for (uint32_t x = 0, left = nc; x < nc; x++)
            s->bc2[x] = bc_pop(s->bc, &left);
    }
    struct bcand *ord = s->bc2;
    /* Re-scored best bound first; the rows BITS_AHEAD candidates on are fetched while one is
     * scored, so their cache misses overlap; the first bound below the floor ends it. With
     * the int8 sidecar a candidate's int8 row (half the bytes) is scored first, and only
     * when its exact error bound reaches the floor is the f16 row read. */
    uint64_t reranked = 0;
    const ap_sq8 *q8 = ix->sq8;
    uint32_t stride = 0;
    float c0 = 0, e8 = 0;
    ap_codes_dot_fn dot_codes = ap_kernel_codes();
    if (q8) {
        stride = ap_sq8_stride(q8);
        if (!GROW(s, bqs, dim)) return ap_err_set(err, AP_ERR_NOMEM, "search: out of memory");
        sq8_bound_query(q8, q, dim, s->bqs, &c0, &e8);
        for (uint32_t i = 0; i < np; i++)
            s->bl8[i] = ap_sq8_list_codes(q8, s->lists[i]);
    }
    for (uint32_t x = 0; x < nc && x < BITS_AHEAD; x++)
        prefetch_cand(s, &ord[x], dim, stride);
    /* The int8 survivors wait in a ring of BITS_DEFER while their f16 rows are fetched, and
     * are checked once more against the floor (risen meanwhile) before being scored. */
    struct bdefer ring[BITS_DEFER];
    uint32_t r0 = 0, rn = 0;
    for (uint32_t x = 0; x < nc; x++) {
        if (rn == BITS_DEFER) {
            reranked += defer_score(s, t, f16, q, dim, lbf, &ring[r0]);
            r0 = (r0 + 1) % BITS_DEFER;
            rn--;
        }
        if (x == sorted) { /* the next bucket, sorted as it is reached */
            while (s->bcnt[bk] <= x)
                bk++;
            bc_sort(ord, x, s->bcnt[bk]);
            sorted = s->bcnt[bk];
        }
        fl = ap_topk_floor(t) > lbf ? ap_topk_floor(t) : lbf;
        if (ord[x].ub < fl) break;
        /* (beyond the sorted buckets, a row of the next bucket: a hint all the same) */
        if (x + BITS_AHEAD < nc) prefetch_cand(s, &ord[x + BITS_AHEAD], dim, stride);
        const uint32_t j = ord[x].j;
        if (!q8) {
            const ap_annp_list *l = &s->bl[ord[x].i];
            push_exact(t, f16, q, dim, l->vecs + (size_t)j * 2 * dim, ap_annp_list_id(l, j), 0);
            reranked++;
            continue;
        }
        const float hi8 = c0 + dot_codes(s->bqs, s->bl8[ord[x].i] + (size_t)j * stride, dim) + e8;
        if (hi8 < fl) continue;
        prefetch_cand(s, &ord[x], dim, 0);
        ring[(r0 + rn++) % BITS_DEFER] = (struct bdefer){hi8, ord[x].i, j};
    }
    for (; rn > 0; rn--, r0 = (r0 + 1) % BITS_DEFER)
        reranked += defer_score(s, t, f16, q, dim, lbf, &ring[r0]);
    for (uint32_t i = 0; ix->xstart && i < np; i++) {
        uint32_t li = s->lists[i];
        for (size_t x = ix->xstart[li]; x < ix->xstart[li + 1]; x++) {
            const ap_item *it = &ix->x[x];
            push_exact(t, f16, q, dim, it->vec, ap_item_id(it), (uint32_t)ix->layer_seq[it->layer]);
            sc->vectors++;
            sc->bytes += 2ull * dim;
        }
    }
    sc->reranked = reranked;
    return AP_OK;
}

/* f16 scan of the np lists in s->lists into t, then their extra vectors (delta layers: few,
 * so exact scores straight into the top-k). */
static void scan_lists_f16(const ap_ivf *ix, scratch *s, const float *q, uint32_t np,
                           ap_f16_block_fn f16, ap_topk *t, scan_counts *sc)
{
    const ap_annp *a = ix->annp;
    const uint32_t dim = ap_annp_get_header(a)->dim;
    for (uint32_t i = 0; i < np; i++) {
        uint32_t li = s->lists[i];
        ap_annp_list l, nx = {0};
        ap_annp_list_get(a, li, &l);
        if (i + 1 < np) ap_annp_list_get(a, s->lists[i + 1], &nx);
        ap_scan_f16(t, f16, s->fs, q, dim, &l, ix->dead, ap_annp_list_start(a, li), ix->keep, 0,
                    nx.count ? nx.vecs : NULL, 2ull * dim * nx.count);
        sc->vectors += l.count;
        sc->bytes += (uint64_t)l.count * 2 * dim;
    }
    if (!ix->xstart) return;
    for (uint32_t i = 0; i < np; i++) {
        uint32_t li = s->lists[i];
        for (size_t d = ix->xstart[li]; d < ix->xstart[li + 1]; d++) {
            const ap_item *it = &ix->x[d];
            float score;
            f16(q, it->vec, 1, dim, &score);
            uint64_t id = ap_item_id(it);
            if (score >= ap_topk_floor(t) &&
                (!ix->keep || ix->keep->fn(ix->keep->ctx, it->layer, id)))
                ap_topk_push(t, id, score, (uint32_t)ix->layer_seq[it->layer]);
            sc->vectors++;
            sc->bytes += 2ull * dim;
        }
    }
}

/* Scans the np lists in s->lists for one query into hits. */
static ap_status scan_query(const ap_ivf *ix, scratch *s, const float *q, uint32_t np,
                            const ap_search_params *p, ap_hit *hits, uint32_t *n,
                            ap_search_stats *st, ap_err *err)
{
    uint64_t t1 = st ? now_ns() : 0;
    assert(p->k >= 1 && p->k <= AP_MAX_K && p->rerank >= p->k && np <= p->probe); /* checked */
    const char *kname;
    ap_f16_block_fn f16 = ap_kernel_f16(&kname);
    /* Every list checked before any is scanned: a failing one fails the query whole. */
    for (uint32_t i = 0; ix->guard && i < np; i++) {
        ap_status g = ix->guard(ix->guard_ctx, s->lists[i], err);
        if (g) return g;
    }
    ap_topk t;
    ap_topk_init(&t, hits, p->k);
    scan_counts sc = {0};
    if (p->scan == AP_SCAN_SQ8) {
        ap_status e = scan_lists_sq8(ix, s, q, np, p, f16, &t, &sc, &kname, err);
        if (e) return e;
    } else if (p->scan == AP_SCAN_BITS) {
        ap_status e = scan_lists_bits(ix, s, q, np, f16, &t, &sc, &kname, err);
        if (e) return e;
    } else {
        scan_lists_f16(ix, s, q, np, f16, &t, &sc);
    }
    *n = ap_topk_finish(&t);
    ap_status dup = check_unique(s, hits, *n, err);
    if (dup) return dup;
    if (st) {
        uint64_t t2 = now_ns();
        st->lists += np;
        st->vectors += sc.vectors;
        st->bytes += sc.bytes;
        st->reranked += sc.reranked;
        st->ns_scan += t2 - t1;
        st->kernel = kname;
    }
    return AP_OK;
}

ap_status ap_ivf_search(const ap_ivf *ix, const float *q, const ap_search_params *pin, ap_hit *hits,
                        uint32_t *n, ap_search_stats *st, ap_err *err)
{
    uint64_t t0 = st ? now_ns() : 0;
    ap_search_params p = *pin;
    ap_status rc = ap_ivf_check(ix, &p, err);
    if (rc) return rc;
    const ap_annp_header *h = ap_annp_get_header(ix->annp);
    const ap_coarse *co = NULL;
    uint32_t m = AP_COARSE_SHORTLIST(p.probe);
    scratch *s = get_scratch();
    if (!s || !GROW(s, lists, m > p.probe ? m : p.probe) || !GROW(s, sel, m))
        return ap_err_set(err, AP_ERR_NOMEM, "search: out of memory");
    uint32_t np;
    if (p.probe >= h->n_lists) {
        /* Every list: no scoring needed. */
        for (uint32_t i = 0; i < h->n_lists; i++)
            s->lists[i] = i;
        np = h->n_lists;
    } else if (AP_COARSE_USE(p.probe, h->n_lists) && ix->coarse &&
               (co = ap_coarse_cache_get(ix->coarse, ix->annp))) {
        if (!GROW(s, cw, ap_coarse_stride(co)) || !GROW(s, cis, 4ull * h->n_lists + 8))
            return ap_err_set(err, AP_ERR_NOMEM, "search: out of memory");
        ap_coarse_work wk = {.w = s->cw, .is = s->cis, .tmp = s->cis + h->n_lists, .heap = s->sel};
        np = ap_coarse_probe(co, ap_annp_centroids(ix->annp), q, p.probe, &wk, s->lists);
    } else {
        if (!GROW(s, cs, h->n_lists)) return ap_err_set(err, AP_ERR_NOMEM, "search: out of memory");
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)h->n_lists, (int)h->dim, 1.0f,
                    ap_annp_centroids(ix->annp), (int)h->dim, q, 1, 0.0f, s->cs, 1);
        np = ap_select_lists(s->cs, h->n_lists, p.probe, s->sel, s->lists);
    }
    uint64_t t1 = st ? now_ns() : 0;
    rc = scan_query(ix, s, q, np, &p, hits, n, st, err);
    if (st && !rc) {
        st->searches++;
        st->ns_probe += t1 - t0;
        st->ns_total += now_ns() - t0;
    }
    return rc;
}

ap_status ap_ivf_search_batch(const ap_ivf *ix, const float *q, size_t nq,
                              const ap_search_params *pin, ap_hit *hits, uint32_t *n,
                              ap_search_stats *st, ap_err *err)
{
    ap_search_params p = *pin;
    ap_status rc = ap_ivf_check(ix, &p, err);
    if (rc) return rc;
    const ap_annp_header *h = ap_annp_get_header(ix->annp);
    scratch *s = get_scratch();
    if (!s || !GROW(s, cs, (size_t)BATCH_QUERIES * h->n_lists) || !GROW(s, lists, p.probe) ||
        !GROW(s, sel, p.probe))
        return ap_err_set(err, AP_ERR_NOMEM, "search: out of memory");
    for (size_t b = 0; b < nq; b += BATCH_QUERIES) {
        uint64_t t0 = st ? now_ns() : 0;
        size_t m = nq - b < BATCH_QUERIES ? nq - b : BATCH_QUERIES;
        /* cs[m x n_lists] = Q_b[m x dim] * C^T */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)h->n_lists, (int)h->dim,
                    1.0f, q + b * h->dim, (int)h->dim, ap_annp_centroids(ix->annp), (int)h->dim,
                    0.0f, s->cs, (int)h->n_lists);
        uint64_t t1 = st ? now_ns() : 0;
        if (st) st->ns_probe += t1 - t0;
        for (size_t i = 0; i < m; i++) {
            uint64_t ti = st ? now_ns() : 0;
            uint32_t np =
                ap_select_lists(s->cs + i * h->n_lists, h->n_lists, p.probe, s->sel, s->lists);
            rc = scan_query(ix, s, q + (b + i) * h->dim, np, &p, hits + (b + i) * p.k, &n[b + i],
                            st, err);
            if (rc) return rc;
            if (st) {
                st->searches++;
                st->ns_total += now_ns() - ti + (i == 0 ? t1 - t0 : 0);
            }
        }
    }
    return AP_OK;
}

ap_status ap_annp_search(const ap_annp *a, const float *q, uint32_t k, uint32_t probe, ap_hit *out,
                         uint32_t *n_out, ap_err *err)
{
    /* No owner keeps codes for a bare file: build them for this call, so the lists chosen
     * are the ones a view of the same file would choose. */
    ap_coarse_cache cc;
    ap_coarse_cache_init(&cc);
    ap_ivf ix = {.annp = a, .coarse = &cc};
    ap_search_params p = {.k = k, .probe = probe, .scan = AP_SCAN_F16};
    ap_status st = ap_ivf_search(&ix, q, &p, out, n_out, NULL, err);
    ap_coarse_cache_free(&cc);
    return st;
}

void ap_sq8_score_block(const int8_t *w, const uint8_t *codes, uint32_t n, uint32_t stride,
                        int32_t *out)
{
    ap_kernel_sq8(NULL)(w, codes, n, stride, out);
}

ap_status ap_scan_mode_parse(const char *s, ap_scan_mode *out, ap_err *err)
{
    static const char *const names[] = {[AP_SCAN_AUTO] = "auto",
                                        [AP_SCAN_F16] = "f16",
                                        [AP_SCAN_SQ8] = "sq8",
                                        [AP_SCAN_BITS] = "bits"};
    for (int m = AP_SCAN_AUTO; s && m <= AP_SCAN_BITS; m++)
        if (!strcmp(s, names[m])) {
            *out = (ap_scan_mode)m;
            return AP_OK;
        }
    return ap_err_set(err, AP_ERR_ARG, "scan must be auto, f16, sq8 or bits, not '%.40s'",
                      s ? s : "");
}
