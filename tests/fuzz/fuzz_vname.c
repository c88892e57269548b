/* Fuzz target: vector query names (/vquery/). The first byte picks the dim (1..64); what
 * decodes must be finite and unit length. */
#include <math.h>
#include <stdint.h>

#include "annpack/query.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    uint32_t dim = (uint32_t)(data[0] % 64) + 1;
    float v[64];
    if (ap_query_vector_decode((const char *)data + 1, size - 1, dim, v, NULL) != AP_OK) return 0;
    double s = 0;
    for (uint32_t i = 0; i < dim; i++) {
        if (!isfinite(v[i])) __builtin_trap();
        s += (double)v[i] * v[i];
    }
    if (fabs(s - 1.0) > 1e-3) __builtin_trap();
    return 0;
}
