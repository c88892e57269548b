/* Writing the int8 sidecar pack.sq8 of a pack being built: see include/annpack/sq8.h
 * (ap_sq8_build) and docs/FORMAT.md. */
#include <stdlib.h>
#include <string.h>

#include "annpack/sq8.h"
#include "endian.h"
#include "fsops.h"
#include "parallel.h"
#include "quant8.h"
#include "sidecar.h"

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

ap_status ap_sq8_build(const char *dir, uint32_t dim, uint32_t n_lists, const uint32_t *counts,
                       const uint16_t *vecs, size_t n, ap_err *err)
{
    ap_sq8_layout L = ap_sq8_layout_for(dim, n_lists, (uint32_t)n);
    uint8_t *buf = calloc(1, L.size);
    char *path = ap_path_join(dir, AP_SQ8);
    ap_status st = AP_OK;
    if (!buf || !path) {
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory for the int8 sidecar (%llu bytes)",
                        (unsigned long long)L.size);
        goto out;
    }
    ap_sq8_header_encode(&L, buf);
    float *vmin = malloc(3ull * dim * sizeof *vmin);
    if (!vmin) {
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    float *step = vmin + dim;
    ap_sq8_train_f16(vecs, n, dim, vmin, step, vmin + 2ull * dim);
    for (uint32_t d = 0; d < dim; d++) {
        uint32_t a, b;
        memcpy(&a, &vmin[d], 4);
        memcpy(&b, &step[d], 4);
        ap_put32(buf + L.params + 4ull * d, a);
        ap_put32(buf + L.params + 4ull * (dim + d), b);
    }
    for (uint32_t l = 0; l < n_lists; l++)
        ap_put32(buf + L.counts + 4ull * l, counts[l]);
    encode_job j = {vmin, step, dim, L.stride, vecs, n, buf + L.codes};
    ap_parallel_for(ap_parallel_parts(n, 4096), encode_range, &j);
    free(vmin);
    st = ap_write_file(path, buf, L.size, err);
out:
    free(buf);
    free(path);
    return st;
}
