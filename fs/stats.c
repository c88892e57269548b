/* Counters behind /stats. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "fs.h"

fs_stats g_stats;

/* Upper bounds (µs) of the latency histogram buckets; the last bucket is open. */
static const double BOUNDS[11] = {100,   250,   500,   1000,   2500,   5000,
                                  10000, 25000, 50000, 100000, 1000000};

void fs_stats_record_latency(double us)
{
    int i = 0;
    while (i < 11 && us >= BOUNDS[i])
        i++;
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
    int n = snprintf(
        buf, 2048,
        "{\"generation\":%llu,\"version\":%llu,\"queries\":%llu,\"cache_hits\":%llu,"
        "\"cache_entries\":%llu,\"cache_bytes\":%llu,\"recomputed\":%llu,"
        "\"inodes\":%llu,\"inode_bytes\":%llu,\"trims\":%llu,\"docs\":%llu,"
        "\"reads\":%llu,\"errors\":%llu,\"refused\":%llu,\"reloads\":%llu,"
        "\"reloads_noop\":%llu,\"reload_failures\":%llu,\"latency_us\":{",
        (unsigned long long)(g ? g->number : 0), (unsigned long long)(g ? g->version : 0),
        (unsigned long long)g_stats.queries, (unsigned long long)g_stats.cache_hits,
        (unsigned long long)ce, (unsigned long long)cb, (unsigned long long)g_stats.recomputed,
        (unsigned long long)g_stats.nodes, (unsigned long long)g_stats.node_bytes,
        (unsigned long long)g_stats.trims, (unsigned long long)g_stats.docs,
        (unsigned long long)g_stats.reads, (unsigned long long)g_stats.errors,
        (unsigned long long)g_stats.refused, (unsigned long long)g_stats.reloads,
        (unsigned long long)g_stats.reloads_noop, (unsigned long long)g_stats.reload_failures);
    for (int i = 0; i < 12; i++)
        n += snprintf(buf + n, 2048 - (size_t)n, "%s\"%s%.0f\":%llu", i ? "," : "",
                      i < 11 ? "lt_" : "ge_", i < 11 ? BOUNDS[i] : BOUNDS[10],
                      (unsigned long long)g_stats.latency[i]);
    n += snprintf(buf + n, 2048 - (size_t)n, "}}\n");
    fs_gen_unref(g);
    *len = (size_t)n;
    return buf;
}

void fs_printable(char *s)
{
    for (unsigned char *p = (unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p >= 0x7f) *p = '?';
}

void fs_note_refusal(const char *component, size_t name_len, const char *msg)
{
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    static struct timespec last;
    static uint64_t unlogged;
    atomic_fetch_add(&g_stats.refused, 1);
    atomic_fetch_add(&g_stats.errors, 1);
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    pthread_mutex_lock(&lock);
    int log =
        last.tv_sec == 0 ||
        (now.tv_sec - last.tv_sec) * 1000000000ll + (now.tv_nsec - last.tv_nsec) >= 1000000000ll;
    uint64_t before = unlogged;
    if (log) {
        last = now;
        unlogged = 0;
    } else {
        unlogged++;
    }
    pthread_mutex_unlock(&lock);
    if (!log) return;
    char clean[AP_ERR_MSG_MAX];
    snprintf(clean, sizeof clean, "%s", msg);
    fs_printable(clean); /* a refusal may echo part of the name: no control bytes in the log */
    msg = clean;
    if (before)
        ap_log(AP_LOG_WARN, component,
               "refused name (%zu bytes): %s (%llu more refused since the "
               "last line, not logged)",
               name_len, msg, (unsigned long long)before);
    else
        ap_log(AP_LOG_WARN, component, "refused name (%zu bytes): %s", name_len, msg);
}
