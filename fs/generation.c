/* Generations: each reload verifies the source and builds a new immutable generation;
 * readers keep the one they opened until they close it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "fs.h"

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static fs_gen *g_current;

int fs_errno(ap_status st)
{
    switch (st) {
    case AP_OK: return 0;
    case AP_ERR_NOTFOUND: return -ENOENT;
    case AP_ERR_ARG: return -EINVAL;
    case AP_ERR_LIMIT: return -ENAMETOOLONG;
    case AP_ERR_NOMEM: return -ENOMEM;
    case AP_ERR_UNSUPPORTED: return -EOPNOTSUPP; /* e.g. a text query on a vectors pack */
    default: return -EIO;
    }
}

static void gen_free(fs_gen *g)
{
    ap_view_close(g->view);
    free(g->manifest);
    free(g->health);
    free(g);
}

void fs_gen_unref(fs_gen *g)
{
    if (g && atomic_fetch_sub(&g->refs, 1) == 1) gen_free(g);
}

fs_gen *fs_gen_current(void)
{
    pthread_mutex_lock(&g_lock);
    fs_gen *g = g_current;
    if (g) atomic_fetch_add(&g->refs, 1);
    pthread_mutex_unlock(&g_lock);
    return g;
}

void fs_gen_install(fs_gen *g)
{
    pthread_mutex_lock(&g_lock);
    fs_gen *old = g_current;
    g_current = g;
    pthread_mutex_unlock(&g_lock);
    fs_gen_unref(old);
}

ap_status fs_gen_load(const fs_config *cfg, uint64_t number, uint64_t min_version, int strict,
                      fs_gen **out, ap_err *err)
{
    *out = NULL;
    fs_gen *g = calloc(1, sizeof *g);
    if (!g) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    atomic_init(&g->refs, 1);
    g->number = number;
    g->signature = "unchecked";
    /* One read of the root manifest, its signature checked over those bytes, every file
     * opened once and served from the descriptor that was checked (trust.h). */
    ap_trust_policy pol = {.keys = cfg->keys, .nkeys = cfg->nkeys, .hash_files = cfg->verify_full,
                           .min_version = min_version, .strict_version = strict};
    ap_trust_result tr;
    ap_status st = ap_view_open_trusted(cfg->source, &pol, &g->view, &tr, err);
    if (st) goto out;
    g->version = tr.version;
    memcpy(g->keyid, tr.key_id, sizeof g->keyid);
    if (cfg->scan == AP_SCAN_SQ8 && !ap_view_has_sq8(g->view)) {
        st = ap_err_set(err, AP_ERR_ARG, "%s: scan=sq8 but the base has no int8 sidecar (%s)",
                        cfg->source, AP_SQ8);
        goto out;
    }
    if (tr.signature_checked) g->signature = "verified";
    char extra[256];
    snprintf(extra, sizeof extra,
             "{\"generation\":%llu,\"signature\":\"%s\",\"key_id\":%s%s%s}",
             (unsigned long long)number, g->signature, g->keyid[0] ? "\"" : "",
             g->keyid[0] ? g->keyid : "null", g->keyid[0] ? "\"" : "");
    g->manifest = ap_view_virtual_manifest(g->view, extra, &g->manifest_len, err);
    if (!g->manifest) {
        st = err ? err->status : AP_ERR_INTERNAL;
        goto out;
    }
    char buf[1024];
    int n = snprintf(buf, sizeof buf,
                     "{\"status\":\"ok\",\"generation\":%llu,\"version\":%llu,\"n_vectors\":%llu,"
                     "\"dim\":%u,\"n_lists\":%u,\"deltas\":%u,\"embedder\":\"%s\",\"sq8\":%s,"
                     "\"signature\":\"%s\",\"key_id\":%s%s%s}\n",
                     (unsigned long long)number, (unsigned long long)g->version,
                     (unsigned long long)ap_view_live_count(g->view), ap_view_dim(g->view),
                     ap_view_n_lists(g->view), ap_view_n_deltas(g->view),
                     ap_view_embedder(g->view)->ops->name,
                     ap_view_has_sq8(g->view) ? "true" : "false", g->signature,
                     g->keyid[0] ? "\"" : "", g->keyid[0] ? g->keyid : "null",
                     g->keyid[0] ? "\"" : "");
    g->health = strdup(buf);
    g->health_len = (size_t)n;
    if (!g->health) {
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    clock_gettime(CLOCK_REALTIME, &g->mtime);
out:
    if (st) {
        gen_free(g);
        return st;
    }
    *out = g;
    return AP_OK;
}

fs_blob *fs_blob_new(const char *data, size_t len)
{
    fs_blob *b = malloc(sizeof *b + len + 1);
    if (!b) return NULL;
    atomic_init(&b->refs, 1);
    b->len = len;
    memcpy(b->data, data, len);
    b->data[len] = '\0';
    return b;
}

void fs_blob_unref(fs_blob *b)
{
    if (b && atomic_fetch_sub(&b->refs, 1) == 1) free(b);
}
