/* annpack — building a pack directory from a CSV or vectors (docs/FORMAT.md, CLI.md). */
#ifndef ANNPACK_BUILD_H
#define ANNPACK_BUILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "embed.h"
#include "meta.h"
#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ap_build_opts {
    const char *input_csv;  /* CSV with a header row (required unless vectors given) */
    const char *text_col;   /* column embedded (required with a CSV and no vectors) */
    const char *id_col;     /* optional: integer ids in [0, 2^53); default row numbers */
    const char *output_dir; /* the pack directory to create */
    uint32_t lists;         /* IVF lists; 0 = automatic (about sqrt(rows)) */
    uint64_t seed;          /* k-means and embedder seed, < 2^53 */
    uint32_t dim;           /* embedder dim; 0 = default */
    uint64_t max_rows;      /* 0 = all */
    ap_meta_codec meta_codec;
    bool force;                /* replace an existing directory that is not an annpack output */
    const char *embedder;      /* NULL = "hash" */
    const char *embedder_json; /* when set, recreate this embedder block instead (deltas) */
    ap_progress_fn progress;
    void *progress_ud;
    /* Vectors given instead of embedded text: an .fvecs file, L2-normalised on the way in;
     * ids are row numbers; input_csv, if also given, supplies each row's metadata in the
     * same row order (id_col is then refused). The embedder is "vectors". */
    const char *vectors;
    uint32_t kmeans_iters; /* k-means iterations; 0 = AP_KMEANS_DEFAULT_ITERS */
    bool sq8;              /* also write the int8 sidecar pack.sq8 (docs/FORMAT.md) */
    bool bits;             /* also write the 1-bit code sidecar pack.bits (docs/FORMAT.md) */
    /* With an HTTP embedder ("openai", "tei", "ollama"): the model and prefixes (the
     * endpoint is ap_embed_set_endpoint's). With vectors too, it names the model the
     * vectors came from, so text queries work (its dim must be theirs). */
    const ap_embed_model *http;
    /* The recall the default probe must reach on held-out self-queries (docs/FORMAT.md
     * "calibration"), in (0, 1]; 0 = 0.95; negative = do not calibrate (no "calibration"
     * in the manifest: searches default to probe 8, as for packs built before it). */
    double target_recall;
    /* Comma-separated metadata columns to filter searches on (pack.filter, docs/FORMAT.md),
     * or NULL for none. */
    const char *filter_cols;
} ap_build_opts;

typedef struct ap_build_report {
    uint64_t rows;         /* rows in the pack */
    uint64_t rows_skipped; /* rows left out by max_rows */
    uint32_t lists_requested, lists_effective;
    uint32_t dim;
    double seconds_total, seconds_embed;
    double seconds_kmeans; /* training (sample passes + centroid updates) */
    double seconds_write;
    uint64_t train_rows; /* k-means sample size */
    uint32_t
        kmeans_passes; /* assignment passes over the sample (2*train_rows*lists*dim flops each) */
    uint32_t threads;  /* worker threads used (ANNPACK_THREADS) */
    double seconds_assign; /* assigning every row to its list (2*rows*lists*dim flops) */
    double seconds_sq8;    /* training and writing the int8 sidecar */
} ap_build_report;

#define AP_KMEANS_DEFAULT_ITERS 20u

/* Builds a pack. Writes into a temporary directory beside output_dir and renames it
 * into place at the end, so a failure leaves no directory that looks like a pack. The
 * strings of opts are the caller's and only read. *report (report may be NULL) is
 * filled on success. progress, when set, is called from the calling thread with
 * progress_ud. */
AP_API ap_status ap_pack_build(const ap_build_opts *opts, ap_build_report *report, ap_err *err);

#ifdef __cplusplus
}
#endif
#ifdef AP_EXPERIMENTAL
#define ANNPACK_BUILD_H_COMPLETE /* experimental.h extends this header */
#include "experimental.h"
#endif
#endif
