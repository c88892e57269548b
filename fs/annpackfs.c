/* annpackfs — mounts a signed packset (or a pack) as one verified virtual pack.
 *
 *   annpackfs SOURCE MOUNTPOINT [-o pubkey=FILE,probe=N,k=N,verify=full|none,cache_mb=N,
 *                                   watch,state=FILE,state_init,allow_expired,
 *                                   on_expiry=serve|refuse,log=FILE,<FUSE options>] [-f] [-d]
 *
 * Order matters: check the mountpoint and the state, verify before mounting (a refusal
 * leaves nothing mounted), mount, then daemonise (so the command returns only once the
 * mount is live), then start threads (fork keeps only the calling thread). */
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <mntent.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"

#include <fuse_lowlevel.h>

fs_config g_cfg;
struct fuse_session *g_se;
static FILE *g_logf;
static char *g_mountpoint; /* the second non-option argument, as given */

typedef struct opts {
    char *pubkey, *state, *log, *verify, *scan, *on_expiry;
    unsigned k, probe, cache_mb, rerank;
    int watch, help, version, state_init, allow_expired;
} opts;

#define OPT(t, p)                                                                                  \
    {                                                                                              \
        t, offsetof(opts, p), 1                                                                    \
    }
// clang-format off
static const struct fuse_opt OPTS[] = {
    OPT("pubkey=%s", pubkey),   OPT("state=%s", state),       OPT("log=%s", log),
    OPT("verify=%s", verify),   OPT("k=%u", k),               OPT("probe=%u", probe),
    OPT("cache_mb=%u", cache_mb), OPT("watch", watch),         OPT("-h", help),
    OPT("scan=%s", scan),       OPT("rerank=%u", rerank),     OPT("state_init", state_init),
    OPT("allow_expired", allow_expired), OPT("on_expiry=%s", on_expiry),
    OPT("--help", help),        OPT("-V", version),           OPT("--version", version),
    FUSE_OPT_END};
// clang-format on

static void usage(void)
{
    printf("usage: annpackfs SOURCE MOUNTPOINT [-o OPTIONS] [-f] [-d]\n"
           "\n"
           "Mounts SOURCE (a packset or a pack) read-only as one verified virtual pack:\n"
           "pack.manifest.json, pack.annpack, pack.meta.jsonl (and pack.sq8),\n"
           "query/<text>[?k=N&probe=N], vquery/[k=N&probe=N/]<base64url vector>, doc/<id>,\n"
           "health, stats. See docs/MOUNT.md.\n"
           "\n"
           "options:\n"
           "  -o pubkey=FILE     require a valid Ed25519 signature by a key in FILE\n"
           "  -o verify=full|none  hash every file before serving (default full)\n"
           "  -o k=N             default results per query (default 10, 1..1000)\n"
           "  -o probe=N         default lists probed (default 8, 1..65536)\n"
           "  -o scan=auto|f16|sq8  how lists are scanned (default auto: the int8 sidecar\n"
           "                     when the pack has one, then exact re-ranking)\n"
           "  -o rerank=N        sq8 candidates re-scored exactly (default max(64, 8k))\n"
           "  -o cache_mb=N      query result cache size (default 64)\n"

           "  -o watch           reload when the root manifest or signature is replaced\n"
           "  -o state=FILE      persist the highest accepted version (replay protection);\n"
           "                     a missing or unreadable FILE refuses the mount\n"
           "  -o state_init      the first mount: create a missing state= FILE\n"
           "  -o allow_expired   accept a manifest whose \"expires\" has passed\n"
           "  -o on_expiry=serve|refuse  once \"expires\" passes while mounted: keep answering\n"
           "                     (default) or refuse answers with EKEYEXPIRED\n"
           "  -o log=FILE        append log lines to FILE (default stderr)\n"
           "  -f                 stay in the foreground;  -d  debug (implies -f)\n"
           "  other -o options go to FUSE (allow_other, ...). SIGHUP reloads.\n");
}

/* The first non-option argument is SOURCE; the second, MOUNTPOINT, goes to FUSE. */
static int opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
    (void)data;
    (void)outargs;
    if (key == FUSE_OPT_KEY_NONOPT && !g_cfg.source) {
        char real[PATH_MAX];
        if (!realpath(arg, real)) {
            fprintf(stderr, "annpackfs: %s: %s\n", arg, strerror(errno));
            exit(1);
        }
        g_cfg.source = strdup(real);
        return 0;
    }
    if (key == FUSE_OPT_KEY_NONOPT && !g_mountpoint) g_mountpoint = strdup(arg);
    return 1; /* FUSE takes the mountpoint */
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

static void on_sighup(int sig)
{
    (void)sig;
    fs_reload_request();
}

/* OpenBLAS starts its worker threads when the library loads; they do not survive the
 * daemon's fork and a BLAS call could then hang. Re-executing with one BLAS thread makes
 * OpenBLAS start none. */
static void single_threaded_blas(char **argv)
{
    const char *v = getenv("OPENBLAS_NUM_THREADS");
    if (v && !strcmp(v, "1")) return;
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

/* The mountpoint must be an existing directory with nothing mounted on it: a second
 * daemon would silently stack on the first. Returns the exit status, 0 when fine. */
static int check_mountpoint(void)
{
    if (!g_mountpoint) {
        fprintf(stderr, "annpackfs: missing MOUNTPOINT (see --help)\n");
        return 2;
    }
    struct stat sb;
    char real[PATH_MAX];
    if (stat(g_mountpoint, &sb) != 0 || !realpath(g_mountpoint, real)) {
        if (errno == ENOENT)
            fprintf(stderr,
                    "annpackfs: %s: the mountpoint does not exist (create the directory "
                    "first)\n",
                    g_mountpoint);
        else
            fprintf(stderr, "annpackfs: %s: %s\n", g_mountpoint, strerror(errno));
        return 1;
    }
    if (!S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "annpackfs: %s: the mountpoint is not a directory\n", g_mountpoint);
        return 1;
    }
    FILE *f = setmntent("/proc/self/mounts", "re");
    if (!f) return 0; /* no mount table to read: let the mount itself decide */
    struct mntent me;
    char buf[3 * PATH_MAX];
    int rc = 0;
    while (!rc && getmntent_r(f, &me, buf, sizeof buf)) {
        if (strcmp(me.mnt_dir, real) != 0) continue;
        fprintf(stderr,
                "annpackfs: refusing to mount %s: %s is already a mount point (%s %s); "
                "unmount it first (annpack umount %s)\n",
                g_cfg.source, real, me.mnt_type, me.mnt_fsname, real);
        rc = 1;
    }
    endmntent(f);
    return rc;
}

static void free_opts(opts *o, struct fuse_args *args)
{
    free(o->pubkey);
    free(o->state);
    free(o->log);
    free(o->verify);
    free(o->scan);
    free(o->on_expiry);
    free(g_mountpoint);
    g_mountpoint = NULL;
    fuse_opt_free_args(args);
    free(g_cfg.source);
    g_cfg.source = NULL;
}

/* Verifies, mounts and serves; returns the exit status. */
static int serve(opts *o, struct fuse_args *args)
{
    if (o->help) {
        usage();
        return 0;
    }
    if (o->version) {
        printf("annpackfs %s (libfuse %s)\n", ap_version(), fuse_pkgversion());
        return 0;
    }
    if (!g_cfg.source) {
        fprintf(stderr, "annpackfs: missing SOURCE and MOUNTPOINT (see --help)\n");
        return 2;
    }
    if (o->k < 1 || o->k > AP_MAX_K || o->probe < 1 || o->probe > AP_MAX_PROBE || o->cache_mb < 1) {
        fprintf(stderr, "annpackfs: k must be in [1, %u], probe in [1, %u], cache_mb >= 1\n",
                AP_MAX_K, AP_MAX_PROBE);
        return 2;
    }
    if (o->verify && strcmp(o->verify, "full") && strcmp(o->verify, "none")) {
        fprintf(stderr, "annpackfs: verify must be full or none, not '%s'\n", o->verify);
        return 2;
    }
    ap_err serr = {0};
    if (o->scan && ap_scan_mode_parse(o->scan, &g_cfg.scan, &serr)) {
        fprintf(stderr, "annpackfs: %s\n", serr.msg);
        return 2;
    }
    if (o->rerank > AP_MAX_RERANK) {
        fprintf(stderr, "annpackfs: rerank must be at most %u\n", AP_MAX_RERANK);
        return 2;
    }
    if (o->on_expiry && strcmp(o->on_expiry, "serve") && strcmp(o->on_expiry, "refuse")) {
        fprintf(stderr, "annpackfs: on_expiry must be serve or refuse, not '%s'\n", o->on_expiry);
        return 2;
    }
    if (o->state_init && !o->state) {
        fprintf(stderr, "annpackfs: state_init needs state=FILE\n");
        return 2;
    }
    int mrc = check_mountpoint();
    if (mrc) return mrc;
    if (!o->scan) g_cfg.scan = AP_SCAN_AUTO;
    g_cfg.rerank = o->rerank;
    g_cfg.k = o->k;
    g_cfg.probe = o->probe;
    g_cfg.cache_mb = o->cache_mb;
    g_cfg.watch = o->watch;
    g_cfg.verify_full = !o->verify || !strcmp(o->verify, "full");
    g_cfg.state = o->state;
    g_cfg.state_init = o->state_init;
    g_cfg.allow_expired = o->allow_expired;
    g_cfg.expiry_refuse = o->on_expiry && !strcmp(o->on_expiry, "refuse");
    g_cfg.pubkey = o->pubkey;
    if (o->log) {
        g_logf = fopen(o->log, "ae");
        if (!g_logf) {
            fprintf(stderr, "annpackfs: log file %s: %s\n", o->log, strerror(errno));
            return 1;
        }
        ap_log_set_sink(log_to_file, NULL);
    }
    ap_err err = {0};
    if (g_cfg.pubkey && ap_pubkeys_load(g_cfg.pubkey, g_cfg.keys, &g_cfg.nkeys, &err)) {
        fprintf(stderr, "annpackfs: refusing to mount %s: %s\n", g_cfg.source, err.msg);
        return 1;
    }
    /* Replay protection fails closed: a state file that cannot be read or parsed refuses
     * the mount, and so does a missing one unless this is the first mount (state_init). */
    uint64_t min_version = 0;
    int fresh = 0;
    ap_status st = AP_OK;
    if (g_cfg.state) {
        st = fs_state_load(g_cfg.state, &min_version, &err);
        if (st == AP_ERR_NOTFOUND && g_cfg.state_init) {
            st = AP_OK;
            fresh = 1;
        } else if (st == AP_ERR_NOTFOUND) {
            char why[AP_ERR_MSG_MAX];
            snprintf(why, sizeof why, "%s", err.msg);
            ap_err_set(&err, st, "%s (on the first mount, add -o state_init to create it)", why);
        }
    }
    fs_gen *g = NULL;
    if (!st) st = fs_gen_load(&g_cfg, 1, min_version, 0, &g, &err);
    /* Persisted before it is served (only when it changes: the file may be read-only). */
    if (!st && g_cfg.state && (fresh || g->version > min_version))
        st = fs_state_save(g_cfg.state, g->version, &err);
    if (st) {
        fs_gen_unref(g);
        fprintf(stderr, "annpackfs: refusing to mount %s: %s\n", g_cfg.source, err.msg);
        if (g_logf)
            ap_log(AP_LOG_ERROR, "mount", "refusing to mount %s: %s", g_cfg.source, err.msg);
        return 1;
    }
    fs_gen_install(g);
    fs_cache_init((uint64_t)g_cfg.cache_mb << 20);

    /* Read-only, named after the source, unmounted by fusermount3 if we die. */
    char fsname[PATH_MAX + 16];
    snprintf(fsname, sizeof fsname, "-ofsname=%s", g_cfg.source);
    fuse_opt_add_arg(args, "-oro");
    fuse_opt_add_arg(args, "-osubtype=annpackfs");
    fuse_opt_add_arg(args, "-oauto_unmount");
    fuse_opt_add_arg(args, fsname);
    struct fuse_cmdline_opts co = {0};
    int rc = 1;
    if (fuse_parse_cmdline(args, &co) != 0 || !co.mountpoint) {
        fprintf(stderr, "annpackfs: cannot parse the command line (see --help)\n");
        rc = 2;
        goto out_gen;
    }
    g_se = fuse_session_new(args, &fs_ops, sizeof fs_ops, NULL);
    if (!g_se) goto out_gen;
    /* Our SIGHUP handler goes in first: libfuse only installs its (exiting) handlers on
     * signals still at their default disposition. */
    struct sigaction sa = {.sa_handler = on_sighup};
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGHUP, &sa, NULL);
    if (fuse_set_signal_handlers(g_se) != 0 || fs_guard_install() != 0) goto out_session;
    if (fuse_session_mount(g_se, co.mountpoint) != 0) {
        fprintf(stderr, "annpackfs: cannot mount on %s\n", co.mountpoint);
        goto out_signals;
    }
    if (fuse_daemonize(co.foreground) != 0) goto out_unmount;
    if (fs_reload_start() != 0) {
        ap_log(AP_LOG_ERROR, "mount", "cannot start the reload thread");
        goto out_unmount;
    }
    ap_log(AP_LOG_INFO, "mount", "serving %s on %s (generation 1, version %llu)", g_cfg.source,
           co.mountpoint, (unsigned long long)g->version);
    /* A loop ended by SIGTERM/SIGINT or fusermount3 -u is a clean exit. */
    struct fuse_loop_config *lc = fuse_loop_cfg_create();
    fuse_loop_cfg_set_max_threads(lc, 16);
    rc = fuse_session_loop_mt(g_se, lc) < 0 ? 1 : 0;
    fuse_loop_cfg_destroy(lc);
    fs_reload_stop();
    ap_log(AP_LOG_INFO, "mount", "unmounted");
out_unmount:
    fuse_session_unmount(g_se);
out_signals:
    fuse_remove_signal_handlers(g_se);
out_session:
    fuse_session_destroy(g_se);
    g_se = NULL;
out_gen:
    free(co.mountpoint);
    fs_gen_install(NULL);
    fs_cache_drop_others(UINT64_MAX);
    return rc;
}

int main(int argc, char **argv)
{
    ap_err env_err = {0};
    if (ap_env_check(&env_err)) { /* a bad ANNPACK_* value: a usage error */
        fprintf(stderr, "annpackfs: %s\n", env_err.msg);
        return 2;
    }
    single_threaded_blas(argv);
    /* Large results (a k=1000 query is hundreds of KB) are mapped and unmapped with their
     * buffers: glibc's adaptive threshold would otherwise move them into per-thread arenas
     * that keep the memory after the cache let go of it (docs/MOUNT.md, "Memory"). */
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    ap_log_set_program("annpackfs");
    struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
    opts o = {.k = AP_DEFAULT_K, .probe = AP_DEFAULT_PROBE, .cache_mb = 64};
    int rc = fuse_opt_parse(&args, &o, OPTS, opt_proc) != 0 ? 2 : serve(&o, &args);
    free_opts(&o, &args);
    if (g_logf) fclose(g_logf);
    return rc;
}
