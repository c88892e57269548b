/* Fuzz target: the int8 sidecar reader against an ANNP file, then an int8 search and the
 * deep code check on what it accepts. Input: u32 length L, L bytes of ANNP, then the
 * sidecar's bytes. */
/* Tests reach below the stable API (annpack/experimental.h). */
#define AP_EXPERIMENTAL
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "annpack/format.h"
#include "annpack/sq8.h"
#include "ivf.h"
#include "memfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4) return 0;
    uint32_t l;
    memcpy(&l, data, 4);
    if (l > size - 4) return 0;
    ap_annp *a = NULL;
    if (ap_annp_open_mem(data + 4, l, "fuzz.annpack", &a, NULL) != AP_OK) return 0;
    char path[64];
    int fd = memfile(data + 4 + l, size - 4 - l, path);
    ap_sq8 *s = NULL;
    if (fd >= 0 && ap_sq8_open(path, a, &s, NULL) == AP_OK) {
        const ap_annp_header *h = ap_annp_get_header(a);
        float *q = calloc(h->dim, sizeof *q);
        ap_hit hits[10];
        uint32_t n = 0;
        if (q) {
            q[0] = 1.0f;
            ap_ivf ix = {.annp = a, .sq8 = s};
            ap_search_params p = {.k = 10, .probe = 4, .scan = AP_SCAN_SQ8};
            if (ap_ivf_search(&ix, q, &p, hits, &n, NULL, NULL) == AP_OK && n > 10)
                __builtin_trap();
        }
        free(q);
        ap_sq8_check_codes(s, a, NULL);
        ap_sq8_close(s);
    }
    if (fd >= 0) close(fd);
    ap_annp_close(a);
    return 0;
}
