/* Lazy range verification (pack/lazy.c) under concurrency: 8 threads check every list of
 * a pack opened with lazy hashing, in different orders, while the background walk
 * (ap_view_verify_step) runs: every range ends with a verdict and was hashed exactly once
 * (ranges_hashed == ranges_total); with one list corrupted, every thread that needs it gets
 * AP_ERR_VERIFY naming it, and it is counted bad once. Also: a pack opened without hashing
 * checks nothing; a table whose listed hash is wrong refuses the open. */
/* Tests reach below the stable API (annpack/experimental.h). */
#define AP_EXPERIMENTAL
#include <pthread.h>
#include <stdlib.h>

#include "annpack/trust.h"
#include "packs.h"
#include "view.h"

enum { THREADS = 8 };

typedef struct job {
    const ap_view *v;
    int id;
    int failures; /* AP_ERR_VERIFY results */
    int other;    /* any other failure */
    char msg[AP_ERR_MSG_MAX];
} job;

static void *checker(void *arg)
{
    job *j = arg;
    const ap_pack *p = j->v->layers[0].pack;
    uint32_t nl = ap_view_n_lists(j->v);
    for (int round = 0; round < 3; round++)
        for (uint32_t i = 0; i < nl; i++) {
            uint32_t l = (i + (uint32_t)j->id) % nl;
            ap_err e = {0};
            ap_status st = ap_pack_check_list(p, l, &e);
            if (st == AP_ERR_VERIFY) {
                j->failures++;
                snprintf(j->msg, sizeof j->msg, "%s", e.msg);
            } else if (st) {
                j->other++;
            }
        }
    return NULL;
}

static void *walker(void *arg)
{
    job *j = arg;
    bool done = false;
    while (!done) {
        ap_err e = {0};
        if (ap_view_verify_step(j->v, 4096, &done, &e)) {
            j->other++;
            return NULL;
        }
    }
    return NULL;
}

/* Runs the checkers and the walker; returns the view's counters. */
static ap_view_verify run(const ap_view *v, job *jobs)
{
    pthread_t t[THREADS + 1];
    for (int i = 0; i <= THREADS; i++) {
        jobs[i] = (job){.v = v, .id = i};
        pthread_create(&t[i], NULL, i < THREADS ? checker : walker, &jobs[i]);
    }
    for (int i = 0; i <= THREADS; i++)
        pthread_join(t[i], NULL);
    ap_view_verify vi;
    ap_view_verify_info(v, &vi);
    return vi;
}

static void good_pack(void)
{
    char *p = pk_build("good", 0, 1);
    ap_trust_policy pol = {.hash_files = true, .lazy = true};
    ap_view *v = NULL;
    ap_err err = {0};
    CHECK_OK(ap_view_open_trusted(p, &pol, &v, NULL, &err), &err);
    ap_view_verify vi;
    ap_view_verify_info(v, &vi);
    /* the heads only: ANNP header and offset table, sidecar header (plain rows: no seek
     * table) */
    CHECK(vi.digests && vi.ranges_hashed == 3 && vi.ranges_total > 3 && vi.ranges_bad == 0);
    job jobs[THREADS + 1];
    vi = run(v, jobs);
    CHECK(vi.ranges_hashed == vi.ranges_total && vi.ranges_bad == 0 && !vi.first_bad[0]);
    for (int i = 0; i <= THREADS; i++)
        CHECK(jobs[i].failures == 0 && jobs[i].other == 0);
    ap_view_close(v);
    /* without hashing nothing is checked */
    ap_trust_policy none = {0};
    CHECK_OK(ap_view_open_trusted(p, &none, &v, NULL, &err), &err);
    ap_view_verify_info(v, &vi);
    CHECK(!vi.digests && vi.ranges_total == 0);
    ap_view_close(v);
    free(p);
}

static void corrupt_list(void)
{
    char *p = pk_build("bad", 0, 1);
    char *d = pk_join(p, AP_DIGESTS);
    /* range 2 of pack.annpack = list 1: flip its last byte (offset + length - 1) */
    size_t len;
    char *t = pk_slurp(d, &len);
    ap_digest_table tab;
    ap_err err = {0};
    CHECK_OK(ap_digest_table_parse((const uint8_t *)t, len, d, &tab, &err), &err);
    ap_digest_range r = ap_digest_range_at(ap_digest_table_find(&tab, AP_ANNPACK), 2);
    char *a = pk_join(p, AP_ANNPACK);
    pk_flip(a, (long)(r.off + r.len - 1), 1);
    ap_digest_table_free(&tab);
    ap_trust_policy pol = {.hash_files = true, .lazy = true};
    ap_view *v = NULL;
    CHECK_OK(ap_view_open_trusted(p, &pol, &v, NULL, &err), &err);
    job jobs[THREADS + 1];
    ap_view_verify vi = run(v, jobs);
    CHECK(vi.ranges_hashed == vi.ranges_total && vi.ranges_bad == 1);
    CHECK(strstr(vi.first_bad, "/pack.annpack: list 1 (range 2, ") != NULL);
    for (int i = 0; i < THREADS; i++) {
        CHECK(jobs[i].failures == 3 && jobs[i].other == 0); /* each of 3 rounds */
        CHECK(strstr(jobs[i].msg, "list 1 (range 2, ") != NULL);
    }
    ap_view_close(v);
    /* eager (verify=full): refused, naming the list */
    ap_trust_policy full = {.hash_files = true};
    CHECK_ERR(ap_view_open_trusted(p, &full, &v, NULL, &err), AP_ERR_VERIFY, &err,
              "/pack.annpack: list 1 (range 2, ");
    /* a table that does not match its listed hash */
    pk_flip(a, (long)(r.off + r.len - 1), 1);
    pk_flip(d, 100, 1);
    CHECK_ERR(ap_view_open_trusted(p, &pol, &v, NULL, &err), AP_ERR_VERIFY, &err,
              "/pack.digests: sha256 mismatch");
    free(t);
    free(a);
    free(d);
    free(p);
}

int main(void)
{
    pk_root = fx_scratch("lazy");
    good_pack();
    corrupt_list();
    return check_done();
}
