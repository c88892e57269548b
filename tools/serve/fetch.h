/* HTTP GETs for `annpack smoke`, with libcurl: one connection to the server it checks
 * (reused between requests), never through a proxy. */
#ifndef ANNPACK_TOOLS_SERVE_FETCH_H
#define ANNPACK_TOOLS_SERVE_FETCH_H

#include <stddef.h>

/* Receives body bytes as they arrive; returns 0 to go on, nonzero to fail the request. */
typedef int (*fetch_sink)(void *ud, const char *data, size_t len);

typedef struct fetcher fetcher;

typedef struct fetch_resp {
    long status;     /* e.g. 200, 206, 404 */
    char *body;      /* the body, NUL-terminated (NULL when a sink took it) */
    size_t body_len; /* bytes of body received (also when streamed to a sink) */
} fetch_resp;

/* A fetcher for the site at base ("http://127.0.0.1:8000", no trailing '/'). Each
 * request fails after timeout_s seconds without progress (connecting, or no byte
 * received), and as soon as stop() returns nonzero (checked about once a second and while
 * bytes arrive; NULL: never). Returns NULL when out of memory. */
fetcher *fetcher_new(const char *base, int timeout_s, int (*stop)(void));
void fetcher_free(fetcher *f);

/* GETs base + path (path starts with '/'); range is a Range header value ("bytes=0-71")
 * or NULL. With a sink the body is streamed to it, else buffered up to max_body bytes.
 * On failure returns -1 and writes "GET URL: REASON" to err. */
int fetch_get(fetcher *f, const char *path, const char *range, fetch_sink sink, void *ud,
              size_t max_body, fetch_resp *resp, char *err, size_t errlen);

/* The value of header name (case-insensitive) of the last response, copied into buf, or
 * NULL when absent. */
const char *fetch_header(fetcher *f, const char *name, char *buf, size_t len);

void fetch_resp_free(fetch_resp *resp);

/* text percent-encoded (every byte but A-Z a-z 0-9 - . _ ~), cut before the first UTF-8
 * sequence that would take it past max_len bytes. Returns a malloc'd string, or NULL
 * when out of memory. */
char *fetch_escape(fetcher *f, const char *text, size_t max_len);

#endif
