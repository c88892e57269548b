/* Filesystem operations used to make every change atomic (internal to core):
 * write into a temporary name beside the target, fsync, rename, fsync the directory. */
#ifndef ANNPACK_CORE_FSOPS_H
#define ANNPACK_CORE_FSOPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "annpack/status.h"

/* Joins a and b with '/' into a malloc'd string. */
char *ap_path_join(const char *a, const char *b);

/* Creates a fresh directory beside target named ".<base>.tmp-XXXXXX"; malloc'd path. */
ap_status ap_mkdtemp_beside(const char *target, char **out, ap_err *err);

/* Removes a directory tree, or a file or symlink (nothing inside is followed: each level
 * is opened with O_NOFOLLOW). Errors are ignored: used for cleanup of paths the caller
 * named or created. */
void ap_rmtree(const char *path);

/* Removes the directory tree root/rel where rel is a relative path from a manifest: each
 * component is opened relative to the previous one with O_NOFOLLOW, so a symlinked
 * component (which could lead outside root) is refused, never followed (AP_ERR_VERIFY).
 * A missing path is not an error. */
ap_status ap_rmtree_under(const char *root, const char *rel, ap_err *err);

/* fsyncs a directory so renames inside it are durable. */
ap_status ap_fsync_dir(const char *dir, ap_err *err);

/* Writes data to path atomically (temp file in the same directory, fsync, rename, fsync
 * the directory). mode is the new file's permission bits. */
ap_status ap_write_file_atomic(const char *path, const void *data, size_t len, int mode,
                               ap_err *err);

/* The two halves of ap_write_file_atomic: a fsynced temporary file beside path (*tmp,
 * malloc'd), then its rename onto path and the fsync of the directory (frees tmp; on
 * failure the temporary file is removed). */
ap_status ap_stage_file(const char *path, const void *data, size_t len, int mode, char **tmp,
                        ap_err *err);
ap_status ap_commit_file(char *tmp, const char *path, ap_err *err);

/* Writes data to a new file (O_EXCL) and fsyncs it. */
ap_status ap_write_file(const char *path, const void *data, size_t len, ap_err *err);

/* Opens path read-only and checks it is a regular file; *size receives its size.
 * Errors name the path: AP_ERR_NOTFOUND, AP_ERR_IO, AP_ERR_FORMAT (not a regular file). */
ap_status ap_open_regular(const char *path, int *fd, uint64_t *size, ap_err *err);

/* Reads a whole file of at most max bytes (AP_ERR_LIMIT above). malloc'd, NUL-terminated. */
ap_status ap_read_file(const char *path, size_t max, char **out, size_t *len, ap_err *err);

/* Moves a finished temporary directory to target. If target exists and replace is set, it
 * is swapped out atomically (renameat2 RENAME_EXCHANGE) and the old tree removed; without
 * replace an existing target is an error (AP_ERR_EXISTS) and nothing changes. */
ap_status ap_replace_dir(const char *tmp, const char *target, bool replace, ap_err *err);

/* Copies a regular file (not following a symlink at src) to a new file dst, fsynced. */
ap_status ap_copy_file(const char *src, const char *dst, ap_err *err);

/* Creates dir and its missing parents (mode 0755). */
ap_status ap_mkdir_p(const char *dir, ap_err *err);

/* Publishes a finished temporary directory (from ap_mkdtemp_beside) as target: gives it
 * the usual 0755 mode (mkdtemp creates 0700), fsyncs it, then ap_replace_dir. */
ap_status ap_publish_dir(const char *tmp, const char *target, bool replace, ap_err *err);

/* Whether two directory trees hold the same names, types and file bytes (symlinks and
 * special files never compare equal; nothing is followed). Modes are not compared. */
bool ap_tree_equal(const char *a, const char *b);

/* Number of entries of a directory (without . and ..); -1 when it cannot be read or is a
 * symlink. */
int ap_dir_entries(const char *dir);

/* Takes an exclusive advisory lock (flock) on a directory, held until ap_dir_unlock, so
 * two annpack commands never change one packset at once (AP_ERR_EXISTS when held). */
ap_status ap_dir_lock(const char *dir, int *fd, ap_err *err);
void ap_dir_unlock(int fd);

/* Removes dir/name (a file or symlink, not followed) if present, and fsyncs dir. */
ap_status ap_unlink_in(const char *dir, const char *name, bool *removed, ap_err *err);

/* Parent directory of path (malloc'd; "." when none). */
char *ap_dirname(const char *path);

#endif
