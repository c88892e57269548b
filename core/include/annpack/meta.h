/* annpack — the metadata row store of a pack.
 *
 * Rows are one JSON object per line (no trailing newline inside a row). On disk:
 *   pack.meta.jsonl       plain JSON Lines, or
 *   pack.meta.jsonl.zst   the same byte stream in the zstd seekable format: independent
 *                         zstd frames of about 64 KiB of rows each (a frame never splits a
 *                         row), followed by the seek-table skippable frame, so `zstd -d`
 *                         yields the plain JSONL byte for byte;
 *   pack.meta.idx         the id index: see docs/FORMAT.md. Entries sorted by id, each
 *                         (id, offset of the row in the uncompressed stream, row length).
 * Readers accept either encoding and rebuild the index in memory when pack.meta.idx is
 * absent. Everything read is checked against ANNPACK_MAX_META_BYTES and
 * ANNPACK_META_MAX_LINE. Readers are safe to share between threads. */
#ifndef ANNPACK_META_H
#define ANNPACK_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AP_META_JSONL "pack.meta.jsonl"
#define AP_META_ZST "pack.meta.jsonl.zst"
#define AP_META_IDX "pack.meta.idx"
#define AP_META_IDX_MAGIC "APMIDX01" /* 8 bytes */
#define AP_META_FRAME_TARGET (64u * 1024u)

typedef enum ap_meta_codec { AP_META_ZSTD = 0, AP_META_NONE = 1 } ap_meta_codec;

typedef struct ap_meta_writer ap_meta_writer;

/* Creates the meta files in directory dir (which must exist): AP_META_ZST or
 * AP_META_JSONL per codec, and AP_META_IDX on finish. level is the zstd level (0 =
 * default 3). Output is a pure function of the rows added. */
AP_API ap_status ap_meta_writer_open(const char *dir, ap_meta_codec codec, int level,
                                     ap_meta_writer **out, ap_err *err);

/* Appends one row (without newline). The row must not contain '\n'. ids must be unique
 * (checked at finish: AP_ERR_FORMAT "duplicate id N"). */
AP_API ap_status ap_meta_writer_add(ap_meta_writer *w, uint64_t id, const char *row, size_t len,
                                    ap_err *err);

/* Flushes the last frame, writes the seek table and the idx file, fsyncs both files. */
AP_API ap_status ap_meta_writer_finish(ap_meta_writer *w, ap_err *err);

/* Frees the writer (after finish, or to abandon: files already written are left for the
 * caller's temporary directory to remove). NULL is a no-op. */
AP_API void ap_meta_writer_free(ap_meta_writer *w);

typedef struct ap_meta ap_meta;

/* Opens the meta store in dir. Prefers AP_META_ZST, else AP_META_JSONL; uses AP_META_IDX
 * when present (validated: magic, size, sorted unique ids, every entry inside the
 * stream), else scans the rows (each must be a JSON object with an integer "id") and
 * builds the index in memory. */
AP_API ap_status ap_meta_open(const char *dir, ap_meta **out, ap_err *err);

/* Opens explicit files (idx_path may be NULL). The codec is chosen by the file name
 * suffix ".zst". Used by packsets, whose layers may name their files. */
AP_API ap_status ap_meta_open_files(const char *rows_path, const char *idx_path, ap_meta **out,
                                    ap_err *err);

/* An open file for ap_meta_open_fds: descriptor, size and the name used for the codec
 * choice (suffix ".zst") and in messages. The descriptors stay the caller's. */
typedef struct ap_meta_file {
    int fd;
    uint64_t size;
    const char *name;
} ap_meta_file;

/* As ap_meta_open_files, from descriptors (idx may be NULL). */
AP_API ap_status ap_meta_open_fds(const ap_meta_file *rows, const ap_meta_file *idx, ap_meta **out,
                                  ap_err *err);

/* Number of rows. */
AP_API uint64_t ap_meta_count(const ap_meta *m);

/* Total size of the uncompressed row stream in bytes (rows plus newlines). */
AP_API uint64_t ap_meta_stream_size(const ap_meta *m);

/* The i-th entry of the index in ascending id order (i < ap_meta_count). */
AP_API void ap_meta_entry(const ap_meta *m, uint64_t i, uint64_t *id, uint64_t *offset,
                          uint64_t *len);

/* Whether the index holds id (no row is read). */
AP_API bool ap_meta_has(const ap_meta *m, uint64_t id);

/* Finds the row of id. Returns AP_ERR_NOTFOUND when absent. On success *row is a
 * malloc'd NUL-terminated copy (caller frees) of *len bytes, without the newline. The
 * row bytes are checked to lie within one line of the stream. */
AP_API ap_status ap_meta_get(const ap_meta *m, uint64_t id, char **row, size_t *len, ap_err *err);

/* Reads len bytes of the uncompressed row stream starting at offset into buf (for
 * presenting the plain JSONL). Returns AP_ERR_ARG when the range is outside the stream. */
AP_API ap_status ap_meta_read_stream(const ap_meta *m, uint64_t offset, void *buf, size_t len,
                                     ap_err *err);

/* Closes the store; NULL is a no-op. */
AP_API void ap_meta_close(ap_meta *m);

#ifdef __cplusplus
}
#endif
#endif
