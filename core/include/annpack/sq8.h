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

/* The reader, the writer and the quantiser are experimental (annpack/experimental.h,
 * AP_EXPERIMENTAL): programs build the sidecar with ap_build_opts.sq8 and use it through
 * ap_view_search_ex (AP_SCAN_SQ8). */

#ifdef __cplusplus
}
#endif
#ifdef AP_EXPERIMENTAL
#define ANNPACK_SQ8_H_COMPLETE /* experimental.h extends this header */
#include "experimental.h"
#endif
#endif
