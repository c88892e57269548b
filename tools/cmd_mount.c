/* annpack mount / annpack umount: conveniences over annpackfs and fusermount3. */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "relay.h"

/* $ANNPACKFS, else annpackfs next to this program (installed layout, or the build tree's
 * fs/), else the first on PATH; "annpackfs" when none is found (exec reports it). */
char *cli_find_annpackfs(char *buf, size_t len)
{
    const char *env = getenv("ANNPACKFS");
    if (env && *env) {
        snprintf(buf, len, "%s", env);
        return buf;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        const char *dir = dirname(self);
        const char *cands[] = {"/annpackfs", "/../fs/annpackfs", "/../sbin/annpackfs"};
        for (size_t i = 0; i < 3; i++) {
            snprintf(buf, len, "%s%s", dir, cands[i]);
            if (access(buf, X_OK) == 0) return buf;
        }
    }
    const char *path = getenv("PATH");
    char dirs[8192];
    snprintf(dirs, sizeof dirs, "%s", path ? path : "");
    for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        snprintf(buf, len, "%s/annpackfs", d);
        if (access(buf, X_OK) == 0) return buf;
    }
    snprintf(buf, len, "annpackfs");
    return buf;
}

/* With ANNPACK_LOG_JSON=1 annpackfs runs as our child so that its stderr reaches ours as
 * JSON lines (relay.h); otherwise it replaces us. */
int cmd_mount(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        puts("usage: annpack mount SOURCE MOUNTPOINT [-o OPTIONS] [-f]\n"
             "\n"
             "Runs annpackfs (see `annpackfs --help` and docs/MOUNT.md): verifies SOURCE, mounts\n"
             "it read-only and returns once the mount is live. Unmount with `annpack umount`.");
        return argc < 2 ? EXIT_USAGE : EXIT_OK;
    }
    char buf[PATH_MAX + 32];
    char *exe = cli_find_annpackfs(buf, sizeof buf);
    argv[0] = exe;
    if (!ap_log_json()) {
        execvp(exe, argv);
    } else {
        int status = relay_run("annpackfs", argv);
        if (status >= 0) return WIFEXITED(status) ? WEXITSTATUS(status) : EXIT_FAIL;
    }
    cli_msg("mount", AP_LOG_ERROR, "cannot run %s: %s", exe, strerror(errno));
    return EXIT_FAIL;
}

int cmd_umount(int argc, char **argv)
{
    if (argc != 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        puts("usage: annpack umount MOUNTPOINT\n\nUnmounts an annpackfs mount (fusermount3 -u); "
             "the daemon exits 0.");
        return argc == 2 ? EXIT_OK : EXIT_USAGE;
    }
    char prog[] = "fusermount3", u[] = "-u";
    char *args[] = {prog, u, argv[1], NULL};
    int status = relay_run("fusermount3", args);
    if (status < 0 && errno != ENOENT) {
        cli_msg("umount", AP_LOG_ERROR, "%s", strerror(errno));
        return EXIT_FAIL;
    }
    if (status < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        cli_msg("umount", AP_LOG_ERROR, "fusermount3 -u %s failed", argv[1]);
        return EXIT_FAIL;
    }
    return EXIT_OK;
}
