/* Fuzz target: tombstones / delete-id lists (JSONL {"id":N} or integers). */
#include <stdint.h>
#include <stdlib.h>

#include "annpack/packset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t *ids = NULL;
    size_t n = 0;
    if (ap_parse_id_list((const char *)data, size, "fuzz.jsonl", &ids, &n, NULL) == AP_OK)
        for (size_t i = 0; i < n; i++)
            if (ids[i] >= (1ull << 53)) __builtin_trap();
    free(ids);
    return 0;
}
