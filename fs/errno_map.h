/* Core status to errno (errno_map.c): the one table, by the context a status arises in,
 * that docs/MOUNT.md ("Errors seen by programs reading the mount") documents. */
#ifndef ANNPACK_FS_ERRNO_MAP_H
#define ANNPACK_FS_ERRNO_MAP_H

#include "annpack/status.h"

typedef enum fs_errno_ctx {
    FS_ERRNO_NAME,   /* a name query/ or vquery/ refuses (route.h: the lookup's status) */
    FS_ERRNO_ANSWER, /* computing a query, vector query or doc answer from the data */
    FS_ERRNO_READ,   /* reading bytes of pack.annpack, pack.meta.jsonl or pack.sq8 */
} fs_errno_ctx;

/* The negative errno for st in ctx; 0 for AP_OK. */
int fs_errno(ap_status st, fs_errno_ctx ctx);

#endif
