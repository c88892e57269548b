/* The HTTP embedder object: created for a build (ap_embedder_create_http: the model is
 * asked for the canaries' vectors, which fixes the dim) or from a manifest's block
 * (ap_embed_http_from_json: the endpoint comes from the host), its manifest block, and
 * the embedder ops over http_embed.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annpack/caps.h"
#include "builtin.h"
#include "endpoint.h"
#include "http_embed.h"
#include "json.h"

static const ap_http_api *const APIS[] = {&ap_http_api_openai, &ap_http_api_tei,
                                          &ap_http_api_ollama};

const ap_http_api *ap_http_api_named(const char *name)
{
    for (size_t i = 0; i < sizeof APIS / sizeof APIS[0]; i++)
        if (strcmp(APIS[i]->name, name) == 0) return APIS[i];
    return NULL;
}

static ap_status http_embed_query(const ap_embedder *e, const char *text, size_t len, float *out,
                                  ap_err *err)
{
    ap_http_embedder *he = e->impl;
    char *const texts[1] = {(char *)(uintptr_t)text}; /* only read */
    return ap_http_embed_texts(he, e->dim, he->query_prefix, texts, &len, 1, out, err);
}

static ap_status http_embed_docs(const ap_embedder *e, char *const *texts, const size_t *lens,
                                 size_t n, float *out, ap_err *err)
{
    ap_http_embedder *he = e->impl;
    return ap_http_embed_texts(he, e->dim, he->doc_prefix, texts, lens, n, out, err);
}

static char *http_describe(const ap_embedder *e)
{
    const ap_http_embedder *he = e->impl;
    cJSON *o = cJSON_CreateObject();
    char *s = NULL;
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "name", he->api->name);
    cJSON_AddStringToObject(o, "api", he->api->name);
    cJSON_AddStringToObject(o, "model", he->model);
    if (he->revision)
        cJSON_AddStringToObject(o, "revision", he->revision);
    else
        cJSON_AddNullToObject(o, "revision");
    ap_json_add_u64(o, "dim", e->dim);
    ap_json_add_u64(o, "dimensions_requested", he->dims_requested);
    cJSON_AddStringToObject(o, "doc_prefix", he->doc_prefix);
    cJSON_AddStringToObject(o, "query_prefix", he->query_prefix);
    cJSON_AddStringToObject(o, "normalize", "l2");
    cJSON *c = ap_canary_block(e);
    if (c && cJSON_AddItemToObject(o, "canaries", c))
        s = cJSON_PrintUnformatted(o);
    else
        cJSON_Delete(c);
    cJSON_Delete(o);
    return s;
}

static void http_destroy(ap_embedder *e)
{
    ap_http_embedder *he = e->impl;
    if (he) {
        ap_http_free(he->http);
        free(he->model);
        free(he->revision);
        free(he->doc_prefix);
        free(he->query_prefix);
        for (unsigned i = 0; i < AP_CANARY_COUNT; i++)
            free(he->canary_texts[i]);
        free(he->canary_vecs);
        free(he);
    }
    free(e);
}

/* One ops table per API, so ap_embedder_name says which ("openai", "tei", "ollama"). */
#define HTTP_OPS(api)                                                                              \
    {                                                                                              \
        .name = (api), .embed = http_embed_query, .describe = http_describe,                       \
        .destroy = http_destroy, .embed_docs = http_embed_docs, .check = ap_canary_check,          \
        .remote = 1                                                                                \
    }
static const ap_embedder_ops http_ops[] = {HTTP_OPS("openai"), HTTP_OPS("tei"), HTTP_OPS("ollama")};

static const ap_embedder_ops *ops_of(const ap_http_api *api)
{
    for (size_t i = 0; i < sizeof http_ops / sizeof http_ops[0]; i++)
        if (strcmp(http_ops[i].name, api->name) == 0) return &http_ops[i];
    return &http_ops[0];
}

/* An embedder of api with its client (or its no_endpoint message), not yet described. */
static ap_status new_http(const ap_http_api *api, const char *model, const char *doc_prefix,
                          const char *query_prefix, ap_embedder **out, ap_err *err)
{
    ap_embedder *e = calloc(1, sizeof *e);
    ap_http_embedder *he = calloc(1, sizeof *he);
    *out = e;
    if (!e || !he) {
        free(he);
        return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    }
    e->ops = ops_of(api);
    e->impl = he;
    he->api = api;
    he->batch = AP_EMBED_HTTP_DEFAULT_BATCH;
    he->min_cosine = AP_EMBED_CANARY_MIN_COSINE;
    he->model = strdup(model ? model : "");
    he->doc_prefix = strdup(doc_prefix ? doc_prefix : "");
    he->query_prefix = strdup(query_prefix ? query_prefix : "");
    if (!he->model || !he->doc_prefix || !he->query_prefix)
        return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    ap_err cerr = {0};
    ap_status st = ap_embed_endpoint_client(&he->http, &cerr);
    if (st == AP_ERR_ARG) {
        ap_err m = {0};
        ap_err_set(&m, AP_ERR_ARG, "this pack embeds text with %s model \"%s\", and %s", api->name,
                   he->model, cerr.msg);
        memcpy(he->no_endpoint, m.msg, sizeof he->no_endpoint);
        return AP_OK;
    }
    if (st && err) *err = cerr;
    return st;
}

/* TEI's /info: the model it serves (checked against the one asked for), its revision and
 * its batch limit. */
static ap_status tei_info(ap_http_embedder *he, const char *want, ap_err *err)
{
    ap_http_reply r;
    ap_status st = ap_http_do(he->http, "/info", NULL, 0, &r, err);
    if (st) return st;
    char msg[320];
    if (r.status != 200) {
        if (r.status) ap_http_reply_message(r.body, r.len, msg, sizeof msg);
        free(r.body);
        return ap_err_set(err, AP_ERR_IO, "embedder tei at %s/info: %s%s%s", ap_http_url(he->http),
                          r.status ? "HTTP error: " : r.why, r.status ? msg : "", "");
    }
    cJSON *j = NULL;
    st = ap_json_parse_strict(r.body, r.len, "TEI /info", &j, err);
    free(r.body);
    if (st) return st;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "model_id");
    const cJSON *sha = cJSON_GetObjectItemCaseSensitive(j, "model_sha");
    const cJSON *mb = cJSON_GetObjectItemCaseSensitive(j, "max_client_batch_size");
    if (!cJSON_IsString(id))
        st = ap_err_set(err, AP_ERR_FORMAT, "embedder tei at %s/info: no \"model_id\"",
                        ap_http_url(he->http));
    else if (want && *want && strcmp(want, id->valuestring) != 0)
        st = ap_err_set(err, AP_ERR_ARG, "embedder tei at %s serves model \"%s\", not \"%s\"",
                        ap_http_url(he->http), id->valuestring, want);
    if (!st) {
        free(he->model);
        he->model = strdup(id->valuestring);
        if (cJSON_IsString(sha)) he->revision = strdup(sha->valuestring);
        if (cJSON_IsNumber(mb) && mb->valuedouble >= 1 && mb->valuedouble < he->batch)
            he->batch = (unsigned)mb->valuedouble;
        if (!he->model || (cJSON_IsString(sha) && !he->revision))
            st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    }
    cJSON_Delete(j);
    return st;
}

ap_status ap_embed_http_create(const char *api_name, const ap_embed_model *m, ap_embedder **out,
                               ap_err *err)
{
    *out = NULL;
    const ap_http_api *api = ap_http_api_named(api_name);
    if (!api)
        return ap_err_set(err, AP_ERR_UNSUPPORTED,
                          "\"%s\" is not an HTTP embedder (known: openai, tei, ollama)", api_name);
    if (strcmp(api->name, "tei") != 0 && (!m || !m->model || !*m->model))
        return ap_err_set(err, AP_ERR_ARG, "embedder %s needs a model name (--model NAME)",
                          api->name);
    ap_embedder *e = NULL;
    ap_status st = new_http(api, m ? m->model : NULL, m ? m->doc_prefix : NULL,
                            m ? m->query_prefix : NULL, &e, err);
    ap_http_embedder *he = e ? e->impl : NULL;
    if (st || !e || !he) {
        if (e) http_destroy(e);
        return st ? st : ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    }
    if (!he->http) st = ap_err_set(err, AP_ERR_ARG, "%s", he->no_endpoint);
    if (!st && m && m->batch) he->batch = m->batch;
    if (!st && m && m->dim && strcmp(api->name, "openai") == 0) he->dims_requested = m->dim;
    if (!st && strcmp(api->name, "tei") == 0) st = tei_info(he, m ? m->model : NULL, err);
    uint32_t dim = 0;
    if (!st) st = ap_http_probe_dim(he, &dim, err);
    if (!st && m && m->dim && dim != m->dim)
        st = ap_err_set(err, AP_ERR_ARG,
                        "embedder %s model \"%s\" writes vectors of dim %u, not the %u asked for "
                        "(--embed-dim)",
                        api->name, he->model, dim, m->dim);
    if (!st) {
        e->dim = dim;
        for (unsigned i = 0; i < AP_CANARY_COUNT && !st; i++)
            if (!(he->canary_texts[i] = strdup(ap_canary_texts[i])))
                st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        size_t lens[AP_CANARY_COUNT];
        for (unsigned i = 0; i < AP_CANARY_COUNT; i++)
            lens[i] = strlen(ap_canary_texts[i]);
        if (!st && !(he->canary_vecs = malloc((size_t)AP_CANARY_COUNT * dim * sizeof(float))))
            st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        if (!st)
            st = ap_http_embed_texts(he, dim, he->doc_prefix, he->canary_texts, lens,
                                     AP_CANARY_COUNT, he->canary_vecs, err);
    }
    if (st) {
        http_destroy(e);
        return st;
    }
    *out = e;
    return AP_OK;
}

static ap_status opt_str(const cJSON *o, const char *key, const char *name, const char **out,
                         ap_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    *out = NULL;
    if (!v) return ap_err_set(err, AP_ERR_FORMAT, "%s: field %s missing", name, key);
    if (cJSON_IsNull(v)) return AP_OK;
    if (!cJSON_IsString(v))
        return ap_err_set(err, AP_ERR_FORMAT, "%s: field %s is not a string or null", name, key);
    *out = v->valuestring;
    return AP_OK;
}

ap_status ap_embed_http_from_json(const cJSON *o, const char *name, ap_embedder **out, ap_err *err)
{
    *out = NULL;
    const char *ename, *api_name, *model, *rev, *dp, *qp, *norm;
    uint64_t dim, dreq;
    const cJSON *can;
    ap_status st;
    if ((st = ap_json_str(o, "name", name, &ename, err)) ||
        (st = ap_json_str(o, "api", name, &api_name, err)) ||
        (st = ap_json_str(o, "model", name, &model, err)) ||
        (st = opt_str(o, "revision", name, &rev, err)) ||
        (st = ap_json_u64(o, "dim", UINT32_MAX, name, &dim, err)) ||
        (st = ap_json_u64(o, "dimensions_requested", UINT32_MAX, name, &dreq, err)) ||
        (st = ap_json_str(o, "doc_prefix", name, &dp, err)) ||
        (st = ap_json_str(o, "query_prefix", name, &qp, err)) ||
        (st = ap_json_str(o, "normalize", name, &norm, err)) ||
        (st = ap_json_member(o, "canaries", cJSON_Object, name, &can, err)))
        return st;
    const ap_http_api *api = ap_http_api_named(api_name);
    if (!api || strcmp(ename, api_name) != 0)
        return ap_err_set(err, AP_ERR_UNSUPPORTED, "%s: embedder api \"%s\" is not supported", name,
                          api_name);
    if (strcmp(norm, "l2") != 0)
        return ap_err_set(err, AP_ERR_UNSUPPORTED, "%s: normalize \"%s\" is not supported (l2)",
                          name, norm);
    if (dim == 0) return ap_err_set(err, AP_ERR_FORMAT, "%s: embedder dim is 0", name);
    if (dim > ap_caps_get()->max_dim)
        return ap_err_set(err, AP_ERR_LIMIT, "%s: embedder dim %llu exceeds ANNPACK_MAX_DIM (%u)",
                          name, (unsigned long long)dim, ap_caps_get()->max_dim);
    ap_embedder *e = NULL;
    st = new_http(api, model, dp, qp, &e, err);
    ap_http_embedder *he = e ? e->impl : NULL;
    if (!st && e && he) {
        e->dim = (uint32_t)dim;
        he->dims_requested = (uint32_t)dreq;
        if (rev && !(he->revision = strdup(rev)))
            st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    }
    if (!st && he) st = ap_canary_read(he, can, (uint32_t)dim, name, err);
    if (st) {
        if (e) http_destroy(e);
        return st;
    }
    *out = e;
    return AP_OK;
}
