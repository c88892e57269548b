/* Generations: see generation.h. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed_cache.h"
#include "generation.h"
#include "health.h"
#include "reload.h"
#include "state.h"
#include "stats.h"

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static fs_gen *g_current;

static void gen_free(fs_gen *g)
{
    ap_vpack_close(g->vpack);
    ap_view_close(g->view);
    free(g->manifest);
    free(g->provenance);
    pthread_mutex_destroy(&g->manifest_mu);
    free(g->health);
    free(g->health_expired);
    free(g->health_changed);
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

int fs_gen_refusing(fs_gen *g)
{
    return fs_gen_expired(g) && g_cfg.expiry_refuse;
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
        /* Answers are cached by the kernel for the generation: make it forget them, so a
         * repeated name is looked up (and refused) again too. */
        fs_trim_request();
        fs_reload_request();
    }
    return -EIO;
}

/* --- loading ---------------------------------------------------------------------------- */

/* One read of the root manifest, its signature checked over those bytes, every file opened
 * once and served from the descriptor that was checked (trust.h). Expiry is checked by
 * read_expiry, for verify=none too, with the mount's option in the message. */
static ap_status open_verified(const fs_config *cfg, fs_gen *g, uint64_t min_version, int strict,
                               ap_err *err)
{
    ap_trust_policy pol = {.keys = cfg->keys,
                           .nkeys = cfg->nkeys,
                           .hash_files = cfg->verify_full,
                           .lazy = cfg->verify_lazy,
                           .allow_expired = true,
                           .min_version = min_version,
                           .strict_version = strict};
    ap_trust_result tr;
    ap_status st = ap_view_open_trusted(cfg->source, &pol, &g->view, &tr, err);
    if (st) return st;
    g->version = tr.version;
    memcpy(g->keyid, tr.key_id, sizeof g->keyid);
    if (cfg->scan == AP_SCAN_SQ8 && !ap_view_has_sq8(g->view))
        return ap_err_set(err, AP_ERR_ARG, "%s: scan=sq8 but the base has no int8 sidecar (%s)",
                          cfg->source, AP_SQ8);
    if (cfg->scan == AP_SCAN_BITS && !ap_view_has_bits(g->view))
        return ap_err_set(err, AP_ERR_ARG,
                          "%s: scan=bits but the base has no 1-bit code sidecar (%s)", cfg->source,
                          AP_BITS);
    if (tr.signature_checked) g->signature = "verified";
    return AP_OK;
}

/* The root manifest's "expires": kept for health and refused once passed unless
 * allow_expired. */
static ap_status read_expiry(const fs_config *cfg, fs_gen *g, ap_err *err)
{
    long long t = 0;
    ap_status st = ap_view_expires(g->view, &t, err);
    if (st == AP_ERR_NOTFOUND) return AP_OK;
    if (st) return st;
    g->has_expires = 1;
    g->expires = t;
    struct tm tm;
    time_t tt = (time_t)t;
    gmtime_r(&tt, &tm);
    strftime(g->expires_text, sizeof g->expires_text, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if ((long long)time(NULL) > t && !cfg->allow_expired)
        return ap_err_set(err, AP_ERR_VERIFY,
                          "%s/%s: expired at %s (pass -o allow_expired to accept it)", cfg->source,
                          AP_MANIFEST, g->expires_text);
    return AP_OK;
}

/* A pack built from vectors cannot embed text: text queries are refused by name, with the
 * embedder's own reason. */
static void note_text_support(fs_gen *g)
{
    ap_err ce = {0};
    /* An HTTP embedder: its canaries must embed as at build time (embed_cache.h). */
    if (fs_embed_check(g->view, &ce)) snprintf(g->no_text, sizeof g->no_text, "%s", ce.msg);
    if (strcmp(ap_embedder_name(ap_view_embedder(g->view)), "vectors") != 0) return;
    ap_err e = {0};
    float *q = malloc(ap_view_dim(g->view) * sizeof *q);
    if (q) ap_view_embed(g->view, "x", 1, q, &e);
    free(q);
    snprintf(g->no_text, sizeof g->no_text, "%s", e.msg[0] ? e.msg : "cannot embed text");
}

/* Builds g->vpack once (under manifest_mu). */
static int vpack_locked(fs_gen *g)
{
    if (g->vpack_rc == 1) {
        ap_err err = {0};
        g->vpack_rc = ap_vpack_open(g->view, &g->vpack, &err) ? -EIO : 0;
        if (g->vpack_rc) {
            atomic_fetch_add(&g_stats.errors, 1);
            ap_log(AP_LOG_ERROR, "mount", "generation %llu: the virtual pack: %s",
                   (unsigned long long)g->number, err.msg);
        }
    }
    return g->vpack_rc;
}

int fs_gen_vpack(fs_gen *g, const ap_vpack **out)
{
    pthread_mutex_lock(&g->manifest_mu);
    int rc = vpack_locked(g);
    *out = g->vpack;
    pthread_mutex_unlock(&g->manifest_mu);
    return rc;
}

int fs_gen_manifest(fs_gen *g, const char **data, size_t *len)
{
    pthread_mutex_lock(&g->manifest_mu);
    if (g->manifest_rc == 1 && vpack_locked(g)) g->manifest_rc = -EIO;
    if (g->manifest_rc == 1) {
        ap_err err = {0};
        g->manifest = ap_vpack_manifest(g->vpack, g->provenance, &g->manifest_len, &err);
        g->manifest_rc = g->manifest ? 0 : -EIO;
        if (!g->manifest) {
            atomic_fetch_add(&g_stats.errors, 1);
            ap_log(AP_LOG_ERROR, "manifest", "generation %llu: pack.manifest.json: %s",
                   (unsigned long long)g->number, err.msg[0] ? err.msg : "out of memory");
        }
    }
    int rc = g->manifest_rc;
    *data = g->manifest;
    *len = g->manifest_len;
    pthread_mutex_unlock(&g->manifest_mu);
    return rc;
}

/* The virtual pack and the bytes of the health files; the manifest waits for its first
 * use (fs_gen_manifest): the merged files' hashes would read, and so verify, every list
 * and frame at mount. */
static ap_status build_files(fs_gen *g, ap_err *err)
{
    g->provenance = fs_provenance_json(g);
    if (!g->provenance) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&g->manifest_mu, NULL);
    g->vpack_rc = 1;
    g->manifest_rc = 1;
    /* verify=full keeps the eager mode whole: the virtual pack and its manifest too, so a
     * merged file that does not build refuses the mount. */
    if (g_cfg.verify_full && !g_cfg.verify_lazy) {
        ap_status st = ap_vpack_open(g->view, &g->vpack, err);
        if (st) return st;
        g->vpack_rc = 0;
        g->manifest = ap_vpack_manifest(g->vpack, g->provenance, &g->manifest_len, err);
        if (!g->manifest) return err && err->status ? err->status : AP_ERR_INTERNAL;
        g->manifest_rc = 0;
    }
    g->health = fs_health_json(g, "ok", &g->health_len);
    if (g->has_expires) g->health_expired = fs_health_json(g, "expired", &g->health_expired_len);
    g->health_changed = fs_health_json(g, "source-changed", &g->health_changed_len);
    if (!g->health || !g->health_changed || (g->has_expires && !g->health_expired))
        return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    return AP_OK;
}

ap_status fs_gen_load(const fs_config *cfg, uint64_t number, uint64_t min_version, int strict,
                      fs_gen **out, ap_err *err)
{
    *out = NULL;
    fs_gen *g = calloc(1, sizeof *g);
    if (!g) {
        ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        return AP_ERR_NOMEM; /* literally: the analyzer cannot see ap_err_set return it */
    }
    atomic_init(&g->refs, 1);
    g->number = number;
    g->signature = "unchecked";
    ap_status st = open_verified(cfg, g, min_version, strict, err);
    if (!st) st = read_expiry(cfg, g, err);
    if (!st) {
        note_text_support(g);
        st = build_files(g, err);
    }
    if (st) {
        gen_free(g);
        return st;
    }
    clock_gettime(CLOCK_REALTIME, &g->mtime);
    *out = g;
    return AP_OK;
}

/* The version floor of state=: AP_OK with *floor (0 without state=), *fresh when the file
 * is missing and state_init creates it. */
static ap_status read_floor(const fs_config *cfg, uint64_t *floor, int *fresh, ap_err *err)
{
    *floor = 0;
    *fresh = 0;
    if (!cfg->state) return AP_OK;
    ap_status st = fs_state_load(cfg->state, floor, err);
    if (st != AP_ERR_NOTFOUND) return st;
    if (cfg->state_init) {
        *fresh = 1;
        return AP_OK;
    }
    char why[AP_ERR_MSG_MAX];
    snprintf(why, sizeof why, "%s", err->msg);
    return ap_err_set(err, st, "%s (on the first mount, add -o state_init to create it)", why);
}

ap_status fs_gen_load_first(const fs_config *cfg, fs_gen **out, ap_err *err)
{
    *out = NULL;
    uint64_t floor;
    int fresh;
    /* Replay protection fails closed: a state file that cannot be read or parsed refuses
     * the mount, and so does a missing one unless this is the first mount (state_init). */
    ap_status st = read_floor(cfg, &floor, &fresh, err);
    fs_gen *g = NULL;
    if (!st) st = fs_gen_load(cfg, 1, floor, 0, &g, err);
    /* Persisted before it is served (only when it changes: the file may be read-only). */
    if (!st && cfg->state && (fresh || g->version > floor))
        st = fs_state_save(cfg->state, g->version, err);
    if (st) {
        fs_gen_unref(g);
        return st;
    }
    *out = g;
    return AP_OK;
}
