/* verify --deep of pack.filter (FORMAT.md "pack.filter"): the reader already refused any
 * order violation; this checks the sets against the pack itself. Every listed id is one of
 * the pack's rows, no id is in two values of a column, every row is in one value of each
 * column (so a column's counts add up to the rows), and that value is the row's own. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annpack/meta.h"
#include "endian.h"
#include "filter.h"
#include "json.h"
#include "pack_open.h"
#include "view.h"

/* The index of id among the pack's rows (ascending ids), or -1. */
static int64_t row_of(const ap_meta *m, uint64_t n, uint64_t id)
{
    uint64_t lo = 0, hi = n;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2, x, off, len;
        ap_meta_entry(m, mid, &x, &off, &len);
        if (x == id) return (int64_t)mid;
        if (x < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* A value's text for messages (at most 200 bytes of it). */
static int vlen(const ap_filter_value *v)
{
    return v->len > 200 ? 200 : (int)v->len;
}

/* Column c: each listed id a row of the pack, in one value only, and every row listed. */
static ap_status check_ids(const ap_filter_col *c, const ap_meta *m, uint64_t n, uint32_t *owner,
                           const char *name, ap_err *err)
{
    for (uint64_t i = 0; i < n; i++)
        owner[i] = UINT32_MAX;
    for (uint32_t v = 0; v < c->n_values; v++) {
        const ap_filter_value *fv = &c->values[v];
        for (uint32_t j = 0; j < fv->count; j++) {
            uint64_t id = ap_le64(fv->ids + 8ull * j);
            int64_t r = row_of(m, n, id);
            if (r < 0)
                return ap_err_set(err, AP_ERR_VERIFY,
                                  "%s: column \"%s\" value \"%.*s\": id %llu is not in the pack",
                                  name, c->name, vlen(fv), (const char *)fv->text,
                                  (unsigned long long)id);
            if (owner[r] != UINT32_MAX) {
                const ap_filter_value *o = &c->values[owner[r]];
                return ap_err_set(err, AP_ERR_VERIFY,
                                  "%s: column \"%s\": id %llu is in value \"%.*s\" and in "
                                  "value \"%.*s\"",
                                  name, c->name, (unsigned long long)id, vlen(o),
                                  (const char *)o->text, vlen(fv), (const char *)fv->text);
            }
            owner[r] = v;
        }
    }
    for (uint64_t i = 0; i < n; i++)
        if (owner[i] == UINT32_MAX) {
            uint64_t id, off, len;
            ap_meta_entry(m, i, &id, &off, &len);
            return ap_err_set(err, AP_ERR_VERIFY, "%s: column \"%s\": id %llu is in no value", name,
                              c->name, (unsigned long long)id);
        }
    return AP_OK;
}

/* Row i's value of every column is the value that lists it (owners[c][i]). */
static ap_status check_row(const ap_filter *f, const ap_meta *m, uint64_t i,
                           uint32_t *const *owners, const char *name, ap_err *err)
{
    uint64_t id, off, len;
    ap_meta_entry(m, i, &id, &off, &len);
    char *row = NULL;
    size_t rl = 0;
    cJSON *o = NULL;
    ap_status st = ap_meta_get(m, id, &row, &rl, err);
    if (!st) st = ap_json_parse_strict(row, rl, "row", &o, err);
    for (uint32_t c = 0; !st && c < f->n_cols; c++) {
        const ap_filter_col *col = &f->cols[c];
        const uint32_t *own = owners[c];
        if (!own) { /* not reached: every column's were allocated */
            st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
            break;
        }
        const ap_filter_value *fv = &col->values[own[i]];
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, col->name);
        if (!cJSON_IsString(v) || strlen(v->valuestring) != fv->len ||
            memcmp(v->valuestring, fv->text, fv->len) != 0)
            st = ap_err_set(
                err, AP_ERR_VERIFY,
                "%s: column \"%s\" value \"%.*s\" lists id %llu, whose row has %s%.200s%s", name,
                col->name, vlen(fv), (const char *)fv->text, (unsigned long long)id,
                cJSON_IsString(v) ? "\"" : "",
                cJSON_IsString(v) ? v->valuestring : "no such text column",
                cJSON_IsString(v) ? "\"" : "");
    }
    cJSON_Delete(o);
    free(row);
    return st;
}

ap_status ap_pack_check_filter(const ap_pack *p, const ap_checks *cx, ap_err *err)
{
    const ap_filter *f = ap_pack_filter(p);
    if (!f) return AP_OK;
    const ap_meta *m = ap_pack_meta(p);
    uint64_t n = ap_meta_count(m);
    char name[1100];
    snprintf(name, sizeof name, "%.800s/%s", ap_pack_dir(p), AP_FILTER);
    uint32_t **owners = calloc(f->n_cols, sizeof(uint32_t *));
    if (!owners) return ap_err_set(err, AP_ERR_NOMEM, "out of memory checking %s", name);
    ap_status st = AP_OK;
    for (uint32_t c = 0; !st && c < f->n_cols; c++) {
        if (!(owners[c] = malloc((n ? n : 1) * sizeof(uint32_t))))
            st = ap_err_set(err, AP_ERR_NOMEM, "out of memory checking %s", name);
        else
            st = check_ids(&f->cols[c], m, n, owners[c], name, err);
    }
    /* Every column's owners are set here (st is AP_OK only when all were allocated). */
    for (uint64_t i = 0; !st && i < n; i++) {
        st = check_row(f, m, i, (uint32_t *const *)owners, name, err);
        if (cx->progress && (i & 0xffff) == 0) cx->progress(cx->progress_ud, "verify filter", i, n);
    }
    for (uint32_t c = 0; c < f->n_cols; c++)
        free(owners[c]);
    free(owners);
    return st;
}
