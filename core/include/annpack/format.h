/* annpack — the ANNP v1 index file (pack.annpack).
 *
 * Layout (all little-endian; see docs/FORMAT.md):
 *   0  u64 magic 0x504E4E41 ("ANNP")   8 u32 version = 1   12 u32 endian = 1
 *   16 u32 header_size = 72            20 u32 dim          24 u32 metric = 1 (dot)
 *   28 u32 n_lists                     32 u32 n_vectors    36 u64 offset_table_pos
 *   44 28 zero bytes
 *   72 f32 centroids[n_lists][dim]
 *   lists: at offset_table[i].offset: u32 count, u64 ids[count], f16 vecs[count][dim]
 *   offset_table_pos: n_lists x (u64 offset, u64 length), length = 4 + count*(8 + 2*dim)
 * Our writer places the lists back to back in list order between the centroids and the
 * offset table; readers accept any placement inside the file. */
#ifndef ANNPACK_FORMAT_H
#define ANNPACK_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* File names and schema numbers of pack and packset directories (docs/FORMAT.md,
 * docs/PACKSET.md). */
#define AP_MANIFEST "pack.manifest.json"
#define AP_ANNPACK "pack.annpack"
#define AP_PACK_SCHEMA 2
#define AP_PACKSET_SCHEMA 3
#define AP_TOMBSTONES "tombstones.jsonl"
#define AP_DELTA_MANIFEST "delta.manifest.json"
#define AP_MAX_DELTAS 10000u

#define AP_ANNP_MAGIC 0x504E4E41ull
#define AP_ANNP_VERSION 1u
#define AP_ANNP_HEADER_SIZE 72u
#define AP_ANNP_METRIC_DOT 1u

typedef struct ap_annp ap_annp;

/* Maps path read-only and validates everything a search relies on: header fields and
 * caps (ANNPACK_MAX_DIM, ANNPACK_MAX_LISTS), centroids and offset table inside the file,
 * every list inside the file with length == ap_annp_list_bytes(count) and length <=
 * ANNPACK_MAX_LIST_BYTES, and the counts summing to n_vectors. After this succeeds no
 * access through this API can leave the mapping. *out is the caller's (ap_annp_close);
 * on failure it is NULL and err names the file and the field. */
AP_API ap_status ap_annp_open(const char *path, ap_annp **out, ap_err *err);

/* Unmaps and frees the reader; every pointer it returned becomes invalid. NULL is a
 * no-op. */
AP_API void ap_annp_close(ap_annp *a);

/* The size of the file in bytes, and the whole file as mapped (read-only, valid until
 * ap_annp_close(a)). */
AP_API uint64_t ap_annp_file_size(const ap_annp *a);
AP_API const uint8_t *ap_annp_bytes(const ap_annp *a);

#ifdef __cplusplus
}
#endif
#ifdef AP_EXPERIMENTAL
#define ANNPACK_FORMAT_H_COMPLETE /* experimental.h extends this header */
#include "experimental.h"
#endif
#endif
