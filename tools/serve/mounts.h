/* The mount table, as `annpack serve` needs it: is our mountpoint mounted, and taking it
 * down when annpackfs did not. */
#ifndef ANNPACK_TOOLS_SERVE_MOUNTS_H
#define ANNPACK_TOOLS_SERVE_MOUNTS_H

/* 1 when something is mounted on mnt (an absolute path without symlinks), per
 * /proc/self/mounts (getmntent_r undoes its octal escapes). */
int mounts_has(const char *mnt);

/* Detaches whatever is mounted on mnt (fusermount3 -u -z; its messages relayed, relay.h)
 * when something is. Returns 1 when mnt is still mounted afterwards, else 0. */
int mounts_detach(const char *mnt);

#endif
