/* The ranges pack.digests gives each file of a pack (internal to core; docs/FORMAT.md,
 * "pack.digests"): computed from the file's own structure, so that a reader checks exactly
 * what it reads. The writer (build/digests_write.c) and verify --deep (pack/digests_check.c)
 * share this one definition. */
#ifndef ANNPACK_CORE_DIGEST_LAYOUT_H
#define ANNPACK_CORE_DIGEST_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#include "annpack/format.h"
#include "annpack/status.h"

/* Ranges as (offset, length) pairs: malloc'd arrays of n entries (ap_digest_layout_free). */
typedef struct ap_digest_layout {
    uint32_t n;
    uint64_t *off, *len;
} ap_digest_layout;

/* The ranges of the file called name (size bytes, the whole file in bytes):
 * - pack.annpack (annp: that file, opened): header and centroids, each list in list order
 *   (lists must lie back to back, as annpack writes them), the offset table;
 * - pack.sq8 (annp: the pack's ANNP file, whose lists it codes): header, params and counts,
 *   then each list's codes (count x stride bytes; empty lists give empty ranges);
 * - pack.bits (annp as for pack.sq8): header and counts, then each list's records
 *   (count x (dpad/8 + 8) bytes);
 * - pack.meta.jsonl.zst: each zstd frame, then the seek table;
 * - anything else: AP_DIGEST_CHUNK chunks.
 * AP_ERR_FORMAT naming the file when its structure does not allow that layout. */
ap_status ap_digest_layout_of(const char *name, const uint8_t *bytes, uint64_t size,
                              const ap_annp *annp, ap_digest_layout *out, ap_err *err);
void ap_digest_layout_free(ap_digest_layout *l);

#endif
