/* Reading the metadata row store: see include/annpack/meta.h, meta_format.h (the layout)
 * and docs/FORMAT.md; the writer is meta_write.c. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zstd.h>

#include "annpack/caps.h"
#include "annpack/meta.h"
#include "endian.h"
#include "fsops.h"
#include "json.h"
#include "mapping.h"

#include "meta_format.h"

struct ap_meta {
    char *path;
    int zst;
    const uint8_t *map;
    size_t map_len;
    uint64_t stream_size;
    uint32_t nframes;
    uint64_t *c_off, *d_off; /* nframes + 1 prefix sums */
    uint64_t max_frame;
    const uint8_t *idx; /* mapped idx entries, or NULL */
    size_t idx_map_len;
    ap_idx_entry *heap; /* entries built by scanning when there is no idx */
    uint64_t count;
    uint64_t serial;         /* distinguishes readers in the per-thread frame cache */
    ap_bytes_guard_fn guard; /* checks rows bytes before their first use, or NULL */
    const void *guard_ctx;
};

void ap_meta_set_guard(struct ap_meta *m, ap_bytes_guard_fn fn, const void *ctx)
{
    m->guard = fn;
    m->guard_ctx = ctx;
}

static atomic_uint_fast64_t g_serial = 1;

static ap_status map_fd(int fd, uint64_t size, const char *path, const uint8_t **map, size_t *len,
                        ap_err *err)
{
    *len = (size_t)size;
    *map = NULL;
    if (*len) {
        void *m = mmap(NULL, *len, PROT_READ, MAP_SHARED, fd, 0);
        if (m == MAP_FAILED) return ap_err_errno(err, AP_ERR_IO, errno, "%s: mmap", path);
        *map = m;
    }
    return AP_OK;
}

static ap_status parse_seek_table(ap_meta *m, ap_err *err)
{
    const ap_caps *caps = ap_caps_get();
    const char *p = m->path;
    if (m->map_len < AP_META_FOOTER_BYTES + 8)
        return ap_err_set(err, AP_ERR_FORMAT, "%s: truncated (no seek table)", p);
    const uint8_t *f = m->map + m->map_len - AP_META_FOOTER_BYTES;
    if (ap_le32(f + 5) != AP_META_SEEKABLE_MAGIC)
        return ap_err_set(err, AP_ERR_FORMAT, "%s: no zstd seekable footer (wrong magic)", p);
    uint8_t desc = f[4];
    if (desc & 0x7c) return ap_err_set(err, AP_ERR_FORMAT, "%s: seek table reserved bits set", p);
    size_t es = (desc & 0x80) ? 12 : 8;
    uint64_t nf = ap_le32(f);
    if (nf > (m->map_len - AP_META_FOOTER_BYTES - 8) / es)
        return ap_err_set(err, AP_ERR_FORMAT, "%s: seek table claims %llu frames", p,
                          (unsigned long long)nf);
    uint64_t tsize = 8 + nf * es + AP_META_FOOTER_BYTES;
    const uint8_t *t = m->map + m->map_len - tsize;
    if (ap_le32(t) != AP_META_SKIPPABLE_MAGIC || ap_le32(t + 4) != tsize - 8)
        return ap_err_set(err, AP_ERR_FORMAT, "%s: malformed seek table frame header", p);
    m->nframes = (uint32_t)nf;
    m->c_off = malloc((nf + 1) * sizeof *m->c_off);
    m->d_off = malloc((nf + 1) * sizeof *m->d_off);
    if (!m->c_off || !m->d_off) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    uint64_t c = 0, d = 0, frame_cap = caps->meta_max_line + 1;
    if (frame_cap < AP_META_FRAME_TARGET) frame_cap = AP_META_FRAME_TARGET;
    for (uint64_t i = 0; i < nf; i++) {
        uint64_t cs = ap_le32(t + 8 + es * i), ds = ap_le32(t + 12 + es * i);
        m->c_off[i] = c;
        m->d_off[i] = d;
        if (cs == 0 || cs > m->map_len - tsize - c)
            return ap_err_set(err, AP_ERR_FORMAT, "%s: frame %llu overruns the file", p,
                              (unsigned long long)i);
        if (ds > frame_cap && !caps->allow_large_meta)
            return ap_err_set(err, AP_ERR_LIMIT,
                              "%s: frame %llu holds %llu bytes, over ANNPACK_META_MAX_LINE (%llu)",
                              p, (unsigned long long)i, (unsigned long long)ds,
                              (unsigned long long)caps->meta_max_line);
        /* Each frame is checked against its entry when it is first read (get_frame),
         * after its bytes are verified: opening reads the seek table only, so a large
         * metadata file is neither read nor mapped in at open. */
        if (ds > m->max_frame) m->max_frame = ds;
        c += cs;
        d += ds;
    }
    m->c_off[nf] = c;
    m->d_off[nf] = d;
    if (c != m->map_len - tsize)
        return ap_err_set(err, AP_ERR_FORMAT, "%s: frames cover %llu bytes, file holds %llu", p,
                          (unsigned long long)c, (unsigned long long)(m->map_len - tsize));
    m->stream_size = d;
    return AP_OK;
}

/* Per-thread cache of the last decompressed frame: reading rows in order costs one
 * decompression per frame, and readers stay lock-free. */
typedef struct frame_cache {
    uint64_t serial;
    uint32_t frame;
    char *buf;
    size_t cap, len;
    ZSTD_DCtx *dctx;
} frame_cache;

static pthread_key_t g_cache_key;
static pthread_once_t g_cache_once = PTHREAD_ONCE_INIT;

static void cache_free(void *p)
{
    frame_cache *c = p;
    if (!c) return;
    ZSTD_freeDCtx(c->dctx);
    free(c->buf);
    free(c);
}

static void cache_key_init(void)
{
    pthread_key_create(&g_cache_key, cache_free);
}

static ap_status get_frame(const ap_meta *m, uint32_t i, const char **data, size_t *len,
                           ap_err *err)
{
    pthread_once(&g_cache_once, cache_key_init);
    frame_cache *c = pthread_getspecific(g_cache_key);
    if (!c) {
        c = calloc(1, sizeof *c);
        if (!c || !(c->dctx = ZSTD_createDCtx())) {
            free(c);
            return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        }
        pthread_setspecific(g_cache_key, c);
    }
    if (c->serial == m->serial && c->frame == i) {
        *data = c->buf;
        *len = c->len;
        return AP_OK;
    }
    size_t ds = (size_t)(m->d_off[i + 1] - m->d_off[i]);
    size_t cs = (size_t)(m->c_off[i + 1] - m->c_off[i]);
    if (ds > c->cap) {
        char *nb = realloc(c->buf, ds);
        if (!nb) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        c->buf = nb;
        c->cap = ds;
    }
    c->serial = 0;
    ap_status gst = m->guard ? m->guard(m->guard_ctx, m->c_off[i], cs, err) : AP_OK;
    if (gst) return gst;
    /* Checked against its seek table entry here, after its bytes are verified, not at
     * open: opening reads the seek table only. */
    const uint8_t *fr = m->map + m->c_off[i];
    unsigned long long content = ZSTD_getFrameContentSize(fr, cs);
    size_t fsz = ZSTD_findFrameCompressedSize(fr, cs);
    if (content != ds || ZSTD_isError(fsz) || fsz != cs)
        return ap_err_set(err, AP_ERR_FORMAT, "%s: frame %u does not match its seek table entry",
                          m->path, i);
    size_t r = ZSTD_decompressDCtx(c->dctx, c->buf, ds, fr, cs);
    if (ZSTD_isError(r) || r != ds)
        return ap_err_set(err, AP_ERR_FORMAT, "%s: frame %u does not decompress: %s", m->path, i,
                          ZSTD_isError(r) ? ZSTD_getErrorName(r) : "wrong size");
    c->serial = m->serial;
    c->frame = i;
    c->len = ds;
    *data = c->buf;
    *len = ds;
    return AP_OK;
}

ap_status ap_meta_read_stream(const ap_meta *m, uint64_t offset, void *buf, size_t len, ap_err *err)
{
    if (offset > m->stream_size || len > m->stream_size - offset)
        return ap_err_set(err, AP_ERR_ARG,
                          "%s: read of %zu bytes at %llu outside the %llu-byte rows", m->path, len,
                          (unsigned long long)offset, (unsigned long long)m->stream_size);
    if (!m->zst) {
        ap_status gst = m->guard ? m->guard(m->guard_ctx, offset, len, err) : AP_OK;
        if (gst) return gst;
        if (len) memcpy(buf, m->map + offset, len);
        return AP_OK;
    }
    uint8_t *out = buf;
    if (len && m->nframes == 0)
        return ap_err_set(err, AP_ERR_INTERNAL, "%s: rows without frames", m->path);
    while (len) {
        uint32_t lo = 0, hi = m->nframes;
        while (hi - lo > 1) {
            uint32_t mid = (lo + hi) / 2;
            if (m->d_off[mid] <= offset)
                lo = mid;
            else
                hi = mid;
        }
        const char *data = NULL;
        size_t dl = 0;
        ap_status st = get_frame(m, lo, &data, &dl, err);
        if (st) return st;
        if (!data) return ap_err_set(err, AP_ERR_INTERNAL, "%s: frame %u unavailable", m->path, lo);
        size_t in = (size_t)(offset - m->d_off[lo]);
        size_t n = dl - in < len ? dl - in : len;
        memcpy(out, data + in, n);
        out += n;
        offset += n;
        len -= n;
    }
    return AP_OK;
}

static void entry_at(const ap_meta *m, uint64_t i, ap_idx_entry *e)
{
    if (m->heap) {
        *e = m->heap[i];
    } else if (m->idx) {
        const uint8_t *p = m->idx + 16 + 24 * i;
        e->id = ap_le64(p);
        e->off = ap_le64(p + 8);
        e->len = ap_le64(p + 16);
    } else {
        *e = (ap_idx_entry){0};
    }
}

static ap_status check_idx(ap_meta *m, const char *idx_path, ap_err *err)
{
    const ap_caps *caps = ap_caps_get();
    if (m->idx_map_len < 16 || memcmp(m->idx, AP_META_IDX_MAGIC, 8) != 0)
        return ap_err_set(err, AP_ERR_FORMAT, "%s: not an annpack id index (wrong magic)",
                          idx_path);
    uint64_t n = ap_le64(m->idx + 8);
    if (n > (m->idx_map_len - 16) / 24 || 16 + 24 * n != m->idx_map_len)
        return ap_err_set(err, AP_ERR_FORMAT, "%s: size %zu does not fit %llu entries", idx_path,
                          m->idx_map_len, (unsigned long long)n);
    m->count = n;
    ap_idx_entry prev = {0};
    for (uint64_t i = 0; i < n; i++) {
        ap_idx_entry e;
        entry_at(m, i, &e);
        if (i && e.id <= prev.id)
            return ap_err_set(err, AP_ERR_FORMAT, "%s: ids not strictly ascending at entry %llu",
                              idx_path, (unsigned long long)i);
        if (e.off > m->stream_size || e.len > m->stream_size - e.off)
            return ap_err_set(err, AP_ERR_FORMAT,
                              "%s: entry %llu (id %llu) points outside the %llu bytes of rows "
                              "that %s holds",
                              idx_path, (unsigned long long)i, (unsigned long long)e.id,
                              (unsigned long long)m->stream_size, m->path);
        if (e.len > caps->meta_max_line)
            return ap_err_set(
                err, AP_ERR_LIMIT,
                "%s: row of id %llu is %llu bytes, exceeds ANNPACK_META_MAX_LINE (%llu)", idx_path,
                (unsigned long long)e.id, (unsigned long long)e.len,
                (unsigned long long)caps->meta_max_line);
        prev = e;
    }
    return AP_OK;
}

/* Builds the index by scanning every row: each must be a JSON object with an integer id. */
static ap_status scan_rows(ap_meta *m, ap_err *err)
{
    const ap_caps *caps = ap_caps_get();
    size_t cap = 1024, n = 0;
    m->heap = malloc(cap * sizeof *m->heap);
    if (!m->heap) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    uint64_t line = 0, off = 0;
    uint32_t frames = m->zst ? m->nframes : 1;
    for (uint32_t f = 0; f < frames; f++) {
        const char *data;
        size_t dl;
        if (m->zst) {
            ap_status st = get_frame(m, f, &data, &dl, err);
            if (st) return st;
        } else {
            data = (const char *)m->map;
            dl = m->map_len;
            if (!data) break; /* an empty file maps nothing */
        }
        size_t pos = 0;
        while (pos < dl) {
            const char *nl = memchr(data + pos, '\n', dl - pos);
            size_t len = nl ? (size_t)(nl - (data + pos)) : dl - pos;
            line++;
            if (!nl && m->zst && f + 1 < frames)
                return ap_err_set(err, AP_ERR_FORMAT, "%s:%llu: row split across frames", m->path,
                                  (unsigned long long)line);
            if (len > caps->meta_max_line)
                return ap_err_set(err, AP_ERR_LIMIT,
                                  "%s:%llu: row is %zu bytes, exceeds ANNPACK_META_MAX_LINE (%llu)",
                                  m->path, (unsigned long long)line, len,
                                  (unsigned long long)caps->meta_max_line);
            char what[300];
            snprintf(what, sizeof what, "%.250s:%llu", m->path, (unsigned long long)line);
            cJSON *j = NULL;
            ap_status st = ap_json_parse_strict(data + pos, len, what, &j, err);
            if (st) return st;
            const cJSON *idit =
                cJSON_IsObject(j) ? cJSON_GetObjectItemCaseSensitive(j, "id") : NULL;
            uint64_t id = 0;
            char w2[320];
            snprintf(w2, sizeof w2, "%s: \"id\"", what);
            st = idit
                     ? ap_json_item_u64(idit, AP_JSON_MAX_SAFE_INT, w2, &id, err)
                     : ap_err_set(err, AP_ERR_FORMAT, "%s: not a JSON object with an \"id\"", what);
            cJSON_Delete(j);
            if (st) return st;
            if (n == cap) {
                cap *= 2;
                ap_idx_entry *nh = realloc(m->heap, cap * sizeof *nh);
                if (!nh) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
                m->heap = nh;
            }
            m->heap[n++] = (ap_idx_entry){id, off + pos, len};
            pos += len + (nl ? 1 : 0);
        }
        off += dl;
    }
    qsort(m->heap, n, sizeof *m->heap, ap_meta_cmp_entry_id);
    for (size_t i = 1; i < n; i++)
        if (m->heap[i].id == m->heap[i - 1].id)
            return ap_err_set(err, AP_ERR_FORMAT, "%s: duplicate id %llu", m->path,
                              (unsigned long long)m->heap[i].id);
    m->count = n;
    return AP_OK;
}

ap_status ap_meta_open_fds(const ap_meta_file *rows, const ap_meta_file *idx, ap_meta **out,
                           ap_err *err)
{
    *out = NULL;
    const ap_caps *caps = ap_caps_get();
    const char *rows_path = rows->name;
    ap_meta *m = calloc(1, sizeof *m);
    if (!m || !(m->path = strdup(rows_path))) {
        free(m);
        return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    }
    m->serial = atomic_fetch_add(&g_serial, 1);
    size_t pl = strlen(rows_path);
    m->zst = pl > 4 && strcmp(rows_path + pl - 4, ".zst") == 0;
    ap_status st = map_fd(rows->fd, rows->size, rows_path, &m->map, &m->map_len, err);
    if (st) goto out;
    if (m->zst) {
        if ((st = parse_seek_table(m, err))) goto out;
    } else {
        m->stream_size = m->map_len;
    }
    if (m->stream_size > caps->max_meta_bytes) {
        st = ap_err_set(err, AP_ERR_LIMIT,
                        "%s: %llu bytes of rows exceed ANNPACK_MAX_META_BYTES (%llu)", rows_path,
                        (unsigned long long)m->stream_size,
                        (unsigned long long)caps->max_meta_bytes);
        goto out;
    }
    if (idx) {
        if ((st = map_fd(idx->fd, idx->size, idx->name, &m->idx, &m->idx_map_len, err))) goto out;
        if (!m->idx) {
            st = ap_err_set(err, AP_ERR_FORMAT, "%s: empty file", idx->name);
            goto out;
        }
        st = check_idx(m, idx->name, err);
        /* Checking read every entry; lookups touch a few pages each. */
        if (!st) ap_mapping_release(m->idx, m->idx_map_len);
    } else {
        st = scan_rows(m, err);
    }
out:
    if (st) {
        ap_meta_close(m);
        return st;
    }
    *out = m;
    return AP_OK;
}

ap_status ap_meta_open_files(const char *rows_path, const char *idx_path, ap_meta **out,
                             ap_err *err)
{
    *out = NULL;
    ap_meta_file rows = {.fd = -1, .name = rows_path}, idx = {.fd = -1, .name = idx_path};
    ap_status st = ap_open_regular(rows_path, &rows.fd, &rows.size, err);
    if (!st && idx_path) st = ap_open_regular(idx_path, &idx.fd, &idx.size, err);
    if (!st) st = ap_meta_open_fds(&rows, idx_path ? &idx : NULL, out, err);
    if (rows.fd >= 0) close(rows.fd);
    if (idx.fd >= 0) close(idx.fd);
    return st;
}

ap_status ap_meta_open(const char *dir, ap_meta **out, ap_err *err)
{
    char *zst = ap_path_join(dir, AP_META_ZST), *plain = ap_path_join(dir, AP_META_JSONL),
         *idx = ap_path_join(dir, AP_META_IDX);
    ap_status st;
    if (!zst || !plain || !idx) {
        st = ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    } else {
        const char *rows = access(zst, F_OK) == 0 ? zst : plain;
        st = ap_meta_open_files(rows, access(idx, F_OK) == 0 ? idx : NULL, out, err);
    }
    free(zst);
    free(plain);
    free(idx);
    return st;
}

uint64_t ap_meta_count(const ap_meta *m)
{
    return m->count;
}

uint64_t ap_meta_stream_size(const ap_meta *m)
{
    return m->stream_size;
}

void ap_meta_entry(const ap_meta *m, uint64_t i, uint64_t *id, uint64_t *offset, uint64_t *len)
{
    ap_idx_entry e;
    entry_at(m, i, &e);
    *id = e.id;
    *offset = e.off;
    *len = e.len;
}

/* The row an index entry points at must carry that id: an index altered alongside an
 * unsigned manifest would otherwise serve another document's row. */
static ap_status check_row_id(const ap_meta *m, const char *row, size_t len, uint64_t id,
                              ap_err *err)
{
    /* The rows of a vector pack are {"id":N}: read without the parser (its verdict). */
    uint64_t plain;
    if (ap_json_plain_id_row(row, len, &plain) && plain == id) return AP_OK;
    char what[300];
    snprintf(what, sizeof what, "%.250s: row of id %llu", m->path, (unsigned long long)id);
    cJSON *j = NULL;
    ap_status st = ap_json_parse_strict(row, len, what, &j, err);
    if (st) return st;
    const cJSON *it = cJSON_IsObject(j) ? cJSON_GetObjectItemCaseSensitive(j, "id") : NULL;
    uint64_t got = 0;
    st = it ? ap_json_item_u64(it, AP_JSON_MAX_SAFE_INT, what, &got, err)
            : ap_err_set(err, AP_ERR_VERIFY, "%s: not an object with an \"id\"", what);
    cJSON_Delete(j);
    if (!st && got != id)
        st = ap_err_set(err, AP_ERR_VERIFY, "%s: the index points at the row of id %llu", what,
                        (unsigned long long)got);
    return st;
}

/* The index entry of id: true and *e, or false. */
static bool find_entry(const ap_meta *m, uint64_t id, ap_idx_entry *e)
{
    uint64_t lo = 0, hi = m->count;
    *e = (ap_idx_entry){0};
    /* Ids that are row numbers (vector packs, default ids) sit at their own index: one
     * probe instead of a binary search whose ~log2(n) steps each miss the cache. */
    if (id < m->count) {
        entry_at(m, id, e);
        if (e->id == id) lo = hi = id;
    }
    while (lo < hi) {
        uint64_t mid = (lo + hi) / 2;
        entry_at(m, mid, e);
        if (e->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < m->count) entry_at(m, lo, e);
    return lo < m->count && e->id == id;
}

bool ap_meta_has(const ap_meta *m, uint64_t id)
{
    ap_idx_entry e;
    return find_entry(m, id, &e);
}

ap_status ap_meta_get(const ap_meta *m, uint64_t id, char **row, size_t *len, ap_err *err)
{
    *row = NULL;
    ap_idx_entry e;
    if (!find_entry(m, id, &e))
        return ap_err_set(err, AP_ERR_NOTFOUND, "%s: no row for id %llu", m->path,
                          (unsigned long long)id);
    /* Read the row plus the byte after it, which must end the line. */
    int has_next = e.off + e.len < m->stream_size;
    char *buf = malloc(e.len + 2);
    if (!buf) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    ap_status st = ap_meta_read_stream(m, e.off, buf, e.len + (has_next ? 1 : 0), err);
    /* NOLINTNEXTLINE(clang-analyzer-core.UndefinedBinaryOperatorResult): read_stream filled it */
    if (!st && ((has_next && buf[e.len] != '\n') || memchr(buf, '\n', e.len)))
        st = ap_err_set(err, AP_ERR_FORMAT, "%s: index entry of id %llu does not match a row",
                        m->path, (unsigned long long)id);
    buf[e.len] = '\0';
    if (!st) st = check_row_id(m, buf, e.len, id, err);
    if (st) {
        free(buf);
        return st;
    }
    *row = buf;
    *len = e.len;
    return AP_OK;
}

void ap_meta_close(ap_meta *m)
{
    if (!m) return;
    ap_unmap_file(m->map, m->map_len);
    ap_unmap_file(m->idx, m->idx_map_len);
    free(m->c_off);
    free(m->d_off);
    free(m->heap);
    free(m->path);
    free(m);
}
