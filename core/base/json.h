/* Strict JSON helpers over cJSON (internal to core).
 *
 * Untrusted JSON (manifests, metadata rows, tombstones) is parsed strictly, so that every
 * JSON reader sees the same document (docs/FORMAT.md, "Strict JSON"): exactly RFC 8259
 * (no trailing bytes, no BOM, no leading zeros, valid UTF-8 without overlongs or
 * surrogates, paired \u surrogate escapes, no \u0000 which would cut a C string), at most
 * AP_JSON_MAX_DEPTH levels of nesting and AP_JSON_MAX_KEYS keys per object, duplicate keys
 * refused (cJSON would keep the first, Python the last), keys compared case-sensitively,
 * and integers that must be exact non-negative integers below 2^53. Time and memory are
 * linear in the input. */
#ifndef ANNPACK_CORE_JSON_H
#define ANNPACK_CORE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "annpack/status.h"

#define AP_JSON_MAX_SAFE_INT ((1ull << 53) - 1)
/* Arrays and objects nested deeper than this are refused. */
#define AP_JSON_MAX_DEPTH 64u
/* Keys per object (a metadata row has one per CSV column; builds refuse wider CSVs). */
#define AP_JSON_MAX_KEYS 65536u

/* Checks that len bytes are exactly one RFC 8259 JSON text within the caps above (duplicate
 * keys are not checked here). One pass, no recursion. Errors are AP_ERR_FORMAT (AP_ERR_LIMIT
 * for a cap) "NAME: WHAT at byte N". When key_at is not NULL it receives a malloc'd array
 * of the byte offset of every object key in document order, and *nkeys their number. */
ap_status ap_json_check(const char *buf, size_t len, const char *name, size_t **key_at,
                        size_t *nkeys, ap_err *err);

/* Parses len bytes: ap_json_check, cJSON, then duplicate keys (decoded keys compared; a
 * SipHash set per object, so linear). name is used in error messages ("NAME: ..."). */
ap_status ap_json_parse_strict(const char *buf, size_t len, const char *name, cJSON **out,
                               ap_err *err);

/* Whether row[0..len) is exactly {"id":N}, N written the one way JSON allows (no sign, no
 * leading zero, no fraction or exponent) and at most AP_JSON_MAX_SAFE_INT: a row
 * ap_json_parse_strict accepts with that id, *id. Any other text, valid or not, is false
 * (left to the parser): this only skips its work for the rows a vector pack writes. */
bool ap_json_plain_id_row(const char *row, uint64_t len, uint64_t *id);

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

/* Writes at most max bytes of s (len bytes) into out (cap bytes, always NUL-terminated)
 * as a one-line excerpt for an error message: quotes, backslashes, control bytes and
 * invalid UTF-8 escaped (\n, \", \x01), "..." appended when cut. Returns out. */
char *ap_json_excerpt(char *out, size_t cap, const char *s, size_t len, size_t max);

/* Renders with cJSON's formatted printer plus a trailing newline; malloc'd. */
char *ap_json_render(const cJSON *obj, size_t *len);

#endif
