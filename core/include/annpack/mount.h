/* annpack — the merged virtual pack of a view: what the mount presents as pack.annpack,
 * pack.meta.jsonl, pack.sq8 and pack.manifest.json (docs/MOUNT.md, "The virtual tree").
 *
 * Merged list i = the live base vectors of base list i, then the live delta vectors whose
 * nearest base centroid is i, in (seq, position) order; vector bytes are copied, never
 * re-quantised. Rows: every live row, ascending id, each line byte-identical to its
 * source. Copying the four files out gives a pack that verifies and searches like the
 * view. A single canonical pack is served straight from its own files (no tables). */
#ifndef ANNPACK_MOUNT_H
#define ANNPACK_MOUNT_H

#include <stddef.h>
#include <stdint.h>

#include "packset.h"
#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ap_vpack ap_vpack;

/* Lays out the virtual pack of v (the merged tables when there are deltas). v is
 * borrowed and must outlive the vpack; *out is the caller's (ap_vpack_close). Thread-safe
 * for concurrent reads once open. */
AP_API ap_status ap_vpack_open(const ap_view *v, ap_vpack **out, ap_err *err);
/* Frees the vpack (before its view is closed). NULL is a no-op. */
AP_API void ap_vpack_close(ap_vpack *p);

/* The readers below copy len bytes at off into the caller's buf (all of them, or none:
 * AP_ERR_ARG when [off, off + len) is not inside the file). */

/* Size of the merged ANNP v1 file, and len bytes of it at off (generated per range). */
AP_API uint64_t ap_vpack_annpack_size(const ap_vpack *p);
AP_API ap_status ap_vpack_annpack_read(const ap_vpack *p, uint64_t off, void *buf, size_t len,
                                       ap_err *err);
/* Size of the merged int8 sidecar (0 when the base has none) and a byte range of it: the
 * base's params, merged counts, and per merged list the live base vectors' codes then the
 * live delta vectors encoded with the base's params — so a copy searches like the view.
 * Reading it when the base has none: AP_ERR_NOTFOUND. */
AP_API uint64_t ap_vpack_sq8_size(const ap_vpack *p);
AP_API ap_status ap_vpack_sq8_read(const ap_vpack *p, uint64_t off, void *buf, size_t len,
                                   ap_err *err);
/* The embedder's corpus table (pack.idf: docs/FORMAT.md, the base's bytes, so a copy
 * embeds queries like the view) in *bytes (owned by the view) and *len; *len 0 when the
 * embedder has none. */
AP_API void ap_vpack_idf(const ap_vpack *p, const void **bytes, size_t *len);
/* Size of the merged plain JSONL (live rows, ascending id) and a byte range of it. */
AP_API uint64_t ap_vpack_meta_size(const ap_vpack *p);
AP_API ap_status ap_vpack_meta_read(const ap_vpack *p, uint64_t off, void *buf, size_t len,
                                    ap_err *err);
/* The schema-2 manifest of the virtual pack (with the hashes of its files) plus a
 * "packset" provenance block; extra is a JSON object text merged into that block
 * (signature status, key id...) or NULL. Returns malloc'd text (the caller frees it with
 * ap_free) of *len bytes (len may be NULL), or NULL with err set. */
AP_API char *ap_vpack_manifest(const ap_vpack *p, const char *extra, size_t *len, ap_err *err);

#ifdef __cplusplus
}
#endif
#ifdef AP_EXPERIMENTAL
#define ANNPACK_MOUNT_H_COMPLETE /* experimental.h extends this header */
#include "experimental.h"
#endif
#endif
