/* Embedder registry and helpers: see include/annpack/embed.h. */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "annpack/caps.h"
#include "annpack/embed.h"
#include "annpack/sign.h"
#include "builtin.h"
#include "corpus.h"
#include "json.h"

double ap_l2_normalize(float *v, uint32_t dim)
{
    double s = 0;
    for (uint32_t i = 0; i < dim; i++)
        s += (double)v[i] * v[i];
    double n = sqrt(s);
    if (n > 0)
        for (uint32_t i = 0; i < dim; i++)
            v[i] = (float)(v[i] / n);
    return n;
}

/* Every embedder's fingerprint is set once, here, after its constructor. */
static ap_status fingerprinted(ap_status st, ap_embedder **out, ap_err *err)
{
    if (st) return st;
    if (!*out) return ap_err_set(err, AP_ERR_INTERNAL, "embedder: constructor made nothing");
    char *d = ap_embedder_describe(*out);
    if (!d) {
        ap_embedder_free(*out);
        *out = NULL;
        return ap_err_set(err, AP_ERR_NOMEM, "embedder: out of memory");
    }
    ap_sha256_hex(d, strlen(d), (*out)->fingerprint);
    free(d);
    return AP_OK;
}

static ap_status create_local(const char *name, uint32_t dim, uint64_t seed, ap_embedder **out,
                              ap_err *err);

ap_status ap_embedder_create(const char *name, uint32_t dim, uint64_t seed, ap_embedder **out,
                             ap_err *err)
{
    return fingerprinted(create_local(name, dim, seed, out, err), out, err);
}

ap_status ap_embedder_create_http(const char *api, const ap_embed_model *m, ap_embedder **out,
                                  ap_err *err)
{
    return fingerprinted(ap_embed_http_create(api, m, out, err), out, err);
}

static ap_status create_local(const char *name, uint32_t dim, uint64_t seed, ap_embedder **out,
                              ap_err *err)
{
    *out = NULL;
    if (dim == 0) dim = AP_EMBED_DEFAULT_DIM;
    const ap_caps *caps = ap_caps_get();
    if (dim > caps->max_dim)
        return ap_err_set(err, AP_ERR_LIMIT, "embedder dim %u exceeds ANNPACK_MAX_DIM (%u)", dim,
                          caps->max_dim);
    /* "hash" is the newest version; "hash:1" and "hash:2" name one. */
    if (strcmp(name, "hash") == 0 || strcmp(name, "hash:2") == 0)
        return ap_embed_hash2_create(dim, seed, NULL, out, err);
    if (strcmp(name, "hash:1") == 0) return ap_embed_hash_create(dim, seed, out, err);
    if (strcmp(name, "vectors") == 0) return ap_embed_vectors_create(dim, out, err);
    if (ap_http_api_named(name))
        return ap_err_set(err, AP_ERR_ARG,
                          "embedder \"%s\" asks a service: it needs a model and an endpoint "
                          "(--model NAME --embed-url URL)",
                          name);
    return ap_err_set(err, AP_ERR_UNSUPPORTED,
                      "unknown embedder \"%s\" (known: hash, hash:1, hash:2, vectors, openai, tei, "
                      "ollama)",
                      name);
}

/* The "idf" object of a version 2 block: {"file": "pack.idf", "sha256": 64 hex digits}. */
static ap_status idf_block(const cJSON *root, const char *name, const char **sha, ap_err *err)
{
    const cJSON *idf = cJSON_GetObjectItemCaseSensitive(root, "idf");
    const char *file;
    if (!cJSON_IsObject(idf))
        return ap_err_set(err, AP_ERR_FORMAT, "%s: hash version 2 needs an \"idf\" object", name);
    ap_status st = ap_json_str(idf, "file", name, &file, err);
    if (!st) st = ap_json_str(idf, "sha256", name, sha, err);
    if (st) return st;
    if (strcmp(file, AP_IDF) != 0)
        return ap_err_set(err, AP_ERR_FORMAT, "%s: idf.file is \"%.64s\", not \"%s\"", name, file,
                          AP_IDF);
    size_t n = strlen(*sha);
    bool hex = n == AP_SHA256_HEX - 1;
    for (size_t i = 0; hex && i < n; i++)
        hex = ((*sha)[i] >= '0' && (*sha)[i] <= '9') || ((*sha)[i] >= 'a' && (*sha)[i] <= 'f');
    if (!hex)
        return ap_err_set(err, AP_ERR_FORMAT, "%s: idf.sha256 is not 64 lowercase hex digits",
                          name);
    return AP_OK;
}

ap_status ap_embedder_from_json(const char *json, size_t len, const char *name, ap_embedder **out,
                                ap_err *err)
{
    *out = NULL;
    cJSON *root = NULL;
    ap_status st = ap_json_parse_strict(json, len, name, &root, err);
    if (st) return st;
    const char *ename;
    uint64_t dim, seed;
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(root, "name");
    if (!cJSON_IsObject(root)) {
        st = ap_err_set(err, AP_ERR_FORMAT, "%s: embedder block is not an object", name);
    } else if (cJSON_IsString(nm) && ap_http_api_named(nm->valuestring)) {
        st = fingerprinted(ap_embed_http_from_json(root, name, out, err), out, err);
    } else if (!(st = ap_json_str(root, "name", name, &ename, err)) &&
               !(st = ap_json_u64(root, "dim", UINT32_MAX, name, &dim, err)) &&
               !(st = ap_json_u64(root, "seed", AP_JSON_MAX_SAFE_INT, name, &seed, err))) {
        uint64_t version = 0;
        const char *idf_sha = NULL;
        if (strcmp(ename, "hash") == 0) {
            st = ap_json_u64(root, "version", UINT32_MAX, name, &version, err);
            if (!st && version != 1 && version != 2)
                st = ap_err_set(err, AP_ERR_UNSUPPORTED,
                                "%s: hash embedder version %llu not supported (known: 1, 2)", name,
                                (unsigned long long)version);
            if (!st && version == 2) st = idf_block(root, name, &idf_sha, err);
        } else if (strchr(ename, ':')) {
            /* "hash:1" names a version on the command line, never in a block. */
            st = ap_err_set(err, AP_ERR_UNSUPPORTED, "%s: unknown embedder \"%.64s\"", name, ename);
        }
        if (!st && dim == 0) st = ap_err_set(err, AP_ERR_FORMAT, "%s: embedder dim is 0", name);
        if (!st && version == 2) {
            const ap_caps *caps = ap_caps_get();
            st = dim > caps->max_dim
                     ? ap_err_set(err, AP_ERR_LIMIT, "embedder dim %u exceeds ANNPACK_MAX_DIM (%u)",
                                  (unsigned)dim, caps->max_dim)
                     : ap_embed_hash2_create((uint32_t)dim, seed, idf_sha, out, err);
        } else if (!st) {
            st = ap_embedder_create(version == 1 ? "hash:1" : ename, (uint32_t)dim, seed, out, err);
        }
    }
    cJSON_Delete(root);
    return st;
}

ap_status ap_embedder_embed(const ap_embedder *e, const char *text, size_t len, float *out,
                            ap_err *err)
{
    return e->ops->embed(e, text, len, out, err);
}

char *ap_embedder_describe(const ap_embedder *e)
{
    return e->ops->describe(e);
}

void ap_embedder_free(ap_embedder *e)
{
    if (e) e->ops->destroy(e);
}

const char *ap_embedder_name(const ap_embedder *e)
{
    return e->ops->name;
}

uint32_t ap_embedder_dim(const ap_embedder *e)
{
    return e->dim;
}

ap_status ap_embedder_embed_docs(const ap_embedder *e, char *const *texts, const size_t *lens,
                                 size_t n, float *out, ap_err *err)
{
    if (e->ops->embed_docs) return e->ops->embed_docs(e, texts, lens, n, out, err);
    for (size_t i = 0; i < n; i++) {
        ap_status st = e->ops->embed(e, texts[i], lens[i], out + i * e->dim, err);
        if (st) return st;
    }
    return AP_OK;
}

int ap_embedder_is_remote(const ap_embedder *e)
{
    return e->ops->remote;
}

const char *ap_embedder_fingerprint(const ap_embedder *e)
{
    return e->fingerprint;
}

ap_status ap_embedder_check(const ap_embedder *e, double *min_cos, ap_err *err)
{
    if (e->ops->check) return e->ops->check(e, min_cos, err);
    if (min_cos) *min_cos = 1;
    return AP_OK;
}
