/* annpack — pack directories: build, open, search, verify.
 *
 * A pack directory holds pack.annpack (ANNP v1), the metadata rows (pack.meta.jsonl.zst
 * or pack.meta.jsonl) with pack.meta.idx, and pack.manifest.json (schema 2) listing every
 * other file with its size and SHA-256, the embedder and the build parameters. See
 * docs/FORMAT.md. */
#ifndef ANNPACK_PACK_H
#define ANNPACK_PACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "embed.h"
#include "format.h"
#include "meta.h"
#include "search.h"
#include "sign.h"
#include "sq8.h"
#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AP_MANIFEST "pack.manifest.json"
#define AP_ANNPACK "pack.annpack"
#define AP_SIGNATURE "pack.manifest.json.sig"
#define AP_PACK_SCHEMA 2

/* Progress callback for long operations: phase name, units done, units total (0 when
 * unknown). Called from the calling thread only. */
typedef void (*ap_progress_fn)(void *ud, const char *phase, uint64_t done, uint64_t total);

typedef struct ap_build_opts {
    const char *input_csv;   /* CSV with a header row (required unless vectors given) */
    const char *text_col;    /* column embedded (required with a CSV and no vectors) */
    const char *id_col;      /* optional: integer ids in [0, 2^53); default row numbers */
    const char *output_dir;  /* the pack directory to create */
    uint32_t lists;          /* IVF lists; 0 = automatic (about sqrt(rows)) */
    uint64_t seed;           /* k-means and embedder seed, < 2^53 */
    uint32_t dim;            /* embedder dim; 0 = default */
    uint64_t max_rows;       /* 0 = all */
    ap_meta_codec meta_codec;
    bool force;              /* replace an existing directory that is not an annpack output */
    const char *embedder;    /* NULL = "hash" */
    const char *embedder_json; /* when set, recreate this embedder block instead (deltas) */
    ap_progress_fn progress;
    void *progress_ud;
    /* Vectors given instead of embedded text: an .fvecs file, L2-normalised on the way in;
     * ids are row numbers; input_csv, if also given, supplies each row's metadata in the
     * same row order (id_col is then refused). The embedder is "vectors". */
    const char *vectors;
    uint32_t kmeans_iters;   /* k-means iterations; 0 = AP_KMEANS_DEFAULT_ITERS */
    bool sq8;                /* also write the int8 sidecar pack.sq8 (docs/FORMAT.md) */
} ap_build_opts;

typedef struct ap_build_report {
    uint64_t rows;          /* rows in the pack */
    uint64_t rows_skipped;  /* rows left out by max_rows */
    uint32_t lists_requested, lists_effective;
    uint32_t dim;
    double seconds_total, seconds_embed;
    double seconds_kmeans;  /* training (sample passes + centroid updates) */
    double seconds_write;
    uint64_t train_rows;    /* k-means sample size */
    uint32_t kmeans_passes; /* assignment passes over the sample (2*train_rows*lists*dim flops each) */
    uint32_t threads;       /* worker threads used (ANNPACK_THREADS) */
    double seconds_assign;  /* assigning every row to its list (2*rows*lists*dim flops) */
    double seconds_sq8;     /* training and writing the int8 sidecar */
} ap_build_report;

#define AP_KMEANS_DEFAULT_ITERS 20u

/* Builds a pack. Writes into a temporary directory beside output_dir and renames it
 * into place at the end, so a failure leaves no directory that looks like a pack. */
AP_API ap_status ap_pack_build(const ap_build_opts *opts, ap_build_report *report, ap_err *err);

typedef struct ap_pack ap_pack;

/* Opens a pack directory: reads the manifest strictly, checks that its paths stay inside
 * the directory and its counts match the ANNP header, maps pack.annpack, opens the
 * metadata and recreates the embedder. Does not hash files (ap_pack_verify does). */
AP_API ap_status ap_pack_open(const char *dir, ap_pack **out, ap_err *err);
AP_API void ap_pack_close(ap_pack *p);

AP_API const ap_annp *ap_pack_annp(const ap_pack *p);
AP_API const ap_meta *ap_pack_meta(const ap_pack *p);
AP_API const ap_embedder *ap_pack_embedder(const ap_pack *p);
/* The int8 sidecar (validated against pack.annpack at open), or NULL. */
AP_API const ap_sq8 *ap_pack_sq8(const ap_pack *p);
/* The manifest bytes exactly as read. */
AP_API const char *ap_pack_manifest_raw(const ap_pack *p, size_t *len);
/* The manifest's "embedder" and "build" blocks as compact JSON text (malloc'd). */
AP_API char *ap_pack_manifest_block(const ap_pack *p, const char *key);

/* Embeds text with the pack's embedder into q (dim floats). */
AP_API ap_status ap_pack_embed(const ap_pack *p, const char *text, size_t len, float *q,
                               ap_err *err);

/* Vector search: hits holds k entries. */
AP_API ap_status ap_pack_search_vec(const ap_pack *p, const float *q, uint32_t k, uint32_t probe,
                                    ap_hit *hits, uint32_t *n, ap_err *err);

/* Fetches the metadata row of a hit into *row (malloc'd, the caller frees it). */
typedef ap_status (*ap_row_fn)(void *ud, uint64_t id, uint32_t layer, char **row, ap_err *err);

/* Renders search results as the JSON object of the CLI and the mount:
 * {"query","k","probe",["generation",]"took_ms","results":[{"id","score","layer","meta"}]}
 * generation < 0 omits it; row_of NULL gives "meta": null. Returns malloc'd text, or NULL
 * with err set when a row cannot be fetched (never a result without its row). */
AP_API char *ap_results_json(const char *query, uint32_t k, uint32_t probe, long long generation,
                             double took_ms, const ap_hit *hits, uint32_t n, ap_row_fn row_of,
                             void *ud, size_t *len, ap_err *err);

/* Pack facts as JSON (the `annpack inspect` report). malloc'd. */
AP_API char *ap_pack_inspect_json(const ap_pack *p);

typedef struct ap_verify_opts {
    bool deep;
    /* Signature: when npubkeys > 0 the manifest's signature (sig_path, default
     * DIR/pack.manifest.json.sig) must verify with one of pubkeys; the report names the
     * key id. An "expires" field in the past fails unless allow_expired. */
    const ap_pubkey *pubkeys;
    size_t npubkeys;
    const char *sig_path;
    bool allow_expired;
    ap_progress_fn progress;
    void *progress_ud;
} ap_verify_opts;

/* Verifies a pack directory: manifest strictness and paths, every listed file's size and
 * SHA-256, no unlisted file that could change meaning; with deep, also the structure
 * (ids unique, one metadata row per id and no other, vectors finite and unit-norm within
 * f16 tolerance, idx consistent with the rows). *report receives a JSON report (malloc'd)
 * whether or not verification passed; the status and err name the first failure. */
AP_API ap_status ap_pack_verify(const char *dir, const ap_verify_opts *opts, char **report,
                                ap_err *err);

/* Verifies a pack or a packset directory, dispatching on the manifest's schema_version
 * (2: pack, 3: packset). Same contract as ap_pack_verify. */
AP_API ap_status ap_verify_dir(const char *dir, const ap_verify_opts *opts, char **report,
                               ap_err *err);

/* Library version string. */
AP_API const char *ap_version(void);

#ifdef __cplusplus
}
#endif
#endif
