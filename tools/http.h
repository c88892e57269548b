/* A minimal HTTP/1.0 client over plain sockets, for `annpack smoke`: one GET (optionally
 * with a Range header), the status, the headers, and the body buffered or streamed. */
#ifndef ANNPACK_TOOLS_HTTP_H
#define ANNPACK_TOOLS_HTTP_H

#include <stddef.h>
#include <sys/socket.h>

/* Receives body bytes as they arrive; returns 0 to go on, nonzero to fail the request. */
typedef int (*http_sink)(void *ud, const char *data, size_t len);

typedef struct http_resp {
    int status;      /* e.g. 200, 206, 404 */
    char *head;      /* the status line and headers, NUL-terminated */
    char *body;      /* the body, NUL-terminated (NULL when a sink took it) */
    size_t body_len; /* bytes of body received (also when streamed to a sink) */
} http_resp;

/* GETs path from addr. range is a Range header value ("bytes=0-71") or NULL. With a sink
 * the body is streamed to it, otherwise buffered up to max_body bytes. Times out after
 * timeout_s seconds without progress. On failure returns -1 and writes a reason to err. */
int http_get(const struct sockaddr *addr, socklen_t addrlen, const char *host, const char *path,
             const char *range, http_sink sink, void *ud, size_t max_body, int timeout_s,
             http_resp *resp, char *err, size_t errlen);

/* The value of header name (case-insensitive) copied into buf, or NULL when absent. */
const char *http_header(const http_resp *resp, const char *name, char *buf, size_t len);

void http_resp_free(http_resp *resp);

#endif
