/* text-embeddings-inference's native shape: POST {base}/embed {"inputs": [texts]} ->
 * [[numbers], ...] in input order; GET {base}/info names the model (model_id, model_sha)
 * and its limits (max_client_batch_size). */
#include <stdlib.h>

#include "http_embed.h"

static char *tei_request(const char *model, uint32_t dim, char *const *texts, size_t n)
{
    (void)model; /* a TEI server serves one model: /info names it */
    (void)dim;
    return ap_http_request_print(ap_http_request_object(NULL, "inputs", texts, n));
}

static const char *tei_vectors(const cJSON *reply, size_t n, const cJSON **items)
{
    return ap_http_reply_items(reply, n, items, "not a JSON array of vectors");
}

const ap_http_api ap_http_api_tei = {
    .name = "tei", .path = "/embed", .request = tei_request, .vectors = tei_vectors};
