/* The stats counters and their file: see stats.h. */
#include <stdbool.h>
#include <stdio.h>
#include <time.h>

#include "cache.h"
#include "embed_cache.h"
#include "generation.h"
#include "json_write.h"
#include "stats.h"

fs_stats g_stats;

/* Upper bounds (µs) of the latency histogram buckets; the last bucket is open. */
static const double BOUNDS[FS_LATENCY_BUCKETS - 1] = {100,   250,   500,   1000,   2500,   5000,
                                                      10000, 25000, 50000, 100000, 1000000};

double fs_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

void fs_stats_record_latency(double us)
{
    int i = 0;
    while (i < FS_LATENCY_BUCKETS - 1 && us >= BOUNDS[i])
        i++;
    atomic_fetch_add(&g_stats.latency[i], 1);
}

/* {"lt_100":N,...,"lt_1000000":N,"ge_1000000":N} */
static bool add_latency(cJSON *o)
{
    cJSON *h = cJSON_AddObjectToObject(o, "latency_us");
    for (int i = 0; h && i < FS_LATENCY_BUCKETS; i++) {
        char key[32];
        int last = i == FS_LATENCY_BUCKETS - 1;
        snprintf(key, sizeof key, "%s%.0f", last ? "ge_" : "lt_", BOUNDS[last ? i - 1 : i]);
        if (!fs_json_add_u64(h, key, g_stats.latency[i])) return false;
    }
    return h != NULL;
}

/* {"lookup":N,"getattr":N,"open":N,"read":N,"opendir":N,"readdir":N,"forget":N} */
static bool add_requests(cJSON *o)
{
    static const char *const names[FS_REQ_COUNT] = {"lookup",  "getattr", "open",  "read",
                                                    "opendir", "readdir", "forget"};
    cJSON *r = cJSON_AddObjectToObject(o, "requests");
    for (int i = 0; r && i < FS_REQ_COUNT; i++)
        if (!fs_json_add_u64(r, names[i], g_stats.req[i])) return false;
    return r != NULL;
}

/* The current generation's range verification: "verify_ranges" covered, "verify_hashed"
 * (each at most once per generation), "verify_bad". */
static bool add_verify(cJSON *o, const fs_gen *g)
{
    ap_view_verify vi = {0};
    if (g) ap_view_verify_info(g->view, &vi);
    return fs_json_add_u64(o, "verify_ranges", vi.ranges_total) &&
           fs_json_add_u64(o, "verify_hashed", vi.ranges_hashed) &&
           fs_json_add_u64(o, "verify_bad", vi.ranges_bad);
}

char *fs_stats_json(size_t *len)
{
    uint64_t ce, cb;
    fs_cache_usage(&ce, &cb);
    fs_gen *g = fs_gen_current();
    const fs_stats *s = &g_stats;
    cJSON *o = cJSON_CreateObject();
    bool ok =
        o && fs_json_add_u64(o, "generation", g ? g->number : 0) &&
        fs_json_add_u64(o, "version", g ? g->version : 0) &&
        fs_json_add_u64(o, "queries", s->queries) &&
        fs_json_add_u64(o, "cache_hits", s->cache_hits) &&
        fs_json_add_u64(o, "cache_entries", ce) && fs_json_add_u64(o, "cache_bytes", cb) &&
        fs_json_add_u64(o, "recomputed", s->recomputed) && fs_json_add_u64(o, "inodes", s->nodes) &&
        fs_json_add_u64(o, "inode_bytes", s->node_bytes) && fs_json_add_u64(o, "trims", s->trims) &&
        fs_json_add_u64(o, "docs", s->docs) && fs_json_add_u64(o, "reads", s->reads) &&
        fs_json_add_u64(o, "errors", s->errors) && fs_json_add_u64(o, "refused", s->refused) &&
        fs_json_add_u64(o, "reloads", s->reloads) &&
        fs_json_add_u64(o, "reloads_noop", s->reloads_noop) &&
        fs_json_add_u64(o, "reload_failures", s->reload_failures) && add_latency(o) &&
        add_verify(o, g) && add_requests(o);
    cJSON *emb = ok && g ? fs_embed_status(g->view) : NULL;
    if (emb) ok = cJSON_AddItemToObject(o, "embed", emb);
    fs_gen_unref(g);
    char *out = ok ? fs_json_print(o, 0, len) : NULL;
    cJSON_Delete(o);
    return out;
}
