/* The built-in "hash" embedder (internal constructor; see docs/FORMAT.md "Embedder"). */
#ifndef ANNPACK_CORE_EMBED_HASH_H
#define ANNPACK_CORE_EMBED_HASH_H

#include "annpack/embed.h"

ap_status ap_embed_hash_create(uint32_t dim, uint64_t seed, ap_embedder **out, ap_err *err);

#endif
