/* Fuzz helper: what the per-list sidecar targets (fuzz_sq8.c, fuzz_bits.c) share. Their
 * input is a u32 length L, L bytes of ANNP, then the sidecar's bytes; what a reader
 * accepts is searched (no more than k hits) and deep-checked. */
#ifndef ANNPACK_FUZZ_SIDECAR_INPUT_H
#define ANNPACK_FUZZ_SIDECAR_INPUT_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "annpack/format.h"
#include "ivf.h"
#include "memfile.h"

/* The target's part: opens the sidecar at path against a, searches and checks what the
 * reader accepts, closes it. */
typedef void (*sidecar_run_fn)(const ap_annp *a, const char *path);

/* Splits the input, opens the ANNP part and gives run the sidecar part as a file. */
static inline int sidecar_input(const uint8_t *data, size_t size, sidecar_run_fn run)
{
    if (size < 4) return 0;
    uint32_t l;
    memcpy(&l, data, 4);
    if (l > size - 4) return 0;
    ap_annp *a = NULL;
    if (ap_annp_open_mem(data + 4, l, "fuzz.annpack", &a, NULL) != AP_OK) return 0;
    char path[64];
    int fd = memfile(data + 4 + l, size - 4 - l, path);
    if (fd >= 0) {
        run(a, path);
        close(fd);
    }
    ap_annp_close(a);
    return 0;
}

/* A top-10 search over 4 lists of ix (its sidecar set) with scan. */
static inline void sidecar_search(const ap_ivf *ix, ap_scan_mode scan)
{
    const ap_annp_header *h = ap_annp_get_header(ix->annp);
    float *q = calloc(h->dim, sizeof *q);
    ap_hit hits[10];
    uint32_t n = 0;
    if (q) {
        q[0] = 1.0f;
        ap_search_params p = {.k = 10, .probe = 4, .scan = scan};
        if (ap_ivf_search(ix, q, &p, hits, &n, NULL, NULL) == AP_OK && n > 10) __builtin_trap();
    }
    free(q);
}

#endif
