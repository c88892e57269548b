/* Writing pack.bits list by list (internal to the builder): open with every list's count,
 * give each list's f16 vectors and centroid in list order, close. Each vector is encoded on
 * its own (rabitq.h), so the bytes do not depend on the thread count. */
#ifndef AP_BITS_STREAM_H
#define AP_BITS_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "annpack/status.h"

typedef struct ap_bits_stream ap_bits_stream;

/* Creates DIR/pack.bits (O_EXCL) and writes its header and counts (AP_BITS_SEED,
 * AP_BITS_EPS0). *out is the caller's (ap_bits_stream_close). */
ap_status ap_bits_stream_open(const char *dir, uint32_t dim, uint32_t n_lists,
                              const uint32_t *counts, size_t n, ap_bits_stream **out, ap_err *err);
/* Encodes and appends the next list's count vectors (f16, dim each) and its alpha against
 * its centroid (dim f32, as pack.annpack stores it). */
ap_status ap_bits_stream_list(ap_bits_stream *w, const uint16_t *vecs, size_t count,
                              const float *centroid, ap_err *err);
/* ok: flushes, fsyncs and closes (the file is removed if that fails); !ok: closes and
 * removes the file (err may be NULL). Frees w either way; NULL is a no-op. */
ap_status ap_bits_stream_close(ap_bits_stream *w, bool ok, ap_err *err);

#endif
