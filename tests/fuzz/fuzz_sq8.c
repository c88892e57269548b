/* Fuzz target: the int8 sidecar reader against an ANNP file, then an int8 search and the
 * deep code check on what it accepts. Input: see sidecar_input.h. */
/* Tests reach below the stable API (annpack/experimental.h). */
#define AP_EXPERIMENTAL
#include <stddef.h>
#include <stdint.h>

#include "annpack/sq8.h"
#include "sidecar_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void run(const ap_annp *a, const char *path)
{
    ap_sq8 *s = NULL;
    if (ap_sq8_open(path, a, &s, NULL) != AP_OK) return;
    sidecar_search(&(ap_ivf){.annp = a, .sq8 = s}, AP_SCAN_SQ8);
    ap_sq8_check_codes(s, a, NULL);
    ap_sq8_close(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return sidecar_input(data, size, run);
}
