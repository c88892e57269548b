/* The FUSE callbacks: see callbacks.h. Every file is an immutable inode bound to one
 * generation (inode.h), so st_size is exact, the kernel may cache pages (no direct I/O),
 * a file open across a reload keeps reading the generation it was looked up in, and no
 * open or release request is needed at all (FUSE_CAP_NO_OPEN_SUPPORT): a query costs the
 * kernel a LOOKUP and a READ.
 *
 * A query, vector query or document lookup computes the answer, puts its bytes in the
 * result cache and returns a new inode that keeps only what recomputes them. A read serves
 * the cached bytes or recomputes them — a search is deterministic, so the same generation,
 * query and took_ms give the same bytes (checked against the hash). */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "answer.h"
#include "cache.h"
#include "callbacks.h"
#include "config.h"
#include "embed_cache.h"
#include "errno_map.h"
#include "guard.h"
#include "health.h"
#include "inode.h"
#include "refusal.h"
#include "route.h"
#include "stats.h"

static const double ENTRY_TIMEOUT = 1.0; /* a reload is visible within a second at worst */
/* An answer (query/, vquery/, doc/) never changes within a generation and every reload and
 * cache trim invalidates those directories (reload.c): a repeated read of the same name
 * costs no request at all. */
static const double ANSWER_TIMEOUT = 86400.0;
static int g_no_open; /* the kernel can skip OPEN once we answer it with ENOSYS */

/* --- replies ----------------------------------------------------------------------------- */

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

static void reply_node(fuse_req_t req, fs_node *n, double entry_timeout)
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
    fill_attr(&e.attr, e.ino, n->gen, fs_node_is_param_dir(n), fs_node_size(n));
    /* After the reply the kernel may forget n at any time: n is not touched again. */
    if (fuse_reply_entry(req, &e) != 0) fs_node_forget(e.ino, 1); /* the kernel never saw it */
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

/* Fails the request with err and releases g. */
static void reply_err_gen(fuse_req_t req, fs_gen *g, int err)
{
    fs_gen_unref(g);
    fuse_reply_err(req, err);
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

/* --- directories ------------------------------------------------------------------------- */

/* The fixed directories' inodes and what they are. */
static const fs_dir FIXED_DIRS[FS_INO_LAST_DIR + 1] = {
    [FUSE_ROOT_ID] = FS_DIR_ROOT,
    [FS_INO_QUERY] = FS_DIR_QUERY,
    [FS_INO_VQUERY] = FS_DIR_VQUERY,
    [FS_INO_DOC] = FS_DIR_DOC,
    [FS_INO_REFUSAL] = FS_DIR_REFUSAL,
    [FS_INO_REFUSAL_QUERY] = FS_DIR_REFUSAL_QUERY,
    [FS_INO_REFUSAL_VQUERY] = FS_DIR_REFUSAL_VQUERY,
};

static fuse_ino_t dir_ino(fs_dir d)
{
    for (fuse_ino_t ino = FUSE_ROOT_ID; ino <= FS_INO_LAST_DIR; ino++)
        if (FIXED_DIRS[ino] == d) return ino;
    return FUSE_ROOT_ID;
}

/* The directory an inode is, with a parameter directory's node; 0 for a file. */
static int dir_of(fuse_ino_t ino, fs_dir *d, const fs_node **pn)
{
    *pn = NULL;
    if (fs_ino_is_dir(ino)) {
        *d = FIXED_DIRS[ino];
        return 1;
    }
    const fs_node *n = fs_node_of(ino);
    if (!fs_node_is_param_dir(n)) return 0;
    *d = n->k == FS_NODE_VPARAM ? FS_DIR_VPARAM : FS_DIR_REFUSAL_VPARAM;
    *pn = n;
    return 1;
}

/* --- lookup ------------------------------------------------------------------------------ */

/* Whether g's embedder has a corpus table (pack.idf) to present. */
static bool has_idf(const fs_gen *g)
{
    const void *b;
    size_t len;
    ap_embedder_table_bytes(ap_view_embedder(g->view), &b, &len);
    return len > 0;
}

/* A pack without filter columns refuses "?col=value" as the unknown parameter it is there
 * (core's message names the source directory, which a name's refusal should not show). */
static ap_status check_where(const void *arg, const ap_where *where, size_t n, ap_err *err)
{
    ap_status st = ap_view_where_check(arg, where, n, err);
    if (st == AP_ERR_NOTFOUND && strstr(err->msg, " has no filter columns"))
        st = ap_err_set(err, AP_ERR_NOTFOUND,
                        "unknown or repeated query parameter \"%.64s\" (the pack has no filter "
                        "columns)",
                        where[0].col);
    return st;
}

/* What routing needs to know: the defaults (or a parameter directory's own k and probe,
 * and why it is refused), the pack's dim, sidecar and whether it can embed text. */
static fs_route_ctx route_ctx(const fs_gen *g, const fs_node *pn)
{
    fs_route_ctx ctx = {.k = g_cfg.k,
                        .probe = g_cfg.probe ? g_cfg.probe : ap_view_default_probe(g->view),
                        .dim = ap_view_dim(g->view),
                        .sq8 = ap_view_has_sq8(g->view),
                        .idf = has_idf(g),
                        .no_text = g->no_text[0] ? g->no_text : NULL,
                        .check_where = check_where,
                        .check_arg = g->view};
    if (pn) {
        ctx.k = pn->k_res;
        ctx.probe = pn->probe;
        ctx.dir_refused = pn->blob ? pn->blob->data : NULL;
    }
    return ctx;
}

/* A directory: fixed, or a parameter directory (a node keeping its k and probe, and under
 * refusal/ why its own name is refused). Takes over g. */
static void lookup_dir(fuse_req_t req, fs_gen *g, const fs_route *r)
{
    if (r->dir != FS_DIR_VPARAM && r->dir != FS_DIR_REFUSAL_VPARAM) {
        reply_dir(req, dir_ino(r->dir), g);
        fs_gen_unref(g);
        return;
    }
    fs_node_kind k = r->dir == FS_DIR_VPARAM ? FS_NODE_VPARAM : FS_NODE_RVPARAM;
    fs_node *n;
    if (r->status) { /* refusal/vquery/<refused params>/: keeps why */
        n = fs_node_with_blob(k, g, fs_blob_new(r->err.msg, strlen(r->err.msg)));
    } else if ((n = fs_node_new(k, g))) {
        fs_node_account(n);
    }
    if (n) {
        n->k_res = r->k;
        n->probe = r->probe;
    }
    reply_node(req, n, ENTRY_TIMEOUT);
}

/* The node kind of a root file; health is the file of g's current status. */
static fs_node_kind file_kind(fs_gen *g, fs_file f)
{
    switch (f) {
    case FS_FILE_MANIFEST:
        return FS_NODE_MANIFEST;
    case FS_FILE_ANNPACK:
        return FS_NODE_ANNPACK;
    case FS_FILE_META:
        return FS_NODE_META;
    case FS_FILE_SQ8:
        return FS_NODE_SQ8;
    case FS_FILE_IDF:
        return FS_NODE_IDF;
    case FS_FILE_HEALTH:
        return atomic_load(&g->changed) ? FS_NODE_HEALTH_CHANGED
               : fs_gen_expired(g)      ? FS_NODE_HEALTH_EXPIRED
                                        : FS_NODE_HEALTH;
    case FS_FILE_STATS:
        break;
    }
    return FS_NODE_STATS;
}

/* A root file: stats (fresh counters every lookup), or a static file of g. Takes over g. */
static void lookup_file(fuse_req_t req, fs_gen *g, const fs_route *r)
{
    ap_view_verify vi;
    bool corrupt = false;
    if (r->file == FS_FILE_HEALTH && !atomic_load(&g->changed)) {
        ap_view_verify_info(g->view, &vi);
        corrupt = vi.ranges_bad > 0;
    }
    if (r->file == FS_FILE_STATS || corrupt) {
        /* Fresh bytes every lookup: the counters, or the health of a generation in which
         * a list was found corrupt. */
        size_t len;
        char *s =
            r->file == FS_FILE_STATS ? fs_stats_json(&len) : fs_health_corrupt_json(g, &vi, &len);
        fs_blob *b = s ? fs_blob_new(s, len) : NULL;
        free(s);
        reply_node(req, fs_node_with_blob(FS_NODE_STATS, g, b), 0);
        return;
    }
    fs_node_kind hk = r->file == FS_FILE_HEALTH ? file_kind(g, r->file) : FS_NODE_STATS;
    if (hk != FS_NODE_STATS && ap_embedder_is_remote(ap_view_embedder(g->view))) {
        /* With an embedding service health says how it is doing (embed_cache.h): rendered
         * now, held by the node like stats. */
        size_t len;
        char *s = fs_embed_health_json(g,
                                       hk == FS_NODE_HEALTH_CHANGED   ? "source-changed"
                                       : hk == FS_NODE_HEALTH_EXPIRED ? "expired"
                                                                      : "ok",
                                       &len);
        fs_blob *b = s ? fs_blob_new(s, len) : NULL;
        free(s);
        reply_node(req, fs_node_with_blob(FS_NODE_STATS, g, b), 0);
        return;
    }
    const char *md;
    size_t ml;
    const ap_vpack *vp;
    int packed = r->file == FS_FILE_ANNPACK || r->file == FS_FILE_META || r->file == FS_FILE_SQ8;
    if ((r->file == FS_FILE_MANIFEST && fs_gen_manifest(g, &md, &ml)) ||
        (packed && fs_gen_vpack(g, &vp))) {
        reply_err_gen(req, g, EIO);
        return;
    }
    if (packed && fs_gen_refusing(g)) {
        reply_err_gen(req, g, EKEYEXPIRED);
        return;
    }
    /* health is looked up afresh each time (timeout 0): it turns "corrupt" the moment lazy
     * verification finds a bad list, not a timeout later. */
    reply_node(req, fs_node_gen_file(g, file_kind(g, r->file)),
               r->file == FS_FILE_HEALTH ? 0 : ENTRY_TIMEOUT);
}

/* A query, vector query or document: cached, or computed and cached. Takes over g. */
static void lookup_computed(fuse_req_t req, fs_gen *g, fs_route *r)
{
    if (fs_gen_refusing(g)) {
        reply_err_gen(req, g, EKEYEXPIRED);
        return;
    }
    uint64_t kh = fs_cache_hash(r->key, r->key_len);
    fs_blob *b = fs_cache_get(g->number, r->key, kh);
    int rc = 0;
    if (b) {
        atomic_fetch_add(&g_stats.cache_hits, 1);
    } else if (!(rc = fs_answer(g, r, r->key, -1, &b))) {
        fs_cache_put(g->number, r->key, kh, b);
    }
    if (rc) {
        reply_err_gen(req, g, -rc);
        return;
    }
    fs_node *n = fs_node_new(r->kind == FS_ROUTE_QUERY    ? FS_NODE_QUERY
                             : r->kind == FS_ROUTE_VQUERY ? FS_NODE_VQUERY
                                                          : FS_NODE_DOC,
                             g);
    if (n) {
        n->key = r->key; /* the node keeps the key */
        n->key_len = r->key_len;
        n->key_hash = kh;
        r->key = NULL;
        n->size = b->len;
        n->hash = b->hash;
        n->took_ms = b->took_ms;
        fs_node_account(n);
    }
    fs_blob_unref(b);
    reply_node(req, n, ANSWER_TIMEOUT);
}

/* A name query/ or vquery/ refuses does not exist (errno_map.h, "name"). */
static void lookup_refused(fuse_req_t req, fs_gen *g, fs_dir parent, const char *name,
                           const fs_route *r)
{
    fs_note_refusal(parent == FS_DIR_QUERY ? "query" : "vquery", strlen(name), r->err.msg);
    reply_err_gen(req, g, -fs_errno(r->status, FS_ERRNO_NAME));
}

/* refusal/…/<name>: why the same name is refused. Takes over g. */
static void lookup_refusal(fuse_req_t req, fs_gen *g, const fs_route *r)
{
    if (fs_gen_refusing(g)) {
        reply_err_gen(req, g, EKEYEXPIRED);
        return;
    }
    fs_node *n = fs_node_with_blob(FS_NODE_REFUSAL, g, fs_refusal_blob(r->err.msg));
    reply_node(req, n, ENTRY_TIMEOUT);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    atomic_fetch_add(&g_stats.req[FS_REQ_LOOKUP], 1);
    fs_dir pd;
    const fs_node *pn;
    if (!dir_of(parent, &pd, &pn)) {
        fuse_reply_err(req, ENOTDIR);
        return;
    }
    fs_gen *g = fs_gen_current();
    fs_route_ctx ctx = route_ctx(g, pn);
    fs_route r;
    if (fs_route_name(pd, &ctx, name, strlen(name), &r) != AP_OK) {
        reply_err_gen(req, g, ENOMEM);
        return;
    }
    switch (r.kind) {
    case FS_ROUTE_ABSENT:
        reply_err_gen(req, g, ENOENT);
        break;
    case FS_ROUTE_DIR:
        lookup_dir(req, g, &r);
        break;
    case FS_ROUTE_FILE:
        lookup_file(req, g, &r);
        break;
    case FS_ROUTE_QUERY:
    case FS_ROUTE_VQUERY:
    case FS_ROUTE_DOC:
        lookup_computed(req, g, &r);
        break;
    case FS_ROUTE_REFUSED:
        lookup_refused(req, g, pd, name, &r);
        break;
    case FS_ROUTE_REFUSAL:
        lookup_refusal(req, g, &r);
        break;
    }
    fs_route_free(&r);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    atomic_fetch_add(&g_stats.req[FS_REQ_FORGET], 1);
    fs_node_forget(ino, nlookup);
    fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
    atomic_fetch_add(&g_stats.req[FS_REQ_FORGET], 1);
    for (size_t i = 0; i < count; i++)
        fs_node_forget(forgets[i].ino, forgets[i].nlookup);
    fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    atomic_fetch_add(&g_stats.req[FS_REQ_GETATTR], 1);
    (void)fi;
    struct stat st;
    if (fs_ino_is_dir(ino)) {
        fs_gen *g = fs_gen_current();
        fill_attr(&st, ino, g, 1, 0);
        fs_gen_unref(g);
    } else {
        const fs_node *n = fs_node_of(ino);
        fill_attr(&st, ino, n->gen, fs_node_is_param_dir(n), fs_node_size(n));
    }
    fuse_reply_attr(req, &st, ENTRY_TIMEOUT);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    atomic_fetch_add(&g_stats.req[FS_REQ_OPEN], 1);
    if ((fi->flags & O_ACCMODE) != O_RDONLY) {
        fuse_reply_err(req, EROFS);
        return;
    }
    if (fs_ino_is_dir(ino) || fs_node_is_param_dir(fs_node_of(ino))) {
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

/* --- read -------------------------------------------------------------------------------- */

typedef struct read_call {
    const fs_node *n;
    uint64_t off;
    char *buf;
    size_t size;
    ap_err err;
} read_call;

static int run_read_call(void *arg)
{
    read_call *c = arg;
    const ap_vpack *v;
    if (fs_gen_vpack(c->n->gen, &v)) return -EIO;
    ap_status st;
    if (c->n->k == FS_NODE_ANNPACK)
        st = ap_vpack_annpack_read(v, c->off, c->buf, c->size, &c->err);
    else if (c->n->k == FS_NODE_SQ8)
        st = ap_vpack_sq8_read(v, c->off, c->buf, c->size, &c->err);
    else
        st = ap_vpack_meta_read(v, c->off, c->buf, c->size, &c->err);
    return fs_errno(st, FS_ERRNO_READ);
}

/* Bytes of pack.annpack, pack.meta.jsonl or pack.sq8, generated per range from the mapped
 * source files (guarded, and the source checked unchanged after reading). */
static void read_source(fuse_req_t req, const fs_node *n, size_t size, off_t off)
{
    uint64_t total = fs_node_size(n);
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
    static const char *const what[] = {[FS_NODE_ANNPACK] = "/pack.annpack",
                                       [FS_NODE_SQ8] = "/pack.sq8",
                                       [FS_NODE_META] = "/pack.meta.jsonl"};
    read_call c = {.n = n, .off = (uint64_t)off, .buf = buf, .size = size};
    int rc = atomic_load(&n->gen->changed) ? -EIO : 0;
    if (!rc) rc = fs_guarded(run_read_call, &c, what[n->k]);
    int changed = fs_gen_check_source(n->gen);
    if (!rc) rc = changed;
    if (rc && c.err.msg[0]) {
        atomic_fetch_add(&g_stats.errors, 1);
        if (!fs_known_corruption(c.err.status, &c.err))
            ap_log(AP_LOG_ERROR, "read", "%s at %lld: %s", what[n->k], (long long)off, c.err.msg);
    }
    if (rc)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_buf(req, buf, size);
    free(buf);
}

/* The bytes of n recomputed from its key with the took_ms it was looked up with: the same
 * bytes (checked), so a read never mixes two answers. 0 with *out, or a negative errno. */
static int recompute(const fs_node *n, fs_blob **out)
{
    fs_route r;
    *out = NULL;
    if (fs_route_parse_key(n->key, n->key_len, &r) != AP_OK) return -EIO;
    int rc = fs_answer(n->gen, &r, n->key, n->took_ms, out);
    if (!rc && ((*out)->len != n->size || (*out)->hash != n->hash)) {
        atomic_fetch_add(&g_stats.errors, 1);
        ap_log(AP_LOG_ERROR, "read",
               "recomputing \"%.64s\" gave %zu bytes unlike the %llu "
               "looked up; returning EIO",
               n->key, (*out)->len, (unsigned long long)n->size);
        fs_blob_unref(*out);
        *out = NULL;
        rc = -EIO;
    }
    return rc;
}

/* A computed file's bytes: from the cache, or recomputed. */
static void read_computed(fuse_req_t req, const fs_node *n, size_t size, off_t off)
{
    fs_blob *b = fs_cache_get(n->gen->number, n->key, n->key_hash);
    if (b && (b->len != n->size || b->hash != n->hash)) { /* another lookup's took_ms */
        fs_blob_unref(b);
        b = NULL;
    }
    if (!b) {
        int rc = recompute(n, &b);
        if (rc) {
            fuse_reply_err(req, -rc);
            return;
        }
        atomic_fetch_add(&g_stats.recomputed, 1);
        fs_cache_put(n->gen->number, n->key, n->key_hash, b);
    }
    reply_bytes(req, b->data, b->len, size, off);
    fs_blob_unref(b);
}

static void read_node(fuse_req_t req, const fs_node *n, size_t size, off_t off)
{
    const char *held;
    uint64_t len;
    int h = fs_node_held_bytes(n, &held, &len);
    if (h < 0) {
        fuse_reply_err(req, EIO);
        return;
    }
    if (h) { /* readable once expired too */
        reply_bytes(req, held, len, size, off);
        return;
    }
    if (fs_node_is_param_dir(n)) {
        fuse_reply_err(req, EISDIR);
        return;
    }
    if (fs_gen_refusing(n->gen)) {
        fuse_reply_err(req, EKEYEXPIRED);
        return;
    }
    switch (n->k) {
    case FS_NODE_ANNPACK:
    case FS_NODE_SQ8:
    case FS_NODE_META:
        read_source(req, n, size, off);
        return;
    case FS_NODE_REFUSAL:
        assert(n->blob); /* a refusal node is made with its reason (fs_node_with_blob) */
        reply_bytes(req, n->blob->data, n->blob->len, size, off);
        return;
    default:
        read_computed(req, n, size, off);
        return;
    }
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    atomic_fetch_add(&g_stats.req[FS_REQ_READ], 1);
    (void)fi;
    atomic_fetch_add(&g_stats.reads, 1);
    if (off < 0 || fs_ino_is_dir(ino)) {
        fuse_reply_err(req, off < 0 ? EINVAL : EISDIR);
        return;
    }
    /* The kernel may complete this READ, let the reader close the file and FORGET the node
     * on another thread before fuse_reply_buf has returned here: what a reply points into
     * (the node's bytes, its generation's) is pinned until then. */
    const fs_node *n = fs_node_of(ino);
    fs_blob *pinned = n->blob ? fs_blob_ref(n->blob) : NULL;
    fs_gen *g = n->gen;
    atomic_fetch_add(&g->refs, 1);
    read_node(req, n, size, off);
    fs_blob_unref(pinned);
    fs_gen_unref(g);
}

/* --- directories: open, list ------------------------------------------------------------- */

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    atomic_fetch_add(&g_stats.req[FS_REQ_OPENDIR], 1);
    fs_dir d;
    const fs_node *pn;
    if (!dir_of(ino, &d, &pn)) {
        fuse_reply_err(req, ENOTDIR);
        return;
    }
    fuse_reply_open(req, fi);
}

/* What a directory lists: the static files and directories of the root and refusal/;
 * the others list nothing (their names are computed). Returns the count. */
static size_t dir_entries(fuse_ino_t ino, const char **names, mode_t *modes)
{
    size_t nn = 0;
    names[nn] = ".", modes[nn++] = S_IFDIR;
    names[nn] = "..", modes[nn++] = S_IFDIR;
    if (ino == FUSE_ROOT_ID) {
        static const char *const files[] = {"pack.manifest.json",
                                            "pack.annpack",
                                            "pack.meta.jsonl",
                                            "pack.sq8",
                                            "pack.idf",
                                            "health",
                                            "stats"};
        fs_gen *g = fs_gen_current();
        for (size_t k = 0; k < sizeof files / sizeof files[0]; k++)
            if ((k != FS_FILE_SQ8 || ap_view_has_sq8(g->view)) && (k != FS_FILE_IDF || has_idf(g)))
                names[nn] = files[k], modes[nn++] = S_IFREG;
        fs_gen_unref(g);
        names[nn] = "query", modes[nn++] = S_IFDIR;
        names[nn] = "vquery", modes[nn++] = S_IFDIR;
        names[nn] = "doc", modes[nn++] = S_IFDIR;
        names[nn] = "refusal", modes[nn++] = S_IFDIR;
    } else if (ino == FS_INO_REFUSAL) {
        names[nn] = "query", modes[nn++] = S_IFDIR;
        names[nn] = "vquery", modes[nn++] = S_IFDIR;
    }
    return nn;
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
    atomic_fetch_add(&g_stats.req[FS_REQ_READDIR], 1);
    (void)fi;
    fs_dir d;
    const fs_node *pn;
    if (!dir_of(ino, &d, &pn)) {
        fuse_reply_err(req, ENOTDIR);
        return;
    }
    const char *names[16];
    mode_t modes[16];
    size_t nn = dir_entries(ino, names, modes);
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

/* --- session start and end --------------------------------------------------------------- */

static void op_init(void *ud, struct fuse_conn_info *conn)
{
    (void)ud;
    /* Files are immutable inodes: no open/release round trips needed, pages cacheable. */
    if (conn->capable & FUSE_CAP_NO_OPEN_SUPPORT) {
        conn->want |= FUSE_CAP_NO_OPEN_SUPPORT;
        g_no_open = 1;
    }
}

/* After the session loop: free the nodes the kernel never forgot (and their generation
 * references), so the generations and their views are released on exit. */
static void op_destroy(void *ud)
{
    (void)ud;
    fs_node_free_all();
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
