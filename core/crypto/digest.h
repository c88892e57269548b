/* SHA-256 of source files read from their descriptors (internal to core; base/source.h
 * opens them, this checks them against manifests). */
#ifndef ANNPACK_CORE_DIGEST_H
#define ANNPACK_CORE_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#include "annpack/sign.h"
#include "source.h"

/* SHA-256 of memory as 32 raw bytes (digest tables store them raw). */
void ap_sha256_raw(const void *data, size_t len, uint8_t out[AP_SHA256_BYTES]);

/* Like ap_sha256_final, but the 32 raw bytes (h is freed). */
void ap_sha256_final_raw(ap_sha256 *h, uint8_t out[AP_SHA256_BYTES]);

/* Reads len bytes at offset off of what ctx stands for into buf. */
typedef ap_status (*ap_read_at_fn)(const void *ctx, uint64_t off, void *buf, size_t len,
                                   ap_err *err);

/* SHA-256 of the size bytes rd reads (in 1 MiB pieces, in order). */
ap_status ap_sha256_stream(ap_read_at_fn rd, const void *ctx, uint64_t size,
                           char hex[AP_SHA256_HEX], ap_err *err);

/* SHA-256 of the file's bytes, read from the descriptor. */
ap_status ap_src_sha256(const ap_src *s, char hex[AP_SHA256_HEX], ap_err *err);

/* Checks size and SHA-256 against expected values (size UINT64_MAX: not checked).
 * AP_ERR_VERIFY naming the file and, when given, the manifest that lists it. */
ap_status ap_src_check_digest(const ap_src *s, uint64_t size, const char *sha256,
                              const char *listed_in, ap_err *err);

#endif
