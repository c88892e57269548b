/* Range verification against pack.digests (internal to core; docs/SECURITY.md, "Lazy
 * verification"): each range of the ANNP file, the int8 and 1-bit sidecars and the metadata rows is
 * hashed from the pack's descriptor the first time something needs it (or all at once for
 * verify=full and `verify`), at most once per open pack; a range that fails stays bad and
 * fails every later use at once. Thread-safe: concurrent users of one range wait for the
 * one that hashes it. */
#ifndef ANNPACK_CORE_LAZY_H
#define ANNPACK_CORE_LAZY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "annpack/status.h"
#include "digest_table.h"
#include "source.h"

/* The files a pack verifies range by range. */
enum { AP_LZ_ANNPACK, AP_LZ_SQ8, AP_LZ_META, AP_LZ_BITS, AP_LZ_COUNT };

typedef struct ap_lazy ap_lazy;

/* A checker over the table's entries for each file (NULL entries: not checked this way;
 * src[i] the open file, which must outlive the checker); log: each range found bad is
 * logged (once, naming the list or frame) for a serving process. kind[i] names the file's ranges in
 * messages: "list" (range k > 0 is list k - 1), "frame" (range k is frame k) or NULL
 * (chunks). *out is the caller's (ap_lazy_free). */
ap_status ap_lazy_new(const ap_digest_file *const files[AP_LZ_COUNT],
                      const ap_src *const src[AP_LZ_COUNT], bool log, ap_lazy **out, ap_err *err);
void ap_lazy_free(ap_lazy *z);

/* Checks the ranges of file f overlapping [off, off + len). AP_ERR_VERIFY naming the file
 * and the list, frame or chunk when one does not match. */
ap_status ap_lazy_check(ap_lazy *z, int f, uint64_t off, uint64_t len, ap_err *err);

/* Checks range k of file f. */
ap_status ap_lazy_check_range(ap_lazy *z, int f, uint32_t k, ap_err *err);

/* Checks every range of every file (verify=full, `annpack verify`). */
ap_status ap_lazy_check_all(ap_lazy *z, ap_err *err);

/* Checks unchecked ranges in file and range order until about max_bytes were hashed (at
 * least one range); *done when every range has a verdict. Bad ranges are recorded, not
 * returned; read errors are. */
ap_status ap_lazy_step(ap_lazy *z, uint64_t max_bytes, bool *done, ap_err *err);

/* Hash file f's ranges through map (its reader's mapping of the whole file, which must
 * outlive the checker) from now on. Set before the checker is shared. */
void ap_lazy_set_map(ap_lazy *z, int f, const uint8_t *map);

/* Whether file f is covered. */
int ap_lazy_covers(const ap_lazy *z, int f);

/* Counters: ranges hashed (each at most once), ranges found bad, ranges in all; bad_msg
 * (cap bytes) receives the first failure's message ("" when none). */
void ap_lazy_counts(ap_lazy *z, uint64_t *hashed, uint64_t *bad, uint64_t *total, char *bad_msg,
                    size_t cap);

#endif
