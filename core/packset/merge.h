/* The merged tables of a view (internal to core): every live vector in merged order and
 * every live row in ascending id order, as the virtual pack (mount/vpack.c) lays them out
 * and rebase writes them. Merged list i = the live base vectors of base list i, then the
 * live delta vectors whose nearest base centroid is i, in (seq, position) order. */
#ifndef ANNPACK_CORE_MERGE_H
#define ANNPACK_CORE_MERGE_H

#include "view.h"

typedef struct ap_merged {
    uint64_t *list_off;   /* n_lists + 1 byte offsets of merged lists in the ANNP file */
    uint64_t *list_first; /* n_lists + 1 first merged item of each list */
    ap_item *items;       /* every live vector in merged order */
    uint64_t annp_size;   /* of the merged ANNP file */
    uint64_t *row_id;     /* live ids ascending */
    uint32_t *row_layer;
    uint64_t *row_off; /* nrows + 1 offsets in the merged JSONL */
    uint64_t nrows;
} ap_merged;

/* Fills the list part (list_off, list_first, items, annp_size) / the row part of x. */
ap_status ap_merged_lists(const ap_view *v, ap_merged *x, ap_err *err);
ap_status ap_merged_rows(const ap_view *v, ap_merged *x, ap_err *err);

/* Both parts into a new table (rebase); free with ap_merged_free. */
ap_status ap_view_merged_tables(const ap_view *v, ap_merged **out, ap_err *err);
void ap_merged_free(ap_merged *x);
/* Frees what x holds (x itself is the caller's). */
void ap_merged_clear(ap_merged *x);

#endif
