/* ANNP v1 reader and writer: see include/annpack/format.h. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "annp_deferred.h"
#include "annp_mapping.h"
#include "annp_stream.h"
#include "annpack/caps.h"
#include "annpack/format.h"
#include "endian.h"
#include "fsops.h"
#include "mapping.h"

struct ap_annp {
    char *path;
    const uint8_t *base;
    uint64_t size;
    int mapped;
    ap_annp_header h;
    float *centroids;
    uint64_t *list_off;   /* n_lists offsets of list payloads */
    uint32_t *list_count; /* n_lists counts */
    uint64_t *list_start; /* n_lists + 1 prefix sums */
    int fd;               /* the descriptor of ap_annp_open_fd while it opens, else -1 */
    bool defer_counts;    /* opened by ap_annp_open_fd_deferred */
};

static ap_status load(ap_annp *a, ap_err *err)
{
    const ap_caps *caps = ap_caps_get();
    ap_status st = ap_annp_header_decode(a->base, a->size, a->size, a->path, &a->h, err);
    if (st) return st;
    uint32_t nl = a->h.n_lists, dim = a->h.dim;
    size_t cbytes = (size_t)nl * dim * sizeof(float);
    a->centroids = aligned_alloc(64, (cbytes + 63) & ~(size_t)63);
    a->list_off = malloc((nl ? nl : 1) * sizeof *a->list_off);
    a->list_count = malloc((nl ? nl : 1) * sizeof *a->list_count);
    a->list_start = malloc((nl + 1ull) * sizeof *a->list_start);
    if (!a->centroids || !a->list_off || !a->list_count || !a->list_start)
        return ap_err_set(err, AP_ERR_NOMEM, "%s: out of memory for %u lists", a->path, nl);
    memcpy(a->centroids, a->base + AP_ANNP_HEADER_SIZE, cbytes);
    const uint8_t *table = a->base + a->h.offset_table_pos;
    uint64_t total = 0;
    a->list_start[0] = 0;
    for (uint32_t i = 0; i < nl; i++) {
        uint64_t off = ap_le64(table + 16ull * i), len = ap_le64(table + 16ull * i + 8);
        if (off > a->size || len > a->size - off || len < 4)
            return ap_err_set(err, AP_ERR_FORMAT,
                              "%s: list %u (offset %llu, length %llu) outside the file "
                              "(%llu bytes)",
                              a->path, i, (unsigned long long)off, (unsigned long long)len,
                              (unsigned long long)a->size);
        if (len > caps->max_list_bytes)
            return ap_err_set(err, AP_ERR_LIMIT,
                              "%s: list %u is %llu bytes, exceeds ANNPACK_MAX_LIST_BYTES (%llu)",
                              a->path, i, (unsigned long long)len,
                              (unsigned long long)caps->max_list_bytes);
        uint32_t count;
        if (a->defer_counts) {
            /* The count the length implies; the stored one is compared on first use
             * (ap_annp_check_count), after the list's bytes are checked: opening then
             * reads no list, which on a cold cache is one random read per list. */
            uint64_t per = 8ull + 2ull * dim, n = (len - 4) / per;
            count = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
        } else {
            /* Through the descriptor when there is one: touching the mapping at every list
             * would fault the whole file in (2 MiB folios), resident before any search. */
            uint8_t c4[4];
            if (a->fd >= 0 && pread(a->fd, c4, 4, (off_t)off) != 4)
                return ap_err_errno(err, AP_ERR_IO, errno, "%s: list %u: read", a->path, i);
            count = ap_le32(a->fd >= 0 ? c4 : a->base + off);
        }
        if (ap_annp_list_bytes(count, dim) != len)
            return ap_err_set(err, AP_ERR_FORMAT,
                              "%s: list %u count %u does not fit its length %llu (need %llu)",
                              a->path, i, count, (unsigned long long)len,
                              (unsigned long long)ap_annp_list_bytes(count, dim));
        a->list_off[i] = off;
        a->list_count[i] = count;
        total += count;
        a->list_start[i + 1] = total;
    }
    if (total != a->h.n_vectors)
        return ap_err_set(err, AP_ERR_FORMAT, "%s: list counts sum to %llu, header says %u",
                          a->path, (unsigned long long)total, a->h.n_vectors);
    return AP_OK;
}

static ap_status finish_open(ap_annp *a, ap_annp **out, ap_err *err)
{
    ap_status st = load(a, err);
    if (st) {
        ap_annp_close(a);
        return st;
    }
    *out = a;
    return AP_OK;
}

static ap_status open_fd(int fd, uint64_t size, const char *name, bool defer, ap_annp **out,
                         ap_err *err)
{
    *out = NULL;
    ap_annp *a = calloc(1, sizeof *a);
    if (!a || !(a->path = strdup(name))) {
        free(a);
        return ap_err_set(err, AP_ERR_NOMEM, "%s: out of memory", name);
    }
    a->defer_counts = defer;
    a->size = size;
    if (a->size > 0) {
        const void *m;
        ap_status st = ap_map_file(fd, (size_t)a->size, name, &m, err);
        if (st) {
            ap_annp_close(a);
            return st;
        }
        a->base = m;
        a->mapped = 1;
    } else {
        a->base = (const uint8_t *)"";
    }
    a->fd = fd;
    ap_status st = finish_open(a, out, err);
    if (!st) a->fd = -1; /* the caller's: not kept */
    return st;
}

ap_status ap_annp_open_fd(int fd, uint64_t size, const char *name, ap_annp **out, ap_err *err)
{
    return open_fd(fd, size, name, false, out, err);
}

ap_status ap_annp_open_fd_deferred(int fd, uint64_t size, const char *name, ap_annp **out,
                                   ap_err *err)
{
    return open_fd(fd, size, name, true, out, err);
}

ap_status ap_annp_check_count(const ap_annp *a, uint32_t i, ap_err *err)
{
    if (!a->defer_counts) return AP_OK;
    uint32_t stored = ap_le32(a->base + a->list_off[i]);
    if (stored != a->list_count[i])
        return ap_err_set(
            err, AP_ERR_FORMAT, "%s: list %u count %u does not fit its length %llu (need %llu)",
            a->path, i, stored, (unsigned long long)ap_annp_list_bytes(a->list_count[i], a->h.dim),
            (unsigned long long)ap_annp_list_bytes(stored, a->h.dim));
    return AP_OK;
}

void ap_annp_release_pages(const ap_annp *a)
{
    if (a && a->mapped) ap_mapping_release(a->base, (size_t)a->size);
}

ap_status ap_annp_open(const char *path, ap_annp **out, ap_err *err)
{
    *out = NULL;
    int fd;
    uint64_t fsize;
    ap_status st = ap_open_regular(path, &fd, &fsize, err);
    if (st) return st;
    st = ap_annp_open_fd(fd, fsize, path, out, err);
    close(fd);
    return st;
}

ap_status ap_annp_open_mem(const void *data, size_t len, const char *name, ap_annp **out,
                           ap_err *err)
{
    *out = NULL;
    ap_annp *a = calloc(1, sizeof *a);
    if (!a || !(a->path = strdup(name))) {
        free(a);
        return ap_err_set(err, AP_ERR_NOMEM, "%s: out of memory", name);
    }
    a->base = data;
    a->size = len;
    a->fd = -1;
    return finish_open(a, out, err);
}

void ap_annp_close(ap_annp *a)
{
    if (!a) return;
    if (a->mapped) ap_unmap_file(a->base, a->size);
    free(a->centroids);
    free(a->list_off);
    free(a->list_count);
    free(a->list_start);
    free(a->path);
    free(a);
}

const ap_annp_header *ap_annp_get_header(const ap_annp *a)
{
    return &a->h;
}

const char *ap_annp_path(const ap_annp *a)
{
    return a->path;
}

uint64_t ap_annp_file_size(const ap_annp *a)
{
    return a->size;
}

const uint8_t *ap_annp_bytes(const ap_annp *a)
{
    return a->base;
}

const float *ap_annp_centroids(const ap_annp *a)
{
    return a->centroids;
}

void ap_annp_list_get(const ap_annp *a, uint32_t i, ap_annp_list *out)
{
    assert(i < a->h.n_lists); /* documented precondition */
    const uint8_t *p = a->base + a->list_off[i];
    out->count = a->list_count[i];
    out->ids = p + 4;
    out->vecs = p + 4 + 8ull * out->count;
    out->offset = a->list_off[i];
}

uint64_t ap_annp_list_start(const ap_annp *a, uint32_t i)
{
    assert(i <= a->h.n_lists); /* list_start has n_lists + 1 entries */
    return a->list_start[i];
}

static ap_status put(FILE *f, const void *p, size_t n, const char *path, ap_err *err)
{
    if (n && fwrite(p, 1, n, f) != n) return ap_err_errno(err, AP_ERR_IO, errno, "%s: write", path);
    return AP_OK;
}

ap_status ap_annp_write_stream(const char *path, uint32_t dim, uint32_t n_lists,
                               const float *centroids, const uint32_t *counts, ap_annp_list_fn list,
                               void *ctx, ap_err *err)
{
    uint64_t n = 0, pos = AP_ANNP_HEADER_SIZE + (uint64_t)n_lists * dim * 4;
    for (uint32_t l = 0; l < n_lists; l++) {
        n += counts[l];
        pos += ap_annp_list_bytes(counts[l], dim);
    }
    if (n > UINT32_MAX)
        return ap_err_set(err, AP_ERR_LIMIT, "%s: %llu vectors exceed the format's u32 count", path,
                          (unsigned long long)n);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return ap_err_errno(err, AP_ERR_IO, errno, "%s", path);
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        close(fd);
        unlink(path);
        return ap_err_errno(err, AP_ERR_IO, errno, "%s", path);
    }
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    ap_annp_header h = {
        .dim = dim, .n_lists = n_lists, .n_vectors = (uint32_t)n, .offset_table_pos = pos};
    uint8_t hb[AP_ANNP_HEADER_SIZE];
    ap_annp_header_encode(&h, hb);
    ap_status st = put(f, hb, sizeof hb, path, err);
    if (!st) st = put(f, centroids, (size_t)n_lists * dim * 4, path, err);
    uint64_t off = AP_ANNP_HEADER_SIZE + (uint64_t)n_lists * dim * 4;
    for (uint32_t l = 0; l < n_lists && !st; l++) {
        uint8_t c[4];
        const uint64_t *ids = NULL;
        const uint16_t *vecs = NULL;
        ap_put32(c, counts[l]);
        st = put(f, c, 4, path, err);
        if (!st && counts[l]) st = list(ctx, l, &ids, &vecs, err);
        /* ids are written as little-endian u64, which is the host layout (endian.h). */
        if (!st && counts[l]) st = put(f, ids, counts[l] * 8ull, path, err);
        if (!st && counts[l]) st = put(f, vecs, counts[l] * 2ull * dim, path, err);
    }
    for (uint32_t l = 0; l < n_lists && !st; l++) {
        uint8_t e[16];
        uint64_t len = ap_annp_list_bytes(counts[l], dim);
        ap_put64(e, off);
        ap_put64(e + 8, len);
        off += len;
        st = put(f, e, 16, path, err);
    }
    assert(st || off == pos); /* the lists end where the offset table was placed */
    if (!st && fflush(f) != 0) st = ap_err_errno(err, AP_ERR_IO, errno, "%s: write", path);
    if (!st && fsync(fileno(f)) != 0) st = ap_err_errno(err, AP_ERR_IO, errno, "%s: fsync", path);
    if (fclose(f) != 0 && !st) st = ap_err_errno(err, AP_ERR_IO, errno, "%s: close", path);
    if (st) unlink(path);
    return st;
}

/* ap_annp_write's lists: consecutive runs of the caller's grouped arrays. */
typedef struct grouped {
    uint32_t dim;
    const uint32_t *counts;
    const uint64_t *ids;
    const uint16_t *vecs;
    uint64_t at; /* first vector of the next list */
} grouped;

static ap_status grouped_list(void *ctx, uint32_t l, const uint64_t **ids, const uint16_t **vecs,
                              ap_err *err)
{
    (void)err;
    grouped *g = ctx;
    *ids = g->ids + g->at;
    *vecs = g->vecs + g->at * g->dim;
    g->at += g->counts[l];
    return AP_OK;
}

ap_status ap_annp_write(const char *path, uint32_t dim, uint32_t n_lists, const float *centroids,
                        const uint32_t *counts, const uint64_t *ids, const uint16_t *vecs,
                        ap_err *err)
{
    grouped g = {.dim = dim, .counts = counts, .ids = ids, .vecs = vecs};
    return ap_annp_write_stream(path, dim, n_lists, centroids, counts, grouped_list, &g, err);
}
