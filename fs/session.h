/* The FUSE session (session.c): the mountpoint check before anything is verified, then
 * mount, daemonise, the reload thread, the multi-threaded loop and the teardown. g_se is
 * the session while it runs (the reload thread sends its kernel notifications through it),
 * NULL otherwise. */
#ifndef ANNPACK_FS_SESSION_H
#define ANNPACK_FS_SESSION_H

#include <stdint.h>

#include <fuse_lowlevel.h>

extern struct fuse_session *g_se;

/* The mountpoint (as given; NULL when missing) must be an existing directory with nothing
 * mounted on it: a second daemon would silently stack on the first. Returns 0, or the exit
 * status after one line on stderr. */
int fs_session_check_mountpoint(const char *mountpoint, const char *source);

/* Mounts source read-only with the FUSE arguments in args (the mountpoint, -f, -d and
 * other -o options), daemonises unless -f (so the command returns once the mount is live),
 * starts the reload thread (fork keeps only the calling thread) and serves until
 * unmounted. The current generation (version, for the log line) is installed already.
 * Returns the exit status: 0 after a clean unmount (SIGTERM, SIGINT, fusermount3 -u). */
int fs_session_run(struct fuse_args *args, const char *source, uint64_t version);

#endif
