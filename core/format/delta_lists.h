/* delta.lists: the base list each vector of a delta is grouped under (internal to core;
 * docs/FORMAT.md "delta.lists").
 *
 * A delta is its own small pack with its own k-means lists; a packset scans its vectors
 * with the base list whose centroid is nearest (the builder's rule). The builder records
 * that grouping so that opening a packset needs no assignment of every delta vector
 * against every base centroid. Untrusted input: the reader checks the size, the count
 * and every list number. */
#ifndef ANNPACK_CORE_DELTA_LISTS_H
#define ANNPACK_CORE_DELTA_LISTS_H

#include <stddef.h>
#include <stdint.h>

#include "annpack/status.h"

#define AP_DELTA_LISTS "delta.lists"
#define AP_DELTA_LISTS_MAGIC "ANNPDLS1"
#define AP_DELTA_LISTS_HEADER 24u

/* Parses a delta.lists image: n_vectors entries (the delta's ANNP file's vector count)
 * under base_lists lists (the header's, returned in *base_lists). *lists points into
 * bytes (borrowed: valid while bytes is). name for messages. */
ap_status ap_delta_lists_parse(const uint8_t *bytes, size_t len, const char *name,
                               uint64_t n_vectors, uint32_t *base_lists, const uint8_t **lists,
                               ap_err *err);

/* Entry i of a parsed image's lists (little-endian u32). */
uint32_t ap_delta_lists_at(const uint8_t *lists, uint64_t i);

/* The image of n entries under base_lists lists (malloc'd, *len bytes; NULL: out of
 * memory). */
uint8_t *ap_delta_lists_encode(const uint32_t *lists, uint64_t n, uint32_t base_lists, size_t *len);

#endif
