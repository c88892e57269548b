/* Writing pack.filter from the metadata rows of a pack directory: see filter_build.h. */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "annpack/meta.h"
#include "filter.h"
#include "filter_build.h"
#include "fsops.h"
#include "json.h"

ap_status ap_filter_cols_parse(const char *list, char ***cols, uint32_t *n, ap_err *err)
{
    *cols = NULL;
    *n = 0;
    char *copy = strdup(list);
    char **out = calloc(AP_FILTER_MAX_COLS, sizeof *out);
    if (!copy || !out) {
        free(copy);
        free(out);
        return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    }
    ap_status st = AP_OK;
    uint32_t k = 0;
    char *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t && !st; t = strtok_r(NULL, ",", &save)) {
        if (k == AP_FILTER_MAX_COLS)
            st = ap_err_set(err, AP_ERR_LIMIT, "--filter-cols: more than %u columns",
                            AP_FILTER_MAX_COLS);
        else if (!strcmp(t, "id"))
            st = ap_err_set(err, AP_ERR_ARG,
                            "--filter-cols: \"id\" is the document id, not a column to filter on");
        for (uint32_t i = 0; !st && i < k; i++)
            if (assert(out[i]), !strcmp(out[i], t))
                st = ap_err_set(err, AP_ERR_ARG, "--filter-cols: column \"%s\" twice", t);
        if (!st && !(out[k++] = strdup(t))) st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    }
    if (!st && k == 0) st = ap_err_set(err, AP_ERR_ARG, "--filter-cols: no column named");
    free(copy);
    if (st) {
        ap_filter_cols_free(out, k);
        return st;
    }
    *cols = out;
    *n = k;
    return AP_OK;
}

void ap_filter_cols_free(char **cols, uint32_t n)
{
    for (uint32_t i = 0; cols && i < n; i++)
        free(cols[i]);
    free(cols);
}

/* One row's values of every column into pairs[c][at]. */
static ap_status row_values(const char *row, size_t len, uint64_t id, char **cols, uint32_t nc,
                            ap_filter_pair **pairs, size_t at, ap_err *err)
{
    cJSON *o = NULL;
    ap_status st = ap_json_parse_strict(row, len, "row", &o, err);
    for (uint32_t c = 0; !st && c < nc; c++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, cols[c]);
        if (!cJSON_IsString(v))
            st = ap_err_set(err, AP_ERR_NOTFOUND,
                            "filter column \"%s\": not a text column of the rows (row of id %llu)",
                            cols[c], (unsigned long long)id);
        else if (assert(pairs[c]), !(pairs[c][at].value = strdup(v->valuestring)))
            st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        else
            pairs[c][at].id = id;
    }
    cJSON_Delete(o);
    return st;
}

ap_status ap_filter_build(const char *dir, char **cols, uint32_t nc, ap_err *err)
{
    ap_meta *m = NULL;
    ap_status st = ap_meta_open(dir, &m, err);
    if (st) return st;
    uint64_t n = ap_meta_count(m);
    ap_filter_pair **pairs = calloc(nc, sizeof(ap_filter_pair *));
    size_t *np = calloc(nc, sizeof *np);
    char *path = ap_path_join(dir, AP_FILTER);
    if (!pairs || !np || !path) {
        free(pairs);
        free(np);
        free(path);
        ap_meta_close(m);
        return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    }
    if (!st && n > UINT32_MAX)
        st = ap_err_set(err, AP_ERR_LIMIT, "%llu rows: filters hold at most 2^32 - 1",
                        (unsigned long long)n);
    for (uint32_t c = 0; !st && c < nc; c++)
        if (!(pairs[c] = calloc(n ? n : 1, sizeof *pairs[c])))
            st = ap_err_set(err, AP_ERR_NOMEM, "out of memory for %llu filter values",
                            (unsigned long long)n);
    for (uint64_t i = 0; !st && i < n; i++) {
        uint64_t id, off, len;
        ap_meta_entry(m, i, &id, &off, &len);
        char *row = NULL;
        size_t rl = 0;
        if (!(st = ap_meta_get(m, id, &row, &rl, err)))
            st = row_values(row, rl, id, cols, nc, pairs, (size_t)i, err);
        free(row);
        for (uint32_t c = 0; c < nc; c++)
            np[c] = (size_t)i + 1;
    }
    if (!st) st = ap_filter_write(path, (const char *const *)cols, pairs, np, nc, err);
    for (uint32_t c = 0; c < nc; c++) {
        for (size_t i = 0; pairs[c] && i < np[c]; i++)
            free((char *)(uintptr_t)pairs[c][i].value);
        free(pairs[c]);
    }
    free(pairs);
    free(np);
    free(path);
    ap_meta_close(m);
    return st;
}

char *ap_filter_cols_join(const ap_filter *f)
{
    if (!f) return NULL;
    size_t len = 1;
    for (uint32_t i = 0; i < f->n_cols; i++)
        len += strlen(f->cols[i].name) + 1;
    char *s = malloc(len);
    if (!s) return NULL;
    s[0] = '\0';
    for (uint32_t i = 0; i < f->n_cols; i++) {
        if (i) strcat(s, ",");
        strcat(s, f->cols[i].name);
    }
    return s;
}

ap_status ap_filter_build_like(const char *dir, const ap_filter *f, ap_err *err)
{
    char **cols = malloc(f->n_cols * sizeof *cols);
    if (!cols) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    for (uint32_t i = 0; i < f->n_cols; i++)
        cols[i] = f->cols[i].name;
    ap_status st = ap_filter_build(dir, cols, f->n_cols, err);
    free(cols);
    return st;
}
