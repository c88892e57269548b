/* The background verifier: see verifier.h. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

#include "config.h"
#include "generation.h"
#include "guard.h"
#include "verifier.h"

static pthread_t g_thread;
static bool g_started;
static atomic_bool g_stop;

typedef struct step_call {
    fs_gen *g;
    bool done;
    ap_err err;
} step_call;

/* One slice's worth of ranges (hashing reads the mappings: run guarded, as answers are). */
static int step(void *arg)
{
    step_call *c = arg;
    ap_status st = ap_view_verify_step(c->g->view, (uint64_t)g_cfg.verify_rate * 100 * 1000,
                                       &c->done, &c->err);
    return st ? -EIO : 0;
}

/* Slices of 100 ms: rate MB/s is rate * 100 KB per slice. */
static void *run(void *arg)
{
    (void)arg;
    uint64_t done_gen = 0;
    const struct timespec slice = {0, 100 * 1000 * 1000};
    while (!atomic_load(&g_stop)) {
        fs_gen *g = fs_gen_current();
        if (g && g->number != done_gen && !atomic_load(&g->changed)) {
            step_call c = {.g = g};
            int rc = fs_guarded(step, &c, "background verifier");
            if (rc)
                ap_log(AP_LOG_WARN, "verify", "background verifier: %s",
                       c.err.msg[0] ? c.err.msg : "a source file vanished");
            if (c.done || rc) done_gen = g->number;
        }
        fs_gen_unref(g);
        nanosleep(&slice, NULL);
    }
    return NULL;
}

void fs_verifier_start(void)
{
    if (!g_cfg.verify_lazy || !g_cfg.verify_rate) return;
    atomic_store(&g_stop, false);
    g_started = pthread_create(&g_thread, NULL, run, NULL) == 0;
    if (!g_started) ap_log(AP_LOG_WARN, "verify", "background verifier: cannot start a thread");
}

void fs_verifier_stop(void)
{
    if (!g_started) return;
    atomic_store(&g_stop, true);
    pthread_join(g_thread, NULL);
    g_started = false;
}
