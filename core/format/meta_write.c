/* Writing the metadata row store: see include/annpack/meta.h and meta_format.h (the
 * layout). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zstd.h>

#include "annpack/caps.h"
#include "annpack/meta.h"
#include "endian.h"
#include "fsops.h"
#include "meta_format.h"

struct ap_meta_writer {
    ap_meta_codec codec;
    int level;
    char *rows_path, *idx_path;
    FILE *rows;
    ap_idx_entry *entries;
    size_t n, cap;
    uint64_t stream_off;
    char *frame;
    size_t frame_len, frame_cap;
    uint32_t *seek; /* (csize, dsize) pairs */
    size_t nframes, seek_cap;
    ZSTD_CCtx *cctx;
    void *cbuf;
    size_t cbuf_cap;
};

static ap_status wfail(ap_meta_writer *w, const char *what, ap_err *err)
{
    return ap_err_errno(err, AP_ERR_IO, errno, "%s: %s", w->rows_path, what);
}

ap_status ap_meta_writer_open(const char *dir, ap_meta_codec codec, int level, ap_meta_writer **out,
                              ap_err *err)
{
    *out = NULL;
    ap_meta_writer *w = calloc(1, sizeof *w);
    if (!w) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    w->codec = codec;
    w->level = level ? level : AP_META_ZSTD_LEVEL;
    w->rows_path = ap_path_join(dir, codec == AP_META_ZSTD ? AP_META_ZST : AP_META_JSONL);
    w->idx_path = ap_path_join(dir, AP_META_IDX);
    if (!w->rows_path || !w->idx_path) {
        ap_meta_writer_free(w);
        return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    }
    w->rows = fopen(w->rows_path, "wbe");
    if (!w->rows) {
        ap_status st = ap_err_errno(err, AP_ERR_IO, errno, "%s", w->rows_path);
        ap_meta_writer_free(w);
        return st;
    }
    setvbuf(w->rows, NULL, _IOFBF, 1 << 20);
    if (codec == AP_META_ZSTD) {
        w->cctx = ZSTD_createCCtx();
        if (!w->cctx) {
            ap_meta_writer_free(w);
            return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        }
        /* Fixed parameters: the same rows always give the same bytes. */
        ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel, w->level);
        ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_checksumFlag, 0);
        ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_contentSizeFlag, 1);
        ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_dictIDFlag, 0);
    }
    *out = w;
    return AP_OK;
}

static ap_status flush_frame(ap_meta_writer *w, ap_err *err)
{
    if (w->frame_len == 0) return AP_OK;
    size_t bound = ZSTD_compressBound(w->frame_len);
    if (bound > w->cbuf_cap) {
        void *nb = realloc(w->cbuf, bound);
        if (!nb) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        w->cbuf = nb;
        w->cbuf_cap = bound;
    }
    size_t c = ZSTD_compress2(w->cctx, w->cbuf, w->cbuf_cap, w->frame, w->frame_len);
    if (ZSTD_isError(c))
        return ap_err_set(err, AP_ERR_INTERNAL, "%s: zstd: %s", w->rows_path, ZSTD_getErrorName(c));
    if (c > UINT32_MAX || w->frame_len > UINT32_MAX)
        return ap_err_set(err, AP_ERR_LIMIT, "%s: frame too large", w->rows_path);
    if (fwrite(w->cbuf, 1, c, w->rows) != c) return wfail(w, "write", err);
    if (w->nframes == w->seek_cap) {
        size_t ncap = w->seek_cap ? w->seek_cap * 2 : 64;
        uint32_t *ns = realloc(w->seek, ncap * 2 * sizeof *ns);
        if (!ns) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        w->seek = ns;
        w->seek_cap = ncap;
    }
    w->seek[2 * w->nframes] = (uint32_t)c;
    w->seek[2 * w->nframes + 1] = (uint32_t)w->frame_len;
    w->nframes++;
    w->frame_len = 0;
    return AP_OK;
}

ap_status ap_meta_writer_add(ap_meta_writer *w, uint64_t id, const char *row, size_t len,
                             ap_err *err)
{
    const ap_caps *caps = ap_caps_get();
    if (memchr(row, '\n', len))
        return ap_err_set(err, AP_ERR_ARG, "%s: row of id %llu contains a newline", w->rows_path,
                          (unsigned long long)id);
    if (len > caps->meta_max_line)
        return ap_err_set(err, AP_ERR_LIMIT,
                          "%s: row of id %llu is %zu bytes, exceeds ANNPACK_META_MAX_LINE (%llu)",
                          w->rows_path, (unsigned long long)id, len,
                          (unsigned long long)caps->meta_max_line);
    if (w->stream_off + len + 1 > caps->max_meta_bytes)
        return ap_err_set(err, AP_ERR_LIMIT, "%s: rows exceed ANNPACK_MAX_META_BYTES (%llu)",
                          w->rows_path, (unsigned long long)caps->max_meta_bytes);
    if (w->n == w->cap) {
        size_t ncap = w->cap ? w->cap * 2 : 1024;
        ap_idx_entry *ne = realloc(w->entries, ncap * sizeof *ne);
        if (!ne) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        w->entries = ne;
        w->cap = ncap;
    }
    w->entries[w->n++] = (ap_idx_entry){id, w->stream_off, len};
    w->stream_off += len + 1;
    if (w->codec == AP_META_NONE) {
        if (fwrite(row, 1, len, w->rows) != len || fputc('\n', w->rows) == EOF)
            return wfail(w, "write", err);
        return AP_OK;
    }
    /* A frame never splits a row; a frame is closed before a row that would take it past
     * the target, unless it is empty (a large row is a frame of its own). */
    if (w->frame_len && w->frame_len + len + 1 > AP_META_FRAME_TARGET) {
        ap_status st = flush_frame(w, err);
        if (st) return st;
    }
    if (w->frame_len + len + 1 > w->frame_cap) {
        size_t ncap = w->frame_len + len + 1 > AP_META_FRAME_TARGET ? w->frame_len + len + 1
                                                                    : AP_META_FRAME_TARGET;
        char *nf = realloc(w->frame, ncap);
        if (!nf) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        w->frame = nf;
        w->frame_cap = ncap;
    }
    memcpy(w->frame + w->frame_len, row, len);
    w->frame[w->frame_len + len] = '\n';
    w->frame_len += len + 1;
    return AP_OK;
}

static ap_status write_idx(ap_meta_writer *w, ap_err *err)
{
    if (w->n) qsort(w->entries, w->n, sizeof *w->entries, ap_meta_cmp_entry_id);
    for (size_t i = 1; i < w->n; i++)
        if (w->entries[i].id == w->entries[i - 1].id)
            return ap_err_set(err, AP_ERR_FORMAT, "%s: duplicate id %llu", w->rows_path,
                              (unsigned long long)w->entries[i].id);
    size_t len = 16 + 24 * w->n;
    uint8_t *buf = malloc(len);
    if (!buf) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
    memcpy(buf, AP_META_IDX_MAGIC, 8);
    ap_put64(buf + 8, w->n);
    for (size_t i = 0; i < w->n; i++) {
        ap_put64(buf + 16 + 24 * i, w->entries[i].id);
        ap_put64(buf + 24 + 24 * i, w->entries[i].off);
        ap_put64(buf + 32 + 24 * i, w->entries[i].len);
    }
    unlink(w->idx_path);
    ap_status st = ap_write_file(w->idx_path, buf, len, err);
    free(buf);
    return st;
}

ap_status ap_meta_writer_finish(ap_meta_writer *w, ap_err *err)
{
    ap_status st = AP_OK;
    if (w->codec == AP_META_ZSTD) {
        if ((st = flush_frame(w, err))) return st;
        size_t tsize = 8 + 8 * w->nframes + AP_META_FOOTER_BYTES;
        uint8_t *t = malloc(tsize);
        if (!t) return ap_err_set(err, AP_ERR_NOMEM, "out of memory");
        ap_put32(t, AP_META_SKIPPABLE_MAGIC);
        ap_put32(t + 4, (uint32_t)(tsize - 8));
        for (size_t i = 0; i < w->nframes; i++) {
            ap_put32(t + 8 + 8 * i, w->seek[2 * i]);
            ap_put32(t + 12 + 8 * i, w->seek[2 * i + 1]);
        }
        uint8_t *f = t + 8 + 8 * w->nframes;
        ap_put32(f, (uint32_t)w->nframes);
        f[4] = 0;
        ap_put32(f + 5, AP_META_SEEKABLE_MAGIC);
        if (fwrite(t, 1, tsize, w->rows) != tsize) st = wfail(w, "write", err);
        free(t);
        if (st) return st;
    }
    if (fflush(w->rows) != 0) return wfail(w, "write", err);
    if (fsync(fileno(w->rows)) != 0) return wfail(w, "fsync", err);
    int rc = fclose(w->rows);
    w->rows = NULL;
    if (rc != 0) return wfail(w, "close", err);
    return write_idx(w, err);
}

void ap_meta_writer_free(ap_meta_writer *w)
{
    if (!w) return;
    if (w->rows) fclose(w->rows);
    ZSTD_freeCCtx(w->cctx);
    free(w->rows_path);
    free(w->idx_path);
    free(w->entries);
    free(w->frame);
    free(w->seek);
    free(w->cbuf);
    free(w);
}
