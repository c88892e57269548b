/* Fuzz target: the ANNP v1 reader (open over memory) and a search on what it accepts. */
/* Tests reach below the stable API (annpack/experimental.h). */
#define AP_EXPERIMENTAL
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "annpack/format.h"
#include "annpack/search.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ap_annp *a = NULL;
    if (ap_annp_open_mem(data, size, "fuzz.annpack", &a, NULL) != AP_OK) return 0;
    const ap_annp_header *h = ap_annp_get_header(a);
    float *q = calloc(h->dim, sizeof *q);
    ap_hit hits[10];
    uint32_t n;
    if (q) {
        q[0] = 1.0f;
        ap_annp_search(a, q, 10, 4, hits, &n, NULL);
    }
    free(q);
    ap_annp_close(a);
    return 0;
}
