/* FUSE operations (the low-level API): names of the virtual tree (docs/MOUNT.md), routed by
 * route.c and mapped to core calls.
 *
 * Every file is an immutable inode bound to one generation, so st_size is exact, the
 * kernel may cache pages (no direct I/O), a file open across a reload keeps reading the
 * generation it was looked up in, and no open or release request is needed at all
 * (FUSE_CAP_NO_OPEN_SUPPORT): a query costs the kernel a LOOKUP and a READ.
 *
 * Static files keep one inode per generation (so nginx and the page cache share it). A
 * query, vector query or document lookup computes the answer, puts its bytes in the
 * bounded result cache (cache.c) and returns a new inode that keeps only what recomputes
 * them: the canonical key, the size, the took_ms written into the result and a hash of
 * the bytes. A read serves the cached bytes or recomputes them — a search is
 * deterministic, so the same generation, query and took_ms give the same bytes (checked
 * against the hash). Result bytes are so bounded by cache_mb however many names the
 * kernel keeps, and the inodes themselves by a budget: past it the kernel is asked to
 * forget the computed names (fs_invalidate_results, from the reload thread). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "fs.h"
#include "route.h"

/* Directories have fixed inode numbers; every other inode is a node pointer. */
enum {
    INO_QUERY = 2,
    INO_VQUERY,
    INO_DOC,
    INO_REFUSAL,
    INO_REFUSAL_QUERY,
    INO_REFUSAL_VQUERY,
    INO_LAST_DIR = INO_REFUSAL_VQUERY
};

typedef enum kind {
    K_MANIFEST,
    K_ANNPACK,
    K_META,
    K_SQ8,
    K_HEALTH,
    K_HEALTH_EXPIRED,
    K_HEALTH_CHANGED, /* FS_GEN_FILES */
    K_STATS,
    K_REFUSAL, /* small bytes held by the inode */
    K_QUERY,
    K_VQUERY,
    K_DOC, /* recomputable answers */
    K_VPARAM,
    K_RVPARAM /* parameter directories (vquery/, refusal/vquery/) */
} kind;

typedef struct node {
    uint64_t nlookup; /* under g_nodes_lock */
    kind k;
    fs_gen *gen;   /* referenced */
    fs_blob *blob; /* K_STATS, K_REFUSAL; K_RVPARAM: why its own name is refused, or NULL */
    char *key;     /* K_QUERY, K_VQUERY, K_DOC: the canonical key (route.h) */
    size_t key_len;
    uint64_t size, hash;      /* K_QUERY, K_VQUERY, K_DOC: of the bytes computed at lookup */
    double took_ms;           /* K_QUERY, K_VQUERY: written into them */
    uint32_t k_res, probe;    /* parameter directories */
    size_t cost;              /* bytes counted against the inode budget */
    struct node *prev, *next; /* every live node, under g_live_lock */
} node;

static pthread_mutex_t g_nodes_lock = PTHREAD_MUTEX_INITIALIZER;
/* On unmount the kernel's lookup counts drop to zero without forget messages (libfuse:
 * "not guaranteed"), so the live nodes are listed and freed by op_destroy. Never held
 * while taking g_nodes_lock. */
static pthread_mutex_t g_live_lock = PTHREAD_MUTEX_INITIALIZER;
static node *g_live;
static int g_no_open; /* the kernel can skip OPEN once we answer it with ENOSYS */
static atomic_llong g_last_trim_ms;

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
    return ino == FUSE_ROOT_ID || (ino >= INO_QUERY && ino <= INO_LAST_DIR);
}

static int is_param_dir(const node *n)
{
    return n->k == K_VPARAM || n->k == K_RVPARAM;
}

/* Whether a generation's answers are refused: on_expiry=refuse and "expires" passed. */
static int refusing(fs_gen *g)
{
    return fs_gen_expired(g) && g_cfg.expiry_refuse;
}

static node *node_new(kind k, fs_gen *g)
{
    node *n = calloc(1, sizeof *n);
    if (!n) return NULL;
    n->k = k;
    n->gen = g;
    n->nlookup = 1;
    pthread_mutex_lock(&g_live_lock);
    n->next = g_live;
    if (g_live) g_live->prev = n;
    g_live = n;
    pthread_mutex_unlock(&g_live_lock);
    return n;
}

/* The budget of the inodes of computed files: a quarter of cache_mb, at least 4 MiB. */
static uint64_t node_budget(void)
{
    uint64_t b = (g_cfg.cache_mb << 20) / 4;
    return b < (4u << 20) ? 4u << 20 : b;
}

/* Counts a computed file's inode; past the budget the kernel is asked (at most once a
 * second) to forget the computed names, so their inodes go away unless a file is open. */
static void node_account(node *n)
{
    n->cost =
        sizeof *n + (n->key ? n->key_len + 1 : 0) + (n->blob ? sizeof *n->blob + n->blob->len : 0);
    atomic_fetch_add(&g_stats.nodes, 1);
    uint64_t total = atomic_fetch_add(&g_stats.node_bytes, n->cost) + n->cost;
    if (total <= node_budget()) return;
    long long ms = (long long)(now_us() / 1000), last = atomic_load(&g_last_trim_ms);
    if (ms - last >= 1000 && atomic_compare_exchange_strong(&g_last_trim_ms, &last, ms))
        fs_trim_request();
}

static void node_free(node *n)
{
    pthread_mutex_lock(&g_live_lock);
    if (n->prev)
        n->prev->next = n->next;
    else
        g_live = n->next;
    if (n->next) n->next->prev = n->prev;
    pthread_mutex_unlock(&g_live_lock);
    if (n->cost) {
        atomic_fetch_sub(&g_stats.nodes, 1);
        atomic_fetch_sub(&g_stats.node_bytes, n->cost);
    }
    fs_blob_unref(n->blob);
    free(n->key);
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

/* The node of a generation's static file, shared by every lookup of it in that generation
 * (takes over the caller's reference to g). */
static node *gen_file_node(fs_gen *g, kind k)
{
    pthread_mutex_lock(&g_nodes_lock);
    node *n = g->files[k];
    if (n) {
        n->nlookup++;
    } else if ((n = node_new(k, g))) {
        atomic_fetch_add(&g->refs, 1);
        g->files[k] = n;
    }
    pthread_mutex_unlock(&g_nodes_lock);
    fs_gen_unref(g);
    return n;
}

static uint64_t node_size(const node *n)
{
    switch (n->k) {
    case K_MANIFEST:
        return n->gen->manifest_len;
    case K_HEALTH:
        return n->gen->health_len;
    case K_HEALTH_EXPIRED:
        return n->gen->health_expired_len;
    case K_HEALTH_CHANGED:
        return n->gen->health_changed_len;
    case K_ANNPACK:
        return ap_vpack_annpack_size(n->gen->vpack);
    case K_META:
        return ap_vpack_meta_size(n->gen->vpack);
    case K_SQ8:
        return ap_vpack_sq8_size(n->gen->vpack);
    case K_STATS:
    case K_REFUSAL:
        return n->blob->len;
    case K_QUERY:
    case K_VQUERY:
    case K_DOC:
        return n->size;
    case K_VPARAM:
    case K_RVPARAM:
        return 0;
    }
    return 0;
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
    if (!n) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    struct fuse_entry_param e;
    memset(&e, 0, sizeof e);
    e.ino = (fuse_ino_t)(uintptr_t)n;
    e.attr_timeout = entry_timeout;
    e.entry_timeout = entry_timeout;
    fill_attr(&e.attr, e.ino, n->gen, is_param_dir(n), node_size(n));
    /* After the reply the kernel may forget n at any time: n is not touched again. */
    if (fuse_reply_entry(req, &e) != 0) forget_one(e.ino, 1); /* the kernel never saw it */
}

static void reply_dir(fuse_req_t req, fuse_ino_t ino, const fs_gen *g)
{
    struct fuse_entry_param e;
    memset(&e, 0, sizeof e);
    e.ino = ino;
    e.attr_timeout = ENTRY_TIMEOUT;
    e.entry_timeout = ENTRY_TIMEOUT;
    fill_attr(&e.attr, ino, g, 1, 0);
    fuse_reply_entry(req, &e);
}

/* --- computed files ------------------------------------------------------------------- */

typedef struct compute_call {
    fs_gen *g;
    const fs_route *r; /* kind, k, probe, id, text_off, text_len of key */
    const char *key;
    double took_ms; /* < 0: a new answer, timed; else recomputing one that has this */
    fs_blob **out;
} compute_call;

/* Runs one query (text embedded, or a vector decoded) into JSON. */
static int compute_search(const compute_call *c)
{
    fs_gen *g = c->g;
    const fs_route *r = c->r;
    int vector = r->kind == FS_ROUTE_VQUERY;
    const char *text = c->key + r->text_off;
    double t0 = now_us();
    ap_err err = {0};
    ap_status st = AP_OK;
    uint32_t dim = ap_view_dim(g->view);
    float *vec = malloc(dim * sizeof *vec);
    ap_hit *hits = malloc(r->k * sizeof *hits);
    uint32_t n = 0;
    char *json = NULL;
    size_t len = 0;
    double took = c->took_ms;
    if (!vec || !hits) st = ap_err_set(&err, AP_ERR_NOMEM, "out of memory");
    if (!st)
        st = vector ? ap_query_vector_decode(text, r->text_len, dim, vec, &err)
                    : ap_view_embed(g->view, text, r->text_len, vec, &err);
    ap_search_params sp = {
        .k = r->k, .probe = r->probe, .scan = g_cfg.scan, .rerank = g_cfg.rerank};
    if (!st) st = ap_view_search_ex(g->view, vec, &sp, hits, &n, NULL, &err);
    if (!st) {
        uint32_t probe = r->probe > ap_view_n_lists(g->view) ? ap_view_n_lists(g->view) : r->probe;
        if (took < 0) took = (now_us() - t0) / 1e3;
        json = ap_results_json(vector ? "vector" : text, r->k, probe, (long long)g->number, took,
                               hits, n, ap_view_row_of, g->view, &len, &err);
        if (!json) st = err.status ? err.status : AP_ERR_INTERNAL;
    }
    free(vec);
    free(hits);
    if (st) {
        atomic_fetch_add(&g_stats.errors, 1);
        ap_log(AP_LOG_ERROR, vector ? "vquery" : "query", "%s", err.msg);
        free(json);
        return fs_errno(st);
    }
    fs_blob *b = fs_blob_new(json, len);
    free(json);
    if (!b) return -ENOMEM;
    b->took_ms = took;
    if (c->took_ms < 0) {
        atomic_fetch_add(&g_stats.queries, 1);
        fs_stats_record_latency(now_us() - t0);
    }
    *c->out = b;
    return 0;
}

/* One live row as JSON plus a newline. */
static int compute_doc(const compute_call *c)
{
    char *row = NULL;
    size_t len = 0;
    ap_err err = {0};
    ap_status st = ap_view_get_row(c->g->view, c->r->id, &row, &len, NULL, &err);
    if (st) {
        if (st != AP_ERR_NOTFOUND)
            ap_log(AP_LOG_ERROR, "doc", "doc/%llu: %s", (unsigned long long)c->r->id, err.msg);
        return fs_errno(st);
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

static int run_compute(void *arg)
{
    const compute_call *c = arg;
    return c->r->kind == FS_ROUTE_DOC ? compute_doc(c) : compute_search(c);
}

/* Queries and docs read the mapped source files: guard them (guard.c). */
static int compute(fs_gen *g, const fs_route *r, const char *key, double took_ms, fs_blob **out)
{
    *out = NULL;
    compute_call c = {g, r, key, took_ms, out};
    int rc = atomic_load(&g->changed) ? -EIO : 0;
    if (!rc) rc = fs_guarded(run_compute, &c, r->kind == FS_ROUTE_DOC ? "doc" : "query");
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

/* {"error":"<why>"} and a newline: the content of a refusal file. */
static fs_blob *refusal_blob(const char *why)
{
    char clean[AP_ERR_MSG_MAX];
    snprintf(clean, sizeof clean, "%s", why);
    fs_printable(clean);
    cJSON *o = cJSON_CreateObject();
    char *s = o && cJSON_AddStringToObject(o, "error", clean) ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    fs_blob *b = NULL;
    if (s) {
        size_t n = strlen(s);
        char *line = realloc(s, n + 2);
        if (line) {
            s = line;
            s[n] = '\n';
            b = fs_blob_new(s, n + 1);
        }
    }
    free(s);
    return b;
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

static fuse_ino_t dir_ino(fs_dir d)
{
    switch (d) {
    case FS_DIR_QUERY:
        return INO_QUERY;
    case FS_DIR_VQUERY:
        return INO_VQUERY;
    case FS_DIR_DOC:
        return INO_DOC;
    case FS_DIR_REFUSAL:
        return INO_REFUSAL;
    case FS_DIR_REFUSAL_QUERY:
        return INO_REFUSAL_QUERY;
    case FS_DIR_REFUSAL_VQUERY:
        return INO_REFUSAL_VQUERY;
    default:
        return FUSE_ROOT_ID;
    }
}

/* The directory an inode is, with a parameter directory's node; 0 for a file. */
static int dir_of(fuse_ino_t ino, fs_dir *d, const node **pn)
{
    *pn = NULL;
    switch (ino) {
    case FUSE_ROOT_ID:
        *d = FS_DIR_ROOT;
        return 1;
    case INO_QUERY:
        *d = FS_DIR_QUERY;
        return 1;
    case INO_VQUERY:
        *d = FS_DIR_VQUERY;
        return 1;
    case INO_DOC:
        *d = FS_DIR_DOC;
        return 1;
    case INO_REFUSAL:
        *d = FS_DIR_REFUSAL;
        return 1;
    case INO_REFUSAL_QUERY:
        *d = FS_DIR_REFUSAL_QUERY;
        return 1;
    case INO_REFUSAL_VQUERY:
        *d = FS_DIR_REFUSAL_VQUERY;
        return 1;
    default:
        break;
    }
    const node *n = node_of(ino);
    if (!is_param_dir(n)) return 0;
    *d = n->k == K_VPARAM ? FS_DIR_VPARAM : FS_DIR_REFUSAL_VPARAM;
    *pn = n;
    return 1;
}

/* A query, vector query or document: cached, or computed and cached. Takes over g. */
static void lookup_computed(fuse_req_t req, fs_gen *g, fs_route *r)
{
    fs_blob *b = fs_cache_get(g->number, r->key);
    int rc = 0;
    if (b) {
        atomic_fetch_add(&g_stats.cache_hits, 1);
    } else if (!(rc = compute(g, r, r->key, -1, &b))) {
        fs_cache_put(g->number, r->key, b);
    }
    node *n = rc ? NULL
                 : node_new(r->kind == FS_ROUTE_QUERY    ? K_QUERY
                            : r->kind == FS_ROUTE_VQUERY ? K_VQUERY
                                                         : K_DOC,
                            g);
    if (!n) {
        fs_blob_unref(b);
        fs_gen_unref(g);
        fuse_reply_err(req, rc ? -rc : ENOMEM);
        return;
    }
    n->key = r->key; /* the node keeps the key */
    n->key_len = r->key_len;
    r->key = NULL;
    n->size = b->len;
    n->hash = b->hash;
    n->took_ms = b->took_ms;
    fs_blob_unref(b);
    node_account(n);
    reply_node(req, n, ENTRY_TIMEOUT);
}

/* A node holding small bytes (stats, a refusal file, a refused parameter directory's
 * reason). Takes over g and b. */
static node *blob_node(kind k, fs_gen *g, fs_blob *b)
{
    node *n = b ? node_new(k, g) : NULL;
    if (!n) {
        fs_blob_unref(b);
        fs_gen_unref(g);
        return NULL;
    }
    n->blob = b;
    node_account(n);
    return n;
}

static int route_errno(ap_status st)
{
    /* A refused name does not exist (ENOENT: nginx's try_files then falls back quietly to
     * the refusal file, see examples/nginx.conf); a name too long is ENAMETOOLONG. */
    return st == AP_ERR_LIMIT ? ENAMETOOLONG : ENOENT;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    fs_dir pd;
    const node *pn;
    if (!dir_of(parent, &pd, &pn)) {
        fuse_reply_err(req, ENOTDIR);
        return;
    }
    fs_gen *g = fs_gen_current();
    fs_route_ctx ctx = {.k = g_cfg.k,
                        .probe = g_cfg.probe,
                        .dim = ap_view_dim(g->view),
                        .sq8 = ap_view_has_sq8(g->view),
                        .no_text = g->no_text[0] ? g->no_text : NULL};
    if (pn) {
        ctx.k = pn->k_res;
        ctx.probe = pn->probe;
        ctx.dir_refused = pn->blob ? pn->blob->data : NULL;
    }
    fs_route r;
    if (fs_route_name(pd, &ctx, name, strlen(name), &r) != AP_OK) {
        fs_gen_unref(g);
        fuse_reply_err(req, ENOMEM);
        return;
    }
    switch (r.kind) {
    case FS_ROUTE_ABSENT:
        fs_gen_unref(g);
        fuse_reply_err(req, ENOENT);
        break;
    case FS_ROUTE_DIR:
        if (r.dir == FS_DIR_VPARAM || r.dir == FS_DIR_REFUSAL_VPARAM) {
            kind k = r.dir == FS_DIR_VPARAM ? K_VPARAM : K_RVPARAM;
            node *n;
            if (r.status) { /* refusal/vquery/<refused params>/: keeps why */
                n = blob_node(k, g, fs_blob_new(r.err.msg, strlen(r.err.msg)));
            } else if ((n = node_new(k, g))) {
                node_account(n);
            } else {
                fs_gen_unref(g);
            }
            if (n) {
                n->k_res = r.k;
                n->probe = r.probe;
            }
            reply_node(req, n, ENTRY_TIMEOUT);
        } else {
            reply_dir(req, dir_ino(r.dir), g);
            fs_gen_unref(g);
        }
        break;
    case FS_ROUTE_FILE:
        if (r.file == FS_FILE_STATS) {
            size_t len;
            char *s = fs_stats_json(&len);
            fs_blob *b = s ? fs_blob_new(s, len) : NULL;
            free(s);
            reply_node(req, blob_node(K_STATS, g, b), 0); /* fresh counters every lookup */
        } else if ((r.file == FS_FILE_ANNPACK || r.file == FS_FILE_META || r.file == FS_FILE_SQ8) &&
                   refusing(g)) {
            fs_gen_unref(g);
            fuse_reply_err(req, EKEYEXPIRED);
        } else {
            kind k = r.file == FS_FILE_HEALTH ? (atomic_load(&g->changed) ? K_HEALTH_CHANGED
                                                 : fs_gen_expired(g)      ? K_HEALTH_EXPIRED
                                                                          : K_HEALTH)
                                              : (kind)r.file;
            reply_node(req, gen_file_node(g, k), ENTRY_TIMEOUT);
        }
        break;
    case FS_ROUTE_QUERY:
    case FS_ROUTE_VQUERY:
    case FS_ROUTE_DOC:
        if (refusing(g)) {
            fs_gen_unref(g);
            fuse_reply_err(req, EKEYEXPIRED);
            break;
        }
        lookup_computed(req, g, &r);
        break;
    case FS_ROUTE_REFUSED:
        fs_gen_unref(g);
        fs_note_refusal(pd == FS_DIR_QUERY ? "query" : "vquery", strlen(name), r.err.msg);
        fuse_reply_err(req, route_errno(r.status));
        break;
    case FS_ROUTE_REFUSAL:
        if (refusing(g)) {
            fs_gen_unref(g);
            fuse_reply_err(req, EKEYEXPIRED);
            break;
        }
        reply_node(req, blob_node(K_REFUSAL, g, refusal_blob(r.err.msg)), ENTRY_TIMEOUT);
        break;
    }
    fs_route_free(&r);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    forget_one(ino, nlookup);
    fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
    for (size_t i = 0; i < count; i++)
        forget_one(forgets[i].ino, forgets[i].nlookup);
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
        fill_attr(&st, ino, n->gen, is_param_dir(n), node_size(n));
    }
    fuse_reply_attr(req, &st, ENTRY_TIMEOUT);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    if ((fi->flags & O_ACCMODE) != O_RDONLY) {
        fuse_reply_err(req, EROFS);
        return;
    }
    if (is_dir_ino(ino) || is_param_dir(node_of(ino))) {
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
    const ap_vpack *v = c->n->gen->vpack;
    ap_status st = c->n->k == K_ANNPACK ? ap_vpack_annpack_read(v, c->off, c->buf, c->size, &c->err)
                   : c->n->k == K_SQ8   ? ap_vpack_sq8_read(v, c->off, c->buf, c->size, &c->err)
                                        : ap_vpack_meta_read(v, c->off, c->buf, c->size, &c->err);
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

static void read_source(fuse_req_t req, const node *n, size_t size, off_t off)
{
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
    static const char *const what[] = {
        [K_ANNPACK] = "/pack.annpack", [K_SQ8] = "/pack.sq8", [K_META] = "/pack.meta.jsonl"};
    read_call c = {.n = n, .off = (uint64_t)off, .buf = buf, .size = size};
    int rc = atomic_load(&n->gen->changed) ? -EIO : 0;
    if (!rc) rc = fs_guarded(run_read_call, &c, what[n->k]);
    int changed = fs_gen_check_source(n->gen);
    if (!rc) rc = changed;
    if (rc == -EIO && c.err.msg[0]) {
        atomic_fetch_add(&g_stats.errors, 1);
        ap_log(AP_LOG_ERROR, "read", "%s at %lld: %s", what[n->k], (long long)off, c.err.msg);
    }
    if (rc)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_buf(req, buf, size);
    free(buf);
}

/* A computed file's bytes: from the cache, or recomputed from the inode's key with the
 * took_ms it was looked up with — the same bytes (checked), so a read never mixes two. */
static void read_computed(fuse_req_t req, const node *n, size_t size, off_t off)
{
    fs_blob *b = fs_cache_get(n->gen->number, n->key);
    if (b && (b->len != n->size || b->hash != n->hash)) { /* another lookup's took_ms */
        fs_blob_unref(b);
        b = NULL;
    }
    if (!b) {
        fs_route r;
        int rc = fs_route_parse_key(n->key, n->key_len, &r) == AP_OK
                     ? compute(n->gen, &r, n->key, n->took_ms, &b)
                     : -EIO;
        if (!rc && (b->len != n->size || b->hash != n->hash)) {
            atomic_fetch_add(&g_stats.errors, 1);
            ap_log(AP_LOG_ERROR, "read",
                   "recomputing \"%.64s\" gave %zu bytes unlike the %llu "
                   "looked up; returning EIO",
                   n->key, b->len, (unsigned long long)n->size);
            rc = -EIO;
        }
        if (rc) {
            fs_blob_unref(b);
            fuse_reply_err(req, -rc);
            return;
        }
        atomic_fetch_add(&g_stats.recomputed, 1);
        fs_cache_put(n->gen->number, n->key, b);
    }
    reply_bytes(req, b->data, b->len, size, off);
    fs_blob_unref(b);
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
    case K_MANIFEST:
        reply_bytes(req, n->gen->manifest, n->gen->manifest_len, size, off);
        return;
    case K_HEALTH:
        reply_bytes(req, n->gen->health, n->gen->health_len, size, off);
        return;
    case K_HEALTH_CHANGED:
        reply_bytes(req, n->gen->health_changed, n->gen->health_changed_len, size, off);
        return;
    case K_HEALTH_EXPIRED:
        reply_bytes(req, n->gen->health_expired, n->gen->health_expired_len, size, off);
        return;
    case K_STATS:
        reply_bytes(req, n->blob->data, n->blob->len, size, off);
        return;
    case K_VPARAM:
    case K_RVPARAM:
        fuse_reply_err(req, EISDIR);
        return;
    default:
        break;
    }
    if (refusing(n->gen)) {
        fuse_reply_err(req, EKEYEXPIRED);
        return;
    }
    switch (n->k) {
    case K_ANNPACK:
    case K_SQ8:
    case K_META:
        read_source(req, n, size, off);
        return;
    case K_REFUSAL:
        reply_bytes(req, n->blob->data, n->blob->len, size, off);
        return;
    default:
        read_computed(req, n, size, off);
        return;
    }
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
    (void)fi;
    fs_dir d;
    const node *pn;
    if (!dir_of(ino, &d, &pn)) {
        fuse_reply_err(req, ENOTDIR);
        return;
    }
    const char *names[16];
    mode_t modes[16];
    size_t nn = 0;
    names[nn] = ".", modes[nn++] = S_IFDIR;
    names[nn] = "..", modes[nn++] = S_IFDIR;
    if (ino == FUSE_ROOT_ID) {
        static const char *const files[] = {"pack.manifest.json", "pack.annpack", "pack.meta.jsonl",
                                            "pack.sq8",           "health",       "stats"};
        fs_gen *g = fs_gen_current();
        for (size_t k = 0; k < sizeof files / sizeof files[0]; k++)
            if (k != K_SQ8 || ap_view_has_sq8(g->view)) names[nn] = files[k], modes[nn++] = S_IFREG;
        fs_gen_unref(g);
        names[nn] = "query", modes[nn++] = S_IFDIR;
        names[nn] = "vquery", modes[nn++] = S_IFDIR;
        names[nn] = "doc", modes[nn++] = S_IFDIR;
        names[nn] = "refusal", modes[nn++] = S_IFDIR;
    } else if (ino == INO_REFUSAL) {
        names[nn] = "query", modes[nn++] = S_IFDIR;
        names[nn] = "vquery", modes[nn++] = S_IFDIR;
    }
    char buf[4096];
    size_t used = 0;
    for (size_t i = (size_t)off; i < nn; i++) {
        struct stat st = {.st_ino = 1000 + i, .st_mode = modes[i]}; /* readdir skips ino 0 */
        size_t need =
            fuse_add_direntry(req, buf + used, sizeof buf - used, names[i], &st, (off_t)i + 1);
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
    fs_dir d;
    const node *pn;
    if (!dir_of(ino, &d, &pn)) {
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

static void invalidate(struct fuse_session *se, const char *const *names, size_t n)
{
    /* Dropping a directory's entry drops every name cached below it. */
    for (size_t i = 0; i < n; i++)
        fuse_lowlevel_notify_inval_entry(se, FUSE_ROOT_ID, names[i], strlen(names[i]));
}

void fs_invalidate_generation(struct fuse_session *se)
{
    static const char *const names[] = {"pack.manifest.json",
                                        "pack.annpack",
                                        "pack.meta.jsonl",
                                        "pack.sq8",
                                        "health",
                                        "stats",
                                        "query",
                                        "vquery",
                                        "doc",
                                        "refusal"};
    invalidate(se, names, sizeof names / sizeof names[0]);
}

void fs_invalidate_results(struct fuse_session *se)
{
    static const char *const names[] = {"query", "vquery", "doc", "refusal"};
    atomic_fetch_add(&g_stats.trims, 1);
    invalidate(se, names, sizeof names / sizeof names[0]);
}
