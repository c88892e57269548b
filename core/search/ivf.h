/* The IVF search engine behind every search entry point (internal to core): a pack's own
 * lists, optionally its int8 sidecar and a dead-position bitmap, plus extra vectors
 * scanned with a list (the merged view's delta vectors). */
#ifndef ANNPACK_CORE_IVF_H
#define ANNPACK_CORE_IVF_H

#include <stddef.h>
#include <stdint.h>

#include "annpack/bits.h"
#include "annpack/search.h"
#include "annpack/sq8.h"
#include "scan.h"

/* One vector outside the base lists: pointers into a layer's mapped ANNP file. */
typedef struct ap_item {
    const uint8_t *idp;
    const uint8_t *vec;
    uint32_t layer; /* layer index */
} ap_item;

/* The item's id (u64 little-endian, possibly unaligned, as in its list). */
static inline uint64_t ap_item_id(const ap_item *it)
{
    ap_annp_list one = {.count = 1, .ids = it->idp};
    return ap_annp_list_id(&one, 0);
}

struct ap_coarse_cache;

typedef struct ap_ivf {
    const ap_annp *annp;
    struct ap_coarse_cache *coarse; /* the owner's lazily built centroid codes, or NULL */
    const ap_sq8 *sq8;              /* NULL: no sidecar */
    const ap_bits *bits;            /* NULL: no 1-bit codes (extra vectors: scored exactly) */
    const uint8_t *dead;            /* bit per ANNP position, or NULL */
    const size_t *xstart;           /* n_lists + 1 ranges into x, or NULL */
    const ap_item *x;               /* extra vectors, scanned with their list */
    const uint8_t *xcodes;          /* sq8 codes of x (base params), when sq8 is set */
    const uint64_t *layer_seq;      /* item layer index -> the hit's layer (seq) */
    const ap_keep *keep;            /* a filter asked about each candidate, or NULL */
    /* Called for every list a query will scan, before any of its bytes is used (lazy
     * verification, pack/lazy.h); a failure fails the query. NULL: none. */
    ap_status (*guard)(const void *ctx, uint32_t list, ap_err *err);
    const void *guard_ctx;
} ap_ivf;

/* Validates p against the index (k, probe, scan mode, rerank) and clamps probe. */
ap_status ap_ivf_check(const ap_ivf *ix, ap_search_params *p, ap_err *err);

/* One query (unit length, dim floats). hits holds p->k entries; stats may be NULL.
 * Allocation-free after the calling thread's first searches (per-thread scratch). */
ap_status ap_ivf_search(const ap_ivf *ix, const float *q, const ap_search_params *p, ap_hit *hits,
                        uint32_t *n, ap_search_stats *stats, ap_err *err);

/* nq queries (row-major) at once: centroids scored with one sgemm, then each query's
 * lists scanned. hits holds nq * k entries (query i at i * k), n nq counts. */
ap_status ap_ivf_search_batch(const ap_ivf *ix, const float *q, size_t nq,
                              const ap_search_params *p, ap_hit *hits, uint32_t *n,
                              ap_search_stats *stats, ap_err *err);

#endif
