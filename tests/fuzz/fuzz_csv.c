/* Fuzz target: the streaming CSV reader. */
/* Tests reach below the stable API (annpack/experimental.h). */
#define AP_EXPERIMENTAL
#include <stdint.h>

#include "annpack/csv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ap_csv *c = NULL;
    if (ap_csv_open_mem(data, size, "fuzz.csv", &c, NULL) != AP_OK) return 0;
    for (int i = 0; i < 100000; i++) {
        ap_csv_record r;
        int eof = 0;
        if (ap_csv_next(c, &r, &eof, NULL) != AP_OK || eof) break;
        for (size_t f = 0; f < r.nfields; f++)
            if (r.fields[f][r.lens[f]] != '\0') __builtin_trap();
    }
    ap_csv_close(c);
    return 0;
}
