/* Strict JSON helpers over cJSON (internal to core).
 *
 * Untrusted JSON (manifests, metadata rows, tombstones) is parsed strictly: no trailing
 * bytes, object keys compared case-sensitively, duplicate keys refused (cJSON would keep
 * the first, Python the last: two readers must never see two different documents), and
 * integers must be exact non-negative integers below 2^53 so every JSON reader agrees. */
#ifndef ANNPACK_CORE_JSON_H
#define ANNPACK_CORE_JSON_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "annpack/status.h"

#define AP_JSON_MAX_SAFE_INT ((1ull << 53) - 1)

/* Parses len bytes; name is used in error messages ("NAME: ..."). */
ap_status ap_json_parse_strict(const char *buf, size_t len, const char *name, cJSON **out,
                               ap_err *err);

/* Reads a whole file (at most max_bytes, else AP_ERR_LIMIT naming the cap) and parses it. */
ap_status ap_json_load_file(const char *path, size_t max_bytes, cJSON **out, char **raw,
                            size_t *raw_len, ap_err *err);

/* Looks up a required member of the given cJSON type (cJSON_Object, cJSON_Array,
 * cJSON_String, cJSON_Number...). AP_ERR_FORMAT "NAME: field KEY missing / not a T". */
ap_status ap_json_member(const cJSON *obj, const char *key, int type, const char *name,
                         const cJSON **out, ap_err *err);

/* An exact integer in [0, max] (max <= 2^53-1). */
ap_status ap_json_u64(const cJSON *obj, const char *key, uint64_t max, const char *name,
                      uint64_t *out, ap_err *err);

/* Checks that a number item is an exact integer in [0, max]. */
ap_status ap_json_item_u64(const cJSON *item, uint64_t max, const char *what, uint64_t *out,
                           ap_err *err);

/* A required string member. */
ap_status ap_json_str(const cJSON *obj, const char *key, const char *name, const char **out,
                      ap_err *err);

/* Adds an unsigned integer printed exactly in decimal (cJSON would print large values
 * in exponent form, which other readers parse as floats). */
cJSON *ap_json_add_u64(cJSON *obj, const char *key, uint64_t v);

/* Renders with cJSON's formatted printer plus a trailing newline; malloc'd. */
char *ap_json_render(const cJSON *obj, size_t *len);

#endif
