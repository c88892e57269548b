/* Grouping a delta's vectors under the base's lists: see delta_group.h. */
#include <stdlib.h>

#include "delta_group.h"
#include "delta_lists.h"
#include "fp16.h"
#include "fsops.h"
#include "kmeans.h"
#include "path.h"

#define GROUP_BLOCK 4096u

ap_status ap_group_under(const ap_annp *base, const uint8_t *const *vecs, size_t n, uint32_t *out,
                         ap_err *err)
{
    const ap_annp_header *h = ap_annp_get_header(base);
    uint32_t dim = h->dim;
    float *f = malloc((size_t)GROUP_BLOCK * dim * sizeof *f);
    if (!f) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    ap_status st = AP_OK;
    for (size_t at = 0; at < n && !st; at += GROUP_BLOCK) {
        size_t m = n - at < GROUP_BLOCK ? n - at : GROUP_BLOCK;
        for (size_t i = 0; i < m; i++)
            ap_f16_to_f32_n(f + i * dim, (const uint16_t *)(const void *)vecs[at + i], dim);
        st = ap_kmeans_assign(f, m, dim, ap_annp_centroids(base), h->n_lists, out + at, NULL, err);
    }
    free(f);
    return st;
}

ap_status ap_delta_group(const ap_annp *base, const ap_annp *delta, uint32_t **out, ap_err *err)
{
    const ap_annp_header *dh = ap_annp_get_header(delta);
    size_t n = dh->n_vectors;
    *out = malloc((n ? n : 1) * sizeof **out);
    const uint8_t **vecs = malloc((n ? n : 1) * sizeof *vecs);
    if (!*out || !vecs) {
        free(vecs);
        free(*out);
        *out = NULL;
        return ap_err_set(err, AP_ERR_NOMEM, "out of memory for %zu delta vectors", n);
    }
    size_t k = 0;
    for (uint32_t li = 0; li < dh->n_lists; li++) {
        ap_annp_list list;
        ap_annp_list_get(delta, li, &list);
        for (uint32_t j = 0; j < list.count && k < n; j++)
            vecs[k++] = list.vecs + 2ull * dh->dim * j;
    }
    ap_status st =
        k == n ? ap_group_under(base, vecs, n, *out, err)
               : ap_err_set(err, AP_ERR_FORMAT, "delta lists hold %zu of %zu vectors", k, n);
    free(vecs);
    if (st) {
        free(*out);
        *out = NULL;
    }
    return st;
}

ap_status ap_delta_lists_write(const char *dir, const ap_annp *base, ap_err *err)
{
    char *apath = ap_path_join(dir, AP_ANNPACK), *lpath = ap_path_join(dir, AP_DELTA_LISTS);
    ap_annp *delta = NULL;
    uint32_t *lists = NULL;
    uint8_t *img = NULL;
    size_t len = 0;
    ap_status st = apath && lpath ? ap_annp_open(apath, &delta, err)
                                  : ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    if (!st) st = ap_delta_group(base, delta, &lists, err);
    if (!st && !(img = ap_delta_lists_encode(lists, ap_annp_get_header(delta)->n_vectors,
                                             ap_annp_get_header(base)->n_lists, &len)))
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    if (!st) st = ap_write_file(lpath, img, len, err);
    free(img);
    free(lists);
    ap_annp_close(delta);
    free(apath);
    free(lpath);
    return st;
}
