/* The counters behind the stats file (stats.c): incremented anywhere without a lock,
 * rendered on every lookup of stats. */
#ifndef ANNPACK_FS_STATS_H
#define ANNPACK_FS_STATS_H

#include <stdatomic.h>
#include <stddef.h>

#define FS_LATENCY_BUCKETS 12 /* see stats.c */

typedef struct fs_stats {
    atomic_uint_fast64_t queries, cache_hits, errors, reloads, reload_failures, reloads_noop, reads,
        docs, refused, recomputed, trims;
    atomic_uint_fast64_t nodes, node_bytes; /* live inodes of computed files, their bytes */
    atomic_uint_fast64_t latency[FS_LATENCY_BUCKETS]; /* query latency histogram */
} fs_stats;

extern fs_stats g_stats;

/* The monotonic clock in µs (latencies, rate limits). */
double fs_now_us(void);
/* Counts one query that took us µs. */
void fs_stats_record_latency(double us);
/* The stats file: one JSON line with the current generation, malloc'd (NULL when out of
 * memory). */
char *fs_stats_json(size_t *len);

#endif
