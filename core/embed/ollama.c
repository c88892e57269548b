/* Ollama's shape: POST {base}/api/embed {"model": M, "input": [texts]} ->
 * {"model": M, "embeddings": [[numbers], ...]} in input order. */
#include <stdlib.h>

#include "http_embed.h"

static char *ollama_request(const char *model, uint32_t dim, char *const *texts, size_t n)
{
    (void)dim;
    return ap_http_request_print(ap_http_request_object(model ? model : "", "input", texts, n));
}

static const char *ollama_vectors(const cJSON *reply, size_t n, const cJSON **items)
{
    return ap_http_reply_items(cJSON_GetObjectItemCaseSensitive(reply, "embeddings"), n, items,
                               "no \"embeddings\" array");
}

const ap_http_api ap_http_api_ollama = {
    .name = "ollama", .path = "/api/embed", .request = ollama_request, .vectors = ollama_vectors};
