/* Fuzz target: the pack.digests parser (format/digest_table.c). Whatever it accepts must
 * satisfy the format's rules as the lookups see them (ranges tile each file, overlap spans
 * cover the asked bytes), and re-encoding it must give back exactly the input (the format
 * is canonical). Input: the table's bytes. */
/* Tests reach below the stable API (annpack/experimental.h). */
#define AP_EXPERIMENTAL
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "digest_table.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The overlap span of [off, off + len) must hold exactly the ranges meeting those bytes. */
static void check_overlap(const ap_digest_file *f, uint64_t off, uint64_t len)
{
    uint32_t a, b;
    ap_digest_overlap(f, off, len, &a, &b);
    if (a > b || b > f->n_ranges) __builtin_trap();
    for (uint32_t k = 0; k < f->n_ranges; k++) {
        ap_digest_range r = ap_digest_range_at(f, k);
        int meets = len && r.len && off < r.off + r.len && r.off < off + len;
        int in = k >= a && k < b;
        if (meets && !in) __builtin_trap();
        /* An empty range inside the span is allowed (it lies between two that meet). */
        if (in && !meets && r.len) __builtin_trap();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ap_digest_table t;
    if (ap_digest_table_parse(data, size, "fuzz.digests", &t, NULL) != AP_OK) return 0;
    ap_digest_spec *spec = calloc(t.n_files, sizeof *spec);
    uint64_t total = 0;
    for (uint32_t i = 0; i < t.n_files; i++)
        total += t.files[i].n_ranges;
    uint64_t *off = malloc((total ? total : 1) * sizeof *off);
    uint64_t *len = malloc((total ? total : 1) * sizeof *len);
    uint8_t(*sha)[32] = malloc((total ? total : 1) * sizeof *sha);
    if (!spec || !off || !len || !sha) goto out;
    uint64_t at = 0;
    for (uint32_t i = 0; i < t.n_files; i++) {
        const ap_digest_file *f = &t.files[i];
        if (ap_digest_table_find(&t, f->name) != f) __builtin_trap();
        uint64_t end = 0;
        for (uint32_t k = 0; k < f->n_ranges; k++) {
            ap_digest_range r = ap_digest_range_at(f, k);
            if (r.off != end) __builtin_trap();
            end = r.off + r.len;
            off[at + k] = r.off;
            len[at + k] = r.len;
            memcpy(sha[at + k], r.sha256, 32);
        }
        if (end != f->size) __builtin_trap();
        check_overlap(f, 0, f->size);
        check_overlap(f, f->size / 3, f->size / 3 + 1);
        check_overlap(f, f->size ? f->size - 1 : 0, 1);
        ap_digest_check_chunks(f, "fuzz.digests", NULL);
        spec[i] = (ap_digest_spec){.name = f->name,
                                   .size = f->size,
                                   .n_ranges = f->n_ranges,
                                   .off = off + at,
                                   .len = len + at,
                                   .sha256 = (const uint8_t(*)[32])(sha + at)};
        at += f->n_ranges;
    }
    uint8_t *again = NULL;
    size_t alen = 0;
    if (ap_digest_table_encode(spec, t.n_files, &again, &alen, NULL) != AP_OK) __builtin_trap();
    if (alen != size || memcmp(again, data, size) != 0) __builtin_trap();
    free(again);
out:
    free(spec);
    free(off);
    free(len);
    free(sha);
    ap_digest_table_free(&t);
    return 0;
}
