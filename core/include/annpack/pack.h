/* annpack — pack directories: open, search, inspect (building: build.h; verifying:
 * packset.h).
 *
 * A pack directory holds pack.annpack (ANNP v1), the metadata rows (pack.meta.jsonl.zst
 * or pack.meta.jsonl) with pack.meta.idx, and pack.manifest.json (schema 2) listing every
 * other file with its size and SHA-256, the embedder and the build parameters. See
 * docs/FORMAT.md. */
#ifndef ANNPACK_PACK_H
#define ANNPACK_PACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "embed.h"
#include "format.h"
#include "meta.h"
#include "search.h"
#include "sign.h"
#include "sq8.h"
#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ap_pack ap_pack;

/* Opens a pack directory: reads the manifest strictly, checks that its paths stay inside
 * the directory and its counts match the ANNP header, maps pack.annpack, opens the
 * metadata and recreates the embedder. Does not hash files (ap_pack_verify does). */
AP_API ap_status ap_pack_open(const char *dir, ap_pack **out, ap_err *err);
AP_API void ap_pack_close(ap_pack *p);

AP_API const ap_annp *ap_pack_annp(const ap_pack *p);
AP_API const ap_meta *ap_pack_meta(const ap_pack *p);
AP_API const ap_embedder *ap_pack_embedder(const ap_pack *p);
/* The int8 sidecar (validated against pack.annpack at open), or NULL. */
AP_API const ap_sq8 *ap_pack_sq8(const ap_pack *p);
/* The manifest bytes exactly as read. */
AP_API const char *ap_pack_manifest_raw(const ap_pack *p, size_t *len);
/* The manifest's "embedder" and "build" blocks as compact JSON text (malloc'd). */
AP_API char *ap_pack_manifest_block(const ap_pack *p, const char *key);

/* Embeds text with the pack's embedder into q (dim floats). */
AP_API ap_status ap_pack_embed(const ap_pack *p, const char *text, size_t len, float *q,
                               ap_err *err);

/* Vector search: hits holds k entries. */
AP_API ap_status ap_pack_search_vec(const ap_pack *p, const float *q, uint32_t k, uint32_t probe,
                                    ap_hit *hits, uint32_t *n, ap_err *err);

/* Pack facts as JSON (the `annpack inspect` report). malloc'd. */
AP_API char *ap_pack_inspect_json(const ap_pack *p);

#ifdef __cplusplus
}
#endif
#endif
