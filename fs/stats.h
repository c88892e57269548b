/* The counters behind the stats file (stats.c): incremented anywhere without a lock,
 * rendered on every lookup of stats. */
#ifndef ANNPACK_FS_STATS_H
#define ANNPACK_FS_STATS_H

#include <stdatomic.h>
#include <stddef.h>

#define FS_LATENCY_BUCKETS 12 /* see stats.c */

/* The FUSE requests the daemon answered, by kind (the "requests" object of stats: how many
 * round trips a query costs). */
typedef enum fs_req {
    FS_REQ_LOOKUP,
    FS_REQ_GETATTR,
    FS_REQ_OPEN,
    FS_REQ_READ,
    FS_REQ_OPENDIR,
    FS_REQ_READDIR,
    FS_REQ_FORGET,
    FS_REQ_COUNT
} fs_req;

typedef struct fs_stats {
    atomic_uint_fast64_t queries, cache_hits, errors, reloads, reload_failures, reloads_noop, reads,
        docs, refused, recomputed, trims;
    atomic_uint_fast64_t nodes, node_bytes; /* live inodes of computed files, their bytes */
    atomic_uint_fast64_t latency[FS_LATENCY_BUCKETS]; /* query latency histogram */
    atomic_uint_fast64_t req[FS_REQ_COUNT];           /* requests by kind */
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
