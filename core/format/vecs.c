/* Vector files (.fvecs/.ivecs): see include/annpack/vecs.h. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "annpack/caps.h"
#include "annpack/vecs.h"
#include "endian.h"
#include "fsops.h"
#include "mapping.h"
#include "vecs_release.h"

struct ap_vecs {
    char *path;
    const uint8_t *map;
    size_t size;
    size_t count;
    uint32_t dim;
};

static ap_status validate(ap_vecs *v, ap_vecs_kind kind, ap_err *err)
{
    const char *ext = kind == AP_VECS_F32 ? "fvecs" : "ivecs";
    if (v->size < 4)
        return ap_err_set(err, AP_ERR_FORMAT, "%s: %s file is empty (%zu bytes)", v->path, ext,
                          v->size);
    int32_t d = (int32_t)ap_le32(v->map);
    uint32_t max = ap_caps_get()->max_dim;
    if (d <= 0)
        return ap_err_set(err, AP_ERR_FORMAT,
                          "%s: row 0: dim %d is not positive (is this an %s file?)", v->path, d,
                          ext);
    if ((uint32_t)d > max)
        return ap_err_set(err, AP_ERR_LIMIT, "%s: dim %d exceeds ANNPACK_MAX_DIM (%u)", v->path, d,
                          max);
    size_t row = 4 + 4 * (size_t)d;
    if (v->size % row)
        return ap_err_set(err, AP_ERR_FORMAT,
                          "%s: %zu bytes is not a whole number of %zu-byte rows (dim %d): "
                          "truncated or not an %s file",
                          v->path, v->size, row, d, ext);
    v->dim = (uint32_t)d;
    v->count = v->size / row;
    for (size_t i = 0; i < v->count; i++) {
        const uint8_t *r = v->map + i * row;
        if ((i & 65535) == 65535) ap_vecs_release_before(v, i);
        if (ap_le32(r) != (uint32_t)d)
            return ap_err_set(err, AP_ERR_FORMAT, "%s: row %zu: dim %u differs from row 0's %d",
                              v->path, i, ap_le32(r), d);
        if (kind != AP_VECS_F32) continue;
        const float *f = (const float *)(const void *)(r + 4);
        for (uint32_t j = 0; j < (uint32_t)d; j++)
            if (!isfinite(f[j]))
                return ap_err_set(err, AP_ERR_FORMAT, "%s: row %zu: value %u is not finite",
                                  v->path, i, j);
    }
    return AP_OK;
}

ap_status ap_vecs_open(const char *path, ap_vecs_kind kind, ap_vecs **out, ap_err *err)
{
    *out = NULL;
    ap_vecs *v = calloc(1, sizeof *v);
    if (!v || !(v->path = strdup(path))) {
        free(v);
        return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    }
    int fd = -1;
    uint64_t size = 0;
    ap_status st = ap_open_regular(path, &fd, &size, err);
    if (st) goto fail;
    if (size > SIZE_MAX / 2) {
        st = ap_err_set(err, AP_ERR_LIMIT, "%s: %llu bytes is too large to map", path,
                        (unsigned long long)size);
        goto fail;
    }
    v->size = (size_t)size;
    if (v->size) {
        void *m = mmap(NULL, v->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            st = ap_err_errno(err, AP_ERR_IO, errno, "%s: mmap", path);
            goto fail;
        }
        v->map = m;
        madvise(m, v->size, MADV_SEQUENTIAL);
    }
    close(fd);
    fd = -1;
    if ((st = validate(v, kind, err))) goto fail;
    ap_vecs_release_before(v, v->count);
    *out = v;
    return AP_OK;
fail:
    if (fd >= 0) close(fd);
    ap_vecs_close(v);
    return st;
}

void ap_vecs_close(ap_vecs *v)
{
    if (!v) return;
    ap_unmap_file(v->map, v->size);
    free(v->path);
    free(v);
}

void ap_vecs_release_before(const ap_vecs *v, size_t row)
{
    if (!v->map || row == 0) return;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t upto = row * (4 + 4 * (size_t)v->dim) / page * page;
    if (upto > v->size) upto = v->size / page * page;
    /* A private read-only file mapping: the pages come back from the file if touched again. */
    if (upto) (void)madvise((void *)(uintptr_t)v->map, upto, MADV_DONTNEED);
}

size_t ap_vecs_count(const ap_vecs *v)
{
    return v->count;
}

uint32_t ap_vecs_dim(const ap_vecs *v)
{
    return v->dim;
}

const float *ap_vecs_f32(const ap_vecs *v, size_t i)
{
    return (const float *)(const void *)(v->map + i * (4 + 4 * (size_t)v->dim) + 4);
}

const int32_t *ap_vecs_i32(const ap_vecs *v, size_t i)
{
    return (const int32_t *)(const void *)(v->map + i * (4 + 4 * (size_t)v->dim) + 4);
}

ap_status ap_ivecs_write(const char *path, const int32_t *rows, size_t n, uint32_t dim, ap_err *err)
{
    size_t row = 4 + 4 * (size_t)dim;
    uint8_t *buf = malloc(n ? n * row : 1);
    if (!buf) return ap_err_set(err, AP_ERR_NOMEM, "out of memory for %zu rows", n);
    for (size_t i = 0; i < n; i++) {
        ap_put32(buf + i * row, dim);
        for (uint32_t j = 0; j < dim; j++)
            ap_put32(buf + i * row + 4 + 4 * j, (uint32_t)rows[i * dim + j]);
    }
    ap_status st = ap_write_file_atomic(path, buf, n * row, 0644, err);
    free(buf);
    return st;
}
