/* Reloading (reload.h): SIGHUP (and, with -o watch, the root manifest or its signature
 * being replaced) wakes the reload thread, which verifies the new packset completely and
 * swaps it in; a packset that fails is refused with a log line and the old generation
 * keeps serving; a root manifest identical to the one served is "nothing new" (INFO). The
 * same thread asks the kernel to forget computed names when their inodes go over budget
 * (inode.c): notifications must not come from a request handler. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "cache.h"
#include "generation.h"
#include "inode.h"
#include "reload.h"
#include "session.h"
#include "state.h"
#include "stats.h"

static int r_pipe[2] = {-1, -1};
static int r_inotify = -1;
static pthread_t r_thread;
static int r_running;

void fs_reload_request(void)
{
    /* Async-signal-safe: one byte into a non-blocking pipe. */
    if (r_pipe[1] >= 0) {
        char c = 'r';
        ssize_t w = write(r_pipe[1], &c, 1);
        (void)w;
    }
}

void fs_trim_request(void)
{
    if (r_pipe[1] >= 0) {
        char c = 't';
        ssize_t w = write(r_pipe[1], &c, 1);
        (void)w;
    }
}

/* Whether the source's root manifest is byte for byte the one cur serves: a reload then has
 * nothing to do (the second inotify event of a publish, a SIGHUP with nothing new). */
static int nothing_new(const fs_gen *cur)
{
    char *path = malloc(strlen(g_cfg.source) + sizeof "/" AP_MANIFEST);
    if (!path) return 0;
    sprintf(path, "%s/%s", g_cfg.source, AP_MANIFEST);
    char *buf = NULL;
    size_t len = 0, cl = 0;
    ap_err err = {0};
    const char *raw = ap_view_manifest_raw(cur->view, &cl);
    int same = fs_read_file(path, AP_MAX_MANIFEST_BYTES, &buf, &len, &err) == AP_OK && len == cl &&
               memcmp(buf, raw, len) == 0;
    free(buf);
    free(path);
    return same;
}

static void do_reload(void)
{
    fs_gen *cur = fs_gen_current();
    /* After a file changed in place the same version is verified again from scratch. */
    int changed = atomic_load(&cur->changed);
    if (!changed && nothing_new(cur)) {
        atomic_fetch_add(&g_stats.reloads_noop, 1);
        ap_log(AP_LOG_INFO, "reload",
               "nothing new: generation %llu keeps serving version %llu "
               "(the root manifest is unchanged)",
               (unsigned long long)cur->number, (unsigned long long)cur->version);
        fs_gen_unref(cur);
        return;
    }
    ap_err err = {0};
    fs_gen *next = NULL;
    ap_status st = fs_gen_load(&g_cfg, cur->number + 1, cur->version, !changed, &next, &err);
    /* The new version is persisted before it is served: a restart never accepts less. */
    if (!st && g_cfg.state) st = fs_state_save(g_cfg.state, next->version, &err);
    if (st) {
        fs_gen_unref(next);
        atomic_fetch_add(&g_stats.reload_failures, 1);
        ap_log(AP_LOG_ERROR, "reload", "refused, generation %llu keeps serving: %s",
               (unsigned long long)cur->number, err.msg);
        fs_gen_unref(cur);
        return;
    }
    uint64_t number = next->number, version = next->version;
    fs_gen_install(next);
    fs_gen_unref(cur);
    atomic_fetch_add(&g_stats.reloads, 1);
    /* Drop what the kernel (and so nginx's open_file_cache) may hold of the old
     * generation's names; files already open keep their (immutable) inodes. */
    fs_invalidate_generation(g_se);
    fs_cache_drop_others(number);
    ap_log(AP_LOG_INFO, "reload", "generation %llu serving version %llu",
           (unsigned long long)number, (unsigned long long)version);
}

static void *reload_main(void *arg)
{
    (void)arg;
    for (;;) {
        struct pollfd p[2] = {{.fd = r_pipe[0], .events = POLLIN},
                              {.fd = r_inotify, .events = POLLIN}};
        int n = poll(p, r_inotify >= 0 ? 2 : 1, -1);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) break;
        int want = 0, trim = 0;
        if (p[0].revents & POLLIN) {
            char buf[64];
            ssize_t r = read(r_pipe[0], buf, sizeof buf);
            if (r == 0) break;
            for (ssize_t i = 0; i < r; i++) {
                if (buf[i] == 'q') return NULL;
                if (buf[i] == 't')
                    trim = 1;
                else
                    want = 1;
            }
        }
        if (trim) fs_invalidate_results(g_se);
        if (r_inotify >= 0 && (p[1].revents & POLLIN)) {
            char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
            ssize_t r = read(r_inotify, buf, sizeof buf);
            for (char *q = buf; r > 0 && q < buf + r;) {
                struct inotify_event *e = (struct inotify_event *)(void *)q;
                if (e->len && (!strcmp(e->name, "pack.manifest.json") ||
                               !strcmp(e->name, "pack.manifest.json.sig")))
                    want = 1;
                q += sizeof *e + e->len;
            }
            /* Let a writer finish the manifest + signature pair before verifying. */
            if (want) usleep(200 * 1000);
        }
        if (want) do_reload();
    }
    return NULL;
}

int fs_reload_start(void)
{
    if (pipe2(r_pipe, O_CLOEXEC | O_NONBLOCK) != 0) return -1;
    if (g_cfg.watch) {
        r_inotify = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
        if (r_inotify < 0 ||
            inotify_add_watch(r_inotify, g_cfg.source, IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
            ap_log(AP_LOG_ERROR, "reload", "cannot watch %s: %s", g_cfg.source, strerror(errno));
            return -1;
        }
    }
    if (pthread_create(&r_thread, NULL, reload_main, NULL) != 0) return -1;
    r_running = 1;
    return 0;
}

void fs_reload_stop(void)
{
    if (!r_running) return;
    char c = 'q';
    ssize_t w = write(r_pipe[1], &c, 1);
    (void)w;
    pthread_join(r_thread, NULL);
    r_running = 0;
}
