/* Name routing of the mount's tree (docs/MOUNT.md): which directory + name is which kind of
 * answer. Pure — no FUSE, no generation, no I/O — so a fuzz target can drive it
 * (tests/fuzz/fuzz_route.c). The lookup (callbacks.c) routes every name here, then answers. */
#ifndef ANNPACK_FS_ROUTE_H
#define ANNPACK_FS_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "annpack/packset.h"
#include "annpack/status.h"

/* The directories of the tree. Parameter directories (vquery/k=N&probe=N/ and the same
 * under refusal/) are not fixed: their k and probe come in fs_route_ctx. */
typedef enum fs_dir {
    FS_DIR_ROOT,
    FS_DIR_QUERY,          /* query/ */
    FS_DIR_VQUERY,         /* vquery/ */
    FS_DIR_DOC,            /* doc/ */
    FS_DIR_REFUSAL,        /* refusal/ */
    FS_DIR_REFUSAL_QUERY,  /* refusal/query/ */
    FS_DIR_REFUSAL_VQUERY, /* refusal/vquery/ */
    FS_DIR_VPARAM,         /* vquery/<params>/ */
    FS_DIR_REFUSAL_VPARAM, /* refusal/vquery/<params>/ (also for params that are refused) */
} fs_dir;

/* The files of the root directory. */
typedef enum fs_file {
    FS_FILE_MANIFEST,
    FS_FILE_ANNPACK,
    FS_FILE_META,
    FS_FILE_SQ8,
    FS_FILE_IDF,
    FS_FILE_HEALTH,
    FS_FILE_STATS,
} fs_file;

typedef enum fs_route_kind {
    FS_ROUTE_ABSENT,  /* no such name (ENOENT) */
    FS_ROUTE_DIR,     /* .dir (a parameter directory: .k, .probe; refused ones: .status, .err) */
    FS_ROUTE_FILE,    /* .file */
    FS_ROUTE_QUERY,   /* a text query: .k, .probe, .key */
    FS_ROUTE_VQUERY,  /* a vector query: .k, .probe, .key (decoded and checked) */
    FS_ROUTE_DOC,     /* .id, .key */
    FS_ROUTE_REFUSED, /* a query name refused: .status (AP_ERR_LIMIT, AP_ERR_ARG,
                       * AP_ERR_UNSUPPORTED), .err */
    FS_ROUTE_REFUSAL, /* a file under refusal/: why the same name is refused (.status, .err) */
} fs_route_kind;

typedef struct fs_route_ctx {
    uint32_t k, probe; /* defaults (-o k=, probe=); in a parameter directory, its own */
    uint32_t dim;      /* the pack's dim: vector names are decoded and checked against it */
    bool sq8;          /* the pack has pack.sq8 */
    bool idf;          /* and pack.idf (its embedder's corpus table) */
    /* In a FS_DIR_REFUSAL_VPARAM whose own name was refused: why (every name below it is
     * a refusal file saying so); else NULL. */
    const char *dir_refused;
    /* Why this pack cannot answer text queries (built from vectors), or NULL: text query
     * names are then refused with it (AP_ERR_UNSUPPORTED). */
    const char *no_text;
    /* Checks a query name's metadata filter conditions (ap_view_where_check on the current
     * generation), or NULL: not checked (the answer refuses them then). */
    ap_status (*check_where)(const void *arg, const ap_where *where, size_t n, ap_err *err);
    const void *check_arg;
} fs_route_ctx;

/* Metadata filters in a query name ("?col=value&..."): at most FS_WHERE_MAX conditions,
 * each column at most FS_WHERE_COL_MAX and each value at most FS_WHERE_VALUE_MAX bytes once
 * percent-decoded. */
#define FS_WHERE_MAX 8u
#define FS_WHERE_COL_MAX 64u
#define FS_WHERE_VALUE_MAX 256u

/* What a query, vector query or document file is computed from: its canonical key names
 * the answer ("q K P TEXT", "v K P VECTOR", "d ID"; with filters "Q K P WHERE TEXT" and
 * "V K P WHERE VECTOR", WHERE the conditions sorted by column, percent-encoded as
 * "col=value&..." without spaces), so every name meaning the same query shares one cached
 * result. text is key + text_off (the decoded text, or the base64url vector), text_len
 * bytes; WHERE is key + where_off, where_len bytes (0: no filters). */
typedef struct fs_route {
    fs_route_kind kind;
    fs_dir dir;
    fs_file file;
    uint32_t k, probe;
    uint64_t id;
    char *key; /* malloc'd (QUERY, VQUERY, DOC) */
    /* VQUERY from fs_route_name: the vector as decoded and checked there (ctx->dim floats,
     * L2-normalised, malloc'd), so the answer does not decode the name again; NULL from
     * fs_route_parse_key (a recomputation decodes the key's). */
    float *vec;
    size_t key_len, text_off, text_len, where_off, where_len;
    ap_status status; /* REFUSED, REFUSAL, refused parameter directories */
    ap_err err;
} fs_route;

/* Routes name[0..len) in parent. Returns AP_OK with *out filled (free with fs_route_free),
 * or AP_ERR_NOMEM. */
ap_status fs_route_name(fs_dir parent, const fs_route_ctx *ctx, const char *name, size_t len,
                        fs_route *out);
void fs_route_free(fs_route *r);

/* The parts of a query key (see fs_route), for recomputing an answer from it. */
ap_status fs_route_parse_key(const char *key, size_t len, fs_route *out);

/* The filter conditions of a routed or parsed query (key + where_off, where_len bytes) as
 * *n conditions in one malloc'd block *out (free it; NULL when none). AP_ERR_ARG for a
 * malformed WHERE, AP_ERR_NOMEM. */
ap_status fs_route_where(const char *key, const fs_route *r, ap_where **out, size_t *n);

#endif
