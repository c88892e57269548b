/* HTTP for the embedders, on libcurl (internal to core/embed/).
 *
 * An ap_http holds a copy of the endpoint (URL, Bearer token, TLS files, timeout) and a
 * pool of curl handles, so concurrent requests each get one and connections are reused
 * between requests. One call is one attempt: retrying is the caller's (http_embed.c), so it
 * can halve a batch on 413 and decide what is transient. */
#ifndef ANNPACK_CORE_EMBED_HTTP_CLIENT_H
#define ANNPACK_CORE_EMBED_HTTP_CLIENT_H

#include <stddef.h>

#include "annpack/embed.h"

typedef struct ap_http ap_http;

/* The result of one attempt. */
typedef struct ap_http_reply {
    long status;        /* HTTP status, 0 when no reply arrived (then transport is set) */
    int transport;      /* a connection error or timeout: worth another attempt */
    double retry_after; /* seconds from a Retry-After header, or -1 */
    char *body;         /* malloc'd, NUL-terminated (the caller frees it) */
    size_t len;
    char why[256]; /* the transport error (curl's message) when status is 0 */
} ap_http_reply;

/* Bodies longer than this are refused (an embedding reply is far smaller). */
#define AP_HTTP_MAX_REPLY (64u << 20)

/* A client for the endpoint ep (whose strings are copied; the token is resolved here:
 * api_key, else key_file, else ANNPACK_EMBED_API_KEY). Errors: no URL (AP_ERR_ARG). */
ap_status ap_http_new(const ap_embed_endpoint *ep, ap_http **out, ap_err *err);

/* The base URL with any user:password@ removed, for messages. */
const char *ap_http_url(const ap_http *h);

/* Attempts per request the endpoint allows (1 or more). */
unsigned ap_http_attempts(const ap_http *h);

/* One request: GET when body is NULL, else POST of a JSON body, to the base URL joined
 * with path. Returns AP_ERR_NOMEM or AP_ERR_LIMIT (reply too long); otherwise AP_OK with
 * *r filled, whatever the HTTP status. */
ap_status ap_http_do(ap_http *h, const char *path, const char *body, size_t len, ap_http_reply *r,
                     ap_err *err);

void ap_http_free(ap_http *h);

#endif
