/* Writing the packset root manifest (internal to core; root_write.c, docs/PACKSET.md). */
#ifndef ANNPACK_CORE_ROOT_WRITE_H
#define ANNPACK_CORE_ROOT_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "annpack/status.h"

typedef struct ap_delta_ref {
    uint64_t seq;
    const char *path; /* relative to the packset root */
} ap_delta_ref;

/* Writes root/pack.manifest.json (schema 3) atomically, hashing the layer files in place. */
ap_status ap_root_write(const char *root, uint64_t version, const char *base_path,
                        const ap_delta_ref *deltas, size_t n, const cJSON *expires, ap_err *err);

/* Appends the entry of a new delta at path (relative to the packset) to root's "deltas",
 * hashing its files; the base hash is the root's verified one. */
ap_status ap_root_add_delta(cJSON *root, const char *dir, uint64_t seq, const char *path,
                            ap_err *err);

#endif
