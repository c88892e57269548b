/* annpack search --queries: evaluating a pack with a file of query vectors. */
#ifndef ANNPACK_TOOLS_SEARCH_EVAL_H
#define ANNPACK_TOOLS_SEARCH_EVAL_H

#include <stdint.h>

#include "annpack/annpack.h"

typedef struct search_eval_opts {
    const char *queries; /* .fvecs */
    const char *gt;      /* .ivecs of true neighbour ids, or NULL */
    const char *ids_out; /* .ivecs to write the result ids to, or NULL */
    ap_search_params params;
    uint32_t threads; /* client threads, each running single queries */
    uint32_t warmup;  /* unmeasured passes over the queries first */
} search_eval_opts;

/* Runs every query one at a time and prints one JSON summary; returns an exit code. */
int search_eval(ap_view *v, const search_eval_opts *o);

#endif
