/* The calibration of a delta: its default probe over base + delta (see delta.h). */
#include <stdlib.h>

#include "annpack/format.h"
#include "calibrate.h"
#include "delta.h"
#include "delta_lists.h"
#include "fp16.h"
#include "fsops.h"
#include "pack_open.h"
#include "path.h"

/* Appends the f32 copies of every vector of a into x from row *at, with their lists. */
static void take_lists(const ap_annp *a, float *x, uint32_t *assign, size_t *at)
{
    const ap_annp_header *h = ap_annp_get_header(a);
    for (uint32_t i = 0; i < h->n_lists; i++) {
        ap_annp_list l;
        ap_annp_list_get(a, i, &l);
        for (uint32_t j = 0; j < l.count; j++, (*at)++) {
            ap_f16_to_f32_n(x + *at * h->dim,
                            (const uint16_t *)(const void *)(l.vecs + 2ull * h->dim * j), h->dim);
            if (assign) assign[*at] = i;
        }
    }
}

/* The nd entries of delta_dir/delta.lists (written by the build of the delta) into out. */
static ap_status recorded_lists(const char *delta_dir, size_t nd, uint32_t base_lists,
                                uint32_t *out, ap_err *err)
{
    char *path = ap_path_join(delta_dir, AP_DELTA_LISTS), *img = NULL;
    size_t len = 0;
    uint32_t under = 0;
    const uint8_t *g = NULL;
    ap_status st = path ? ap_read_file(path, AP_DELTA_LISTS_HEADER + 4 * nd, &img, &len, err)
                        : ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    if (!st) st = ap_delta_lists_parse((const uint8_t *)img, len, path, nd, &under, &g, err);
    if (!st && under != base_lists)
        st = ap_err_set(err, AP_ERR_INTERNAL, "%s: grouped under %u base lists, the base has %u",
                        path, under, base_lists);
    for (size_t i = 0; !st && i < nd; i++)
        out[i] = ap_delta_lists_at(g, i);
    free(img);
    free(path);
    return st;
}

ap_status ap_delta_calibration(const ap_pack *base, const char *delta_dir, cJSON **out, ap_err *err)
{
    *out = NULL;
    double target = ap_calibration_target_of(ap_pack_manifest_of(base)->build);
    if (target <= 0) return AP_OK; /* the base has none: neither has the delta */
    const ap_annp *ba = ap_pack_annp(base);
    const ap_annp_header *h = ap_annp_get_header(ba);
    ap_annp *da = NULL;
    char *path = ap_path_join(delta_dir, AP_ANNPACK);
    ap_status st =
        path ? ap_annp_open(path, &da, err) : ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    free(path);
    if (st) return st;
    size_t nb = h->n_vectors, nd = ap_annp_get_header(da)->n_vectors, n = nb + nd, at = 0;
    float *x = malloc((n ? n : 1) * h->dim * sizeof *x);
    uint32_t *assign = malloc((n ? n : 1) * sizeof *assign);
    ap_calibration cal;
    if (!x || !assign) {
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory for %zu vectors", n);
        goto out;
    }
    take_lists(ba, x, assign, &at);
    take_lists(da, x, NULL, &at);
    /* Delta vectors are scanned with the base list the build recorded (delta.lists, in the
     * delta's file order, as take_lists reads it), as the view groups them. */
    if (nd && (st = recorded_lists(delta_dir, nd, h->n_lists, assign + nb, err))) goto out;
    if (n &&
        !(st = ap_calibrate(x, n, h->dim, ap_annp_centroids(ba), h->n_lists, assign, target, &cal,
                            err)) &&
        !(*out = ap_calibration_json(&cal)))
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
out:
    free(x);
    free(assign);
    ap_annp_close(da);
    return st;
}
