/* annpack — embedders: text to unit vectors.
 *
 * An embedder is named and configured by the manifest's "embedder" block; queries must
 * be embedded exactly as the documents were, so the block is all a reader needs to
 * recreate it. Built in: "hash" (deterministic, offline, lexical; see docs/FORMAT.md).
 * The interface (ap_embedder_ops) lets network embedders be added without touching
 * callers; ANNPACK_OFFLINE=1 forbids those. Embedders are safe to share between threads. */
#ifndef ANNPACK_EMBED_H
#define ANNPACK_EMBED_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AP_EMBED_DEFAULT_DIM 256u
#define AP_EMBED_HASH_VERSION 1u

typedef struct ap_embedder ap_embedder;

typedef struct ap_embedder_ops {
    const char *name;
    /* Writes dim floats, L2-normalised, for text[0..len). */
    ap_status (*embed)(const ap_embedder *e, const char *text, size_t len, float *out, ap_err *err);
    /* The manifest block as a malloc'd JSON object text with a stable key order. */
    char *(*describe)(const ap_embedder *e);
    void (*destroy)(ap_embedder *e);
} ap_embedder_ops;

struct ap_embedder {
    const ap_embedder_ops *ops;
    uint32_t dim;
    uint64_t seed;
    void *impl;
};

/* Creates a named embedder. dim 0 means the default. Errors: unknown name
 * (AP_ERR_UNSUPPORTED, listing the known ones), dim above ANNPACK_MAX_DIM (AP_ERR_LIMIT). */
AP_API ap_status ap_embedder_create(const char *name, uint32_t dim, uint64_t seed,
                                    ap_embedder **out, ap_err *err);

/* Recreates the embedder a manifest's "embedder" block describes (JSON object text). */
AP_API ap_status ap_embedder_from_json(const char *json, size_t len, const char *name,
                                       ap_embedder **out, ap_err *err);

AP_API ap_status ap_embedder_embed(const ap_embedder *e, const char *text, size_t len, float *out,
                                   ap_err *err);
AP_API char *ap_embedder_describe(const ap_embedder *e);
/* The embedder's name ("hash", "vectors", ...): static storage. */
AP_API const char *ap_embedder_name(const ap_embedder *e);
AP_API void ap_embedder_free(ap_embedder *e);

/* Scales v to unit length in place; returns the original norm (0 leaves v unchanged). */
AP_API double ap_l2_normalize(float *v, uint32_t dim);

#ifdef __cplusplus
}
#endif
#endif
