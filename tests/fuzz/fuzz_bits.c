/* Fuzz target: the 1-bit code sidecar reader against an ANNP file, then a bits search and
 * the deep code check on what it accepts. Input: see sidecar_input.h. */
/* Tests reach below the stable API (annpack/experimental.h). */
#define AP_EXPERIMENTAL
#include <stddef.h>
#include <stdint.h>

#include "annpack/bits.h"
#include "sidecar_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void run(const ap_annp *a, const char *path)
{
    ap_bits *b = NULL;
    if (ap_bits_open(path, a, &b, NULL) != AP_OK) return;
    sidecar_search(&(ap_ivf){.annp = a, .bits = b}, AP_SCAN_BITS);
    ap_bits_check_codes(b, a, NULL);
    ap_bits_close(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return sidecar_input(data, size, run);
}
