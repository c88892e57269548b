/* annpack — vector files in the standard ANN benchmark formats.
 *
 * .fvecs: per vector an int32 dim (little-endian) then dim float32; .ivecs: the same with
 * int32 values (ground-truth neighbour row numbers). Every row must have the same dim.
 * Untrusted input: the reader checks the dim against ANNPACK_MAX_DIM, that the file is a
 * whole number of rows, that every row header agrees, and (fvecs) that values are finite. */
#ifndef ANNPACK_VECS_H
#define ANNPACK_VECS_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ap_vecs_kind { AP_VECS_F32 = 0, AP_VECS_I32 = 1 } ap_vecs_kind;

typedef struct ap_vecs ap_vecs;

/* Maps path (kind decides fvecs or ivecs) and validates it as described above. An empty
 * file is refused. Errors name the file and, for a bad row, its 0-based row number.
 * *out is the caller's (ap_vecs_close). */
AP_API ap_status ap_vecs_open(const char *path, ap_vecs_kind kind, ap_vecs **out, ap_err *err);
/* Unmaps and frees; every row pointer becomes invalid. NULL is a no-op. */
AP_API void ap_vecs_close(ap_vecs *v);

/* The number of rows and their dimension. */
AP_API size_t ap_vecs_count(const ap_vecs *v);
AP_API uint32_t ap_vecs_dim(const ap_vecs *v);

/* Row i (i < count) as dim values; 4-byte aligned, borrowed: valid until
 * ap_vecs_close(v). ap_vecs_f32 for an fvecs file, ap_vecs_i32 for an ivecs one. */
AP_API const float *ap_vecs_f32(const ap_vecs *v, size_t i);
AP_API const int32_t *ap_vecs_i32(const ap_vecs *v, size_t i);

/* Writes n rows of dim int32 values (the caller's rows, row-major) as an .ivecs file
 * (atomically: temp file + rename). */
AP_API ap_status ap_ivecs_write(const char *path, const int32_t *rows, size_t n, uint32_t dim,
                                ap_err *err);

#ifdef __cplusplus
}
#endif
#ifdef AP_EXPERIMENTAL
#define ANNPACK_VECS_H_COMPLETE /* experimental.h extends this header */
#include "experimental.h"
#endif
#endif
