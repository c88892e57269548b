/* FUSE operations (the low-level API): names of the virtual tree (docs/MOUNT.md) mapped to
 * core calls.
 *
 * Every file is an immutable inode: a lookup returns an inode bound to one generation and,
 * for query, document and stats files, to the bytes computed at that lookup. So st_size is
 * exact, the kernel may cache pages (no direct I/O), a file open across a reload keeps
 * reading the generation it was looked up in, and no open or release request is needed at
 * all (FUSE_CAP_NO_OPEN_SUPPORT): a query costs the kernel a LOOKUP and a READ. Static
 * files keep one inode per generation (so nginx and the page cache share it); results get
 * one per lookup, and the kernel's dentry cache and our result cache serve repeats. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "fs.h"

/* Directories have fixed inode numbers; files are node pointers (never that small). */
enum { INO_QUERYDIR = 2, INO_VQUERYDIR = 3, INO_DOCDIR = 4 };

typedef enum kind {
    K_MANIFEST, K_ANNPACK, K_META, K_SQ8, K_HEALTH, /* per generation, FS_GEN_FILES of them */
    K_STATS, K_QUERY, K_VQUERY, K_DOC, K_VPARAMDIR
} kind;

static const char *const FILE_NAMES[FS_GEN_FILES] = {"pack.manifest.json", "pack.annpack",
                                                     "pack.meta.jsonl", "pack.sq8", "health"};

typedef struct node {
    uint64_t nlookup; /* under g_nodes_lock */
    kind k;
    fs_gen *gen;      /* referenced */
    fs_blob *blob;    /* K_STATS, K_QUERY, K_VQUERY, K_DOC */
    uint32_t k_res, probe; /* K_VPARAMDIR: the directory's parameters */
    struct node *prev, *next; /* every live node, under g_live_lock */
} node;

static pthread_mutex_t g_nodes_lock = PTHREAD_MUTEX_INITIALIZER;
/* On unmount the kernel's lookup counts drop to zero without forget messages (libfuse:
 * "not guaranteed"), so the live nodes are listed and freed by op_destroy. Never held
 * while taking g_nodes_lock. */
static pthread_mutex_t g_live_lock = PTHREAD_MUTEX_INITIALIZER;
static node *g_live;
static int g_no_open; /* the kernel can skip OPEN once we answer it with ENOSYS */

static const double ENTRY_TIMEOUT = 1.0; /* a reload is visible within a second at worst */

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static node *node_of(fuse_ino_t ino)
{
    return (node *)(uintptr_t)ino;
}

static int is_dir_ino(fuse_ino_t ino)
{
    return ino == FUSE_ROOT_ID || ino == INO_QUERYDIR || ino == INO_VQUERYDIR || ino == INO_DOCDIR;
}

static node *node_new(kind k, fs_gen *g, fs_blob *b)
{
    node *n = calloc(1, sizeof *n);
    if (!n) return NULL;
    n->k = k;
    n->gen = g;
    n->blob = b;
    n->nlookup = 1;
    pthread_mutex_lock(&g_live_lock);
    n->next = g_live;
    if (g_live) g_live->prev = n;
    g_live = n;
    pthread_mutex_unlock(&g_live_lock);
    return n;
}

static void node_free(node *n)
{
    pthread_mutex_lock(&g_live_lock);
    if (n->prev) n->prev->next = n->next;
    else g_live = n->next;
    if (n->next) n->next->prev = n->prev;
    pthread_mutex_unlock(&g_live_lock);
    fs_blob_unref(n->blob);
    fs_gen_unref(n->gen);
    free(n);
}

static void forget_one(fuse_ino_t ino, uint64_t count)
{
    if (is_dir_ino(ino)) return;
    node *n = node_of(ino);
    pthread_mutex_lock(&g_nodes_lock);
    n->nlookup -= count < n->nlookup ? count : n->nlookup;
    int gone = n->nlookup == 0;
    /* A generation's file slot is a weak reference: clear it with the node. */
    if (gone && n->k < FS_GEN_FILES && n->gen->files[n->k] == n) n->gen->files[n->k] = NULL;
    pthread_mutex_unlock(&g_nodes_lock);
    if (gone) node_free(n);
}

/* The node of a generation's static file, shared by every lookup of it in that generation. */
static node *gen_file_node(fs_gen *g, kind k)
{
    pthread_mutex_lock(&g_nodes_lock);
    node *n = g->files[k];
    if (n) {
        n->nlookup++;
    } else if ((n = node_new(k, g, NULL))) {
        atomic_fetch_add(&g->refs, 1);
        g->files[k] = n;
    }
    pthread_mutex_unlock(&g_nodes_lock);
    return n;
}

static uint64_t node_size(const node *n)
{
    switch (n->k) {
    case K_MANIFEST: return n->gen->manifest_len;
    case K_HEALTH: return n->gen->health_len;
    case K_ANNPACK: return ap_view_annpack_size(n->gen->view);
    case K_META: return ap_view_meta_size(n->gen->view);
    case K_SQ8: return ap_view_sq8_size(n->gen->view);
    case K_VPARAMDIR: return 0;
    default: return n->blob ? n->blob->len : 0;
    }
}

static void fill_attr(struct stat *st, fuse_ino_t ino, const fs_gen *g, int dir, uint64_t size)
{
    memset(st, 0, sizeof *st);
    st->st_ino = ino;
    st->st_mode = dir ? (S_IFDIR | 0555) : (S_IFREG | 0444);
    st->st_nlink = dir ? 2 : 1;
    st->st_size = (off_t)size;
    if (g) {
        st->st_mtim = g->mtime;
        st->st_ctim = g->mtime;
        st->st_atim = g->mtime;
    }
    st->st_blksize = 65536;
    st->st_blocks = (blkcnt_t)((size + 511) / 512);
}

static void reply_node(fuse_req_t req, node *n, double entry_timeout)
{
    struct fuse_entry_param e;
    memset(&e, 0, sizeof e);
    e.ino = (fuse_ino_t)(uintptr_t)n;
    e.attr_timeout = entry_timeout;
    e.entry_timeout = entry_timeout;
    fill_attr(&e.attr, e.ino, n->gen, n->k == K_VPARAMDIR, node_size(n));
    /* After the reply the kernel may forget n at any time: n is not touched again. */
    if (fuse_reply_entry(req, &e) != 0) forget_one(e.ino, 1); /* the kernel never saw it */
}

static void reply_dir(fuse_req_t req, fuse_ino_t ino)
{
    struct fuse_entry_param e;
    memset(&e, 0, sizeof e);
    e.ino = ino;
    e.attr_timeout = ENTRY_TIMEOUT;
    e.entry_timeout = ENTRY_TIMEOUT;
    fs_gen *g = fs_gen_current();
    fill_attr(&e.attr, ino, g, 1, 0);
    fs_gen_unref(g);
    fuse_reply_entry(req, &e);
}

/* --- computed files ------------------------------------------------------------------- */

/* Runs one query (text embedded, or a vector name decoded) and caches the JSON result. */
static int search_blob(fs_gen *g, const ap_query *q, int vector, const char *key, const char *path,
                       fs_blob **out)
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
                               (now_us() - t0) / 1e3, hits, n, ap_view_row_of, g->view, &len,
                               &err);
        if (!json) st = err.status ? err.status : AP_ERR_INTERNAL;
    }
    free(vec);
    free(hits);
    if (st) {
        atomic_fetch_add(&g_stats.errors, 1);
        /* A malformed vector or an unembeddable pack is the caller's mistake. */
        ap_log(st == AP_ERR_ARG || st == AP_ERR_UNSUPPORTED || st == AP_ERR_LIMIT ? AP_LOG_WARN
                                                                                 : AP_LOG_ERROR,
               vector ? "vquery" : "query", "%s", err.msg);
        free(json);
        return fs_errno(st);
    }
    fs_blob *b = fs_blob_new(json, len);
    free(json);
    if (!b) return -ENOMEM;
    atomic_fetch_add(&g_stats.queries, 1);
    fs_stats_record_latency(now_us() - t0);
    fs_cache_put(g->number, key, path, b);
    *out = b;
    return 0;
}

/* The result of a query file name in generation g: cached, or computed and cached. */
static int query_blob_unguarded(fs_gen *g, const char *name, uint32_t unused_k,
                                uint32_t unused_probe, fs_blob **out)
{
    (void)unused_k;
    (void)unused_probe;
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
    int rc = 0;
    if ((*out = fs_cache_get(g->number, key)))
        atomic_fetch_add(&g_stats.cache_hits, 1);
    else
        rc = search_blob(g, &q, 0, key, "query", out);
    ap_query_free(&q);
    free(key);
    return rc;
}

/* A vector query name "<base64url>[?<params>]", in /vquery or a parameter directory
 * (whose k and probe come first; the name's own parameters override them). */
static int vquery_blob_unguarded(fs_gen *g, const char *name, uint32_t k, uint32_t probe,
                                 fs_blob **out)
{
    ap_query q = {.k = k, .probe = probe};
    ap_err err = {0};
    const char *qm = strchr(name, '?');
    size_t vlen = qm ? (size_t)(qm - name) : strlen(name);
    ap_status st = AP_OK;
    if (qm) st = ap_query_params(qm + 1, strlen(qm + 1), &q.k, &q.probe, &err);
    if (!st && vlen == 0) st = ap_err_set(&err, AP_ERR_ARG, "vector query: no vector");
    if (st) {
        atomic_fetch_add(&g_stats.errors, 1);
        ap_log(AP_LOG_WARN, "vquery", "refused name (%zu bytes): %s", strlen(name), err.msg);
        return fs_errno(st);
    }
    char *key = malloc(vlen + 48);
    if (!key) return -ENOMEM;
    snprintf(key, vlen + 48, "v %u %u %.*s", q.k, q.probe, (int)vlen, name);
    int rc = 0;
    if ((*out = fs_cache_get(g->number, key))) {
        atomic_fetch_add(&g_stats.cache_hits, 1);
    } else {
        q.text = (char *)name;
        q.len = vlen;
        rc = search_blob(g, &q, 1, key, "vquery", out);
    }
    free(key);
    return rc;
}

static int doc_blob_unguarded(fs_gen *g, const char *name, uint32_t unused_k,
                              uint32_t unused_probe, fs_blob **out)
{
    (void)unused_k;
    (void)unused_probe;
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

typedef int (*blob_fn)(fs_gen *, const char *, uint32_t, uint32_t, fs_blob **);

typedef struct blob_call {
    blob_fn fn;
    fs_gen *g;
    const char *name;
    uint32_t k, probe;
    fs_blob **out;
} blob_call;

static int run_blob_call(void *arg)
{
    blob_call *c = arg;
    return c->fn(c->g, c->name, c->k, c->probe, c->out);
}

/* Queries and docs read the mapped source files: guard them (guard.c). */
static int guarded_blob(blob_fn fn, fs_gen *g, const char *name, uint32_t k, uint32_t probe,
                        const char *what, fs_blob **out)
{
    *out = NULL;
    blob_call c = {fn, g, name, k, probe, out};
    return fs_guarded(run_blob_call, &c, what);
}

/* --- operations ------------------------------------------------------------------------ */

static void op_init(void *ud, struct fuse_conn_info *conn)
{
    (void)ud;
    /* Files are immutable inodes: no open/release round trips needed, pages cacheable. */
    if (conn->capable & FUSE_CAP_NO_OPEN_SUPPORT) {
        conn->want |= FUSE_CAP_NO_OPEN_SUPPORT;
        g_no_open = 1;
    }
}

static void lookup_result(fuse_req_t req, fs_gen *g, kind k, blob_fn fn, const char *name,
                          uint32_t kk, uint32_t probe, const char *what)
{
    fs_blob *b = NULL;
    int rc = guarded_blob(fn, g, name, kk, probe, what, &b);
    if (rc) {
        fs_gen_unref(g);
        fuse_reply_err(req, -rc);
        return;
    }
    node *n = node_new(k, g, b);
    if (!n) {
        fs_blob_unref(b);
        fs_gen_unref(g);
        fuse_reply_err(req, ENOMEM);
        return;
    }
    reply_node(req, n, ENTRY_TIMEOUT);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    fs_gen *g = fs_gen_current();
    if (parent == FUSE_ROOT_ID) {
        if (!strcmp(name, "query") || !strcmp(name, "vquery") || !strcmp(name, "doc")) {
            fs_gen_unref(g);
            reply_dir(req, name[0] == 'q' ? INO_QUERYDIR : name[0] == 'v' ? INO_VQUERYDIR : INO_DOCDIR);
            return;
        }
        if (!strcmp(name, "stats")) {
            size_t len;
            char *s = fs_stats_json(&len);
            fs_blob *b = s ? fs_blob_new(s, len) : NULL;
            free(s);
            node *n = b ? node_new(K_STATS, g, b) : NULL;
            if (!n) {
                fs_blob_unref(b);
                fs_gen_unref(g);
                fuse_reply_err(req, ENOMEM);
                return;
            }
            reply_node(req, n, 0); /* fresh counters on every lookup */
            return;
        }
        for (int k = 0; k < FS_GEN_FILES; k++) {
            if (strcmp(name, FILE_NAMES[k])) continue;
            if (k == K_SQ8 && !ap_view_has_sq8(g->view)) break;
            node *n = gen_file_node(g, (kind)k);
            fs_gen_unref(g);
            if (!n) {
                fuse_reply_err(req, ENOMEM);
                return;
            }
            reply_node(req, n, ENTRY_TIMEOUT);
            return;
        }
        fs_gen_unref(g);
        fuse_reply_err(req, ENOENT);
        return;
    }
    if (parent == INO_QUERYDIR) {
        lookup_result(req, g, K_QUERY, query_blob_unguarded, name, 0, 0, "query");
        return;
    }
    if (parent == INO_DOCDIR) {
        lookup_result(req, g, K_DOC, doc_blob_unguarded, name, 0, 0, "doc");
        return;
    }
    if (parent == INO_VQUERYDIR && strchr(name, '=') && !strchr(name, '?')) {
        /* A parameter directory: base64url has no '=', so the two cannot be confused. */
        uint32_t k = g_cfg.k, probe = g_cfg.probe;
        ap_err err = {0};
        node *n = NULL;
        if (ap_query_params(name, strlen(name), &k, &probe, &err) == AP_OK &&
            (n = node_new(K_VPARAMDIR, g, NULL))) {
            n->k_res = k;
            n->probe = probe;
            reply_node(req, n, ENTRY_TIMEOUT);
            return;
        }
        fs_gen_unref(g);
        fuse_reply_err(req, n ? ENOMEM : EINVAL);
        return;
    }
    if (parent == INO_VQUERYDIR) {
        lookup_result(req, g, K_VQUERY, vquery_blob_unguarded, name, g_cfg.k, g_cfg.probe, "vquery");
        return;
    }
    if (!is_dir_ino(parent) && node_of(parent)->k == K_VPARAMDIR) {
        const node *d = node_of(parent);
        lookup_result(req, g, K_VQUERY, vquery_blob_unguarded, name, d->k_res, d->probe, "vquery");
        return;
    }
    fs_gen_unref(g);
    fuse_reply_err(req, ENOTDIR);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    forget_one(ino, nlookup);
    fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
    for (size_t i = 0; i < count; i++) forget_one(forgets[i].ino, forgets[i].nlookup);
    fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)fi;
    struct stat st;
    if (is_dir_ino(ino)) {
        fs_gen *g = fs_gen_current();
        fill_attr(&st, ino, g, 1, 0);
        fs_gen_unref(g);
    } else {
        const node *n = node_of(ino);
        fill_attr(&st, ino, n->gen, n->k == K_VPARAMDIR, node_size(n));
    }
    fuse_reply_attr(req, &st, ENTRY_TIMEOUT);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    if ((fi->flags & O_ACCMODE) != O_RDONLY) {
        fuse_reply_err(req, EROFS);
        return;
    }
    if (is_dir_ino(ino) || node_of(ino)->k == K_VPARAMDIR) {
        fuse_reply_err(req, EISDIR);
        return;
    }
    if (g_no_open) {
        /* "Success, and do not ask again": later opens stay in the kernel. */
        fuse_reply_err(req, ENOSYS);
        return;
    }
    fi->keep_cache = 1; /* the inode's bytes never change */
    fuse_reply_open(req, fi);
}

typedef struct read_call {
    const node *n;
    uint64_t off;
    char *buf;
    size_t size;
    ap_err err;
} read_call;

static int run_read_call(void *arg)
{
    read_call *c = arg;
    const ap_view *v = c->n->gen->view;
    ap_status st = c->n->k == K_ANNPACK ? ap_view_annpack_read(v, c->off, c->buf, c->size, &c->err)
                   : c->n->k == K_SQ8   ? ap_view_sq8_read(v, c->off, c->buf, c->size, &c->err)
                                        : ap_view_meta_read(v, c->off, c->buf, c->size, &c->err);
    return st ? -EIO : 0;
}

static void reply_bytes(fuse_req_t req, const char *data, uint64_t len, size_t size, off_t off)
{
    if ((uint64_t)off >= len) {
        fuse_reply_buf(req, NULL, 0);
        return;
    }
    size_t n = len - (uint64_t)off < size ? (size_t)(len - (uint64_t)off) : size;
    fuse_reply_buf(req, data + off, n);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    (void)fi;
    atomic_fetch_add(&g_stats.reads, 1);
    if (off < 0 || is_dir_ino(ino)) {
        fuse_reply_err(req, off < 0 ? EINVAL : EISDIR);
        return;
    }
    const node *n = node_of(ino);
    switch (n->k) {
    case K_MANIFEST: reply_bytes(req, n->gen->manifest, n->gen->manifest_len, size, off); return;
    case K_HEALTH: reply_bytes(req, n->gen->health, n->gen->health_len, size, off); return;
    case K_ANNPACK:
    case K_SQ8:
    case K_META: {
        uint64_t total = node_size(n);
        if ((uint64_t)off >= total) {
            fuse_reply_buf(req, NULL, 0);
            return;
        }
        if (size > total - (uint64_t)off) size = (size_t)(total - (uint64_t)off);
        char *buf = malloc(size ? size : 1);
        if (!buf) {
            fuse_reply_err(req, ENOMEM);
            return;
        }
        static const char *const what[] = {[K_ANNPACK] = "/pack.annpack", [K_SQ8] = "/pack.sq8",
                                           [K_META] = "/pack.meta.jsonl"};
        read_call c = {.n = n, .off = (uint64_t)off, .buf = buf, .size = size};
        int rc = fs_guarded(run_read_call, &c, what[n->k]);
        if (rc == -EIO && c.err.msg[0]) {
            atomic_fetch_add(&g_stats.errors, 1);
            ap_log(AP_LOG_ERROR, "read", "%s at %lld: %s", what[n->k], (long long)off, c.err.msg);
        }
        if (rc)
            fuse_reply_err(req, -rc);
        else
            fuse_reply_buf(req, buf, size);
        free(buf);
        return;
    }
    case K_VPARAMDIR: fuse_reply_err(req, EISDIR); return;
    default: reply_bytes(req, n->blob->data, n->blob->len, size, off); return;
    }
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
    (void)fi;
    if (!is_dir_ino(ino) && node_of(ino)->k != K_VPARAMDIR) {
        fuse_reply_err(req, ENOTDIR);
        return;
    }
    const char *names[16];
    mode_t modes[16];
    size_t nn = 0;
    names[nn] = ".", modes[nn++] = S_IFDIR;
    names[nn] = "..", modes[nn++] = S_IFDIR;
    if (ino == FUSE_ROOT_ID) {
        fs_gen *g = fs_gen_current();
        for (int k = 0; k < FS_GEN_FILES; k++)
            if (k != K_SQ8 || ap_view_has_sq8(g->view)) names[nn] = FILE_NAMES[k], modes[nn++] = S_IFREG;
        fs_gen_unref(g);
        names[nn] = "stats", modes[nn++] = S_IFREG;
        names[nn] = "query", modes[nn++] = S_IFDIR;
        names[nn] = "vquery", modes[nn++] = S_IFDIR;
        names[nn] = "doc", modes[nn++] = S_IFDIR;
    }
    char buf[4096];
    size_t used = 0;
    for (size_t i = (size_t)off; i < nn; i++) {
        struct stat st = {.st_ino = 1000 + i, .st_mode = modes[i]}; /* readdir skips ino 0 */
        size_t need = fuse_add_direntry(req, buf + used, sizeof buf - used, names[i], &st, (off_t)i + 1);
        if (need > sizeof buf - used || used + need > size) break;
        used += need;
    }
    fuse_reply_buf(req, buf, used);
}

/* After the session loop: free the nodes the kernel never forgot (and their generation
 * references), so the generations and their views are released on exit. */
static void op_destroy(void *ud)
{
    (void)ud;
    for (;;) {
        pthread_mutex_lock(&g_live_lock);
        node *n = g_live;
        pthread_mutex_unlock(&g_live_lock);
        if (!n) break;
        pthread_mutex_lock(&g_nodes_lock);
        if (n->k < FS_GEN_FILES && n->gen->files[n->k] == n) n->gen->files[n->k] = NULL;
        pthread_mutex_unlock(&g_nodes_lock);
        node_free(n);
    }
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    if (!is_dir_ino(ino) && node_of(ino)->k != K_VPARAMDIR) {
        fuse_reply_err(req, ENOTDIR);
        return;
    }
    fuse_reply_open(req, fi);
}

const struct fuse_lowlevel_ops fs_ops = {
    .init = op_init,
    .destroy = op_destroy,
    .lookup = op_lookup,
    .forget = op_forget,
    .forget_multi = op_forget_multi,
    .getattr = op_getattr,
    .open = op_open,
    .read = op_read,
    .opendir = op_opendir,
    .readdir = op_readdir,
};

void fs_invalidate_generation(struct fuse_session *se)
{
    /* Dropping a directory's entry drops every name cached below it. */
    static const char *const names[] = {"pack.manifest.json", "pack.annpack", "pack.meta.jsonl",
                                        "pack.sq8", "health", "stats", "query", "vquery", "doc"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        fuse_lowlevel_notify_inval_entry(se, FUSE_ROOT_ID, names[i], strlen(names[i]));
}
