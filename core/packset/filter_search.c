/* Filtered search: see ap_view_search_where (packset.h). The documents that do not match
 * are set aside inside the scan exactly like tombstoned ones — the scan asks the filter
 * about each candidate it would keep (ap_keep), after the dead bits — so the top k is the
 * exact top k of the matching live documents at the probe, as brute force at full probe.
 * Only the probed lists are read: nothing per query is proportional to the pack. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annpack/packset.h"
#include "filter.h"
#include "view.h"

/* The value sets of every condition in every layer (NULL: no document of that layer). */
typedef struct where_sets {
    const ap_filter_value **v; /* nlayers x nwhere */
    uint32_t *hint;            /* nlayers x nwhere: where each set's last lookup ended */
    size_t nwhere;
} where_sets;

static bool matches(where_sets *w, uint32_t layer, uint64_t id)
{
    for (size_t c = 0; c < w->nwhere; c++) {
        const ap_filter_value *fv = w->v[layer * w->nwhere + c];
        if (!fv || !ap_filter_value_has_near(fv, id, &w->hint[layer * w->nwhere + c])) return false;
    }
    return true;
}

/* The base's count of condition c (0 when no base document has it). */
static uint64_t base_count(const where_sets *w, size_t c)
{
    return w->v[c] ? w->v[c]->count : 0;
}

/* Conditions tested rarest first (by the base's counts), so that a candidate most
 * conditions would keep costs one lookup: the sets of every layer move together. */
static void order_by_selectivity(where_sets *w, uint32_t nlayers)
{
    for (size_t i = 1; i < w->nwhere; i++)
        for (size_t j = i; j > 0 && base_count(w, j) < base_count(w, j - 1); j--)
            for (uint32_t l = 0; l < nlayers; l++) {
                const ap_filter_value **x = &w->v[l * w->nwhere];
                const ap_filter_value *t = x[j];
                x[j] = x[j - 1];
                x[j - 1] = t;
            }
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
    if (!(w->v = calloc((size_t)v->nlayers * nwhere, sizeof(const ap_filter_value *))) ||
        !(w->hint = calloc((size_t)v->nlayers * nwhere, sizeof(uint32_t))))
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
    order_by_selectivity(w, v->nlayers);
    return AP_OK;
}

ap_status ap_view_where_check(const ap_view *v, const ap_where *where, size_t nwhere, ap_err *err)
{
    if (nwhere == 0) return AP_OK;
    if (!where) return ap_err_set(err, AP_ERR_ARG, "filters: NULL conditions");
    for (size_t c = 0; c < nwhere; c++)
        if (!where[c].col || !where[c].value)
            return ap_err_set(err, AP_ERR_ARG, "filter %zu: column or value is NULL", c);
    where_sets w = {0};
    ap_status st = resolve(v, where, nwhere, &w, err);
    free(w.v);
    free(w.hint);
    return st;
}

/* ap_keep's callback: the document of layer index layer with id matches every condition. */
static int keep_match(void *ctx, uint32_t layer, uint64_t id)
{
    return matches(ctx, layer, id);
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
    ap_status st = resolve(v, where, nwhere, &w, err);
    if (!st) {
        /* The view's engine as it is (its guard readies each probed list: checked, dead
         * bits set), asking the filter about each candidate of the lists it scans. */
        ap_keep keep = {keep_match, &w};
        ap_ivf ix = v->ivf;
        ix.keep = &keep;
        st = ap_ivf_search(&ix, q, p, hits, n, stats, err);
    }
    free(w.v);
    free(w.hint);
    return st;
}
