/* Query embeddings of an HTTP embedder: see embed_cache.h.
 *
 * One lock guards the LRU, the flights and the breaker; the request itself runs unlocked.
 * A query whose key is in flight waits for that flight's result instead of sending its
 * own. The breaker opens after BREAKER_FAILURES consecutive failures of the service and
 * then fails every query at once for BREAKER_COOLDOWN_S; after that one query is let
 * through (half-open): its success closes the breaker, its failure opens it again. */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "embed_cache.h"
#include "health.h"
#include "json_write.h"
#include "stats.h"

#define BUCKETS 4096u
#define BREAKER_FAILURES 3u
#define BREAKER_COOLDOWN_S 5.0

typedef struct entry {
    struct entry *prev, *next; /* LRU, most recent first */
    struct entry *chain;       /* hash bucket */
    uint64_t h;
    char *key;
    size_t klen;
    float *vec;
    uint32_t dim;
    size_t bytes;
} entry;

typedef struct flight {
    struct flight *next;
    const char *key;
    size_t klen;
    uint32_t dim;
    bool done;
    ap_status st;
    ap_err err;
    float *vec;
    unsigned waiters;
    pthread_cond_t cv;
} flight;

typedef enum { CANARY_UNKNOWN, CANARY_OK, CANARY_MISMATCH } canary_state;

static struct {
    pthread_mutex_t mu;
    unsigned char hkey[crypto_shorthash_KEYBYTES];
    entry *bucket[BUCKETS];
    entry *head, *tail;
    uint64_t budget, bytes, entries;
    flight *flights;
    /* breaker */
    unsigned failures;
    bool open, probing;
    double open_until;
    char last_error[AP_ERR_MSG_MAX];
    /* canaries of the current fingerprint */
    char canary_fp[65];
    canary_state canary;
    double canary_cos;
    char canary_msg[AP_ERR_MSG_MAX];
    /* counters */
    uint64_t hits, misses, coalesced, requests, failures_total, fast_failures;
} E = {.mu = PTHREAD_MUTEX_INITIALIZER};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void fs_embed_init(uint64_t bytes)
{
    if (sodium_init() < 0) bytes = 0; /* no keyed hash: no cache (queries still work) */
    randombytes_buf(E.hkey, sizeof E.hkey);
    E.budget = bytes;
}

static uint64_t hash_key(const char *k, size_t n)
{
    unsigned char out[crypto_shorthash_BYTES];
    crypto_shorthash(out, (const unsigned char *)k, n, E.hkey);
    uint64_t h;
    memcpy(&h, out, sizeof h);
    return h;
}

static void lru_unlink(entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        E.head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        E.tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push(entry *e)
{
    e->next = E.head;
    if (E.head) E.head->prev = e;
    E.head = e;
    if (!E.tail) E.tail = e;
}

static entry *find(uint64_t h, const char *k, size_t n)
{
    for (entry *e = E.bucket[h % BUCKETS]; e; e = e->chain)
        if (e->h == h && e->klen == n && memcmp(e->key, k, n) == 0) return e;
    return NULL;
}

/* The analyzer loses track of the list through the unlink: the tail is always a live
 * entry (an entry is unlinked from the list and its chain before it is freed). */
/* NOLINTBEGIN(clang-analyzer-unix.Malloc) */
static void evict_one(void)
{
    entry *e = E.tail;
    if (!e) return;
    lru_unlink(e);
    entry **pp = &E.bucket[e->h % BUCKETS];
    while (*pp != e)
        pp = &(*pp)->chain;
    *pp = e->chain;
    E.bytes -= e->bytes;
    E.entries--;
    free(e->key);
    free(e->vec);
    free(e);
}
/* NOLINTEND(clang-analyzer-unix.Malloc) */

static void insert(uint64_t h, const char *k, size_t n, const float *vec, uint32_t dim)
{
    size_t bytes = sizeof(entry) + n + (size_t)dim * sizeof(float);
    if (bytes > E.budget || find(h, k, n)) return;
    entry *e = calloc(1, sizeof *e);
    char *key = malloc(n);
    float *v = malloc((size_t)dim * sizeof *v);
    if (!e || !key || !v) {
        free(e);
        free(key);
        free(v);
        return;
    }
    memcpy(key, k, n);
    memcpy(v, vec, (size_t)dim * sizeof *v);
    *e = (entry){.h = h, .key = key, .klen = n, .vec = v, .dim = dim, .bytes = bytes};
    while (E.bytes + bytes > E.budget && E.tail)
        evict_one();
    e->chain = E.bucket[h % BUCKETS];
    E.bucket[h % BUCKETS] = e;
    lru_push(e);
    E.bytes += bytes;
    E.entries++;
}

/* The breaker, under the lock: whether a request may go out now. */
static bool breaker_allows(void)
{
    if (!E.open) return true;
    if (now_s() < E.open_until || E.probing) return false;
    E.probing = true; /* half-open: this request decides */
    return true;
}

static void breaker_result(bool ok, const ap_err *err)
{
    E.probing = false;
    if (ok) {
        if (E.open) ap_log(AP_LOG_WARN, "embed", "embedding service is back: circuit closed");
        E.failures = 0;
        E.open = false;
        return;
    }
    E.failures_total++;
    snprintf(E.last_error, sizeof E.last_error, "%s", err->msg);
    if (++E.failures >= BREAKER_FAILURES || E.open) {
        if (!E.open)
            ap_log(AP_LOG_ERROR, "embed", "circuit open for %.0f s after %u failures: %s",
                   BREAKER_COOLDOWN_S, E.failures, err->msg);
        E.open = true;
        E.open_until = now_s() + BREAKER_COOLDOWN_S;
    }
}

/* A failure of the service (not of the text or the reply's shape) counts for the breaker. */
static bool service_failure(ap_status st)
{
    return st == AP_ERR_IO;
}

/* Checks the canaries of the view's fingerprint once (unlocked call). */
static ap_status canaries_locked(const ap_view *v, ap_err *err)
{
    const ap_embedder *e = ap_view_embedder(v);
    if (strcmp(E.canary_fp, ap_embedder_fingerprint(e)) != 0) {
        snprintf(E.canary_fp, sizeof E.canary_fp, "%s", ap_embedder_fingerprint(e));
        E.canary = CANARY_UNKNOWN;
    }
    if (E.canary == CANARY_OK) return AP_OK;
    if (E.canary == CANARY_MISMATCH) return ap_err_set(err, AP_ERR_UNSUPPORTED, "%s", E.canary_msg);
    if (!breaker_allows()) goto fast;
    E.requests++;
    pthread_mutex_unlock(&E.mu);
    double cos = 0;
    ap_err cerr = {0};
    ap_status st = ap_embedder_check(e, &cos, &cerr);
    pthread_mutex_lock(&E.mu);
    breaker_result(!service_failure(st), &cerr);
    if (!st || st == AP_ERR_VERIFY) {
        E.canary = st ? CANARY_MISMATCH : CANARY_OK;
        E.canary_cos = cos;
        snprintf(E.canary_msg, sizeof E.canary_msg, "%s", cerr.msg);
    }
    if (st == AP_ERR_VERIFY) st = AP_ERR_UNSUPPORTED; /* refused, like a vectors pack's text */
    if (st && err) *err = cerr;
    if (err && st) err->status = st;
    return st;
fast:
    E.fast_failures++;
    return ap_err_set(err, AP_ERR_IO,
                      "embedding service unavailable (circuit open after %u failures; last: %s)",
                      E.failures, E.last_error);
}

ap_status fs_embed_check(const ap_view *v, ap_err *err)
{
    const ap_embedder *e = ap_view_embedder(v);
    if (!ap_embedder_is_remote(e)) return AP_OK;
    pthread_mutex_lock(&E.mu);
    /* A new generation checks again, even for the same fingerprint (the service may have
     * been switched since). */
    E.canary_fp[0] = '\0';
    ap_status st = canaries_locked(v, err);
    pthread_mutex_unlock(&E.mu);
    if (st == AP_ERR_IO)
        ap_log(AP_LOG_WARN, "embed",
               "canaries not checked at load (%s): the first text query "
               "checks them",
               err ? err->msg : "");
    return st == AP_ERR_IO ? AP_OK : st;
}

static flight *find_flight(const char *k, size_t n)
{
    for (flight *f = E.flights; f; f = f->next)
        if (f->klen == n && memcmp(f->key, k, n) == 0) return f;
    return NULL;
}

static void drop_flight(flight *f)
{
    flight **pp = &E.flights;
    while (*pp != f)
        pp = &(*pp)->next;
    *pp = f->next;
}

/* Waits for another thread's identical request (under the lock). */
static ap_status join_flight(flight *f, uint32_t dim, float *out, ap_err *err)
{
    E.coalesced++;
    f->waiters++;
    while (!f->done)
        pthread_cond_wait(&f->cv, &E.mu);
    ap_status st = f->st;
    if (st && err) *err = f->err;
    if (!st) memcpy(out, f->vec, (size_t)dim * sizeof *out);
    if (--f->waiters == 0) {
        pthread_cond_destroy(&f->cv);
        free(f->vec);
        free(f);
    }
    return st;
}

/* Sends the request for key (under the lock; unlocked while it runs). */
static ap_status fly(const ap_view *v, const char *key, size_t klen, uint64_t h, const char *text,
                     size_t len, uint32_t dim, float *out, ap_err *err)
{
    flight *f = calloc(1, sizeof *f);
    if (!f) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    *f = (flight){.key = key, .klen = klen, .dim = dim, .waiters = 1};
    pthread_cond_init(&f->cv, NULL);
    f->next = E.flights;
    E.flights = f;
    E.requests++;
    E.misses++;
    pthread_mutex_unlock(&E.mu);
    ap_status st = ap_view_embed(v, text, len, out, &f->err);
    pthread_mutex_lock(&E.mu);
    breaker_result(!service_failure(st), &f->err);
    if (!st) insert(h, key, klen, out, dim);
    f->st = st;
    if (!st && (f->vec = malloc((size_t)dim * sizeof *out)))
        memcpy(f->vec, out, (size_t)dim * sizeof *out);
    else if (!st)
        f->st = ap_err_set(&f->err, AP_ERR_NOMEM, "out of memory");
    f->done = true;
    drop_flight(f); /* f->key is the caller's: no one may find it any more */
    if (st && err) *err = f->err;
    pthread_cond_broadcast(&f->cv);
    if (--f->waiters == 0) {
        pthread_cond_destroy(&f->cv);
        free(f->vec);
        free(f);
    }
    return st;
}

ap_status fs_embed_query(const ap_view *v, const char *text, size_t len, float *out, ap_err *err)
{
    const ap_embedder *e = ap_view_embedder(v);
    if (!ap_embedder_is_remote(e)) return ap_view_embed(v, text, len, out, err);
    uint32_t dim = ap_embedder_dim(e);
    /* key: the fingerprint (model, revision, query prefix, ...), 0x1F, the text */
    const char *fp = ap_embedder_fingerprint(e);
    size_t fl = strlen(fp), klen = fl + 1 + len;
    char *key = malloc(klen);
    if (!key) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    memcpy(key, fp, fl);
    key[fl] = 0x1f;
    memcpy(key + fl + 1, text, len);
    uint64_t h = hash_key(key, klen);
    pthread_mutex_lock(&E.mu);
    ap_status st = AP_OK;
    entry *hit = find(h, key, klen);
    flight *f = hit ? NULL : find_flight(key, klen);
    if (hit) {
        E.hits++;
        memcpy(out, hit->vec, (size_t)dim * sizeof *out);
        lru_unlink(hit);
        lru_push(hit);
    } else if (f) {
        st = join_flight(f, dim, out, err);
    } else if (!(st = canaries_locked(v, err))) {
        if (!breaker_allows()) {
            E.fast_failures++;
            st = ap_err_set(err, AP_ERR_IO,
                            "embedding service unavailable (circuit open after %u failures; "
                            "last: %s)",
                            E.failures, E.last_error);
        } else {
            st = fly(v, key, klen, h, text, len, dim, out, err);
        }
    }
    pthread_mutex_unlock(&E.mu);
    free(key);
    return st;
}

cJSON *fs_embed_status(const ap_view *v)
{
    const ap_embedder *e = ap_view_embedder(v);
    if (!ap_embedder_is_remote(e)) return NULL;
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    pthread_mutex_lock(&E.mu);
    const char *breaker = !E.open ? "closed" : now_s() < E.open_until ? "open" : "half-open";
    const char *canary = E.canary == CANARY_OK         ? "ok"
                         : E.canary == CANARY_MISMATCH ? "mismatch"
                                                       : "unchecked";
    const char *state = E.canary == CANARY_MISMATCH ? "mismatch" : E.open ? "unavailable" : "ok";
    bool ok = cJSON_AddStringToObject(o, "state", state) &&
              cJSON_AddStringToObject(o, "embedder", ap_embedder_name(e)) &&
              cJSON_AddStringToObject(o, "fingerprint", ap_embedder_fingerprint(e)) &&
              cJSON_AddStringToObject(o, "breaker", breaker) &&
              cJSON_AddStringToObject(o, "canaries", canary) &&
              (E.canary == CANARY_UNKNOWN
                   ? cJSON_AddNullToObject(o, "canary_min_cosine") != NULL
                   : cJSON_AddNumberToObject(o, "canary_min_cosine", E.canary_cos) != NULL) &&
              fs_json_add_u64(o, "cache_hits", E.hits) &&
              fs_json_add_u64(o, "cache_misses", E.misses) &&
              fs_json_add_u64(o, "coalesced", E.coalesced) &&
              fs_json_add_u64(o, "requests", E.requests) &&
              fs_json_add_u64(o, "failures", E.failures_total) &&
              fs_json_add_u64(o, "fast_failures", E.fast_failures) &&
              fs_json_add_u64(o, "cache_entries", E.entries) &&
              fs_json_add_u64(o, "cache_bytes", E.bytes) &&
              fs_json_add_text(o, "last_error", E.last_error[0] ? E.last_error : NULL);
    pthread_mutex_unlock(&E.mu);
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

ap_status fs_embed_endpoint(const char *url, const char *key_file, ap_err *err)
{
    /* Queries wait on the service: fewer attempts and a shorter timeout than a build's,
     * the breaker does the rest. */
    ap_embed_endpoint ep = {.url = url, .key_file = key_file, .timeout_ms = 10000, .attempts = 2};
    return ap_embed_set_endpoint(&ep, err);
}

char *fs_embed_health_json(const fs_gen *g, const char *status, size_t *len)
{
    size_t n = 0;
    char *base = fs_health_json(g, status, &n);
    cJSON *o = base ? cJSON_ParseWithLength(base, n) : NULL;
    free(base);
    cJSON *emb = o ? fs_embed_status(g->view) : NULL;
    char *s = emb && cJSON_AddItemToObject(o, "embed", emb) ? fs_json_print(o, 0, len) : NULL;
    if (o && !s && emb && !cJSON_GetObjectItemCaseSensitive(o, "embed")) cJSON_Delete(emb);
    cJSON_Delete(o);
    return s;
}
