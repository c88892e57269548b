/* The HTTP embedders (internal to core/embed/): one embedder, "openai", "tei" or "ollama",
 * whose API table (openai.c, tei.c, ollama.c) writes the request and reads the reply;
 * http_embed.c does batching, retries and validation, canary.c the canaries. */
#ifndef ANNPACK_CORE_EMBED_HTTP_EMBED_H
#define ANNPACK_CORE_EMBED_HTTP_EMBED_H

#include <cjson/cJSON.h>

#include "embedder.h"
#include "http_client.h"

/* Canary texts recorded per pack (docs/EMBEDDERS.md, "Canaries"). */
#define AP_CANARY_COUNT 3u

typedef struct ap_http_api {
    const char *name; /* the embedder's name and its manifest "api" */
    const char *path; /* appended to the base URL */
    /* The request body for n texts (already prefixed), NUL-terminated, malloc'd; NULL when
     * out of memory. model may be NULL (TEI); dim 0 asks for the model's own. */
    char *(*request)(const char *model, uint32_t dim, char *const *texts, size_t n);
    /* The vectors of a reply, in input order: a JSON array of n arrays of numbers, or of
     * base64 strings of little-endian float32 (openai), whatever the reply's own order
     * (an OpenAI "index"). *vecs is set to the array item of vector i; returns the error
     * message's detail, or NULL when the reply is well formed. */
    const char *(*vectors)(const cJSON *reply, size_t n, const cJSON **items);
} ap_http_api;

extern const ap_http_api ap_http_api_openai, ap_http_api_tei, ap_http_api_ollama;

/* The API tables' shared pieces (http_embed.c). A request object {"model": model (omitted
 * when NULL), key: [texts]}, owned by the caller; NULL when out of memory. */
cJSON *ap_http_request_object(const char *model, const char *key, char *const *texts, size_t n);
/* Prints o unformatted (malloc'd; NULL when out of memory) and deletes o. */
char *ap_http_request_print(cJSON *o);
/* items[i] = element i of arr, which must be a JSON array of n items: NULL, or the detail
 * of what is wrong (not_array when it is not an array). */
const char *ap_http_reply_items(const cJSON *arr, size_t n, const cJSON **items,
                                const char *not_array);

/* The recorded and requested properties of an HTTP embedder. */
typedef struct ap_http_embedder {
    const ap_http_api *api;
    ap_http *http; /* NULL when no endpoint is configured: then no_endpoint says so */
    char no_endpoint[AP_ERR_MSG_MAX];
    char *model, *revision, *doc_prefix, *query_prefix;
    uint32_t dims_requested; /* "dimensions" asked of an OpenAI endpoint, 0 = none */
    _Atomic unsigned batch;  /* inputs per request; halved on 413 */
    double min_cosine;
    char *canary_texts[AP_CANARY_COUNT];
    float *canary_vecs; /* AP_CANARY_COUNT x dim, unit length */
} ap_http_embedder;

/* The fixed canary texts. */
extern const char *const ap_canary_texts[AP_CANARY_COUNT];

/* Embeds n texts with prefix into out (n x dim floats), batching by count and bytes,
 * retrying, halving the batch on 413, validating and normalising. */
ap_status ap_http_embed_texts(ap_http_embedder *he, uint32_t dim, const char *prefix,
                              char *const *texts, const size_t *lens, size_t n, float *out,
                              ap_err *err);

/* The dim the endpoint's model writes: one text (the first canary) embedded. */
ap_status ap_http_probe_dim(ap_http_embedder *he, uint32_t *dim, ap_err *err);

/* The canaries block of the manifest ({"min_cosine","texts","vectors"}); NULL on NOMEM. */
cJSON *ap_canary_block(const ap_embedder *e);
/* Reads a canaries block into he (texts and vectors of dim floats). */
ap_status ap_canary_read(ap_http_embedder *he, const cJSON *block, uint32_t dim, const char *name,
                         ap_err *err);
/* Re-embeds the canaries and compares (ap_embedder_check). */
ap_status ap_canary_check(const ap_embedder *e, double *min_cos, ap_err *err);

/* A short message from an error reply: error.message, error, message or detail, else the
 * body's start, escaped; into out. */
char *ap_http_reply_message(const char *body, size_t len, char *out, size_t cap);

#endif
