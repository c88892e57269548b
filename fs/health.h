/* What a generation says about itself (health.c): the health file and the provenance the
 * mount adds to the virtual manifest's "packset" block. Keys and their order are those of
 * docs/MOUNT.md ("The virtual tree"); tests/test_mount.py pins them. */
#ifndef ANNPACK_FS_HEALTH_H
#define ANNPACK_FS_HEALTH_H

#include <stddef.h>

#include "generation.h"

/* The health file with this status ("ok"; "expired" once "expires" has passed;
 * "source-changed" once a source file changed in place): one JSON line, malloc'd, or NULL
 * when out of memory. */
char *fs_health_json(const fs_gen *g, const char *status, size_t *len);

/* {"generation","signature","key_id"}: the text ap_vpack_manifest merges into the
 * manifest's "packset" block. malloc'd, or NULL when out of memory. */
char *fs_provenance_json(const fs_gen *g);

#endif
