/* bits_kernels PACK_DIR: every 1-bit kernel this CPU runs over every list of the pack's
 * pack.bits with seeded query planes, one FNV-1a digest of the integers per kernel, as JSON
 * (tests/test_bits.py checks that they all agree on a real built pack). */
/* Tests reach below the stable API (annpack/experimental.h). */
#define AP_EXPERIMENTAL
#include <stdio.h>
#include <stdlib.h>

#include "annpack/bits.h"
#include "annpack/format.h"
#include "annpack/search.h"

int main(int argc, char **argv)
{
    if (argc < 2) return fprintf(stderr, "usage: bits_kernels PACK_DIR\n"), 2;
    char ap[4096], bp[4096];
    snprintf(ap, sizeof ap, "%s/pack.annpack", argv[1]);
    snprintf(bp, sizeof bp, "%s/%s", argv[1], AP_BITS);
    ap_annp *a = NULL;
    ap_bits *b = NULL;
    ap_err err = {0};
    if (ap_annp_open(ap, &a, &err) || ap_bits_open(bp, a, &b, &err)) {
        fprintf(stderr, "bits_kernels: %s\n", err.msg);
        ap_annp_close(a);
        return 1;
    }
    const char *names[] = {"portable", "popcnt", "avx2", "avx512vpopcntdq"};
    const uint32_t words = ap_bits_dpad(b) / 64, n_lists = ap_annp_get_header(a)->n_lists;
    uint64_t *planes = malloc(4ull * words * sizeof *planes);
    printf("{\"dispatch\":\"%s\",\"kernels\":{", ap_search_kernel_bits());
    int first = 1;
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        ap_bits_score_fn fn = ap_bits_kernel_for(names[k]);
        if (!fn) continue;
        uint64_t h = 1469598103934665603ull, seed = 42, codes = 0;
        for (int rep = 0; rep < 3; rep++) {
            for (uint32_t i = 0; i < 4 * words; i++) {
                uint64_t z = (seed += 0x9E3779B97F4A7C15ull);
                z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
                z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
                planes[i] = z ^ (z >> 31);
            }
            for (uint32_t l = 0; l < n_lists; l++) {
                uint32_t n;
                const uint8_t *d = ap_bits_list(b, l, &n);
                uint32_t s[256], pop[256];
                for (uint32_t j0 = 0; j0 < n; j0 += 256) {
                    uint32_t m = n - j0 < 256 ? n - j0 : 256;
                    fn(planes, d + (size_t)j0 * words * 8, m, words, s, pop);
                    for (uint32_t j = 0; j < m; j++) {
                        h = (h ^ s[j]) * 1099511628211ull;
                        h = (h ^ pop[j]) * 1099511628211ull;
                    }
                    codes += m;
                }
            }
        }
        printf("%s\"%s\":{\"codes\":%llu,\"fnv\":\"%016llx\"}", first ? "" : ",", names[k],
               (unsigned long long)codes, (unsigned long long)h);
        first = 0;
    }
    printf("}}\n");
    free(planes);
    ap_bits_close(b);
    ap_annp_close(a);
    return 0;
}
