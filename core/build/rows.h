/* The rows of a build being read (internal to core; rows.c): the input CSV's columns or
 * the given vectors, every row's id and unit vector, its metadata row written as it comes,
 * texts embedded in parallel batches. */
#ifndef ANNPACK_CORE_ROWS_H
#define ANNPACK_CORE_ROWS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "annpack/build.h"
#include "annpack/csv.h"
#include "annpack/embed.h"
#include "annpack/meta.h"
#include "annpack/sign.h"
#include "annpack/vecs.h"

/* Texts embedded per batch. */
#define AP_EMBED_BATCH 2048u
/* ... with an HTTP embedder (progress is reported after each). */
#define AP_EMBED_REMOTE_BATCH 256u

/* The inputs' SHA-256 and sizes, for the manifest's "build" block. */
typedef struct ap_input_hashes {
    char vectors_hex[AP_SHA256_HEX], csv_hex[AP_SHA256_HEX];
    uint64_t vectors_size, csv_size;
} ap_input_hashes;

typedef struct ap_id_line {
    uint64_t id, line;
} ap_id_line;

/* Zero-initialise, then ap_rows_open; ap_rows_free in any case. */
typedef struct ap_rows {
    const ap_build_opts *o;
    ap_embedder *emb;
    uint32_t dim;
    /* column layout */
    char **cols;
    size_t ncols;
    size_t text_i, id_i;
    int has_id;
    ap_csv *csv;  /* the input CSV, or NULL (vectors only) */
    ap_vecs *vin; /* given vectors (build --vectors), or NULL: embed the text column */
    /* accumulated rows */
    float *vecs;
    size_t n, cap;
    ap_id_line *ids;
    /* pending texts: a batch, or every text when the embedder must first learn its corpus
     * table (corpus.h) */
    char **texts;
    size_t *lens;
    size_t pending, tcap;
    bool emb_given; /* emb is the caller's (ap_pack_build_with), not freed here */
    double t_embed;
    ap_input_hashes hashes; /* ap_rows_hash_inputs's, copied in by the caller */
} ap_rows;

/* Opens the inputs o names: the embedder (the given vectors', a recorded one, or a named
 * one), and the CSV with its header checked against the text and id columns. */
ap_status ap_rows_open(ap_rows *r, const ap_build_opts *o, ap_err *err);

/* As ap_rows_open, embedding with the caller's embedder (a base's, with its table; it
 * must outlive r) instead of the one o names. */
ap_status ap_rows_open_with(ap_rows *r, const ap_build_opts *o, const ap_embedder *emb,
                            ap_err *err);

/* Reads every row: its vector into r, its metadata row into the metadata files of dir
 * (which it finishes). *skipped: rows past o->max_rows. */
ap_status ap_rows_read(ap_rows *r, const char *dir, uint64_t *skipped, ap_err *err);

/* Hashes the inputs o names (its vectors and CSV files) into *h, reading them with bounded
 * buffers. Meant to run on a thread of its own while the rows are read; gives up as soon as
 * *stop is set (the reader failed: its error is the one to report). */
ap_status ap_rows_hash_inputs(const ap_build_opts *o, ap_input_hashes *h, const atomic_int *stop,
                              ap_err *err);

/* The input's part of the manifest's "build" block (r->hashes and the columns); NULL when
 * out of memory. */
cJSON *ap_rows_build_block(const ap_rows *r, uint64_t skipped);

void ap_rows_free(ap_rows *r);

/* Seconds on the monotonic clock (for the build report's timings). */
double ap_now_s(void);

/* Logs (debug level) that phase took the seconds since *t0 and the process's peak RSS so
 * far, then sets *t0 to now: where a build's time and memory go. */
void ap_phase_log(const char *phase, double *t0);

#endif
