/* The scan of f16 lists and the choice of lists from centroid scores (internal to core):
 * the parts of a query that need neither threads nor BLAS, so that ivf.c and the
 * WebAssembly core (web/wasm/) run the same code. */
#ifndef ANNPACK_CORE_SCAN_H
#define ANNPACK_CORE_SCAN_H

#include <stdint.h>

#include "annpack/search.h"
#include "kernels.h"

#define AP_SCAN_BLOCK 256u /* vectors scored per kernel call */

/* Bit b of a tombstone bitmap (NULL: none dead). */
static inline int ap_is_dead(const uint8_t *dead, uint64_t b)
{
    return dead && (dead[b >> 3] & (1u << (b & 7)));
}

/* The probe best of s[0..n_lists) (centroid scores), best first (ties: lower index), into
 * lists; heap holds probe hits. Returns the count (fewer than probe only when scores are
 * NaN). */
uint32_t ap_select_lists(const float *s, uint32_t n_lists, uint32_t probe, ap_hit *heap,
                         uint32_t *lists);

/* Which documents a filtered query may return: fn(ctx, layer index, id) is asked about
 * each candidate that reaches the top-k floor and is not dead, so a filter costs a lookup
 * per candidate of the lists scanned, nothing for the lists not probed. */
typedef struct ap_keep {
    int (*fn)(void *ctx, uint32_t layer, uint64_t id);
    void *ctx; /* the query's own (one thread): fn may keep state in it */
} ap_keep;

/* Exact f16 scan of list l into t with kernel fn (buf holds AP_SCAN_BLOCK scores),
 * skipping vectors dead in dead (bit dead_base + j for the list's j-th vector) and those
 * keep (NULL: all kept) refuses as of layer index 0; hits get layer. next (or NULL) is the next
 * list's first vector, fetched while the last block of this one is scored, since the hardware
 * prefetcher has to find the new stream anew. */
void ap_scan_f16(ap_topk *t, ap_f16_block_fn fn, float *buf, const float *q, uint32_t dim,
                 const ap_annp_list *l, const uint8_t *dead, uint64_t dead_base,
                 const ap_keep *keep, uint32_t layer, const uint8_t *next, uint64_t next_len);

#endif
