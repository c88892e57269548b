/* Process set-up (docs/MOUNT.md, "Process hygiene") and the log= file sink. */
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "annpack/annpack.h"
#include "process.h"

static FILE *g_logf;

/* OpenBLAS starts its worker threads when the library loads; they do not survive the
 * daemon's fork and a BLAS call could then hang. Re-executing with one BLAS thread makes
 * OpenBLAS start none. A foreground daemon does not fork. */
static void single_threaded_blas(char **argv)
{
    const char *v = getenv("OPENBLAS_NUM_THREADS");
    if (v && !strcmp(v, "1")) return;
    /* In the foreground (-f, or -d which implies it: how systemd runs the daemon) nothing
     * forks: its threads may stay, idle, and calls run on the caller. This saves a second
     * start-up (~30 ms of dynamic loading) on every mount. */
    for (int i = 1; argv[i]; i++)
        if (!strcmp(argv[i], "-f") || !strcmp(argv[i], "-d")) {
            ap_blas_single_thread();
            return;
        }
    setenv("OPENBLAS_NUM_THREADS", "1", 1);
    /* Through the resolved path, so the process keeps its name (comm): pgrep annpackfs and
     * killall -HUP annpackfs find it (exec of /proc/self/exe would name it "exe"). */
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        execv(self, argv);
    }
    execv("/proc/self/exe", argv);
    /* If re-exec is impossible, carry on: searches then run without BLAS threads. */
}

/* Every layer keeps its files open (pack.annpack, the rows and their index, pack.sq8:
 * three or four descriptors), so a packset of a few hundred deltas passes the usual soft
 * limit of 1024. The hard limit is what the administrator allows (LimitNOFILE=); nothing
 * in the daemon uses select(), which would mind descriptors past 1023. */
static void raise_descriptor_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max) return;
    rl.rlim_cur = rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl); /* best effort: a layer past it is then refused */
}

int fs_process_init(char **argv)
{
    ap_err err = {0};
    if (ap_env_check(&err)) { /* a bad ANNPACK_* value: a usage error */
        fprintf(stderr, "annpackfs: %s\n", err.msg);
        return 2;
    }
    single_threaded_blas(argv);
    /* Large results (a k=1000 query is hundreds of KB) are mapped and unmapped with their
     * buffers: glibc's adaptive threshold would otherwise move them into per-thread arenas
     * that keep the memory after the cache let go of it (docs/MOUNT.md, "Memory"). */
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    /* One arena for every thread: a worker's own arena grows a page at a time by an
     * mprotect call as the cache fills (one per query, docs/BENCHMARKS.md, issue 18); the
     * main arena grows by sbrk with a 128 KiB pad. A query's few small allocations do not
     * contend on two cores. */
    mallopt(M_ARENA_MAX, 1);
    raise_descriptor_limit();
    ap_log_set_program("annpackfs");
    return 0;
}

static void log_to_file(ap_log_level level, const char *component, const char *msg, void *ud)
{
    (void)ud;
    static const char *names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
    time_t t = time(NULL);
    struct tm tm;
    char ts[32];
    gmtime_r(&t, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    fprintf(g_logf, "%s annpackfs: %s: %s: %s\n", ts, names[level & 3], component, msg);
    fflush(g_logf);
}

int fs_log_open(const char *path)
{
    g_logf = fopen(path, "ae");
    if (!g_logf) {
        fprintf(stderr, "annpackfs: log file %s: %s\n", path, strerror(errno));
        return 1;
    }
    ap_log_set_sink(log_to_file, NULL);
    return 0;
}

void fs_log_close(void)
{
    if (!g_logf) return;
    ap_log_set_sink(NULL, NULL); /* back to stderr */
    fclose(g_logf);
    g_logf = NULL;
}

bool fs_log_to_file(void)
{
    return g_logf != NULL;
}
