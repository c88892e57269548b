/* The document-frequency table of the "hash" embedder version 2 (internal to core/embed/;
 * the file pack.idf, docs/FORMAT.md "pack.idf").
 *
 * Features are hashed into n_buckets buckets (a power of two); the table holds, per
 * bucket, how many documents of the corpus contain a feature of that bucket, plus the
 * document count and the total document length, from which the embedder derives each
 * feature's inverse document frequency and the average length. */
#ifndef ANNPACK_CORE_EMBED_IDF_TABLE_H
#define ANNPACK_CORE_EMBED_IDF_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "annpack/sign.h"
#include "annpack/status.h"

#define AP_IDF_MAGIC "ANNPIDF1" /* 8 bytes */
#define AP_IDF_VERSION 1u
#define AP_IDF_HEADER 32u
/* Buckets the writer counts at (then folds down, see ap_idf_fold). */
#define AP_IDF_FULL_BITS 20u
#define AP_IDF_MIN_BITS 10u
/* The reader accepts up to 2^24 buckets (a 64 MiB table). */
#define AP_IDF_MAX_BITS 24u

typedef struct ap_idf_table {
    uint32_t n_buckets; /* a power of two */
    uint64_t n_docs;
    uint64_t total_len;   /* sum of the documents' lengths (word features) */
    double *idf;          /* n_buckets: ln(1 + (N - df + 0.5) / (df + 0.5)) */
    unsigned char *bytes; /* the file, as written or read */
    size_t len;
    char sha256[AP_SHA256_HEX]; /* of bytes */
} ap_idf_table;

/* The bucket of a feature hash h at n_buckets (a power of two). */
static inline uint32_t ap_idf_bucket(uint64_t h, uint32_t n_buckets)
{
    return (uint32_t)(h >> 32) & (n_buckets - 1u);
}

/* Parses and checks a pack.idf image (copied); name for messages. */
ap_status ap_idf_parse(const void *bytes, size_t len, const char *name, ap_idf_table *t,
                       ap_err *err);

/* Builds the table from document frequencies counted at 2^AP_IDF_FULL_BITS buckets
 * (df_full, modified: folded in place): the smallest power of two n_buckets >= twice the
 * non-empty buckets, within [2^AP_IDF_MIN_BITS, 2^AP_IDF_FULL_BITS], each bucket the sum of
 * the full buckets congruent to it, capped at n_docs. */
ap_status ap_idf_from_counts(uint32_t *df_full, uint64_t n_docs, uint64_t total_len,
                             ap_idf_table *t, ap_err *err);

void ap_idf_free(ap_idf_table *t);

#endif
