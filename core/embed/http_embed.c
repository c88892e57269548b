/* The HTTP embedders "openai", "tei" and "ollama": see http_embed.h and docs/EMBEDDERS.md.
 *
 * Texts go out in batches (by count and bytes); a reply is checked (count, order, dim,
 * finite, not zero) and every vector L2-normalised here, whatever the server did.
 * Transient failures (no connection, timeout, 408, 429, 500, 502-504) are retried with
 * Retry-After or jittered exponential backoff; 413 halves the batch; anything else fails
 * at once with the server's message in ours. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "annpack/caps.h"
#include "annpack/log.h"
#include "builtin.h"
#include "endpoint.h"
#include "http_embed.h"
#include "json.h"

/* Request bodies stay below this many bytes of text (TEI's default payload limit is 2 MB). */
#define MAX_BATCH_BYTES (1u << 20)
#define BACKOFF_FIRST_S 0.25
#define BACKOFF_MAX_S 8.0

char *ap_http_reply_message(const char *body, size_t len, char *out, size_t cap)
{
    cJSON *j = body && len ? cJSON_ParseWithLength(body, len) : NULL;
    const cJSON *m = NULL, *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    if (cJSON_IsObject(e)) m = cJSON_GetObjectItemCaseSensitive(e, "message");
    if (!cJSON_IsString(m)) m = e;
    if (!cJSON_IsString(m)) m = cJSON_GetObjectItemCaseSensitive(j, "message");
    if (!cJSON_IsString(m)) m = cJSON_GetObjectItemCaseSensitive(j, "detail");
    if (m && cJSON_IsString(m))
        ap_json_excerpt(out, cap, m->valuestring, strlen(m->valuestring), 200);
    else
        ap_json_excerpt(out, cap, body ? body : "", len, 200);
    cJSON_Delete(j);
    return out;
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - floor(s)) * 1e9)};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static int transient(long status)
{
    return status == 408 || status == 429 || status == 500 || (status >= 502 && status <= 504);
}

/* One batch request with its retries; *too_large on 413. On success *reply is the parsed
 * body (the caller's). */
static ap_status post_batch(ap_http_embedder *he, const char *body, size_t n, cJSON **reply,
                            int *too_large, ap_err *err)
{
    *reply = NULL;
    *too_large = 0;
    unsigned attempts = ap_http_attempts(he->http);
    double backoff = BACKOFF_FIRST_S;
    char msg[320];
    for (unsigned a = 1;; a++) {
        ap_http_reply r;
        ap_status st = ap_http_do(he->http, he->api->path, body, strlen(body), &r, err);
        if (st) return st;
        if (r.status == 200) {
            st = ap_json_parse_strict(r.body, r.len, "embedding reply", reply, err);
            free(r.body);
            return st;
        }
        if (r.status) ap_http_reply_message(r.body, r.len, msg, sizeof msg);
        free(r.body);
        if (r.status == 413) {
            *too_large = 1;
            return ap_err_set(err, AP_ERR_IO, "embedder %s at %s%s: HTTP 413 for %zu inputs: %s",
                              he->api->name, ap_http_url(he->http), he->api->path, n, msg);
        }
        int again = r.transport || transient(r.status);
        if (!again || a >= attempts) {
            if (r.transport)
                return ap_err_set(err, AP_ERR_IO, "embedder %s at %s%s: %s (%u attempt%s)",
                                  he->api->name, ap_http_url(he->http), he->api->path, r.why, a,
                                  a == 1 ? "" : "s");
            return ap_err_set(
                err, AP_ERR_IO, "embedder %s model \"%s\" at %s%s: HTTP %ld%s: %s", he->api->name,
                he->model ? he->model : "", ap_http_url(he->http), he->api->path, r.status,
                again ? " after retries"
                      : (r.status == 401 || r.status == 403 ? " (check the API key)" : ""),
                msg);
        }
        /* Retry-After when the server gave one, else full-jitter backoff in [b/2, b]. */
        double wait = r.retry_after >= 0
                          ? r.retry_after
                          : backoff * (0.5 + 0.5 * randombytes_uniform(1000001) / 1e6);
        if (wait > 60) wait = 60;
        ap_log(AP_LOG_INFO, "embed", "%s%s: %s, retrying in %.2f s (attempt %u of %u)",
               ap_http_url(he->http), he->api->path, r.transport ? r.why : "transient HTTP status",
               wait, a + 1, attempts);
        sleep_s(wait);
        backoff = backoff * 2 > BACKOFF_MAX_S ? BACKOFF_MAX_S : backoff * 2;
    }
}

/* The vector items of reply i into out (dim floats, normalised); dim learned when 0. */
static ap_status take_vector(const ap_http_embedder *he, const cJSON *item, size_t i, uint32_t *dim,
                             float *out, ap_err *err)
{
    const char *what = NULL;
    uint32_t got = 0, filled = 0;
    if (cJSON_IsString(item)) {
        size_t sl = strlen(item->valuestring), raw_cap = sl, raw_len = 0;
        unsigned char *raw = malloc(raw_cap + 1);
        if (!raw) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        if (sodium_base642bin(raw, raw_cap + 1, item->valuestring, sl, NULL, &raw_len, NULL,
                              sodium_base64_VARIANT_ORIGINAL) != 0 ||
            raw_len % 4)
            what = "is not base64 of float32 values";
        got = (uint32_t)(raw_len / 4);
        if (!what && *dim && got != *dim) what = "has the wrong dim";
        if (!what && got > ap_caps_get()->max_dim) what = "has more values than ANNPACK_MAX_DIM";
        for (uint32_t d = 0; !what && d < got; d++) {
            uint32_t u = (uint32_t)raw[4 * d] | (uint32_t)raw[4 * d + 1] << 8 |
                         (uint32_t)raw[4 * d + 2] << 16 | (uint32_t)raw[4 * d + 3] << 24;
            memcpy(&out[d], &u, 4);
            filled = d + 1;
        }
        free(raw);
    } else if (cJSON_IsArray(item)) {
        got = (uint32_t)cJSON_GetArraySize(item);
        if (*dim && got != *dim) what = "has the wrong dim";
        if (!what && got > ap_caps_get()->max_dim) what = "has more values than ANNPACK_MAX_DIM";
        uint32_t d = 0;
        const cJSON *x;
        cJSON_ArrayForEach(x, item)
        {
            if (what) break;
            if (!cJSON_IsNumber(x))
                what = "holds a value that is not a number";
            else
                out[d++] = (float)x->valuedouble;
        }
        filled = d;
    } else {
        what = "is neither an array of numbers nor a base64 string";
    }
    if (!what && got == 0) what = "is empty";
    if (!what && filled != got) what = "is incomplete";
    for (uint32_t d = 0; !what && d < filled; d++)
        if (!isfinite(out[d])) what = "holds a value that is not finite";
    if (!what && ap_l2_normalize(out, got) == 0) what = "is the zero vector";
    if (what)
        return ap_err_set(err, AP_ERR_FORMAT, "embedder %s at %s%s: vector %zu of the reply %s",
                          he->api->name, ap_http_url(he->http), he->api->path, i, what);
    if (!*dim) *dim = got;
    return AP_OK;
}

/* One batch of n texts (prefixed) into out (n x *dim); *dim 0 (n = 1, out room for
 * ANNPACK_MAX_DIM floats): learn it. */
static ap_status embed_batch(ap_http_embedder *he, uint32_t *dim, char *const *texts, size_t n,
                             float *out, int *too_large, ap_err *err)
{
    char *body = he->api->request(he->model, he->dims_requested, texts, n);
    if (!body) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    cJSON *reply = NULL;
    ap_status st = post_batch(he, body, n, &reply, too_large, err);
    free(body);
    if (st) return st;
    /* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of item pointers */
    const cJSON **items = calloc(n ? n : 1, sizeof *items);
    const char *why = items ? he->api->vectors(reply, n, items) : NULL;
    if (!items || !reply)
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    else if (why)
        st = ap_err_set(err, AP_ERR_FORMAT, "embedder %s at %s%s: reply for %zu inputs: %s",
                        he->api->name, ap_http_url(he->http), he->api->path, n, why);
    for (size_t i = 0; i < n && !st && items; i++)
        st = take_vector(he, items[i], i, dim, out + i * *dim, err);
    free(items);
    cJSON_Delete(reply);
    return st;
}

ap_status ap_http_embed_texts(ap_http_embedder *he, uint32_t dim, const char *prefix,
                              char *const *texts, const size_t *lens, size_t n, float *out,
                              ap_err *err)
{
    if (!he->http) return ap_err_set(err, AP_ERR_UNSUPPORTED, "%s", he->no_endpoint);
    size_t pl = prefix ? strlen(prefix) : 0;
    char **px = calloc(n ? n : 1, sizeof *px);
    if (!px) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    ap_status st = AP_OK;
    for (size_t i = 0; i < n && !st; i++) {
        if (!(px[i] = malloc(pl + lens[i] + 1))) {
            st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
            break;
        }
        if (pl) memcpy(px[i], prefix, pl);
        memcpy(px[i] + pl, texts[i], lens[i]);
        px[i][pl + lens[i]] = '\0';
    }
    size_t at = 0;
    while (!st && at < n) {
        unsigned b = he->batch;
        size_t k = 0, bytes = 0;
        while (at + k < n && k < b && (k == 0 || bytes + pl + lens[at + k] <= MAX_BATCH_BYTES))
            bytes += pl + lens[at + k++];
        int too_large = 0;
        st = embed_batch(he, &dim, px + at, k, out + at * dim, &too_large, err);
        if (st && too_large && k > 1) {
            unsigned half = (unsigned)(k / 2);
            if (half < he->batch) he->batch = half; /* for the rest of this embedder's life */
            ap_log(AP_LOG_INFO, "embed", "%s: 413 for %zu inputs, batches of %u from now on",
                   ap_http_url(he->http), k, half);
            st = AP_OK;
            continue;
        }
        if (st && too_large)
            st = ap_err_set(err, AP_ERR_LIMIT,
                            "embedder %s at %s: one text of %zu bytes is too large for the server "
                            "(HTTP 413)",
                            he->api->name, ap_http_url(he->http), pl + lens[at]);
        at += k;
    }
    for (size_t i = 0; i < n; i++)
        free(px[i]);
    free(px);
    return st;
}

ap_status ap_http_probe_dim(ap_http_embedder *he, uint32_t *dim, ap_err *err)
{
    if (!he->http) return ap_err_set(err, AP_ERR_UNSUPPORTED, "%s", he->no_endpoint);
    size_t pl = he->doc_prefix ? strlen(he->doc_prefix) : 0, tl = strlen(ap_canary_texts[0]);
    char *text = malloc(pl + tl + 1);
    float *v = malloc((size_t)ap_caps_get()->max_dim * sizeof *v);
    ap_status st = AP_OK;
    if (!text || !v) st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    if (!st && text && v) {
        if (pl) memcpy(text, he->doc_prefix, pl);
        memcpy(text + pl, ap_canary_texts[0], tl + 1);
        int too_large = 0;
        *dim = 0;
        st = embed_batch(he, dim, &text, 1, v, &too_large, err);
    }
    free(text);
    free(v);
    return st;
}

cJSON *ap_http_request_object(const char *model, const char *key, char *const *texts, size_t n)
{
    cJSON *o = cJSON_CreateObject();
    bool ok = o && (!model || cJSON_AddStringToObject(o, "model", model));
    cJSON *in = ok ? cJSON_AddArrayToObject(o, key) : NULL;
    ok = in != NULL;
    for (size_t i = 0; ok && i < n; i++)
        ok = cJSON_AddItemToArray(in, cJSON_CreateString(texts[i]));
    if (ok) return o;
    cJSON_Delete(o);
    return NULL;
}

char *ap_http_request_print(cJSON *o)
{
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return s;
}

const char *ap_http_reply_items(const cJSON *arr, size_t n, const cJSON **items,
                                const char *not_array)
{
    if (!cJSON_IsArray(arr)) return not_array;
    if ((size_t)cJSON_GetArraySize(arr) != n) return "another number of vectors than inputs";
    const cJSON *v;
    size_t i = 0;
    cJSON_ArrayForEach(v, arr) items[i++] = v;
    return NULL;
}
