/* Minimal HTTP/1.0 GET client: see http.h. HTTP/1.0 with Connection: close means the body
 * ends at EOF, so no chunked decoding is needed (nginx answers a 1.0 request in kind). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <unistd.h>

#include "http.h"

typedef struct buf {
    char *p;
    size_t len, cap;
} buf;

static int buf_add(buf *b, const char *data, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) return -1;
        b->p = p;
        b->cap = cap;
    }
    if (!b->p) return -1;
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

static int send_all(int fd, const char *s, size_t n)
{
    while (n) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w < 0) return -1;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

int http_get(const struct sockaddr *addr, socklen_t addrlen, const char *host, const char *path,
             const char *range, http_sink sink, void *ud, size_t max_body, int timeout_s,
             http_resp *resp, char *err, size_t errlen)
{
    memset(resp, 0, sizeof *resp);
    buf head = {0}, body = {0};
    char req[8192];
    int rc = -1, fd = -1;
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: annpack-smoke\r\n%s%s%s"
                     "Connection: close\r\n\r\n",
                     path, host, range ? "Range: " : "", range ? range : "", range ? "\r\n" : "");
    if (n < 0 || (size_t)n >= sizeof req) {
        snprintf(err, errlen, "request for %.64s... too long", path);
        goto out;
    }
    fd = socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        goto out;
    }
    struct timeval tv = {.tv_sec = timeout_s};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, addr, addrlen) != 0) {
        snprintf(err, errlen, "cannot connect: %s", strerror(errno));
        goto out;
    }
    if (send_all(fd, req, (size_t)n) != 0) {
        snprintf(err, errlen, "cannot send the request: %s", strerror(errno));
        goto out;
    }
    int in_body = 0;
    char chunk[65536];
    for (;;) {
        ssize_t r = recv(fd, chunk, sizeof chunk, 0);
        if (r < 0 && errno == EINTR) {
            snprintf(err, errlen, "interrupted");
            goto out;
        }
        if (r < 0) {
            snprintf(err, errlen, "%s",
                     errno == EAGAIN ? "timed out waiting for the answer" : strerror(errno));
            goto out;
        }
        if (r == 0) break;
        const char *data = chunk;
        size_t len = (size_t)r;
        if (!in_body) {
            size_t before = head.len;
            if (buf_add(&head, data, len) != 0) goto nomem;
            char *end = strstr(head.p, "\r\n\r\n");
            if (!end) {
                if (head.len > 65536) {
                    snprintf(err, errlen, "response headers over 64 KiB");
                    goto out;
                }
                continue;
            }
            size_t hlen = (size_t)(end - head.p) + 4;
            data = chunk + (hlen - before);
            len = head.len - hlen;
            head.p[hlen - 2] = '\0'; /* keep the last header's CRLF, drop the blank line */
            head.len = hlen - 2;
            in_body = 1;
        }
        if (!len) continue;
        resp->body_len += len;
        if (sink) {
            if (sink(ud, data, len) != 0) {
                snprintf(err, errlen, "body rejected after %zu bytes", resp->body_len);
                goto out;
            }
        } else {
            if (body.len + len > max_body) {
                snprintf(err, errlen, "response body over %zu bytes", max_body);
                goto out;
            }
            if (buf_add(&body, data, len) != 0) goto nomem;
        }
    }
    if (!in_body) {
        snprintf(err, errlen, "connection closed before the response headers ended");
        goto out;
    }
    int major, minor, status;
    if (sscanf(head.p, "HTTP/%d.%d %d", &major, &minor, &status) != 3) {
        snprintf(err, errlen, "not an HTTP response: %.40s", head.p);
        goto out;
    }
    resp->status = status;
    resp->head = head.p;
    head.p = NULL;
    if (!sink) {
        if (buf_add(&body, "", 0) != 0) goto nomem; /* a NUL-terminated empty body */
        resp->body = body.p;
        body.p = NULL;
    }
    rc = 0;
    goto out;
nomem:
    snprintf(err, errlen, "out of memory");
out:
    if (fd >= 0) close(fd);
    free(head.p);
    free(body.p);
    return rc;
}

const char *http_header(const http_resp *resp, const char *name, char *out, size_t len)
{
    size_t nl = strlen(name);
    const char *line = resp->head ? strstr(resp->head, "\r\n") : NULL;
    while (line && line[2]) {
        line += 2;
        const char *eol = strstr(line, "\r\n");
        if (!eol) break;
        if (!strncasecmp(line, name, nl) && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            size_t n = (size_t)(eol - v);
            if (n >= len) n = len - 1;
            memcpy(out, v, n);
            out[n] = '\0';
            return out;
        }
        line = eol;
    }
    return NULL;
}

void http_resp_free(http_resp *resp)
{
    free(resp->head);
    free(resp->body);
    memset(resp, 0, sizeof *resp);
}
