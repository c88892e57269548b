/* Shared pieces of packset operations (internal to core). */
#ifndef ANNPACK_CORE_PACKSET_OPS_H
#define ANNPACK_CORE_PACKSET_OPS_H

#include <cjson/cJSON.h>

#include "annpack/packset.h"

typedef struct ap_delta_ref {
    uint64_t seq;
    const char *path; /* relative to the packset root */
} ap_delta_ref;

/* Writes root/pack.manifest.json (schema 3) atomically, hashing the layer files in place. */
ap_status ap_root_write(const char *root, uint64_t version, const char *base_path,
                        const ap_delta_ref *deltas, size_t n, const cJSON *expires, ap_err *err);

/* Test hook: SIGKILLs the process when ANNPACK_TEST_CRASH_AT names this step. */
void ap_crash_point(const char *step);

#endif
