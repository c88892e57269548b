/* Source files opened once, relative to a directory descriptor (internal to core).
 *
 * A verified view must serve the bytes it checked. So every file of a pack or packset is
 * opened exactly once, beneath the directory the caller named (openat2 RESOLVE_BENEATH: a
 * path or a symlink that leads outside is refused by the kernel, not by a racy realpath),
 * hashed from that descriptor, and then read or mapped from the same descriptor. The
 * fstat snapshot taken at open lets readers detect a file changed in place afterwards
 * (ap_src_unchanged): the size, inode, mtime and ctime a write must change. */
#ifndef ANNPACK_CORE_SOURCE_H
#define ANNPACK_CORE_SOURCE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "annpack/status.h"

typedef struct ap_src {
    int fd;         /* -1 when closed */
    uint64_t size;  /* at open */
    struct stat st; /* snapshot at open */
    char *name;     /* "<display dir>/<rel>", for messages */
} ap_src;

/* Opens directory rel beneath dirfd (rel NULL or "." reopens dirfd itself). *fd is
 * O_DIRECTORY|O_CLOEXEC. Errors name display/rel. */
ap_status ap_dir_open_beneath(int dirfd, const char *rel, const char *display, int *fd,
                              ap_err *err);

/* Opens a directory by path (the caller's own argument: symlinks allowed). */
ap_status ap_dir_open_path(const char *path, int *fd, ap_err *err);

/* Opens regular file rel beneath dirfd and snapshots it. AP_ERR_NOTFOUND when missing,
 * AP_ERR_VERIFY when it escapes dirfd, AP_ERR_FORMAT when not a regular file. */
ap_status ap_src_open(int dirfd, const char *rel, const char *display_dir, ap_src *s, ap_err *err);

/* Reads the whole file (at most max bytes: AP_ERR_LIMIT naming the cap), from offset 0.
 * malloc'd and NUL-terminated. A size that differs from the snapshot is AP_ERR_VERIFY. */
ap_status ap_src_read(const ap_src *s, size_t max, char **out, size_t *len, ap_err *err);

/* Reads exactly len bytes at off (AP_ERR_VERIFY when the file is shorter now). */
ap_status ap_src_read_at(const ap_src *s, uint64_t off, void *buf, size_t len, ap_err *err);

/* AP_OK when the file still is what was opened (same inode, size, mtime, ctime);
 * AP_ERR_VERIFY "NAME changed since it was verified" otherwise. */
ap_status ap_src_unchanged(const ap_src *s, ap_err *err);

void ap_src_close(ap_src *s);

#endif
