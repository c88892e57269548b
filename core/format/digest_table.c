/* pack.digests: see digest_table.h and docs/FORMAT.md. */
#include <stdlib.h>
#include <string.h>

#include "digest_table.h"
#include "endian.h"

/* Reads entry i's name into out (NUL-terminated); AP_ERR_FORMAT unless it is 1..31
 * printable bytes without '/', followed only by NULs. */
static ap_status entry_name(const uint8_t *e, uint32_t i, const char *name, char *out, ap_err *err)
{
    size_t n = 0;
    while (n < AP_DIGEST_NAME && e[n])
        n++;
    if (n == 0 || n == AP_DIGEST_NAME)
        return ap_err_set(err, AP_ERR_FORMAT, "%s: file entry %u: name %s", name, i,
                          n ? "not NUL-terminated within 32 bytes" : "empty");
    for (size_t k = n; k < AP_DIGEST_NAME; k++)
        if (e[k])
            return ap_err_set(err, AP_ERR_FORMAT, "%s: file entry %u: bytes after the name's NUL",
                              name, i);
    for (size_t k = 0; k < n; k++)
        if (e[k] < 0x21 || e[k] > 0x7e || e[k] == '/')
            return ap_err_set(err, AP_ERR_FORMAT,
                              "%s: file entry %u: name byte %zu is not a printable non-slash "
                              "character",
                              name, i, k);
    memcpy(out, e, n + 1);
    return AP_OK;
}

/* The ranges of f must tile [0, f->size) in order. */
static ap_status check_tiling(const ap_digest_file *f, const char *name, ap_err *err)
{
    uint64_t at = 0;
    for (uint32_t k = 0; k < f->n_ranges; k++) {
        ap_digest_range r = ap_digest_range_at(f, k);
        if (r.off != at)
            return ap_err_set(err, AP_ERR_FORMAT,
                              "%s: %s: range %u starts at %llu, the previous one ends at %llu",
                              name, f->name, k, (unsigned long long)r.off, (unsigned long long)at);
        if (r.len > f->size - at)
            return ap_err_set(err, AP_ERR_FORMAT,
                              "%s: %s: range %u (%llu bytes at %llu) ends beyond the file's %llu "
                              "bytes",
                              name, f->name, k, (unsigned long long)r.len,
                              (unsigned long long)r.off, (unsigned long long)f->size);
        at += r.len;
    }
    if (at != f->size)
        return ap_err_set(err, AP_ERR_FORMAT, "%s: %s: ranges end at %llu, the file has %llu bytes",
                          name, f->name, (unsigned long long)at, (unsigned long long)f->size);
    return AP_OK;
}

ap_status ap_digest_table_parse(const uint8_t *buf, size_t len, const char *name,
                                ap_digest_table *t, ap_err *err)
{
    if (len > AP_DIGEST_MAX_BYTES)
        return ap_err_set(err, AP_ERR_LIMIT, "%s: %zu bytes, over the %u-byte cap", name, len,
                          AP_DIGEST_MAX_BYTES);
    if (len < AP_DIGEST_HEADER || memcmp(buf, AP_DIGEST_MAGIC, 8) != 0)
        return ap_err_set(err, AP_ERR_FORMAT, "%s: not a digest table (magic %s expected)", name,
                          AP_DIGEST_MAGIC);
    uint32_t version = ap_le32(buf + 8), n = ap_le32(buf + 12);
    if (version != AP_DIGEST_VERSION)
        return ap_err_set(err, AP_ERR_UNSUPPORTED, "%s: version %u not supported (need 1)", name,
                          version);
    if (n == 0 || n > AP_DIGEST_MAX_FILES)
        return ap_err_set(err, n ? AP_ERR_LIMIT : AP_ERR_FORMAT, "%s: n_files %u (need 1..%u)",
                          name, n, AP_DIGEST_MAX_FILES);
    uint64_t at = AP_DIGEST_HEADER + (uint64_t)n * AP_DIGEST_ENTRY;
    if (at > len)
        return ap_err_set(err, AP_ERR_FORMAT, "%s: %u file entries overrun its %zu bytes", name, n,
                          len);
    ap_digest_file *files = calloc(n, sizeof *files);
    if (!files) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    ap_status st = AP_OK;
    for (uint32_t i = 0; i < n && !st; i++) {
        const uint8_t *e = buf + AP_DIGEST_HEADER + (size_t)i * AP_DIGEST_ENTRY;
        ap_digest_file *f = &files[i];
        if ((st = entry_name(e, i, name, f->name, err))) break;
        if (i && strcmp(files[i - 1].name, f->name) >= 0) {
            st = ap_err_set(err, AP_ERR_FORMAT, "%s: file entry %u (%s) not after %s in name order",
                            name, i, f->name, files[i - 1].name);
            break;
        }
        f->size = ap_le64(e + 32);
        f->n_ranges = ap_le32(e + 40);
        uint64_t roff = ap_le64(e + 48);
        if (ap_le32(e + 44) || ap_le64(e + 56)) {
            st = ap_err_set(err, AP_ERR_FORMAT, "%s: %s: reserved fields are not zero", name,
                            f->name);
            break;
        }
        if (roff != at || f->n_ranges > (len - at) / AP_DIGEST_RANGE) {
            st = ap_err_set(err, AP_ERR_FORMAT,
                            "%s: %s: ranges_offset %llu (need %llu) or %u ranges overrun the "
                            "table's %zu bytes",
                            name, f->name, (unsigned long long)roff, (unsigned long long)at,
                            f->n_ranges, len);
            break;
        }
        f->ranges = buf + at;
        at += (uint64_t)f->n_ranges * AP_DIGEST_RANGE;
        st = check_tiling(f, name, err);
    }
    if (!st && at != len)
        st = ap_err_set(err, AP_ERR_FORMAT, "%s: %llu trailing bytes after the last range table",
                        name, (unsigned long long)(len - at));
    if (st) {
        free(files);
        return st;
    }
    t->n_files = n;
    t->files = files;
    return AP_OK;
}

void ap_digest_table_free(ap_digest_table *t)
{
    if (!t) return;
    free(t->files);
    t->files = NULL;
    t->n_files = 0;
}

const ap_digest_file *ap_digest_table_find(const ap_digest_table *t, const char *name)
{
    for (uint32_t i = 0; i < t->n_files; i++)
        if (strcmp(t->files[i].name, name) == 0) return &t->files[i];
    return NULL;
}

ap_digest_range ap_digest_range_at(const ap_digest_file *f, uint32_t k)
{
    const uint8_t *r = f->ranges + (size_t)k * AP_DIGEST_RANGE;
    return (ap_digest_range){.off = ap_le64(r), .len = ap_le64(r + 8), .sha256 = r + 16};
}

void ap_digest_overlap(const ap_digest_file *f, uint64_t off, uint64_t len, uint32_t *first,
                       uint32_t *end)
{
    *first = *end = 0;
    if (len == 0 || off >= f->size || f->n_ranges == 0) return;
    uint64_t last = len > f->size - off ? f->size - 1 : off + len - 1;
    /* The first range whose end lies beyond off (ranges tile the file in order). */
    uint32_t lo = 0, hi = f->n_ranges;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        ap_digest_range r = ap_digest_range_at(f, mid);
        if (r.off + r.len <= off)
            lo = mid + 1;
        else
            hi = mid;
    }
    uint32_t k = lo;
    while (k < f->n_ranges && ap_digest_range_at(f, k).off <= last)
        k++;
    *first = lo;
    *end = k;
}

ap_status ap_digest_check_chunks(const ap_digest_file *f, const char *name, ap_err *err)
{
    uint64_t want = (f->size + AP_DIGEST_CHUNK - 1) / AP_DIGEST_CHUNK;
    if (f->n_ranges != want)
        return ap_err_set(err, AP_ERR_FORMAT, "%s: %s: %u ranges, %llu chunks of %u bytes expected",
                          name, f->name, f->n_ranges, (unsigned long long)want, AP_DIGEST_CHUNK);
    for (uint32_t k = 0; k + 1 < f->n_ranges; k++)
        if (ap_digest_range_at(f, k).len != AP_DIGEST_CHUNK)
            return ap_err_set(err, AP_ERR_FORMAT, "%s: %s: range %u is not %u bytes", name, f->name,
                              k, AP_DIGEST_CHUNK);
    return AP_OK;
}

ap_status ap_digest_table_encode(const ap_digest_spec *files, size_t n, uint8_t **out,
                                 size_t *out_len, ap_err *err)
{
    *out = NULL;
    if (n == 0 || n > AP_DIGEST_MAX_FILES)
        return ap_err_set(err, AP_ERR_LIMIT, "%s: %zu files (need 1..%u)", AP_DIGESTS, n,
                          AP_DIGEST_MAX_FILES);
    uint64_t total = AP_DIGEST_HEADER + (uint64_t)n * AP_DIGEST_ENTRY;
    for (size_t i = 0; i < n; i++)
        total += (uint64_t)files[i].n_ranges * AP_DIGEST_RANGE;
    if (total > AP_DIGEST_MAX_BYTES)
        return ap_err_set(err, AP_ERR_LIMIT, "%s: %llu bytes, over the %u-byte cap", AP_DIGESTS,
                          (unsigned long long)total, AP_DIGEST_MAX_BYTES);
    uint8_t *b = calloc(1, (size_t)total);
    if (!b) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    memcpy(b, AP_DIGEST_MAGIC, 8);
    ap_put32(b + 8, AP_DIGEST_VERSION);
    ap_put32(b + 12, (uint32_t)n);
    uint64_t at = AP_DIGEST_HEADER + (uint64_t)n * AP_DIGEST_ENTRY;
    for (size_t i = 0; i < n; i++) {
        const ap_digest_spec *f = &files[i];
        uint8_t *e = b + AP_DIGEST_HEADER + i * AP_DIGEST_ENTRY;
        size_t nl = strlen(f->name);
        if (nl == 0 || nl >= AP_DIGEST_NAME) {
            free(b);
            return ap_err_set(err, AP_ERR_LIMIT, "%s: file name %s longer than %u bytes",
                              AP_DIGESTS, f->name, AP_DIGEST_NAME - 1);
        }
        memcpy(e, f->name, nl);
        ap_put64(e + 32, f->size);
        ap_put32(e + 40, f->n_ranges);
        ap_put64(e + 48, at);
        for (uint32_t k = 0; k < f->n_ranges; k++) {
            uint8_t *r = b + at + (uint64_t)k * AP_DIGEST_RANGE;
            ap_put64(r, f->off[k]);
            ap_put64(r + 8, f->len[k]);
            memcpy(r + 16, f->sha256[k], 32);
        }
        at += (uint64_t)f->n_ranges * AP_DIGEST_RANGE;
    }
    *out = b;
    *out_len = (size_t)total;
    return AP_OK;
}
