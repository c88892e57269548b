/* Answers: see answer.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "answer.h"
#include "config.h"
#include "embed_cache.h"
#include "errno_map.h"
#include "guard.h"
#include "health.h"
#include "stats.h"

typedef struct answer_call {
    fs_gen *g;
    const fs_route *r; /* kind, k, probe, id, text_off, text_len of key */
    const char *key;
    double took_ms; /* < 0: a new answer, timed; else recomputing one that has this */
    fs_blob **out;
} answer_call;

/* The query vector: the text embedded, or the name's vector decoded (by the lookup's
 * routing already, or now for a recomputation). */
static ap_status query_vector(const answer_call *c, float *vec, ap_err *err)
{
    const char *text = c->key + c->r->text_off;
    if (c->r->kind == FS_ROUTE_VQUERY)
        return ap_query_vector_decode(text, c->r->text_len, ap_view_dim(c->g->view), vec, err);
    return fs_embed_query(c->g->view, text, c->r->text_len, vec, err);
}

/* Searches and renders the results JSON (malloc'd into *json); *took is set for a new
 * answer. */
static ap_status search_json(const answer_call *c, double t0, double *took, char **json,
                             size_t *len, ap_err *err)
{
    fs_gen *g = c->g;
    const fs_route *r = c->r;
    /* A vector routed in this lookup was decoded for the dim of the same generation. */
    float *own = r->vec ? NULL : malloc(ap_view_dim(g->view) * sizeof *own);
    const float *vec = r->vec ? r->vec : own;
    ap_hit *hits = malloc(r->k * sizeof *hits);
    uint32_t n = 0;
    ap_status st = vec && hits ? (own ? query_vector(c, own, err) : AP_OK)
                               : ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    ap_search_params sp = {
        .k = r->k, .probe = r->probe, .scan = g_cfg.scan, .rerank = g_cfg.rerank};
    ap_where *where = NULL;
    size_t nwhere = 0;
    if (!st && fs_route_where(c->key, r, &where, &nwhere))
        st = ap_err_set(err, AP_ERR_ARG, "malformed filter conditions");
    if (!st) st = ap_view_search_where(g->view, vec, &sp, where, nwhere, hits, &n, NULL, err);
    free(where);
    if (!st) {
        uint32_t lists = ap_view_n_lists(g->view);
        uint32_t probe = r->probe > lists ? lists : r->probe;
        if (*took < 0) *took = (fs_now_us() - t0) / 1e3;
        int vector = r->kind == FS_ROUTE_VQUERY;
        *json = ap_results_json(vector ? "vector" : c->key + r->text_off, r->k, probe,
                                (long long)g->number, *took, hits, n, ap_view_row_of, g->view, len,
                                err);
        if (!*json) st = err->status ? err->status : AP_ERR_INTERNAL;
    }
    free(own);
    free(hits);
    return st;
}

/* One query (text or vector) as results JSON. */
static int answer_search(const answer_call *c)
{
    int vector = c->r->kind == FS_ROUTE_VQUERY;
    double t0 = fs_now_us(), took = c->took_ms;
    char *json = NULL;
    size_t len = 0;
    ap_err err = {0};
    ap_status st = search_json(c, t0, &took, &json, &len, &err);
    if (st) {
        atomic_fetch_add(&g_stats.errors, 1);
        if (!fs_known_corruption(st, &err))
            ap_log(AP_LOG_ERROR, vector ? "vquery" : "query", "%s", err.msg);
        free(json);
        return fs_errno(st, FS_ERRNO_ANSWER);
    }
    fs_blob *b = fs_blob_new(json, len);
    free(json);
    if (!b) return -ENOMEM;
    b->took_ms = took;
    if (c->took_ms < 0) {
        atomic_fetch_add(&g_stats.queries, 1);
        fs_stats_record_latency(fs_now_us() - t0);
    }
    *c->out = b;
    return 0;
}

/* One live row as JSON plus a newline. */
static int answer_doc(const answer_call *c)
{
    char *row = NULL;
    size_t len = 0;
    ap_err err = {0};
    ap_status st = ap_view_get_row(c->g->view, c->r->id, &row, &len, NULL, &err);
    if (st) {
        if (st != AP_ERR_NOTFOUND && !fs_known_corruption(st, &err))
            ap_log(AP_LOG_ERROR, "doc", "doc/%llu: %s", (unsigned long long)c->r->id, err.msg);
        return fs_errno(st, FS_ERRNO_ANSWER);
    }
    char *line = realloc(row, len + 1);
    if (!line) {
        free(row);
        return -ENOMEM;
    }
    line[len] = '\n';
    *c->out = fs_blob_new(line, len + 1);
    free(line);
    if (!*c->out) return -ENOMEM;
    if (c->took_ms < 0) atomic_fetch_add(&g_stats.docs, 1);
    return 0;
}

static int run_answer(void *arg)
{
    const answer_call *c = arg;
    return c->r->kind == FS_ROUTE_DOC ? answer_doc(c) : answer_search(c);
}

int fs_answer(fs_gen *g, const fs_route *r, const char *key, double took_ms, fs_blob **out)
{
    *out = NULL;
    answer_call c = {g, r, key, took_ms, out};
    int rc = atomic_load(&g->changed) ? -EIO : 0;
    if (!rc) rc = fs_guarded(run_answer, &c, r->kind == FS_ROUTE_DOC ? "doc" : "query");
    /* Checked after reading (a write changes ctime before the bytes, SECURITY.md), also
     * after a failed read: a truncation shows up as SIGBUS first. */
    int changed = fs_gen_check_source(g);
    if (!rc && changed) {
        rc = changed;
        fs_blob_unref(*out);
        *out = NULL;
    }
    return rc;
}
