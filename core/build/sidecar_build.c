/* Writing the int8 sidecar pack.sq8 of a pack being built: see include/annpack/sq8.h
 * (ap_sq8_build), sq8_stream.h and docs/FORMAT.md. The codes are written list by list, so
 * only one list's codes are ever in memory. */
#include <stdlib.h>
#include <string.h>

#include "annpack/sq8.h"
#include "endian.h"
#include "list_sidecar_write.h"
#include "parallel.h"
#include "quant8.h"
#include "sidecar.h"
#include "sq8_stream.h"

struct ap_sq8_stream {
    ap_list_sidecar_writer out;
    ap_sq8_layout L;
    float *vmin, *step; /* dim each */
    uint8_t *codes;     /* one list's codes */
    size_t codes_cap;   /* in vectors */
};

typedef struct encode_job {
    const float *vmin, *step;
    uint32_t dim, stride;
    const uint16_t *vecs;
    size_t n;
    uint8_t *out;
} encode_job;

/* Every vector is encoded on its own, so splitting the rows into parts changes nothing. */
static void encode_range(void *ctx, uint32_t p, uint32_t nparts)
{
    const encode_job *j = ctx;
    size_t from, to;
    ap_part_range(j->n, p, nparts, &from, &to);
    for (size_t i = from; i < to; i++)
        ap_sq8_encode(j->vmin, j->step, j->dim, j->stride, j->vecs + i * j->dim,
                      j->out + i * j->stride);
}

ap_status ap_sq8_stream_open(const char *dir, uint32_t dim, uint32_t n_lists,
                             const uint32_t *counts, size_t n, const float *vmin, const float *step,
                             ap_sq8_stream **out, ap_err *err)
{
    *out = NULL;
    ap_sq8_stream *w = calloc(1, sizeof *w);
    if (!w) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    w->L = ap_sq8_layout_for(dim, n_lists, (uint32_t)n);
    w->vmin = malloc(2ull * dim * sizeof *w->vmin);
    uint8_t *head = calloc(1, w->L.codes);
    ap_status st;
    if (!w->vmin || !head) {
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory for the int8 sidecar");
    } else {
        w->step = w->vmin + dim;
        memcpy(w->vmin, vmin, dim * sizeof *vmin);
        memcpy(w->step, step, dim * sizeof *step);
        ap_sq8_header_encode(&w->L, head);
        for (uint32_t d = 0; d < dim; d++) {
            uint32_t a, b;
            memcpy(&a, &vmin[d], 4);
            memcpy(&b, &step[d], 4);
            ap_put32(head + w->L.params + 4ull * d, a);
            ap_put32(head + w->L.params + 4ull * (dim + d), b);
        }
        st = ap_list_sidecar_writer_open(&w->out, dir, AP_SQ8, head, w->L.codes, w->L.counts,
                                         counts, n_lists, err);
    }
    free(head);
    if (st)
        ap_sq8_stream_close(w, false, NULL);
    else
        *out = w;
    return st;
}

ap_status ap_sq8_stream_list(ap_sq8_stream *w, const uint16_t *vecs, size_t count, ap_err *err)
{
    if (count > w->codes_cap) {
        uint8_t *c = realloc(w->codes, count * w->L.stride);
        if (!c) return ap_err_set(err, AP_ERR_NOMEM, "out of memory for %zu int8 codes", count);
        w->codes = c;
        w->codes_cap = count;
    }
    encode_job j = {w->vmin, w->step, w->L.dim, w->L.stride, vecs, count, w->codes};
    ap_parallel_for(ap_parallel_parts(count, 4096), encode_range, &j);
    return ap_list_sidecar_writer_put(&w->out, w->codes, count * w->L.stride, err);
}

ap_status ap_sq8_stream_close(ap_sq8_stream *w, bool ok, ap_err *err)
{
    if (!w) return AP_OK;
    ap_status st = ap_list_sidecar_writer_close(&w->out, ok, err);
    free(w->vmin);
    free(w->codes);
    free(w);
    return st;
}

ap_status ap_sq8_build(const char *dir, uint32_t dim, uint32_t n_lists, const uint32_t *counts,
                       const uint16_t *vecs, size_t n, ap_err *err)
{
    float *vmin = malloc(3ull * dim * sizeof *vmin);
    if (!vmin) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    float *step = vmin + dim;
    ap_sq8_train_f16(vecs, n, dim, vmin, step, vmin + 2ull * dim);
    ap_sq8_stream *w = NULL;
    ap_status st = ap_sq8_stream_open(dir, dim, n_lists, counts, n, vmin, step, &w, err);
    free(vmin);
    size_t at = 0;
    for (uint32_t l = 0; l < n_lists && !st && w; l++) { /* w is set when st is AP_OK */
        st = ap_sq8_stream_list(w, vecs + at * dim, counts[l], err);
        at += counts[l];
    }
    if (st) {
        ap_sq8_stream_close(w, false, NULL);
        return st;
    }
    return ap_sq8_stream_close(w, true, err);
}
