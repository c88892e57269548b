/* Computed file bodies (blob.c): the bytes of a query result, a document row, a refusal
 * file or a stats snapshot, reference-counted and shared by the result cache (cache.h),
 * the inodes holding small bytes (inode.h) and the readers. Immutable once made. */
#ifndef ANNPACK_FS_BLOB_H
#define ANNPACK_FS_BLOB_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fs_blob {
    atomic_int refs;
    size_t len;
    double took_ms; /* the time written into a query result (0 for other bodies) */
    uint64_t hash;  /* of the bytes: a recomputed result must be the same */
    char data[];    /* len bytes and a NUL */
} fs_blob;

/* A copy of data[0..len) with one reference, or NULL when out of memory. */
fs_blob *fs_blob_new(const char *data, size_t len);
/* Takes one more reference (returns b). */
fs_blob *fs_blob_ref(fs_blob *b);
/* Drops one reference (NULL is fine); the last one frees b. */
void fs_blob_unref(fs_blob *b);

#endif
