/* The calibrated default probe: see calibrate.h. */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "calibrate.h"
#include "json.h"
#include "parallel.h"

/* Fixed block shapes, so every score is computed the same way whatever the thread count. */
#define QBLOCK 32u
#define RBLOCK 4096u

typedef struct top {
    float s[AP_CALIB_K];
    uint32_t row[AP_CALIB_K];
    uint32_t n;
} top;

/* Keeps the AP_CALIB_K best (score desc, row asc). */
static void top_add(top *t, float s, uint32_t row)
{
    if (t->n == AP_CALIB_K &&
        (s < t->s[t->n - 1] || (s == t->s[t->n - 1] && row > t->row[t->n - 1])))
        return;
    uint32_t i = t->n < AP_CALIB_K ? t->n++ : AP_CALIB_K - 1;
    while (i > 0 && (t->s[i - 1] < s || (t->s[i - 1] == s && t->row[i - 1] > row))) {
        t->s[i] = t->s[i - 1];
        t->row[i] = t->row[i - 1];
        i--;
    }
    t->s[i] = s;
    t->row[i] = row;
}

typedef struct calib_job {
    const float *x, *centroids;
    size_t n;
    uint32_t dim, k, m;
    const uint32_t *assign;
    const uint32_t *qrow; /* m query rows */
    uint64_t *found;      /* m x k: neighbours of query j whose list has rank r */
    atomic_uint next;
    atomic_int failed;
} calib_job;

typedef struct rank_ctx {
    const float *s;
} rank_ctx;

static int by_score_desc(const void *a, const void *b, void *ud)
{
    const float *s = ((const rank_ctx *)ud)->s;
    uint32_t i = *(const uint32_t *)a, j = *(const uint32_t *)b;
    if (s[i] != s[j]) return s[i] > s[j] ? -1 : 1;
    return (i > j) - (i < j);
}

static void calib_part(void *ctx, uint32_t p, uint32_t nparts)
{
    (void)p;
    (void)nparts;
    calib_job *j = ctx;
    float *q = calloc((size_t)QBLOCK * j->dim, sizeof *q); /* rows past the last query: 0 */
    float *s = malloc((size_t)QBLOCK * (RBLOCK > j->k ? RBLOCK : j->k) * sizeof *s);
    top *tops = malloc(QBLOCK * sizeof *tops);
    uint32_t *order = malloc(j->k * sizeof *order), *rank = malloc(j->k * sizeof *rank);
    if (!q || !s || !tops || !order || !rank) {
        j->failed = 1;
        goto out;
    }
    uint32_t nblocks = (j->m + QBLOCK - 1) / QBLOCK;
    for (uint32_t b; (b = atomic_fetch_add(&j->next, 1)) < nblocks;) {
        uint32_t q0 = b * QBLOCK, mq = j->m - q0 < QBLOCK ? j->m - q0 : QBLOCK;
        for (uint32_t i = 0; i < mq; i++) {
            memcpy(q + (size_t)i * j->dim, j->x + (size_t)j->qrow[q0 + i] * j->dim,
                   j->dim * sizeof *q);
            tops[i].n = 0;
        }
        for (size_t r0 = 0; r0 < j->n; r0 += RBLOCK) {
            size_t mr = j->n - r0 < RBLOCK ? j->n - r0 : RBLOCK;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)QBLOCK, (int)mr, (int)j->dim,
                        1.0f, q, (int)j->dim, j->x + r0 * j->dim, (int)j->dim, 0.0f, s, (int)mr);
            for (uint32_t i = 0; i < mq; i++)
                for (size_t r = 0; r < mr; r++)
                    if (r0 + r != j->qrow[q0 + i]) /* held out: not its own neighbour */
                        top_add(&tops[i], s[i * mr + r], (uint32_t)(r0 + r));
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)QBLOCK, (int)j->k, (int)j->dim,
                    1.0f, q, (int)j->dim, j->centroids, (int)j->dim, 0.0f, s, (int)j->k);
        for (uint32_t i = 0; i < mq; i++) {
            for (uint32_t l = 0; l < j->k; l++)
                order[l] = l;
            rank_ctx rc = {s + (size_t)i * j->k};
            qsort_r(order, j->k, sizeof *order, by_score_desc, &rc);
            for (uint32_t r = 0; r < j->k; r++)
                rank[order[r]] = r;
            uint64_t *f = j->found + (size_t)(q0 + i) * j->k;
            for (uint32_t t = 0; t < tops[i].n; t++)
                f[rank[j->assign[tops[i].row[t]]]]++;
        }
    }
out:
    free(q);
    free(s);
    free(tops);
    free(order);
    free(rank);
}

static double round4(double v)
{
    return round(v * 1e4) / 1e4;
}

/* The recorded points: 1, 2, 4, 8, ... and the default and every list. */
static void points(ap_calibration *c, const double *recall)
{
    uint32_t want[AP_CALIB_POINTS], nw = 0;
    for (uint32_t p = 1; p < c->n_lists && nw < AP_CALIB_POINTS - 2; p *= 2)
        want[nw++] = p;
    want[nw++] = c->target_probe;
    want[nw++] = c->n_lists;
    for (uint32_t a = 0; a < nw; a++)
        for (uint32_t b = a + 1; b < nw; b++)
            if (want[b] < want[a]) {
                uint32_t t = want[a];
                want[a] = want[b];
                want[b] = t;
            }
    c->n_points = 0;
    for (uint32_t a = 0; a < nw; a++)
        if (c->n_points == 0 || c->probe[c->n_points - 1] != want[a]) {
            c->probe[c->n_points] = want[a];
            c->recall[c->n_points++] = round4(recall[want[a] - 1]);
        }
}

ap_status ap_calibrate(const float *x, size_t n, uint32_t dim, const float *centroids, uint32_t k,
                       const uint32_t *assign, double target, ap_calibration *out, ap_err *err)
{
    memset(out, 0, sizeof *out);
    out->target = target;
    out->n_lists = k;
    uint32_t m = n < AP_CALIB_QUERIES ? (uint32_t)n : AP_CALIB_QUERIES;
    out->queries = m;
    calib_job j = {
        .x = x, .centroids = centroids, .n = n, .dim = dim, .k = k, .m = m, .assign = assign};
    uint32_t *qrow = malloc((m ? m : 1) * sizeof *qrow);
    j.found = calloc((size_t)(m ? m : 1) * k, sizeof *j.found);
    double *recall = malloc(k * sizeof *recall);
    ap_status st = AP_OK;
    if (!qrow || !j.found || !recall) {
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory calibrating the default probe");
        goto done;
    }
    for (uint32_t i = 0; i < m; i++)
        qrow[i] = (uint32_t)((uint64_t)i * n / m); /* spread over the rows, deterministic */
    j.qrow = qrow;
    atomic_init(&j.next, 0);
    atomic_init(&j.failed, 0);
    int saved = openblas_get_num_threads();
    openblas_set_num_threads(1);
    ap_parallel_for(ap_parallel_parts((m + QBLOCK - 1) / QBLOCK, 1), calib_part, &j);
    openblas_set_num_threads(saved);
    if (atomic_load(&j.failed) && atomic_load(&j.next) < (m + QBLOCK - 1) / QBLOCK) {
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory calibrating the default probe");
        goto done;
    }
    /* Cumulative: found at probe p = neighbours whose list ranks below p. */
    uint64_t total = 0, cum = 0;
    for (size_t i = 0; i < (size_t)m * k; i++)
        total += j.found[i];
    out->target_probe = k;
    for (uint32_t r = 0; r < k; r++) {
        for (uint32_t q = 0; q < m; q++)
            cum += j.found[(size_t)q * k + r];
        recall[r] = total ? (double)cum / (double)total : 1.0;
        if (out->target_probe == k && recall[r] >= target) out->target_probe = r + 1;
    }
    out->default_probe = out->target_probe;
    if ((uint64_t)n * dim <= AP_CALIB_SMALL) {
        out->small = true;
        out->default_probe = k;
    }
    out->recall_at_default = round4(recall[out->default_probe - 1]);
    points(out, recall);
done:
    free(qrow);
    free(j.found);
    free(recall);
    return st;
}

cJSON *ap_calibration_json(const ap_calibration *c)
{
    cJSON *o = cJSON_CreateObject(), *curve = NULL;
    if (!o) return NULL;
    cJSON_AddNumberToObject(o, "target_recall", c->target);
    ap_json_add_u64(o, "queries", c->queries);
    ap_json_add_u64(o, "k", AP_CALIB_K);
    ap_json_add_u64(o, "target_probe", c->target_probe);
    ap_json_add_u64(o, "default_probe", c->default_probe);
    cJSON_AddNumberToObject(o, "recall_at_default", c->recall_at_default);
    cJSON_AddStringToObject(o, "rule", c->small ? "every list (n x dim <= 2^22)" : "target");
    if (!(curve = cJSON_AddArrayToObject(o, "curve"))) goto fail;
    for (uint32_t i = 0; i < c->n_points; i++) {
        cJSON *pt = cJSON_CreateObject();
        if (!pt) goto fail;
        ap_json_add_u64(pt, "probe", c->probe[i]);
        cJSON_AddNumberToObject(pt, "recall", c->recall[i]);
        cJSON_AddItemToArray(curve, pt);
    }
    return o;
fail:
    cJSON_Delete(o);
    return NULL;
}

double ap_calibration_target_of(const cJSON *build)
{
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(build, "calibration");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(c, "target_recall");
    return cJSON_IsNumber(t) && t->valuedouble > 0 && t->valuedouble <= 1 ? t->valuedouble : 0;
}
