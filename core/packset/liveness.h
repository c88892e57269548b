/* The merged view's liveness rule (internal to core; docs/PACKSET.md, "Semantics"): the
 * newest layer mentioning an id — an added row or a tombstone — decides. Pure functions of
 * ids, apart from the view's files, so that packset/view.c and the WebAssembly core
 * (web/wasm/) apply the same rule. */
#ifndef ANNPACK_CORE_LIVENESS_H
#define ANNPACK_CORE_LIVENESS_H

#include <stddef.h>
#include <stdint.h>

#include "annpack/format.h"

/* An id mentioned by a delta layer (1 = the first delta). */
typedef struct ap_mention {
    uint64_t id;
    uint32_t layer;
} ap_mention;

/* Sorts m[0..n) by id, keeps only the newest layer's mention of each id, and returns the
 * count kept (m is then sorted by id, ids unique). */
size_t ap_mentions_resolve(ap_mention *m, size_t n);

/* The newest layer mentioning id in resolved mentions m[0..n), or -1. */
int32_t ap_mentions_newest(const ap_mention *m, size_t n, uint64_t id);

/* Sets bit pos0 + j of dead for every vector j of list l (stored in layer) that is not
 * live: in the base (layer 0) when any delta mentions its id, in a delta when a newer
 * layer does. Returns the count of live vectors in l. */
uint32_t ap_list_dead_bits(const ap_mention *m, size_t n, const ap_annp_list *l, uint32_t layer,
                           uint8_t *dead, uint64_t pos0);

#endif
