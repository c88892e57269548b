/* annpack — the 1-bit code sidecar (pack.bits): RaBitQ-style codes of a pack's lists.
 *
 * Optional and separate from pack.annpack, so ANNP v1 readers are unaffected; when present
 * it is listed (size, sha256) in the manifest's "files" and in pack.digests (one range per
 * list) like pack.sq8. Each vector's residual to its list's reference point alpha * c (c
 * pack.annpack's f32 centroid, alpha the list's mean of x . c; the f16 vector widened to
 * f32), padded with zeros to dpad = dim rounded up to 64 and rotated by the seeded rotation
 * of docs/FORMAT.md, is stored as dpad sign bits and two f32 scalars: F (the estimate of
 * q . x is alpha q . c + F * <2b - 1, rotated q>) and G (the
 * estimate's standard error per unit query). Codes follow pack.annpack's list order.
 *
 * Layout (little-endian; docs/FORMAT.md):
 *   0  u32 magic 0x31424E41 ("ANB1")   4  u32 version = 1   8  u32 header_size = 64
 *   12 u32 dim   16 u32 n_lists   20 u32 n_vectors   24 u32 dpad   28 f32 eps0
 *   32 u64 seed  40 u64 counts_offset (64)  48 u64 data_offset  56 u64 file size
 *   counts: u32 per list (= the ANNP counts), zero up to data_offset (64-aligned)
 *   data: the lists back to back; a list of n vectors is n x dpad/8 code bytes, then
 *   f32 F[n], then f32 G[n], then f32 alpha (n x (dpad/8 + 8) + 4 bytes).
 *
 * Scanning (--scan bits): the query is rotated and quantised to 4 bits per dimension, each
 * code scored with popcounts (integers, identical on every CPU), and every vector whose
 * estimate plus eps0 standard errors reaches the current k-th exact score is re-scored
 * exactly from its f16 copy (after its int8 row, when the pack has pack.sq8, could not
 * rule it out with the int8 codes' exact error bound): the returned scores are exact f16
 * scores. */
#ifndef ANNPACK_BITS_H
#define ANNPACK_BITS_H

#include <stddef.h>
#include <stdint.h>

#include "format.h"
#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AP_BITS "pack.bits"
#define AP_BITS_MAGIC 0x31424E41u
#define AP_BITS_VERSION 1u
#define AP_BITS_HEADER_SIZE 64u
#define AP_BITS_EPS0 3.0f /* the builder's eps0: standard errors of slack before re-ranking */
#define AP_BITS_SEED 0x616E6E7061636B31ull /* the builder's rotation seed ("annpack1") */

/* The reader is experimental (annpack/experimental.h, AP_EXPERIMENTAL): programs build the
 * sidecar with ap_build_opts.bits and use it through ap_view_search_ex (AP_SCAN_BITS). */

#ifdef __cplusplus
}
#endif
#ifdef AP_EXPERIMENTAL
#define ANNPACK_BITS_H_COMPLETE /* experimental.h extends this header */
#include "experimental.h"
#endif
#endif
