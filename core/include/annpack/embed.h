/* annpack — embedders: text to unit vectors.
 *
 * An embedder is named and configured by the manifest's "embedder" block; queries must
 * be embedded exactly as the documents were, so the block is all a reader needs to
 * recreate it. Built in: "hash" (deterministic, offline, lexical; see docs/FORMAT.md) and
 * "vectors" (packs built from given vectors; it refuses to embed text). Both are offline:
 * no embedder annpack has uses the network. Embedders are opaque and safe to share
 * between threads; a program gets the one of an open pack or packset from
 * ap_view_embedder and embeds with ap_view_embed (packset.h). */
#ifndef ANNPACK_EMBED_H
#define ANNPACK_EMBED_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AP_EMBED_DEFAULT_DIM 256u
/* The version of "hash" new builds use (1 stays readable: docs/FORMAT.md "Embedder"). */
#define AP_EMBED_HASH_VERSION 2u

typedef struct ap_embedder ap_embedder;

/* The embedder's name ("hash", "vectors", ...): static storage. */
AP_API const char *ap_embedder_name(const ap_embedder *e);

/* The dimension of the vectors it writes. */
AP_API uint32_t ap_embedder_dim(const ap_embedder *e);

/* Scales v (dim floats) to unit length in place, as every front end normalises a given
 * query vector: a sequential double sum of squares, then each value divided by the norm
 * and rounded to float. Returns the original norm (0 leaves v unchanged). */
AP_API double ap_l2_normalize(float *v, uint32_t dim);

#ifdef __cplusplus
}
#endif
#ifdef AP_EXPERIMENTAL
#define ANNPACK_EMBED_H_COMPLETE /* experimental.h extends this header */
#include "experimental.h"
#endif
#endif
