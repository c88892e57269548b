/* The layout of pack.bits (internal to core; annpack/bits.h and docs/FORMAT.md describe the
 * file): where its parts lie for a dim, a list count and a vector count, and the bytes of
 * its header. The one definition the reader (format/bits.c), the writer
 * (build/bits_build.c) and the digest ranges (format/digest_layout.c) share. */
#ifndef ANNPACK_CORE_BITS_LAYOUT_H
#define ANNPACK_CORE_BITS_LAYOUT_H

#include <stdint.h>

#include "annpack/bits.h"
#include "rabitq.h"

typedef struct ap_bits_layout {
    uint32_t dim, n_lists, n_vectors;
    uint32_t dpad;   /* bits per code */
    uint32_t record; /* bytes per vector: dpad/8 code bytes + F + G */
    float eps0;
    uint64_t seed;
    uint64_t counts; /* u32 per list, right after the header */
    uint64_t data;   /* the lists, 64-byte aligned */
    uint64_t size;   /* of the whole file */
} ap_bits_layout;

/* The layout of a sidecar of n_vectors vectors of dim in n_lists lists (seed and eps0 as
 * given). A file with any other offsets or size is not one our writer made. */
ap_bits_layout ap_bits_layout_for(uint32_t dim, uint32_t n_lists, uint32_t n_vectors, uint64_t seed,
                                  float eps0);

/* The AP_BITS_HEADER_SIZE header bytes of a sidecar laid out as L. */
void ap_bits_header_encode(const ap_bits_layout *L, uint8_t out[AP_BITS_HEADER_SIZE]);

/* The layout fields a header states (magic, version and header size are not read). */
ap_bits_layout ap_bits_header_decode(const uint8_t in[AP_BITS_HEADER_SIZE]);

/* The rotation the sidecar's seed gives (built at open; valid until ap_bits_close). */
const ap_rbq_rot *ap_bits_rot(const ap_bits *b);

#endif
