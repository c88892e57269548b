/* ANNP v1 writer and reader: layout, round trip, every truncation, hostile headers, caps. */
/* Tests reach below the stable API (annpack/experimental.h). */
#define AP_EXPERIMENTAL
#include <stdlib.h>
#include <unistd.h>

#include "annpack/caps.h"
#include "annpack/format.h"
#include "check.h"
#include "endian.h"
#include "fp16.h"
#include "fsops.h"

int main(void)
{
    ap_err err;
    const uint32_t dim = 20, nl = 3, counts[3] = {0, 5, 2};
    float cent[3 * 20];
    for (int i = 0; i < 60; i++)
        cent[i] = (float)i / 60.0f;
    uint64_t ids[7] = {10, 11, 12, 13, (1ull << 53) - 1, 7, 8};
    uint16_t vecs[7 * 20];
    for (int i = 0; i < 140; i++)
        vecs[i] = ap_f32_to_f16((float)(i % 17) / 17.0f);
    char dir[] = "/tmp/annpack-format-XXXXXX";
    mkdtemp(dir);
    char *path = ap_path_join(dir, "pack.annpack");
    CHECK_OK(ap_annp_write(path, dim, nl, cent, counts, ids, vecs, &err), &err);
    char *bytes;
    size_t len;
    CHECK_OK(ap_read_file(path, 1 << 20, &bytes, &len, &err), &err);
    uint64_t lists =
        ap_annp_list_bytes(0, dim) + ap_annp_list_bytes(5, dim) + ap_annp_list_bytes(2, dim);
    CHECK(len == 72 + 3 * 20 * 4 + lists + 3 * 16);
    CHECK(memcmp(bytes, "ANNP\0\0\0\0", 8) == 0);
    CHECK(ap_le64((uint8_t *)bytes + 36) == len - 48);
    for (int i = 44; i < 72; i++)
        CHECK(bytes[i] == 0);
    CHECK(ap_le64((uint8_t *)bytes + len - 48 + 16 + 8) == ap_annp_list_bytes(5, dim));

    ap_annp *a;
    CHECK_OK(ap_annp_open(path, &a, &err), &err);
    const ap_annp_header *h = ap_annp_get_header(a);
    CHECK(h->dim == 20 && h->n_lists == 3 && h->n_vectors == 7);
    CHECK(memcmp(ap_annp_centroids(a), cent, sizeof cent) == 0);
    ap_annp_list l;
    ap_annp_list_get(a, 1, &l);
    CHECK(l.count == 5 && ap_annp_list_id(&l, 4) == (1ull << 53) - 1);
    CHECK(memcmp(l.vecs, vecs, 5 * 20 * 2) == 0);
    ap_annp_list_get(a, 2, &l);
    CHECK(l.count == 2 && ap_annp_list_id(&l, 1) == 8);
    CHECK(ap_annp_list_start(a, 0) == 0 && ap_annp_list_start(a, 2) == 5);
    ap_annp_close(a);

    /* Every truncation fails cleanly. */
    int ok_trunc = 0;
    for (size_t n = 0; n < len; n++) {
        if (ap_annp_open_mem(bytes, n, "t", &a, &err) != AP_OK)
            ok_trunc++;
        else
            ap_annp_close(a);
    }
    CHECK(ok_trunc == (int)len);
    char *b = malloc(len);
#define MUTATE(off, width, value, st_, needle)                                                     \
    do {                                                                                           \
        memcpy(b, bytes, len);                                                                     \
        if (width == 4)                                                                            \
            ap_put32((uint8_t *)b + (off), (uint32_t)(value));                                     \
        else                                                                                       \
            ap_put64((uint8_t *)b + (off), (uint64_t)(value));                                     \
        CHECK_ERR(ap_annp_open_mem(b, len, "m", &a, &err), st_, &err, needle);                     \
    } while (0)
    MUTATE(0, 8, 0x4141414141ull, AP_ERR_FORMAT, "wrong magic");
    MUTATE(8, 4, 2, AP_ERR_UNSUPPORTED, "version 2");
    MUTATE(12, 4, 2, AP_ERR_FORMAT, "endian");
    MUTATE(16, 4, 64, AP_ERR_FORMAT, "header_size");
    MUTATE(20, 4, 0, AP_ERR_FORMAT, "dim is 0");
    MUTATE(20, 4, 4097, AP_ERR_LIMIT, "ANNPACK_MAX_DIM");
    MUTATE(24, 4, 2, AP_ERR_UNSUPPORTED, "metric");
    MUTATE(28, 4, 1000001, AP_ERR_LIMIT, "ANNPACK_MAX_LISTS");
    MUTATE(28, 4, 1000000, AP_ERR_FORMAT, "truncated");
    MUTATE(32, 4, 8, AP_ERR_FORMAT, "sum to 7");
    MUTATE(36, 8, len, AP_ERR_FORMAT, "offset table");
    MUTATE(len - 48, 8, len, AP_ERR_FORMAT, "outside the file");
    MUTATE(len - 48 + 16, 8, 0, AP_ERR_FORMAT, "does not fit");
    MUTATE(72 + 240 + 4, 4, 6, AP_ERR_FORMAT, "does not fit");

    /* ANNPACK_MAX_LIST_BYTES: just under works, just over is refused naming it. */
    char buf[32];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)ap_annp_list_bytes(5, dim));
    setenv("ANNPACK_MAX_LIST_BYTES", buf, 1);
    ap_caps_reload(&err);
    CHECK_OK(ap_annp_open_mem(bytes, len, "cap", &a, &err), &err);
    ap_annp_close(a);
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)ap_annp_list_bytes(5, dim) - 1);
    setenv("ANNPACK_MAX_LIST_BYTES", buf, 1);
    ap_caps_reload(&err);
    CHECK_ERR(ap_annp_open_mem(bytes, len, "cap", &a, &err), AP_ERR_LIMIT, &err,
              "ANNPACK_MAX_LIST_BYTES");
    unsetenv("ANNPACK_MAX_LIST_BYTES");
    setenv("ANNPACK_MAX_DIM", "20", 1);
    ap_caps_reload(&err);
    CHECK_OK(ap_annp_open_mem(bytes, len, "cap", &a, &err), &err);
    ap_annp_close(a);
    setenv("ANNPACK_MAX_DIM", "19", 1);
    ap_caps_reload(&err);
    CHECK_ERR(ap_annp_open_mem(bytes, len, "cap", &a, &err), AP_ERR_LIMIT, &err,
              "ANNPACK_MAX_DIM (19)");
    setenv("ANNPACK_MAX_LISTS", "2", 1);
    unsetenv("ANNPACK_MAX_DIM");
    ap_caps_reload(&err);
    CHECK_ERR(ap_annp_open_mem(bytes, len, "cap", &a, &err), AP_ERR_LIMIT, &err,
              "ANNPACK_MAX_LISTS (2)");
    unsetenv("ANNPACK_MAX_LISTS");
    ap_caps_reload(&err);

    free(b);
    free(bytes);
    free(path);
    ap_rmtree(dir);
    return check_done();
}
