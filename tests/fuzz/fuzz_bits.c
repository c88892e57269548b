/* Fuzz target: the 1-bit code sidecar reader against an ANNP file, then a bits search and
 * the deep code check on what it accepts. Input: u32 length L, L bytes of ANNP, then the
 * sidecar's bytes. */
/* Tests reach below the stable API (annpack/experimental.h). */
#define AP_EXPERIMENTAL
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "annpack/bits.h"
#include "annpack/format.h"
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
    ap_bits *b = NULL;
    if (fd >= 0 && ap_bits_open(path, a, &b, NULL) == AP_OK) {
        const ap_annp_header *h = ap_annp_get_header(a);
        float *q = calloc(h->dim, sizeof *q);
        ap_hit hits[10];
        uint32_t n = 0;
        if (q) {
            q[0] = 1.0f;
            ap_ivf ix = {.annp = a, .bits = b};
            ap_search_params p = {.k = 10, .probe = 4, .scan = AP_SCAN_BITS};
            if (ap_ivf_search(&ix, q, &p, hits, &n, NULL, NULL) == AP_OK && n > 10)
                __builtin_trap();
        }
        free(q);
        ap_bits_check_codes(b, a, NULL);
        ap_bits_close(b);
    }
    if (fd >= 0) close(fd);
    ap_annp_close(a);
    return 0;
}
