/* annpack — pack directories (building: build.h; opening, searching and verifying:
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

#include "bits.h"
#include "embed.h"
#include "format.h"
#include "meta.h"
#include "search.h"
#include "sign.h"
#include "sq8.h"
#include "status.h"

/* The single-pack handle (ap_pack_open, ap_pack_search_vec, ...) is experimental
 * (annpack/experimental.h, AP_EXPERIMENTAL): programs open a pack as a view
 * (ap_view_open, packset.h), which reads a single pack and a packset alike. */

#ifdef AP_EXPERIMENTAL
#define ANNPACK_PACK_H_COMPLETE /* experimental.h extends this header */
#include "experimental.h"
#endif
#endif
