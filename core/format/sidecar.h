/* The layout of pack.sq8 (internal to core; annpack/sq8.h and docs/FORMAT.md describe the
 * file): where its parts lie for a dim, a list count and a vector count, and the bytes of
 * its header. The one definition the reader (format/sidecar.c), the writer
 * (build/sidecar_build.c) and the merged sidecar of a view (mount/vpack.c) share. */
#ifndef ANNPACK_CORE_SIDECAR_H
#define ANNPACK_CORE_SIDECAR_H

#include <stdint.h>

#include "annpack/sq8.h"

typedef struct ap_sq8_layout {
    uint32_t dim, n_lists, n_vectors;
    uint32_t stride; /* ap_sq8_stride_for(dim) */
    uint64_t params; /* f32 vmin[dim], then f32 step[dim]: right after the header */
    uint64_t counts; /* u32 per list, 64-byte aligned */
    uint64_t codes;  /* n_vectors x stride bytes, 64-byte aligned */
    uint64_t size;   /* of the whole file */
} ap_sq8_layout;

/* The layout of a sidecar of n_vectors vectors of dim in n_lists lists. A file with any
 * other offsets or size is not one our writer made, and readers refuse it. */
ap_sq8_layout ap_sq8_layout_for(uint32_t dim, uint32_t n_lists, uint32_t n_vectors);

/* The AP_SQ8_HEADER_SIZE header bytes of a sidecar laid out as L (magic, version and
 * header size included; the reserved word is zero). */
void ap_sq8_header_encode(const ap_sq8_layout *L, uint8_t out[AP_SQ8_HEADER_SIZE]);

/* The layout fields a header states (magic, version and header size are not read). */
ap_sq8_layout ap_sq8_header_decode(const uint8_t in[AP_SQ8_HEADER_SIZE]);

#endif
