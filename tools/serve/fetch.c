/* HTTP GETs for annpack smoke, on libcurl: see fetch.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "cli.h"
#include "fetch.h"

struct fetcher {
    CURL *curl;
    char base[256];
    int (*stop)(void);
    char errbuf[CURL_ERROR_SIZE];
};

fetcher *fetcher_new(const char *base, int timeout_s, int (*stop)(void))
{
    fetcher *f = calloc(1, sizeof *f);
    if (!f || !(f->curl = curl_easy_init())) {
        free(f);
        return NULL;
    }
    snprintf(f->base, sizeof f->base, "%s", base);
    f->stop = stop;
    CURL *c = f->curl;
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, f->errbuf);
    curl_easy_setopt(c, CURLOPT_PROXY, "");             /* never a proxy from the environment */
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http"); /* nor a redirect elsewhere */
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);        /* the path exactly as the check wrote it */
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "annpack-smoke");
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)timeout_s);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)timeout_s);
    return f;
}

void fetcher_free(fetcher *f)
{
    if (!f) return;
    curl_easy_cleanup(f->curl);
    free(f);
}

typedef struct xfer {
    fetcher *f;
    fetch_sink sink;
    void *ud;
    size_t max_body;
    char *body;
    size_t len, cap;
    char why[128]; /* why the write callback stopped the transfer, or "" */
} xfer;

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    xfer *x = arg;
    size_t len = size * n;
    if (x->sink) {
        x->len += len;
        if (x->sink(x->ud, data, len) == 0) return len;
        snprintf(x->why, sizeof x->why, "body rejected after %zu bytes", x->len);
        return 0;
    }
    if (x->len + len > x->max_body) {
        snprintf(x->why, sizeof x->why, "response body over %zu bytes", x->max_body);
        return 0;
    }
    if (x->len + len + 1 > x->cap) {
        size_t cap = x->cap ? x->cap : 4096;
        while (cap < x->len + len + 1)
            cap *= 2;
        char *p = realloc(x->body, cap);
        if (!p) {
            snprintf(x->why, sizeof x->why, "out of memory");
            return 0;
        }
        x->body = p;
        x->cap = cap;
    }
    memcpy(x->body + x->len, data, len);
    x->len += len;
    x->body[x->len] = '\0';
    return len;
}

static int on_progress(void *arg, curl_off_t dlt, curl_off_t dln, curl_off_t ult, curl_off_t uln)
{
    (void)dlt, (void)dln, (void)ult, (void)uln;
    const fetcher *f = arg;
    return f->stop && f->stop();
}

int fetch_get(fetcher *f, const char *path, const char *range, fetch_sink sink, void *ud,
              size_t max_body, fetch_resp *resp, char *err, size_t errlen)
{
    memset(resp, 0, sizeof *resp);
    size_t n = strlen(f->base) + strlen(path) + 1;
    char *url = malloc(n);
    if (!url) {
        cli_errf(err, errlen, "GET %s: out of memory", path);
        return -1;
    }
    snprintf(url, n, "%s%s", f->base, path);
    xfer x = {.f = f, .sink = sink, .ud = ud, .max_body = max_body};
    CURL *c = f->curl;
    /* libcurl takes "0-71" for "bytes=0-71". */
    const char *r = range && !strncmp(range, "bytes=", 6) ? range + 6 : range;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_RANGE, r);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, f);
    f->errbuf[0] = '\0';
    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK) {
        const char *why = rc == CURLE_WRITE_ERROR && x.why[0] ? x.why
                          : rc == CURLE_ABORTED_BY_CALLBACK   ? "interrupted"
                          : f->errbuf[0]                      ? f->errbuf
                                                              : curl_easy_strerror(rc);
        cli_errf(err, errlen, "GET %s: %s", url, why);
        free(url);
        free(x.body);
        return -1;
    }
    free(url);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
    resp->body_len = x.len;
    if (!sink) {
        resp->body = x.body ? x.body : calloc(1, 1); /* an empty body is "" */
        if (!resp->body) {
            cli_errf(err, errlen, "GET %s: out of memory", path);
            return -1;
        }
    }
    return 0;
}

const char *fetch_header(fetcher *f, const char *name, char *buf, size_t len)
{
    struct curl_header *h = NULL;
    if (curl_easy_header(f->curl, name, 0, CURLH_HEADER, -1, &h) != CURLHE_OK) return NULL;
    snprintf(buf, len, "%s", h->value);
    return buf;
}

void fetch_resp_free(fetch_resp *resp)
{
    free(resp->body);
    memset(resp, 0, sizeof *resp);
}

char *fetch_escape(fetcher *f, const char *text, size_t max_len)
{
    char *enc = curl_easy_escape(f->curl, text, 0);
    if (!enc) return NULL;
    /* Walk text one UTF-8 sequence at a time alongside its encoding (each byte is one
     * character there, or three: "%XX") and cut before the sequence that does not fit. */
    size_t at = 0, cut = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p;) {
        size_t seq = *p < 0x80 ? 1 : *p >= 0xF0 ? 4 : *p >= 0xE0 ? 3 : 2;
        for (size_t i = 0; i < seq && *p; i++, p++)
            at += enc[at] == '%' ? 3 : 1;
        if (at > max_len) break;
        cut = at;
    }
    char *out = strndup(enc, cut);
    curl_free(enc);
    return out;
}
