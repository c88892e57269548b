/* Ollama's shape: POST {base}/api/embed {"model": M, "input": [texts]} ->
 * {"model": M, "embeddings": [[numbers], ...]} in input order. */
#include <stdlib.h>

#include "http_embed.h"

static char *ollama_request(const char *model, uint32_t dim, char *const *texts, size_t n)
{
    (void)dim;
    cJSON *o = cJSON_CreateObject(), *in = cJSON_CreateArray();
    char *s = NULL;
    if (!o || !in) goto out;
    cJSON_AddStringToObject(o, "model", model ? model : "");
    cJSON_AddItemToObject(o, "input", in);
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

static const char *ollama_vectors(const cJSON *reply, size_t n, const cJSON **items)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(reply, "embeddings");
    if (!cJSON_IsArray(e)) return "no \"embeddings\" array";
    if ((size_t)cJSON_GetArraySize(e) != n) return "another number of vectors than inputs";
    const cJSON *v;
    size_t i = 0;
    cJSON_ArrayForEach(v, e) items[i++] = v;
    return NULL;
}

const ap_http_api ap_http_api_ollama = {
    .name = "ollama", .path = "/api/embed", .request = ollama_request, .vectors = ollama_vectors};
