/* Grouping a delta's vectors under the base's lists (internal to core; docs/PACKSET.md).
 *
 * A packset scans a delta vector with the base list whose centroid is nearest by the
 * builder's rule (kmeans.h: largest dot product, ties to the lowest list), computed on
 * the f16 vector as stored. build-delta records it in delta.lists; a packset whose deltas
 * predate that file computes it at open; verify --deep recomputes and compares. */
#ifndef ANNPACK_CORE_DELTA_GROUP_H
#define ANNPACK_CORE_DELTA_GROUP_H

#include <stddef.h>
#include <stdint.h>

#include "annpack/format.h"
#include "annpack/status.h"

/* out[i]: the base list of the f16 vector vecs[i] (dim values, possibly unaligned), for
 * i < n. */
ap_status ap_group_under(const ap_annp *base, const uint8_t *const *vecs, size_t n, uint32_t *out,
                         ap_err *err);

/* The base list of every vector of delta in its file order (list by list): *out has
 * n_vectors entries (malloc'd; the caller frees). */
ap_status ap_delta_group(const ap_annp *base, const ap_annp *delta, uint32_t **out, ap_err *err);

/* Writes dir/delta.lists: dir/pack.annpack's vectors grouped under base. */
ap_status ap_delta_lists_write(const char *dir, const ap_annp *base, ap_err *err);

#endif
