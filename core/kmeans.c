/* Spherical k-means: see kmeans.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "annpack/log.h"
#include "kmeans.h"

#define BLOCK_ROWS 4096u

/* Declared by OpenBLAS; not in every cblas.h. */
extern void openblas_set_num_threads(int num_threads);

uint32_t ap_blas_threads_from_env(void)
{
    const char *s = getenv("ANNPACK_THREADS");
    if (!s || !*s) s = getenv("ANNPACK_FAISS_THREADS");
    long t = s && *s ? strtol(s, NULL, 10) : 0;
    if (t <= 0) t = 1;
    if (t > 256) t = 256;
    openblas_set_num_threads((int)t);
    return (uint32_t)t;
}

ap_status ap_kmeans_assign(const float *x, size_t n, uint32_t dim, const float *centroids,
                           uint32_t k, uint32_t *assign, float *best_score, ap_err *err)
{
    size_t rows = n < BLOCK_ROWS ? n : BLOCK_ROWS;
    float *scores = malloc(rows * (size_t)k * sizeof *scores);
    if (!scores && n) return ap_err_set(err, AP_ERR_NOMEM, "k-means: out of memory");
    for (size_t b = 0; b < n; b += BLOCK_ROWS) {
        size_t m = n - b < BLOCK_ROWS ? n - b : BLOCK_ROWS;
        /* scores[m x k] = X_b[m x dim] * C^T */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)k, (int)dim, 1.0f,
                    x + b * dim, (int)dim, centroids, (int)dim, 0.0f, scores, (int)k);
        for (size_t i = 0; i < m; i++) {
            const float *s = scores + i * k;
            uint32_t best = 0;
            float bs = s[0];
            for (uint32_t c = 1; c < k; c++)
                if (s[c] > bs) {
                    bs = s[c];
                    best = c;
                }
            assign[b + i] = best;
            if (best_score) best_score[b + i] = bs;
        }
    }
    free(scores);
    return AP_OK;
}

static int by_score(const void *a, const void *b, void *ud)
{
    const float *score = ud;
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    if (score[i] != score[j]) return score[i] < score[j] ? -1 : 1;
    return (i > j) - (i < j);
}

/* Mean of members, normalised; clusters left empty are re-seeded with the rows that fit
 * their own centroid worst (distinct rows, lowest score first, ties by row index). */
static void update(const float *x, size_t n, uint32_t dim, uint32_t k, const uint32_t *assign,
                   const float *score, float *cent, double *acc, uint32_t *count, size_t *order)
{
    memset(acc, 0, (size_t)k * dim * sizeof *acc);
    memset(count, 0, k * sizeof *count);
    for (size_t i = 0; i < n; i++) {
        /* NOLINTNEXTLINE(clang-analyzer-core.UndefinedBinaryOperatorResult): filled by ap_kmeans_assign */
        double *a = acc + (size_t)assign[i] * dim;
        const float *v = x + i * dim;
        for (uint32_t d = 0; d < dim; d++) a[d] += v[d];
        count[assign[i]]++;
    }
    size_t next_worst = 0;
    int sorted = 0;
    for (uint32_t c = 0; c < k; c++) {
        float *dst = cent + (size_t)c * dim;
        if (count[c] == 0) {
            if (!sorted) {
                for (size_t i = 0; i < n; i++) order[i] = i;
                qsort_r(order, n, sizeof *order, by_score, (void *)score);
                sorted = 1;
            }
            memcpy(dst, x + order[next_worst % n] * dim, dim * sizeof *dst);
            next_worst++;
            continue;
        }
        const double *a = acc + (size_t)c * dim;
        double s = 0;
        for (uint32_t d = 0; d < dim; d++) s += a[d] * a[d];
        double inv = s > 0 ? 1.0 / sqrt(s) : 0;
        for (uint32_t d = 0; d < dim; d++) dst[d] = (float)(a[d] * inv);
    }
}

ap_status ap_kmeans_train(const float *x, size_t n, uint32_t dim, uint32_t k, uint64_t seed,
                          uint32_t iters, float *centroids, ap_kmeans_progress progress,
                          void *progress_ud, ap_err *err)
{
    if (k == 0 || k > n) return ap_err_set(err, AP_ERR_ARG, "k-means: %u lists for %zu rows", k, n);
    size_t m = (size_t)k * AP_KMEANS_SAMPLE_PER_LIST;
    if (m > n) m = n;
    ap_status st = AP_OK;
    size_t *perm = malloc(n * sizeof *perm);
    float *sample = malloc(m * dim * sizeof *sample);
    uint32_t *assign = malloc(m * sizeof *assign);
    uint32_t *prev = malloc(m * sizeof *prev);
    float *score = malloc(m * sizeof *score);
    double *acc = malloc((size_t)k * dim * sizeof *acc);
    uint32_t *count = malloc(k * sizeof *count);
    if (!perm || !sample || !assign || !prev || !score || !acc || !count) {
        st = ap_err_set(err, AP_ERR_NOMEM, "k-means: out of memory (%zu rows x %u)", m, dim);
        goto out;
    }
    /* Deterministic sample: a partial Fisher-Yates shuffle seeded by seed, then sorted
     * back into row order so the sample does not depend on anything but (n, seed). */
    uint64_t rng = seed ^ 0x616e6e7061636b00ull;
    for (size_t i = 0; i < n; i++) perm[i] = i;
    for (size_t i = 0; i < m && m < n; i++) {
        size_t span = n - i; /* > 0: i < m < n */
        if (span == 0) break;
        /* NOLINTNEXTLINE(clang-analyzer-core.DivideZero): span > 0, checked just above */
        size_t j = i + (size_t)(ap_splitmix64(&rng) % span);
        size_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (size_t i = 0; i < m; i++)
        /* NOLINTNEXTLINE(clang-analyzer-core.UndefinedBinaryOperatorResult): perm filled above */
        memcpy(sample + i * dim, x + perm[i] * dim, dim * sizeof *x);
    /* Initial centroids: k distinct sample rows chosen by the same generator. */
    for (size_t i = 0; i < m; i++) perm[i] = i;
    for (uint32_t c = 0; c < k && c < m; c++) { /* k <= m: m >= min(k, n) and k <= n */
        size_t j = c + (size_t)(ap_splitmix64(&rng) % (m - c));
        size_t t = perm[c];
        perm[c] = perm[j];
        perm[j] = t;
        memcpy(centroids + (size_t)c * dim, sample + perm[c] * dim, dim * sizeof *x);
    }
    for (uint32_t it = 0; it < iters; it++) {
        st = ap_kmeans_assign(sample, m, dim, centroids, k, assign, score, err);
        if (st) goto out;
        if (it > 0 && memcmp(assign, prev, m * sizeof *assign) == 0) {
            ap_log(AP_LOG_DEBUG, "kmeans", "converged after %u iterations", it);
            break;
        }
        update(sample, m, dim, k, assign, score, centroids, acc, count, perm);
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
