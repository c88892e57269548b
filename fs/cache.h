/* The result cache (cache.c): a bounded LRU of computed files keyed by (generation,
 * canonical key, route.h), the only place their bytes live beyond a request — an inode
 * keeps only what recomputes them (inode.h), so all result memory is bounded by cache_mb.
 * Thread-safe. */
#ifndef ANNPACK_FS_CACHE_H
#define ANNPACK_FS_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "blob.h"

void fs_cache_init(uint64_t max_bytes);
/* The hash of key[0..len) that get and put take: computed once per name (a vector query's
 * key is over a kilobyte), kept by its node for the reads. Keyed per process (a random
 * SipHash key), so names cannot be chosen to pile up in one bucket. */
uint64_t fs_cache_hash(const char *key, size_t len);
/* A reference to the cached body, or NULL. h = fs_cache_hash(key). */
fs_blob *fs_cache_get(uint64_t gen, const char *key, uint64_t h);
/* Caches b (taking its own reference; the first body put under a key stays). */
void fs_cache_put(uint64_t gen, const char *key, uint64_t h, fs_blob *b);
/* Drops the entries of generations other than keep (UINT64_MAX: all, at exit). */
void fs_cache_drop_others(uint64_t keep);
void fs_cache_usage(uint64_t *entries, uint64_t *bytes);

#endif
