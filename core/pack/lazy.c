/* Range verification against pack.digests: see lazy.h. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "annpack/log.h"
#include "digest.h"
#include "lazy.h"
#include "parallel.h"

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

enum { UNCHECKED = 0, BUSY = 1, GOOD = 2, BAD = 3 };

typedef struct lz_file {
    const ap_digest_file *d; /* NULL: not covered */
    const ap_src *src;
    const uint8_t *map; /* the file as its reader maps it, once mapped (else NULL) */
    uint8_t *state;     /* per range, accessed with __atomic builtins */
} lz_file;

struct ap_lazy {
    lz_file f[AP_LZ_COUNT];
    pthread_mutex_t mu; /* guards the BUSY -> GOOD/BAD transitions for waiters */
    pthread_cond_t cv;
    atomic_uint_fast64_t hashed, bad;
    bool log;        /* log each bad range (once: it stays bad) */
    int cursor_file; /* where ap_lazy_step goes on (under mu) */
    uint32_t cursor_range;
    char bad_msg[AP_ERR_MSG_MAX];
};

ap_status ap_lazy_new(const ap_digest_file *const files[AP_LZ_COUNT],
                      const ap_src *const src[AP_LZ_COUNT], bool log, ap_lazy **out, ap_err *err)
{
    *out = NULL;
    ap_lazy *z = calloc(1, sizeof *z);
    if (!z) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    z->log = log;
    pthread_mutex_init(&z->mu, NULL);
    pthread_cond_init(&z->cv, NULL);
    for (int i = 0; i < AP_LZ_COUNT; i++) {
        if (!files[i]) continue;
        z->f[i].d = files[i];
        z->f[i].src = src[i];
        z->f[i].state = calloc(files[i]->n_ranges ? files[i]->n_ranges : 1, 1);
        if (!z->f[i].state) {
            ap_lazy_free(z);
            return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        }
    }
    *out = z;
    return AP_OK;
}

void ap_lazy_free(ap_lazy *z)
{
    if (!z) return;
    for (int i = 0; i < AP_LZ_COUNT; i++)
        free(z->f[i].state);
    pthread_mutex_destroy(&z->mu);
    pthread_cond_destroy(&z->cv);
    free(z);
}

void ap_lazy_set_map(ap_lazy *z, int f, const uint8_t *map)
{
    if (z && z->f[f].d) z->f[f].map = map;
}

int ap_lazy_covers(const ap_lazy *z, int f)
{
    return z && z->f[f].d != NULL;
}

/* What range k of file f is, for messages. */
static void describe(const lz_file *lf, int f, uint32_t k, char *out, size_t cap)
{
    const ap_digest_file *d = lf->d;
    ap_digest_range r = ap_digest_range_at(d, k);
    size_t nl = strlen(d->name);
    bool frames = nl > 4 && strcmp(d->name + nl - 4, ".zst") == 0;
    bool sidecar = f == AP_LZ_SQ8 || f == AP_LZ_BITS;
    if (f != AP_LZ_META && k > 0 && (sidecar || k + 1 < d->n_ranges))
        snprintf(out, cap, "list %u", k - 1);
    else if (f == AP_LZ_ANNPACK)
        snprintf(out, cap, "%s", k == 0 ? "header and centroids" : "offset table");
    else if (sidecar)
        snprintf(out, cap, "header");
    else if (!frames)
        snprintf(out, cap, "chunk %u", k);
    else if (k + 1 < d->n_ranges)
        snprintf(out, cap, "frame %u", k);
    else
        snprintf(out, cap, "seek table");
    size_t n = strlen(out);
    snprintf(out + n, cap - n, " (range %u, %llu bytes at %llu)", k, (unsigned long long)r.len,
             (unsigned long long)r.off);
}

/* A range of a source file, read from its start (ap_sha256_stream reads from 0). */
typedef struct at_range {
    const ap_src *src;
    uint64_t base;
} at_range;

static ap_status range_read(const void *ctx, uint64_t off, void *buf, size_t len, ap_err *err)
{
    const at_range *r = ctx;
    return ap_src_read_at(r->src, r->base + off, buf, len, err);
}

/* Hashes range k through the reader's mapping: the page tables are populated in one call
 * (so the scan that follows takes no page faults and no bytes are copied) and a page that
 * vanished (a truncated file) is an error here, not a SIGBUS. 0 when it hashed. */
static int hash_mapped(const lz_file *lf, ap_digest_range r, int *good)
{
    if (!lf->map || r.len == 0) return -1;
    uintptr_t a = (uintptr_t)(lf->map + r.off) & ~(uintptr_t)4095;
    size_t n = (size_t)((uintptr_t)(lf->map + r.off + r.len) - a);
    if (madvise((void *)a, n, MADV_POPULATE_READ) != 0) return -1;
    uint8_t d[AP_SHA256_BYTES];
    ap_sha256_raw(lf->map + r.off, (size_t)r.len, d);
    *good = memcmp(d, r.sha256, AP_SHA256_BYTES) == 0;
    return 0;
}

/* Reads and hashes range k (through the mapping when there is one, else from the
 * descriptor): *good when it matches its digest. */
static ap_status hash_range(const lz_file *lf, uint32_t k, int *good, ap_err *err)
{
    ap_digest_range r = ap_digest_range_at(lf->d, k);
    if (hash_mapped(lf, r, good) == 0) return AP_OK;
    at_range ctx = {lf->src, r.off};
    char hex[AP_SHA256_HEX], want[AP_SHA256_HEX];
    ap_status st = ap_sha256_stream(range_read, &ctx, r.len, hex, err);
    if (st) return st;
    static const char hexd[] = "0123456789abcdef";
    for (int i = 0; i < AP_SHA256_BYTES; i++) {
        want[2 * i] = hexd[r.sha256[i] >> 4];
        want[2 * i + 1] = hexd[r.sha256[i] & 15];
    }
    want[2 * AP_SHA256_BYTES] = '\0';
    *good = strcmp(hex, want) == 0;
    return AP_OK;
}

ap_status ap_lazy_check_range(ap_lazy *z, int f, uint32_t k, ap_err *err)
{
    lz_file *lf = &z->f[f];
    if (!lf->d) return AP_OK;
    uint8_t *s = &lf->state[k];
    for (;;) {
        uint8_t v = __atomic_load_n(s, __ATOMIC_ACQUIRE);
        if (v == GOOD) return AP_OK;
        if (v == BAD) break;
        uint8_t un = UNCHECKED;
        if (v == UNCHECKED &&
            __atomic_compare_exchange_n(s, &un, BUSY, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
            int good = 0;
            ap_status st = hash_range(lf, k, &good, err);
            atomic_fetch_add(&z->hashed, 1);
            pthread_mutex_lock(&z->mu);
            __atomic_store_n(s, st ? UNCHECKED : good ? GOOD : BAD, __ATOMIC_RELEASE);
            pthread_cond_broadcast(&z->cv);
            pthread_mutex_unlock(&z->mu);
            if (st) return st; /* a read error: not a verdict, tried again next time */
            if (good) return AP_OK;
            char what[160];
            describe(lf, f, k, what, sizeof what);
            ap_err e;
            ap_err_set(&e, AP_ERR_VERIFY, "%s: %s does not match %s (corrupt or changed)",
                       lf->src->name, what, AP_DIGESTS);
            pthread_mutex_lock(&z->mu);
            if (!z->bad_msg[0]) snprintf(z->bad_msg, sizeof z->bad_msg, "%s", e.msg);
            pthread_mutex_unlock(&z->mu);
            atomic_fetch_add(&z->bad, 1);
            if (z->log) ap_log(AP_LOG_ERROR, "verify", "%s", e.msg); /* once: it stays bad */
            break;
        }
        pthread_mutex_lock(&z->mu);
        while (__atomic_load_n(s, __ATOMIC_ACQUIRE) == BUSY)
            pthread_cond_wait(&z->cv, &z->mu);
        pthread_mutex_unlock(&z->mu);
    }
    char what[160];
    describe(lf, f, k, what, sizeof what);
    return ap_err_set(err, AP_ERR_VERIFY, "%s: %s does not match %s (corrupt or changed)",
                      lf->src->name, what, AP_DIGESTS);
}

ap_status ap_lazy_check(ap_lazy *z, int f, uint64_t off, uint64_t len, ap_err *err)
{
    if (!z || !z->f[f].d) return AP_OK;
    uint32_t a, b;
    ap_digest_overlap(z->f[f].d, off, len, &a, &b);
    for (uint32_t k = a; k < b; k++) {
        ap_status st = ap_lazy_check_range(z, f, k, err);
        if (st) return st;
    }
    return AP_OK;
}

/* ap_lazy_check_all's work: every range of every file in one sequence, taken one at a
 * time by each part (ranges differ in size: a shared cursor balances them), the first
 * failure in sequence order kept, so the error does not depend on the thread count. */
typedef struct check_all {
    ap_lazy *z;
    uint64_t n; /* ranges in all */
    atomic_uint_fast64_t next;
    pthread_mutex_t mu;
    uint64_t bad_at; /* the lowest failing range in the sequence (n: none) */
    ap_err bad;
} check_all;

static void check_all_part(void *ctx, uint32_t p, uint32_t nparts)
{
    (void)p;
    (void)nparts;
    check_all *c = ctx;
    for (;;) {
        uint64_t i = atomic_fetch_add(&c->next, 1);
        if (i >= c->n) return;
        int f = 0;
        uint64_t k = i;
        while (k >= (c->z->f[f].d ? c->z->f[f].d->n_ranges : 0)) {
            k -= c->z->f[f].d ? c->z->f[f].d->n_ranges : 0;
            f++;
        }
        ap_err e;
        if (ap_lazy_check_range(c->z, f, (uint32_t)k, &e)) {
            pthread_mutex_lock(&c->mu);
            if (i < c->bad_at) {
                c->bad_at = i;
                c->bad = e;
            }
            pthread_mutex_unlock(&c->mu);
        }
    }
}

ap_status ap_lazy_check_all(ap_lazy *z, ap_err *err)
{
    check_all c = {.z = z};
    for (int f = 0; f < AP_LZ_COUNT; f++)
        c.n += z->f[f].d ? z->f[f].d->n_ranges : 0;
    c.bad_at = c.n;
    atomic_init(&c.next, 0);
    pthread_mutex_init(&c.mu, NULL);
    ap_parallel_for(ap_parallel_parts(c.n, 4), check_all_part, &c);
    pthread_mutex_destroy(&c.mu);
    if (c.bad_at == c.n) return AP_OK;
    if (err) *err = c.bad;
    return c.bad.status;
}

ap_status ap_lazy_step(ap_lazy *z, uint64_t max_bytes, bool *done, ap_err *err)
{
    uint64_t spent = 0;
    *done = false;
    pthread_mutex_lock(&z->mu);
    int f = z->cursor_file;
    uint32_t k = z->cursor_range;
    pthread_mutex_unlock(&z->mu);
    for (; f < AP_LZ_COUNT; f++, k = 0) {
        const ap_digest_file *d = z->f[f].d;
        for (; d && k < d->n_ranges; k++) {
            if (spent && spent >= max_bytes) goto out;
            uint8_t s = __atomic_load_n(&z->f[f].state[k], __ATOMIC_ACQUIRE);
            if (s == GOOD || s == BAD) continue;
            ap_err e;
            ap_status st = ap_lazy_check_range(z, f, k, &e);
            if (st && st != AP_ERR_VERIFY) {
                if (err) *err = e;
                return st;
            }
            spent += ap_digest_range_at(d, k).len + 1;
        }
    }
    *done = true;
out:
    pthread_mutex_lock(&z->mu);
    if (f > z->cursor_file || (f == z->cursor_file && k > z->cursor_range)) {
        z->cursor_file = f;
        z->cursor_range = k;
    }
    pthread_mutex_unlock(&z->mu);
    return AP_OK;
}

void ap_lazy_counts(ap_lazy *z, uint64_t *hashed, uint64_t *bad, uint64_t *total, char *bad_msg,
                    size_t cap)
{
    uint64_t t = 0;
    for (int f = 0; z && f < AP_LZ_COUNT; f++)
        if (z->f[f].d) t += z->f[f].d->n_ranges;
    *hashed = z ? atomic_load(&z->hashed) : 0;
    *bad = z ? atomic_load(&z->bad) : 0;
    *total = t;
    if (!cap) return;
    bad_msg[0] = '\0';
    if (!z) return;
    pthread_mutex_lock(&z->mu);
    snprintf(bad_msg, cap, "%s", z->bad_msg);
    pthread_mutex_unlock(&z->mu);
}
