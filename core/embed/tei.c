/* text-embeddings-inference's native shape: POST {base}/embed {"inputs": [texts]} ->
 * [[numbers], ...] in input order; GET {base}/info names the model (model_id, model_sha)
 * and its limits (max_client_batch_size). */
#include <stdlib.h>

#include "http_embed.h"

static char *tei_request(const char *model, uint32_t dim, char *const *texts, size_t n)
{
    (void)model; /* a TEI server serves one model: /info names it */
    (void)dim;
    cJSON *o = cJSON_CreateObject(), *in = cJSON_CreateArray();
    char *s = NULL;
    if (!o || !in) goto out;
    cJSON_AddItemToObject(o, "inputs", in);
    for (size_t i = 0; i < n; i++)
        if (!cJSON_AddItemToArray(in, cJSON_CreateString(texts[i]))) {
            in = NULL;
            goto out;
        }
    in = NULL;
    s = cJSON_PrintUnformatted(o);
out:
    cJSON_Delete(in);
    cJSON_Delete(o);
    return s;
}

static const char *tei_vectors(const cJSON *reply, size_t n, const cJSON **items)
{
    if (!cJSON_IsArray(reply)) return "not a JSON array of vectors";
    if ((size_t)cJSON_GetArraySize(reply) != n) return "another number of vectors than inputs";
    const cJSON *v;
    size_t i = 0;
    cJSON_ArrayForEach(v, reply) items[i++] = v;
    return NULL;
}

const ap_http_api ap_http_api_tei = {
    .name = "tei", .path = "/embed", .request = tei_request, .vectors = tei_vectors};
