/* Vector files (.fvecs/.ivecs): valid files, every refusal of vecs.h (empty, truncated,
 * dim mismatch mid-file, dim over ANNPACK_MAX_DIM, non-finite values), ivecs round trip. */
/* Tests reach below the stable API (annpack/experimental.h). */
#define AP_EXPERIMENTAL
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "annpack/caps.h"
#include "annpack/vecs.h"
#include "check.h"
#include "fsops.h"

static char g_dir[] = "/tmp/annpack-vecs-XXXXXX";

/* Writes raw bytes to DIR/name; returns the malloc'd path. */
static char *put(const char *name, const void *data, size_t len)
{
    char *p = ap_path_join(g_dir, name);
    FILE *f = fopen(p, "wb");
    if (len) fwrite(data, 1, len, f);
    fclose(f);
    return p;
}

/* n rows of dim: header dim then values; value (i, j) = i * 100 + j + 0.5. */
static uint8_t *fvecs_bytes(size_t n, uint32_t dim, size_t *len)
{
    size_t row = 4 + 4 * (size_t)dim;
    uint8_t *b = malloc(n * row);
    for (size_t i = 0; i < n; i++) {
        int32_t d = (int32_t)dim;
        memcpy(b + i * row, &d, 4);
        for (uint32_t j = 0; j < dim; j++) {
            float v = (float)(i * 100 + j) + 0.5f;
            memcpy(b + i * row + 4 + 4 * j, &v, 4);
        }
    }
    *len = n * row;
    return b;
}

static void set_f32(uint8_t *b, uint32_t dim, size_t i, uint32_t j, float v)
{
    memcpy(b + i * (4 + 4 * (size_t)dim) + 4 + 4 * j, &v, 4);
}

static size_t count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    size_t n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    if (d) closedir(d);
    return n;
}

int main(void)
{
    ap_err err;
    ap_vecs *v = NULL;
    if (!mkdtemp(g_dir)) return 1;

    /* A valid file: count, dim, values, 4-byte aligned rows. */
    size_t len;
    uint8_t *b = fvecs_bytes(3, 5, &len);
    char *ok = put("ok.fvecs", b, len);
    CHECK_OK(ap_vecs_open(ok, AP_VECS_F32, &v, &err), &err);
    if (v) {
        CHECK(ap_vecs_count(v) == 3 && ap_vecs_dim(v) == 5);
        CHECK(ap_vecs_f32(v, 0)[0] == 0.5f && ap_vecs_f32(v, 2)[4] == 204.5f);
        CHECK(ap_vecs_f32(v, 1)[3] == 103.5f);
        CHECK(((uintptr_t)ap_vecs_f32(v, 1) & 3) == 0);
        ap_vecs_close(v);
    }
    /* Any file with a valid layout is also a valid ivecs (no finiteness check for ints). */
    CHECK_OK(ap_vecs_open(ok, AP_VECS_I32, &v, &err), &err);
    if (v) {
        float f = 0.5f;
        int32_t bits;
        memcpy(&bits, &f, 4);
        CHECK(ap_vecs_count(v) == 3 && ap_vecs_i32(v, 0)[0] == bits);
        ap_vecs_close(v);
    }
    /* One row, dim 1. */
    uint8_t *b1 = fvecs_bytes(1, 1, &len);
    char *one = put("one.fvecs", b1, len);
    CHECK_OK(ap_vecs_open(one, AP_VECS_F32, &v, &err), &err);
    if (v) CHECK(ap_vecs_count(v) == 1 && ap_vecs_dim(v) == 1 && ap_vecs_f32(v, 0)[0] == 0.5f);
    ap_vecs_close(v);

    /* Empty file, and files shorter than one header. */
    char *empty = put("empty.fvecs", "", 0);
    CHECK_ERR(ap_vecs_open(empty, AP_VECS_F32, &v, &err), AP_ERR_FORMAT, &err, "empty");
    CHECK(v == NULL && strstr(err.msg, empty));
    CHECK_ERR(ap_vecs_open(empty, AP_VECS_I32, &v, &err), AP_ERR_FORMAT, &err,
              "ivecs file is empty");
    char *tiny = put("tiny.fvecs", "\x05\0", 2);
    CHECK_ERR(ap_vecs_open(tiny, AP_VECS_F32, &v, &err), AP_ERR_FORMAT, &err, "tiny.fvecs");

    /* Truncated last row (one value short), and a header with no values. */
    char *trunc = put("trunc.fvecs", b, len = 3 * 24 - 4);
    CHECK_ERR(ap_vecs_open(trunc, AP_VECS_F32, &v, &err), AP_ERR_FORMAT, &err, "truncated");
    CHECK(strstr(err.msg, "trunc.fvecs") && strstr(err.msg, "dim 5"));
    char *hdr = put("hdr.fvecs", b, 4);
    CHECK_ERR(ap_vecs_open(hdr, AP_VECS_F32, &v, &err), AP_ERR_FORMAT, &err, "whole number");

    /* A row header that disagrees mid-file (same file size): names that row. */
    uint8_t *bm = fvecs_bytes(4, 5, &len);
    int32_t five_plus = 6;
    memcpy(bm + 2 * 24, &five_plus, 4);
    char *mism = put("mismatch.fvecs", bm, len);
    CHECK_ERR(ap_vecs_open(mism, AP_VECS_F32, &v, &err), AP_ERR_FORMAT, &err, "row 2: dim 6");
    CHECK(strstr(err.msg, "mismatch.fvecs") && strstr(err.msg, "row 0's 5"));
    CHECK_ERR(ap_vecs_open(mism, AP_VECS_I32, &v, &err), AP_ERR_FORMAT, &err, "row 2");

    /* Dim 0 and negative dims. */
    int32_t zero[2] = {0, 0}, neg[2] = {-4, 0};
    char *z = put("zero.fvecs", zero, sizeof zero);
    CHECK_ERR(ap_vecs_open(z, AP_VECS_F32, &v, &err), AP_ERR_FORMAT, &err, "not positive");
    char *ng = put("neg.fvecs", neg, sizeof neg);
    CHECK_ERR(ap_vecs_open(ng, AP_VECS_I32, &v, &err), AP_ERR_FORMAT, &err, "dim -4");

    /* Dim above ANNPACK_MAX_DIM: the default cap, then a lowered one. */
    int32_t huge = 5000;
    char *hg = put("huge.fvecs", &huge, 4);
    CHECK_ERR(ap_vecs_open(hg, AP_VECS_F32, &v, &err), AP_ERR_LIMIT, &err, "ANNPACK_MAX_DIM");
    CHECK(strstr(err.msg, "5000") && strstr(err.msg, "4096"));
    setenv("ANNPACK_MAX_DIM", "4", 1);
    CHECK_OK(ap_caps_reload(&err), &err);
    CHECK_ERR(ap_vecs_open(ok, AP_VECS_F32, &v, &err), AP_ERR_LIMIT, &err, "ANNPACK_MAX_DIM (4)");
    setenv("ANNPACK_MAX_DIM", "5", 1);
    CHECK_OK(ap_caps_reload(&err), &err);
    CHECK_OK(ap_vecs_open(ok, AP_VECS_F32, &v, &err), &err);
    ap_vecs_close(v);
    unsetenv("ANNPACK_MAX_DIM");
    CHECK_OK(ap_caps_reload(&err), &err);

    /* Non-finite values: NaN, +Inf, -Inf, each naming its row and value. */
    const float bad_vals[3] = {NAN, INFINITY, -INFINITY};
    for (int t = 0; t < 3; t++) {
        uint8_t *bn = fvecs_bytes(4, 5, &len);
        set_f32(bn, 5, 3 - (size_t)t, (uint32_t)t + 1, bad_vals[t]);
        char *pn = put("nonfinite.fvecs", bn, len);
        char want[64];
        snprintf(want, sizeof want, "row %d: value %d is not finite", 3 - t, t + 1);
        CHECK_ERR(ap_vecs_open(pn, AP_VECS_F32, &v, &err), AP_ERR_FORMAT, &err, want);
        /* The same bytes are fine as ints. */
        CHECK_OK(ap_vecs_open(pn, AP_VECS_I32, &v, &err), &err);
        ap_vecs_close(v);
        free(pn);
        free(bn);
    }
    /* Large finite values and subnormals are accepted. */
    uint8_t *bl = fvecs_bytes(2, 5, &len);
    set_f32(bl, 5, 0, 0, 3.4e38f);
    set_f32(bl, 5, 1, 4, 1e-45f);
    char *pl = put("large.fvecs", bl, len);
    CHECK_OK(ap_vecs_open(pl, AP_VECS_F32, &v, &err), &err);
    if (v) CHECK(ap_vecs_f32(v, 0)[0] == 3.4e38f && ap_vecs_f32(v, 1)[4] == 1e-45f);
    ap_vecs_close(v);

    /* Missing files and directories. */
    char *missing = ap_path_join(g_dir, "nope.fvecs");
    CHECK(ap_vecs_open(missing, AP_VECS_F32, &v, &err) != AP_OK && strstr(err.msg, "nope.fvecs"));
    CHECK(ap_vecs_open(g_dir, AP_VECS_F32, &v, &err) != AP_OK && v == NULL);

    /* ivecs round trip: values (negative too), exact bytes, atomic replacement. */
    int32_t rows[4 * 3] = {0, 1, 2, -1, 2147483647, -2147483647 - 1, 7, 8, 9, 10, 11, 12};
    char *iv = ap_path_join(g_dir, "out.ivecs");
    size_t before = count_entries(g_dir);
    CHECK_OK(ap_ivecs_write(iv, rows, 4, 3, &err), &err);
    CHECK(count_entries(g_dir) == before + 1); /* no temp file left behind */
    CHECK_OK(ap_vecs_open(iv, AP_VECS_I32, &v, &err), &err);
    if (v) {
        CHECK(ap_vecs_count(v) == 4 && ap_vecs_dim(v) == 3);
        int same = 1;
        for (size_t i = 0; i < 4; i++)
            for (uint32_t j = 0; j < 3; j++)
                same &= ap_vecs_i32(v, i)[j] == rows[i * 3 + j];
        CHECK(same);
        ap_vecs_close(v);
    }
    char *raw = NULL;
    size_t rawlen = 0;
    CHECK_OK(ap_read_file(iv, 1 << 20, &raw, &rawlen, &err), &err);
    CHECK(rawlen == 4 * 16);
    if (raw && rawlen == 64) {
        /* Little-endian int32 dim then values, row by row. */
        const uint8_t *u = (const uint8_t *)raw;
        CHECK(u[0] == 3 && u[1] == 0 && u[2] == 0 && u[3] == 0);
        CHECK(u[16] == 3 && u[16 + 4] == 0xff && u[16 + 7] == 0xff); /* row 1 value 0 = -1 */
        CHECK(u[32 + 12] == 9);
    }
    free(raw);
    /* Rewriting replaces the file whole. */
    int32_t one_row[2] = {5, 6};
    CHECK_OK(ap_ivecs_write(iv, one_row, 1, 2, &err), &err);
    CHECK_OK(ap_vecs_open(iv, AP_VECS_I32, &v, &err), &err);
    if (v) CHECK(ap_vecs_count(v) == 1 && ap_vecs_dim(v) == 2 && ap_vecs_i32(v, 0)[1] == 6);
    ap_vecs_close(v);
    CHECK(count_entries(g_dir) == before + 1);
    /* A directory that does not exist. */
    char *nodir = ap_path_join(g_dir, "no/such/dir.ivecs");
    CHECK(ap_ivecs_write(nodir, rows, 4, 3, &err) != AP_OK && strstr(err.msg, "dir.ivecs"));

    free(nodir);
    free(iv);
    free(missing);
    free(pl);
    free(bl);
    free(hg);
    free(ng);
    free(z);
    free(mism);
    free(bm);
    free(hdr);
    free(trunc);
    free(tiny);
    free(empty);
    free(one);
    free(b1);
    free(ok);
    free(b);
    ap_rmtree(g_dir);
    return check_done();
}
