/* Coarse probing: choosing the lists a query scans (internal to core).
 *
 * Scoring every centroid in float32 reads n_lists * dim * 4 bytes per query (1.5 MiB for
 * 1024 x 384), which costs more than 20 us from L2/L3 once the list scan has evicted it.
 * Instead the centroids also get int8 codes (the sidecar's scheme, 4x fewer bytes); a
 * query scores those with the int8 kernel, keeps a shortlist of the best
 * AP_COARSE_SHORTLIST(probe) lists, re-scores the shortlist exactly in float32 (cblas_sdot)
 * and keeps the probe best of it. The lists chosen are the exact float32 top-probe
 * whenever those are inside the shortlist: on the benchmark data (1024 lists, dim 384)
 * that held for 1000 of 1000 queries at probe 8, 32 and 64 already with probe + 8. */
#ifndef ANNPACK_CORE_COARSE_H
#define ANNPACK_CORE_COARSE_H

#include <stddef.h>
#include <stdint.h>

#include <pthread.h>
#include <stdatomic.h>

#include "annpack/search.h"

#define AP_COARSE_MIN_LISTS 256u /* below this float32 scoring is cheap anyway */
#define AP_COARSE_SHORTLIST(probe) ((probe) + (probe) / 8u + 8u)
/* Re-scoring a shortlist of m rows (cblas_sdot each) stays cheaper than scoring all n_lists
 * in float32 (sgemv over 1.5 MiB for 1024 x 384, mostly evicted by the list scan) well past
 * m = n_lists / 16: at 1024 x 384 the coarse step took 47-51 us by the shortlist against
 * 172-192 us by sgemv at probe 64 (m = 80), 91-103 us against 234+ us at probe 128, with the
 * same lists for 1000 of 1000 queries (BENCHMARKS.md, issue 18). So up to a quarter. */
#define AP_COARSE_USE(probe, n_lists) (AP_COARSE_SHORTLIST(probe) <= (n_lists) / 4u)

typedef struct ap_coarse ap_coarse;

/* Codes for n_lists x dim centroids; NULL when not worth it (few lists, too large) or
 * out of memory, in which case searches score the float32 centroids. */
ap_coarse *ap_coarse_build(const float *centroids, uint32_t n_lists, uint32_t dim);
void ap_coarse_free(ap_coarse *c);

/* The codes of one index, built on the first single-query search that uses them, not at
 * open (verify, copies and batch searches never need them). The owner of the index (a
 * view, a pack) keeps one; the search index points at it. */
typedef struct ap_coarse_cache {
    atomic_int built;
    pthread_mutex_t lock;
    ap_coarse *c;
} ap_coarse_cache;

void ap_coarse_cache_init(ap_coarse_cache *cc);
void ap_coarse_cache_free(ap_coarse_cache *cc);

/* a's codes (thread-safe); NULL: score the float32 centroids. */
const ap_coarse *ap_coarse_cache_get(ap_coarse_cache *cc, const ap_annp *a);

/* Buffers a probe needs, owned by the caller (per-thread scratch). */
typedef struct ap_coarse_work {
    int8_t *w;    /* stride */
    int32_t *is;  /* n_lists */
    int32_t *tmp; /* 3 * n_lists + 8 */
    ap_hit *heap; /* probe */
} ap_coarse_work;

uint32_t ap_coarse_stride(const ap_coarse *c);

/* The probe best lists for q (AP_COARSE_SHORTLIST(probe) < n_lists), best first by exact
 * score (ties: lower index). lists holds AP_COARSE_SHORTLIST(probe). Returns the count. */
uint32_t ap_coarse_probe(const ap_coarse *c, const float *centroids, const float *q, uint32_t probe,
                         ap_coarse_work *wk, uint32_t *lists);

#endif
