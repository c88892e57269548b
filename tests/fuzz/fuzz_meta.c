/* Fuzz target: metadata rows (zstd seekable or JSONL) with or without an id index. The
 * input is split at the first 0xFF 0x00 0xFF marker into rows file and idx file; the
 * first byte picks the encoding. */
/* Tests reach below the stable API (annpack/experimental.h). */
#define AP_EXPERIMENTAL
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "annpack/meta.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void put(const char *path, const uint8_t *d, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return;
    if (n) fwrite(d, 1, n, f);
    fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    char rows[64], idx[64];
    snprintf(rows, sizeof rows, "/tmp/annpack-fuzz-%d.%s", (int)getpid(),
             data[0] & 1 ? "jsonl.zst" : "jsonl");
    snprintf(idx, sizeof idx, "/tmp/annpack-fuzz-%d.idx", (int)getpid());
    const uint8_t *body = data + 1;
    size_t n = size - 1, split = n;
    for (size_t i = 0; i + 2 < n; i++)
        if (body[i] == 0xFF && body[i + 1] == 0x00 && body[i + 2] == 0xFF) {
            split = i;
            break;
        }
    put(rows, body, split);
    int has_idx = split < n;
    if (has_idx) put(idx, body + split + 3, n - split - 3);
    ap_meta *m = NULL;
    if (ap_meta_open_files(rows, has_idx ? idx : NULL, &m, NULL) == AP_OK) {
        for (uint64_t i = 0; i < ap_meta_count(m) && i < 64; i++) {
            uint64_t id, off, len;
            ap_meta_entry(m, i, &id, &off, &len);
            char *row = NULL;
            size_t rl;
            if (ap_meta_get(m, id, &row, &rl, NULL) == AP_OK) free(row);
        }
        char buf[256];
        uint64_t s = ap_meta_stream_size(m);
        ap_meta_read_stream(m, s / 2, buf, s - s / 2 < sizeof buf ? s - s / 2 : sizeof buf, NULL);
        ap_meta_close(m);
    }
    unlink(rows);
    unlink(idx);
    return 0;
}
