/* Filtered search: see ap_view_search_where (packset.h). The documents that do not match
 * are set aside inside the scan exactly like tombstoned ones — a per-query dead bitmap of
 * the base positions and the matching subset of the delta vectors — so the top k is the
 * exact top k of the matching live documents at the probe, as brute force at full probe. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annpack/packset.h"
#include "filter.h"
#include "view.h"

/* The value sets of every condition in every layer (NULL: no document of that layer). */
typedef struct where_sets {
    const ap_filter_value **v; /* nlayers x nwhere */
    size_t nwhere;
} where_sets;

static bool matches(const where_sets *w, uint32_t layer, uint64_t id)
{
    for (size_t c = 0; c < w->nwhere; c++) {
        const ap_filter_value *fv = w->v[layer * w->nwhere + c];
        if (!fv || !ap_filter_value_has(fv, id)) return false;
    }
    return true;
}

/* The base's filter columns for messages ("a, b"). */
static void col_list(const ap_filter *f, char *buf, size_t len)
{
    buf[0] = '\0';
    for (uint32_t i = 0; f && i < f->n_cols; i++) {
        size_t at = strlen(buf);
        snprintf(buf + at, len - at, "%s%s", i ? ", " : "", f->cols[i].name);
    }
}

static ap_status resolve(const ap_view *v, const ap_where *where, size_t nwhere, where_sets *w,
                         ap_err *err)
{
    const ap_filter *bf = ap_pack_filter(v->layers[0].pack);
    if (!bf)
        return ap_err_set(err, AP_ERR_NOTFOUND,
                          "%s has no filter columns: build it with --filter-cols COL,... to filter "
                          "on %s",
                          v->dir, where[0].col);
    char cols[512];
    col_list(bf, cols, sizeof cols);
    for (size_t c = 0; c < nwhere; c++) {
        if (!ap_filter_col_find(bf, where[c].col))
            return ap_err_set(err, AP_ERR_NOTFOUND,
                              "unknown filter column \"%.64s\" (filter columns: %s)", where[c].col,
                              cols);
        for (size_t d = 0; d < c; d++)
            if (!strcmp(where[c].col, where[d].col))
                return ap_err_set(err, AP_ERR_ARG, "filter column \"%.64s\" given twice",
                                  where[c].col);
    }
    w->nwhere = nwhere;
    if (!(w->v = calloc((size_t)v->nlayers * nwhere, sizeof(const ap_filter_value *))))
        return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    for (size_t c = 0; c < nwhere; c++) {
        bool any = false;
        for (uint32_t l = 0; l < v->nlayers; l++) {
            const ap_filter *f = ap_pack_filter(v->layers[l].pack);
            const ap_filter_col *col = f ? ap_filter_col_find(f, where[c].col) : NULL;
            const ap_filter_value *fv =
                col ? ap_filter_value_find(col, where[c].value, strlen(where[c].value)) : NULL;
            w->v[l * nwhere + c] = fv;
            any |= fv != NULL;
        }
        if (!any)
            return ap_err_set(err, AP_ERR_NOTFOUND, "no document has %.64s=%.200s", where[c].col,
                              where[c].value);
    }
    return AP_OK;
}

ap_status ap_view_search_where(const ap_view *v, const float *q, const ap_search_params *p,
                               const ap_where *where, size_t nwhere, ap_hit *hits, uint32_t *n,
                               ap_search_stats *stats, ap_err *err)
{
    if (nwhere == 0) return ap_view_search_ex(v, q, p, hits, n, stats, err);
    if (!where) return ap_err_set(err, AP_ERR_ARG, "filters: NULL conditions");
    for (size_t c = 0; c < nwhere; c++)
        if (!where[c].col || !where[c].value)
            return ap_err_set(err, AP_ERR_ARG, "filter %zu: column or value is NULL", c);
    where_sets w = {0};
    ap_ivf ix = v->ivf;
    const ap_annp *a = ix.annp;
    const ap_annp_header *h = ap_annp_get_header(a);
    uint8_t *dead = NULL, *codes = NULL;
    ap_item *items = NULL;
    size_t *xs = NULL;
    ap_status st = resolve(v, where, nwhere, &w, err);
    if (st) goto out;
    if (!(dead = calloc(h->n_vectors / 8 + 1, 1)) ||
        !(xs = calloc(h->n_lists + 1ull, sizeof *xs)) ||
        !(items = malloc((v->nditems ? v->nditems : 1) * sizeof *items))) {
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (v->ivf.dead) memcpy(dead, v->ivf.dead, h->n_vectors / 8 + 1);
    for (uint32_t li = 0; li < h->n_lists; li++) {
        ap_annp_list l;
        ap_annp_list_get(a, li, &l);
        uint64_t start = ap_annp_list_start(a, li);
        for (uint32_t j = 0; j < l.count; j++)
            if (!matches(&w, 0, ap_annp_list_id(&l, j)))
                dead[(start + j) >> 3] |= (uint8_t)(1u << ((start + j) & 7));
    }
    uint32_t stride = ix.sq8 && ix.xcodes ? ap_sq8_stride(ix.sq8) : 0;
    if (stride && !(codes = malloc((v->nditems ? v->nditems : 1) * (size_t)stride))) {
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        goto out;
    }
    size_t m = 0;
    for (uint32_t li = 0; v->ivf.xstart && li < h->n_lists; li++) {
        xs[li] = m;
        for (size_t d = v->ivf.xstart[li]; d < v->ivf.xstart[li + 1]; d++) {
            const ap_item *it = &v->ivf.x[d];
            if (!matches(&w, it->layer, ap_item_id(it))) continue;
            if (codes) memcpy(codes + m * stride, v->ivf.xcodes + d * stride, stride);
            items[m++] = *it;
        }
    }
    xs[h->n_lists] = m;
    ix.dead = dead;
    ix.x = items;
    ix.xstart = m ? xs : NULL;
    ix.xcodes = codes;
    st = ap_ivf_search(&ix, q, p, hits, n, stats, err);
out:
    free(w.v);
    free(dead);
    free(codes);
    free(items);
    free(xs);
    return st;
}
