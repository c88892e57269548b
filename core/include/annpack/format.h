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

typedef struct ap_annp_header {
    uint32_t dim;
    uint32_t n_lists;
    uint32_t n_vectors;
    uint64_t offset_table_pos;
} ap_annp_header;

/* Encodes a header (magic, version, endian, header_size, metric filled in). */
AP_API void ap_annp_header_encode(const ap_annp_header *h, uint8_t out[AP_ANNP_HEADER_SIZE]);

/* Decodes and checks a header against the caps and the file size (name for messages). */
AP_API ap_status ap_annp_header_decode(const uint8_t *buf, size_t len, uint64_t file_size,
                                       const char *name, ap_annp_header *h, ap_err *err);

/* Byte length of a list payload with count vectors. */
static inline uint64_t ap_annp_list_bytes(uint64_t count, uint32_t dim)
{
    return 4 + count * (8 + 2ull * dim);
}

typedef struct ap_annp ap_annp;

/* One list as stored: count, then ids (u64 LE, possibly unaligned: use ap_annp_list_id)
 * and vectors (f16, row-major, possibly unaligned). Pointers into the mapped file. */
typedef struct ap_annp_list {
    uint32_t count;
    const uint8_t *ids;
    const uint8_t *vecs;
    uint64_t offset; /* file offset of the list (its count field) */
} ap_annp_list;

static inline uint64_t ap_annp_list_id(const ap_annp_list *l, uint32_t j)
{
    const uint8_t *p = l->ids + 8ull * j;
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
           (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 |
           (uint64_t)p[7] << 56;
}

/* Maps path read-only and validates everything a search relies on: header fields and
 * caps (ANNPACK_MAX_DIM, ANNPACK_MAX_LISTS), centroids and offset table inside the file,
 * every list inside the file with length == ap_annp_list_bytes(count) and length <=
 * ANNPACK_MAX_LIST_BYTES, and the counts summing to n_vectors. After this succeeds no
 * access through this API can leave the mapping. */
AP_API ap_status ap_annp_open(const char *path, ap_annp **out, ap_err *err);

/* As ap_annp_open, from a descriptor of a file of size bytes (the mapping outlives the
 * descriptor, which stays the caller's); name is used in messages. */
AP_API ap_status ap_annp_open_fd(int fd, uint64_t size, const char *name, ap_annp **out,
                                 ap_err *err);

/* Same over a caller-owned buffer that must outlive the reader (fuzzing, virtual files). */
AP_API ap_status ap_annp_open_mem(const void *data, size_t len, const char *name, ap_annp **out,
                                  ap_err *err);

AP_API void ap_annp_close(ap_annp *a);

AP_API const ap_annp_header *ap_annp_get_header(const ap_annp *a);
AP_API const char *ap_annp_path(const ap_annp *a);
AP_API uint64_t ap_annp_file_size(const ap_annp *a);
AP_API const uint8_t *ap_annp_bytes(const ap_annp *a);

/* Centroid matrix (n_lists x dim f32). Our own copy, aligned, for BLAS. */
AP_API const float *ap_annp_centroids(const ap_annp *a);

/* List i (i < n_lists). */
AP_API void ap_annp_list_get(const ap_annp *a, uint32_t i, ap_annp_list *out);

/* Global position of list i's first vector (prefix sum of counts): positions number the
 * vectors 0..n_vectors-1 in list order, used for per-vector bitmaps. */
AP_API uint64_t ap_annp_list_start(const ap_annp *a, uint32_t i);

/* Writes an ANNP v1 file in one pass. Vectors are given grouped by list: list l holds
 * counts[l] consecutive entries of ids and vecs (f16, dim each), lists in order.
 * The file is written, fsynced and closed; on failure it is removed. */
AP_API ap_status ap_annp_write(const char *path, uint32_t dim, uint32_t n_lists,
                               const float *centroids, const uint32_t *counts, const uint64_t *ids,
                               const uint16_t *vecs, ap_err *err);

#ifdef __cplusplus
}
#endif
#endif
