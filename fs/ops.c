/* FUSE operations: paths of the virtual tree (docs/MOUNT.md) mapped to core calls. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "fs.h"

typedef enum kind {
    K_NONE, K_ROOT, K_QUERYDIR, K_DOCDIR, K_MANIFEST, K_ANNPACK, K_META, K_HEALTH, K_STATS,
    K_QUERY, K_DOC, K_SQ8, K_VQUERYDIR, K_VPARAMDIR, K_VQUERY
} kind;

static const struct {
    const char *path;
    kind k;
} STATIC[] = {{"/pack.manifest.json", K_MANIFEST}, {"/pack.annpack", K_ANNPACK},
              {"/pack.meta.jsonl", K_META},        {"/health", K_HEALTH},
              {"/stats", K_STATS},                 {"/pack.sq8", K_SQ8}};

static int is_dir(kind k)
{
    return k == K_ROOT || k == K_QUERYDIR || k == K_DOCDIR || k == K_VQUERYDIR || k == K_VPARAMDIR;
}

/* /vquery/<params>/ directories hold parameters ("k=N&probe=N"); vector names are
 * base64url, which has no '=', so a '=' tells the two apart. */
static kind classify_vquery(const char *rest, const char **name)
{
    const char *slash = strchr(rest, '/');
    if (!slash) {
        *name = rest;
        return strchr(rest, '=') && !strchr(rest, '?') ? K_VPARAMDIR : K_VQUERY;
    }
    if (slash == rest || !slash[1] || strchr(slash + 1, '/') || !memchr(rest, '=', (size_t)(slash - rest)))
        return K_NONE;
    *name = rest;
    return K_VQUERY;
}

static kind classify(const char *path, const char **name)
{
    *name = NULL;
    if (!strcmp(path, "/")) return K_ROOT;
    if (!strcmp(path, "/query")) return K_QUERYDIR;
    if (!strcmp(path, "/doc")) return K_DOCDIR;
    if (!strcmp(path, "/vquery")) return K_VQUERYDIR;
    for (size_t i = 0; i < sizeof STATIC / sizeof STATIC[0]; i++)
        if (!strcmp(path, STATIC[i].path)) return STATIC[i].k;
    if (!strncmp(path, "/query/", 7) && path[7]) {
        *name = path + 7;
        return K_QUERY;
    }
    if (!strncmp(path, "/vquery/", 8) && path[8]) return classify_vquery(path + 8, name);
    if (!strncmp(path, "/doc/", 5) && path[5]) {
        *name = path + 5;
        return K_DOC;
    }
    return K_NONE;
}

typedef struct handle {
    kind k;
    fs_gen *gen;
    fs_blob *blob; /* query, doc, stats, manifest/health copies are in gen */
} handle;

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static double now_us(void);

/* Runs one query (text embedded, or a vector name decoded) and caches the JSON result. */
static int search_blob(fs_gen *g, const ap_query *q, int vector, const char *name,
                       const char *key, fs_blob **out)
{
    double t0 = now_us();
    ap_err err = {0};
    ap_status st = AP_OK;
    uint32_t dim = ap_view_dim(g->view);
    float *vec = malloc(dim * sizeof *vec);
    ap_hit *hits = malloc(q->k * sizeof *hits);
    uint32_t n = 0;
    char *json = NULL;
    size_t len = 0;
    if (!vec || !hits) st = ap_err_set(&err, AP_ERR_NOMEM, "out of memory");
    if (!st)
        st = vector ? ap_query_vector_decode(q->text, q->len, dim, vec, &err)
                    : ap_view_embed(g->view, q->text, q->len, vec, &err);
    ap_search_params sp = {.k = q->k, .probe = q->probe, .scan = g_cfg.scan, .rerank = g_cfg.rerank};
    if (!st) st = ap_view_search_ex(g->view, vec, &sp, hits, &n, NULL, &err);
    if (!st) {
        uint32_t probe = q->probe > ap_view_n_lists(g->view) ? ap_view_n_lists(g->view) : q->probe;
        json = ap_results_json(vector ? "vector" : q->text, q->k, probe, (long long)g->number,
                               (now_us() - t0) / 1e3, hits, n, ap_view_row_of, g->view, &len);
        if (!json) st = ap_err_set(&err, AP_ERR_NOMEM, "out of memory");
    }
    free(vec);
    free(hits);
    if (st) {
        atomic_fetch_add(&g_stats.errors, 1);
        /* A malformed vector or an unembeddable pack is the caller's mistake. */
        ap_log(st == AP_ERR_ARG || st == AP_ERR_UNSUPPORTED ? AP_LOG_WARN : AP_LOG_ERROR,
               vector ? "vquery" : "query", "%s", err.msg);
        free(json);
        return fs_errno(st);
    }
    fs_blob *b = fs_blob_new(json, len);
    free(json);
    if (!b) return -ENOMEM;
    atomic_fetch_add(&g_stats.queries, 1);
    fs_stats_record_latency(now_us() - t0);
    /* The cache remembers the path so a reload can invalidate the kernel's entry. */
    size_t pl = strlen(name) + 10;
    char *path = malloc(pl);
    if (path) snprintf(path, pl, "%s/%s", vector ? "/vquery" : "/query", name);
    fs_cache_put(g->number, key, path ? path : "", b);
    free(path);
    *out = b;
    return 0;
}

/* The result of a query file name in generation g: cached, or computed and cached. */
static int query_blob_unguarded(fs_gen *g, const char *name, fs_blob **out)
{
    ap_query q;
    ap_err err = {0};
    ap_status st = ap_query_parse(name, strlen(name), g_cfg.k, g_cfg.probe, &q, &err);
    if (st) {
        atomic_fetch_add(&g_stats.errors, 1);
        ap_log(AP_LOG_WARN, "query", "refused name (%zu bytes): %s", strlen(name), err.msg);
        return fs_errno(st);
    }
    /* Names that decode to the same query share one result (and so identical bytes). */
    char *key = malloc(q.len + 32);
    if (!key) {
        ap_query_free(&q);
        return -ENOMEM;
    }
    snprintf(key, q.len + 32, "%u %u %s", q.k, q.probe, q.text);
    *out = fs_cache_get(g->number, key);
    if (*out) {
        atomic_fetch_add(&g_stats.cache_hits, 1);
        ap_query_free(&q);
        free(key);
        return 0;
    }
    int rc = search_blob(g, &q, 0, name, key, out);
    ap_query_free(&q);
    free(key);
    return rc;
}

/* A vector query name: "[<params>/]<base64url>[?<params>]". */
static int vquery_blob_unguarded(fs_gen *g, const char *name, fs_blob **out)
{
    ap_query q = {.k = g_cfg.k, .probe = g_cfg.probe};
    ap_err err = {0};
    const char *slash = strchr(name, '/'), *vec = slash ? slash + 1 : name;
    const char *qm = strchr(vec, '?');
    size_t vlen = qm ? (size_t)(qm - vec) : strlen(vec);
    ap_status st = AP_OK;
    if (strlen(name) > AP_QUERY_NAME_MAX + 256)
        st = ap_err_set(&err, AP_ERR_LIMIT, "vector query name of %zu bytes is too long", strlen(name));
    if (!st && slash) st = ap_query_params(name, (size_t)(slash - name), &q.k, &q.probe, &err);
    if (!st && qm) st = ap_query_params(qm + 1, strlen(qm + 1), &q.k, &q.probe, &err);
    if (!st && vlen == 0) st = ap_err_set(&err, AP_ERR_ARG, "vector query: no vector");
    if (st) {
        atomic_fetch_add(&g_stats.errors, 1);
        ap_log(AP_LOG_WARN, "vquery", "refused name (%zu bytes): %s", strlen(name), err.msg);
        return fs_errno(st);
    }
    char *key = malloc(vlen + 48);
    if (!key) return -ENOMEM;
    snprintf(key, vlen + 48, "v %u %u %.*s", q.k, q.probe, (int)vlen, vec);
    *out = fs_cache_get(g->number, key);
    if (*out) {
        atomic_fetch_add(&g_stats.cache_hits, 1);
        free(key);
        return 0;
    }
    q.text = (char *)vec;
    q.len = vlen;
    int rc = search_blob(g, &q, 1, name, key, out);
    free(key);
    return rc;
}

static int doc_blob_unguarded(fs_gen *g, const char *name, fs_blob **out)
{
    *out = NULL;
    uint64_t id = 0;
    size_t n = strlen(name);
    if (n == 0 || n > 16) return -ENOENT;
    for (size_t i = 0; i < n; i++) {
        if (name[i] < '0' || name[i] > '9') return -ENOENT;
        id = id * 10 + (uint64_t)(name[i] - '0');
    }
    char *row = NULL;
    size_t len = 0;
    ap_err err = {0};
    ap_status st = ap_view_get_row(g->view, id, &row, &len, NULL, &err);
    if (st) {
        if (st != AP_ERR_NOTFOUND) ap_log(AP_LOG_ERROR, "doc", "doc/%s: %s", name, err.msg);
        return fs_errno(st);
    }
    *out = fs_blob_new(row, len);
    free(row);
    if (*out) (*out)->data[len] = '\n', (*out)->len = len + 1; /* the blob has len + 1 bytes */
    atomic_fetch_add(&g_stats.docs, 1);
    return *out ? 0 : -ENOMEM;
}

typedef struct blob_call {
    int (*fn)(fs_gen *, const char *, fs_blob **);
    fs_gen *g;
    const char *name;
    fs_blob **out;
} blob_call;

static int run_blob_call(void *arg)
{
    blob_call *c = arg;
    return c->fn(c->g, c->name, c->out);
}

/* Queries and docs read the mapped source files: guard them (guard.c). */
static int query_blob(fs_gen *g, const char *name, fs_blob **out)
{
    *out = NULL;
    blob_call c = {query_blob_unguarded, g, name, out};
    return fs_guarded(run_blob_call, &c, "query");
}

static int vquery_blob(fs_gen *g, const char *name, fs_blob **out)
{
    *out = NULL;
    blob_call c = {vquery_blob_unguarded, g, name, out};
    return fs_guarded(run_blob_call, &c, "vquery");
}

static int doc_blob(fs_gen *g, const char *name, fs_blob **out)
{
    *out = NULL;
    blob_call c = {doc_blob_unguarded, g, name, out};
    return fs_guarded(run_blob_call, &c, "doc");
}

typedef struct read_call {
    const handle *h;
    uint64_t off;
    char *buf;
    size_t size;
    ap_err err;
} read_call;

static int run_read_call(void *arg)
{
    read_call *c = arg;
    const ap_view *v = c->h->gen->view;
    ap_status st = c->h->k == K_ANNPACK ? ap_view_annpack_read(v, c->off, c->buf, c->size, &c->err)
                   : c->h->k == K_SQ8   ? ap_view_sq8_read(v, c->off, c->buf, c->size, &c->err)
                                        : ap_view_meta_read(v, c->off, c->buf, c->size, &c->err);
    return st ? -EIO : 0;
}

static void fill_attr(struct stat *st, const fs_gen *g, int dir, uint64_t size)
{
    memset(st, 0, sizeof *st);
    st->st_mode = dir ? (S_IFDIR | 0555) : (S_IFREG | 0444);
    st->st_nlink = dir ? 2 : 1;
    st->st_size = (off_t)size;
    st->st_mtim = g->mtime;
    st->st_ctim = g->mtime;
    st->st_atim = g->mtime;
    st->st_blksize = 65536;
    st->st_blocks = (blkcnt_t)((size + 511) / 512);
}

/* Attributes of an open file: what that handle will read, whatever generation is current
 * now (fstat after open must agree with the bytes served). */
static void handle_attr(const handle *h, struct stat *stbuf)
{
    uint64_t size = 0;
    switch (h->k) {
    case K_MANIFEST: size = h->gen->manifest_len; break;
    case K_HEALTH: size = h->gen->health_len; break;
    case K_ANNPACK: size = ap_view_annpack_size(h->gen->view); break;
    case K_META: size = ap_view_meta_size(h->gen->view); break;
    case K_SQ8: size = ap_view_sq8_size(h->gen->view); break;
    default: size = h->blob ? h->blob->len : 0; break;
    }
    fill_attr(stbuf, h->gen, 0, size);
}

static int op_getattr(const char *path, struct stat *stbuf, struct fuse_file_info *fi)
{
    if (fi && fi->fh) {
        handle_attr((const handle *)(uintptr_t)fi->fh, stbuf);
        return 0;
    }
    const char *name;
    kind k = classify(path, &name);
    if (k == K_NONE) return -ENOENT;
    fs_gen *g = fs_gen_current();
    int rc = 0;
    fs_blob *b = NULL;
    size_t stats_len = 0;
    char *stats;
    switch (k) {
    case K_ROOT:
    case K_QUERYDIR:
    case K_VQUERYDIR:
    case K_DOCDIR: fill_attr(stbuf, g, 1, 0); break;
    case K_VPARAMDIR: {
        uint32_t k = g_cfg.k, probe = g_cfg.probe;
        ap_err err = {0};
        if (ap_query_params(name, strlen(name), &k, &probe, &err)) rc = -EINVAL;
        else fill_attr(stbuf, g, 1, 0);
        break;
    }
    case K_SQ8:
        if (ap_view_has_sq8(g->view)) fill_attr(stbuf, g, 0, ap_view_sq8_size(g->view));
        else rc = -ENOENT;
        break;
    case K_VQUERY:
        if (!(rc = vquery_blob(g, name, &b))) fill_attr(stbuf, g, 0, b->len);
        break;
    case K_MANIFEST: fill_attr(stbuf, g, 0, g->manifest_len); break;
    case K_ANNPACK: fill_attr(stbuf, g, 0, ap_view_annpack_size(g->view)); break;
    case K_META: fill_attr(stbuf, g, 0, ap_view_meta_size(g->view)); break;
    case K_HEALTH: fill_attr(stbuf, g, 0, g->health_len); break;
    case K_STATS:
        stats = fs_stats_json(&stats_len);
        free(stats);
        fill_attr(stbuf, g, 0, stats_len);
        break;
    case K_QUERY:
        if (!(rc = query_blob(g, name, &b))) fill_attr(stbuf, g, 0, b->len);
        break;
    case K_DOC:
        if (!(rc = doc_blob(g, name, &b))) fill_attr(stbuf, g, 0, b->len);
        break;
    default: rc = -ENOENT;
    }
    fs_blob_unref(b);
    fs_gen_unref(g);
    return rc;
}

static int op_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t off,
                      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
    (void)off;
    (void)fi;
    (void)flags;
    const char *name;
    kind k = classify(path, &name);
    if (!is_dir(k)) return -ENOTDIR;
    filler(buf, ".", NULL, 0, 0);
    filler(buf, "..", NULL, 0, 0);
    if (k == K_ROOT) {
        fs_gen *g = fs_gen_current();
        for (size_t i = 0; i < sizeof STATIC / sizeof STATIC[0]; i++)
            if (STATIC[i].k != K_SQ8 || ap_view_has_sq8(g->view))
                filler(buf, STATIC[i].path + 1, NULL, 0, 0);
        fs_gen_unref(g);
        filler(buf, "query", NULL, 0, 0);
        filler(buf, "vquery", NULL, 0, 0);
        filler(buf, "doc", NULL, 0, 0);
    }
    return 0;
}

static int op_open(const char *path, struct fuse_file_info *fi)
{
    if ((fi->flags & O_ACCMODE) != O_RDONLY) return -EROFS;
    const char *name;
    kind k = classify(path, &name);
    if (k == K_NONE) return -ENOENT;
    if (is_dir(k)) return -EISDIR;
    handle *h = calloc(1, sizeof *h);
    if (!h) return -ENOMEM;
    h->k = k;
    h->gen = fs_gen_current();
    int rc = 0;
    if (k == K_QUERY) {
        rc = query_blob(h->gen, name, &h->blob);
    } else if (k == K_VQUERY) {
        rc = vquery_blob(h->gen, name, &h->blob);
    } else if (k == K_SQ8 && !ap_view_has_sq8(h->gen->view)) {
        rc = -ENOENT;
    } else if (k == K_DOC) {
        rc = doc_blob(h->gen, name, &h->blob);
    } else if (k == K_STATS) {
        size_t len;
        char *s = fs_stats_json(&len);
        h->blob = s ? fs_blob_new(s, len) : NULL;
        free(s);
        if (!h->blob) rc = -ENOMEM;
    }
    /* A reload may come between the lookup that sized this file and this open: reads
     * must not be cut at the kernel's idea of the size, and fstat on the handle answers
     * for the generation the handle reads (handle_attr). */
    fi->direct_io = 1;
    if (rc) {
        fs_gen_unref(h->gen);
        free(h);
        return rc;
    }
    fi->fh = (uint64_t)(uintptr_t)h;
    return 0;
}

static int copy_out(const char *data, size_t len, char *buf, size_t size, off_t off)
{
    if ((uint64_t)off >= len) return 0;
    size_t n = len - (size_t)off < size ? len - (size_t)off : size;
    memcpy(buf, data + off, n);
    return (int)n;
}

static int op_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
    (void)path;
    handle *h = (handle *)(uintptr_t)fi->fh;
    atomic_fetch_add(&g_stats.reads, 1);
    if (off < 0) return -EINVAL;
    uint64_t total;
    switch (h->k) {
    case K_MANIFEST: return copy_out(h->gen->manifest, h->gen->manifest_len, buf, size, off);
    case K_HEALTH: return copy_out(h->gen->health, h->gen->health_len, buf, size, off);
    case K_QUERY:
    case K_VQUERY:
    case K_DOC:
    case K_STATS: return copy_out(h->blob->data, h->blob->len, buf, size, off);
    case K_ANNPACK:
    case K_SQ8:
    case K_META:
        total = h->k == K_ANNPACK ? ap_view_annpack_size(h->gen->view)
                : h->k == K_SQ8   ? ap_view_sq8_size(h->gen->view)
                                  : ap_view_meta_size(h->gen->view);
        if ((uint64_t)off >= total) return 0;
        if (size > total - (uint64_t)off) size = (size_t)(total - (uint64_t)off);
        {
            read_call c = {.h = h, .off = (uint64_t)off, .buf = buf, .size = size};
            int rc = fs_guarded(run_read_call, &c, path);
            if (rc == -EIO && c.err.msg[0]) {
                atomic_fetch_add(&g_stats.errors, 1);
                ap_log(AP_LOG_ERROR, "read", "%s at %lld: %s", path, (long long)off, c.err.msg);
            }
            return rc ? rc : (int)size;
        }
    default: return -EIO;
    }
}

static int op_release(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    handle *h = (handle *)(uintptr_t)fi->fh;
    if (h) {
        fs_blob_unref(h->blob);
        fs_gen_unref(h->gen);
        free(h);
    }
    return 0;
}

static int op_opendir(const char *path, struct fuse_file_info *fi)
{
    (void)fi;
    const char *name;
    kind k = classify(path, &name);
    return is_dir(k) ? 0 : -ENOTDIR;
}

static void *op_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
    (void)conn;
    /* Short entry cache: a reload is visible within a second even for names the kernel
     * keeps; static files and served query names are also invalidated on reload. */
    cfg->entry_timeout = 1.0;
    cfg->attr_timeout = 0; /* fstat after open always asks us (see op_open) */
    cfg->negative_timeout = 0;
    cfg->kernel_cache = 0;
    return NULL;
}

const struct fuse_operations fs_ops = {
    .init = op_init,
    .getattr = op_getattr,
    .readdir = op_readdir,
    .opendir = op_opendir,
    .open = op_open,
    .read = op_read,
    .release = op_release,
};
