/* The local content-addressed blob store of `annpack pull` and `registry download`:
 * STORE/blobs/sha256/<hex> holds a blob whose size and digest were checked; a transfer
 * in progress is STORE/blobs/sha256/<hex>.partial and resumes with a Range request. */
#ifndef ANNPACK_TOOLS_STORE_H
#define ANNPACK_TOOLS_STORE_H

#include "layout.h"
#include "oci.h"

typedef struct store_stats {
    uint64_t fetched_bytes; /* bytes that came over the network */
    uint64_t reused_bytes;  /* bytes already in the store */
    unsigned resumed;       /* transfers that continued a .partial */
} store_stats;

/* Makes every file of t present in the store (fetching what is missing, checking size and
 * digest), then places each into out_dir at its path: a hard link to the store's blob
 * where link[i] is set for member i (link may be NULL: none), else a copy (a reflink where
 * the filesystem can). Only a file that will never be served may be a link: adding a link
 * to a file a mount has open changes its ctime, which annpackfs treats as damage. Errors
 * name the file. */
ap_status store_materialize(oci_client *c, const tree *t, const char *store, const char *out_dir,
                            const bool *link, store_stats *stats, ap_err *err);

/* Creates dir and its missing parents (0755). */
ap_status mkdir_parents(const char *dir, ap_err *err);

/* Creates a fresh directory beside target: "<dirname>/.<basename>.<tag>-XXXXXX", malloc'd. */
char *mkdtemp_beside(const char *target, const char *tag, ap_err *err);

/* Removes a tree that this program created (nothing inside is followed). */
void rmtree(const char *path);

/* fsyncs a directory. */
ap_status fsync_dir(const char *dir, ap_err *err);

#endif
