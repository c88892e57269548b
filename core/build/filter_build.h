/* Building pack.filter (internal to core; docs/FORMAT.md "pack.filter"): the id sets of
 * each value of the filter columns, derived from the pack's own metadata rows, so a
 * build, a delta and a rebase (whose rows are copied byte for byte) all get it the same
 * way. */
#ifndef ANNPACK_CORE_FILTER_BUILD_H
#define ANNPACK_CORE_FILTER_BUILD_H

#include <stdint.h>

#include "annpack/status.h"
#include "filter.h"

/* "a,b" into *cols (malloc'd strings, ap_filter_cols_free): 1 to AP_FILTER_MAX_COLS
 * distinct names, not "id". */
ap_status ap_filter_cols_parse(const char *list, char ***cols, uint32_t *n, ap_err *err);
void ap_filter_cols_free(char **cols, uint32_t n);

/* Writes dir/pack.filter from the rows of dir's metadata files: every row must have each
 * column as text. */
ap_status ap_filter_build(const char *dir, char **cols, uint32_t nc, ap_err *err);

/* The columns of f as "a,b" (malloc'd; NULL when f is NULL or out of memory): what a
 * delta of a pack filtered on them is built with. */
char *ap_filter_cols_join(const struct ap_filter *f);

/* ap_filter_build for the columns of f (a rebased base keeps its base's). */
ap_status ap_filter_build_like(const char *dir, const struct ap_filter *f, ap_err *err);

#endif
