/* The per-range digest table pack.digests (internal to core; docs/FORMAT.md, "pack.digests",
 * is the contract): the layout, a strict parser over borrowed bytes, range lookups and the
 * encoder. Pure C over memory — no I/O, no hashing, no global state — so that other readers
 * (the browser client compiles this file to wasm) share the one parser. */
#ifndef ANNPACK_CORE_DIGEST_TABLE_H
#define ANNPACK_CORE_DIGEST_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "annpack/status.h"

#define AP_DIGESTS "pack.digests"
#define AP_DIGEST_MAGIC "APDIGST1"
#define AP_DIGEST_VERSION 1u
#define AP_DIGEST_HEADER 16u
#define AP_DIGEST_ENTRY 64u
#define AP_DIGEST_RANGE 48u
#define AP_DIGEST_NAME 32u              /* name field, NUL-padded: names of 1..31 bytes */
#define AP_DIGEST_CHUNK 65536u          /* ranges of files without a structure of their own */
#define AP_DIGEST_MAX_FILES 64u         /* entries in one table */
#define AP_DIGEST_MAX_BYTES (64u << 20) /* of a whole table */

/* One file's entry, as parsed (points into the table's bytes). */
typedef struct ap_digest_file {
    char name[AP_DIGEST_NAME]; /* NUL-terminated */
    uint64_t size;
    uint32_t n_ranges;
    const uint8_t *ranges; /* n_ranges x AP_DIGEST_RANGE bytes */
} ap_digest_file;

/* A parsed table. files is malloc'd (ap_digest_table_free); the range bytes stay the
 * caller's buffer, which must outlive the table. */
typedef struct ap_digest_table {
    uint32_t n_files;
    ap_digest_file *files;
} ap_digest_table;

/* One range of a file's table. */
typedef struct ap_digest_range {
    uint64_t off, len;
    const uint8_t *sha256; /* 32 bytes */
} ap_digest_range;

/* Parses and checks len bytes of a table (name in messages): magic, version, the entry
 * count within AP_DIGEST_MAX_FILES, names NUL-padded, printable, without '/', sorted and
 * unique, reserved words zero, range tables laid out back to back right after the entries
 * in entry order and ending exactly at len, and each file's ranges tiling [0, size) in
 * order. AP_ERR_FORMAT (AP_ERR_LIMIT for the caps) naming the field; *t is filled only on
 * success. */
ap_status ap_digest_table_parse(const uint8_t *buf, size_t len, const char *name,
                                ap_digest_table *t, ap_err *err);
void ap_digest_table_free(ap_digest_table *t);

/* The entry named name, or NULL. */
const ap_digest_file *ap_digest_table_find(const ap_digest_table *t, const char *name);

/* Range k (k < f->n_ranges). */
ap_digest_range ap_digest_range_at(const ap_digest_file *f, uint32_t k);

/* The ranges [*first, *end) that overlap bytes [off, off + len) of the file (an empty span
 * when len is 0 or the bytes lie beyond the file). */
void ap_digest_overlap(const ap_digest_file *f, uint64_t off, uint64_t len, uint32_t *first,
                       uint32_t *end);

/* Checks that f's ranges are fixed AP_DIGEST_CHUNK chunks (the last one shorter, none
 * empty; a file of 0 bytes has none): the layout of files without their own structure. */
ap_status ap_digest_check_chunks(const ap_digest_file *f, const char *name, ap_err *err);

/* The encoder's input: one file, its ranges as (offset, length) pairs and their digests. */
typedef struct ap_digest_spec {
    const char *name;
    uint64_t size;
    uint32_t n_ranges;
    const uint64_t *off, *len;   /* n_ranges each */
    const uint8_t (*sha256)[32]; /* n_ranges */
} ap_digest_spec;

/* Encodes n files (sorted by name, as the parser requires) into *out (malloc'd, *out_len
 * bytes). AP_ERR_NOMEM, or AP_ERR_LIMIT over the caps. */
ap_status ap_digest_table_encode(const ap_digest_spec *files, size_t n, uint8_t **out,
                                 size_t *out_len, ap_err *err);

#endif
