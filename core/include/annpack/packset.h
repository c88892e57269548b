/* annpack — packsets: a base pack plus ordered deltas and tombstones, and the merged
 * view (base + deltas − tombstones) that search, the CLI and the mount read.
 *
 * Layout (docs/PACKSET.md):
 *   DIR/pack.manifest.json        root manifest, schema_version 3, integer "version"
 *   DIR/pack.manifest.json.sig    optional signature of the root manifest
 *   DIR/base/                     a pack directory (layer 0)
 *   DIR/deltas/NNNN.delta/        a pack directory + tombstones.jsonl + delta.manifest.json
 * Layer semantics: for each id the newest layer that mentions it (as an added row or a
 * tombstone) decides; an add makes that row live, a tombstone hides the id from every
 * older layer. */
#ifndef ANNPACK_PACKSET_H
#define ANNPACK_PACKSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "build.h"
#include "pack.h"
#include "sign.h"
#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- verification -------------------------------------------------------------------- */

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

/* Verifies a pack or a packset directory, dispatching on the manifest's schema_version
 * (2: pack, 3: packset). For a pack: manifest strictness and paths, every listed file's
 * size and SHA-256, no unlisted file that could change meaning; with deep, also the
 * structure (ids unique, one metadata row per id and no other, vectors finite and
 * unit-norm within f16 tolerance, idx consistent with the rows); for a packset the same
 * for every layer, plus the root manifest and each delta's base hashes. opts NULL = all
 * defaults (not deep, no keys). *report (report may be NULL) receives a JSON report
 * (malloc'd, the caller frees it with ap_free) whether or not verification passed, or
 * NULL when even that could not be made (out of memory); the status and err name the
 * first failure. */
AP_API ap_status ap_verify_dir(const char *dir, const ap_verify_opts *opts, char **report,
                               ap_err *err);

/* ---- the merged view ------------------------------------------------------------------ */

typedef struct ap_view ap_view;

/* Opens DIR as a merged view: a packset (schema 3) or a single pack (schema 2, a view
 * with only a base). Reads every manifest strictly and checks paths, the base hash each
 * delta was built against, embedder and dim agreement, and caps; does not hash the data
 * files (ap_verify_dir does; ap_view_open_trusted, trust.h, does both at once). *out is
 * the caller's (ap_view_close); on failure it is NULL and err names the file. Reading and
 * searching an open view is thread-safe. */
AP_API ap_status ap_view_open(const char *dir, ap_view **out, ap_err *err);
/* Closes the view and everything it mapped: every pointer borrowed from it (embedder,
 * manifest bytes, base directory) becomes invalid. NULL is a no-op. */
AP_API void ap_view_close(ap_view *v);

/* AP_OK while every file the view has mapped is still the file it opened (same inode,
 * size, mtime and ctime); AP_ERR_VERIFY naming the file once one was changed in place.
 * Callers that promise verified bytes check it after reading them (docs/SECURITY.md). */
AP_API ap_status ap_view_check_unchanged(const ap_view *v, ap_err *err);

/* Facts of the open view. */
AP_API uint64_t ap_view_version(const ap_view *v); /* 0 for a single pack */
AP_API uint32_t ap_view_dim(const ap_view *v);
AP_API uint32_t ap_view_n_lists(const ap_view *v); /* the base's lists */
/* The probe searches use when none is given: the one the base's build calibrated (its
 * manifest's build.calibration.default_probe, docs/FORMAT.md), else ap_default_probe(). */
AP_API uint32_t ap_view_default_probe(const ap_view *v);
AP_API uint64_t ap_view_live_count(const ap_view *v);
AP_API uint32_t ap_view_n_deltas(const ap_view *v);
/* The embedder of the base (every delta uses the same), borrowed: valid until
 * ap_view_close(v). */
AP_API const ap_embedder *ap_view_embedder(const ap_view *v);
/* The base pack's directory: DIR itself for a single pack, DIR joined with the root
 * manifest's base path for a packset (not necessarily DIR/base). Borrowed: valid until
 * ap_view_close(v). */
AP_API const char *ap_view_base_dir(const ap_view *v);
/* The root manifest bytes exactly as read (*len bytes; len may be NULL), borrowed: valid
 * until ap_view_close(v). */
AP_API const char *ap_view_manifest_raw(const ap_view *v, size_t *len);
/* The root manifest's "expires" (RFC 3339 UTC) as Unix seconds in *t: AP_OK, or
 * AP_ERR_NOTFOUND when it has none (err untouched), AP_ERR_FORMAT when it is malformed. */
AP_API ap_status ap_view_expires(const ap_view *v, long long *t, ap_err *err);

/* Embeds text[0..len) with the view's embedder into the caller's q (ap_view_dim(v)
 * floats, unit length). A "vectors" pack refuses text (AP_ERR_UNSUPPORTED). */
AP_API ap_status ap_view_embed(const ap_view *v, const char *text, size_t len, float *q,
                               ap_err *err);

/* Global top-k over live documents (DESIGN.md semantics), probing the base centroids;
 * delta vectors are scanned with the base list whose centroid is nearest to them. With
 * probe >= n_lists the result is brute force over the live set. q is ap_view_dim(v)
 * floats of unit length (ap_l2_normalize); k is 1..AP_MAX_K and probe >= 1 (else
 * AP_ERR_ARG). The caller's hits holds k entries; *n receives the number filled, best
 * first. */
AP_API ap_status ap_view_search(const ap_view *v, const float *q, uint32_t k, uint32_t probe,
                                ap_hit *hits, uint32_t *n, ap_err *err);

/* The same with every search parameter (scan mode, rerank) and optional statistics
 * (stats fields are added to). The base's int8 sidecar, when present, is used for the
 * base lists in AP_SCAN_AUTO/AP_SCAN_SQ8; delta vectors are always scored exactly. The
 * per-thread scratch makes repeated calls allocation-free. */
AP_API ap_status ap_view_search_ex(const ap_view *v, const float *q, const ap_search_params *p,
                                   ap_hit *hits, uint32_t *n, ap_search_stats *stats, ap_err *err);

/* One metadata filter condition: the row's column col equals value (both the caller's,
 * NUL-terminated UTF-8). */
typedef struct ap_where {
    const char *col;
    const char *value;
} ap_where;

/* ap_view_search_ex among the live documents matching every condition (AND; each column
 * at most once), on the columns the base was built to filter on (build --filter-cols,
 * docs/FORMAT.md "pack.filter"; deltas carry their own sets). Non-matching documents are
 * left out inside the scan, like deleted ones, so with probe >= n_lists the result is the
 * exact top k of the matching live documents. Errors: AP_ERR_NOTFOUND for a pack without
 * filter columns, an unknown column, or a value no document has (each message names it);
 * AP_ERR_ARG for a column given twice. nwhere 0 is ap_view_search_ex. */
AP_API ap_status ap_view_search_where(const ap_view *v, const float *q, const ap_search_params *p,
                                      const ap_where *where, size_t nwhere, ap_hit *hits,
                                      uint32_t *n, ap_search_stats *stats, ap_err *err);

/* Checks conditions as ap_view_search_where would, without searching (the mount refuses a
 * query name with an unknown column or value before answering it). Same errors. */
AP_API ap_status ap_view_where_check(const ap_view *v, const ap_where *where, size_t nwhere,
                                     ap_err *err);

/* Whether the base has the int8 sidecar (pack.sq8). */
AP_API bool ap_view_has_sq8(const ap_view *v);
/* Whether the base has the 1-bit code sidecar (pack.bits). */
AP_API bool ap_view_has_bits(const ap_view *v);

/* What range verification against pack.digests has done in an open view (summed over its
 * layers; docs/SECURITY.md, "Lazy verification"). */
typedef struct ap_view_verify {
    bool digests;                   /* some layer has a digest table and was opened with hashes */
    uint64_t ranges_total;          /* ranges the tables cover */
    uint64_t ranges_hashed;         /* ranges hashed so far (each at most once per open view) */
    uint64_t ranges_bad;            /* ranges found not to match (each fails every use) */
    char first_bad[AP_ERR_MSG_MAX]; /* the first failure, naming file and list/frame, or "" */
} ap_view_verify;

/* Fills the caller's *out (a snapshot; thread-safe). */
AP_API void ap_view_verify_info(const ap_view *v, ap_view_verify *out);

/* Hashes up to max_bytes of ranges not yet checked (the base's lists, its sidecar's, its
 * frames, in order), for a background verifier; *done is set once every range is checked.
 * A range that fails is recorded as ap_view_verify reports it, and the walk goes on
 * (AP_OK); other errors (I/O) are returned. Thread-safe against searches. */
AP_API ap_status ap_view_verify_step(const ap_view *v, uint64_t max_bytes, bool *done, ap_err *err);

/* The live row of id and the layer (seq) it comes from: *row is a malloc'd
 * NUL-terminated copy of *len bytes without the newline (the caller frees it with
 * ap_free); layer may be NULL. AP_ERR_NOTFOUND when id is absent or deleted. */
AP_API ap_status ap_view_get_row(const ap_view *v, uint64_t id, char **row, size_t *len,
                                 uint32_t *layer, ap_err *err);

/* An ap_row_fn (search.h) for ap_results_json over a view: the row of a hit from the
 * layer (seq) it names, malloc'd into *row (the caller's: ap_free). The receiver is
 * void * only because ap_row_fn passes its user data that way: give the view itself
 * (const ap_view *, which the function only reads) as ap_results_json's ud. A hit whose
 * layer has no row for it is AP_ERR_VERIFY. */
AP_API ap_status ap_view_row_of(void *view, uint64_t id, uint32_t layer, char **row, ap_err *err);

/* `annpack inspect` / `annpack packset status` reports: malloc'd JSON text (the caller
 * frees it with ap_free), or NULL when out of memory. */
AP_API char *ap_view_inspect_json(const ap_view *v);
AP_API char *ap_view_status_json(const ap_view *v);

/* ---- operations (each atomic: temp files, fsync, rename of the root manifest last) ---- */

/* What an operation that changes or reads a packset checks first, and what it may replace.
 * NULL means all defaults. */
typedef struct ap_change_opts {
    /* The packset is verified (an "expires" in the past is accepted) before anything is
     * read or changed: every hash and the structure when the operation reads the layers'
     * data (build-delta into a packset, rebase), else the root manifest and what it pins of
     * each layer (append, promote, revert: O(delta); docs/PACKSET.md). With keys, its
     * signature must verify with one of them; a signed packset (DIR/pack.manifest.json.sig
     * present) without keys is refused, so a change never launders bytes that no longer
     * match their signature. */
    const ap_pubkey *pubkeys;
    size_t npubkeys;
    /* Replace an existing output that is not what the operation would write (never a
     * delta the root manifest references). */
    bool force;
} ap_change_opts;

/* Builds DIR/base from a CSV and writes the root manifest (version 1). o->output_dir is
 * the packset directory. An existing directory is replaced only when empty, when it is an
 * earlier build-base output (unsigned, version 1, no deltas, nothing else in it) or with
 * o->force; otherwise AP_ERR_EXISTS. */
AP_API ap_status ap_packset_build_base(const ap_build_opts *o, ap_build_report *rep, ap_err *err);

typedef struct ap_delta_opts {
    const char *base_dir; /* the base pack directory the delta applies to */
    const char *add_csv;  /* adds/updates (NULL: delete-only) */
    const char *text_col, *id_col;
    const uint64_t *delete_ids;
    size_t n_delete;
    const char *out_dir;
    uint32_t lists; /* 0 = automatic */
    uint64_t seed;
    ap_meta_codec meta_codec;
    ap_progress_fn progress;
    void *progress_ud;
    /* An existing out_dir that differs from the delta built (byte for byte) is replaced
     * (atomically) only with force; an identical one (the leftover of an interrupted run
     * of the same command) is kept. */
    bool force;
} ap_delta_opts;

/* Builds a delta directory: a pack of the added rows embedded with the base's embedder,
 * tombstones.jsonl and delta.manifest.json recording the base's hashes. An id both added
 * and deleted is refused. */
AP_API ap_status ap_delta_build(const ap_delta_opts *o, ap_err *err);

/* Verifies the packset (ap_change_opts), builds a delta at o->out_dir (inside the
 * packset; o->base_dir is ignored: the packset's base is used) and appends it as seq
 * (0 = next). An out_dir the root manifest references is refused; an unreferenced one is
 * handled as ap_delta_build does. A built delta that cannot be appended is removed. */
AP_API ap_status ap_packset_add_delta(const char *packset_dir, const ap_delta_opts *o, uint64_t seq,
                                      const ap_change_opts *co, ap_err *err);

/* Appends the delta at DIR/<delta_dir> (already inside the packset) to the root manifest
 * as seq (0 = next), bumping version. Refused: the packset does not verify (co), seq not
 * greater than every existing seq, built against another base, embedder/dim mismatch, the
 * delta fails verification. */
AP_API ap_status ap_packset_append_delta(const char *packset_dir, const char *delta_dir,
                                         uint64_t seq, const ap_change_opts *co, ap_err *err);

/* Copies an outside delta into DIR/deltas/NNNN.delta as the next seq and appends it (a
 * delta already at that place is appended where it is). A name the root manifest uses is
 * skipped (NNNN-2.delta, ...); an unreferenced directory there is kept when it is an exact
 * copy (a leftover of an interrupted promote), replaced with co->force, else refused.
 * seq_out (may be NULL) receives the seq it was appended as. */
AP_API ap_status ap_packset_promote_delta(const char *packset_dir, const char *delta_dir,
                                          const ap_change_opts *co, uint64_t *seq_out, ap_err *err);

/* Drops deltas with seq > to_seq; version still increases. The dropped directories are
 * then removed without following symlinks (one reached through a symlink is left, with a
 * warning in the log). */
AP_API ap_status ap_packset_revert(const char *packset_dir, uint64_t to_seq,
                                   const ap_change_opts *co, ap_err *err);

/* Compacts base + deltas − tombstones into a new packset at out_dir (a new base, no
 * deltas, version = old version + 1), reusing stored vectors and metadata rows byte for
 * byte, with the recorded embedder. The source is verified first (co). An existing
 * out_dir is kept when identical to the result, replaced atomically with co->force, else
 * refused. */
AP_API ap_status ap_packset_rebase(const char *packset_dir, const char *out_dir, uint32_t lists,
                                   uint64_t seed, const ap_change_opts *co, ap_progress_fn progress,
                                   void *progress_ud, ap_err *err);

/* Creates a packset at out_dir from a base pack directory and delta directories (copied).
 * An existing out_dir is handled as by rebase (co->force; keys are not used). */
AP_API ap_status ap_packset_create(const char *base_dir, const char *const *delta_dirs,
                                   size_t n_deltas, const char *out_dir, const ap_change_opts *co,
                                   ap_err *err);

/* Parses delete ids from text[0..len) (name for messages): JSONL {"id":N} rows or one
 * integer per line. *ids receives a malloc'd array of *n ids (the caller frees it with
 * ap_free; NULL when n is 0). Errors: AP_ERR_FORMAT naming name and the line. */
AP_API ap_status ap_parse_id_list(const char *text, size_t len, const char *name, uint64_t **ids,
                                  size_t *n, ap_err *err);

#ifdef __cplusplus
}
#endif
#ifdef AP_EXPERIMENTAL
#define ANNPACK_PACKSET_H_COMPLETE /* experimental.h extends this header */
#include "experimental.h"
#endif
#endif
