/* Query embeddings of an HTTP embedder (embed_cache.c; docs/EMBEDDERS.md, "Serving"): an
 * LRU bounded in bytes keyed by the embedder's fingerprint (which covers its model and
 * query prefix) and the text, identical concurrent queries coalesced into one request, a
 * circuit breaker so an unreachable service fails fast, and the canary state of each
 * fingerprint. Local embedders (hash) pass straight through. */
#ifndef ANNPACK_FS_EMBED_CACHE_H
#define ANNPACK_FS_EMBED_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "annpack/annpack.h"

/* Sets the cache's byte budget (call once at start-up; 0 disables caching). */
void fs_embed_init(uint64_t bytes);

/* The query vector of text (ap_view_embed through the cache, the coalescing and the
 * breaker). A fast failure while the breaker is open is AP_ERR_IO naming the last error. */
ap_status fs_embed_query(const ap_view *v, const char *text, size_t len, float *out, ap_err *err);

/* Re-embeds the canaries of v's embedder (mount and reload). A mismatch is AP_ERR_VERIFY
 * (the caller refuses text queries with the message); an unreachable service is logged
 * and left to the first query, which checks the canaries before answering. */
ap_status fs_embed_check(const ap_view *v, ap_err *err);

/* The "embed" object of /stats and /health (NULL for a local embedder): counters, cache
 * usage, breaker state, canaries, the last error. */
cJSON *fs_embed_status(const ap_view *v);

/* Sets the process's endpoint from -o embed_url= and embed_key_file= (NULL: the
 * environment), with the daemon's attempts and timeout. */
ap_status fs_embed_endpoint(const char *url, const char *key_file, ap_err *err);

/* The health file of g with its "embed" object (for an HTTP embedder, rendered at each
 * lookup since the breaker's state changes); malloc'd. */
struct fs_gen;
char *fs_embed_health_json(const struct fs_gen *g, const char *status, size_t *len);

#endif
