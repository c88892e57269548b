/* The OCI distribution client (oci.h). Every request goes through request(): it sends
 * the credentials it has, and on a 401 follows the challenge once (Basic: user:password;
 * Bearer: a token from the realm for the service and scope the registry named). */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <sodium.h>

#include "annpack/sign.h"
#include "cli.h"
#include "oci.h"

struct oci_client {
    CURL *curl;
    char *url;      /* http(s)://host:port */
    char *repo;     /* org/project */
    char *userpass; /* user:password, or NULL */
    char *bearer;   /* a token (static or from the realm), or NULL */
    bool token_static;
    bool basic; /* the registry asked for Basic auth: send it every time */
    char *cacert;
    bool insecure;
};

typedef struct req {
    const char *method;
    const char *url; /* absolute */
    const char *accept;
    const char *content_type;
    const char *range; /* "N-" or NULL */
    const void *body;  /* request body in memory ... */
    size_t body_len;
    FILE *upload; /* ... or from a file */
    uint64_t upload_len;
    FILE *sink; /* response body of a 200/206 into a file (at most sink_max bytes) ... */
    uint64_t sink_max;
    size_t max_body; /* ... or into memory, at most this much */
} req;

typedef struct resp {
    long status;
    char *body;
    size_t len;
    int overflow;
    uint64_t sunk;
    uint64_t sink_max;
    int too_long;
    FILE *sink;
    size_t max_body;
    CURL *curl;
    char location[4096];
    char digest[OCI_DIGEST_LEN];
    char content_type[160];
    char www_auth[2048];
    char link[2048];
    uint64_t content_length;
} resp;

void oci_digest_mem(const void *data, size_t len, char out[OCI_DIGEST_LEN])
{
    char hex[AP_SHA256_HEX];
    ap_sha256_hex(data, len, hex);
    snprintf(out, OCI_DIGEST_LEN, "sha256:%s", hex);
}

void oci_free_strv(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

const char *oci_repo(const oci_client *c)
{
    return c->repo;
}
const char *oci_url(const oci_client *c)
{
    return c->url;
}

/* --- credentials ------------------------------------------------------------------------ */

static char *read_small(const char *path, ap_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        ap_err_set(err, AP_ERR_IO, "%s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(65537);
    size_t n = buf ? fread(buf, 1, 65536, f) : 0;
    int big = buf && !feof(f);
    fclose(f);
    if (!buf || big) {
        free(buf);
        ap_err_set(err, AP_ERR_LIMIT, "%s: more than 64 KiB", path);
        return NULL;
    }
    buf[n] = 0;
    return buf;
}

static void chomp(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
        s[--n] = 0;
}

/* The host[:port] of a URL, for auth.json's keys. */
static void url_host(const char *url, char *out, size_t n)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    size_t k = strcspn(p, "/");
    snprintf(out, n, "%.*s", (int)k, p);
}

/* A Docker auth.json: {"auths": {"host:port": {"auth": base64(user:password)}}}, the entry
 * for this registry's host (with or without a scheme in the key). */
static ap_status auth_json(const char *path, const char *text, const char *url, char **userpass,
                           ap_err *err)
{
    cJSON *j = cJSON_Parse(text);
    cJSON *auths = cJSON_GetObjectItemCaseSensitive(j, "auths");
    if (!cJSON_IsObject(auths)) {
        cJSON_Delete(j);
        return ap_err_set(err, AP_ERR_FORMAT,
                          "%s: not user:password nor an auth.json with \"auths\"", path);
    }
    char host[512];
    url_host(url, host, sizeof host);
    const cJSON *e = NULL, *it;
    cJSON_ArrayForEach(it, auths)
    {
        char h[512];
        url_host(it->string, h, sizeof h);
        if (!strcmp(h, host)) e = it;
    }
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(e, "auth");
    if (!cJSON_IsString(a)) {
        cJSON_Delete(j);
        return ap_err_set(err, AP_ERR_NOTFOUND, "%s: no \"auths\" entry with \"auth\" for %s", path,
                          host);
    }
    size_t n = strlen(a->valuestring), got = 0;
    char *dec = calloc(1, n + 1);
    if (!dec ||
        sodium_base642bin((unsigned char *)dec, n, a->valuestring, n, "\n\r ", &got, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        !memchr(dec, ':', got)) {
        free(dec);
        cJSON_Delete(j);
        return ap_err_set(err, AP_ERR_FORMAT, "%s: \"auth\" for %s is not base64 of user:password",
                          path, host);
    }
    dec[got] = 0;
    *userpass = dec;
    cJSON_Delete(j);
    return AP_OK;
}

static ap_status load_credentials(oci_client *c, const oci_opts *o, ap_err *err)
{
    const char *tok = getenv("ANNPACK_REGISTRY_TOKEN");
    if (tok && *tok) {
        c->bearer = strdup(tok);
        c->token_static = true;
        return c->bearer ? AP_OK : ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    }
    if (o->token_file) {
        char *t = read_small(o->token_file, err);
        if (!t) return err->status;
        chomp(t);
        if (!*t) {
            free(t);
            return ap_err_set(err, AP_ERR_FORMAT, "%s: empty token file", o->token_file);
        }
        c->bearer = t;
        c->token_static = true;
        return AP_OK;
    }
    if (o->auth_file) {
        char *t = read_small(o->auth_file, err);
        if (!t) return err->status;
        const char *p = t;
        while (isspace((unsigned char)*p))
            p++;
        ap_status st = AP_OK;
        if (*p == '{') {
            st = auth_json(o->auth_file, t, c->url, &c->userpass, err);
            free(t);
        } else {
            t[strcspn(t, "\r\n")] = 0;
            if (!strchr(t, ':') || t[0] == ':') {
                free(t);
                return ap_err_set(
                    err, AP_ERR_FORMAT,
                    "%s: the first line is not user:password (nor is it an auth.json)",
                    o->auth_file);
            }
            c->userpass = t;
        }
        return st;
    }
    return AP_OK;
}

ap_status oci_open(const oci_opts *o, const char *repo, oci_client **out, ap_err *err)
{
    *out = NULL;
    const char *url = o->url ? o->url : getenv("ANNPACK_REGISTRY_URL");
    if (!url || !*url)
        return ap_err_set(err, AP_ERR_ARG,
                          "no registry: pass --registry URL or set ANNPACK_REGISTRY_URL");
    if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8))
        return ap_err_set(err, AP_ERR_ARG, "registry URL %s: must start with http:// or https://",
                          url);
    oci_client *c = calloc(1, sizeof *c);
    if (!c) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    c->url = strdup(url);
    c->repo = strdup(repo);
    c->cacert = o->cacert ? strdup(o->cacert) : NULL;
    c->insecure = o->insecure;
    c->curl = curl_easy_init();
    if (!c->url || !c->repo || !c->curl || (o->cacert && !c->cacert)) {
        oci_close(c);
        return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    }
    size_t ul = strlen(c->url);
    while (ul > 8 && c->url[ul - 1] == '/')
        c->url[--ul] = 0;
    ap_status st = load_credentials(c, o, err);
    if (st) {
        oci_close(c);
        return st;
    }
    *out = c;
    return AP_OK;
}

void oci_close(oci_client *c)
{
    if (!c) return;
    if (c->curl) curl_easy_cleanup(c->curl);
    if (c->userpass) sodium_memzero(c->userpass, strlen(c->userpass));
    if (c->bearer) sodium_memzero(c->bearer, strlen(c->bearer));
    free(c->userpass);
    free(c->bearer);
    free(c->url);
    free(c->repo);
    free(c->cacert);
    free(c);
}

/* --- one HTTP exchange ------------------------------------------------------------------ */

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    resp *r = ud;
    size_t len = sz * n;
    long code = 0;
    curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &code);
    if (r->sink && (code == 200 || code == 206)) {
        if (r->sink_max && r->sunk + len > r->sink_max) {
            r->too_long = 1; /* more than the descriptor's size: stop, never fill the disk */
            return 0;
        }
        if (fwrite(p, 1, len, r->sink) != len) return 0;
        r->sunk += len;
        return len;
    }
    /* Error bodies are kept (small) for the message; wanted bodies up to max_body. */
    size_t cap = r->sink ? 4096 : r->max_body;
    if (r->len + len > cap) {
        r->overflow = 1;
        return r->sink ? len : 0;
    }
    char *b = realloc(r->body, r->len + len + 1);
    if (!b) return 0;
    memcpy(b + r->len, p, len);
    r->body = b;
    r->len += len;
    b[r->len] = 0;
    return len;
}

static void header_value(const char *line, size_t len, const char *name, char *out, size_t n)
{
    size_t k = strlen(name);
    if (len <= k || strncasecmp(line, name, k)) return;
    const char *v = line + k;
    size_t vl = len - k;
    while (vl && (*v == ' ' || *v == '\t'))
        v++, vl--;
    while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
        vl--;
    snprintf(out, n, "%.*s", (int)vl, v);
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    resp *r = ud;
    size_t len = sz * n;
    if (len >= 5 && !strncmp(p, "HTTP/", 5)) {
        /* A new response (after a redirect or a 100): forget the previous headers. */
        r->location[0] = r->digest[0] = r->content_type[0] = r->www_auth[0] = r->link[0] = 0;
        return len;
    }
    header_value(p, len, "Location:", r->location, sizeof r->location);
    header_value(p, len, "Docker-Content-Digest:", r->digest, sizeof r->digest);
    header_value(p, len, "Content-Type:", r->content_type, sizeof r->content_type);
    header_value(p, len, "WWW-Authenticate:", r->www_auth, sizeof r->www_auth);
    header_value(p, len, "Link:", r->link, sizeof r->link);
    char cl[32] = "";
    header_value(p, len, "Content-Length:", cl, sizeof cl);
    if (*cl) r->content_length = strtoull(cl, NULL, 10);
    return len;
}

static size_t on_read_mem(char *p, size_t sz, size_t n, void *ud)
{
    struct {
        const char *d;
        size_t left;
    } *m = ud;
    size_t k = sz * n < m->left ? sz * n : m->left;
    memcpy(p, m->d, k);
    m->d += k;
    m->left -= k;
    return k;
}

static ap_status perform(oci_client *c, const req *q, resp *r, ap_err *err)
{
    CURL *h = c->curl;
    curl_easy_reset(h);
    free(r->body);
    memset(r, 0, sizeof *r);
    r->sink = q->sink;
    r->sink_max = q->sink_max;
    r->max_body = q->max_body ? q->max_body : 65536;
    r->curl = h;
    struct curl_slist *hd = NULL;
    char line[8192];
    if (q->accept) {
        snprintf(line, sizeof line, "Accept: %s", q->accept);
        hd = curl_slist_append(hd, line);
    }
    if (q->content_type) {
        snprintf(line, sizeof line, "Content-Type: %s", q->content_type);
        hd = curl_slist_append(hd, line);
    }
    if (c->bearer) {
        snprintf(line, sizeof line, "Authorization: Bearer %s", c->bearer);
        hd = curl_slist_append(hd, line);
    } else if (c->basic && c->userpass) {
        curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(h, CURLOPT_USERPWD, c->userpass);
    }
    hd = curl_slist_append(hd, "Expect:");
    struct {
        const char *d;
        size_t left;
    } mem = {q->body, q->body_len};
    curl_easy_setopt(h, CURLOPT_URL, q->url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "annpack");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
    /* A stalled transfer fails instead of hanging; a slow one is fine. */
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    if (c->cacert) curl_easy_setopt(h, CURLOPT_CAINFO, c->cacert);
    if (c->insecure) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (q->range) curl_easy_setopt(h, CURLOPT_RANGE, q->range);
    if (!strcmp(q->method, "GET")) {
        /* Blob GETs may redirect to storage or a CDN (credentials are not sent there). */
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
    } else if (!strcmp(q->method, "HEAD")) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (!strcmp(q->method, "PUT") || !strcmp(q->method, "POST") ||
               !strcmp(q->method, "PATCH")) {
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, q->method);
        if (q->upload) {
            curl_easy_setopt(h, CURLOPT_READDATA, q->upload);
            curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)q->upload_len);
        } else {
            curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read_mem);
            curl_easy_setopt(h, CURLOPT_READDATA, &mem);
            curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)q->body_len);
        }
    } else {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, q->method);
    }
    char cerr[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
    CURLcode rc = curl_easy_perform(h);
    curl_slist_free_all(hd);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    if (rc == CURLE_WRITE_ERROR && r->too_long)
        return ap_err_set(err, AP_ERR_VERIFY, "%s %s: more bytes than the artifact's size (%llu)",
                          q->method, q->url, (unsigned long long)q->sink_max);
    if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && r->overflow))
        return ap_err_set(err, AP_ERR_IO, "%s %s: %s", q->method, q->url,
                          *cerr ? cerr : curl_easy_strerror(rc));
    if (r->overflow && !r->sink)
        return ap_err_set(err, AP_ERR_LIMIT, "%s %s: response of more than %zu bytes", q->method,
                          q->url, r->max_body);
    return AP_OK;
}

/* One parameter (realm, service, scope) of a Bearer challenge. */
static int challenge_param(const char *ch, const char *name, char *out, size_t n)
{
    size_t k = strlen(name);
    for (const char *p = ch; (p = strstr(p, name)); p += k) {
        if ((p != ch && isalnum((unsigned char)p[-1])) || strncmp(p + k, "=\"", 2)) continue;
        const char *v = p + k + 2, *e = strchr(v, '"');
        if (!e) return 0;
        snprintf(out, n, "%.*s", (int)(e - v), v);
        return 1;
    }
    *out = 0;
    return 0;
}

/* Trades the credentials (or none: anonymous) for a token at the challenge's realm. */
static ap_status fetch_token(oci_client *c, const char *challenge, ap_err *err)
{
    char realm[1024], service[512], scope[1024];
    if (!challenge_param(challenge, "realm", realm, sizeof realm))
        return ap_err_set(err, AP_ERR_FORMAT, "registry %s: Bearer challenge without a realm: %s",
                          c->url, challenge);
    challenge_param(challenge, "service", service, sizeof service);
    challenge_param(challenge, "scope", scope, sizeof scope);
    char *es = curl_easy_escape(c->curl, service, 0), *esc = curl_easy_escape(c->curl, scope, 0);
    size_t n = strlen(realm) + (es ? strlen(es) : 0) + (esc ? strlen(esc) : 0) + 32;
    char *url = malloc(n);
    if (!es || !esc || !url) {
        curl_free(es);
        curl_free(esc);
        free(url);
        return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    }
    snprintf(url, n, "%s%cservice=%s%s%s", realm, strchr(realm, '?') ? '&' : '?', es,
             *scope ? "&scope=" : "", *scope ? esc : "");
    curl_free(es);
    curl_free(esc);
    char *saved = c->bearer;
    bool basic = c->basic;
    c->bearer = NULL;
    c->basic = c->userpass != NULL;
    resp r = {0};
    req q = {.method = "GET", .url = url, .accept = "application/json"};
    ap_status st = perform(c, &q, &r, err);
    c->basic = basic;
    free(saved);
    if (!st && (r.status == 401 || r.status == 403))
        st = ap_err_set(err, AP_ERR_VERIFY, "token server %s refused the credentials (HTTP %ld)%s",
                        realm, r.status,
                        c->userpass ? ""
                                    : ": none were given (--auth-file, --token-file or "
                                      "ANNPACK_REGISTRY_TOKEN)");
    else if (!st && r.status != 200)
        st = ap_err_set(err, AP_ERR_IO, "token server %s: HTTP %ld", realm, r.status);
    if (!st) {
        cJSON *j = cJSON_Parse(r.body ? r.body : "");
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "token");
        if (!cJSON_IsString(t)) t = cJSON_GetObjectItemCaseSensitive(j, "access_token");
        if (cJSON_IsString(t) && *t->valuestring)
            c->bearer = strdup(t->valuestring);
        else
            st = ap_err_set(err, AP_ERR_FORMAT, "token server %s: no \"token\" in its answer",
                            realm);
        cJSON_Delete(j);
    }
    free(r.body);
    free(url);
    return st;
}

/* perform() with authentication: one retry after a challenge. An upload from a file is
 * rewound for the retry. */
static ap_status request(oci_client *c, const req *q, resp *r, ap_err *err)
{
    for (int attempt = 0;; attempt++) {
        ap_status st = perform(c, q, r, err);
        if (st || r->status != 401 || attempt > 0) {
            if (!st && r->status == 401)
                return ap_err_set(
                    err, AP_ERR_VERIFY, "registry %s refused the credentials for %s (HTTP 401)%s",
                    c->url, c->repo,
                    c->userpass || c->bearer ? ""
                                             : ": none were given (--auth-file, --token-file or "
                                               "ANNPACK_REGISTRY_TOKEN)");
            if (!st && r->status == 403)
                return ap_err_set(err, AP_ERR_VERIFY,
                                  "registry %s: access to %s denied (HTTP 403) for %s %s", c->url,
                                  c->repo, q->method, q->url);
            return st;
        }
        if (!strncasecmp(r->www_auth, "Bearer", 6) && !c->token_static) {
            st = fetch_token(c, r->www_auth, err);
            if (st) return st;
        } else if (!strncasecmp(r->www_auth, "Basic", 5) && c->userpass && !c->basic) {
            c->basic = true;
        } else {
            return ap_err_set(
                err, AP_ERR_VERIFY, "registry %s refused the credentials for %s (HTTP 401)%s",
                c->url, c->repo,
                c->userpass || c->bearer ? ""
                                         : ": none were given (--auth-file, --token-file or "
                                           "ANNPACK_REGISTRY_TOKEN)");
        }
        if (q->upload && fseeko(q->upload, 0, SEEK_SET) != 0)
            return ap_err_set(err, AP_ERR_IO, "cannot rewind the upload: %s", strerror(errno));
    }
}

static char *api_url(const oci_client *c, const char *kind, const char *ref)
{
    size_t n = strlen(c->url) + strlen(c->repo) + strlen(kind) + strlen(ref) + 16;
    char *u = malloc(n);
    if (u) snprintf(u, n, "%s/v2/%s/%s/%s", c->url, c->repo, kind, ref);
    return u;
}

static ap_status unexpected(const oci_client *c, const char *what, const resp *r, ap_err *err)
{
    /* The registry's error body: {"errors":[{"code":..,"message":..}]}. */
    const char *code = "", *msg = "";
    cJSON *j = r->body ? cJSON_Parse(r->body) : NULL;
    const cJSON *e0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "errors"), 0);
    const cJSON *jc = cJSON_GetObjectItemCaseSensitive(e0, "code"),
                *jm = cJSON_GetObjectItemCaseSensitive(e0, "message");
    if (cJSON_IsString(jc)) code = jc->valuestring;
    if (cJSON_IsString(jm)) msg = jm->valuestring;
    ap_status st = ap_err_set(err, r->status == 404 ? AP_ERR_NOTFOUND : AP_ERR_IO,
                              "registry %s: %s in %s: HTTP %ld%s%s%s%s", c->url, what, c->repo,
                              r->status, *code ? " " : "", code, *msg ? ": " : "", msg);
    cJSON_Delete(j);
    return st;
}

/* --- blobs ------------------------------------------------------------------------------ */

ap_status oci_blob_exists(oci_client *c, const char *digest, uint64_t *size, ap_err *err)
{
    char *u = api_url(c, "blobs", digest);
    if (!u) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    resp r = {0};
    req q = {.method = "HEAD", .url = u};
    ap_status st = request(c, &q, &r, err);
    free(u);
    if (!st && r.status == 200) {
        if (size) *size = r.content_length;
    } else if (!st && r.status == 404) {
        st = AP_ERR_NOTFOUND;
    } else if (!st) {
        st = unexpected(c, "HEAD blob", &r, err);
    }
    free(r.body);
    return st;
}

static ap_status blob_push(oci_client *c, FILE *f, const void *data, uint64_t len,
                           const char *digest, ap_err *err)
{
    uint64_t have = 0;
    ap_status st = oci_blob_exists(c, digest, &have, err);
    if (st == AP_OK && have == len) return AP_OK;
    if (st && st != AP_ERR_NOTFOUND) return st;
    char *u = api_url(c, "blobs", "uploads/");
    if (!u) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    resp r = {0};
    req q = {.method = "POST", .url = u, .body = "", .body_len = 0};
    st = request(c, &q, &r, err);
    free(u);
    if (!st && r.status != 202) st = unexpected(c, "starting an upload", &r, err);
    if (!st && !*r.location)
        st = ap_err_set(err, AP_ERR_FORMAT, "registry %s: upload started without a Location",
                        c->url);
    char *put = NULL;
    if (!st) {
        size_t n = strlen(c->url) + strlen(r.location) + strlen(digest) + 16;
        put = malloc(n);
        if (!put) {
            st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        } else {
            int rel = r.location[0] == '/';
            snprintf(put, n, "%s%s%cdigest=%s", rel ? c->url : "", r.location,
                     strchr(r.location, '?') ? '&' : '?', digest);
        }
    }
    if (!st) {
        if (f && fseeko(f, 0, SEEK_SET) != 0)
            st = ap_err_set(err, AP_ERR_IO, "cannot rewind: %s", strerror(errno));
        req pq = {.method = "PUT",
                  .url = put,
                  .content_type = "application/octet-stream",
                  .body = data,
                  .body_len = (size_t)(f ? 0 : len),
                  .upload = f,
                  .upload_len = len};
        if (!st) st = request(c, &pq, &r, err);
        if (!st && r.status != 201) st = unexpected(c, "uploading blob", &r, err);
    }
    free(put);
    free(r.body);
    return st;
}

ap_status oci_blob_push_file(oci_client *c, const char *path, const char *digest, uint64_t size,
                             ap_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) return ap_err_set(err, AP_ERR_IO, "%s: %s", path, strerror(errno));
    ap_status st = blob_push(c, f, NULL, size, digest, err);
    fclose(f);
    return st;
}

ap_status oci_blob_push_mem(oci_client *c, const void *data, size_t len, const char *digest,
                            ap_err *err)
{
    return blob_push(c, NULL, data, len, digest, err);
}

ap_status oci_blob_fetch(oci_client *c, const char *digest, FILE *f, uint64_t offset, uint64_t max,
                         uint64_t *written, bool *restarted, ap_err *err)
{
    *written = 0;
    *restarted = false;
    char *u = api_url(c, "blobs", digest);
    if (!u) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    char range[48];
    snprintf(range, sizeof range, "%llu-", (unsigned long long)offset);
    resp r = {0};
    req q = {.method = "GET",
             .url = u,
             .sink = f,
             .sink_max = max > offset ? max - offset : 1,
             .range = offset ? range : NULL};
    /* A 200 to a Range request starts over at 0: the file is truncated before writing. */
    ap_status st = request(c, &q, &r, err);
    if (st == AP_OK && r.status == 200 && offset > 0) {
        *restarted = true;
        if (ftruncate(fileno(f), 0) != 0 || fseeko(f, 0, SEEK_SET) != 0) {
            st = ap_err_set(err, AP_ERR_IO, "cannot truncate: %s", strerror(errno));
        } else {
            q.range = NULL;
            q.sink_max = max;
            st = request(c, &q, &r, err);
        }
    }
    *written = r.sunk;
    if (!st && r.status == 416)
        st = ap_err_set(err, AP_ERR_FORMAT,
                        "registry %s: blob %s is shorter than the %llu bytes already fetched",
                        c->url, digest, (unsigned long long)offset);
    if (!st && r.status != 200 && r.status != 206) st = unexpected(c, "GET blob", &r, err);
    free(u);
    free(r.body);
    return st;
}

ap_status oci_blob_fetch_mem(oci_client *c, const char *digest, size_t max, char **out, size_t *len,
                             ap_err *err)
{
    *out = NULL;
    char *u = api_url(c, "blobs", digest);
    if (!u) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    resp r = {0};
    req q = {.method = "GET", .url = u, .max_body = max};
    ap_status st = request(c, &q, &r, err);
    free(u);
    if (!st && r.status != 200) st = unexpected(c, "GET blob", &r, err);
    char d[OCI_DIGEST_LEN];
    if (!st) {
        oci_digest_mem(r.body ? r.body : "", r.len, d);
        if (strcmp(d, digest))
            st = ap_err_set(err, AP_ERR_VERIFY, "registry %s: blob %s arrived with digest %s",
                            c->url, digest, d);
    }
    if (!st) {
        *out = r.body ? r.body : calloc(1, 1);
        *len = r.len;
        return *out ? AP_OK : ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    }
    free(r.body);
    return st;
}

/* --- manifests and tags ----------------------------------------------------------------- */

/* distribution answers 404 to a manifest GET/HEAD without an OCI Accept header. */
static const char manifest_accept[] = OCI_MANIFEST ", " OCI_INDEX;

ap_status oci_manifest_get(oci_client *c, const char *ref, char **body, size_t *len,
                           char digest[OCI_DIGEST_LEN], char *media_type, size_t mt_len,
                           ap_err *err)
{
    *body = NULL;
    char *u = api_url(c, "manifests", ref);
    if (!u) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    resp r = {0};
    req q = {.method = "GET", .url = u, .accept = manifest_accept, .max_body = OCI_MAX_MANIFEST};
    ap_status st = request(c, &q, &r, err);
    free(u);
    if (!st && r.status == 404) {
        free(r.body);
        return ap_err_set(err, AP_ERR_NOTFOUND, "registry %s: no %s:%s", c->url, c->repo, ref);
    }
    if (!st && r.status != 200) st = unexpected(c, "GET manifest", &r, err);
    if (st) {
        free(r.body);
        return st;
    }
    char d[OCI_DIGEST_LEN];
    oci_digest_mem(r.body ? r.body : "", r.len, d);
    /* By digest the bytes must match it; by tag the registry's header must agree. */
    if ((!strncmp(ref, "sha256:", 7) && strcmp(ref, d)) || (*r.digest && strcmp(r.digest, d))) {
        free(r.body);
        return ap_err_set(err, AP_ERR_VERIFY, "registry %s: manifest %s:%s has digest %s, not %s",
                          c->url, c->repo, ref, d, *r.digest ? r.digest : ref);
    }
    if (digest) snprintf(digest, OCI_DIGEST_LEN, "%s", d);
    if (media_type) snprintf(media_type, mt_len, "%s", r.content_type);
    *body = r.body ? r.body : calloc(1, 1);
    *len = r.len;
    return *body ? AP_OK : ap_err_set(err, AP_ERR_NOMEM, "out of memory");
}

ap_status oci_manifest_head(oci_client *c, const char *ref, char digest[OCI_DIGEST_LEN],
                            ap_err *err)
{
    char *u = api_url(c, "manifests", ref);
    if (!u) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    resp r = {0};
    req q = {.method = "HEAD", .url = u, .accept = manifest_accept};
    ap_status st = request(c, &q, &r, err);
    free(u);
    if (!st && r.status == 404)
        st = AP_ERR_NOTFOUND;
    else if (!st && r.status != 200)
        st = unexpected(c, "HEAD manifest", &r, err);
    free(r.body);
    if (st) return st;
    if (strncmp(r.digest, "sha256:", 7))
        return ap_err_set(err, AP_ERR_FORMAT,
                          "registry %s: HEAD %s:%s gave no sha256 Docker-Content-Digest", c->url,
                          c->repo, ref);
    snprintf(digest, OCI_DIGEST_LEN, "%s", r.digest);
    return AP_OK;
}

ap_status oci_manifest_put(oci_client *c, const char *ref, const char *media_type, const char *body,
                           size_t len, ap_err *err)
{
    char *u = api_url(c, "manifests", ref);
    if (!u) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    resp r = {0};
    req q = {.method = "PUT", .url = u, .content_type = media_type, .body = body, .body_len = len};
    ap_status st = request(c, &q, &r, err);
    free(u);
    if (!st && r.status != 201) st = unexpected(c, "PUT manifest", &r, err);
    char d[OCI_DIGEST_LEN];
    oci_digest_mem(body, len, d);
    if (!st && *r.digest && strcmp(r.digest, d))
        st = ap_err_set(err, AP_ERR_VERIFY, "registry %s: stored %s:%s as %s, sent %s", c->url,
                        c->repo, ref, r.digest, d);
    free(r.body);
    return st;
}

ap_status oci_manifest_delete(oci_client *c, const char *digest, ap_err *err)
{
    char *u = api_url(c, "manifests", digest);
    if (!u) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    resp r = {0};
    req q = {.method = "DELETE", .url = u, .accept = manifest_accept};
    ap_status st = request(c, &q, &r, err);
    free(u);
    if (!st && r.status == 405)
        st = ap_err_set(err, AP_ERR_UNSUPPORTED,
                        "registry %s does not allow deleting manifests (HTTP 405; for CNCF "
                        "distribution: storage: delete: enabled: true)",
                        c->url);
    else if (!st && r.status != 202 && r.status != 200)
        st = unexpected(c, "DELETE manifest", &r, err);
    free(r.body);
    return st;
}

ap_status oci_tags(oci_client *c, char ***tags, size_t *n, ap_err *err)
{
    *tags = NULL;
    *n = 0;
    char *u = api_url(c, "tags", "list");
    if (!u) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    ap_status st = AP_OK;
    size_t cap = 0;
    for (int page = 0; u && page < 10000; page++) {
        resp r = {0};
        req q = {.method = "GET", .url = u, .accept = "application/json", .max_body = 16u << 20};
        st = request(c, &q, &r, err);
        free(u);
        u = NULL;
        if (!st && r.status == 404)
            st = ap_err_set(err, AP_ERR_NOTFOUND, "registry %s: no repository %s", c->url, c->repo);
        else if (!st && r.status != 200)
            st = unexpected(c, "listing tags", &r, err);
        cJSON *j = st ? NULL : cJSON_Parse(r.body ? r.body : "");
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, "tags"), *t;
        cJSON_ArrayForEach(t, arr)
        {
            if (!cJSON_IsString(t)) continue;
            if (*n == cap) {
                cap = cap ? cap * 2 : 32;
                char **nt = realloc(*tags, cap * sizeof *nt);
                if (!nt) {
                    st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
                    break;
                }
                *tags = nt;
            }
            char *dup = strdup(t->valuestring);
            if (!dup || !*tags) {
                free(dup);
                st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
                break;
            }
            (*tags)[(*n)++] = dup;
        }
        cJSON_Delete(j);
        /* Link: </v2/...?last=x&n=y>; rel="next" */
        const char *lt = strchr(r.link, '<'), *gt = lt ? strchr(lt, '>') : NULL;
        if (!st && lt && gt && strstr(gt, "rel=\"next\"")) {
            size_t ln = strlen(c->url) + (size_t)(gt - lt) + 2;
            u = malloc(ln);
            if (u)
                snprintf(u, ln, "%s%.*s", lt[1] == '/' ? c->url : "", (int)(gt - lt - 1), lt + 1);
        }
        free(r.body);
        if (st) break;
    }
    free(u);
    if (st) {
        oci_free_strv(*tags, *n);
        *tags = NULL;
        *n = 0;
    }
    return st;
}
