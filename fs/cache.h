/* The result cache (cache.c): a bounded LRU of computed files keyed by (generation,
 * canonical key, route.h), the only place their bytes live beyond a request — an inode
 * keeps only what recomputes them (inode.h), so all result memory is bounded by cache_mb.
 * Thread-safe. */
#ifndef ANNPACK_FS_CACHE_H
#define ANNPACK_FS_CACHE_H

#include <stdint.h>

#include "blob.h"

void fs_cache_init(uint64_t max_bytes);
/* A reference to the cached body, or NULL. */
fs_blob *fs_cache_get(uint64_t gen, const char *key);
/* Caches b (taking its own reference; the first body put under a key stays). */
void fs_cache_put(uint64_t gen, const char *key, fs_blob *b);
/* Drops the entries of generations other than keep (UINT64_MAX: all, at exit). */
void fs_cache_drop_others(uint64_t keep);
void fs_cache_usage(uint64_t *entries, uint64_t *bytes);

#endif
