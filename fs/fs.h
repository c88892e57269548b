/* annpackfs internals: configuration, generations, the result cache, statistics.
 * The daemon maps paths to core calls and nothing else (DESIGN.md, "The mount"). */
#ifndef ANNPACK_FS_H
#define ANNPACK_FS_H

#define FUSE_USE_VERSION 312

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <fuse_lowlevel.h>

#include "annpack/annpack.h"

typedef struct fs_config {
    char *source;     /* realpath of the packset or pack */
    char *pubkey;     /* pubkey= */
    char *state;      /* state= file persisting the highest accepted version */
    char *log;        /* log= file */
    uint32_t k, probe;
    ap_scan_mode scan; /* scan= */
    uint32_t rerank;   /* rerank= (0: the default for k) */
    int verify_full;  /* verify=full (default) or none */
    uint64_t cache_mb;
    int watch;
    ap_pubkey keys[AP_MAX_PUBKEYS];
    size_t nkeys;
} fs_config;

/* One verified, immutable view of the source; readers hold references. */
#define FS_GEN_FILES 5 /* pack.manifest.json, pack.annpack, pack.meta.jsonl, pack.sq8, health */

typedef struct fs_gen {
    atomic_int refs;
    uint64_t number;
    uint64_t version;
    ap_view *view;
    char *manifest;   /* the virtual pack manifest */
    size_t manifest_len;
    char *health;
    size_t health_len;
    struct timespec mtime;
    char keyid[AP_KEYID_HEX];
    const char *signature; /* "verified", "unchecked" */
    void *files[FS_GEN_FILES]; /* ops.c's inodes of the static files (weak references) */
} fs_gen;

/* Loads and verifies a generation; refuses versions below min_version (or equal, when
 * strict). */
ap_status fs_gen_load(const fs_config *cfg, uint64_t number, uint64_t min_version, int strict,
                      fs_gen **out, ap_err *err);
fs_gen *fs_gen_current(void);            /* referenced; release with fs_gen_unref */
void fs_gen_unref(fs_gen *g);
void fs_gen_install(fs_gen *g);          /* becomes current; the old one is released */

/* A computed file body (query result, doc row), shared by the cache and open handles. */
typedef struct fs_blob {
    atomic_int refs;
    size_t len;
    char data[];
} fs_blob;

fs_blob *fs_blob_new(const char *data, size_t len);
void fs_blob_unref(fs_blob *b);

/* Bounded LRU of query results keyed by (generation, canonical query). */
void fs_cache_init(uint64_t max_bytes);
fs_blob *fs_cache_get(uint64_t gen, const char *key);      /* referenced or NULL */
void fs_cache_put(uint64_t gen, const char *key, const char *path, fs_blob *b);
/* Calls fn (may be NULL) with the file name of each entry of generations other than keep,
 * and drops them. */
void fs_cache_drop_others(uint64_t keep, void (*fn)(const char *name, void *ud), void *ud);
void fs_cache_usage(uint64_t *entries, uint64_t *bytes);

/* Counters for /stats. */
typedef struct fs_stats {
    atomic_uint_fast64_t queries, cache_hits, errors, reloads, reload_failures, reads, docs;
    atomic_uint_fast64_t latency[12]; /* query latency histogram, see stats.c */
} fs_stats;

extern fs_stats g_stats;
extern fs_config g_cfg;
extern struct fuse_session *g_se;

void fs_stats_record_latency(double us);
char *fs_stats_json(size_t *len);

/* FUSE operations (low-level API). */
extern const struct fuse_lowlevel_ops fs_ops;

/* Tells the kernel to forget every name it caches under the mount (after a reload): the
 * static files and the query, vquery and doc directories with all names below them. */
void fs_invalidate_generation(struct fuse_session *se);

/* Reload: request from a signal handler (async-signal-safe) and the reload thread. */
void fs_reload_request(void);
int fs_reload_start(void);
void fs_reload_stop(void);

/* Persists the highest accepted version to state= (no-op without it). */
void fs_state_save(uint64_t version);

/* Installs the SIGBUS handler behind fs_guarded. */
int fs_guard_install(void);

/* Runs fn(arg); if it touches a vanished page of a mapped source file, returns -EIO
 * (logging `what`) instead of crashing. */
int fs_guarded(int (*fn)(void *), void *arg, const char *what);

/* Maps a core status to a negative errno. */
int fs_errno(ap_status st);

#endif
