/* The on-disk layout of the metadata row store (internal to core; meta.c reads it,
 * meta_write.c writes it; docs/FORMAT.md).
 *
 * pack.meta.idx layout: 8 bytes "APMIDX01", u64 count, then count entries of
 * (u64 id, u64 offset, u64 length) sorted by id; offset is the row's position in the
 * uncompressed row stream, length excludes the newline.
 *
 * pack.meta.jsonl.zst is the zstd seekable format: independent frames holding whole rows
 * (about AP_META_FRAME_TARGET uncompressed bytes each), then a skippable frame
 * (magic 0x184D2A5E, u32 size) with one (u32 compressed, u32 decompressed) entry per frame
 * and the footer (u32 frames, u8 descriptor = 0, u32 magic 0x8F92EAB1). */
#ifndef ANNPACK_CORE_META_FORMAT_H
#define ANNPACK_CORE_META_FORMAT_H

#include <stdint.h>

#include "annpack/status.h"

#define AP_META_SKIPPABLE_MAGIC 0x184D2A5Eu
#define AP_META_SEEKABLE_MAGIC 0x8F92EAB1u
#define AP_META_FOOTER_BYTES 9u
#define AP_META_ZSTD_LEVEL 3

/* An index entry: a row's id, its offset in the uncompressed row stream and its length
 * (without the newline). */
typedef struct ap_idx_entry {
    uint64_t id, off, len;
} ap_idx_entry;

static inline int ap_meta_cmp_entry_id(const void *a, const void *b)
{
    const ap_idx_entry *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

/* Called before bytes [off, off + len) of the rows file are used (a zstd frame before it is
 * decompressed, plain rows before they are copied); a failure fails that read. */
typedef ap_status (*ap_bytes_guard_fn)(const void *ctx, uint64_t off, uint64_t len, ap_err *err);
struct ap_meta;
/* Sets m's guard (NULL: none); ctx must outlive m. Not thread-safe: set before sharing m. */
void ap_meta_set_guard(struct ap_meta *m, ap_bytes_guard_fn fn, const void *ctx);

#endif
