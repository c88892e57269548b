/* Spherical k-means: see kmeans.h.
 *
 * The expensive part is scoring rows against centroids (2·n·k·d flops per pass). Rows are
 * cut into fixed blocks; T worker threads take blocks in turn, each scoring its block with a
 * single-threaded OpenBLAS sgemm into a private buffer small enough to stay in L2 and
 * taking the row maxima straight away, so the scores never travel through memory and the
 * argmax runs in parallel too. A block's result does not depend on which thread computed
 * it, so the assignment is the same for every thread count.
 *
 * Training never copies its sample: it is a list of row numbers, and each worker gathers
 * its block's rows into a private block buffer before the sgemm (the same numbers in the
 * same order as a copied sample, so the same centroids, without 4·m·dim bytes more). */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "annpack/log.h"
#include "annpack/search.h"
#include "kmeans.h"
#include "parallel.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

/* Rows per sgemm call: 256 rows x 1024 centroids of f32 scores is 1 MiB. */
#define BLOCK_ROWS 256u

/* Declared by OpenBLAS; not in every cblas.h. */
extern void openblas_set_num_threads(int num_threads);
extern int openblas_get_num_threads(void);

uint32_t ap_blas_threads_from_env(void)
{
    uint32_t t = ap_parallel_threads();
    openblas_set_num_threads((int)t);
    return t;
}

/* Index of the largest of s[0..k) (the first one on ties) and its value. */
static uint32_t argmax_portable(const float *s, uint32_t k, float *best)
{
    uint32_t bi = 0;
    float bs = s[0];
    for (uint32_t c = 1; c < k; c++)
        if (s[c] > bs) {
            bs = s[c];
            bi = c;
        }
    *best = bs;
    return bi;
}

#if defined(__x86_64__)
/* Same result as argmax_portable: the maximum, then its first position (scores are finite,
 * and -0 == +0 compares equal in both). */
__attribute__((target("avx512f"))) static uint32_t argmax_avx512(const float *s, uint32_t k,
                                                                 float *best)
{
    __m512 m = _mm512_set1_ps(-INFINITY);
    uint32_t c = 0;
    for (; c + 16 <= k; c += 16)
        m = _mm512_max_ps(m, _mm512_loadu_ps(s + c));
    if (c < k)
        m = _mm512_mask_max_ps(m, (__mmask16)((1u << (k - c)) - 1), m,
                               _mm512_maskz_loadu_ps((__mmask16)((1u << (k - c)) - 1), s + c));
    float mx = _mm512_reduce_max_ps(m);
    __m512 vm = _mm512_set1_ps(mx);
    for (c = 0; c + 16 <= k; c += 16) {
        __mmask16 eq = _mm512_cmpeq_ps_mask(_mm512_loadu_ps(s + c), vm);
        if (eq) {
            *best = mx;
            return c + (uint32_t)__builtin_ctz(eq);
        }
    }
    for (; c < k; c++)
        if (s[c] == mx) break;
    *best = mx;
    return c < k ? c : 0;
}
#endif

typedef uint32_t (*argmax_fn)(const float *, uint32_t, float *);

static argmax_fn pick_argmax(void)
{
#if defined(__x86_64__)
    if (ap_cpu_has("avx512f")) return argmax_avx512;
#endif
    return argmax_portable;
}

typedef struct assign_job {
    const float *x;
    const size_t *rows; /* the i-th row is x[rows[i]]; NULL: x[i] */
    size_t n;
    uint32_t dim, k;
    const float *centroids;
    uint32_t *assign;
    float *best_score;
    argmax_fn argmax;
    atomic_size_t next; /* next block to take */
    atomic_int failed;
} assign_job;

/* Every part takes blocks from the one shared job until none is left. */
static void assign_part(void *ctx, uint32_t p, uint32_t nparts)
{
    (void)p;
    (void)nparts;
    assign_job *j = ctx;
    float *scores = malloc((size_t)BLOCK_ROWS * j->k * sizeof *scores);
    const size_t *rows = j->rows;
    float *gathered = rows ? malloc((size_t)BLOCK_ROWS * j->dim * sizeof *gathered) : NULL;
    if (!scores || (rows && !gathered)) {
        free(scores);
        free(gathered);
        j->failed = 1;
        return;
    }
    size_t nblocks = (j->n + BLOCK_ROWS - 1) / BLOCK_ROWS;
    for (size_t b; (b = atomic_fetch_add(&j->next, 1)) < nblocks;) {
        size_t r0 = b * BLOCK_ROWS;
        size_t m = j->n - r0 < BLOCK_ROWS ? j->n - r0 : BLOCK_ROWS;
        const float *xb = j->x + r0 * j->dim;
        if (rows && gathered) {
            for (size_t i = 0; i < m; i++)
                memcpy(gathered + i * j->dim, j->x + rows[r0 + i] * j->dim,
                       j->dim * sizeof *gathered);
            xb = gathered;
        }
        /* scores[m x k] = X_b[m x dim] * C^T */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)j->k, (int)j->dim, 1.0f,
                    xb, (int)j->dim, j->centroids, (int)j->dim, 0.0f, scores, (int)j->k);
        for (size_t i = 0; i < m; i++) {
            float bs;
            j->assign[r0 + i] = j->argmax(scores + i * j->k, j->k, &bs);
            if (j->best_score) j->best_score[r0 + i] = bs;
        }
    }
    free(scores);
    free(gathered);
}

/* Assigns rows x[rows[i]] (x[i] when rows is NULL), i < n. */
static ap_status assign_rows(const float *x, const size_t *rows, size_t n, uint32_t dim,
                             const float *centroids, uint32_t k, uint32_t *assign,
                             float *best_score, ap_err *err)
{
    if (n == 0) return AP_OK;
    assign_job j = {.x = x,
                    .rows = rows,
                    .n = n,
                    .dim = dim,
                    .k = k,
                    .centroids = centroids,
                    .assign = assign,
                    .best_score = best_score,
                    .argmax = pick_argmax()};
    atomic_init(&j.next, 0);
    atomic_init(&j.failed, 0);
    size_t nblocks = (n + BLOCK_ROWS - 1) / BLOCK_ROWS;
    /* Each part's sgemm runs on its own thread: OpenBLAS itself on one. */
    int saved = openblas_get_num_threads();
    openblas_set_num_threads(1);
    ap_parallel_for(ap_parallel_parts(nblocks, 1), assign_part, &j);
    openblas_set_num_threads(saved);
    /* A worker that cannot allocate takes no block; the others then take them all. */
    if (atomic_load(&j.next) < nblocks)
        return ap_err_set(err, AP_ERR_NOMEM, "k-means: out of memory for scores");
    return AP_OK;
}

ap_status ap_kmeans_assign(const float *x, size_t n, uint32_t dim, const float *centroids,
                           uint32_t k, uint32_t *assign, float *best_score, ap_err *err)
{
    return assign_rows(x, NULL, n, dim, centroids, k, assign, best_score, err);
}

/* qsort_r's context is not const: the scores travel in a box. */
typedef struct scores {
    const float *s;
} scores;

static int by_score(const void *a, const void *b, void *ud)
{
    const float *score = ((const scores *)ud)->s;
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    if (score[i] != score[j]) return score[i] < score[j] ? -1 : 1;
    return (i > j) - (i < j);
}

/* a[d] += v[d] for d < dim, in double: each sum on its own, so the vector paths give the
 * scalar path's bits. */
static void acc_portable(double *a, const float *v, uint32_t dim)
{
    for (uint32_t d = 0; d < dim; d++)
        a[d] += v[d];
}

#if defined(__x86_64__)
__attribute__((target("avx512f"))) static void acc_avx512(double *a, const float *v, uint32_t dim)
{
    uint32_t d = 0;
    for (; d + 8 <= dim; d += 8)
        _mm512_storeu_pd(
            a + d, _mm512_add_pd(_mm512_loadu_pd(a + d), _mm512_cvtps_pd(_mm256_loadu_ps(v + d))));
    for (; d < dim; d++)
        a[d] += v[d];
}

__attribute__((target("avx"))) static void acc_avx(double *a, const float *v, uint32_t dim)
{
    uint32_t d = 0;
    for (; d + 4 <= dim; d += 4)
        _mm256_storeu_pd(
            a + d, _mm256_add_pd(_mm256_loadu_pd(a + d), _mm256_cvtps_pd(_mm_loadu_ps(v + d))));
    for (; d < dim; d++)
        a[d] += v[d];
}
#endif

typedef void (*acc_fn)(double *, const float *, uint32_t);

static acc_fn pick_acc(void)
{
#if defined(__x86_64__)
    if (ap_cpu_has("avx512f")) return acc_avx512;
    if (ap_cpu_has("avx")) return acc_avx;
#endif
    return acc_portable;
}

/* Accumulating member sums: part t of T owns centroids c with c % T == t and adds its rows
 * in ascending row order, so every sum is formed in the same order whatever T is. */
typedef struct update_job {
    const float *x;
    const size_t *rows; /* the sample's rows in x */
    size_t n;
    uint32_t dim, k;
    const uint32_t *assign;
    double *acc;
    uint32_t *count;
    acc_fn add;
} update_job;

static void update_part(void *ctx, uint32_t t, uint32_t nt)
{
    const update_job *j = ctx;
    for (size_t i = 0; i < j->n; i++) {
        uint32_t c = j->assign[i];
        if (c % nt != t) continue;
        j->add(j->acc + (size_t)c * j->dim, j->x + j->rows[i] * j->dim, j->dim);
        j->count[c]++;
    }
}

/* Mean of members, normalised; clusters left empty are re-seeded with the rows that fit
 * their own centroid worst (distinct rows, lowest score first, ties by row index). */
static void update(const float *x, const size_t *rows, size_t n, uint32_t dim, uint32_t k,
                   const uint32_t *assign, const float *score, float *cent, double *acc,
                   uint32_t *count, size_t *order)
{
    memset(acc, 0, (size_t)k * dim * sizeof *acc);
    memset(count, 0, k * sizeof *count);
    update_job j = {.x = x,
                    .rows = rows,
                    .n = n,
                    .dim = dim,
                    .k = k,
                    .assign = assign,
                    .acc = acc,
                    .count = count,
                    .add = pick_acc()};
    ap_parallel_for(ap_parallel_parts(k, 1), update_part, &j);
    size_t next_worst = 0;
    int sorted = 0;
    for (uint32_t c = 0; c < k; c++) {
        float *dst = cent + (size_t)c * dim;
        if (count[c] == 0) {
            if (!sorted) {
                for (size_t i = 0; i < n; i++)
                    order[i] = i;
                scores box = {score};
                qsort_r(order, n, sizeof *order, by_score, &box);
                sorted = 1;
            }
            memcpy(dst, x + rows[order[next_worst % n]] * dim, dim * sizeof *dst);
            next_worst++;
            continue;
        }
        const double *a = acc + (size_t)c * dim;
        double s = 0;
        for (uint32_t d = 0; d < dim; d++)
            s += a[d] * a[d];
        double inv = s > 0 ? 1.0 / sqrt(s) : 0;
        for (uint32_t d = 0; d < dim; d++)
            dst[d] = (float)(a[d] * inv);
    }
}

ap_status ap_kmeans_train(const float *x, size_t n, uint32_t dim, uint32_t k, uint64_t seed,
                          uint32_t iters, float *centroids, ap_kmeans_progress progress,
                          void *progress_ud, uint32_t *iters_done, ap_err *err)
{
    if (iters_done) *iters_done = 0;
    if (k == 0 || k > n) return ap_err_set(err, AP_ERR_ARG, "k-means: %u lists for %zu rows", k, n);
    size_t m = (size_t)k * AP_KMEANS_SAMPLE_PER_LIST;
    if (m > n) m = n;
    ap_status st = AP_OK;
    size_t *perm = malloc(n * sizeof *perm);
    size_t *sample = malloc(m * sizeof *sample); /* row numbers in x */
    uint32_t *assign = malloc(m * sizeof *assign);
    uint32_t *prev = malloc(m * sizeof *prev);
    float *score = malloc(m * sizeof *score);
    double *acc = malloc((size_t)k * dim * sizeof *acc);
    uint32_t *count = malloc(k * sizeof *count);
    if (!perm || !sample || !assign || !prev || !score || !acc || !count) {
        st = ap_err_set(err, AP_ERR_NOMEM, "k-means: out of memory (%zu sample rows)", m);
        goto out;
    }
    /* Deterministic sample: the first m rows of a partial Fisher-Yates shuffle seeded by
     * seed (in shuffle order), so it depends on nothing but (n, m, seed). */
    uint64_t rng = seed ^ 0x616e6e7061636b00ull;
    for (size_t i = 0; i < n; i++)
        perm[i] = i;
    for (size_t i = 0; i < m && m < n; i++) {
        size_t span = n - i; /* > 0: i < m < n */
        if (span == 0) break;
        /* NOLINTNEXTLINE(clang-analyzer-core.DivideZero): span > 0, checked just above */
        size_t j = i + (size_t)(ap_splitmix64(&rng) % span);
        size_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    memcpy(sample, perm, m * sizeof *sample);
    /* Initial centroids: k distinct sample rows chosen by the same generator. */
    for (size_t i = 0; i < m; i++)
        perm[i] = i;
    for (uint32_t c = 0; c < k && c < m; c++) { /* k <= m: m >= min(k, n) and k <= n */
        size_t j = c + (size_t)(ap_splitmix64(&rng) % (m - c));
        size_t t = perm[c];
        perm[c] = perm[j];
        perm[j] = t;
        memcpy(centroids + (size_t)c * dim, x + sample[perm[c]] * dim, dim * sizeof *x);
    }
    for (uint32_t it = 0; it < iters; it++) {
        st = assign_rows(x, sample, m, dim, centroids, k, assign, score, err);
        if (st) goto out;
        if (iters_done) *iters_done = it + 1;
        if (it > 0 && memcmp(assign, prev, m * sizeof *assign) == 0) {
            ap_log(AP_LOG_DEBUG, "kmeans", "converged after %u iterations", it);
            break;
        }
        update(x, sample, m, dim, k, assign, score, centroids, acc, count, perm);
        memcpy(prev, assign, m * sizeof *assign);
        if (progress) progress(progress_ud, it + 1, iters);
    }
out:
    free(perm);
    free(sample);
    free(assign);
    free(prev);
    free(score);
    free(acc);
    free(count);
    return st;
}
