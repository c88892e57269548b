/* The int8 sidecar pack.sq8: see include/annpack/sq8.h and docs/FORMAT.md. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "annpack/sq8.h"
#include "endian.h"
#include "fp16.h"
#include "fsops.h"
#include "kernels.h"
#include "kmeans.h"
#include "mapping.h"

struct ap_sq8 {
    char *path;
    const uint8_t *map;
    size_t size;
    uint32_t dim, n_lists, n_vectors, stride;
    float *vmin, *step;      /* aligned copies of the params */
    uint64_t *first;         /* n_lists + 1: first vector of each list */
    const uint8_t *codes;
};

static uint64_t align64(uint64_t x)
{
    return (x + 63) & ~63ull;
}

static inline uint8_t code_of(float x, float vmin, float step)
{
    float c = rintf((x - vmin) / step); /* round half to even (the default mode) */
    /* NaN (only in a pack that fails verify --deep) codes as 0, like anything below 0. */
    return !(c > 0.0f) ? 0 : c >= 255.0f ? 255 : (uint8_t)c;
}

void ap_sq8_encode(const float *vmin, const float *step, uint32_t dim, uint32_t stride,
                   const uint16_t *vec, uint8_t *codes)
{
    for (uint32_t d = 0; d < dim; d++) codes[d] = code_of(ap_f16_to_f32(vec[d]), vmin[d], step[d]);
    memset(codes + dim, 0, stride - dim);
}

void ap_sq8_encode_f32(const float *vmin, const float *step, uint32_t dim, uint32_t stride,
                       const float *x, uint8_t *codes)
{
    for (uint32_t d = 0; d < dim; d++) codes[d] = code_of(x[d], vmin[d], step[d]);
    memset(codes + dim, 0, stride - dim);
}

/* Per-dimension ranges: vmin/vmax start empty (0 when there are no rows), take every value
 * (NaN never compares, so it is skipped), and end as steps; a constant or non-finite range
 * gets step 1. vmax is stored in step until range_steps. */
static void range_start(float *vmin, float *vmax, uint32_t dim, size_t n)
{
    for (uint32_t d = 0; d < dim; d++) {
        vmin[d] = n ? INFINITY : 0;
        vmax[d] = n ? -INFINITY : 0;
    }
}

static void range_add(float *vmin, float *vmax, const float *x, uint32_t dim)
{
    for (uint32_t d = 0; d < dim; d++) {
        if (x[d] < vmin[d]) vmin[d] = x[d];
        if (x[d] > vmax[d]) vmax[d] = x[d];
    }
}

static void range_steps(const float *vmin, float *step, uint32_t dim)
{
    for (uint32_t d = 0; d < dim; d++) {
        float s = (step[d] - vmin[d]) / 255.0f;
        step[d] = s > 0 && isfinite(s) ? s : 1.0f;
    }
}

void ap_sq8_train_f32(const float *x, size_t n, uint32_t dim, float *vmin, float *step)
{
    range_start(vmin, step, dim, n);
    for (size_t i = 0; i < n; i++) range_add(vmin, step, x + i * dim, dim);
    range_steps(vmin, step, dim);
}

/* The same over f16 vectors (their values as f32); row is dim floats of scratch. */
static void train(const uint16_t *vecs, size_t n, uint32_t dim, float *vmin, float *step,
                  float *row)
{
    range_start(vmin, step, dim, n);
    for (size_t i = 0; i < n; i++) {
        ap_f16_to_f32_n(row, vecs + i * dim, dim);
        range_add(vmin, step, row, dim);
    }
    range_steps(vmin, step, dim);
}

typedef struct encode_job {
    const float *vmin, *step;
    uint32_t dim, stride;
    const uint16_t *vecs;
    size_t from, to;
    uint8_t *out;
} encode_job;

static void *encode_worker(void *arg)
{
    encode_job *j = arg;
    for (size_t i = j->from; i < j->to; i++)
        ap_sq8_encode(j->vmin, j->step, j->dim, j->stride, j->vecs + i * j->dim,
                      j->out + i * j->stride);
    return NULL;
}

/* Every vector is encoded on its own, so splitting the rows over threads changes nothing. */
static void encode_all(const float *vmin, const float *step, uint32_t dim, uint32_t stride,
                       const uint16_t *vecs, size_t n, uint8_t *out)
{
    uint32_t t = ap_kmeans_threads();
    if (t > 64) t = 64;
    if (n < 4096 || t < 2) t = 1;
    encode_job jobs[64];
    pthread_t tid[64];
    uint32_t started = 0;
    for (uint32_t k = 0; k < t; k++)
        jobs[k] = (encode_job){vmin, step, dim, stride, vecs, n * k / t, n * (k + 1) / t, out};
    for (uint32_t k = 1; k < t; k++) {
        if (pthread_create(&tid[k], NULL, encode_worker, &jobs[k]) != 0) break;
        started = k;
    }
    encode_worker(&jobs[0]);
    for (uint32_t k = 1; k <= started; k++) pthread_join(tid[k], NULL);
    for (uint32_t k = started + 1; k < t; k++) encode_worker(&jobs[k]);
}

ap_status ap_sq8_build(const char *dir, uint32_t dim, uint32_t n_lists, const uint32_t *counts,
                       const uint16_t *vecs, size_t n, ap_err *err)
{
    uint32_t stride = ap_sq8_stride(dim);
    uint64_t params = AP_SQ8_HEADER_SIZE;
    uint64_t cnt = align64(params + 8ull * dim);
    uint64_t codes = align64(cnt + 4ull * n_lists);
    uint64_t size = codes + (uint64_t)n * stride;
    uint8_t *buf = calloc(1, size);
    char *path = ap_path_join(dir, AP_SQ8);
    ap_status st = AP_OK;
    if (!buf || !path) {
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory for the int8 sidecar (%llu bytes)",
                        (unsigned long long)size);
        goto out;
    }
    ap_put32(buf + 0, AP_SQ8_MAGIC);
    ap_put32(buf + 4, AP_SQ8_VERSION);
    ap_put32(buf + 8, AP_SQ8_HEADER_SIZE);
    ap_put32(buf + 12, dim);
    ap_put32(buf + 16, n_lists);
    ap_put32(buf + 20, (uint32_t)n);
    ap_put32(buf + 24, stride);
    ap_put64(buf + 32, params);
    ap_put64(buf + 40, cnt);
    ap_put64(buf + 48, codes);
    ap_put64(buf + 56, size);
    float *vmin = malloc(3ull * dim * sizeof *vmin);
    if (!vmin) {
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    float *step = vmin + dim;
    train(vecs, n, dim, vmin, step, vmin + 2ull * dim);
    for (uint32_t d = 0; d < dim; d++) {
        uint32_t a, b;
        memcpy(&a, &vmin[d], 4);
        memcpy(&b, &step[d], 4);
        ap_put32(buf + params + 4ull * d, a);
        ap_put32(buf + params + 4ull * (dim + d), b);
    }
    for (uint32_t l = 0; l < n_lists; l++) ap_put32(buf + cnt + 4ull * l, counts[l]);
    encode_all(vmin, step, dim, stride, vecs, n, buf + codes);
    free(vmin);
    st = ap_write_file(path, buf, size, err);
out:
    free(buf);
    free(path);
    return st;
}

static ap_status validate(ap_sq8 *s, const ap_annp *a, ap_err *err)
{
    const char *p = s->path;
    const ap_annp_header *h = ap_annp_get_header(a);
    if (s->size < AP_SQ8_HEADER_SIZE)
        return ap_err_set(err, AP_ERR_FORMAT, "%s: %zu bytes is shorter than the %u-byte header",
                          p, s->size, AP_SQ8_HEADER_SIZE);
    const uint8_t *m = s->map;
    if (ap_le32(m) != AP_SQ8_MAGIC)
        return ap_err_set(err, AP_ERR_FORMAT, "%s: bad magic 0x%08x (not an int8 sidecar)", p,
                          ap_le32(m));
    if (ap_le32(m + 4) != AP_SQ8_VERSION)
        return ap_err_set(err, AP_ERR_UNSUPPORTED, "%s: version %u not supported (need %u)", p,
                          ap_le32(m + 4), AP_SQ8_VERSION);
    if (ap_le32(m + 8) != AP_SQ8_HEADER_SIZE)
        return ap_err_set(err, AP_ERR_FORMAT, "%s: header_size %u (need %u)", p, ap_le32(m + 8),
                          AP_SQ8_HEADER_SIZE);
    s->dim = ap_le32(m + 12);
    s->n_lists = ap_le32(m + 16);
    s->n_vectors = ap_le32(m + 20);
    s->stride = ap_le32(m + 24);
    if (s->dim != h->dim || s->n_lists != h->n_lists || s->n_vectors != h->n_vectors)
        return ap_err_set(err, AP_ERR_VERIFY,
                          "%s: dim %u, %u lists, %u vectors; %s has %u, %u, %u", p, s->dim,
                          s->n_lists, s->n_vectors, ap_annp_path(a), h->dim, h->n_lists,
                          h->n_vectors);
    if (s->stride != ap_sq8_stride(s->dim))
        return ap_err_set(err, AP_ERR_FORMAT, "%s: stride %u (need %u for dim %u)", p, s->stride,
                          ap_sq8_stride(s->dim), s->dim);
    uint64_t params = ap_le64(m + 32), cnt = ap_le64(m + 40), codes = ap_le64(m + 48),
             size = ap_le64(m + 56);
    /* The layout is fixed by dim and n_lists; anything else is not our writer's. */
    uint64_t want_cnt = align64(AP_SQ8_HEADER_SIZE + 8ull * s->dim);
    uint64_t want_codes = align64(want_cnt + 4ull * s->n_lists);
    uint64_t want_size = want_codes + (uint64_t)s->n_vectors * s->stride;
    if (params != AP_SQ8_HEADER_SIZE || cnt != want_cnt || codes != want_codes ||
        size != want_size || size != s->size)
        return ap_err_set(err, AP_ERR_FORMAT,
                          "%s: layout (params %llu, counts %llu, codes %llu, size %llu) does not "
                          "match dim %u, %u lists, %u vectors and the file's %zu bytes",
                          p, (unsigned long long)params, (unsigned long long)cnt,
                          (unsigned long long)codes, (unsigned long long)size, s->dim, s->n_lists,
                          s->n_vectors, s->size);
    s->vmin = malloc(2ull * s->dim * sizeof *s->vmin);
    s->first = malloc((s->n_lists + 1ull) * sizeof *s->first);
    if (!s->vmin || !s->first) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    s->step = s->vmin + s->dim;
    for (uint32_t d = 0; d < 2 * s->dim; d++) {
        uint32_t bits = ap_le32(m + params + 4ull * d);
        memcpy(&s->vmin[d], &bits, 4);
        if (!isfinite(s->vmin[d]))
            return ap_err_set(err, AP_ERR_FORMAT, "%s: %s[%u] is not finite", p,
                              d < s->dim ? "vmin" : "step", d % s->dim);
    }
    for (uint32_t d = 0; d < s->dim; d++)
        if (!(s->step[d] > 0))
            return ap_err_set(err, AP_ERR_FORMAT, "%s: step[%u] is not positive", p, d);
    uint64_t at = 0;
    for (uint32_t l = 0; l < s->n_lists; l++) {
        ap_annp_list al;
        ap_annp_list_get(a, l, &al);
        uint32_t c = ap_le32(m + cnt + 4ull * l);
        if (c != al.count)
            return ap_err_set(err, AP_ERR_VERIFY, "%s: list %u has %u codes; %s's list has %u",
                              p, l, c, ap_annp_path(a), al.count);
        s->first[l] = at;
        at += c;
    }
    s->first[s->n_lists] = at;
    s->codes = m + codes;
    return AP_OK;
}

ap_status ap_sq8_open_fd(int fd, uint64_t size, const char *name, const ap_annp *a,
                         ap_sq8 **out, ap_err *err)
{
    *out = NULL;
    ap_sq8 *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(name))) {
        free(s);
        return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    }
    ap_status st = AP_OK;
    s->size = (size_t)size;
    if (size >= AP_SQ8_HEADER_SIZE) {
        const void *m;
        if ((st = ap_map_file(fd, s->size, name, &m, err))) goto fail;
        s->map = m;
    } else {
        static const uint8_t none[AP_SQ8_HEADER_SIZE];
        s->map = none; /* validate() reports the short file */
    }
    if ((st = validate(s, a, err))) goto fail;
    *out = s;
    return AP_OK;
fail:
    ap_sq8_close(s);
    return st;
}

ap_status ap_sq8_open(const char *path, const ap_annp *a, ap_sq8 **out, ap_err *err)
{
    *out = NULL;
    int fd = -1;
    uint64_t size = 0;
    ap_status st = ap_open_regular(path, &fd, &size, err);
    if (st) return st;
    st = ap_sq8_open_fd(fd, size, path, a, out, err);
    close(fd);
    return st;
}

void ap_sq8_close(ap_sq8 *s)
{
    if (!s) return;
    if (s->map && s->size >= AP_SQ8_HEADER_SIZE) ap_unmap_file(s->map, s->size);
    free(s->vmin);
    free(s->first);
    free(s->path);
    free(s);
}

const uint8_t *ap_sq8_bytes(const ap_sq8 *s, size_t *size)
{
    *size = s->size;
    return s->map;
}

uint32_t ap_sq8_dim(const ap_sq8 *s)
{
    return s->dim;
}

uint32_t ap_sq8_stride_of(const ap_sq8 *s)
{
    return s->stride;
}

const uint8_t *ap_sq8_list_codes(const ap_sq8 *s, uint32_t i)
{
    return s->codes + s->first[i] * s->stride;
}

const float *ap_sq8_vmin(const ap_sq8 *s)
{
    return s->vmin;
}

const float *ap_sq8_step(const ap_sq8 *s)
{
    return s->step;
}

void ap_sq8_weights(const float *step, uint32_t dim, uint32_t stride, const float *q, int8_t *w)
{
    float amax = 0;
    for (uint32_t d = 0; d < dim; d++) {
        float x = fabsf(q[d] * step[d]);
        if (x > amax) amax = x;
    }
    float scale = amax > 0 ? 127.0f / amax : 0;
    for (uint32_t d = 0; d < dim; d++) {
        float x = rintf(q[d] * step[d] * scale);
        /* NaN only from extreme (unverified) params: weigh that dimension 0. */
        w[d] = (int8_t)(x > 127.0f ? 127 : x < -127.0f ? -127 : x == x ? x : 0);
    }
    memset(w + dim, 0, stride - dim);
}

void ap_sq8_query(const ap_sq8 *s, const float *q, int8_t *w)
{
    ap_sq8_weights(s->step, s->dim, s->stride, q, w);
}

ap_status ap_sq8_check_codes(const ap_sq8 *s, const ap_annp *a, ap_err *err)
{
    uint8_t *tmp = malloc(s->stride);
    uint16_t *v = malloc(s->dim * sizeof *v);
    if (!tmp || !v) {
        free(tmp);
        free(v);
        return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    }
    ap_status st = AP_OK;
    for (uint32_t l = 0; l < s->n_lists && !st; l++) {
        ap_annp_list al;
        ap_annp_list_get(a, l, &al);
        const uint8_t *codes = ap_sq8_list_codes(s, l);
        for (uint32_t j = 0; j < al.count; j++) {
            memcpy(v, al.vecs + (size_t)j * 2 * s->dim, 2ull * s->dim);
            ap_sq8_encode(s->vmin, s->step, s->dim, s->stride, v, tmp);
            if (memcmp(tmp, codes + (size_t)j * s->stride, s->stride) != 0) {
                st = ap_err_set(err, AP_ERR_VERIFY,
                                "%s: list %u vector %u: codes differ from the encoding of %s's "
                                "vector",
                                s->path, l, j, ap_annp_path(a));
                break;
            }
        }
    }
    free(tmp);
    free(v);
    return st;
}

void ap_sq8_score_block(const int8_t *w, const uint8_t *codes, uint32_t n, uint32_t stride,
                        int32_t *out)
{
    ap_kernel_sq8(NULL)(w, codes, n, stride, out);
}
