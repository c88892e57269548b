/* The document-frequency table of "hash" version 2: see idf_table.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "endian.h"
#include "idf_table.h"

/* idf from the counts of bytes (already checked). */
static ap_status derive(ap_idf_table *t, ap_err *err)
{
    if (!(t->idf = malloc((size_t)t->n_buckets * sizeof *t->idf)))
        return ap_err_set(err, AP_ERR_NOMEM, "out of memory for the idf table");
    double n = (double)t->n_docs;
    for (uint32_t b = 0; b < t->n_buckets; b++) {
        double df = (double)ap_le32(t->bytes + AP_IDF_HEADER + 4ull * b);
        t->idf[b] = log(1.0 + (n - df + 0.5) / (df + 0.5));
    }
    ap_sha256_hex(t->bytes, t->len, t->sha256);
    return AP_OK;
}

ap_status ap_idf_parse(const void *bytes, size_t len, const char *name, ap_idf_table *t,
                       ap_err *err)
{
    memset(t, 0, sizeof *t);
    const unsigned char *p = bytes;
    if (len < AP_IDF_HEADER || memcmp(p, AP_IDF_MAGIC, 8) != 0)
        return ap_err_set(err, AP_ERR_FORMAT, "%s: not an idf table (magic %s)", name,
                          AP_IDF_MAGIC);
    uint32_t version = ap_le32(p + 8), nb = ap_le32(p + 12);
    if (version != AP_IDF_VERSION)
        return ap_err_set(err, AP_ERR_UNSUPPORTED,
                          "%s: idf table version %u not supported (need %u)", name, version,
                          AP_IDF_VERSION);
    if (nb == 0 || (nb & (nb - 1)) || nb > (1u << AP_IDF_MAX_BITS))
        return ap_err_set(err, AP_ERR_FORMAT, "%s: n_buckets %u is not a power of two in [1, 2^%u]",
                          name, nb, AP_IDF_MAX_BITS);
    if (len != AP_IDF_HEADER + 4ull * nb)
        return ap_err_set(err, AP_ERR_FORMAT, "%s: %zu bytes, %u buckets need %llu", name, len, nb,
                          (unsigned long long)(AP_IDF_HEADER + 4ull * nb));
    uint64_t n_docs = ap_le64(p + 16);
    for (uint32_t b = 0; b < nb; b++)
        if (ap_le32(p + AP_IDF_HEADER + 4ull * b) > n_docs)
            return ap_err_set(err, AP_ERR_FORMAT,
                              "%s: bucket %u counts %u documents, more than n_docs %llu", name, b,
                              ap_le32(p + AP_IDF_HEADER + 4ull * b), (unsigned long long)n_docs);
    if (!(t->bytes = malloc(len))) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    memcpy(t->bytes, p, len);
    t->len = len;
    t->n_buckets = nb;
    t->n_docs = n_docs;
    t->total_len = ap_le64(p + 24);
    ap_status st = derive(t, err);
    if (st) ap_idf_free(t);
    return st;
}

ap_status ap_idf_from_counts(uint32_t *df_full, uint64_t n_docs, uint64_t total_len,
                             ap_idf_table *t, ap_err *err)
{
    memset(t, 0, sizeof *t);
    uint32_t full = 1u << AP_IDF_FULL_BITS, used = 0;
    for (uint32_t b = 0; b < full; b++)
        used += df_full[b] != 0;
    uint32_t nb = 1u << AP_IDF_MIN_BITS;
    while (nb < full && nb < 2ull * used)
        nb <<= 1;
    for (uint32_t b = nb; b < full; b++) {
        uint64_t s = (uint64_t)df_full[b & (nb - 1)] + df_full[b];
        df_full[b & (nb - 1)] = (uint32_t)(s > UINT32_MAX ? UINT32_MAX : s);
    }
    t->len = AP_IDF_HEADER + 4ull * nb;
    if (!(t->bytes = calloc(1, t->len))) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    memcpy(t->bytes, AP_IDF_MAGIC, 8);
    ap_put32(t->bytes + 8, AP_IDF_VERSION);
    ap_put32(t->bytes + 12, nb);
    ap_put64(t->bytes + 16, n_docs);
    ap_put64(t->bytes + 24, total_len);
    for (uint32_t b = 0; b < nb; b++)
        ap_put32(t->bytes + AP_IDF_HEADER + 4ull * b,
                 df_full[b] > n_docs ? (uint32_t)n_docs : df_full[b]);
    t->n_buckets = nb;
    t->n_docs = n_docs;
    t->total_len = total_len;
    ap_status st = derive(t, err);
    if (st) ap_idf_free(t);
    return st;
}

void ap_idf_free(ap_idf_table *t)
{
    free(t->idf);
    free(t->bytes);
    memset(t, 0, sizeof *t);
}
