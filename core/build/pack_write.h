/* Finishing a pack directory from vectors (internal to core): k-means, the ANNP file and
 * the manifest. Shared by CSV builds, packset rebase and delta builds. */
#ifndef ANNPACK_CORE_PACK_WRITE_H
#define ANNPACK_CORE_PACK_WRITE_H

#include <cjson/cJSON.h>

#include "annpack/build.h"
#include "annpack/embed.h"
#include "annpack/format.h"
#include "annpack/sign.h"
#include "annpack/sq8.h"

typedef struct ap_pack_spec {
    const ap_embedder *emb;
    size_t n;
    const float *vecs;   /* n x dim, unit length */
    const uint64_t *ids; /* n, unique */
    uint32_t lists;      /* requested; 0 = automatic */
    uint64_t seed;
    ap_meta_codec codec;  /* the meta files already written into the directory */
    const cJSON *build;   /* the caller's "build" fields (copied after the tool's) */
    uint32_t iters;       /* k-means iterations; 0 = AP_KMEANS_DEFAULT_ITERS */
    bool sq8;             /* also write the int8 sidecar */
    bool bits;            /* also write the 1-bit code sidecar pack.bits */
    double target_recall; /* calibrate the default probe for it (calibrate.h); 0: do not */
    const ap_annp *under; /* a delta's base: also write delta.lists (delta_group.h) */
    ap_progress_fn progress;
    void *progress_ud;
} ap_pack_spec;

/* dir already holds the metadata files; writes pack.annpack (and pack.sq8) and
 * pack.manifest.json. n may be 0 (a delete-only delta): one list with a zero centroid.
 * rep (may be NULL) receives lists_effective, train_rows, kmeans_passes and the k-means,
 * assignment and sidecar seconds. */
ap_status ap_pack_finish(const char *dir, const ap_pack_spec *s, ap_build_report *rep, ap_err *err);

/* ap_pack_build embedding with the caller's embedder (a base's, its corpus table loaded:
 * deltas) instead of the one opts names; emb NULL is ap_pack_build. under (may be NULL):
 * the base a delta is built for, whose lists its vectors are grouped under in
 * delta.lists. */
ap_status ap_pack_build_with(const ap_build_opts *opts, const ap_embedder *emb,
                             const ap_annp *under, ap_build_report *rep, ap_err *err);

/* Automatic list count: about sqrt(n), at least 1, at most 65536. */
uint32_t ap_auto_lists(size_t n);

#endif
