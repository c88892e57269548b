/* Fuzz target: query file names (percent-decoding, ?k=&probe= parameters). */
#include <stdint.h>

#include "annpack/query.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ap_query q;
    if (ap_query_parse((const char *)data, size, 10, 8, &q, NULL) == AP_OK) {
        if (q.k < 1 || q.k > 1000 || q.probe < 1 || q.text[q.len] != '\0') __builtin_trap();
        ap_query_free(&q);
    }
    return 0;
}
