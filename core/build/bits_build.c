/* Writing the 1-bit code sidecar pack.bits of a pack being built: see bits_stream.h,
 * annpack/bits.h and docs/FORMAT.md. Only one list's records are ever in memory. */
#include <stdlib.h>
#include <string.h>

#include "annpack/bits.h"
#include "bits_layout.h"
#include "bits_stream.h"
#include "endian.h"
#include "fp16.h"
#include "list_sidecar_write.h"
#include "parallel.h"
#include "rabitq.h"

struct ap_bits_stream {
    ap_list_sidecar_writer out;
    ap_bits_layout L;
    ap_rbq_rot rot;
    uint8_t *buf;   /* one list's records */
    size_t buf_cap; /* in vectors */
    float *ref;     /* the list's reference point, alpha * centroid */
    uint16_t *h;    /* dim f16 of scratch */
    float *x;       /* dim f32 of scratch */
};

typedef struct encode_job {
    const ap_rbq_rot *rot;
    uint32_t dim;
    const uint16_t *vecs;
    const float *centroid;
    size_t n;
    uint8_t *codes, *F, *G;
    int nomem;
} encode_job;

static void encode_range(void *ctx, uint32_t p, uint32_t nparts)
{
    encode_job *j = ctx;
    size_t from, to;
    ap_part_range(j->n, p, nparts, &from, &to);
    const uint32_t dpad = j->rot->dpad, cb = dpad / 8;
    float *x = malloc((size_t)(j->dim + dpad) * sizeof *x);
    if (!x) {
        j->nomem = 1; /* each part writes only its own flag value: a benign same-value race */
        return;
    }
    for (size_t i = from; i < to; i++) {
        ap_f16_to_f32_n(x, j->vecs + i * j->dim, j->dim);
        float F, G;
        ap_rbq_encode(j->rot, j->dim, x, j->centroid, x + j->dim, j->codes + i * cb, &F, &G);
        uint32_t fb, gb;
        memcpy(&fb, &F, 4);
        memcpy(&gb, &G, 4);
        ap_put32(j->F + 4 * i, fb);
        ap_put32(j->G + 4 * i, gb);
    }
    free(x);
}

ap_status ap_bits_stream_open(const char *dir, uint32_t dim, uint32_t n_lists,
                              const uint32_t *counts, size_t n, ap_bits_stream **out, ap_err *err)
{
    *out = NULL;
    ap_bits_stream *w = calloc(1, sizeof *w);
    if (!w) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    w->L = ap_bits_layout_for(dim, n_lists, (uint32_t)n, AP_BITS_SEED, AP_BITS_EPS0);
    uint8_t *head = calloc(1, w->L.data);
    w->ref = malloc((size_t)dim * sizeof *w->ref);
    w->h = malloc((size_t)dim * sizeof *w->h);
    w->x = malloc((size_t)dim * sizeof *w->x);
    ap_status st;
    if (!head || !w->ref || !w->h || !w->x || ap_rbq_rot_init(&w->rot, w->L.seed, w->L.dpad)) {
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory for the 1-bit code sidecar");
    } else {
        ap_bits_header_encode(&w->L, head);
        st = ap_list_sidecar_writer_open(&w->out, dir, AP_BITS, head, w->L.data, w->L.counts,
                                         counts, n_lists, err);
    }
    free(head);
    if (st)
        ap_bits_stream_close(w, false, NULL);
    else
        *out = w;
    return st;
}

ap_status ap_bits_stream_list(ap_bits_stream *w, const uint16_t *vecs, size_t count,
                              const float *centroid, ap_err *err)
{
    if (count > w->buf_cap) {
        uint8_t *c = realloc(w->buf, count * w->L.record + 4);
        if (!c) return ap_err_set(err, AP_ERR_NOMEM, "out of memory for %zu 1-bit codes", count);
        w->buf = c;
        w->buf_cap = count;
    }
    const size_t cb = w->L.dpad / 8;
    if (w->buf_cap == 0 && !(w->buf = malloc(4)))
        return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    float alpha =
        ap_rbq_alpha((const uint8_t *)vecs, (uint32_t)count, w->L.dim, centroid, w->h, w->x);
    ap_rbq_scale(centroid, alpha, w->L.dim, w->ref);
    uint32_t ab;
    memcpy(&ab, &alpha, 4);
    ap_put32(w->buf + count * w->L.record, ab);
    encode_job j = {.rot = &w->rot,
                    .dim = w->L.dim,
                    .vecs = vecs,
                    .centroid = w->ref,
                    .n = count,
                    .codes = w->buf,
                    .F = w->buf + count * cb,
                    .G = w->buf + count * (cb + 4)};
    ap_parallel_for(ap_parallel_parts(count, 1024), encode_range, &j);
    if (j.nomem) return ap_err_set(err, AP_ERR_NOMEM, "out of memory encoding 1-bit codes");
    return ap_list_sidecar_writer_put(&w->out, w->buf, count * w->L.record + 4, err);
}

ap_status ap_bits_stream_close(ap_bits_stream *w, bool ok, ap_err *err)
{
    if (!w) return AP_OK;
    ap_status st = ap_list_sidecar_writer_close(&w->out, ok, err);
    ap_rbq_rot_free(&w->rot);
    free(w->buf);
    free(w->ref);
    free(w->h);
    free(w->x);
    free(w);
    return st;
}
