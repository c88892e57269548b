/* The merged tables of a view: see merge.h. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "merge.h"

static int cmp_row(const void *a, const void *b)
{
    const uint64_t *x = a, *y = b;
    return (x[0] > y[0]) - (x[0] < y[0]);
}

/* The merged lists: every live vector in merged order, and the lists' offsets. */
static ap_status more_than_live(const ap_view *v, ap_err *err)
{
    return ap_err_set(err, v->base_lazy ? AP_ERR_VERIFY : AP_ERR_INTERNAL,
                      "%s: the lists hold more live vectors than the %llu counted (the base's "
                      "ids are not its rows' ids?)",
                      v->dir, (unsigned long long)v->live);
}

ap_status ap_merged_lists(const ap_view *v, ap_merged *x, ap_err *err)
{
    const ap_annp *base = ap_pack_annp(v->layers[0].pack);
    const ap_annp_header *h = ap_annp_get_header(base);
    uint32_t nl = h->n_lists, dim = h->dim;
    if (v->live > UINT32_MAX)
        return ap_err_set(err, AP_ERR_LIMIT, "%s: %llu live vectors exceed the ANNP u32 count",
                          v->dir, (unsigned long long)v->live);
    /* Every base list is read: checked and its dead bits set first (lazily checked bases). */
    for (uint32_t i = 0; i < nl; i++) {
        ap_status st = ap_view_ready_list(v, i, err);
        if (st) return st;
    }
    x->list_off = malloc((nl + 1ull) * sizeof *x->list_off);
    x->list_first = malloc((nl + 1ull) * sizeof *x->list_first);
    x->items = malloc((v->live ? v->live : 1) * sizeof *x->items);
    if (!x->list_off || !x->list_first || !x->items)
        return ap_err_set(err, AP_ERR_NOMEM, "out of memory for %llu vectors",
                          (unsigned long long)v->live);
    uint64_t n = 0, off = AP_ANNP_HEADER_SIZE + (uint64_t)nl * dim * 4;
    for (uint32_t i = 0; i < nl; i++) {
        x->list_first[i] = n;
        x->list_off[i] = off;
        ap_annp_list l;
        ap_annp_list_get(base, i, &l);
        uint64_t start = ap_annp_list_start(base, i);
        for (uint32_t j = 0; j < l.count; j++) {
            uint64_t pos = start + j;
            if (v->layers[0].dead[pos >> 3] & (1u << (pos & 7))) continue;
            /* items has v->live entries; a lazily checked base's count came from its rows */
            if (n >= v->live) return more_than_live(v, err);
            x->items[n++] =
                (ap_item){.idp = l.ids + 8ull * j, .vec = l.vecs + 2ull * dim * j, .layer = 0};
        }
        for (size_t d = v->dstart[i]; d < v->dstart[i + 1]; d++) {
            if (n >= v->live) return more_than_live(v, err);
            x->items[n++] = v->ditems[d];
        }
        off += ap_annp_list_bytes(n - x->list_first[i], dim);
    }
    x->list_first[nl] = n;
    x->list_off[nl] = off;
    x->annp_size = off + 16ull * nl;
    if (n != v->live)
        return ap_err_set(err, v->base_lazy ? AP_ERR_VERIFY : AP_ERR_INTERNAL,
                          "%s: merged %llu vectors, expected %llu (the base's ids are not its "
                          "rows' ids?)",
                          v->dir, (unsigned long long)n, (unsigned long long)v->live);
    return AP_OK;
}

/* Live rows, ascending id, with their layer and length. */
ap_status ap_merged_rows(const ap_view *v, ap_merged *x, ap_err *err)
{
    uint64_t cap = 0;
    for (uint32_t l = 0; l < v->nlayers; l++)
        cap += ap_meta_count(ap_pack_meta(v->layers[l].pack));
    uint64_t *rows = malloc((cap ? cap : 1) * 3 * sizeof *rows); /* (id, layer, len) */
    if (!rows) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    uint64_t nr = 0;
    for (uint32_t l = 0; l < v->nlayers; l++) {
        const ap_meta *m = ap_pack_meta(v->layers[l].pack);
        for (uint64_t i = 0; i < ap_meta_count(m); i++) {
            uint64_t id, o, len;
            ap_meta_entry(m, i, &id, &o, &len);
            if (ap_view_live_layer(v, id) != (int32_t)l) continue;
            assert(nr < cap);
            rows[3 * nr] = id;
            rows[3 * nr + 1] = l;
            rows[3 * nr + 2] = len;
            nr++;
        }
    }
    qsort(rows, nr, 3 * sizeof *rows, cmp_row);
    x->nrows = nr;
    x->row_id = malloc((nr ? nr : 1) * sizeof *x->row_id);
    x->row_layer = malloc((nr ? nr : 1) * sizeof *x->row_layer);
    x->row_off = malloc((nr + 1) * sizeof *x->row_off);
    if (!x->row_id || !x->row_layer || !x->row_off) {
        free(rows);
        return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    }
    uint64_t at = 0;
    for (uint64_t i = 0; i < nr; i++) {
        x->row_id[i] = rows[3 * i];
        x->row_layer[i] = (uint32_t)rows[3 * i + 1];
        x->row_off[i] = at;
        at += rows[3 * i + 2] + 1;
    }
    x->row_off[nr] = at;
    free(rows);
    if (nr != v->live)
        return ap_err_set(err, AP_ERR_VERIFY, "%s: %llu live rows but %llu live vectors", v->dir,
                          (unsigned long long)nr, (unsigned long long)v->live);
    return AP_OK;
}

static void tables_free(ap_merged *x)
{
    free(x->list_off);
    free(x->list_first);
    free(x->items);
    free(x->row_id);
    free(x->row_layer);
    free(x->row_off);
}

ap_status ap_view_merged_tables(const ap_view *v, ap_merged **out, ap_err *err)
{
    *out = NULL;
    ap_merged *x = calloc(1, sizeof *x);
    if (!x) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    ap_status st = ap_merged_lists(v, x, err);
    if (!st) st = ap_merged_rows(v, x, err);
    if (st) {
        ap_merged_free(x);
        return st;
    }
    *out = x;
    return AP_OK;
}

void ap_merged_clear(ap_merged *x)
{
    if (x) tables_free(x);
}

void ap_merged_free(ap_merged *x)
{
    if (!x) return;
    tables_free(x);
    free(x);
}
