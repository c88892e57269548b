/* pack.filter lookups: ap_filter_value_has_near (the scan's, searching outward from where
 * the last lookup ended) answers as the plain binary search does, for every set size,
 * hint and lookup order, ids up to 2^53. */
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "filter.h"

static uint64_t rng = 88172645463325252ull;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

int main(void)
{
    const uint32_t sizes[] = {1, 2, 3, 7, 64, 1000, 40000};
    int mismatches = 0;
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        uint32_t n = sizes[s];
        uint8_t *ids = malloc(8ull * n);
        uint64_t *plain = malloc(8ull * n);
        uint64_t x = next() % 5;
        for (uint32_t i = 0; i < n; i++) {
            x += 1 + (i % 3 == 0 ? next() % 40 : next() % 3);
            if (s == 2 && i == n - 1) x = (1ull << 53) - 1; /* the largest id */
            plain[i] = x;
            put64(ids + 8ull * i, x);
        }
        ap_filter_value v = {.text = (const uint8_t *)"v", .len = 1, .ids = ids, .count = n};
        uint64_t top = plain[n - 1] + 3;
        /* Ascending runs (a scanned list's ids), then restarts, then random order. */
        uint32_t hint = 0;
        for (int run = 0; run < 20; run++) {
            uint64_t q = next() % 4;
            while (q < top) {
                if (ap_filter_value_has_near(&v, q, &hint) != ap_filter_value_has(&v, q))
                    mismatches++;
                CHECK(hint < n);
                q += 1 + next() % (top > 10000000 ? top / 50 : run < 10 ? 4 : 200);
            }
        }
        for (int i = 0; i < 20000; i++) {
            uint64_t q = i % 5 == 0 ? plain[next() % n] : next() % top;
            if (i % 97 == 0) hint = (uint32_t)(next() % (2ull * n)); /* out of range too */
            if (ap_filter_value_has_near(&v, q, &hint) != ap_filter_value_has(&v, q)) mismatches++;
            CHECK(hint < n);
        }
        /* Every member is found from every kind of hint. */
        for (uint32_t i = 0; i < n; i += 1 + n / 500) {
            uint32_t h0 = 0, h1 = n - 1, h2 = (uint32_t)(next() % n);
            CHECK(ap_filter_value_has_near(&v, plain[i], &h0) && h0 == i);
            CHECK(ap_filter_value_has_near(&v, plain[i], &h1) && h1 == i);
            CHECK(ap_filter_value_has_near(&v, plain[i], &h2) && h2 == i);
        }
        free(ids);
        free(plain);
    }
    CHECK(mismatches == 0);
    return check_done();
}
