/* Writing an ANNP v1 file list by list (internal: the builder streams its lists so it never
 * holds a grouped copy of every vector). */
#ifndef AP_ANNP_STREAM_H
#define AP_ANNP_STREAM_H

#include <stdint.h>

#include "annpack/status.h"

/* Gives list l's counts[l] ids and f16 vectors (dim each). Called once per non-empty list,
 * in list order; the pointers are the callback's and must stay valid until its next call. */
typedef ap_status (*ap_annp_list_fn)(void *ctx, uint32_t l, const uint64_t **ids,
                                     const uint16_t **vecs, ap_err *err);

/* Writes path as ap_annp_write does (same bytes), asking list() for each list's contents
 * as it goes. The file is written, fsynced and closed; on failure it is removed and list()'s
 * error is returned as it set it. */
ap_status ap_annp_write_stream(const char *path, uint32_t dim, uint32_t n_lists,
                               const float *centroids, const uint32_t *counts, ap_annp_list_fn list,
                               void *ctx, ap_err *err);

#endif
