/* The FUSE session: see session.h. */
#include <errno.h>
#include <limits.h>
#include <mntent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#if ANNPACK_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "annpack/annpack.h"
#include "callbacks.h"
#include "config.h"
#include "guard.h"
#include "reload.h"
#include "session.h"

struct fuse_session *g_se;

/* Whether real (the resolved mountpoint) is already in the mount table. */
static int already_mounted(const char *real, const char *source)
{
    FILE *f = setmntent("/proc/self/mounts", "re");
    if (!f) return 0; /* no mount table to read: let the mount itself decide */
    struct mntent me;
    char buf[3 * PATH_MAX];
    int found = 0;
    while (!found && getmntent_r(f, &me, buf, sizeof buf)) {
        if (strcmp(me.mnt_dir, real) != 0) continue;
        fprintf(stderr,
                "annpackfs: refusing to mount %s: %s is already a mount point (%s %s); "
                "unmount it first (annpack umount %s)\n",
                source, real, me.mnt_type, me.mnt_fsname, real);
        found = 1;
    }
    endmntent(f);
    return found;
}

int fs_session_check_mountpoint(const char *mountpoint, const char *source)
{
    if (!mountpoint) {
        fprintf(stderr, "annpackfs: missing MOUNTPOINT (see --help)\n");
        return 2;
    }
    struct stat sb;
    char real[PATH_MAX];
    if (stat(mountpoint, &sb) != 0 || !realpath(mountpoint, real)) {
        if (errno == ENOENT)
            fprintf(stderr,
                    "annpackfs: %s: the mountpoint does not exist (create the directory "
                    "first)\n",
                    mountpoint);
        else
            fprintf(stderr, "annpackfs: %s: %s\n", mountpoint, strerror(errno));
        return 1;
    }
    if (!S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "annpackfs: %s: the mountpoint is not a directory\n", mountpoint);
        return 1;
    }
    return already_mounted(real, source) ? 1 : 0;
}

/* Read-only, named after the source, unmounted by fusermount3 if we die. */
static void add_mount_options(struct fuse_args *args, const char *source)
{
    char fsname[PATH_MAX + 16];
    snprintf(fsname, sizeof fsname, "-ofsname=%s", source);
    fuse_opt_add_arg(args, "-oro");
    fuse_opt_add_arg(args, "-osubtype=annpackfs");
    fuse_opt_add_arg(args, "-oauto_unmount");
    fuse_opt_add_arg(args, fsname);
}

static void on_sighup(int sig)
{
    (void)sig;
    fs_reload_request();
}

/* Our SIGHUP handler goes in first: libfuse only installs its (exiting) handlers on
 * signals still at their default disposition. */
static int install_signals(void)
{
    struct sigaction sa = {.sa_handler = on_sighup};
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGHUP, &sa, NULL);
    return fuse_set_signal_handlers(g_se) != 0 || fs_guard_install() != 0 ? -1 : 0;
}

/* From daemonising to the end of the session loop; returns the exit status. */
static int serve(const char *mountpoint, int foreground, const char *source, uint64_t version)
{
    if (fuse_daemonize(foreground) != 0) return 1;
    if (fs_reload_start() != 0) {
        ap_log(AP_LOG_ERROR, "mount", "cannot start the reload thread");
        return 1;
    }
    ap_log(AP_LOG_INFO, "mount", "serving %s on %s (generation 1, version %llu)", source,
           mountpoint, (unsigned long long)version);
#if ANNPACK_HAVE_SYSTEMD
    /* Type=notify (examples/annpackfs.service): the mount is live, so units ordered after
     * this one (Before=nginx.service) may start. A no-op outside systemd; the variable is
     * unset so nothing this process starts notifies in its name. */
    sd_notifyf(1, "READY=1\nSTATUS=serving version %llu", (unsigned long long)version);
#endif
    /* A loop ended by SIGTERM/SIGINT or fusermount3 -u is a clean exit. single_thread: one
     * thread reads and answers every request (no hand-off between worker threads; a slow
     * query then delays the others: BENCHMARKS.md has both measured). */
    int rc;
    if (g_cfg.single_thread) {
        rc = fuse_session_loop(g_se) < 0 ? 1 : 0;
    } else {
        struct fuse_loop_config *lc = fuse_loop_cfg_create();
        fuse_loop_cfg_set_max_threads(lc, 16);
        rc = fuse_session_loop_mt(g_se, lc) < 0 ? 1 : 0;
        fuse_loop_cfg_destroy(lc);
    }
    fs_reload_stop();
    ap_log(AP_LOG_INFO, "mount", "unmounted");
    return rc;
}

int fs_session_run(struct fuse_args *args, const char *source, uint64_t version)
{
    add_mount_options(args, source);
    struct fuse_cmdline_opts co = {0};
    int rc = 1;
    if (fuse_parse_cmdline(args, &co) != 0 || !co.mountpoint) {
        fprintf(stderr, "annpackfs: cannot parse the command line (see --help)\n");
        rc = 2;
        goto out;
    }
    g_se = fuse_session_new(args, &fs_ops, sizeof fs_ops, NULL);
    if (!g_se) goto out;
    if (install_signals() != 0) goto out_session;
    if (fuse_session_mount(g_se, co.mountpoint) != 0) {
        fprintf(stderr, "annpackfs: cannot mount on %s\n", co.mountpoint);
        goto out_signals;
    }
    rc = serve(co.mountpoint, co.foreground, source, version);
    fuse_session_unmount(g_se);
out_signals:
    fuse_remove_signal_handlers(g_se);
out_session:
    fuse_session_destroy(g_se);
    g_se = NULL;
out:
    free(co.mountpoint);
    return rc;
}
