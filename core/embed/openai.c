/* The OpenAI /v1/embeddings shape (also served by vLLM, llama.cpp's server, LocalAI, and
 * TEI and Ollama's compatibility routes): POST {base}/embeddings
 *   {"model": M, "input": [texts], "encoding_format": "base64"[, "dimensions": D]}
 * -> {"data": [{"index": i, "embedding": base64 float32 LE | [numbers]}, ...], "model": M}.
 * base64 is asked for (a quarter of the bytes, exact); a server that ignores it and sends
 * numbers is read as well. */
#include <stdlib.h>

#include "http_embed.h"
#include "json.h"

static char *openai_request(const char *model, uint32_t dim, char *const *texts, size_t n)
{
    cJSON *o = ap_http_request_object(model ? model : "", "input", texts, n);
    if (o && (!cJSON_AddStringToObject(o, "encoding_format", "base64") ||
              (dim && !ap_json_add_u64(o, "dimensions", dim)))) {
        cJSON_Delete(o);
        o = NULL;
    }
    return ap_http_request_print(o);
}

static const char *openai_vectors(const cJSON *reply, size_t n, const cJSON **items)
{
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(reply, "data");
    if (!cJSON_IsArray(data)) return "no \"data\" array";
    if ((size_t)cJSON_GetArraySize(data) != n) return "\"data\" has another number of vectors";
    const cJSON *d;
    size_t pos = 0;
    cJSON_ArrayForEach(d, data)
    {
        const cJSON *idx = cJSON_GetObjectItemCaseSensitive(d, "index");
        const cJSON *emb = cJSON_GetObjectItemCaseSensitive(d, "embedding");
        /* "index" says which input a vector is for; without it, the reply's order. */
        size_t i = pos++;
        if (idx) {
            uint64_t v;
            if (ap_json_item_u64(idx, n ? n - 1 : 0, "index", &v, NULL))
                return "an \"index\" is not an input's number";
            i = (size_t)v;
        }
        if (items[i]) return "two vectors for the same \"index\"";
        if (!emb) return "an item without \"embedding\"";
        items[i] = emb;
    }
    return NULL;
}

const ap_http_api ap_http_api_openai = {
    .name = "openai", .path = "/embeddings", .request = openai_request, .vectors = openai_vectors};
