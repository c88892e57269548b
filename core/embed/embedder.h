/* The embedder object (internal to core/embed/; callers see the opaque ap_embedder of
 * annpack/embed.h and its accessors). */
#ifndef ANNPACK_CORE_EMBEDDER_H
#define ANNPACK_CORE_EMBEDDER_H

#include "annpack/embed.h"
#include "corpus.h"

/* The interface a built-in embedder implements (builtin.h): new embedders, network ones
 * included, are added here without touching callers. */
typedef struct ap_embedder_ops {
    const char *name;
    /* Writes dim floats, L2-normalised, for text[0..len). */
    ap_status (*embed)(const ap_embedder *e, const char *text, size_t len, float *out, ap_err *err);
    /* The manifest block as a malloc'd JSON object text with a stable key order. */
    char *(*describe)(const ap_embedder *e);
    void (*destroy)(ap_embedder *e);
    /* Optional (HTTP embedders): n document texts at once, and the canary check. */
    ap_status (*embed_docs)(const ap_embedder *e, char *const *texts, const size_t *lens, size_t n,
                            float *out, ap_err *err);
    ap_status (*check)(const ap_embedder *e, double *min_cos, ap_err *err);
    int remote;
    /* Optional, for embedders that depend on the corpus (corpus.h); NULL otherwise. */
    const ap_embedder_corpus_ops *corpus;
} ap_embedder_ops;

struct ap_embedder {
    const ap_embedder_ops *ops;
    uint32_t dim;
    uint64_t seed;
    void *impl;
    char fingerprint[65]; /* SHA-256 hex of describe(), set by embed.c after creation */
};

#endif
