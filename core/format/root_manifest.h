/* The packset root manifest, schema 3 (internal to core; root_manifest.c reads it,
 * packset/root_write.c writes it; docs/PACKSET.md). A schema-2 pack manifest is read as a
 * packset with only a base (the directory itself). */
#ifndef ANNPACK_CORE_ROOT_MANIFEST_H
#define ANNPACK_CORE_ROOT_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "annpack/status.h"

typedef struct ap_delta_entry {
    uint64_t seq;
    const char *path, *annpack, *meta, *tombstones, *manifest, *delta_manifest;
    const char *base_sha256_annpack;
    const char *sha256_annpack, *sha256_meta, *sha256_tombstones, *sha256_manifest,
        *sha256_delta_manifest;
} ap_delta_entry;

/* A root manifest: schema 3 (packset) or 2 (a single pack seen as a base-only view). */
typedef struct ap_root_manifest {
    uint32_t schema;
    uint64_t version;
    const char *base_path; /* NULL for a single pack */
    const char *base_annpack, *base_meta, *base_manifest;
    const char *base_sha256_annpack, *base_sha256_meta, *base_sha256_manifest;
    ap_delta_entry *deltas;
    size_t ndeltas;
    uint32_t dim;          /* schema 3: the root's "dim" */
    const cJSON *embedder; /* schema 3: the root's "embedder" */
    cJSON *root;
    char *raw;
    size_t raw_len;
} ap_root_manifest;

/* Reads and validates DIR/pack.manifest.json. */
ap_status ap_root_manifest_load(const char *dir, ap_root_manifest *m, ap_err *err);
/* Validates root manifest bytes already read (raw malloc'd; ownership passes to m). */
ap_status ap_root_manifest_parse(char *raw, size_t raw_len, const char *name, ap_root_manifest *m,
                                 ap_err *err);
void ap_root_manifest_free(ap_root_manifest *m);

#endif
