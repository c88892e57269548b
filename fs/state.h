/* The state= file of annpackfs (state.c): the highest version accepted, {"version":N}.
 * No FUSE here, so a fuzz target can drive the parser (tests/fuzz/fuzz_state.c). */
#ifndef ANNPACK_FS_STATE_H
#define ANNPACK_FS_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "annpack/status.h"

#define FS_STATE_MAX 64 /* bytes */

/* Parses a state file's bytes: exactly {"version":N} and an optional newline, N a decimal
 * integer below 2^53 without leading zeros. Pure: no I/O. */
ap_status fs_state_parse(const char *buf, size_t len, uint64_t *version, ap_err *err);

/* Reads path: AP_OK with *version, AP_ERR_NOTFOUND when it does not exist, or an error
 * naming why it cannot be read or parsed ("state file PATH: ..."). */
ap_status fs_state_load(const char *path, uint64_t *version, ap_err *err);

/* Replaces path atomically (a fresh O_EXCL temporary file beside it, fsync, rename, fsync
 * of the directory); never follows a symlink planted beside it. */
ap_status fs_state_save(const char *path, uint64_t version, ap_err *err);

/* Reads a whole small regular file (at most max bytes; never blocks on a FIFO). */
ap_status fs_read_file(const char *path, size_t max, char **out, size_t *len, ap_err *err);

#endif
