/* A delta's tombstones (internal to core): tombstones.jsonl, an id list (ap_parse_id_list,
 * annpack/packset.h) of the ids the delta deletes. */
#ifndef ANNPACK_CORE_TOMBSTONES_H
#define ANNPACK_CORE_TOMBSTONES_H

#include <stddef.h>
#include <stdint.h>

#include "annpack/status.h"

/* Parses a delta's tombstones into sorted ids; an id listed twice is refused. name goes in
 * messages. */
ap_status ap_delta_tombstones_parse(const char *text, size_t len, const char *name, uint64_t **ids,
                                    size_t *n, ap_err *err);

/* Writes DIR/tombstones.jsonl: one {"id":N} line per id (ids sorted and unique). */
ap_status ap_tombstones_write(const char *dir, const uint64_t *ids, size_t n, ap_err *err);

#endif
