/* Counters behind /stats. */
#include <stdio.h>
#include <stdlib.h>

#include "fs.h"

fs_stats g_stats;

/* Upper bounds (µs) of the latency histogram buckets; the last bucket is open. */
static const double BOUNDS[11] = {100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000,
                                  1000000};

void fs_stats_record_latency(double us)
{
    int i = 0;
    while (i < 11 && us >= BOUNDS[i]) i++;
    atomic_fetch_add(&g_stats.latency[i], 1);
}

char *fs_stats_json(size_t *len)
{
    uint64_t ce, cb;
    fs_cache_usage(&ce, &cb);
    fs_gen *g = fs_gen_current();
    char *buf = malloc(2048);
    if (!buf) {
        fs_gen_unref(g);
        return NULL;
    }
    int n = snprintf(buf, 2048,
                     "{\"generation\":%llu,\"version\":%llu,\"queries\":%llu,\"cache_hits\":%llu,"
                     "\"cache_entries\":%llu,\"cache_bytes\":%llu,\"docs\":%llu,\"reads\":%llu,"
                     "\"errors\":%llu,\"reloads\":%llu,\"reload_failures\":%llu,"
                     "\"latency_us\":{",
                     (unsigned long long)(g ? g->number : 0), (unsigned long long)(g ? g->version : 0),
                     (unsigned long long)g_stats.queries, (unsigned long long)g_stats.cache_hits,
                     (unsigned long long)ce, (unsigned long long)cb,
                     (unsigned long long)g_stats.docs, (unsigned long long)g_stats.reads,
                     (unsigned long long)g_stats.errors, (unsigned long long)g_stats.reloads,
                     (unsigned long long)g_stats.reload_failures);
    for (int i = 0; i < 12; i++)
        n += snprintf(buf + n, 2048 - (size_t)n, "%s\"%s%.0f\":%llu", i ? "," : "",
                      i < 11 ? "lt_" : "ge_", i < 11 ? BOUNDS[i] : BOUNDS[10],
                      (unsigned long long)g_stats.latency[i]);
    n += snprintf(buf + n, 2048 - (size_t)n, "}}\n");
    fs_gen_unref(g);
    *len = (size_t)n;
    return buf;
}
