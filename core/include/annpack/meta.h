/* annpack — the metadata row store of a pack.
 *
 * Rows are one JSON object per line (no trailing newline inside a row). On disk:
 *   pack.meta.jsonl       plain JSON Lines, or
 *   pack.meta.jsonl.zst   the same byte stream in the zstd seekable format: independent
 *                         zstd frames of about 16 KiB of rows each (a frame never splits a
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
#define AP_META_FRAME_TARGET (16u * 1024u)

/* How the rows are stored (ap_build_opts.meta_codec, ap_delta_opts.meta_codec). The values
 * are part of the ABI. */
typedef enum ap_meta_codec { AP_META_ZSTD = 0, AP_META_NONE = 1 } ap_meta_codec;

/* The writer and the reader are experimental (annpack/experimental.h, AP_EXPERIMENTAL):
 * programs build packs with ap_pack_build and read rows through ap_view_get_row. */

#ifdef __cplusplus
}
#endif
#ifdef AP_EXPERIMENTAL
#define ANNPACK_META_H_COMPLETE /* experimental.h extends this header */
#include "experimental.h"
#endif
#endif
