/* Embedder registry and helpers: see include/annpack/embed.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "annpack/caps.h"
#include "annpack/embed.h"
#include "builtin.h"
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

ap_status ap_embedder_create(const char *name, uint32_t dim, uint64_t seed, ap_embedder **out,
                             ap_err *err)
{
    *out = NULL;
    if (dim == 0) dim = AP_EMBED_DEFAULT_DIM;
    const ap_caps *caps = ap_caps_get();
    if (dim > caps->max_dim)
        return ap_err_set(err, AP_ERR_LIMIT, "embedder dim %u exceeds ANNPACK_MAX_DIM (%u)", dim,
                          caps->max_dim);
    if (strcmp(name, "hash") == 0) return ap_embed_hash_create(dim, seed, out, err);
    if (strcmp(name, "vectors") == 0) return ap_embed_vectors_create(dim, out, err);
    return ap_err_set(err, AP_ERR_UNSUPPORTED, "unknown embedder \"%s\" (known: hash, vectors)",
                      name);
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
    if (!cJSON_IsObject(root)) {
        st = ap_err_set(err, AP_ERR_FORMAT, "%s: embedder block is not an object", name);
    } else if (!(st = ap_json_str(root, "name", name, &ename, err)) &&
               !(st = ap_json_u64(root, "dim", UINT32_MAX, name, &dim, err)) &&
               !(st = ap_json_u64(root, "seed", AP_JSON_MAX_SAFE_INT, name, &seed, err))) {
        if (strcmp(ename, "hash") == 0) {
            uint64_t version;
            st = ap_json_u64(root, "version", UINT32_MAX, name, &version, err);
            if (!st && version != AP_EMBED_HASH_VERSION)
                st = ap_err_set(err, AP_ERR_UNSUPPORTED,
                                "%s: hash embedder version %llu not supported (need %u)", name,
                                (unsigned long long)version, AP_EMBED_HASH_VERSION);
        }
        if (!st && dim == 0) st = ap_err_set(err, AP_ERR_FORMAT, "%s: embedder dim is 0", name);
        if (!st) st = ap_embedder_create(ename, (uint32_t)dim, seed, out, err);
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
