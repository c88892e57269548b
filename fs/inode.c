/* The node table: see inode.h. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "inode.h"
#include "reload.h"
#include "stats.h"

static pthread_mutex_t g_nodes_lock = PTHREAD_MUTEX_INITIALIZER; /* lookup counts, gen->files */
/* On unmount the kernel's lookup counts drop to zero without forget messages (libfuse:
 * "not guaranteed"), so the live nodes are listed and freed by fs_node_free_all. Never held
 * while taking g_nodes_lock. */
static pthread_mutex_t g_live_lock = PTHREAD_MUTEX_INITIALIZER;
static fs_node *g_live;
static atomic_llong g_last_trim_ms;

fs_node *fs_node_of(fuse_ino_t ino)
{
    return (fs_node *)(uintptr_t)ino;
}

int fs_ino_is_dir(fuse_ino_t ino)
{
    return ino == FUSE_ROOT_ID || (ino >= FS_INO_QUERY && ino <= FS_INO_LAST_DIR);
}

int fs_node_is_param_dir(const fs_node *n)
{
    return n->k == FS_NODE_VPARAM || n->k == FS_NODE_RVPARAM;
}

/* A node on the live list holding g (no reference taken), or NULL. */
static fs_node *node_alloc(fs_node_kind k, fs_gen *g)
{
    fs_node *n = calloc(1, sizeof *n);
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

fs_node *fs_node_new(fs_node_kind k, fs_gen *g)
{
    fs_node *n = node_alloc(k, g);
    if (!n) fs_gen_unref(g);
    return n;
}

/* The budget of the nodes of computed files: a quarter of cache_mb, at least 4 MiB. */
static uint64_t node_budget(void)
{
    uint64_t b = (g_cfg.cache_mb << 20) / 4;
    return b < (4u << 20) ? 4u << 20 : b;
}

/* Past the budget the kernel is asked (at most once a second) to forget the computed
 * names, so their nodes go away unless a file is open. */
void fs_node_account(fs_node *n)
{
    n->cost =
        sizeof *n + (n->key ? n->key_len + 1 : 0) + (n->blob ? sizeof *n->blob + n->blob->len : 0);
    atomic_fetch_add(&g_stats.nodes, 1);
    uint64_t total = atomic_fetch_add(&g_stats.node_bytes, n->cost) + n->cost;
    if (total <= node_budget()) return;
    long long ms = (long long)(fs_now_us() / 1000), last = atomic_load(&g_last_trim_ms);
    if (ms - last >= 1000 && atomic_compare_exchange_strong(&g_last_trim_ms, &last, ms))
        fs_trim_request();
}

fs_node *fs_node_with_blob(fs_node_kind k, fs_gen *g, fs_blob *b)
{
    fs_node *n = b ? node_alloc(k, g) : NULL;
    if (!n) {
        fs_blob_unref(b);
        fs_gen_unref(g);
        return NULL;
    }
    n->blob = b;
    fs_node_account(n);
    return n;
}

fs_node *fs_node_gen_file(fs_gen *g, fs_node_kind k)
{
    pthread_mutex_lock(&g_nodes_lock);
    fs_node *n = g->files[k];
    if (n) {
        n->nlookup++;
    } else if ((n = node_alloc(k, g))) {
        atomic_fetch_add(&g->refs, 1); /* the node's own */
        g->files[k] = n;
    }
    pthread_mutex_unlock(&g_nodes_lock);
    fs_gen_unref(g);
    return n;
}

static void node_free(fs_node *n)
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

/* A generation's file slot is a weak reference: cleared with the node (g_nodes_lock). */
static void clear_gen_slot(fs_node *n)
{
    if (n->k < FS_GEN_FILES && n->gen->files[n->k] == n) n->gen->files[n->k] = NULL;
}

void fs_node_forget(fuse_ino_t ino, uint64_t count)
{
    if (fs_ino_is_dir(ino)) return;
    fs_node *n = fs_node_of(ino);
    pthread_mutex_lock(&g_nodes_lock);
    n->nlookup -= count < n->nlookup ? count : n->nlookup;
    int gone = n->nlookup == 0;
    if (gone) clear_gen_slot(n);
    pthread_mutex_unlock(&g_nodes_lock);
    if (gone) node_free(n);
}

void fs_node_free_all(void)
{
    for (;;) {
        pthread_mutex_lock(&g_live_lock);
        fs_node *n = g_live;
        pthread_mutex_unlock(&g_live_lock);
        if (!n) break;
        pthread_mutex_lock(&g_nodes_lock);
        clear_gen_slot(n);
        pthread_mutex_unlock(&g_nodes_lock);
        node_free(n);
    }
}

uint64_t fs_node_size(const fs_node *n)
{
    switch (n->k) {
    case FS_NODE_MANIFEST: {
        const char *d;
        size_t len;
        return fs_gen_manifest(n->gen, &d, &len) ? 0 : len;
    }
    case FS_NODE_HEALTH:
        return n->gen->health_len;
    case FS_NODE_HEALTH_EXPIRED:
        return n->gen->health_expired_len;
    case FS_NODE_HEALTH_CHANGED:
        return n->gen->health_changed_len;
    case FS_NODE_ANNPACK:
    case FS_NODE_META:
    case FS_NODE_SQ8: {
        const ap_vpack *vp;
        if (fs_gen_vpack(n->gen, &vp)) return 0;
        return n->k == FS_NODE_ANNPACK ? ap_vpack_annpack_size(vp)
               : n->k == FS_NODE_META  ? ap_vpack_meta_size(vp)
                                       : ap_vpack_sq8_size(vp);
    }
    case FS_NODE_IDF: {
        const void *b;
        size_t len;
        ap_embedder_table_bytes(ap_view_embedder(n->gen->view), &b, &len);
        return len;
    }
    case FS_NODE_STATS:
    case FS_NODE_REFUSAL:
        return n->blob->len;
    case FS_NODE_QUERY:
    case FS_NODE_VQUERY:
    case FS_NODE_DOC:
        return n->size;
    case FS_NODE_VPARAM:
    case FS_NODE_RVPARAM:
        return 0;
    }
    return 0;
}

int fs_node_held_bytes(const fs_node *n, const char **data, uint64_t *len)
{
    const fs_gen *g = n->gen;
    switch (n->k) {
    case FS_NODE_MANIFEST: {
        size_t l = 0;
        if (fs_gen_manifest(n->gen, data, &l)) return -1;
        *len = l;
        return 1;
    }
    case FS_NODE_IDF: {
        const void *b;
        size_t n_idf;
        ap_embedder_table_bytes(ap_view_embedder(g->view), &b, &n_idf);
        *data = (const char *)b, *len = n_idf;
        return 1;
    }
    case FS_NODE_HEALTH:
        *data = g->health, *len = g->health_len;
        return 1;
    case FS_NODE_HEALTH_CHANGED:
        *data = g->health_changed, *len = g->health_changed_len;
        return 1;
    case FS_NODE_HEALTH_EXPIRED:
        *data = g->health_expired, *len = g->health_expired_len;
        return 1;
    case FS_NODE_STATS:
        *data = n->blob->data, *len = n->blob->len;
        return 1;
    default:
        return 0;
    }
}

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
                                        "pack.idf",
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
