/* What a generation says about itself (health.c): the health file and the provenance the
 * mount adds to the virtual manifest's "packset" block. Keys and their order are those of
 * docs/MOUNT.md ("The virtual tree"); tests/test_mount.py pins them. */
#ifndef ANNPACK_FS_HEALTH_H
#define ANNPACK_FS_HEALTH_H

#include <stdbool.h>
#include <stddef.h>

#include "generation.h"

/* The health file with this status ("ok"; "expired" once "expires" has passed;
 * "source-changed" once a source file changed in place): one JSON line, malloc'd, or NULL
 * when out of memory. */
char *fs_health_json(const fs_gen *g, const char *status, size_t *len);

/* The health file once lazy verification found a list or frame that does not match
 * pack.digests: status "corrupt", plus "bad_ranges" and "first_bad" (the first failure,
 * naming the file and the list or frame). Built fresh on every lookup. */
char *fs_health_corrupt_json(const fs_gen *g, const ap_view_verify *vi, size_t *len);

/* Whether an answer's failure is a list or frame that lazy verification found corrupt:
 * the library logged that once when it found it, so answers do not log it again. */
bool fs_known_corruption(ap_status st, const ap_err *err);

/* {"generation","signature","key_id"}: the text ap_vpack_manifest merges into the
 * manifest's "packset" block. malloc'd, or NULL when out of memory. */
char *fs_provenance_json(const fs_gen *g);

#endif
