/* Fuzz target: strict JSON (manifests, rows) and the embedder block reader. */
/* Tests reach below the stable API (annpack/experimental.h). */
#define AP_EXPERIMENTAL
#include <stdint.h>

#include "annpack/embed.h"
#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *j = NULL;
    if (ap_json_parse_strict((const char *)data, size, "fuzz.json", &j, NULL) == AP_OK) {
        uint64_t v;
        const char *s;
        ap_json_u64(j, "dim", UINT32_MAX, "fuzz", &v, NULL);
        ap_json_str(j, "name", "fuzz", &s, NULL);
        cJSON_Delete(j);
    }
    ap_embedder *e = NULL;
    if (ap_embedder_from_json((const char *)data, size, "fuzz", &e, NULL) == AP_OK) {
        float q[4096];
        ap_embedder_embed(e, "fuzz text", 9, q, NULL);
        ap_embedder_free(e);
    }
    return 0;
}
