/* The calibrated default probe: see calibrate.h. */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "calibrate.h"
#include "json.h"
#include "parallel.h"

/* Fixed block shapes, so every score is computed the same way whatever the thread count:
 * every query against RBLOCK rows per sgemm (each row block packed once for all queries). */
#define QBLOCK AP_CALIB_QUERIES
#define RBLOCK 4096u
/* Queries per sgemm against the centroids (the shape the scores have always had). */
#define CBLOCK 32u
_Static_assert(QBLOCK % CBLOCK == 0, "the centroid blocks tile the query rows");

typedef struct top {
    float s[AP_CALIB_K];
    uint32_t row[AP_CALIB_K];
    uint32_t n;
} top;

/* Keeps the AP_CALIB_K best (score desc, row asc): a strict order on distinct rows, so the
 * result does not depend on the order rows are offered in. */
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

/* Parts take row blocks in turn, each keeping every query's best rows among its blocks
 * (tops[part * m + query]); the parts' lists are merged afterwards. */
typedef struct calib_job {
    const float *x, *q; /* q: m query rows gathered, zero rows past m up to QBLOCK */
    size_t n;
    uint32_t dim, m;
    const uint32_t *qrow; /* m query rows */
    top *tops;            /* nparts x m */
    atomic_size_t next;
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
    (void)nparts;
    calib_job *j = ctx;
    float *s = malloc((size_t)QBLOCK * RBLOCK * sizeof *s);
    top *tops = j->tops + (size_t)p * j->m;
    if (!s) {
        j->failed = 1;
        return;
    }
    size_t nblocks = (j->n + RBLOCK - 1) / RBLOCK;
    for (size_t b; (b = atomic_fetch_add(&j->next, 1)) < nblocks;) {
        size_t r0 = b * RBLOCK, mr = j->n - r0 < RBLOCK ? j->n - r0 : RBLOCK;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)QBLOCK, (int)mr, (int)j->dim,
                    1.0f, j->q, (int)j->dim, j->x + r0 * j->dim, (int)j->dim, 0.0f, s, (int)mr);
        for (uint32_t i = 0; i < j->m; i++) {
            const float *si = s + (size_t)i * mr;
            top *t = &tops[i];
            for (size_t r = 0; r < mr; r++)
                /* the 10th best so far screens out almost every row at once */
                if ((t->n < AP_CALIB_K || si[r] >= t->s[AP_CALIB_K - 1]) &&
                    r0 + r != j->qrow[i]) /* held out: not its own neighbour */
                    top_add(t, si[r], (uint32_t)(r0 + r));
        }
    }
    free(s);
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
    uint32_t nparts = ap_parallel_parts((n + RBLOCK - 1) / RBLOCK, 1);
    calib_job j = {.x = x, .n = n, .dim = dim, .m = m};
    uint32_t *qrow = malloc((m ? m : 1) * sizeof *qrow);
    float *q = calloc((size_t)QBLOCK * dim, sizeof *q);
    uint64_t *found = calloc((size_t)(m ? m : 1) * k, sizeof *found);
    double *recall = malloc(k * sizeof *recall);
    float *cs = malloc((size_t)QBLOCK * k * sizeof *cs);
    uint32_t *order = malloc(k * sizeof *order), *rank = malloc(k * sizeof *rank);
    j.tops = calloc((size_t)nparts * (m ? m : 1), sizeof *j.tops);
    ap_status st = AP_OK;
    if (!qrow || !q || !found || !recall || !cs || !order || !rank || !j.tops) {
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory calibrating the default probe");
        goto done;
    }
    for (uint32_t i = 0; i < m; i++) {
        qrow[i] = (uint32_t)((uint64_t)i * n / m); /* spread over the rows, deterministic */
        memcpy(q + (size_t)i * dim, x + (size_t)qrow[i] * dim, dim * sizeof *q);
    }
    j.qrow = qrow;
    j.q = q;
    atomic_init(&j.next, 0);
    atomic_init(&j.failed, 0);
    int saved = openblas_get_num_threads();
    openblas_set_num_threads(1);
    ap_parallel_for(nparts, calib_part, &j);
    openblas_set_num_threads(saved);
    /* A part that cannot allocate takes no block; the others then take them all. */
    if (atomic_load(&j.next) < (n + RBLOCK - 1) / RBLOCK) {
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory calibrating the default probe");
        goto done;
    }
    for (uint32_t b = 0; b < m; b += CBLOCK)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)CBLOCK, (int)k, (int)dim, 1.0f,
                    q + (size_t)b * dim, (int)dim, centroids, (int)dim, 0.0f, cs + (size_t)b * k,
                    (int)k);
    /* Each query's neighbours: the best of its parts' lists (the same whatever the split),
     * counted at the rank of their list among the query's centroids. */
    for (uint32_t i = 0; i < m; i++) {
        top t = j.tops[i];
        for (uint32_t p = 1; p < nparts; p++) {
            const top *o = &j.tops[(size_t)p * m + i];
            for (uint32_t r = 0; r < o->n; r++)
                top_add(&t, o->s[r], o->row[r]);
        }
        for (uint32_t l = 0; l < k; l++)
            order[l] = l;
        rank_ctx rc = {cs + (size_t)i * k};
        qsort_r(order, k, sizeof *order, by_score_desc, &rc);
        for (uint32_t r = 0; r < k; r++)
            rank[order[r]] = r;
        uint64_t *f = found + (size_t)i * k;
        for (uint32_t r = 0; r < t.n; r++)
            f[rank[assign[t.row[r]]]]++;
    }
    /* Cumulative: found at probe p = neighbours whose list ranks below p. */
    uint64_t total = 0, cum = 0;
    for (size_t i = 0; i < (size_t)m * k; i++)
        total += found[i];
    out->target_probe = k;
    for (uint32_t r = 0; r < k; r++) {
        for (uint32_t qi = 0; qi < m; qi++)
            cum += found[(size_t)qi * k + r];
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
    free(q);
    free(found);
    free(recall);
    free(cs);
    free(order);
    free(rank);
    free(j.tops);
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
