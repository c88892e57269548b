/* Writing pack.sq8 list by list (internal to the builder): open with the trained params and
 * every list's count, give each list's f16 vectors in list order, close. The bytes are
 * ap_sq8_build's. */
#ifndef AP_SQ8_STREAM_H
#define AP_SQ8_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "annpack/status.h"

typedef struct ap_sq8_stream ap_sq8_stream;

/* Creates DIR/pack.sq8 (O_EXCL) and writes its header, params (vmin, step: dim each) and
 * counts. *out is the caller's (ap_sq8_stream_close). */
ap_status ap_sq8_stream_open(const char *dir, uint32_t dim, uint32_t n_lists,
                             const uint32_t *counts, size_t n, const float *vmin, const float *step,
                             ap_sq8_stream **out, ap_err *err);
/* Encodes and appends the next list's count vectors (f16, dim each). */
ap_status ap_sq8_stream_list(ap_sq8_stream *w, const uint16_t *vecs, size_t count, ap_err *err);
/* ok: flushes, fsyncs and closes (the file is removed if that fails); !ok: closes and
 * removes the file (err may be NULL). Frees w either way; NULL is a no-op. */
ap_status ap_sq8_stream_close(ap_sq8_stream *w, bool ok, ap_err *err);

#endif
