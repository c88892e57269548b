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

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..len) into out (len + 1 bytes, NUL-terminated): its length, or
 * (size_t)-1 for a malformed escape. */
static size_t pct_decode(const char *s, size_t len, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '%') {
            out[o++] = s[i];
            continue;
        }
        int h = i + 2 < len ? hexval(s[i + 1]) : -1, l = i + 2 < len ? hexval(s[i + 2]) : -1;
        if (h < 0 || l < 0) return (size_t)-1;
        out[o++] = (char)(h * 16 + l);
        i += 2;
    }
    out[o] = '\0';
    return o;
}

/* Percent-encodes s (all but A-Z a-z 0-9 - . _ ~) at out: the bytes written (3 * len at
 * most). */
static size_t pct_encode(const char *s, char *out)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    return o;
}

typedef struct where_cond {
    char col[FS_WHERE_COL_MAX + 1], value[FS_WHERE_VALUE_MAX + 1];
} where_cond;

/* Decodes one part of a condition into out (cap bytes at most, decoded): AP_OK or a
 * refusal naming what. */
static ap_status decode_part(const char *s, size_t len, char *out, size_t cap, const char *what,
                             ap_err *err)
{
    char buf[3 * FS_WHERE_VALUE_MAX + 1];
    if (len > 3 * cap)
        return ap_err_set(err, AP_ERR_LIMIT, "filter %s of more than %zu bytes exceeds the cap",
                          what, cap);
    size_t n = pct_decode(s, len, buf);
    if (n == (size_t)-1)
        return ap_err_set(err, AP_ERR_ARG, "filter %s has a malformed %%-escape", what);
    if (n > cap)
        return ap_err_set(err, AP_ERR_LIMIT, "filter %s of %zu bytes exceeds the cap of %zu", what,
                          n, cap);
    ap_err ignored = {0};
    if (ap_query_text_check(buf, n, &ignored))
        return ap_err_set(err, AP_ERR_ARG, "filter %s is empty, blank or not valid UTF-8", what);
    memcpy(out, buf, n + 1);
    return AP_OK;
}

/* Whether s[0..len) can name a filter column: printable ASCII as in a URL (anything else
 * percent-encoded), so that stray bytes stay "unknown parameters". */
static bool column_like(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] < 0x21 || s[i] > 0x7e) return false;
    return true;
}

static int cmp_cond(const void *a, const void *b)
{
    return strcmp(((const where_cond *)a)->col, ((const where_cond *)b)->col);
}

/* Splits the parameters s[0..len) into k and probe (and anything malformed, which
 * ap_query_params refuses) copied to kp (len + 1 bytes, NUL-terminated), and the metadata
 * filter conditions "col=value", canonicalised (decoded, sorted by column, re-encoded) into
 * a malloc'd *where (NULL when none) and checked with ctx->check_where. Refusals: a status
 * other than AP_ERR_NOMEM, with err set. */
static ap_status split_params(const fs_route_ctx *ctx, const char *s, size_t len, char *kp,
                              char **where, size_t *wlen, ap_err *err)
{
    where_cond *cs = malloc(FS_WHERE_MAX * sizeof *cs);
    if (!cs) return AP_ERR_NOMEM;
    size_t nc = 0, o = 0;
    ap_status st = AP_OK;
    *where = NULL;
    *wlen = 0;
    const char *p = s, *end = s + len;
    while (!st && p && p <= end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pe = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pe - p));
        size_t klen = eq ? (size_t)(eq - p) : (size_t)(pe - p);
        if (pe == p) {
            /* empty segment */
        } else if (!eq || (klen == 1 && p[0] == 'k') || (klen == 5 && !memcmp(p, "probe", 5)) ||
                   !column_like(p, klen)) {
            if (o) kp[o++] = '&';
            memcpy(kp + o, p, (size_t)(pe - p));
            o += (size_t)(pe - p);
        } else if (nc == FS_WHERE_MAX) {
            st = ap_err_set(err, AP_ERR_LIMIT, "more than %u filter conditions", FS_WHERE_MAX);
        } else {
            st = decode_part(p, klen, cs[nc].col, FS_WHERE_COL_MAX, "column", err);
            if (!st)
                st = decode_part(eq + 1, (size_t)(pe - eq - 1), cs[nc].value, FS_WHERE_VALUE_MAX,
                                 "value", err);
            for (size_t d = 0; !st && d < nc; d++)
                if (!strcmp(cs[d].col, cs[nc].col))
                    st =
                        ap_err_set(err, AP_ERR_ARG, "filter column \"%s\" given twice", cs[nc].col);
            nc++;
        }
        p = amp ? amp + 1 : NULL;
    }
    kp[o] = '\0';
    if (!st && nc) {
        qsort(cs, nc, sizeof *cs, cmp_cond);
        char *w = malloc(nc * (3 * (FS_WHERE_COL_MAX + FS_WHERE_VALUE_MAX) + 2));
        if (!w) st = AP_ERR_NOMEM;
        size_t n = 0;
        for (size_t c = 0; w && c < nc; c++) {
            if (c) w[n++] = '&';
            n += pct_encode(cs[c].col, w + n);
            w[n++] = '=';
            n += pct_encode(cs[c].value, w + n);
        }
        *where = w;
        *wlen = n;
    }
    free(cs);
    if (!st && *where && ctx->check_where) {
        fs_route tmp = {.where_len = *wlen};
        ap_where *conds = NULL;
        size_t n = 0;
        st = fs_route_where(*where, &tmp, &conds, &n);
        if (!st) {
            st = ctx->check_where(ctx->check_arg, conds, n, err);
            if (st && st != AP_ERR_NOMEM) st = AP_ERR_ARG; /* a bad name: EINVAL, HTTP 400 */
        }
        free(conds);
    }
    if (st) {
        free(*where);
        *where = NULL;
        *wlen = 0;
    }
    return st;
}

/* key = "<c> <k> <probe> <text>", or with filters "<C> <k> <probe> <where> <text>" */
static ap_status make_key(fs_route *r, char c, const char *where, size_t wlen, const char *text,
                          size_t len)
{
    char head[40];
    int n = snprintf(head, sizeof head, "%c %u %u ", wlen ? c - 'a' + 'A' : c, r->k, r->probe);
    size_t at = (size_t)n + (wlen ? wlen + 1 : 0);
    r->key = malloc(at + len + 1);
    if (!r->key) return AP_ERR_NOMEM;
    memcpy(r->key, head, (size_t)n);
    if (wlen) {
        memcpy(r->key + n, where, wlen);
        r->key[at - 1] = ' ';
    }
    memcpy(r->key + at, text, len);
    r->key[at + len] = '\0';
    r->key_len = at + len;
    r->where_off = wlen ? (size_t)n : 0;
    r->where_len = wlen;
    r->text_off = at;
    r->text_len = len;
    return AP_OK;
}

static ap_status route_query(const fs_route_ctx *ctx, const char *name, size_t len, fs_route *r)
{
    /* Filters are taken out first; the text and k/probe go to ap_query_parse. */
    const char *qm = len <= AP_QUERY_RAW_MAX ? memchr(name, '?', len) : NULL;
    size_t tlen = qm ? (size_t)(qm - name) : len;
    char *plain = malloc(len + 2), *where = NULL;
    if (!plain) return AP_ERR_NOMEM;
    size_t wlen = 0, plen = len;
    ap_status st = AP_OK;
    memcpy(plain, name, tlen);
    if (qm) {
        plain[tlen] = '?';
        st = split_params(ctx, qm + 1, len - tlen - 1, plain + tlen + 1, &where, &wlen, &r->err);
        plen = tlen + 1 + strlen(plain + tlen + 1);
    }
    ap_query q = {0};
    if (!st) st = ap_query_parse(qm ? plain : name, plen, ctx->k, ctx->probe, &q, &r->err);
    free(plain);
    if (st == AP_ERR_NOMEM) {
        free(where);
        return st;
    }
    if (st) {
        free(where);
        refuse(r, st, &r->err);
        return AP_OK;
    }
    if (ctx->no_text) {
        ap_query_free(&q);
        free(where);
        ap_err_set(&r->err, AP_ERR_UNSUPPORTED, "%s", ctx->no_text);
        refuse(r, AP_ERR_UNSUPPORTED, &r->err);
        return AP_OK;
    }
    r->kind = FS_ROUTE_QUERY;
    r->k = q.k;
    r->probe = q.probe;
    st = make_key(r, 'q', where, wlen, q.text, q.len);
    ap_query_free(&q);
    free(where);
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
    char *where = NULL, *kp = malloc(len + 1);
    size_t wlen = 0;
    if (!kp) return AP_ERR_NOMEM;
    if (qm) st = split_params(ctx, qm + 1, len - vlen - 1, kp, &where, &wlen, &r->err);
    if (qm && !st) st = ap_query_params(kp, strlen(kp), &r->k, &r->probe, &r->err);
    free(kp);
    if (!st && vlen == 0) st = ap_err_set(&r->err, AP_ERR_ARG, "vector query: no vector");
    float *vec = NULL;
    if (!st) {
        vec = malloc((ctx->dim ? ctx->dim : 1) * sizeof *vec);
        if (!vec) {
            free(where);
            return AP_ERR_NOMEM;
        }
        st = ap_query_vector_decode(name, vlen, ctx->dim, vec, &r->err);
    }
    if (st) {
        free(vec);
        free(where);
        if (st == AP_ERR_NOMEM) return st;
        refuse(r, st, &r->err);
        return AP_OK;
    }
    r->vec = vec; /* kept for the answer */
    r->kind = FS_ROUTE_VQUERY;
    st = make_key(r, 'v', where, wlen, name, vlen);
    free(where);
    return st;
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
    fs_route_free(r);
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
    free(r->vec);
    r->vec = NULL;
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
    if (!strchr("qvQV", key[0])) return AP_ERR_ARG;
    out->kind = key[0] == 'q' || key[0] == 'Q' ? FS_ROUTE_QUERY : FS_ROUTE_VQUERY;
    if (!parse_u32(&p, end, &out->k) || !parse_u32(&p, end, &out->probe)) return AP_ERR_ARG;
    if (key[0] == 'Q' || key[0] == 'V') {
        const char *sp = memchr(p, ' ', (size_t)(end - p));
        if (!sp || sp == p) return AP_ERR_ARG;
        out->where_off = (size_t)(p - key);
        out->where_len = (size_t)(sp - p);
        p = sp + 1;
    }
    out->text_off = (size_t)(p - key);
    out->text_len = (size_t)(end - p);
    return AP_OK;
}

ap_status fs_route_where(const char *key, const fs_route *r, ap_where **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!r->where_len) return AP_OK;
    const char *s = key + r->where_off, *end = s + r->where_len;
    size_t count = 1;
    for (const char *p = s; p < end; p++)
        count += *p == '&';
    if (count > FS_WHERE_MAX) return AP_ERR_ARG;
    ap_where *w = malloc(count * sizeof *w + r->where_len + 2 * count);
    if (!w) return AP_ERR_NOMEM;
    char *buf = (char *)(w + count);
    for (size_t c = 0; c < count; c++) {
        const char *amp = memchr(s, '&', (size_t)(end - s));
        const char *pe = amp ? amp : end;
        const char *eq = memchr(s, '=', (size_t)(pe - s));
        size_t cl = eq ? pct_decode(s, (size_t)(eq - s), buf) : (size_t)-1;
        size_t vl =
            cl != (size_t)-1 ? pct_decode(eq + 1, (size_t)(pe - eq - 1), buf + cl + 1) : (size_t)-1;
        if (vl == (size_t)-1) {
            free(w);
            return AP_ERR_ARG;
        }
        w[c].col = buf;
        w[c].value = buf + cl + 1;
        buf += cl + vl + 2;
        s = pe + 1;
    }
    *out = w;
    *n = count;
    return AP_OK;
}
