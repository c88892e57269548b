/* Generations: each reload verifies the source and builds a new immutable generation;
 * readers keep the one they opened until they close it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "fs.h"

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static fs_gen *g_current;

int fs_errno(ap_status st)
{
    switch (st) {
    case AP_OK:
        return 0;
    case AP_ERR_NOTFOUND:
        return -ENOENT;
    case AP_ERR_ARG:
        return -EINVAL;
    case AP_ERR_LIMIT:
        return -ENAMETOOLONG;
    case AP_ERR_NOMEM:
        return -ENOMEM;
    case AP_ERR_UNSUPPORTED:
        return -EOPNOTSUPP; /* e.g. a text query on a vectors pack */
    default:
        return -EIO;
    }
}

static void gen_free(fs_gen *g)
{
    ap_vpack_close(g->vpack);
    ap_view_close(g->view);
    free(g->manifest);
    free(g->health);
    free(g->health_expired);
    free(g->health_changed);
    free(g);
}

int fs_gen_expired(fs_gen *g)
{
    if (!g->has_expires || (long long)time(NULL) <= g->expires) return 0;
    if (!atomic_exchange(&g->expiry_logged, 1))
        ap_log(AP_LOG_WARN, "expiry",
               "generation %llu (version %llu) expired at %s; on_expiry=%s: %s",
               (unsigned long long)g->number, (unsigned long long)g->version, g->expires_text,
               g_cfg.expiry_refuse ? "refuse" : "serve",
               g_cfg.expiry_refuse ? "answers stop (EKEYEXPIRED) until a newer version is loaded"
                                   : "still answering; health says expired");
    return 1;
}

int fs_gen_check_source(fs_gen *g)
{
    if (atomic_load(&g->changed)) return -EIO;
    ap_err err = {0};
    if (ap_view_check_unchanged(g->view, &err) == AP_OK) return 0;
    if (!atomic_exchange(&g->changed, 1)) {
        atomic_fetch_add(&g_stats.errors, 1);
        ap_log(AP_LOG_ERROR, "source",
               "%s; generation %llu answers EIO until a reload has verified the source again",
               err.msg, (unsigned long long)g->number);
        fs_reload_request();
    }
    return -EIO;
}

/* The health file: status "ok", "expired" once "expires" has passed, "source-changed" once
 * a file changed in place. */
static char *health_json(const fs_gen *g, const char *status, size_t *len)
{
    char buf[1024];
    char expires[96] = "null";
    if (g->has_expires) snprintf(expires, sizeof expires, "\"%s\"", g->expires_text);
    int n =
        snprintf(buf, sizeof buf,
                 "{\"status\":\"%s\",\"generation\":%llu,\"version\":%llu,\"n_vectors\":%llu,"
                 "\"dim\":%u,\"n_lists\":%u,\"deltas\":%u,\"embedder\":\"%s\",\"sq8\":%s,"
                 "\"signature\":\"%s\",\"key_id\":%s%s%s,\"expires\":%s}\n",
                 status, (unsigned long long)g->number, (unsigned long long)g->version,
                 (unsigned long long)ap_view_live_count(g->view), ap_view_dim(g->view),
                 ap_view_n_lists(g->view), ap_view_n_deltas(g->view),
                 ap_embedder_name(ap_view_embedder(g->view)),
                 ap_view_has_sq8(g->view) ? "true" : "false", g->signature, g->keyid[0] ? "\"" : "",
                 g->keyid[0] ? g->keyid : "null", g->keyid[0] ? "\"" : "", expires);
    *len = (size_t)n;
    return strdup(buf);
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
     * opened once and served from the descriptor that was checked (trust.h). Expiry is
     * checked below, for verify=none too, with the mount's option in the message. */
    ap_trust_policy pol = {.keys = cfg->keys,
                           .nkeys = cfg->nkeys,
                           .hash_files = cfg->verify_full,
                           .allow_expired = true,
                           .min_version = min_version,
                           .strict_version = strict};
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
    long long t = 0;
    ap_status xs = ap_view_expires(g->view, &t, err);
    if (xs != AP_OK && xs != AP_ERR_NOTFOUND) {
        st = xs;
        goto out;
    }
    if (xs == AP_OK) {
        g->has_expires = 1;
        g->expires = t;
        struct tm tm;
        time_t tt = (time_t)t;
        gmtime_r(&tt, &tm);
        strftime(g->expires_text, sizeof g->expires_text, "%Y-%m-%dT%H:%M:%SZ", &tm);
        if ((long long)time(NULL) > t && !cfg->allow_expired) {
            st = ap_err_set(err, AP_ERR_VERIFY,
                            "%s/%s: expired at %s (pass -o allow_expired to accept it)",
                            cfg->source, AP_MANIFEST, g->expires_text);
            goto out;
        }
    }
    /* A pack built from vectors cannot embed text: text queries are refused by name. */
    if (!strcmp(ap_embedder_name(ap_view_embedder(g->view)), "vectors")) {
        ap_err e = {0};
        float *q = malloc(ap_view_dim(g->view) * sizeof *q);
        if (q) ap_view_embed(g->view, "x", 1, q, &e);
        free(q);
        snprintf(g->no_text, sizeof g->no_text, "%s", e.msg[0] ? e.msg : "cannot embed text");
    }
    char extra[256];
    snprintf(extra, sizeof extra, "{\"generation\":%llu,\"signature\":\"%s\",\"key_id\":%s%s%s}",
             (unsigned long long)number, g->signature, g->keyid[0] ? "\"" : "",
             g->keyid[0] ? g->keyid : "null", g->keyid[0] ? "\"" : "");
    if ((st = ap_vpack_open(g->view, &g->vpack, err))) goto out;
    g->manifest = ap_vpack_manifest(g->vpack, extra, &g->manifest_len, err);
    if (!g->manifest) {
        st = err ? err->status : AP_ERR_INTERNAL;
        goto out;
    }
    g->health = health_json(g, "ok", &g->health_len);
    if (g->has_expires) g->health_expired = health_json(g, "expired", &g->health_expired_len);
    g->health_changed = health_json(g, "source-changed", &g->health_changed_len);
    if (!g->health || !g->health_changed || (g->has_expires && !g->health_expired)) {
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
    b->took_ms = 0;
    memcpy(b->data, data, len);
    b->data[len] = '\0';
    /* Not a secret: only to tell a recomputed result from the one looked up. */
    static const unsigned char key[crypto_shorthash_KEYBYTES] = {0};
    unsigned char h[crypto_shorthash_BYTES];
    crypto_shorthash(h, (const unsigned char *)b->data, len, key);
    memcpy(&b->hash, h, sizeof b->hash);
    return b;
}

void fs_blob_unref(fs_blob *b)
{
    if (b && atomic_fetch_sub(&b->refs, 1) == 1) free(b);
}
