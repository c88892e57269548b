/* pack.filter: per-value document id sets of the metadata columns a pack was built to
 * filter on (internal to core; docs/FORMAT.md "pack.filter").
 *
 * Compact sorted lists: per column, per distinct value (sorted bytewise), the ascending
 * ids of the pack's rows whose column has that value. Untrusted input: the reader checks
 * every length against the file, the order of values and ids, and the caps. */
#ifndef ANNPACK_CORE_FILTER_H
#define ANNPACK_CORE_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "annpack/status.h"

#define AP_FILTER "pack.filter"
#define AP_FILTER_MAGIC "ANNPFLT1"
#define AP_FILTER_MAX_COLS 16u
#define AP_FILTER_MAX_BYTES (1ull << 32)

typedef struct ap_filter_value {
    const uint8_t *text; /* into the file, not NUL-terminated */
    uint32_t len;
    const uint8_t *ids; /* count u64 LE, ascending */
    uint32_t count;
} ap_filter_value;

typedef struct ap_filter_col {
    char *name; /* NUL-terminated copy */
    ap_filter_value *values;
    uint32_t n_values;
} ap_filter_col;

typedef struct ap_filter {
    ap_filter_col *cols;
    uint32_t n_cols;
    uint8_t *bytes; /* the file (owned) */
    size_t len;
} ap_filter;

/* Parses a pack.filter image (ownership of bytes passes to f); name for messages. */
ap_status ap_filter_parse(uint8_t *bytes, size_t len, const char *name, ap_filter *f, ap_err *err);
void ap_filter_free(ap_filter *f);

/* The column named col, or NULL. */
const ap_filter_col *ap_filter_col_find(const ap_filter *f, const char *col);
/* The value of c equal to val[0..len), or NULL. */
const ap_filter_value *ap_filter_value_find(const ap_filter_col *c, const char *val, size_t len);
/* Whether id is in v's set. */
bool ap_filter_value_has(const ap_filter_value *v, uint64_t id);
/* The same, searching outward from *hint (an index, updated to where id is or would be):
 * ascending ids looked up in turn — a scanned list's — cost O(log gap) each, in memory
 * the previous lookup already touched, instead of a binary search of the whole set. */
bool ap_filter_value_has_near(const ap_filter_value *v, uint64_t id, uint32_t *hint);

/* One (value, id) of a column, for the writer. */
typedef struct ap_filter_pair {
    const char *value; /* NUL-terminated */
    uint64_t id;
} ap_filter_pair;

/* Writes path from n_cols columns: names[c] and pairs[c][0..npairs[c]) (sorted here, in
 * place; a (value, id) twice is refused). */
ap_status ap_filter_write(const char *path, const char *const *names, ap_filter_pair **pairs,
                          const size_t *npairs, uint32_t n_cols, ap_err *err);

#endif
