/* Filesystem operations used to make every change atomic (internal to core):
 * write into a temporary name beside the target, fsync, rename, fsync the directory. */
#ifndef ANNPACK_CORE_FSOPS_H
#define ANNPACK_CORE_FSOPS_H

#include <stddef.h>

#include "annpack/status.h"

/* Joins a and b with '/' into a malloc'd string. */
char *ap_path_join(const char *a, const char *b);

/* Creates a fresh directory beside target named ".<base>.tmp-XXXXXX"; malloc'd path. */
ap_status ap_mkdtemp_beside(const char *target, char **out, ap_err *err);

/* Removes a directory tree (no symlink following). Errors are ignored: used for cleanup. */
void ap_rmtree(const char *path);

/* fsyncs a directory so renames inside it are durable. */
ap_status ap_fsync_dir(const char *dir, ap_err *err);

/* Writes data to path atomically (temp file in the same directory, fsync, rename, fsync
 * the directory). mode is the new file's permission bits. */
ap_status ap_write_file_atomic(const char *path, const void *data, size_t len, int mode,
                               ap_err *err);

/* Writes data to a new file (O_EXCL) and fsyncs it. */
ap_status ap_write_file(const char *path, const void *data, size_t len, ap_err *err);

/* Opens path read-only and checks it is a regular file; *size receives its size.
 * Errors name the path: AP_ERR_NOTFOUND, AP_ERR_IO, AP_ERR_FORMAT (not a regular file). */
ap_status ap_open_regular(const char *path, int *fd, uint64_t *size, ap_err *err);

/* Reads a whole file of at most max bytes (AP_ERR_LIMIT above). malloc'd, NUL-terminated. */
ap_status ap_read_file(const char *path, size_t max, char **out, size_t *len, ap_err *err);

/* Moves a finished temporary directory to target. If target exists it is swapped out
 * atomically (renameat2 RENAME_EXCHANGE) and the old tree removed. */
ap_status ap_replace_dir(const char *tmp, const char *target, ap_err *err);

/* Copies a regular file (not following a symlink at src) to a new file dst, fsynced. */
ap_status ap_copy_file(const char *src, const char *dst, ap_err *err);

/* Creates dir and its missing parents (mode 0755). */
ap_status ap_mkdir_p(const char *dir, ap_err *err);

/* Publishes a finished temporary directory (from ap_mkdtemp_beside) as target: gives it
 * the usual 0755 mode (mkdtemp creates 0700), fsyncs it, then ap_replace_dir. */
ap_status ap_publish_dir(const char *tmp, const char *target, ap_err *err);

/* Parent directory of path (malloc'd; "." when none). */
char *ap_dirname(const char *path);

#endif
