/* Internal constructors of the built-in embedders (docs/FORMAT.md "Embedder"): "hash",
 * and "vectors" for packs built from given vectors (it refuses to embed text). */
#ifndef ANNPACK_CORE_EMBED_HASH_H
#define ANNPACK_CORE_EMBED_HASH_H

#include "embedder.h"

/* Declared, not included: hash.c is also compiled for WebAssembly (web/wasm), without cJSON. */
struct cJSON;

ap_status ap_embed_hash_create(uint32_t dim, uint64_t seed, ap_embedder **out, ap_err *err);
/* Version 2; idf_sha256: the table a pack's block names (load it before embedding), or NULL
 * for a new build (fit it). */
ap_status ap_embed_hash2_create(uint32_t dim, uint64_t seed, const char *idf_sha256,
                                ap_embedder **out, ap_err *err);
ap_status ap_embed_vectors_create(uint32_t dim, ap_embedder **out, ap_err *err);

/* The HTTP embedders (http_embedder.c): the API table of a name ("openai", "tei",
 * "ollama") or NULL, and an embedder recreated from a manifest block (the endpoint is the
 * host's: ap_embed_set_endpoint). */
struct ap_http_api;
const struct ap_http_api *ap_http_api_named(const char *name);
ap_status ap_embed_http_create(const char *api, const ap_embed_model *m, ap_embedder **out,
                               ap_err *err);
ap_status ap_embed_http_from_json(const struct cJSON *block, const char *name, ap_embedder **out,
                                  ap_err *err);

#endif
