/* Canaries: fixed texts whose build-time vectors the manifest records, so a serving host
 * can tell that its endpoint embeds as the build's did (same model, revision, prefixes)
 * before it answers a text query (docs/EMBEDDERS.md, "Canaries"). Vectors are stored as
 * base64 of little-endian float32, exact. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "endian.h"
#include "http_embed.h"
#include "json.h"

const char *const ap_canary_texts[AP_CANARY_COUNT] = {
    "The quick brown fox jumps over the lazy dog.",
    "Espresso is brewed by forcing hot water through finely ground coffee beans.",
    "annpack canary 3: signed immutable vector search packs",
};

cJSON *ap_canary_block(const ap_embedder *e)
{
    const ap_http_embedder *he = e->impl;
    cJSON *b = cJSON_CreateObject(), *t = cJSON_CreateArray(), *v = cJSON_CreateArray();
    size_t raw_len = (size_t)e->dim * 4;
    size_t b64_len = sodium_base64_ENCODED_LEN(raw_len, sodium_base64_VARIANT_ORIGINAL);
    unsigned char *raw = malloc(raw_len);
    char *b64 = malloc(b64_len);
    int ok = b && t && v && raw && b64;
    if (ok) {
        cJSON_AddItemToObject(b, "min_cosine", cJSON_CreateNumber(he->min_cosine));
        cJSON_AddItemToObject(b, "texts", t);
        cJSON_AddItemToObject(b, "vectors_f32le_base64", v);
        t = v = NULL;
    }
    for (unsigned i = 0; ok && i < AP_CANARY_COUNT; i++) {
        const float *x = he->canary_vecs + (size_t)i * e->dim;
        for (uint32_t d = 0; d < e->dim; d++) {
            uint32_t u;
            memcpy(&u, &x[d], 4);
            ap_put32(raw + 4 * d, u);
        }
        sodium_bin2base64(b64, b64_len, raw, raw_len, sodium_base64_VARIANT_ORIGINAL);
        cJSON *texts = cJSON_GetObjectItemCaseSensitive(b, "texts");
        cJSON *vecs = cJSON_GetObjectItemCaseSensitive(b, "vectors_f32le_base64");
        ok = cJSON_AddItemToArray(texts, cJSON_CreateString(he->canary_texts[i])) &&
             cJSON_AddItemToArray(vecs, cJSON_CreateString(b64));
    }
    free(raw);
    free(b64);
    cJSON_Delete(t);
    cJSON_Delete(v);
    if (!ok) {
        cJSON_Delete(b);
        return NULL;
    }
    return b;
}

/* base64 of dim little-endian float32 into out; 0 when it is not exactly that. */
static int decode_vector(const char *s, uint32_t dim, float *out)
{
    size_t raw_len = (size_t)dim * 4, got = 0;
    unsigned char *raw = malloc(raw_len + 1);
    if (!raw) return 0;
    int ok = sodium_base642bin(raw, raw_len + 1, s, strlen(s), NULL, &got, NULL,
                               sodium_base64_VARIANT_ORIGINAL) == 0 &&
             got == raw_len;
    for (uint32_t d = 0; ok && d < dim; d++) {
        uint32_t u = ap_le32(raw + 4 * d);
        memcpy(&out[d], &u, 4);
        ok = isfinite(out[d]);
    }
    free(raw);
    return ok;
}

ap_status ap_canary_read(ap_http_embedder *he, const cJSON *block, uint32_t dim, const char *name,
                         ap_err *err)
{
    const cJSON *mc, *texts, *vecs;
    ap_status st;
    if ((st = ap_json_member(block, "min_cosine", cJSON_Number, name, &mc, err)) ||
        (st = ap_json_member(block, "texts", cJSON_Array, name, &texts, err)) ||
        (st = ap_json_member(block, "vectors_f32le_base64", cJSON_Array, name, &vecs, err)))
        return st;
    he->min_cosine = mc->valuedouble;
    if (!(he->min_cosine >= -1 && he->min_cosine <= 1))
        return ap_err_set(err, AP_ERR_FORMAT, "%s: canaries.min_cosine %g is not in [-1, 1]", name,
                          he->min_cosine);
    if (cJSON_GetArraySize(texts) != (int)AP_CANARY_COUNT ||
        cJSON_GetArraySize(vecs) != (int)AP_CANARY_COUNT)
        return ap_err_set(err, AP_ERR_FORMAT, "%s: canaries: need %u texts and %u vectors", name,
                          AP_CANARY_COUNT, AP_CANARY_COUNT);
    if (!(he->canary_vecs = malloc((size_t)AP_CANARY_COUNT * dim * sizeof(float))))
        return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    for (unsigned i = 0; i < AP_CANARY_COUNT; i++) {
        const cJSON *t = cJSON_GetArrayItem(texts, (int)i), *v = cJSON_GetArrayItem(vecs, (int)i);
        if (!cJSON_IsString(t) || !cJSON_IsString(v))
            return ap_err_set(err, AP_ERR_FORMAT, "%s: canary %u is not two strings", name, i);
        if (!decode_vector(v->valuestring, dim, he->canary_vecs + (size_t)i * dim))
            return ap_err_set(err, AP_ERR_FORMAT,
                              "%s: canary %u vector is not base64 of %u finite float32", name, i,
                              dim);
        if (!(he->canary_texts[i] = strdup(t->valuestring)))
            return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    }
    return AP_OK;
}

ap_status ap_canary_check(const ap_embedder *e, double *min_cos, ap_err *err)
{
    ap_http_embedder *he = e->impl;
    if (min_cos) *min_cos = -2;
    size_t lens[AP_CANARY_COUNT];
    for (unsigned i = 0; i < AP_CANARY_COUNT; i++)
        lens[i] = strlen(he->canary_texts[i]);
    float *got = malloc((size_t)AP_CANARY_COUNT * e->dim * sizeof *got);
    if (!got) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    ap_status st = ap_http_embed_texts(he, e->dim, he->doc_prefix, he->canary_texts, lens,
                                       AP_CANARY_COUNT, got, err);
    double worst = 2;
    unsigned worst_i = 0;
    for (unsigned i = 0; !st && i < AP_CANARY_COUNT; i++) {
        double dot = 0;
        for (uint32_t d = 0; d < e->dim; d++)
            dot += (double)got[(size_t)i * e->dim + d] * he->canary_vecs[(size_t)i * e->dim + d];
        if (dot < worst) {
            worst = dot;
            worst_i = i;
        }
    }
    free(got);
    if (st) return st;
    if (min_cos) *min_cos = worst;
    if (worst < he->min_cosine)
        return ap_err_set(err, AP_ERR_VERIFY,
                          "embedder %s model \"%s\" at %s does not embed as the build did: canary "
                          "%u has cosine %.4f to its recorded vector, below %.4f (another model, "
                          "revision or prefix behind the endpoint?)",
                          he->api->name, he->model, ap_http_url(he->http), worst_i + 1, worst,
                          he->min_cosine);
    return AP_OK;
}
