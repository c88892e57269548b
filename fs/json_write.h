/* Writing the daemon's own JSON files with cJSON (json_write.c): health, stats, the
 * provenance block of the virtual manifest and refusal files (DESIGN.md: cJSON for all
 * JSON). Every one is a single compact line ending in a newline. */
#ifndef ANNPACK_FS_JSON_WRITE_H
#define ANNPACK_FS_JSON_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

/* Adds an unsigned integer printed exactly in decimal (cJSON prints doubles, in exponent
 * form from 1e15 on, which readers take for floats). Returns the item or NULL. */
cJSON *fs_json_add_u64(cJSON *obj, const char *key, uint64_t v);
/* Adds s as a string, or null when s is NULL or empty. Returns the item or NULL. */
cJSON *fs_json_add_text(cJSON *obj, const char *key, const char *s);
/* obj printed compactly, with newline unless no_newline; malloc'd (NULL when out of memory
 * or obj is NULL). *len (may be NULL) is the length. */
char *fs_json_print(const cJSON *obj, int no_newline, size_t *len);

#endif
