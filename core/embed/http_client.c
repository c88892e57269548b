/* HTTP for the embedders: see http_client.h. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <sodium.h>

#include "env.h"
#include "http_client.h"

/* Idle handles kept for reuse (each keeps its connections alive). */
#define POOL_MAX 16

struct ap_http {
    char *url, *shown_url, *auth, *ca_file, *client_cert, *client_key;
    long timeout_ms;
    unsigned attempts;
    pthread_mutex_t mu;
    CURL *idle[POOL_MAX];
    unsigned nidle;
};

static pthread_once_t g_curl_once = PTHREAD_ONCE_INIT;
static CURLcode g_curl_init;

static void curl_init_once(void)
{
    g_curl_init = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static char *dup_or_null(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

/* The URL without "user:password@" (it may carry a credential). */
static char *shown(const char *url)
{
    const char *scheme = strstr(url, "://");
    const char *host = scheme ? scheme + 3 : url;
    const char *at = strchr(host, '@'), *slash = strchr(host, '/');
    if (!at || (slash && slash < at)) return strdup(url);
    size_t n = (size_t)(host - url);
    char *s = malloc(strlen(url) + 8);
    if (!s) return NULL;
    memcpy(s, url, n);
    snprintf(s + n, strlen(url) + 8 - n, "***@%s", at + 1);
    return s;
}

ap_status ap_http_new(const ap_embed_endpoint *ep, ap_http **out, ap_err *err)
{
    *out = NULL;
    pthread_once(&g_curl_once, curl_init_once);
    if (g_curl_init != CURLE_OK)
        return ap_err_set(err, AP_ERR_INTERNAL, "libcurl: %s", curl_easy_strerror(g_curl_init));
    const ap_env *env = ap_env_get();
    if (env->offline)
        return ap_err_set(err, AP_ERR_ARG,
                          "ANNPACK_OFFLINE=1 forbids the HTTP embedders (no request is sent)");
    const char *url = ep && ep->url && *ep->url ? ep->url : env->embed_url;
    if (!*url)
        return ap_err_set(err, AP_ERR_ARG,
                          "no embedding endpoint: give --embed-url URL (or ANNPACK_EMBED_URL; "
                          "annpackfs -o embed_url=URL)");
    const char *key = ep && ep->api_key && *ep->api_key ? ep->api_key : env->embed_api_key;
    ap_http *h = calloc(1, sizeof *h);
    if (!h) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&h->mu, NULL);
    size_t ul = strlen(url);
    while (ul > 1 && url[ul - 1] == '/') /* "http://h/v1/" + "/embeddings" */
        ul--;
    h->url = strndup(url, ul);
    h->shown_url = h->url ? shown(h->url) : NULL;
    if (*key && (h->auth = malloc(strlen(key) + 32)))
        snprintf(h->auth, strlen(key) + 32, "Authorization: Bearer %s", key);
    h->ca_file = dup_or_null(ep ? ep->ca_file : NULL);
    h->client_cert = dup_or_null(ep ? ep->client_cert : NULL);
    h->client_key = dup_or_null(ep ? ep->client_key : NULL);
    h->timeout_ms = ep && ep->timeout_ms ? (long)ep->timeout_ms : 60000;
    h->attempts = ep && ep->attempts ? ep->attempts : 5;
    if (!h->url || !h->shown_url || (*key && !h->auth)) {
        ap_http_free(h);
        return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    }
    *out = h;
    return AP_OK;
}

const char *ap_http_url(const ap_http *h)
{
    return h->shown_url;
}

unsigned ap_http_attempts(const ap_http *h)
{
    return h->attempts;
}

static CURL *take_handle(ap_http *h)
{
    CURL *c = NULL;
    pthread_mutex_lock(&h->mu);
    if (h->nidle) c = h->idle[--h->nidle];
    pthread_mutex_unlock(&h->mu);
    if (c) {
        curl_easy_reset(c); /* keeps the connection cache */
        return c;
    }
    return curl_easy_init();
}

static void give_handle(ap_http *h, CURL *c)
{
    pthread_mutex_lock(&h->mu);
    if (h->nidle < POOL_MAX) {
        h->idle[h->nidle++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&h->mu);
    if (c) curl_easy_cleanup(c);
}

typedef struct sink {
    char *buf;
    size_t len, cap;
    int too_long;
    double retry_after;
} sink;

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    sink *s = arg;
    size_t len = size * n;
    if (s->len + len > AP_HTTP_MAX_REPLY) {
        s->too_long = 1;
        return 0;
    }
    if (s->len + len + 1 > s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 16384;
        while (ncap < s->len + len + 1)
            ncap *= 2;
        char *nb = realloc(s->buf, ncap);
        if (!nb) return 0;
        s->buf = nb;
        s->cap = ncap;
    }
    memcpy(s->buf + s->len, data, len);
    s->len += len;
    s->buf[s->len] = '\0';
    return len;
}

/* Retry-After: delay-seconds (an HTTP-date is left to the backoff). */
static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
    sink *s = arg;
    size_t len = size * n;
    static const char name[] = "retry-after:";
    if (len > sizeof name && strncasecmp(data, name, sizeof name - 1) == 0) {
        char v[32];
        size_t vl = len - (sizeof name - 1);
        if (vl >= sizeof v) vl = sizeof v - 1;
        memcpy(v, data + sizeof name - 1, vl);
        v[vl] = '\0';
        char *end;
        double d = strtod(v, &end);
        if (end != v && d >= 0 && d <= 3600) s->retry_after = d;
    }
    return len;
}

static void set_options(ap_http *h, CURL *c, const char *url, struct curl_slist *hdrs, sink *s,
                        char *errbuf)
{
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "annpack/" ANNPACK_VERSION);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, h->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, h->timeout_ms < 10000 ? h->timeout_ms : 10000L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, s);
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, ""); /* whatever libcurl can decode */
    if (h->ca_file) curl_easy_setopt(c, CURLOPT_CAINFO, h->ca_file);
    if (h->client_cert) curl_easy_setopt(c, CURLOPT_SSLCERT, h->client_cert);
    if (h->client_key) curl_easy_setopt(c, CURLOPT_SSLKEY, h->client_key);
}

ap_status ap_http_do(ap_http *h, const char *path, const char *body, size_t len, ap_http_reply *r,
                     ap_err *err)
{
    memset(r, 0, sizeof *r);
    r->retry_after = -1;
    size_t ul = strlen(h->url) + strlen(path) + 1;
    char *url = malloc(ul);
    CURL *c = take_handle(h);
    struct curl_slist *hdrs = NULL, *t;
    ap_status st = AP_OK;
    if (!url || !c) {
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    snprintf(url, ul, "%s%s", h->url, path);
    const char *fixed[] = {"Content-Type: application/json", "Accept: application/json",
                           "Expect:", h->auth};
    for (size_t i = 0; i < 4 && fixed[i]; i++) {
        if (!(t = curl_slist_append(hdrs, fixed[i]))) {
            st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
            goto out;
        }
        hdrs = t;
    }
    sink s = {.retry_after = -1};
    char errbuf[CURL_ERROR_SIZE] = "";
    set_options(h, c, url, hdrs, &s, errbuf);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    CURLcode rc = curl_easy_perform(c);
    if (s.too_long) {
        free(s.buf);
        st = ap_err_set(err, AP_ERR_LIMIT, "%s%s: reply longer than %u bytes", ap_http_url(h), path,
                        AP_HTTP_MAX_REPLY);
        goto out;
    }
    if (rc != CURLE_OK) {
        free(s.buf);
        r->transport = 1;
        snprintf(r->why, sizeof r->why, "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
        goto out;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    r->retry_after = s.retry_after;
    r->body = s.buf ? s.buf : strdup("");
    r->len = s.len;
    if (!r->body) st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
out:
    curl_slist_free_all(hdrs);
    if (c) give_handle(h, c);
    free(url);
    return st;
}

void ap_http_free(ap_http *h)
{
    if (!h) return;
    for (unsigned i = 0; i < h->nidle; i++)
        curl_easy_cleanup(h->idle[i]);
    pthread_mutex_destroy(&h->mu);
    if (h->auth) sodium_memzero(h->auth, strlen(h->auth));
    free(h->url);
    free(h->shown_url);
    free(h->auth);
    free(h->ca_file);
    free(h->client_cert);
    free(h->client_key);
    free(h);
}
