/* pack.filter: see filter.h. Layout (little-endian), docs/FORMAT.md:
 *   "ANNPFLT1", u32 version = 1, u32 n_cols,
 *   per column: u16 name_len, name, u32 n_values,
 *     per value: u16 len, bytes, u32 count, count x u64 id (ascending). */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "endian.h"
#include "filter.h"
#include "fsops.h"

typedef struct cursor {
    const uint8_t *p;
    size_t left;
} cursor;

static bool take(cursor *c, size_t n, const uint8_t **out)
{
    if (c->left < n) return false;
    *out = c->p;
    c->p += n;
    c->left -= n;
    return true;
}

static int cmp_bytes(const uint8_t *a, uint32_t al, const uint8_t *b, uint32_t bl)
{
    int r = memcmp(a, b, al < bl ? al : bl);
    return r ? r : (al > bl) - (al < bl);
}

static ap_status parse_col(cursor *c, const char *name, uint32_t ci, ap_filter_col *col,
                           ap_err *err)
{
    const uint8_t *p;
    if (!take(c, 2, &p)) goto trunc;
    uint32_t nl = (uint32_t)p[0] | (uint32_t)p[1] << 8;
    const uint8_t *np;
    if (nl == 0 || !take(c, nl, &np) || !take(c, 4, &p)) goto trunc;
    if (memchr(np, 0, nl))
        return ap_err_set(err, AP_ERR_FORMAT, "%s: column %u name holds a NUL byte", name, ci);
    if (!(col->name = malloc(nl + 1ull))) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    memcpy(col->name, np, nl);
    col->name[nl] = '\0';
    col->n_values = ap_le32(p);
    if (col->n_values > c->left / 6)
        return ap_err_set(err, AP_ERR_FORMAT, "%s: column \"%s\": %u values cannot fit", name,
                          col->name, col->n_values);
    if (!(col->values = calloc(col->n_values ? col->n_values : 1, sizeof *col->values)))
        return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    for (uint32_t v = 0; v < col->n_values; v++) {
        ap_filter_value *fv = &col->values[v];
        if (!take(c, 2, &p)) goto trunc;
        fv->len = (uint32_t)p[0] | (uint32_t)p[1] << 8;
        if (!take(c, fv->len, &fv->text) || !take(c, 4, &p)) goto trunc;
        fv->count = ap_le32(p);
        if (fv->count == 0 || fv->count > c->left / 8 || !take(c, 8ull * fv->count, &fv->ids))
            return ap_err_set(err, AP_ERR_FORMAT,
                              "%s: column \"%s\" value %u: %u ids (none, or past the end)", name,
                              col->name, v, fv->count);
        if (v && cmp_bytes(col->values[v - 1].text, col->values[v - 1].len, fv->text, fv->len) >= 0)
            return ap_err_set(err, AP_ERR_FORMAT,
                              "%s: column \"%s\": values not in ascending byte order at %u", name,
                              col->name, v);
        for (uint32_t i = 1; i < fv->count; i++)
            if (ap_le64(fv->ids + 8ull * (i - 1)) >= ap_le64(fv->ids + 8ull * i))
                return ap_err_set(err, AP_ERR_FORMAT,
                                  "%s: column \"%s\" value %u: ids not strictly ascending", name,
                                  col->name, v);
    }
    return AP_OK;
trunc:
    return ap_err_set(err, AP_ERR_FORMAT, "%s: truncated in column %u", name, ci);
}

ap_status ap_filter_parse(uint8_t *bytes, size_t len, const char *name, ap_filter *f, ap_err *err)
{
    memset(f, 0, sizeof *f);
    f->bytes = bytes;
    f->len = len;
    cursor c = {bytes, len};
    const uint8_t *p;
    if (!take(&c, 16, &p) || memcmp(p, AP_FILTER_MAGIC, 8) != 0)
        return ap_err_set(err, AP_ERR_FORMAT, "%s: not a filter file (magic %s)", name,
                          AP_FILTER_MAGIC);
    if (ap_le32(p + 8) != 1)
        return ap_err_set(err, AP_ERR_UNSUPPORTED, "%s: filter version %u not supported (need 1)",
                          name, ap_le32(p + 8));
    uint32_t nc = ap_le32(p + 12);
    if (nc == 0 || nc > AP_FILTER_MAX_COLS)
        return ap_err_set(err, AP_ERR_FORMAT, "%s: %u columns; 1 to %u", name, nc,
                          AP_FILTER_MAX_COLS);
    if (!(f->cols = calloc(nc, sizeof *f->cols)))
        return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    f->n_cols = nc;
    for (uint32_t i = 0; i < nc; i++) {
        ap_status st = parse_col(&c, name, i, &f->cols[i], err);
        if (st) return st;
        assert(f->cols[i].name); /* parse_col set it or failed */
        for (uint32_t j = 0; j < i; j++)
            if (strcmp(f->cols[j].name, f->cols[i].name) == 0)
                return ap_err_set(err, AP_ERR_FORMAT, "%s: column \"%s\" twice", name,
                                  f->cols[i].name);
    }
    if (c.left)
        return ap_err_set(err, AP_ERR_FORMAT, "%s: %zu bytes after the last column", name, c.left);
    return AP_OK;
}

void ap_filter_free(ap_filter *f)
{
    for (uint32_t i = 0; f->cols && i < f->n_cols; i++) {
        free(f->cols[i].name);
        free(f->cols[i].values);
    }
    free(f->cols);
    free(f->bytes);
    memset(f, 0, sizeof *f);
}

const ap_filter_col *ap_filter_col_find(const ap_filter *f, const char *col)
{
    for (uint32_t i = 0; i < f->n_cols; i++)
        if (strcmp(f->cols[i].name, col) == 0) return &f->cols[i];
    return NULL;
}

const ap_filter_value *ap_filter_value_find(const ap_filter_col *c, const char *val, size_t len)
{
    uint32_t lo = 0, hi = c->n_values;
    if (len > UINT16_MAX) return NULL;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int r =
            cmp_bytes(c->values[mid].text, c->values[mid].len, (const uint8_t *)val, (uint32_t)len);
        if (r == 0) return &c->values[mid];
        if (r < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

bool ap_filter_value_has(const ap_filter_value *v, uint64_t id)
{
    uint32_t lo = 0, hi = v->count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        uint64_t x = ap_le64(v->ids + 8ull * mid);
        if (x == id) return true;
        if (x < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

bool ap_filter_value_has_near(const ap_filter_value *v, uint64_t id, uint32_t *hint)
{
    const uint32_t n = v->count; /* >= 1 (the reader refuses empty sets) */
    const uint32_t h = *hint < n ? *hint : 0;
#define AT(i) ap_le64(v->ids + 8ull * (i))
    uint64_t x = AT(h);
    *hint = h;
    if (x == id) return true;
    /* [lo, hi) holds the first index whose id is >= id. */
    uint32_t lo, hi;
    if (x < id) {
        lo = h + 1;
        hi = n;
        for (uint64_t b = 1; (uint64_t)h + b < n; b <<= 1) {
            if (AT(h + b) >= id) {
                hi = (uint32_t)(h + b) + 1;
                break;
            }
            lo = (uint32_t)(h + b) + 1;
        }
    } else {
        lo = 0;
        hi = h;
        for (uint64_t b = 1; b <= h; b <<= 1) {
            if (AT(h - b) <= id) {
                lo = (uint32_t)(h - b);
                break;
            }
            hi = (uint32_t)(h - b);
        }
    }
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (AT(mid) < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    *hint = lo < n ? lo : n - 1;
    return lo < n && AT(lo) == id;
#undef AT
}

static int cmp_pair(const void *a, const void *b)
{
    const ap_filter_pair *x = a, *y = b;
    int r = strcmp(x->value, y->value);
    if (r) return r;
    return (x->id > y->id) - (x->id < y->id);
}

static bool put(uint8_t **buf, size_t *len, size_t *cap, const void *data, size_t n)
{
    if (*len + n > *cap) {
        size_t nc = *cap ? *cap : 4096;
        while (nc < *len + n)
            nc *= 2;
        uint8_t *nb = realloc(*buf, nc);
        if (!nb) return false;
        *buf = nb;
        *cap = nc;
    }
    memcpy(*buf + *len, data, n);
    *len += n;
    return true;
}

static bool put_u(uint8_t **buf, size_t *len, size_t *cap, uint64_t v, int bytes)
{
    uint8_t b[8];
    for (int i = 0; i < bytes; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    return put(buf, len, cap, b, (size_t)bytes);
}

ap_status ap_filter_write(const char *path, const char *const *names, ap_filter_pair **pairs,
                          const size_t *npairs, uint32_t n_cols, ap_err *err)
{
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    bool ok = put(&buf, &len, &cap, AP_FILTER_MAGIC, 8) && put_u(&buf, &len, &cap, 1, 4) &&
              put_u(&buf, &len, &cap, n_cols, 4);
    ap_status st = AP_OK;
    for (uint32_t c = 0; ok && !st && c < n_cols; c++) {
        ap_filter_pair *pr = pairs[c];
        size_t n = npairs[c];
        qsort(pr, n, sizeof *pr, cmp_pair);
        size_t nvals = 0;
        for (size_t i = 0; i < n; i++) {
            if (i && strcmp(pr[i].value, pr[i - 1].value) == 0 && pr[i].id == pr[i - 1].id) {
                st = ap_err_set(err, AP_ERR_FORMAT, "%s: id %llu twice in column \"%s\"", path,
                                (unsigned long long)pr[i].id, names[c]);
                break;
            }
            if (strlen(pr[i].value) > UINT16_MAX) {
                st = ap_err_set(err, AP_ERR_LIMIT,
                                "column \"%s\" of id %llu: a filter value longer than %u bytes",
                                names[c], (unsigned long long)pr[i].id, UINT16_MAX);
                break;
            }
            nvals += !i || strcmp(pr[i].value, pr[i - 1].value) != 0;
        }
        size_t nl = strlen(names[c]);
        ok = !st && nl <= UINT16_MAX && put_u(&buf, &len, &cap, nl, 2) &&
             put(&buf, &len, &cap, names[c], nl) && put_u(&buf, &len, &cap, nvals, 4);
        for (size_t i = 0; ok && !st && i < n;) {
            size_t j = i;
            while (j < n && strcmp(pr[j].value, pr[i].value) == 0)
                j++;
            size_t vl = strlen(pr[i].value);
            ok = put_u(&buf, &len, &cap, vl, 2) && put(&buf, &len, &cap, pr[i].value, vl) &&
                 put_u(&buf, &len, &cap, j - i, 4);
            for (size_t t = i; ok && t < j; t++)
                ok = put_u(&buf, &len, &cap, pr[t].id, 8);
            i = j;
        }
    }
    if (!st && !ok) st = ap_err_set(err, AP_ERR_NOMEM, "out of memory writing %s", path);
    if (!st) st = ap_write_file(path, buf, len, err);
    free(buf);
    return st;
}
