/* The int8 sidecar pack.sq8: see include/annpack/sq8.h and docs/FORMAT.md. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "annpack/sq8.h"
#include "endian.h"
#include "fp16.h"
#include "list_sidecar.h"
#include "parallel.h"
#include "quant8.h"
#include "sidecar.h"

struct ap_sq8 {
    ap_list_sidecar sc; /* first: list_sidecar.h */
    uint32_t stride;
    float *vmin, *step; /* aligned copies of the params */
    const uint8_t *codes;
};

static uint64_t align64(uint64_t x)
{
    return (x + 63) & ~63ull;
}

ap_sq8_layout ap_sq8_layout_for(uint32_t dim, uint32_t n_lists, uint32_t n_vectors)
{
    ap_sq8_layout L = {.dim = dim,
                       .n_lists = n_lists,
                       .n_vectors = n_vectors,
                       .stride = ap_sq8_stride_for(dim),
                       .params = AP_SQ8_HEADER_SIZE};
    L.counts = align64(L.params + 8ull * dim);
    L.codes = align64(L.counts + 4ull * n_lists);
    L.size = L.codes + (uint64_t)n_vectors * L.stride;
    return L;
}

void ap_sq8_header_encode(const ap_sq8_layout *L, uint8_t out[AP_SQ8_HEADER_SIZE])
{
    memset(out, 0, AP_SQ8_HEADER_SIZE);
    ap_put32(out + 0, AP_SQ8_MAGIC);
    ap_put32(out + 4, AP_SQ8_VERSION);
    ap_put32(out + 8, AP_SQ8_HEADER_SIZE);
    ap_put32(out + 12, L->dim);
    ap_put32(out + 16, L->n_lists);
    ap_put32(out + 20, L->n_vectors);
    ap_put32(out + 24, L->stride);
    ap_put64(out + 32, L->params);
    ap_put64(out + 40, L->counts);
    ap_put64(out + 48, L->codes);
    ap_put64(out + 56, L->size);
}

ap_sq8_layout ap_sq8_header_decode(const uint8_t in[AP_SQ8_HEADER_SIZE])
{
    return (ap_sq8_layout){.dim = ap_le32(in + 12),
                           .n_lists = ap_le32(in + 16),
                           .n_vectors = ap_le32(in + 20),
                           .stride = ap_le32(in + 24),
                           .params = ap_le64(in + 32),
                           .counts = ap_le64(in + 40),
                           .codes = ap_le64(in + 48),
                           .size = ap_le64(in + 56)};
}

/* The int8 sidecar's own fields: stride, layout and params. */
static ap_status check_sq8(ap_list_sidecar *sc, uint64_t *counts, ap_err *err)
{
    ap_sq8 *s = (ap_sq8 *)sc;
    const char *p = sc->path;
    ap_sq8_layout got = ap_sq8_header_decode(sc->map);
    s->stride = got.stride;
    if (s->stride != ap_sq8_stride_for(sc->dim))
        return ap_err_set(err, AP_ERR_FORMAT, "%s: stride %u (need %u for dim %u)", p, s->stride,
                          ap_sq8_stride_for(sc->dim), sc->dim);
    /* The layout is fixed by dim and n_lists; anything else is not our writer's. */
    ap_sq8_layout want = ap_sq8_layout_for(sc->dim, sc->n_lists, sc->n_vectors);
    if (got.params != want.params || got.counts != want.counts || got.codes != want.codes ||
        got.size != want.size || got.size != sc->size)
        return ap_err_set(err, AP_ERR_FORMAT,
                          "%s: layout (params %llu, counts %llu, codes %llu, size %llu) does not "
                          "match dim %u, %u lists, %u vectors and the file's %zu bytes",
                          p, (unsigned long long)got.params, (unsigned long long)got.counts,
                          (unsigned long long)got.codes, (unsigned long long)got.size, sc->dim,
                          sc->n_lists, sc->n_vectors, sc->size);
    s->vmin = malloc(2ull * sc->dim * sizeof *s->vmin);
    if (!s->vmin) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    s->step = s->vmin + sc->dim;
    for (uint32_t d = 0; d < 2 * sc->dim; d++) {
        uint32_t bits = ap_le32(sc->map + got.params + 4ull * d);
        memcpy(&s->vmin[d], &bits, 4);
        if (!isfinite(s->vmin[d]))
            return ap_err_set(err, AP_ERR_FORMAT, "%s: %s[%u] is not finite", p,
                              d < sc->dim ? "vmin" : "step", d % sc->dim);
    }
    for (uint32_t d = 0; d < sc->dim; d++)
        if (!(s->step[d] > 0))
            return ap_err_set(err, AP_ERR_FORMAT, "%s: step[%u] is not positive", p, d);
    s->codes = sc->map + got.codes;
    *counts = got.counts;
    return AP_OK;
}

static void release_sq8(ap_list_sidecar *sc)
{
    free(((ap_sq8 *)sc)->vmin);
}

static const ap_list_sidecar_kind sq8_kind = {.magic = AP_SQ8_MAGIC,
                                              .version = AP_SQ8_VERSION,
                                              .header_size = AP_SQ8_HEADER_SIZE,
                                              .what = "an int8 sidecar",
                                              .reader_size = sizeof(ap_sq8),
                                              .check = check_sq8,
                                              .release = release_sq8};

ap_status ap_sq8_open_fd(int fd, uint64_t size, const char *name, const ap_annp *a, ap_sq8 **out,
                         ap_err *err)
{
    ap_list_sidecar *sc = NULL;
    ap_status st = ap_list_sidecar_open_fd(fd, size, name, a, &sq8_kind, &sc, err);
    *out = (ap_sq8 *)sc;
    return st;
}

ap_status ap_sq8_open(const char *path, const ap_annp *a, ap_sq8 **out, ap_err *err)
{
    ap_list_sidecar *sc = NULL;
    ap_status st = ap_list_sidecar_open(path, a, &sq8_kind, &sc, err);
    *out = (ap_sq8 *)sc;
    return st;
}

void ap_sq8_close(ap_sq8 *s)
{
    ap_list_sidecar_close((ap_list_sidecar *)s, &sq8_kind);
}

const uint8_t *ap_sq8_bytes(const ap_sq8 *s, size_t *size)
{
    *size = s->sc.size;
    return s->sc.map;
}

uint32_t ap_sq8_dim(const ap_sq8 *s)
{
    return s->sc.dim;
}

uint32_t ap_sq8_stride(const ap_sq8 *s)
{
    return s->stride;
}

const uint8_t *ap_sq8_list_codes(const ap_sq8 *s, uint32_t i)
{
    return s->codes + s->sc.first[i] * s->stride;
}

const float *ap_sq8_vmin(const ap_sq8 *s)
{
    return s->vmin;
}

const float *ap_sq8_step(const ap_sq8 *s)
{
    return s->step;
}

void ap_sq8_query(const ap_sq8 *s, const float *q, int8_t *w)
{
    ap_sq8_weights(s->step, s->sc.dim, s->stride, q, w);
}

/* ap_sq8_check_codes's parts: lists cut into ranges, the first failing list kept. */
typedef struct codes_job {
    const ap_sq8 *s;
    const ap_annp *a;
    pthread_mutex_t mu;
    uint32_t bad_list; /* UINT32_MAX: none */
    ap_err bad;
} codes_job;

static void codes_part(void *ctx, uint32_t p, uint32_t nparts)
{
    codes_job *c = ctx;
    const ap_sq8 *s = c->s;
    size_t from, to;
    ap_part_range(s->sc.n_lists, p, nparts, &from, &to);
    uint8_t *tmp = malloc(s->stride);
    float *v = malloc(s->sc.dim * sizeof *v);
    ap_err e = {0};
    uint32_t bad = UINT32_MAX;
    for (uint32_t l = (uint32_t)from; l < to && bad == UINT32_MAX; l++) {
        if (!tmp || !v) {
            ap_err_set(&e, AP_ERR_NOMEM, "out of memory");
            bad = l;
            break;
        }
        ap_annp_list al;
        ap_annp_list_get(c->a, l, &al);
        const uint8_t *codes = ap_sq8_list_codes(s, l);
        for (uint32_t j = 0; j < al.count; j++) {
            /* Converted with the vector unit (exact, like ap_sq8_encode's scalar one). */
            ap_f16_to_f32_n(v,
                            (const uint16_t *)(const void *)(al.vecs + (size_t)j * 2 * s->sc.dim),
                            s->sc.dim);
            ap_sq8_encode_f32(s->vmin, s->step, s->sc.dim, s->stride, v, tmp);
            if (memcmp(tmp, codes + (size_t)j * s->stride, s->stride) != 0) {
                ap_err_set(&e, AP_ERR_VERIFY,
                           "%s: list %u vector %u: codes differ from the encoding of %s's vector",
                           s->sc.path, l, j, ap_annp_path(c->a));
                bad = l;
                break;
            }
        }
    }
    free(tmp);
    free(v);
    if (bad == UINT32_MAX) return;
    pthread_mutex_lock(&c->mu);
    if (bad < c->bad_list) {
        c->bad_list = bad;
        c->bad = e;
    }
    pthread_mutex_unlock(&c->mu);
}

ap_status ap_sq8_check_codes(const ap_sq8 *s, const ap_annp *a, ap_err *err)
{
    codes_job c = {.s = s, .a = a, .bad_list = UINT32_MAX};
    pthread_mutex_init(&c.mu, NULL);
    ap_parallel_for(ap_parallel_parts(s->sc.n_lists, 8), codes_part, &c);
    pthread_mutex_destroy(&c.mu);
    if (c.bad_list == UINT32_MAX) return AP_OK;
    if (err) *err = c.bad;
    return c.bad.status;
}
