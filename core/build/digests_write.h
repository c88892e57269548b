/* Writing pack.digests at the end of a build (internal to core; docs/FORMAT.md). */
#ifndef ANNPACK_CORE_DIGESTS_WRITE_H
#define ANNPACK_CORE_DIGESTS_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "annpack/sign.h"
#include "annpack/status.h"

/* Hashes the n files names (sorted by name; pack.digests not among them) of directory dir
 * once each: hex[i] and size[i] receive each whole file's SHA-256 and size (for the
 * manifest), and the range digests go to dir/pack.digests, whose own SHA-256 and size go
 * to dhex and *dsize. */
ap_status ap_digests_write(const char *dir, const char *const *names, size_t n,
                           char (*hex)[AP_SHA256_HEX], uint64_t *size, char dhex[AP_SHA256_HEX],
                           uint64_t *dsize, ap_err *err);

#endif
