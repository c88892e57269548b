/* annpack search --queries: see search_eval.h. Queries are normalised before timing (as
 * the embedder's output would be); each timed call is one ap_view_search_ex. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "search_eval.h"

typedef struct eval {
    const ap_view *v;
    const search_eval_opts *o;
    const float *q; /* nq x dim, normalised */
    size_t nq;
    uint32_t dim;
    ap_hit *hits; /* nq x k */
    uint32_t *nhits;
    double *lat_us, *scan_us, *probe_us;
    ap_search_stats total;
    pthread_mutex_t lock;
    atomic_size_t next;
    int measure;
    ap_status st;
    ap_err err;
} eval;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void *worker(void *arg)
{
    eval *e = arg;
    ap_search_stats sum = {0};
    ap_err err = {0};
    for (size_t i; (i = atomic_fetch_add(&e->next, 1)) < e->nq;) {
        ap_search_stats s = {0};
        uint64_t t0 = now_ns();
        ap_status st = ap_view_search_ex(e->v, e->q + i * e->dim, &e->o->params,
                                         e->hits + i * e->o->params.k, &e->nhits[i], &s, &err);
        uint64_t t1 = now_ns();
        if (st) {
            pthread_mutex_lock(&e->lock);
            if (!e->st) {
                e->st = st;
                e->err = err;
            }
            pthread_mutex_unlock(&e->lock);
            break;
        }
        if (!e->measure) continue;
        e->lat_us[i] = (double)(t1 - t0) / 1e3;
        e->scan_us[i] = (double)s.ns_scan / 1e3;
        e->probe_us[i] = (double)s.ns_probe / 1e3;
        sum.searches += s.searches;
        sum.lists += s.lists;
        sum.vectors += s.vectors;
        sum.bytes += s.bytes;
        sum.reranked += s.reranked;
        sum.ns_probe += s.ns_probe;
        sum.ns_scan += s.ns_scan;
        sum.ns_total += s.ns_total;
        sum.kernel = s.kernel;
    }
    pthread_mutex_lock(&e->lock);
    e->total.searches += sum.searches;
    e->total.lists += sum.lists;
    e->total.vectors += sum.vectors;
    e->total.bytes += sum.bytes;
    e->total.reranked += sum.reranked;
    e->total.ns_probe += sum.ns_probe;
    e->total.ns_scan += sum.ns_scan;
    e->total.ns_total += sum.ns_total;
    if (sum.kernel) e->total.kernel = sum.kernel;
    pthread_mutex_unlock(&e->lock);
    return NULL;
}

/* One pass over every query on o->threads threads; returns the wall time in seconds. */
static double run_pass(eval *e)
{
    atomic_store(&e->next, 0);
    uint32_t t = e->o->threads ? e->o->threads : 1;
    pthread_t tid[256];
    uint32_t started = 0;
    uint64_t t0 = now_ns();
    for (uint32_t i = 1; i < t && i < 256; i++) {
        if (pthread_create(&tid[started], NULL, worker, e) != 0) break;
        started++;
    }
    worker(e);
    for (uint32_t i = 0; i < started; i++)
        pthread_join(tid[i], NULL);
    return (double)(now_ns() - t0) / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The p-th percentile (nearest rank) of xs[0..n), sorting xs. */
static double percentile(double *xs, size_t n, double p)
{
    qsort(xs, n, sizeof *xs, cmp_double);
    size_t r = (size_t)ceil(p / 100.0 * (double)n);
    return xs[r ? r - 1 : 0];
}

static double recall_at_k(const eval *e, const ap_vecs *gt, uint32_t k)
{
    double sum = 0;
    for (size_t i = 0; i < e->nq; i++) {
        const int32_t *g = ap_vecs_i32(gt, i);
        uint32_t found = 0;
        for (uint32_t a = 0; a < e->nhits[i]; a++)
            for (uint32_t b = 0; b < k; b++)
                if (g[b] >= 0 && (uint64_t)g[b] == e->hits[i * e->o->params.k + a].id) {
                    found++;
                    break;
                }
        sum += (double)found / k;
    }
    return sum / (double)e->nq;
}

static const char *scan_name(ap_scan_mode m)
{
    return m == AP_SCAN_BITS  ? "bits"
           : m == AP_SCAN_SQ8 ? "sq8"
           : m == AP_SCAN_F16 ? "f16"
                              : "auto";
}

/* Opens the queries (and the ground truth) and checks that they fit the pack and k. */
static ap_status open_inputs(eval *e, ap_vecs **qv, ap_vecs **gt, ap_err *err)
{
    const search_eval_opts *o = e->o;
    const uint32_t k = o->params.k;
    ap_status st = ap_vecs_open(o->queries, AP_VECS_F32, qv, err);
    if (st) return st;
    e->dim = ap_view_dim(e->v);
    if (ap_vecs_dim(*qv) != e->dim)
        return ap_err_set(err, AP_ERR_FORMAT, "%s: queries have dim %u; the pack has dim %u",
                          o->queries, ap_vecs_dim(*qv), e->dim);
    e->nq = ap_vecs_count(*qv);
    if (!o->gt) return AP_OK;
    if ((st = ap_vecs_open(o->gt, AP_VECS_I32, gt, err))) return st;
    if (ap_vecs_count(*gt) != e->nq || ap_vecs_dim(*gt) < k)
        return ap_err_set(err, AP_ERR_FORMAT,
                          "%s: %zu rows of %u neighbours; need %zu rows (one per query) of at "
                          "least k = %u",
                          o->gt, ap_vecs_count(*gt), ap_vecs_dim(*gt), e->nq, k);
    return AP_OK;
}

/* The result and timing arrays, and the queries copied and normalised into q. */
static ap_status prepare(eval *e, const ap_vecs *qv, float **q, ap_err *err)
{
    const uint32_t k = e->o->params.k;
    *q = malloc(e->nq * e->dim * sizeof **q);
    e->q = *q;
    e->hits = malloc(e->nq * k * sizeof *e->hits);
    e->nhits = calloc(e->nq, sizeof *e->nhits);
    e->lat_us = malloc(e->nq * sizeof *e->lat_us);
    e->scan_us = malloc(e->nq * sizeof *e->scan_us);
    e->probe_us = malloc(e->nq * sizeof *e->probe_us);
    if (!*q || !e->hits || !e->nhits || !e->lat_us || !e->scan_us || !e->probe_us)
        return ap_err_set(err, AP_ERR_NOMEM, "out of memory for %zu queries", e->nq);
    for (size_t i = 0; i < e->nq; i++) {
        memcpy(*q + i * e->dim, ap_vecs_f32(qv, i), e->dim * sizeof **q);
        if (ap_l2_normalize(*q + i * e->dim, e->dim) == 0)
            return ap_err_set(err, AP_ERR_FORMAT, "%s: query %zu is the zero vector", e->o->queries,
                              i);
    }
    return AP_OK;
}

/* --ids-out: each query's k result ids, -1 padding a short result. */
static ap_status write_ids(const eval *e, ap_err *err)
{
    const uint32_t k = e->o->params.k;
    int32_t *ids = malloc(e->nq * k * sizeof *ids);
    if (!ids) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < e->nq; i++)
        for (uint32_t j = 0; j < k; j++)
            ids[i * k + j] = j < e->nhits[i] ? (int32_t)e->hits[i * k + j].id : -1;
    ap_status st = ap_ivecs_write(e->o->ids_out, ids, e->nq, k, err);
    free(ids);
    return st;
}

/* The summary JSON of the measured pass (wall seconds) into out. */
static ap_status summarize(eval *e, const ap_vecs *gt, double wall, char *out, size_t len,
                           ap_err *err)
{
    const search_eval_opts *o = e->o;
    const uint32_t k = o->params.k;
    double *over = malloc(e->nq * sizeof *over);
    if (!over) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < e->nq; i++)
        over[i] = e->lat_us[i] - e->scan_us[i];
    double nqd = (double)e->nq;
    double p50 = percentile(e->lat_us, e->nq, 50), p99 = percentile(e->lat_us, e->nq, 99);
    double scan50 = percentile(e->scan_us, e->nq, 50), probe50 = percentile(e->probe_us, e->nq, 50);
    double over50 = percentile(over, e->nq, 50);
    free(over);
    ap_search_params eff = o->params;
    if (eff.scan == AP_SCAN_AUTO) eff.scan = ap_view_has_sq8(e->v) ? AP_SCAN_SQ8 : AP_SCAN_F16;
    if (eff.rerank == 0) eff.rerank = ap_default_rerank(k);
    if (eff.rerank < k) eff.rerank = k; /* as the search does (ap_ivf_check) */
    char recall[64] = "null";
    if (gt) snprintf(recall, sizeof recall, "%.4f", recall_at_k(e, gt, k));
    uint32_t n_lists = ap_view_n_lists(e->v);
    snprintf(out, len,
             "{\"queries\":%zu,\"k\":%u,\"probe\":%u,\"scan\":\"%s\",\"rerank\":%u,"
             "\"kernel\":\"%s\",\"threads\":%u,\"qps\":%.1f,"
             "\"latency_us\":{\"p50\":%.1f,\"p99\":%.1f,\"mean\":%.1f},"
             "\"recall_at_k\":%s,\"lists_per_query\":%.1f,\"vectors_per_query\":%.1f,"
             "\"bytes_per_query\":%.0f,\"reranked_per_query\":%.1f,"
             "\"probe_us_p50\":%.1f,\"scan_us_p50\":%.1f,\"overhead_us_p50\":%.1f,"
             "\"scan_gbps\":%.2f,\"query_gbps\":%.2f}\n",
             e->nq, k, o->params.probe < n_lists ? o->params.probe : n_lists, scan_name(eff.scan),
             eff.scan == AP_SCAN_SQ8 ? eff.rerank : 0,
             e->total.kernel ? e->total.kernel : ap_search_kernel(), o->threads ? o->threads : 1,
             nqd / wall, p50, p99, (double)e->total.ns_total / 1e3 / nqd, recall,
             (double)e->total.lists / nqd, (double)e->total.vectors / nqd,
             (double)e->total.bytes / nqd, (double)e->total.reranked / nqd, probe50, scan50, over50,
             e->total.ns_scan ? (double)e->total.bytes / (double)e->total.ns_scan : 0,
             e->total.ns_total ? (double)e->total.bytes / (double)e->total.ns_total : 0);
    return AP_OK;
}

int search_eval(ap_view *v, const search_eval_opts *o)
{
    ap_err err = {0};
    ap_vecs *qv = NULL, *gt = NULL;
    eval e = {.v = v, .o = o};
    float *q = NULL; /* e.q, owned here */
    pthread_mutex_init(&e.lock, NULL);
    char out[2048];
    int rc = EXIT_FAIL;
    if (open_inputs(&e, &qv, &gt, &err) || prepare(&e, qv, &q, &err)) goto fail;
    for (uint32_t w = 0; w < o->warmup && !e.st; w++)
        run_pass(&e);
    e.measure = 1;
    double wall = e.st ? 0 : run_pass(&e);
    if (e.st) {
        err = e.err;
        goto fail;
    }
    if ((o->ids_out && write_ids(&e, &err)) || summarize(&e, gt, wall, out, sizeof out, &err))
        goto fail;
    rc = cli_emit(out);
    goto out;
fail:
    rc = cli_fail("search", &err);
out:
    free(q);
    free(e.hits);
    free(e.nhits);
    free(e.lat_us);
    free(e.scan_us);
    free(e.probe_us);
    ap_vecs_close(qv);
    ap_vecs_close(gt);
    pthread_mutex_destroy(&e.lock);
    return rc;
}
