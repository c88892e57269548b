/* The background verifier: see verifier.h. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

#include "config.h"
#include "generation.h"
#include "verifier.h"

static pthread_t g_thread;
static bool g_started;
static atomic_bool g_stop;

/* Slices of 100 ms: rate MB/s is rate * 100 KB per slice. */
static void *run(void *arg)
{
    (void)arg;
    uint64_t done_gen = 0;
    const struct timespec slice = {0, 100 * 1000 * 1000};
    while (!atomic_load(&g_stop)) {
        fs_gen *g = fs_gen_current();
        if (g && g->number != done_gen) {
            bool done = false;
            ap_err err = {0};
            ap_status st =
                ap_view_verify_step(g->view, (uint64_t)g_cfg.verify_rate * 100 * 1000, &done, &err);
            if (st) ap_log(AP_LOG_WARN, "verify", "background verifier: %s", err.msg);
            if (done || st) done_gen = g->number;
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
