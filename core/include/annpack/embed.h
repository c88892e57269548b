/* annpack — embedders: text to unit vectors.
 *
 * An embedder is named and configured by the manifest's "embedder" block; queries must
 * be embedded exactly as the documents were, so the block is all a reader needs to
 * recreate it. Built in: "hash" (deterministic, offline, lexical; see docs/FORMAT.md) and
 * "vectors" (packs built from given vectors; it refuses to embed text), both offline, and
 * the HTTP embedders "openai", "tei" and "ollama", which ask an embedding service
 * (docs/EMBEDDERS.md). The service's address is host configuration, not part of the pack:
 * ap_embed_set_endpoint (or ANNPACK_EMBED_URL / ANNPACK_EMBED_API_KEY) names it for the
 * process. Embedders are opaque and safe to share between threads; a program gets the one
 * of an open pack or packset from ap_view_embedder and embeds with ap_view_embed
 * (packset.h). */
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
/* HTTP embedders: inputs per request by default, and the canaries' default threshold. */
#define AP_EMBED_HTTP_DEFAULT_BATCH 32u
#define AP_EMBED_CANARY_MIN_COSINE 0.99

/* Where the HTTP embedders send their requests (docs/EMBEDDERS.md, "Options"). Strings are
 * copied by ap_embed_set_endpoint. */
typedef struct ap_embed_endpoint {
    const char *url;      /* base URL (http:// or https://); NULL: ANNPACK_EMBED_URL */
    const char *api_key;  /* Bearer token; NULL: key_file, else ANNPACK_EMBED_API_KEY */
    const char *key_file; /* a file holding the token (owner-only mode, else refused) */
    const char *ca_file;  /* TLS: the CA bundle to trust (NULL: the system's) */
    const char *client_cert, *client_key; /* TLS client certificate and key (PEM files) */
    uint32_t timeout_ms;                  /* per request; 0: 60000 */
    uint32_t attempts;                    /* tries per request on transient errors; 0: 5 */
} ap_embed_endpoint;

/* Sets the endpoint of the HTTP embedders created afterwards in this process (building,
 * and opening a pack whose embedder is an HTTP one). NULL, or a NULL url and key, go back
 * to the environment. Errors: a key file that cannot be read, is empty, or whose mode
 * lets group or others read it (AP_ERR_ARG); a URL that is not http(s) (AP_ERR_ARG).
 * Thread-safe; embedders already created keep the endpoint they were created with. */
AP_API ap_status ap_embed_set_endpoint(const ap_embed_endpoint *ep, ap_err *err);

/* What a build asks of an HTTP embedder (ap_build_opts.http): the model and how documents
 * and queries are embedded. Strings are the caller's, read during the build. */
typedef struct ap_embed_model {
    const char *model;        /* the service's model name (TEI: optional, checked) */
    const char *doc_prefix;   /* prepended to every document text (NULL: none) */
    const char *query_prefix; /* prepended to every query text (NULL: none) */
    uint32_t dim;             /* the dimension to ask for (OpenAI "dimensions"); 0: the model's */
    uint32_t batch;           /* inputs per request; 0: AP_EMBED_HTTP_DEFAULT_BATCH */
} ap_embed_model;

/* True for an embedder that asks a service (its queries can fail for reasons outside the
 * pack: the daemon caches and guards them). */
AP_API int ap_embedder_is_remote(const ap_embedder *e);

/* The corpus table the embedder keeps beside a pack (pack.idf for hash v2, FORMAT.md):
 * *bytes owned by e and valid for its life; *len 0 when there is none. */
AP_API void ap_embedder_table_bytes(const ap_embedder *e, const void **bytes, size_t *len);

/* The SHA-256 (64 hex digits) of the embedder's manifest block: equal fingerprints embed
 * alike. Static for the embedder's life. */
AP_API const char *ap_embedder_fingerprint(const ap_embedder *e);

/* Re-embeds the canary texts the manifest records and compares them with their build-time
 * vectors. *min_cos (may be NULL) gets the lowest cosine (1 for local embedders, which
 * have no canaries). AP_ERR_VERIFY naming the model and the cosine when it is below the
 * recorded threshold; the embedding's own error (AP_ERR_IO for an unreachable service,
 * AP_ERR_UNSUPPORTED when no endpoint is configured) otherwise. */
AP_API ap_status ap_embedder_check(const ap_embedder *e, double *min_cos, ap_err *err);

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
