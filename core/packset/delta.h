/* What makes a delta fit the base it applies to (internal to core; docs/PACKSET.md). The
 * one place that says it: the view's open checks every delta layer with it, and the changes
 * that add a delta to a packset (append, promote, create) check the delta directory with
 * it before the new root manifest names it. */
#ifndef ANNPACK_CORE_DELTA_H
#define ANNPACK_CORE_DELTA_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "annpack/meta.h"
#include "annpack/pack.h"

/* The first id of tomb (sorted) that the rows m also hold, an id both added and deleted in
 * one delta: true and *id, or false. */
bool ap_delta_readds(const ap_meta *m, const uint64_t *tomb, size_t ntomb, uint64_t *id);

/* Confirms that the file of a delta directory named file hashes to sha256 (listed_in names
 * the delta manifest in messages). */
typedef ap_status (*ap_delta_file_check)(const void *ctx, const char *file, const char *sha256,
                                         const char *listed_in, ap_err *err);

/* A delta manifest's "files" (dm parsed, name for messages): it lists at least the layer's
 * pack manifest and its tombstones (tomb_name), every key a safe relative path with a
 * "sha256" that check confirms. */
ap_status ap_delta_files_check(const cJSON *dm, const char *name, const char *tomb_name,
                               ap_delta_file_check check, const void *ctx, ap_err *err);

/* A delta manifest's own fields against its base and layer: built against the base whose
 * pack.annpack hashes to base_sha256; kind "annpack-delta" of schema_version 1; "adds" and
 * "tombstones" the layer's counts (delta: its pack; ntomb: its tombstones) and "embedder"
 * the layer's embedder. */
ap_status ap_delta_fields_check(const cJSON *dm, const char *name, const char *base_sha256,
                                const ap_pack *delta, size_t ntomb, ap_err *err);

/* A delta's layer against its base: no id both added and deleted (tomb sorted), the base's
 * dim and embedder. dir names the delta in messages. */
ap_status ap_delta_fits_base(const ap_pack *base, const ap_pack *delta, const uint64_t *tomb,
                             size_t ntomb, const char *dir, ap_err *err);

/* A delta directory against a base directory, before a packset names it: the delta
 * verifies as a pack, its delta manifest's files hash as listed, its tombstones parse, and
 * ap_delta_fields_check and ap_delta_fits_base hold. base_sha256: the base's verified
 * pack.annpack hash. */
ap_status ap_delta_check_dir(const char *delta_dir, const char *base_dir, const char *base_sha256,
                             ap_err *err);

/* The "calibration" (docs/FORMAT.md "build.calibration") of the delta built in delta_dir
 * searched with base: its pack.annpack's vectors grouped under the base lists its
 * delta.lists records (written by the same build), as the view scans them, with the base's
 * vectors (tombstones not subtracted), to the base's
 * target recall; *out NULL when the base has no calibration. */
ap_status ap_delta_calibration(const ap_pack *base, const char *delta_dir, cJSON **out,
                               ap_err *err);

#endif
