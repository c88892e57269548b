/* Name routing: see route.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annpack/query.h"
#include "route.h"

static const char *const ROOT_FILES[] = {
    [FS_FILE_MANIFEST] = "pack.manifest.json",
    [FS_FILE_ANNPACK] = "pack.annpack",
    [FS_FILE_META] = "pack.meta.jsonl",
    [FS_FILE_SQ8] = "pack.sq8",
    [FS_FILE_IDF] = "pack.idf",
    [FS_FILE_HEALTH] = "health",
    [FS_FILE_STATS] = "stats",
};

static int is(const char *name, size_t len, const char *lit)
{
    return strlen(lit) == len && memcmp(name, lit, len) == 0;
}

static void refuse(fs_route *r, ap_status st, const ap_err *err)
{
    r->kind = FS_ROUTE_REFUSED;
    r->status = st;
    if (err != &r->err) r->err = *err;
}

/* key = "<c> <k> <probe> <text>" */
static ap_status make_key(fs_route *r, char c, const char *text, size_t len)
{
    char head[40];
    int n = snprintf(head, sizeof head, "%c %u %u ", c, r->k, r->probe);
    r->key = malloc((size_t)n + len + 1);
    if (!r->key) return AP_ERR_NOMEM;
    memcpy(r->key, head, (size_t)n);
    memcpy(r->key + n, text, len);
    r->key[(size_t)n + len] = '\0';
    r->key_len = (size_t)n + len;
    r->text_off = (size_t)n;
    r->text_len = len;
    return AP_OK;
}

static ap_status route_query(const fs_route_ctx *ctx, const char *name, size_t len, fs_route *r)
{
    ap_query q;
    ap_status st = ap_query_parse(name, len, ctx->k, ctx->probe, &q, &r->err);
    if (st == AP_ERR_NOMEM) return st;
    if (st) {
        refuse(r, st, &r->err);
        return AP_OK;
    }
    if (ctx->no_text) {
        ap_query_free(&q);
        ap_err_set(&r->err, AP_ERR_UNSUPPORTED, "%s", ctx->no_text);
        refuse(r, AP_ERR_UNSUPPORTED, &r->err);
        return AP_OK;
    }
    r->kind = FS_ROUTE_QUERY;
    r->k = q.k;
    r->probe = q.probe;
    st = make_key(r, 'q', q.text, q.len);
    ap_query_free(&q);
    return st;
}

/* "<base64url>[?<params>]": the vector is decoded and checked here, so a refused vector is
 * known before any search. */
static ap_status route_vquery(const fs_route_ctx *ctx, const char *name, size_t len, fs_route *r)
{
    if (len > AP_QUERY_RAW_MAX) {
        ap_err_set(&r->err, AP_ERR_LIMIT, "vector query name of %zu bytes exceeds the cap of %u",
                   len, AP_QUERY_RAW_MAX);
        refuse(r, AP_ERR_LIMIT, &r->err);
        return AP_OK;
    }
    const char *qm = memchr(name, '?', len);
    size_t vlen = qm ? (size_t)(qm - name) : len;
    r->k = ctx->k;
    r->probe = ctx->probe;
    ap_status st = AP_OK;
    if (qm) st = ap_query_params(qm + 1, len - vlen - 1, &r->k, &r->probe, &r->err);
    if (!st && vlen == 0) st = ap_err_set(&r->err, AP_ERR_ARG, "vector query: no vector");
    if (!st) {
        float *vec = malloc((ctx->dim ? ctx->dim : 1) * sizeof *vec);
        if (!vec) return AP_ERR_NOMEM;
        st = ap_query_vector_decode(name, vlen, ctx->dim, vec, &r->err);
        free(vec);
    }
    if (st == AP_ERR_NOMEM) return st;
    if (st) {
        refuse(r, st, &r->err);
        return AP_OK;
    }
    r->kind = FS_ROUTE_VQUERY;
    return make_key(r, 'v', name, vlen);
}

/* A parameter directory "k=N&probe=N" under vquery/ (base64url has no '=', so a name with
 * '=' and no '?' cannot be a vector). */
static int is_param_dir(const char *name, size_t len)
{
    return memchr(name, '=', len) && !memchr(name, '?', len);
}

static ap_status route_param_dir(const fs_route_ctx *ctx, const char *name, size_t len, fs_dir dir,
                                 fs_route *r)
{
    r->k = ctx->k;
    r->probe = ctx->probe;
    ap_status st = AP_OK;
    if (len > 256)
        st = ap_err_set(&r->err, AP_ERR_LIMIT,
                        "parameter directory name of %zu bytes exceeds "
                        "the cap of 256",
                        len);
    else
        st = ap_query_params(name, len, &r->k, &r->probe, &r->err);
    if (st && dir == FS_DIR_VPARAM) {
        refuse(r, st, &r->err);
        return AP_OK;
    }
    /* Under refusal/ the directory exists either way, so that the refusal of every name
     * below a refused one can be read. */
    r->kind = FS_ROUTE_DIR;
    r->dir = dir;
    r->status = st;
    return AP_OK;
}

static ap_status route_doc(const char *name, size_t len, fs_route *r)
{
    if (len == 0 || len > 16) return AP_OK;
    uint64_t id = 0;
    for (size_t i = 0; i < len; i++) {
        if (name[i] < '0' || name[i] > '9') return AP_OK;
        id = id * 10 + (uint64_t)(name[i] - '0');
    }
    r->kind = FS_ROUTE_DOC;
    r->id = id;
    r->key = malloc(24);
    if (!r->key) return AP_ERR_NOMEM;
    int n = snprintf(r->key, 24, "d %llu", (unsigned long long)id);
    r->key_len = (size_t)n;
    r->text_off = 2;
    r->text_len = (size_t)n - 2;
    return AP_OK;
}

/* Under refusal/: a name that its directory would refuse is a file saying why; any other
 * name does not exist. */
static ap_status as_refusal(fs_route *r)
{
    if (r->kind == FS_ROUTE_REFUSED) {
        r->kind = FS_ROUTE_REFUSAL;
        return AP_OK;
    }
    if (r->kind == FS_ROUTE_DIR) return AP_OK; /* a parameter directory */
    free(r->key);
    r->key = NULL;
    r->kind = FS_ROUTE_ABSENT;
    return AP_OK;
}

ap_status fs_route_name(fs_dir parent, const fs_route_ctx *ctx, const char *name, size_t len,
                        fs_route *out)
{
    memset(out, 0, sizeof *out);
    out->kind = FS_ROUTE_ABSENT;
    ap_status st = AP_OK;
    switch (parent) {
    case FS_DIR_ROOT:
        if (is(name, len, "query"))
            out->kind = FS_ROUTE_DIR, out->dir = FS_DIR_QUERY;
        else if (is(name, len, "vquery"))
            out->kind = FS_ROUTE_DIR, out->dir = FS_DIR_VQUERY;
        else if (is(name, len, "doc"))
            out->kind = FS_ROUTE_DIR, out->dir = FS_DIR_DOC;
        else if (is(name, len, "refusal"))
            out->kind = FS_ROUTE_DIR, out->dir = FS_DIR_REFUSAL;
        for (int f = 0; out->kind == FS_ROUTE_ABSENT && f <= FS_FILE_STATS; f++)
            if (is(name, len, ROOT_FILES[f]) && (f != FS_FILE_SQ8 || ctx->sq8) &&
                (f != FS_FILE_IDF || ctx->idf))
                out->kind = FS_ROUTE_FILE, out->file = (fs_file)f;
        return AP_OK;
    case FS_DIR_REFUSAL:
        if (is(name, len, "query"))
            out->kind = FS_ROUTE_DIR, out->dir = FS_DIR_REFUSAL_QUERY;
        else if (is(name, len, "vquery"))
            out->kind = FS_ROUTE_DIR, out->dir = FS_DIR_REFUSAL_VQUERY;
        return AP_OK;
    case FS_DIR_QUERY:
        return route_query(ctx, name, len, out);
    case FS_DIR_REFUSAL_QUERY:
        st = route_query(ctx, name, len, out);
        return st ? st : as_refusal(out);
    case FS_DIR_VQUERY:
        if (is_param_dir(name, len)) return route_param_dir(ctx, name, len, FS_DIR_VPARAM, out);
        return route_vquery(ctx, name, len, out);
    case FS_DIR_REFUSAL_VQUERY:
        if (is_param_dir(name, len))
            return route_param_dir(ctx, name, len, FS_DIR_REFUSAL_VPARAM, out);
        st = route_vquery(ctx, name, len, out);
        return st ? st : as_refusal(out);
    case FS_DIR_VPARAM:
        return route_vquery(ctx, name, len, out);
    case FS_DIR_REFUSAL_VPARAM:
        if (ctx->dir_refused) {
            out->kind = FS_ROUTE_REFUSAL;
            out->status = AP_ERR_ARG;
            snprintf(out->err.msg, sizeof out->err.msg, "%s", ctx->dir_refused);
            out->err.status = AP_ERR_ARG;
            return AP_OK;
        }
        st = route_vquery(ctx, name, len, out);
        return st ? st : as_refusal(out);
    case FS_DIR_DOC:
        return route_doc(name, len, out);
    }
    return AP_OK;
}

void fs_route_free(fs_route *r)
{
    free(r->key);
    r->key = NULL;
}

static int parse_u32(const char **p, const char *end, uint32_t *out)
{
    uint64_t v = 0;
    const char *s = *p;
    while (*p < end && **p >= '0' && **p <= '9' && *p - s < 10)
        v = v * 10 + (uint64_t)(*(*p)++ - '0');
    if (*p == s || *p >= end || **p != ' ' || v > UINT32_MAX) return 0;
    (*p)++;
    *out = (uint32_t)v;
    return 1;
}

ap_status fs_route_parse_key(const char *key, size_t len, fs_route *out)
{
    memset(out, 0, sizeof *out);
    if (len < 3 || key[1] != ' ') return AP_ERR_ARG;
    const char *p = key + 2, *end = key + len;
    if (key[0] == 'd') {
        out->kind = FS_ROUTE_DOC;
        if (p == end || end - p > 20) return AP_ERR_ARG;
        for (; p < end; p++) {
            if (*p < '0' || *p > '9') return AP_ERR_ARG;
            out->id = out->id * 10 + (uint64_t)(*p - '0');
        }
        out->text_off = 2;
        out->text_len = len - 2;
        return AP_OK;
    }
    if (key[0] != 'q' && key[0] != 'v') return AP_ERR_ARG;
    out->kind = key[0] == 'q' ? FS_ROUTE_QUERY : FS_ROUTE_VQUERY;
    if (!parse_u32(&p, end, &out->k) || !parse_u32(&p, end, &out->probe)) return AP_ERR_ARG;
    out->text_off = (size_t)(p - key);
    out->text_len = (size_t)(end - p);
    return AP_OK;
}
