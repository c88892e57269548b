/* annpack — the int8 sidecar (pack.sq8): a scalar-quantised copy of a pack's lists.
 *
 * Optional and separate from pack.annpack, so ANNP v1 readers are unaffected; when present
 * it is listed (size, sha256) in the manifest's "files" like every other file. Each vector
 * dimension d has a range [vmin[d], vmin[d] + 255 * step[d]] (the data's min and max);
 * value x is stored as code = clamp(round_half_even((x - vmin[d]) / step[d]), 0, 255),
 * computed in float32 from the f16 value. Codes follow pack.annpack's list order, so vector
 * j of list i in the sidecar is vector j of list i in the ANNP file.
 *
 * Layout (little-endian; docs/FORMAT.md):
 *   0  u32 magic 0x38514E41 ("ANQ8")   4  u32 version = 1     8  u32 header_size = 64
 *   12 u32 dim   16 u32 n_lists   20 u32 n_vectors   24 u32 stride (dim rounded up to 64)
 *   28 u32 0     32 u64 params_offset   40 u64 counts_offset   48 u64 codes_offset
 *   56 u64 file size
 *   params: f32 vmin[dim], f32 step[dim]      counts: u32 per list (= the ANNP counts)
 *   codes: n_vectors x stride bytes, lists back to back; bytes past dim are zero.
 *
 * Scanning: a query q becomes integer weights w[d] = rint((q[d] * step[d]) * scale) with
 * scale = 127 / max|q[d] * step[d]| (f32), and a vector's approximate score is
 * sum w[d] * code[d] (exact in int32): an estimate of q . x, scaled, up to a per-query
 * constant. */
#ifndef ANNPACK_SQ8_H
#define ANNPACK_SQ8_H

#include <stddef.h>
#include <stdint.h>

#include "format.h"
#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AP_SQ8 "pack.sq8"
#define AP_SQ8_MAGIC 0x38514E41u
#define AP_SQ8_VERSION 1u
#define AP_SQ8_HEADER_SIZE 64u

typedef struct ap_sq8 ap_sq8;

/* Code stride for dim: dim rounded up to a multiple of 64. */
static inline uint32_t ap_sq8_stride_for(uint32_t dim)
{
    return (dim + 63u) & ~63u;
}

/* Writes DIR/pack.sq8 for a pack whose lists hold counts[l] vectors each (vecs: all f16
 * vectors grouped by list, as written to pack.annpack). The file is created (O_EXCL),
 * written and fsynced. */
AP_API ap_status ap_sq8_build(const char *dir, uint32_t dim, uint32_t n_lists,
                              const uint32_t *counts, const uint16_t *vecs, size_t n, ap_err *err);

/* Maps path and validates it against the ANNP file it accompanies: header fields, dim,
 * n_lists, n_vectors and every list count equal to a's, finite params with step > 0,
 * exact file size. Errors name the file and field. */
AP_API ap_status ap_sq8_open(const char *path, const ap_annp *a, ap_sq8 **out, ap_err *err);
/* As ap_sq8_open, from a descriptor (which stays the caller's); name for messages. */
AP_API ap_status ap_sq8_open_fd(int fd, uint64_t size, const char *name, const ap_annp *a,
                                ap_sq8 **out, ap_err *err);
AP_API void ap_sq8_close(ap_sq8 *s);

AP_API uint32_t ap_sq8_dim(const ap_sq8 *s);
/* The whole file as mapped (valid until ap_sq8_close). */
AP_API const uint8_t *ap_sq8_bytes(const ap_sq8 *s, size_t *size);
AP_API uint32_t ap_sq8_stride(const ap_sq8 *s);
/* Codes of list i's first vector (stride bytes per vector). */
AP_API const uint8_t *ap_sq8_list_codes(const ap_sq8 *s, uint32_t i);
AP_API const float *ap_sq8_vmin(const ap_sq8 *s);
AP_API const float *ap_sq8_step(const ap_sq8 *s);

/* Encodes one f16 vector (dim values) into stride codes with the given params. */
AP_API void ap_sq8_encode(const float *vmin, const float *step, uint32_t dim, uint32_t stride,
                          const uint16_t *vec, uint8_t *codes);

/* The integer query weights for q (stride entries, zero past dim). */
AP_API void ap_sq8_query(const ap_sq8 *s, const float *q, int8_t *w);

/* The same three steps for any float32 data (the search's coarse centroid codes use them):
 * per-dimension min/step over n rows, codes of one row, and query weights for a step. */
AP_API void ap_sq8_train_f32(const float *x, size_t n, uint32_t dim, float *vmin, float *step);
AP_API void ap_sq8_encode_f32(const float *vmin, const float *step, uint32_t dim, uint32_t stride,
                              const float *x, uint8_t *codes);
AP_API void ap_sq8_weights(const float *step, uint32_t dim, uint32_t stride, const float *q,
                           int8_t *w);

/* Deep check: every code equals the encoding of the matching vector of a. Names the first
 * list and position that differ. */
AP_API ap_status ap_sq8_check_codes(const ap_sq8 *s, const ap_annp *a, ap_err *err);

/* Approximate scores of n consecutive code rows (stride bytes each) with weights w. */
AP_API void ap_sq8_score_block(const int8_t *w, const uint8_t *codes, uint32_t n, uint32_t stride,
                               int32_t *out);

#ifdef __cplusplus
}
#endif
#endif
